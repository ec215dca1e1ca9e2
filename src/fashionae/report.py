"""The study's report, ``report.html`` and ``report.md``, drawn from ``results.json``, the run
folders (reached through ``StudyFolder``/``RunFolder``; no dataset needed) and, for a study of
Fashion-MNIST, the source's numbers (``reference.py``, which results.json copies as they were).

It opens with a summary (the main figures and the verdicts) and a table of contents, then
the overview figures, what the study is, the claims and the tables (rendered by ``pages.py``),
the figures two or three to a row on a wide screen (one on a phone; a figure of images a row
of its own), and the provenance of every run. ``report.html`` links ``figures/``; with
``self_contained`` the figures are embedded (data: URIs), to send the page alone.
tests/test_report.py renders it in a browser.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from . import pages
from .claims import CONFIDENCE, FAMILY_CONFIDENCE, MIN_SEEDS, ci_level, far, mean_std
from .errors import UserError
from .explore import KNN_K
from .figures import FIGURE_GROUPS, draw_figures, takes_a_row
from .pages import EMPTY
from .progress import seconds_text
from .reference import CLASSIFIER_ENCODER, REFERENCE, for_classifier, reference_model
from .results import classes_of, confusion_text, encoder_of
from .runconfig import CONTROL
from .runs import LOCAL
from .studyfolder import StudyFolder
from .verdicts import classifier_lines, verdict_tables, without_intervals


def _f(s: dict | None, digits: int = 4, pct: bool = False) -> str:
    return EMPTY if s is None else mean_std(s, digits, pct)


def _v(x, digits=4, pct=False) -> str:
    return EMPTY if x is None else f"{x * (100 if pct else 1):.{digits}f}"


def _pca_row(results: dict, k: int | None) -> dict | None:
    """PCA with as many components as the latent has (capped at what was fitted)."""
    rows = (results["baselines"] or {}).get("pca", [])
    return max((r for r in rows if r["k"] <= k), key=lambda r: r["k"], default=None) if k else None


def _pca(results: dict, k: int | None) -> str:
    row = _pca_row(results, k)
    return EMPTY if row is None else f"{row['test_mse']:.4f}" + (f" (k={row['k']})" if row["k"] != k else "")


REFERENCE_COLUMNS = REPORT_TRAIN_VAL, AUTHOR_VAL, AUTHOR_TRAIN_VAL = (
    "report train / val", "author's code val", "author's code train (eval mode) / val")
PCA_SAME_K = "PCA test, same k"
OPTIONAL_COLUMNS = REFERENCE_COLUMNS + (PCA_SAME_K,)
# what only the report's page shows, not the terminal (after `study` or `report`): these columns, these tables
PAGE_ONLY_COLUMNS = (*REFERENCE_COLUMNS, "evidence", "threshold", "parameters", "what differs")
PAGE_ONLY_TABLES = ("baselines", "per-class")
# the autoencoders' caption where the source's columns are shown (on the page: not in a terminal)
SOURCE_COLUMNS = ("; the source's columns (its Table II, the author's result files) are for its model of the same "
                  "architecture, trained as the author did (the paper profile), beside every model of ours of that "
                  "architecture, however it was trained")


def _without_empty_columns(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The table without its reference columns that hold nothing (–) in every row: a source's
    numbers are for some models only (the author's code's classifiers for one encoder), and PCA
    only where the baselines were computed."""
    keep = [i for i, h in enumerate(header) if h not in OPTIONAL_COLUMNS or any(r[i] != EMPTY for r in rows)]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]


def _sentence(text: str | None) -> str:
    """A caption's further sentence, where there is one."""
    return f". {text}" if text else ""


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def verdict_text(c: dict) -> str:
    if c["verdict"] == "inconclusive":
        return f"inconclusive ({_count(c['seeds'], 'seed')}; leaning: {c['leaning']})"
    return c["verdict"]


def _effect(c: dict) -> tuple[str, str]:
    """(the effect, its interval or why there is none)."""
    if c["effect"] is None or not math.isfinite(c["effect"]):  # no seed, or a run diverged
        return EMPTY, c["ci_reason"] or EMPTY
    fmt = lambda x: _amount(x, c["unit"])  # noqa: E731
    # a gain is a difference with its sign turned: said, since the table shows both (64's MSE is
    # a difference above 512's, 1024's and conv's gains over it)
    named = " gain" if c["unit"] == "relative gain" else ""
    return fmt(c["effect"]) + named, f"[{fmt(c['ci'][0])}, {fmt(c['ci'][1])}]" if c["ci"] else c["ci_reason"]


def _amount(x: float, unit: str) -> str:
    """An effect as the report writes it: a relative one in %, a difference of accuracy in points.
    A relative change is above -100 % (a ratio of MSEs), and a gain (its sign turned) below
    +100 %: one that rounds to its bound says so ("> -100 %", "< +100 %"); on the other side a
    ratio has no bound, and a wide interval's end beyond 100 times is said so ("> +10,000 %").
    A difference of percentages lies within ±100 points: a wide interval's end beyond is shown at
    the bound. (results.json keeps every figure as computed.)"""
    if unit.startswith("relative"):
        if said := far(x):
            return f"{said} %"
        shown = f"{100 * x:+,.1f}"  # (+1,197.5 %, as "> +10,000 %" is written)
        if unit == "relative" and shown == "-100.0":  # (-1 itself only by underflow: exp(-700) - 1)
            return "> -100 %"
        return "< +100 %" if unit == "relative gain" and shown == "+100.0" else f"{shown} %"
    return f"{min(max(x, -100), 100):+.2f} pts"  # a difference of percentages: an interval's end shown within reach


def _family(results: dict, table: str) -> str:
    """How a table's intervals were made: m of them, simultaneous (Bonferroni, as recorded)."""
    if why := without_intervals(results, table):
        return why
    m = max((e.get("intervals", 1) for e in verdict_tables(results)[table]), default=1)
    if m == 1:
        return f"{CONFIDENCE} confidence intervals over seeds"
    return f"{m} intervals over seeds, each at {100 * ci_level(m):.2f} %: all hold at once with {CONFIDENCE} confidence"


def _claim_rows(claims: list[dict]) -> list[list[str]]:
    """One row per part of a claim, so a two-part claim shows the part that decides it; the
    claim, its verdict and its evidence on its first row."""
    rows = []
    for c in claims:
        if not c["parts"]:
            rows.append([c["claim"], verdict_text(c), EMPTY, *_effect(c), EMPTY, c["evidence"]])
        for i, p in enumerate(c["parts"]):
            # each part's own verdict, and where it is inconclusive its leaning: a claim leans as its
            # most contrary part, which need not be the part a reader looks at first
            leaning = f", leaning: {p['leaning']}" if p["verdict"] == "inconclusive" else ""
            part = p["part"] + (f" ({p['verdict']}{leaning})" if len(c["parts"]) > 1 else "")
            rows.append([c["claim"] if i == 0 else "", verdict_text(c) if i == 0 else "", part, *_effect(p),
                         p["threshold_meaning"], c["evidence"] if i == 0 else ""])
    return rows


def _ablation_effect(a: dict, figure: str) -> str:
    """An ablation's change with its interval; below MIN_SEEDS seeds, marked as no verdict, as a
    claim would be, even where the interval happens to exclude 0."""
    text = " ".join(_effect({"unit": "relative", **a[figure]}))
    if 1 < a["seeds"] < MIN_SEEDS and not a[figure].get("same_model"):  # (which says it is not judged)
        return text + f" ({a['seeds']} seeds: no verdict)"
    return text + (f": {a[figure]['verdict']}" if a[figure].get("verdict") in ("lower", "higher") else "")


# ------------------------------------------------------------------ tables

Table = tuple[str, str, list[str], list[list[str]]]  # (anchor, caption, header, rows); an anchor's tables share a section


# a seed that learned next to nothing: its test figure this near a trivial answer's (trained models
# are far from both: this study's autoencoders reach a third of the mean image's MSE after 2 epochs)
NEAR_MEAN_IMAGE = 0.9  # of the mean image's test MSE, or more
NEAR_GUESS = 0.05  # above a uniform guess's accuracy, or less (15 % of 10 classes, 55 % of 2)
SHORT_EPOCHS = 2  # a model that learned next to nothing in this many epochs or fewer: likely too little training


def near_trivial(results: dict, kind: str) -> tuple[list[tuple[dict, int, float]], float | None]:
    """The seeds of ``kind`` ("autoencoders", "classifiers") whose test figure is next to a trivial
    answer's, each (its group's record, seed, figure), and that answer's figure: the mean image's
    MSE (results.json's ``mean_image``: none where a folder of 0.3.22 or before computed no
    baselines), a uniform guess's accuracy. Not a divergence (a figure that is not a number) but a collapse, the same output for
    every image, or a blow-up short of one, which the means and the comparisons take in as any
    seed's figure."""
    if kind == "autoencoders":
        if not (mean := results.get("mean_image")):
            return [], None
        trivial, key = mean["test_mse"], "test_mse"
        near = lambda v: v >= NEAR_MEAN_IMAGE * trivial  # noqa: E731
    else:
        trivial, key = 1 / len(classes_of(results)), "test_acc"
        near = lambda v: v <= trivial + NEAR_GUESS  # noqa: E731
    return [(r, s, v) for r in results[kind] for s, v in zip(r["seeds"], r[key]["values"])
            if math.isfinite(v) and near(v)], trivial


def learned_nothing(results: dict, kind: str) -> str | None:
    """The seeds of ``kind`` that learned next to nothing (``near_trivial``), said in its table's
    caption so that they are read."""
    seeds, trivial = near_trivial(results, kind)
    if not seeds:
        return None
    if kind == "autoencoders":
        low = [f"{r['name']} seed {s} ({v:.4f})" for r, s, v in seeds]
        like = f"a test MSE near the mean image's, {trivial:.4f}, or above"
    else:
        low = [f"{r['name']} seed {s} ({100 * v:.2f} %)" for r, s, v in seeds]
        like = f"a test accuracy near a uniform guess's, {100 * trivial:.2f} %, or below"
    return (f"Learned next to nothing ({like}): {', '.join(low)}; likely a collapse (the same output for every "
            "image), a blow-up or too little training, which counts in the means and in every comparison that reads "
            f"its seed, as any seed does: see {'their' if len(low) > 1 else 'its'} curves")


def tables(results: dict, terminal: bool = False) -> list[Table]:
    """The report's tables; ``terminal``: their captions without what only the page shows."""
    fashion = results.get("reference") is not None  # the source's figures, and their columns, are Fashion-MNIST's
    out: list[Table] = []
    if results["claims"]:
        out.append(("claims", "The study's claims, tested (" + _family(results, "claims") + ")",
                    ["claim", "verdict", "part", "effect", "CI", "threshold", "evidence"], _claim_rows(results["claims"])))
    ae_rows = []
    for ae in results["autoencoders"]:
        theirs = reference_model(ae)
        r, a = (REFERENCE[source]["autoencoders"].get(theirs, {}) for source in ("report", "author_code"))
        row = [ae["name"], str(ae["epochs"]), _f(ae["train_eval_mse"]), _f(ae["train_mse"]),
               _f(ae["val_mse"]), _f(ae["test_mse"]), f"{ae['best_epoch']['mean']:.0f}"]
        if fashion:
            row += [f"{_v(r.get('train_mse'))} / {_v(r.get('val_mse'))}" if "train_mse" in r else r.get("note", EMPTY),
                    _v(a.get("val_mse"))]
        ae_rows.append(row + [_pca(results, ae["latent"]),
                              f"{ae['parameters']:,}", seconds_text(ae['seconds']['mean'])])
    header = (["model", "epochs", "train (eval mode)", "train (training mode)", "val", "test", "best epoch"]
              + ([REPORT_TRAIN_VAL, AUTHOR_VAL] if fashion else []) + [PCA_SAME_K, "parameters", "seconds"])
    header, ae_rows = _without_empty_columns(header, ae_rows)
    table_ii = REPORT_TRAIN_VAL in header  # a model of the source's Table II is among them
    out.append(("autoencoders", "Autoencoders: MSE per pixel; every figure is the final model's, the best epoch is "
                "where validation was lowest" + (SOURCE_COLUMNS if table_ii and not terminal else "")
                + _sentence(learned_nothing(results, "autoencoders")), header, ae_rows))
    clf_rows = []
    for c in results["classifiers"]:
        encoder = encoder_of(results, c)
        r, a = (for_classifier(source, encoder).get(c["strategy"]) for source in ("report", "author_code"))
        row = [c["name"] + (" (control)" if c["strategy"] == CONTROL else ""), c["encoder"] or EMPTY,
               "paper (Sigmoid)" if c["paper_head"] else "logits", str(c["epochs"]),
               _f(c["train_eval_acc"], 2, True), _f(c["train_acc"], 2, True), _f(c["val_acc"], 2, True),
               _f(c["test_acc"], 2, True)]
        if fashion:
            row += [f"{_v(r['train_acc'], 1, True)} / {_v(r['val_acc'], 1, True)}" if r else EMPTY,
                    f"{_v(a['train_eval_acc'], 1, True)} / {_v(a['val_acc'], 1, True)}" if a else EMPTY]
        clf_rows.append(row + [seconds_text(c['seconds']['mean'])])
    if clf_rows:
        header = (["strategy", "encoder", "head", "epochs", "train (eval mode)", "train (training mode)", "val",
                   "test"] + ([REPORT_TRAIN_VAL, AUTHOR_TRAIN_VAL] if fashion else [])
                  + ["seconds"])
        out.append(("classifiers", "Classification: accuracy, %" + _sentence(learned_nothing(results, "classifiers")),
                    *_without_empty_columns(header, clf_rows)))
    b = results["baselines"]
    if b:  # two tables, each in its unit: the reconstructions' MSE, then the classifier's accuracy
        ext = REFERENCE["external"]
        rows = [[f"PCA, k = {r['k']}", _v(r["val_mse"]), _v(r["test_mse"]),
                 _v(ext.get("pca_test_mse", {}).get(str(r["k"])))] for r in b["pca"]]
        rows.append(["mean image", _v(b["mean_image"]["val_mse"]), _v(b["mean_image"]["test_mse"]),
                     _v(ext.get("mean_image_test_mse"))])
        lr = b["logistic_regression"]
        acc_rows = [[f"logistic regression on pixels ({'converged within' if lr.get('converged') else 'not converged in'}"
                     f" {lr['max_iter']} iterations)", _v(lr["val_acc"], 2, True), _v(lr["test_acc"], 2, True),
                     _v(ext.get("pixel_logistic_regression_acc"), 1, True)]]
        n = 4 if fashion else 3  # the reference points are Fashion-MNIST's
        out.append(("baselines", f"Baselines (fitted on {b['train_size']:,} training images): reconstruction, "
                    "MSE per pixel" + ("; reference: published test figures of the same methods on all of "
                                       "Fashion-MNIST, from outside the study" if fashion else ""),
                    ["baseline", "val MSE", "test MSE", "reference test MSE"][:n], [r[:n] for r in rows]))
        out.append(("baselines", "Baseline classifier (fitted on the same images): accuracy, %"
                    + ("; reference: as above" if fashion else ""),
                    ["baseline", "val accuracy, %", "test accuracy, %", "reference test accuracy, %"][:n],
                    [r[:n] for r in acc_rows]))
    if results["classifiers"]:
        clfs = results["classifiers"]
        rows = [[name] + [_f(c["per_class_acc"][i], 1, True) for c in clfs]
                for i, name in enumerate(classes_of(results))]
        rows.append(["most confused (seed 0)"] + [confusion_text(c["most_confused"]) for c in clfs])
        out.append(("per-class", "Per-class test accuracy, %", ["class"] + [c["name"] for c in clfs], rows))
    if results.get("ablation"):
        epochs = {a["name"]: a["epochs"] for a in results["autoencoders"]}
        out.append(("ablation", "Ablation: what each change does to the MSE (" + _family(results, "ablation") + ")",
                    ["change", "baseline → variant", "what differs", "seeds", "epochs", "val MSE, baseline",
                     "val MSE, variant", "val MSE change [CI]", "test MSE change [CI]"],
                    [[a["change"], f"{a['baseline']} → {a['variant']}", differs_text(a.get("differs", {})),
                      str(a["seeds"]),
                      " → ".join(dict.fromkeys(str(epochs[n]) for n in (a["baseline"], a["variant"]))),
                      _f(a["val_mse"]["baseline"]), _f(a["val_mse"]["variant"]),
                      _ablation_effect(a, "val_mse"), _ablation_effect(a, "test_mse")] for a in results["ablation"]]))
    if lines := classifier_lines(results.get("ablation", [])):
        out.append(("ablation-classifiers", "Ablation: what each change of encoder does to the classifiers' "
                    "accuracy (" + _family(results, "ablation-classifiers") + ")",
                    ["change", "baseline → variant", "strategy", "seeds", "val accuracy, baseline, %",
                     "val accuracy, variant, %", "val accuracy change [CI]", "test accuracy change [CI]"],
                    [[a["change"], f"{a['baseline']} → {a['variant']}", a["strategy"], str(a["seeds"]),
                      _f(a["val_acc"]["baseline"], 2, True), _f(a["val_acc"]["variant"], 2, True),
                      _ablation_effect(a, "val_acc"), _ablation_effect(a, "test_acc")] for a in lines]))
    explored = [(a["name"], a["explore"]) for a in results["autoencoders"] if a.get("explore")]
    if explored:
        out.append(("latent", "Latent space: the frozen latent as a feature (each autoencoder's seed-0 run; test set)",
                    ["autoencoder", "latent size", f"k-NN accuracy (k={KNN_K}), %", "linear probe accuracy, %", "fitted on"],
                    [[name, str(e["latent"]), _v(e["knn_acc"], 2, True),
                      _v(e["linear_probe_acc"], 2, True), f"{e['fit_images']:,} training images"]
                     for name, e in explored]))
    if results.get("targets"):
        out.append(("targets", "Targets (judged on validation figures of seed 0)",
                    ["target", "reached", "epoch", "training seconds into the study", "best value"],
                    [[t["target"], "yes" if t["reached"] else "no", str(t["epoch"] or EMPTY),
                      seconds_text(t['seconds_into_study']) if t["reached"] else EMPTY, f"{t['best']:.4f}"]
                     for t in results["targets"]]))
    return out


def differs_text(differs: dict) -> str:
    """An ablation line's differing settings, as a study file names them: "dropout 0.2 → 0"."""
    def value(v) -> str:
        if v is None:
            return "all"  # (the subsets: all images)
        return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)
    return "; ".join(f"{k.split('.', 1)[-1]} {value(b)} → {value(v)}"
                     for k, (b, v) in sorted(differs.items())) or EMPTY


def _ablation_summary(ablation: list[dict], figure: str = "val_mse") -> str:
    """Which changes of the ablation move the validation figure (MSE, or for its classifier
    lines accuracy) with ``FAMILY_CONFIDENCE``, and which way."""
    mse = figure == "val_mse"
    quantity = "the validation MSE" if mse else "the classifiers' validation accuracy"
    changes = "changes" if mse else "classifier comparisons"
    def name(a: dict) -> str:
        return f"“{a['change']}”" + (f" on {a['strategy']}" if "strategy" in a else "")

    def effect(a: dict) -> str:
        return _amount(a[figure]["effect"], a[figure].get("unit", "relative"))

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
        return (f"With {_count(seeds, 'seed')} {whose} no verdict (that takes {MIN_SEEDS} seeds, chosen before the "
                f"run: a new experiment with --seeds {MIN_SEEDS} or more); "
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
                + (f"{verb} {quantity} at {CONFIDENCE} confidence." if verb else
                   f"is not shown to move {quantity}: "
                   + (f"{a[figure]['ci_reason']}." if a[figure].get("ci_reason") else "its interval holds 0.")) + note)
    phrases = [f"{len(by[v])} {verb if len(by[v]) > 1 else verb + 's'} {{it}} at {CONFIDENCE} confidence ({'; '.join(map(said, by[v]))})"
               for v, verb in (("lower", "lower"), ("higher", "raise")) if by[v]]
    if rest and phrases:
        phrases.append(f"{rest} {'is' if rest == 1 else 'are'} not shown to move {{it}} (no interval wholly on one "
                       "side of 0)")
    elif rest:
        phrases.append(f"none moves {{it}} at {CONFIDENCE} confidence")
    phrases = [p.format(it=quantity if k == 0 else "it") for k, p in enumerate(phrases)]
    family = "" if mse else " (their intervals a family of their own, apart from the MSE's)"
    return (f"Of the ablation's {len(judged)} {changes}" + (" with a figure on every seed" if diverged else "")
            + family + ", "
            + "; ".join(phrases) + "." + note)


def another_look(results: dict) -> str | None:
    """The summary's sentence on a study whose verdicts were read before with other seeds
    (``seed_history``): a verdict after another look is weaker than its interval says."""
    history, n = results.get("seed_history") or [], results.get("seeds", 1)
    if len(history) > 1 and (results["claims"] or results.get("ablation")):
        return (f"This study folder's earlier reports had {', then '.join(map(str, history[:-1]))} "
                f"seed{'s' * (history[-2] != 1)}, and this one has {n}: a verdict read after another look at the "
                "same study is weaker than its interval says (optional stopping, docs/claims.md); read one the "
                f"earlier looks did not show as a new experiment, planned with {_count(n, 'seed')}.")
    return None


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
                f"{FAMILY_NAMES[t]} made {_count(was, 'comparison')}, and makes {m} now" for t, was, m in changed)
            + ": more comparisons make each interval wider, fewer narrower, so a verdict may read otherwise than "
            "it did for that alone" + ("; and a comparison dropped after a look leaves the others' verdicts weaker "
                                       "than their intervals say (docs/claims.md)"
                                       if any(m < was for _, was, m in changed) else "") + ".")


def terminal_tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of the tables a terminal shows after a study: the report's,
    without what only its page shows (``PAGE_ONLY_COLUMNS``, ``PAGE_ONLY_TABLES``), the
    summary's caveat of another look (``another_look``) with the first table of verdicts, and
    each table's of another family (``other_family``) with it."""
    out, look = [], another_look(results)
    for anchor, caption, header, rows in tables(results, terminal=True):
        if anchor in ("claims", "ablation") and look:
            caption, look = f"{caption}. {look}", None
        if anchor not in PAGE_ONLY_TABLES:
            keep = [i for i, h in enumerate(header) if h not in PAGE_ONLY_COLUMNS]
            if anchor == "ablation" and (note := _not_one_change(results)):  # its "what differs" is page only
                caption += f"{' ' if caption.endswith('.') else '. '}{note}"
            if anchor in FAMILY_NAMES and (family := other_family(results, (anchor,))):
                caption += f"{' ' if caption.endswith('.') else '. '}{family}"
            out.append((caption, [header[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    return out


def _not_one_change(results: dict) -> str | None:
    """The ablation's lines that change more than one setting, said (the summary's sentence)."""
    several = [a for a in results.get("ablation", []) if len(a.get("differs", {})) > 1]
    return ("Not one change alone: " + "; ".join(f"“{a['change']}” changes {differs_text(a['differs'])}"
                                                 for a in several) + ".") if several else None


def summary(results: dict) -> list[str]:
    """Three to five sentences: what was run, the main figures, the verdicts."""
    n, aes, clfs = results.get("seeds", 1), results["autoencoders"], results["classifiers"]
    dataset = "Fashion-MNIST" if results.get("reference") else results.get("dataset", "its dataset")
    val = "the test set (the author's protocol)" if results.get("val") == "test" else "held-out training images"
    s = [f"The {results['study']} study ({results['profile']} profile) trained {_count(len(aes), 'autoencoder')}"
         + (f" and {_count(len(clfs), 'classifier')}" if clfs else "")
         + f" on {dataset} with {_count(n, 'seed')}, validated on {val}."]
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
    collapsed = {kind: [r for r, _, _ in near_trivial(results, kind)[0] if r.get("strategy") != CONTROL]
                 for kind in ("autoencoders", "classifiers")}  # (the control is expected to learn little)
    if any(collapsed.values()):
        def said(kind: str, seeds: list[dict]) -> str:  # (a group's record once per seed)
            groups = list({id(r): r for r in seeds}.values())
            return f"{kind[:-1] if len(groups) == 1 else kind} " + ", ".join(
                f"{r['name']} ({sum(x is r for x in seeds)} of {_count(len(r['seeds']), 'seed')})" for r in groups)
        epochs = max(r["epochs"] for seeds in collapsed.values() for r in seeds)
        s.append("Learned next to nothing: " + "; ".join(said(k, seeds) for k, seeds in collapsed.items() if seeds)
                 + ": a test figure near a trivial answer's (the tables say which seeds), "
                 + (f"likely too little training in {_count(epochs, 'epoch')}, or a collapse" if epochs <= SHORT_EPOCHS
                    else "likely a collapse or a blow-up")
                 + "; each counts in the means and in every comparison below as any seed does.")
    ranked = sorted((a for a in aes if a["name"] not in diverged), key=lambda a: a["test_mse"]["mean"])
    if ranked:
        # PCA beside the best linear autoencoder that PCA was fitted at (k = its latent size)
        beside = [(a, row) for a in ranked for row in [_pca_row(results, a["latent"])]
                  if row and row["k"] == a["latent"]]
        s.append(f"The lowest mean test MSE per pixel is {ranked[0]['name']}'s, {_f(ranked[0]['test_mse'])}"
                 + (f", the highest {ranked[-1]['name']}'s, {_f(ranked[-1]['test_mse'])}" if len(ranked) > 1 else "")
                 + (f"; PCA with {beside[0][1]['k']} components reaches {beside[0][1]['test_mse']:.4f} "
                    f"({beside[0][0]['name']}: {_f(beside[0][0]['test_mse'])})" if beside else "") + ".")
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
        s.append(f"The highest mean test accuracy {whose}, {_f(tops[0]['test_acc'], 2, True)} % (a uniform guess: "
                 f"{100 / len(classes_of(results)):.2f} %"
                 + (f"; the random-frozen control: {_f(control['test_acc'], 2, True)} %" if control else "")
                 + (f"; logistic regression on the pixels: {100 * pixels['test_acc']:.2f} %" if pixels else "") + ").")
    if len(aes) + len(trained) > 1:
        judges = [name for name, present in (("the claims", results["claims"]),
                                             ("the ablation", results.get("ablation"))) if present]
        s.append("These rank means over seeds" + (f"; which differences are real is for {' and '.join(judges)} "
                                                  "to say, of the pairs they compare (no other pair is shown to "
                                                  "differ)." if judges else ", and say nothing of which "
                                                  "differences are real."))
    if results.get("ablation"):
        s.append(_ablation_summary(results["ablation"]))
        if note := _not_one_change(results):
            s.append(note)
    if lines := classifier_lines(results.get("ablation", [])):
        s.append(_ablation_summary(lines, "val_acc"))
    claims = results["claims"]
    own = sum(not c.get("derived") for c in claims)  # "512 balances" only restates two others
    tested = sum(not c.get("derived") and c["verdict"] != "not tested" for c in claims)
    if claims and n < MIN_SEEDS:
        which = "the one claim the study tests cannot" if tested == 1 else f"none of the {tested} claims the study tests can"
        s.append(f"With {_count(n, 'seed')} {which} be confirmed or refuted (that takes {MIN_SEEDS}); the "
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
    s += [note for note in (another_look(results), other_family(results)) if note]
    if results.get("targets"):
        s.append("Targets, on seed 0 alone (a profile's speed to a quality, not a verdict): "
                 + "; ".join(f"{t['target']}: {'reached' if t['reached'] else 'not reached'}" for t in results["targets"])
                 + ".")
    return s


# ------------------------------------------------------------------ provenance

RUN_COLUMNS = ["run", "device", "precision", "CPU / GPU", "threads", "processes", "host", "executor", "sessions",
               "seconds"]  # of ``provenance``'s rows


def provenance(folder: StudyFolder, results: dict) -> tuple[list[list[str]], list[list[str]]]:
    """(items about the whole study, one row per run: ``RUN_COLUMNS``)."""
    run = folder.run_of(results["autoencoders"][0]["runs"][0])
    sessions = [folder.run(r["run"]).sessions() for r in results["runs"]]

    def across(key: str) -> str:  # one value, or each with its number of runs (a study run over two commits)
        seen = [v for run in sessions for v in dict.fromkeys(str(s.get(key) or EMPTY) for s in run)]
        counts = Counter(seen).most_common()  # ties in the order first seen
        if len(counts) == 1:
            return counts[0][0]
        return (", ".join(f"{v} ({n} run{'s' * (n > 1)})" for v, n in counts)
                + (" (a run resumed under another counts under each)" if len(seen) > len(sessions) else ""))
    items = [[k, across(k)] for k in ("fashionae", "torch", "python", "platform", "git_commit")]
    if data := run.data_record():
        h, w = run.config().model.image_size
        classes = run.classes()
        items.append(["dataset", f"{results.get('dataset')} from {data.get('source')}: {h}x{w} images, "
                                 f"{len(classes)} classes ({', '.join(classes)})"])
    timing = results.get("timing") or {}
    if timing:
        items.append(["wall time of the last `study` invocation that trained",
                      f"{seconds_text(timing['last_invocation_seconds'])} s"])
        items.append(["executor", str(timing.get("executor", LOCAL))])
        if timing.get("command"):
            items.append(["command", timing["command"]])
    hosts = sorted({s.get("host") or EMPTY for run in sessions for s in run})
    items.append(["nodes", ", ".join(hosts)])
    splits = sorted({(r["val_indices_sha256"] or EMPTY)[:16] for r in results["runs"]})
    items.append(["held-out split (SHA-256 of its indices)", ", ".join(splits)])
    rows = [[r["run"], r["device"] or EMPTY, r["precision"] or EMPTY, str(r["hardware"]), str(r["threads"]),
             str(r.get("processes", 1)), str(r["host"] or EMPTY), str(r["executor"]), str(r.get("sessions", 1)),
             seconds_text(r['seconds'])]
            for r in results["runs"]]
    return items, rows


# ------------------------------------------------------------------ writing

SECTIONS = {"overview": "Overview", "about": "About this study", "claims": "Claims",
            "autoencoders": "Autoencoders", "classifiers": "Classifiers", "baselines": "Baselines",
            "latent": "Latent space", "per-class": "Per-class accuracy", "ablation": "Ablation",
            "ablation-classifiers": "Ablation: classifiers",
            "targets": "Targets", "figures": "Figures", "provenance": "Provenance"}
NOTES = {  # under the table they explain
    "claims": f"A verdict needs at least {MIN_SEEDS} seeds and an interval wholly on one side of the claim's "
              "threshold; otherwise it is inconclusive, with the side the mean leans to. The claims are judged "
              "together, so their intervals are simultaneous (Bonferroni: with m intervals, each at "
              f"1 − {1 - FAMILY_CONFIDENCE:.2g}/m) and a verdict holds with {CONFIDENCE} confidence even "
              "among all the others. An effect read against two thresholds is "
              "one interval (conv's two parts; “beats scratch” and “competitive”, the same difference with its sign "
              "turned), and “l_size 512 balances quality and cost” tests nothing of its own: its rows repeat the "
              "two claims before it. An effect is the mean of the per-seed effects, a ratio of MSEs on the log "
              "scale (the geometric mean, with an interval that cannot reach below -100 %, a gain's above "
              "+100 %); a difference of accuracies lies within ±100 points, and an interval's end beyond them "
              "(few seeds, a wide spread) is shown at the bound; ± in the evidence is the standard deviation over seeds. The intervals are over seeds, "
              "on this one test set.",
    "autoencoders": "Train figures are re-measured in eval mode after each epoch (the honest estimate); "
                    "the training-mode column averages the loss during the epoch in training mode (dropout, if "
                    "any, active), as the author's code also recorded.",
    "classifiers": "encoder: the autoencoder run whose encoder a classifier starts from (scratch and the "
                   "random-frozen control take only its architecture); head: logits (the logits go straight to the "
                   "cross-entropy) or the author's paper head (a Sigmoid before it).",
    "ablation": "Each line compares two autoencoders; what differs lists every setting in which they do (one, "
                "for a change of one thing; the change's own name is the study file's words); the change "
                "is the variant's MSE relative to the baseline's, paired by seed, with its t-interval over the "
                "seeds, both on the log scale, where ratios add (so an interval never reaches -100 %; negative: "
                "the variant reconstructs better); the table's intervals are simultaneous "
                "(Bonferroni over this table's intervals, a family of their own: where there is a claims' table, it "
                "is another, so the same difference can carry a narrower interval there). As for a claim, a difference is real "
                "only with at "
                f"least {MIN_SEEDS} seeds and an interval wholly on one side of 0, and the change then says "
                "“lower” or “higher”. Epochs are shown as baseline → variant where they differ.",
    "ablation-classifiers": "Each line is a change of the ablation whose two autoencoders both had a classifier "
                            "trained with the strategy: the variant's encoder's accuracy minus the baseline's, "
                            "in percentage points, paired by seed, with its t-interval over the seeds (an end "
                            "beyond ±100 points, where few seeds spread widely, is shown at that bound, which a "
                            "difference of accuracies cannot pass); the table's intervals are simultaneous, a "
                            "family of their own. As for the MSE, a "
                            f"difference is real only with at least {MIN_SEEDS} seeds and an interval wholly on "
                            "one side of 0 (“higher” or “lower”). The scratch strategy takes only the encoder's "
                            "architecture, so its line measures the architecture without the pre-training.",
}


REFERENCE_NOTES = {  # appended to NOTES when the table has reference columns
    "autoencoders": "The “report” columns are the source document's numbers; the author's code's are its "
                    "published result files (validation = test set, 60 epochs).",
    "classifiers": f"The “report” column holds the source document's numbers, which are for the "
                   f"{CLASSIFIER_ENCODER['report']} encoder; the author's code's are for the "
                   f"{CLASSIFIER_ENCODER['author_code']} encoder (its result files). A column is left out when no "
                   "classifier here is on its encoder.",
}


def _notes(anchor: str, header: list[str]) -> list[str]:
    notes = [NOTES[anchor]] if anchor in NOTES else []
    if anchor in REFERENCE_NOTES and any(h in REFERENCE_COLUMNS for h in header):
        notes = [" ".join(notes + [REFERENCE_NOTES[anchor]])]
    return notes


def write_report(out: str | Path, results: dict, self_contained: bool = False) -> Path:
    """results.json, figures/, report.md and report.html, written together (``StudyFolder.write_results``);
    a report that cannot be drawn (a bug) leaves results.json alone, its pages before gone."""
    folder = StudyFolder(out)
    with folder.staged_figures() as staged:
        try:
            markdown, html = _pages(folder, results, staged, self_contained)
        except (UserError, KeyboardInterrupt):  # a full disk, a damaged file, a stop: all kept as it was
            raise
        except Exception:
            folder.write_results(results)
            raise
        folder.write_results(results, markdown, html)
    return folder / folder.REPORT_HTML


def _pages(folder: StudyFolder, results: dict, staged: Path, self_contained: bool) -> tuple[str, str]:
    """report.md and report.html, their figures drawn into ``staged`` (``StudyFolder.staged_figures``)."""
    figures = draw_figures(folder, results, staged)
    items, run_rows = provenance(folder, results)
    about = [p for p in (results.get("description"), results.get("profile_note")) if p] + [
        "Validation is the test set here (the author's protocol): the best epoch, chosen on validation "
        "figures, has seen the test set (a study refuses the best encoder and targets there)."
        if results.get("val") == "test"
        else "The test set is never used to choose anything: every choice (the best epoch; the best "
        "encoder and the targets, where the study asks for them) is made on validation figures (held-out "
        "training images)."]
    if results.get("reference") and not results["claims"]:
        about.append("None of the source study's claims compares models that this study trains, so none "
                     "is tested here.")
    if not results.get("reference"):
        about.append("The study's claims and reference numbers are about Fashion-MNIST, so they are left out "
                     "on this dataset.")
    wide = [f for _, f, _ in figures if takes_a_row(f)]
    groups = [pages.Figures([(f, c) for s, f, c in figures if s == g], heading, wide)
              for g, heading in FIGURE_GROUPS.items()]
    sections = [pages.Section("overview", SECTIONS["overview"],
                              [pages.Figures([(f, c) for g, f, c in figures if g == "overview"])]),
                pages.Section("about", SECTIONS["about"], about)]
    # a table under its section's short name, its caption (what it holds, how its intervals were made) above it;
    # the tables of one anchor (the baselines', one for each unit) in one section
    parts: dict[str, list] = {}
    for anchor, caption, header, rows in tables(results):
        parts.setdefault(anchor, []).extend([caption, pages.Table(header, rows)]
                                            + [pages.Note(n) for n in _notes(anchor, header)])
    sections += [pages.Section(anchor, SECTIONS[anchor], p) for anchor, p in parts.items()]
    sections.append(pages.Section("figures", SECTIONS["figures"], [g for g in groups if g.files]))

    def page(embedded: bool) -> pages.Page:  # report.md links its figures; report.html may embed them
        where = ["figures", "embedded in this page" if embedded else f"{folder.FIGURES}/, beside this page"]
        return pages.Page(f"fashionae study {results['study']} — profile {results['profile']}",
                          " ".join(summary(results)),
                          sections + [pages.Section("provenance", SECTIONS["provenance"], [
                              pages.Table(["item", "value"], items + [where]), pages.Table(RUN_COLUMNS, run_rows)])])
    return pages.markdown_page(page(False), staged), pages.html_page(page(self_contained), staged, self_contained)
