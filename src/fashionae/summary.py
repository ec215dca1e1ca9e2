"""The report's summary: what was run, its main figures and its verdicts, in a few sentences
(above the report's tables, and after a study in a terminal), and the caveats that go with a table
of verdicts (another look at the same study, a family that changed, a change of more than one thing)."""

from __future__ import annotations

import math

from .claims import CONFIDENCE, FAMILY_CONFIDENCE, MIN_SEEDS, near_threshold, seeds_advice
from .progress import count
from .results import classes_of, near_trivial, pca_row
from .runconfig import CONTROL
from .verdicts import classifier_lines
from .wording import amount, differs_text, stat

SHORT_EPOCHS = 2  # a model that learned next to nothing in this many epochs or fewer: likely too little training


def _ablation_summary(ablation: list[dict], figure: str = "val_mse", confidence: str = CONFIDENCE) -> str:
    """Which changes of the ablation move the validation figure (MSE, or for its classifier
    lines accuracy) with ``FAMILY_CONFIDENCE``, and which way (``confidence``: how it is said,
    a nominal one after another look at the study)."""
    mse = figure == "val_mse"
    quantity = "the validation MSE" if mse else "the classifiers' validation accuracy"
    changes = "changes" if mse else "classifier comparisons"
    def name(a: dict) -> str:
        return f"“{a['change']}”" + (f" on {a['strategy']}" if "strategy" in a else "")

    def effect(a: dict) -> str:
        return amount(a[figure]["effect"], a[figure].get("unit", "relative"))

    def said(a: dict) -> str:
        return f"{name(a)}, {effect(a)}"
    same = [name(a) for a in ablation if a[figure].get("same_model") is True]
    partly = [name(a) for a in ablation if isinstance(a[figure].get("same_model"), list)]
    one_model = (f" {', '.join(same)} compare{'s' * (len(same) == 1)} one model with itself, as the runs record them "
                 "(nothing they use differs" + (": a setting given where the other's auto chose the same" if mse else "")
                 + "), so no verdict." if same else "") + (
        f" {', '.join(partly)} compare{'s' * (len(partly) == 1)} one model on some seeds and two on the others, as "
        "the runs record them (machines whose auto chose otherwise), so no verdict." if partly else "")
    seeds = min(a["seeds"] for a in ablation)
    if seeds < MIN_SEEDS:
        whose = "the ablation gives" if mse else "the ablation's classifier comparisons give"
        each = "change" if mse else "comparison"
        return (f"With {count(seeds, 'seed')} {whose} no verdict ({seeds_advice(True)}); "
                f"{'its' if mse else 'their'} table gives each {each}"
                + ("." if seeds == 1 or len(same) + len(partly) == len(ablation) else
                   " with its interval" + (" where it has one." if same or partly else ".")) + one_model)
    ablation = [a for a in ablation if not a[figure].get("same_model")]
    diverged = [name(a) for a in ablation if not math.isfinite(a[figure]["effect"])]
    note = (f" {', '.join(diverged)}: a run diverged, so no verdict." if diverged else "") + one_model
    judged = [a for a in ablation if math.isfinite(a[figure]["effect"])]
    by = {v: [a for a in judged if a[figure].get("verdict") == v] for v in ("lower", "higher")}
    rest = len(judged) - len(by["lower"]) - len(by["higher"])
    if not judged:
        return note.strip()
    if len(judged) == 1:
        a = judged[0]
        verb = {"lower": "lowers", "higher": "raises"}.get(a[figure].get("verdict"))
        return (f"The ablation's change {name(a)} ({effect(a)}) "
                + (f"{verb} {quantity} at {confidence} confidence." if verb else
                   f"is not shown to move {quantity}: "
                   + (f"{a[figure]['ci_reason']}." if a[figure].get("ci_reason") else "its interval holds 0.")) + note)
    phrases = [f"{len(by[v])} {verb if len(by[v]) > 1 else verb + 's'} {{it}} at {confidence} confidence ({'; '.join(map(said, by[v]))})"
               for v, verb in (("lower", "lower"), ("higher", "raise")) if by[v]]
    if rest and phrases:
        phrases.append(f"{rest} {'is' if rest == 1 else 'are'} not shown to move {{it}} (no interval wholly on one "
                       "side of 0)")
    elif rest:
        phrases.append(f"none moves {{it}} at {confidence} confidence")
    phrases = [p.format(it=quantity if k == 0 else "it") for k, p in enumerate(phrases)]
    family = "" if mse else " (their intervals a family of their own, apart from the MSE's)"
    return (f"Of the ablation's {len(judged)} {changes}" + (" with a figure on every seed" if diverged else "")
            + family + ", "
            + "; ".join(phrases) + "." + note)


def another_look(results: dict) -> str | None:
    """The summary's sentence on a study whose verdicts were read before with other seeds
    (``seed_history``) or a model of it at other epochs (``epochs_history``: trained on with
    --extend, or again): a verdict after another look is weaker than its interval says."""
    history, n = results.get("seed_history") or [], results.get("seeds", 1)
    epochs = _epochs_changed(results.get("epochs_history") or [])
    if not (len(history) > 1 or epochs) or not (results["claims"] or results.get("ablation")):
        return None
    looks = ([f"had {_in_turn(history[:-1])} seed{'s' * (history[-2] != 1)}, and this one has {n}"]
             if len(history) > 1 else [])
    if epochs:
        (name, read), more = next(iter(epochs.items())), len(epochs) - 1
        looks.append(f"read {name} after {_in_turn(read[:-1])} epoch{'s' * (read[-2] != 1)}, and "
                     f"this one after {read[-1]}" + (f" (and {count(more, 'other model')} at other epochs)" if more else ""))
    return (f"This study folder's earlier reports {'; they '.join(looks)}: a verdict read after another look at the "
            "same study is weaker than its interval says (optional stopping, docs/claims.md); read one the "
            f"earlier looks did not show as a new experiment, planned with {count(n, 'seed')}"
            + (" and its epochs." if epochs else "."))


def _in_turn(figures: list) -> str:
    """Earlier reports' figures in turn: "1, then 2"; of a long history, its first, how many
    between, and its last two."""
    said = [f"{x:,}" for x in figures]
    return ", then ".join(said if len(said) <= 4 else [said[0], f"{len(said) - 3:,} others", *said[-2:]])


def _epochs_changed(history: list) -> dict[str, list[int]]:
    """Each model of the last report read at other epochs in an earlier one (``epochs_history``),
    its epochs in turn; a model added or taken out is no look at other epochs."""
    changed = {}
    for name in history[-1] if history else ():
        # (before 0.3.31 a classifier group and an autoencoder of one name shared one entry, the classifier's)
        old = name.removeprefix("classifier ") if name.startswith("classifier ") else None
        read = [h[name] if name in h else h[old] for h in history
                if isinstance(h, dict) and (name in h or old in h and f"autoencoder {old}" not in h)]
        read = [e for i, e in enumerate(read) if not i or e != read[i - 1]]
        if len(read) > 1:
            changed[name] = read
    return changed


FAMILY_NAMES = {"claims": "the claims", "ablation": "the ablation's MSE table",
                "ablation-classifiers": "the ablation's accuracy table"}  # (``families``' tables)


def other_family(results: dict, which: tuple[str, ...] = tuple(FAMILY_NAMES)) -> str | None:
    """The summary's sentence on a table of verdicts that makes another number of comparisons
    than in an earlier report of this folder (``family_history``): its intervals are wider or
    narrower for that alone, and a verdict may read otherwise (``which``: of those tables alone; none
    below MIN_SEEDS seeds, where no table gives a verdict)."""
    if results.get("seeds", 1) < MIN_SEEDS:
        return None
    *earlier, now = results.get("family_history") or [{}]
    # each table against the last earlier report that had it (a table left out once, then back)
    changed = [(t, was, now[t]) for t in which if t in now
               for was in [next((f[t] for f in reversed(earlier) if t in f), now[t])] if was != now[t]]
    if not changed:
        return None
    return ("In an earlier report of this study folder " + "; ".join(
                f"{FAMILY_NAMES[t]} made {count(was, 'comparison')}, and makes {m} now" for t, was, m in changed)
            + ": more comparisons make each interval wider, fewer narrower, so a verdict may read otherwise than "
            "it did for that alone" + ("; and a comparison dropped after a look leaves the others' verdicts weaker "
                                       "than their intervals say (docs/claims.md)"
                                       if any(m < was for _, was, m in changed) else "") + ".")


def tables_apart(results: dict) -> str | None:
    """The summary's sentence where several tables give verdicts (their families, as this report
    counts them: ``family_history``'s last; from MIN_SEEDS seeds): each holds at its confidence on
    its own, not all together (docs/claims.md)."""
    judged = [FAMILY_NAMES[t] for t, asked in (results.get("family_history") or [{}])[-1].items()
              if asked and t in FAMILY_NAMES]
    if results.get("seeds", 1) < MIN_SEEDS or len(judged) < 2:
        return None
    chance = 100 * min(1.0, len(judged) * (1 - FAMILY_CONFIDENCE))
    return (f"Each table of verdicts ({', '.join(judged[:-1])} and {judged[-1]}) holds at {CONFIDENCE} on its own, "
            f"not all together: the chance that one of them holds a wrong verdict is up to {chance:.0f} %.")


def near_test_noise(claims: list[dict]) -> str | None:
    """The summary's sentence on the verdicts whose effect lies within two of the test set's own
    errors of their threshold (``claims.near_threshold``): each holds on these test images, and
    might not on another test set of their size."""
    close = [(c, p) for c in claims if not c.get("derived") for p in c["parts"] if near_threshold(p)]
    if not close:
        return None
    return ("Within the test set's own noise, which the intervals over seeds leave out: " + "; ".join(
        f"“{c['claim']}”" + (f" ({p['part']})" if len(c["parts"]) > 1 else "")
        + f" is {p['verdict']} at {amount(p['effect'], p['unit'])} against a threshold of "
          f"{amount(p['threshold'], p['unit'])}, where the test set alone typically moves it by about "
          f"{amount(p['test_set_error'], p['unit']).lstrip('+')}" for c, p in close)
            + (": such a verdict holds" if len(close) == 1 else ": such verdicts hold") + " on these test images, "
            "and might not on another test set of their size.")


def not_one_change(results: dict) -> str | None:
    """The ablation's lines that change more than one setting, said (the summary's sentence)."""
    several = [a for a in results.get("ablation", []) if len(a.get("differs", {})) > 1]
    return ("Not one change alone: " + "; ".join(f"“{a['change']}” changes {differs_text(a['differs'])}"
                                                 for a in several) + ".") if several else None


def summary(results: dict) -> list[str]:
    """Three to five sentences: what was run, the main figures, the verdicts."""
    n, aes, clfs = results.get("seeds", 1), results["autoencoders"], results["classifiers"]
    dataset = "Fashion-MNIST" if results.get("reference") else results.get("dataset", "its dataset")
    val = "the test set (the author's protocol)" if results.get("val") == "test" else "held-out training images"
    s = [f"The {results['study']} study ({results['profile']} profile) trained {count(len(aes), 'autoencoder')}"
         + (f" and {count(len(clfs), 'classifier')}" if clfs else "")
         + f" on {dataset} with {count(n, 'seed')}, validated on {val}."]
    sizes = {(a["images"]["train"], a["images"]["val"], a["images"].get("test")) for a in aes if a.get("images")}
    if len(sizes) == 1 and None not in next(iter(sizes))[:2]:  # (said when the autoencoders share them)
        train, val_n, test_n = next(iter(sizes))
        s[0] += (f" Each autoencoder trained on {train:,} images and was validated on {val_n:,}"
                 + (f" and tested on {test_n:,}." if test_n else "."))
    if mixed := [r for r in aes + clfs if r.get("mixed")]:
        key, values = next(iter(mixed[0]["mixed"].items()))
        more = f" (and {len(mixed) - 1} more of its autoencoders and classifiers)" if len(mixed) > 1 else ""
        s.append(f"Not trained alike: {mixed[0]['name']}'s seeds differ in {key.split('.', 1)[-1]} "
                 f"({', '.join(map(str, values))}){more}, so its means mix runs trained differently, and the claims "
                 "leave it out; delete the runs of one kind and run the study again with that setting given "
                 "(e.g. --precision).")
    diverged = [a["name"] for a in aes if not math.isfinite(a["test_mse"]["mean"])]
    if diverged:
        s.append(f"{', '.join(diverged)} had a run that diverged (a figure that is not a number): "
                 "left out of the ranking below.")
    collapsed = {kind: [r for r, _, _ in near_trivial(results, kind)[0]] for kind in ("autoencoders", "classifiers")}
    if any(collapsed.values()):
        def said(kind: str, seeds: list[dict]) -> str:  # (a group's record once per seed)
            groups = list({id(r): r for r in seeds}.values())
            return f"{kind[:-1] if len(groups) == 1 else kind} " + ", ".join(
                f"{r['name']} ({sum(x is r for x in seeds)} of {count(len(r['seeds']), 'seed')})" for r in groups)
        epochs = max(r["epochs"] for seeds in collapsed.values() for r in seeds)
        s.append("Learned next to nothing: " + "; ".join(said(k, seeds) for k, seeds in collapsed.items() if seeds)
                 + ": a test figure near a trivial answer's (the tables say which seeds), "
                 + (f"likely too little training in {count(epochs, 'epoch')}, or a collapse" if epochs <= SHORT_EPOCHS
                    else "likely a collapse or a blow-up")
                 + "; each counts in the means and in every comparison below as any seed does.")
    ranked = sorted((a for a in aes if a["name"] not in diverged), key=lambda a: a["test_mse"]["mean"])
    if ranked:
        # PCA beside the best linear autoencoder that PCA was fitted at (k = its latent size)
        beside = [(a, row) for a in ranked for row in [pca_row(results, a["latent"])]
                  if row and row["k"] == a["latent"]]
        s.append(f"The lowest mean test MSE per pixel is {ranked[0]['name']}'s, {stat(ranked[0]['test_mse'])}"
                 + (f", the highest {ranked[-1]['name']}'s, {stat(ranked[-1]['test_mse'])}" if len(ranked) > 1 else "")
                 + (f"; PCA with {beside[0][1]['k']} components reaches {beside[0][1]['test_mse']:.4f} "
                    f"({beside[0][0]['name']}: {stat(beside[0][0]['test_mse'])})" if beside else "") + ".")
    if diverged := [c["name"] for c in clfs if not math.isfinite(c["test_acc"]["mean"])]:
        s.append(f"{', '.join(diverged)} had a run that diverged (scores that are not numbers, so no accuracy): "
                 "left out of the ranking below.")
    trained = [c for c in clfs if c["strategy"] != CONTROL and c["name"] not in diverged]
    if trained:
        best = max(c["test_acc"]["mean"] for c in trained)
        tops = [c for c in trained if c["test_acc"]["mean"] == best]
        control = next((c for c in clfs if c["strategy"] == CONTROL and c["name"] not in diverged), None)
        whose = (f"is {tops[0]['name']}'s" if len(tops) == 1
                 else f"is shared by {', '.join(c['name'] for c in tops[:-1])} and {tops[-1]['name']}")
        pixels = (results["baselines"] or {}).get("logistic_regression")
        s.append(f"The highest mean test accuracy {whose}, {stat(tops[0]['test_acc'], 2, True)} % (a uniform guess: "
                 f"{100 / len(classes_of(results)):.2f} %"
                 + (f"; the random-frozen control: {stat(control['test_acc'], 2, True)} %" if control else "")
                 + (f"; logistic regression on the pixels: {100 * pixels['test_acc']:.2f} %" if pixels else "") + ").")
    if len(aes) + len(trained) > 1:
        judges = [name for name, present in (("the claims", results["claims"]),
                                             ("the ablation", results.get("ablation"))) if present]
        s.append("These rank means over seeds" + (f"; which differences are real is for {' and '.join(judges)} "
                                                  "to say, of the pairs they compare (no other pair is shown to "
                                                  "differ)." if judges else ", and say nothing of which "
                                                  "differences are real."))
    looked = another_look(results)  # (a verdict after another look holds with less than its confidence)
    confidence = f"a nominal {CONFIDENCE}" if looked else CONFIDENCE
    if results.get("ablation"):
        s.append(_ablation_summary(results["ablation"], confidence=confidence))
        if note := not_one_change(results):
            s.append(note)
    if lines := classifier_lines(results.get("ablation", [])):
        s.append(_ablation_summary(lines, "val_acc", confidence))
    claims = results["claims"]
    own = sum(not c.get("derived") for c in claims)  # "512 balances" only restates two others
    tested = sum(not c.get("derived") and c["verdict"] != "not tested" for c in claims)
    if claims and n < MIN_SEEDS:
        which = "the one claim the study tests cannot" if tested == 1 else f"none of the {tested} claims the study tests can"
        s.append(f"With {count(n, 'seed')} {which} be confirmed or refuted ({seeds_advice(True)}); the "
                 f"claims table gives the side {'it leans' if tested == 1 else 'each leans'} to"
                 + (f"; {own - tested} more {'is' if own - tested == 1 else 'are'} not tested" if own > tested else "")
                 + "".join(f"; “{c['claim']}” follows from the first two" for c in claims
                           if c.get("derived") and c["verdict"] != "not tested")
                 + ".")
    elif claims:
        parts = []
        for verdict in ("confirmed", "refuted", "inconclusive", "not tested"):
            which = [c["claim"] for c in claims if c["verdict"] == verdict and not c.get("derived")]
            if which:
                parts.append(f"{len(which)} {'is' if len(which) == 1 else 'are'} {verdict}"
                             + (f" ({'; '.join(f'“{w}”' for w in which)})" if verdict in ("confirmed", "refuted")
                                else ""))
        derived = "".join(f" “{c['claim']}”, which follows from the first two, is {c['verdict']}."
                          for c in claims if c.get("derived") and c["verdict"] != "not tested")
        s.append(f"Of the study's {own} claims with a test of their own, " + ", ".join(parts[:-1])
                 + (" and " if len(parts) > 1 else "") + parts[-1] + "." + derived)
    s += [note for note in (near_test_noise(claims), looked, other_family(results), tables_apart(results)) if note]
    if results.get("targets"):
        s.append("Targets, on seed 0 alone (a profile's speed to a quality, not a verdict): "
                 + "; ".join(f"{t['target']}: {'reached' if t['reached'] else 'not reached'}" for t in results["targets"])
                 + ".")
    return s
