"""The figures of a study's report: which to draw, from ``results.json`` and the run folders
(their metrics, the saved validation samples, the latent views ``explore`` left), with their
captions; ``plots`` draws each one.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import plots
from .claims import CONFIDENCE
from .explore import FIGURE_CAPTIONS, INTERPOLATION
from .files import atomic_write
from .reference import author_curves, for_classifier, reference_model
from .results import classes_of, encoder_of
from .runconfig import CONTROL
from .studyfolder import StudyFolder
from .verdicts import classifier_lines, without_intervals

FIGURE_GROUPS = {"autoencoders": "Autoencoders", "classifiers": "Classifiers", "latent": "Latent space"}

Figure = tuple[str, str, str]  # (section, file in figures/, caption)
RECONSTRUCTIONS = "_reconstructions.png"  # the end of the reconstructions' figure's name: it takes a row

AUTHOR_EPOCH = "60,000 images at a constant learning rate"


def _here(ae: dict) -> str:
    """How many images an epoch of ours holds, beside the author's."""
    n = ae.get("images", {}).get("train")
    return f" (here: {n:,} images an epoch, the learning rate as the profile schedules it)" if n else ""


def _intervals(results: dict, table: str, scale: str = "") -> str:
    """How an ablation figure's intervals were made, or why it has none (``without_intervals``)."""
    if why := without_intervals(results, table):
        return f" ({why})"
    return (f", with its t-interval{' ' + scale if scale else ''} (the table's intervals hold all at once with "
            f"{CONFIDENCE} confidence)")


def draw_figures(folder: StudyFolder, results: dict, figs: Path) -> list[Figure]:
    """Draw every figure of ``folder``'s report into ``figs`` (a report's: ``StudyFolder.staged_figures``)."""
    curves = author_curves() if results.get("reference") else {"autoencoders": {}, "classifiers": {}}
    classes = classes_of(results)
    metrics = {r: folder.run_of(r).metrics() for e in results["autoencoders"] + results["classifiers"]
               for r in e["runs"]}
    out: list[Figure] = []

    def seeds(runs: list, figure: dict | None = None) -> str:
        """Over how many seeds a model's curves are drawn: those whose ``figure`` is a number
        (``plots._band`` leaves out a seed that diverged)."""
        diverged = sum(not math.isfinite(v) for v in figure["values"]) if figure else 0
        said = f"mean ± std over {len(runs)} seeds" if len(runs) > 1 else "one seed"
        if diverged == len(runs):
            return said + ", which diverged: no curve to draw"
        return said + (f", less the {diverged} that diverged" if diverged else "")

    aes = results["autoencoders"]
    # the paper encoder's linear models are a curve over l_size when they differ in it alone; where
    # one size is trained several ways (an ablation), or they differ in more (dropout), there is no
    # curve, and every model is a point of its own
    curve = [a for a in aes if a["arch"] == "linear" and a["encoder_type"] == "paper"]
    alike = all(a["settings"] == curve[0]["settings"] for a in curve)  # (settings: all but arch and latent)
    if len({a["latent"] for a in curve}) < len(curve) or len(curve) < 2 or not alike:  # one point is no curve
        curve = []
    linear = [(a["latent"], a["test_mse"]) for a in curve]
    others = [(a["name"], a["latent_size"], a["test_mse"]) for a in aes if a not in curve]
    # PCA with as many components as pixels reconstructs exactly (an MSE of about 1e-13 that
    # would squash the log axis): it is left out of the figure, kept in the baselines table
    pixels = math.prod(folder.run_of(aes[0]["runs"][0]).config().model.image_size)
    rows = (results["baselines"] or {}).get("pca", [])
    pca = [(r["k"], r["test_mse"]) for r in rows if r["k"] < pixels]
    if linear or pca:  # without a curve (one size, no baselines) the figure would be points alone
        name = "overview_mse_by_size.png"
        plots.mse_by_size("Test MSE against latent size", linear, pca, others, figs / name)
        drawn = (["the linear autoencoders"] if linear else []) + (["PCA at every k"] if pca else [])
        out.append(("overview", name, "Test MSE per pixel against the latent's size (log "
                    "scale): " + " and ".join(drawn) + (" as curves, " if len(drawn) > 1 else " as a curve, ")
                    + (", ".join(f"{n} at its {k:,} values" for n, k, _ in others)
                       + (" as points; " if len(others) > 1 else " as a point; ") if others else "")
                    + seeds(aes[0]["runs"]) + (f"; PCA with all {pixels} components (exact) left out"
                                               if len(pca) < len(rows) else "") + "."))
    name = "overview_val_curves.png"
    plots.overlaid_curves("Validation MSE of every autoencoder", [(a["name"], [metrics[r] for r in a["runs"]])
                          for a in aes], "val_loss", "validation MSE", figs / name)
    epochs = {min(len(metrics[r]) for r in a["runs"]) for a in aes}  # a std of one epoch is a bar, not a band
    spread = " (bars)." if epochs == {1} else " (bands; of one epoch, bars)." if 1 in epochs else " (bands)."
    out.append(("overview", name, "Validation MSE per epoch of every autoencoder on one "
                f"axis (log scale), {seeds(aes[0]['runs'])}" + (spread if len(aes[0]["runs"]) > 1 else ".")))

    if results.get("ablation"):
        name = "overview_ablation.png"
        plots.effects("Ablation: change of validation MSE", [(" ".join(a["change"].split()), a["val_mse"]["effect"],
                      a["val_mse"]["ci"]) for a in results["ablation"]], "change of validation MSE, %",
                      figs / name)
        out.append(("overview", name, "What each change does to the validation MSE: the "
                    "relative change, paired by seed, averaged" + _intervals(results, "ablation", "on the log scale")
                    + "; left of the dashed line the variant reconstructs better."))
    if lines := classifier_lines(results.get("ablation", [])):
        name = "overview_ablation_classifiers.png"
        plots.effects("Ablation: change of classifier accuracy", [(" ".join(a["change"].split()) + f"\n({a['strategy']})",
                      a["val_acc"]["effect"], a["val_acc"]["ci"]) for a in lines],
                      "change of validation accuracy, points", figs / name, scale=1)
        out.append(("overview", name, "What each change of encoder does to the "
                    "validation accuracy of the classifiers trained on both: the difference in points, paired by seed"
                    + _intervals(results, "ablation-classifiers") + "; right of the dashed line the variant's encoder "
                    "classifies better."))

    for i, ae in enumerate(aes, 1):
        name, author = f"fig{i}_ae_{ae['name']}.png", curves["autoencoders"].get(reference_model(ae))
        plots.curves(f"Fig. {i}: {ae['name']} autoencoder", [metrics[r] for r in ae["runs"]],
                     [("train_loss", "train (training mode)"), ("train_eval_loss", "train (eval mode)"),
                      ("val_loss", "validation")], "MSE per pixel", author, figs / name)
        out.append(("autoencoders", name, f"Fig. {i}: loss per epoch of the {ae['name']} autoencoder, "
                    f"{seeds(ae['runs'], ae['test_mse'])}" + (f"; dotted: the author's code, whose epochs are {AUTHOR_EPOCH}"
                                              + _here(ae) if author else "") + "."))
    k = len(aes) + 1
    name = f"fig{k}{RECONSTRUCTIONS}"
    if _reconstructions(folder, results, figs / name):
        out.append(("autoencoders", name, f"Fig. {k}: validation images (top row) and "
                    "their reconstructions by each autoencoder (seed 0)."))
    k += 1
    clfs = results["classifiers"]
    for c in sorted(clfs, key=lambda c: c["strategy"] == CONTROL):  # the control last
        name = f"fig{k}_clf_{c['name'].replace('/', '-')}.png"
        theirs = for_classifier("author_code", encoder_of(results, c))
        author = curves["classifiers"].get(c["strategy"]) if theirs else None
        plots.curves(f"Fig. {k}: {c['name']} classifier", [metrics[r] for r in c["runs"]],
                     [("train_acc", "train (training mode)"), ("train_eval_acc", "train (eval mode)"),
                      ("val_acc", "validation")], "accuracy, %", author, figs / name, scale=100)
        out.append(("classifiers", name, f"Fig. {k}: accuracy per epoch of the {c['name']} classifier"
                    + (" (control)" if c["strategy"] == CONTROL else "") + f", {seeds(c['runs'], c['test_acc'])}"
                    + ("; dotted: the author's code (l_size-1024 encoder, Sigmoid head)" if author else
                       "; the author's curves, of another encoder (l_size 1024), are not drawn"
                       if curves["classifiers"].get(c["strategy"]) else "") + "."))
        k += 1
    for c in (c for c in clfs if c["strategy"] in ("finetune", "scratch")):
        # the first seed's, or the first that did not diverge (one that did confused nothing: runs.no_confusion)
        steady = [i for i, v in enumerate(c["test_acc"]["values"]) if math.isfinite(v)]
        if not steady:
            continue
        name = f"fig{k}_confusion_{c['name'].replace('/', '-')}.png"
        plots.confusion(f"Fig. {k}: {c['name']}, test set", c["confusion_matrices"][steady[0]], classes, figs / name)
        out.append(("classifiers", name, f"Fig. {k}: confusion matrix of the {c['name']} classifier on the test "
                    f"set, each row (true class) normalised (seed {c['seeds'][steady[0]]}"
                    + (", the first that did not diverge" if steady[0] else "") + ")."))
        k += 1
    for ae in aes:  # latent-space views, where the study explored them (its first seed: plan.explored_run)
        run = folder.run_of(ae["runs"][0])
        for f in (ae["explore"] or {}).get("figures", []):
            name = f"latent_{ae['name']}_{f}"
            atomic_write(figs / name, (run / run.EXPLORE / f).read_bytes())
            out.append(("latent", name, f"Latent space of the {ae['name']} autoencoder (seed 0): "
                        f"{FIGURE_CAPTIONS.get(f, f[:-4].replace('_', ' '))}."))
    return out


def takes_a_row(file: str) -> bool:
    """A figure of images (the reconstructions, a latent interpolation): too small to read in a
    column of the page, it takes a row of its own."""
    return file.endswith((RECONSTRUCTIONS, f"_{INTERPOLATION}"))


def _reconstructions(folder: StudyFolder, results: dict, path: Path) -> bool:
    """The validation images saved with the study, reconstructed by each autoencoder (seed 0)."""
    import torch
    from .training import to_inputs
    if (samples := folder.samples()) is None:
        return False
    x = to_inputs(samples["images"], "cpu")
    classes = classes_of(results)
    rows = [("original", x[:, 0].numpy())]
    for ae in results["autoencoders"]:
        model = folder.run_of(ae["runs"][0]).load_model()
        with torch.inference_mode():
            rows.append((ae["name"], model.reconstruct(x).float()[:, 0].numpy()))
    plots.image_rows(rows, path, titles=[classes[i] for i in samples["labels"].tolist()])
    return True
