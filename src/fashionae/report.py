"""The study's report, ``report.html`` and ``report.md``, drawn from ``results.json``, the run
folders (reached through ``StudyFolder``/``RunFolder``; no dataset needed) and, for a study of
Fashion-MNIST, the source's numbers (``reference.py``, which results.json copies as they were).

It opens with a summary (``summary.py``: the main figures and the verdicts) and a table of contents, then
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
from .claims import CONFIDENCE, FAMILY_CONFIDENCE, MIN_SEEDS, accuracy_error, ci_level, test_images
from .errors import UserError
from .explore import KNN_K
from .figures import FIGURE_GROUPS, draw_figures, takes_a_row
from .pages import EMPTY
from .progress import count, seconds_text
from .reference import CLASSIFIER_ENCODER, REFERENCE, for_classifier, reference_model
from .results import classes_of, confusion_text, encoder_of, near_trivial, pca_row
from .runconfig import CONTROL
from .runs import LOCAL
from .studyfolder import StudyFolder
from .summary import FAMILY_NAMES, another_look, not_one_change, other_family, summary
from .verdicts import classifier_lines, verdict_tables, without_intervals
from .wording import amount, differs_text, stat, value


def _pca(results: dict, k: int | None) -> str:
    row = pca_row(results, k)
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


def verdict_text(c: dict) -> str:
    if c["verdict"] == "inconclusive":
        return f"inconclusive ({count(c['seeds'], 'seed')}; leaning: {c['leaning']})"
    return c["verdict"]


def _effect(c: dict) -> tuple[str, str]:
    """(the effect, its interval or why there is none)."""
    if c["effect"] is None or not math.isfinite(c["effect"]):  # no seed, or a run diverged
        return EMPTY, c["ci_reason"] or EMPTY
    fmt = lambda x: amount(x, c["unit"])  # noqa: E731
    # a gain is a difference with its sign turned: said, since the table shows both (64's MSE is
    # a difference above 512's, 1024's and conv's gains over it)
    named = " gain" if c["unit"] == "relative gain" else ""
    return fmt(c["effect"]) + named, f"[{fmt(c['ci'][0])}, {fmt(c['ci'][1])}]" if c["ci"] else c["ci_reason"]


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
    if results["claims"]:  # (a terminal leaves out those not tested, which the page lists with why)
        shown = [c for c in results["claims"] if c["verdict"] != "not tested" or not terminal]
        untested = len(results["claims"]) - len(shown)
        out.append(("claims", "The study's claims, tested (" + _family(results, "claims") + ")"
                    + (f"; {count(untested, 'other')} not tested here (report.md says why)" if untested else ""),
                    ["claim", "verdict", "part", "effect", "CI", "threshold", "evidence"], _claim_rows(shown)))
    ae_rows = []
    for ae in results["autoencoders"]:
        theirs = reference_model(ae)
        r, a = (REFERENCE[source]["autoencoders"].get(theirs, {}) for source in ("report", "author_code"))
        row = [ae["name"], str(ae["epochs"]), stat(ae["train_eval_mse"]), stat(ae["train_mse"]),
               stat(ae["val_mse"]), stat(ae["test_mse"]), f"{ae['best_epoch']['mean']:.0f}"]
        if fashion:
            row += [f"{value(r.get('train_mse'))} / {value(r.get('val_mse'))}" if "train_mse" in r else r.get("note", EMPTY),
                    value(a.get("val_mse"))]
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
               stat(c["train_eval_acc"], 2, True), stat(c["train_acc"], 2, True), stat(c["val_acc"], 2, True),
               stat(c["test_acc"], 2, True)]
        if fashion:
            row += [f"{value(r['train_acc'], 1, True)} / {value(r['val_acc'], 1, True)}" if r else EMPTY,
                    f"{value(a['train_eval_acc'], 1, True)} / {value(a['val_acc'], 1, True)}" if a else EMPTY]
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
        rows = [[f"PCA, k = {r['k']}", value(r["val_mse"]), value(r["test_mse"]),
                 value(ext.get("pca_test_mse", {}).get(str(r["k"])))] for r in b["pca"]]
        rows.append(["mean image", value(b["mean_image"]["val_mse"]), value(b["mean_image"]["test_mse"]),
                     value(ext.get("mean_image_test_mse"))])
        lr = b["logistic_regression"]
        acc_rows = [[f"logistic regression on pixels ({'converged within' if lr.get('converged') else 'not converged in'}"
                     f" {lr['max_iter']} iterations)", value(lr["val_acc"], 2, True), value(lr["test_acc"], 2, True),
                     value(ext.get("pixel_logistic_regression_acc"), 1, True)]]
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
        rows = [[name] + [stat(c["per_class_acc"][i], 1, True) for c in clfs]
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
                      stat(a["val_mse"]["baseline"]), stat(a["val_mse"]["variant"]),
                      _ablation_effect(a, "val_mse"), _ablation_effect(a, "test_mse")] for a in results["ablation"]]))
    if lines := classifier_lines(results.get("ablation", [])):
        out.append(("ablation-classifiers", "Ablation: what each change of encoder does to the classifiers' "
                    "accuracy (" + _family(results, "ablation-classifiers") + ")",
                    ["change", "baseline → variant", "strategy", "seeds", "val accuracy, baseline, %",
                     "val accuracy, variant, %", "val accuracy change [CI]", "test accuracy change [CI]"],
                    [[a["change"], f"{a['baseline']} → {a['variant']}", a["strategy"], str(a["seeds"]),
                      stat(a["val_acc"]["baseline"], 2, True), stat(a["val_acc"]["variant"], 2, True),
                      _ablation_effect(a, "val_acc"), _ablation_effect(a, "test_acc")] for a in lines]))
    explored = [(a["name"], a["explore"]) for a in results["autoencoders"] if a.get("explore")]
    if explored:
        out.append(("latent", "Latent space: the frozen latent as a feature (each autoencoder's seed-0 run; test set)",
                    ["autoencoder", "latent size", f"k-NN accuracy (k={KNN_K}), %", "linear probe accuracy, %", "fitted on"],
                    [[name, str(e["latent"]), value(e["knn_acc"], 2, True),
                      value(e["linear_probe_acc"], 2, True), f"{e['fit_images']:,} training images"]
                     for name, e in explored]))
    if results.get("targets"):
        out.append(("targets", "Targets (judged on validation figures of seed 0)",
                    ["target", "reached", "epoch", "training seconds into the study", "best value"],
                    [[t["target"], "yes" if t["reached"] else "no", str(t["epoch"] or EMPTY),
                      seconds_text(t['seconds_into_study']) if t["reached"] else EMPTY, f"{t['best']:.4f}"]
                     for t in results["targets"]]))
    return out


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
            if anchor == "ablation" and (note := not_one_change(results)):  # its "what differs" is page only
                caption += f"{' ' if caption.endswith('.') else '. '}{note}"
            if anchor in FAMILY_NAMES and (family := other_family(results, (anchor,))):
                caption += f"{' ' if caption.endswith('.') else '. '}{family}"
            out.append((caption, [header[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    return out


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
        return (", ".join(f"{v} ({count(n, 'run')})" for v, n in counts)
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


def _notes(anchor: str, header: list[str], results: dict) -> list[str]:
    notes = [NOTES[anchor]] if anchor in NOTES else []
    if anchor in REFERENCE_NOTES and any(h in REFERENCE_COLUMNS for h in header):
        notes = [" ".join(notes + [REFERENCE_NOTES[anchor]])]
    if anchor == "claims" and (said := test_set_error(results)):
        notes = [" ".join(notes + [said])]
    return notes


def test_set_error(results: dict) -> str | None:
    """The claims' note on the test set's own sampling error at its size and the accuracies here,
    which the intervals over seeds do not include (docs/claims.md)."""
    scored = [(test_images(c), c["test_acc"]["mean"]) for c in results["classifiers"]
              if c["strategy"] != CONTROL and test_images(c) and math.isfinite(c["test_acc"]["mean"])]
    if not scored:
        return None
    n = min(k for k, _ in scored)
    errors = sorted(accuracy_error(p, k) for k, p in scored)
    spread = f"{errors[0]:.1f}" + (f" to {errors[-1]:.1f}" if f"{errors[-1]:.1f}" != f"{errors[0]:.1f}" else "")
    return (f"Those test images are {n:,}" + (" or more" if any(k != n for k, _ in scored) else "")
            + f": another test set of their size would typically move each classifier's accuracy by about {spread} points "
            "(√(p(1 − p)/n), its sampling error), and a difference of two by up to about √2 times as much "
            "(less where they err on the same images). The summary names any verdict within two such errors "
            "of its threshold.")


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
                                            + [pages.Note(n) for n in _notes(anchor, header, results)])
    sections += [pages.Section(anchor, SECTIONS[anchor], p) for anchor, p in parts.items()]
    sections.append(pages.Section("figures", SECTIONS["figures"], [g for g in groups if g.files]))

    def page(embedded: bool) -> pages.Page:  # report.md links its figures; report.html may embed them
        where = ["figures", "embedded in this page" if embedded else f"{folder.FIGURES}/, beside this page"]
        return pages.Page(f"fashionae study {results['study']} — profile {results['profile']}",
                          " ".join(summary(results)),
                          sections + [pages.Section("provenance", SECTIONS["provenance"], [
                              pages.Table(["item", "value"], items + [where]), pages.Table(RUN_COLUMNS, run_rows)])])
    return pages.markdown_page(page(False), staged), pages.html_page(page(self_contained), staged, self_contained)
