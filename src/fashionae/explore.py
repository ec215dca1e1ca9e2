"""What a trained encoder learned: 2-D maps of the test set's latent codes, an
interpolation between two test images, and how good the frozen latent is as a feature
(k-nearest-neighbour and linear-probe accuracy). scikit-learn does the maps and probes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from . import plots
from .data import Dataset, Splits, make_splits
from .errors import UserError
from .files import read_rebuildable_json, refuse_unwritable_folder, sealed, write_json
from .inference import LoadedRun
from .plan import explored_run
from .progress import count
from .runfolder import RunFolder
from .studyfolder import StudyFolder, refuse_a_model_folder
from .settings import AUTOENCODER
from .study import Study
from .training import TrainConfig, to_inputs

FIT_IMAGES = 10_000  # training images the probes are fitted on (at most: those the run trained on)
MAP_IMAGES = 2_000   # test images on the t-SNE map
MAP_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
INTERPOLATION = "interpolation.png"


def map_file(kind: str) -> str:
    return f"latent_{kind}.png"


FIGURE_CAPTIONS = {  # each figure explore writes -> what it shows (the report's caption)
    map_file("pca"): "the test set's codes projected on their first two principal components",
    map_file("tsne"): "a t-SNE map of the test set's codes",
    INTERPOLATION: "images decoded along the line between the codes of two test images"}


def _embed(run: LoadedRun, images: torch.Tensor) -> np.ndarray:
    return run.embed(images).numpy()


PROBE_MAX_ITER = 300  # the linear probe's iterations
KNN_K = 5  # the k-NN classifier's neighbours


def feature_scores(train_z, train_y, test_z, test_y) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from .baselines import fit_quietly
    knn = KNeighborsClassifier(n_neighbors=KNN_K).fit(train_z, train_y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER))
    converged = fit_quietly(probe, train_z, train_y)
    return {"knn_acc": float(knn.score(test_z, test_y)), "linear_probe_acc": float(probe.score(test_z, test_y)),
            "linear_probe_converged": converged}


def explore(run_dir: str | Path, out: str | Path | None = None, data: Dataset | None = None,
            data_dir: str | None = None, verify: bool = True, tsne: bool = True,
            log=lambda m: None) -> dict:
    """The latent space of a run: maps, interpolation, k-NN and linear-probe scores, written with
    explore.json to ``out`` (default: the run's explore/ folder); returns the scores and ``out``."""
    t0 = time.perf_counter()
    folder = RunFolder(run_dir).require()
    run = LoadedRun(folder.path, "fp32")  # the same codes on every machine, as the interpolation's
    if not out and (folder / folder.EXPLORE).exists() and not (folder / folder.EXPLORE).is_dir():
        raise UserError(f"{folder / folder.EXPLORE} is a file, where explore writes the run's latent space; move it, "
                        "or give --out")
    out = Path(out) if out else folder / folder.EXPLORE
    refuse_unwritable_folder(out)  # said now, not after the minutes of work below
    model = folder.model_sha256()
    _refuse_others(out, folder, model)
    _refuse_the_studys_otherwise(out, folder, tsne)
    cfg = folder.config()
    data = data or folder.load_data(data_dir, verify)
    # the images the run itself was trained and tested on (a quick profile's subsets)
    s = make_splits(data, cfg.train.val, cfg.train.train_subset, cfg.train.eval_subset)
    classes = run.classes
    refuse_too_few(s, str(folder.path), cfg.train, "explore a run trained with")
    train_y, test_y = s.train_y[:FIT_IMAGES].numpy(), s.test_y.numpy()
    train_z, test_z = _embed(run, s.train_x[:FIT_IMAGES]), _embed(run, s.test_x)
    log(f"explore: k-NN and linear probe on {len(train_z):,} latent codes of {train_z.shape[1]} values")
    result = {"run": str(folder.path), "model_sha256": model, "tsne": tsne, "latent": int(train_z.shape[1]),
              "fit_images": len(train_z), "test_images": len(test_z), **feature_scores(train_z, train_y, test_z, test_y)}

    # explore.json names the run before any figure is written, so that the same command after
    # an interruption knows the figures as its own (until the end, it holds no scores); one of
    # this model's, finished, stays until the new one is whole
    if (read_rebuildable_json(out / folder.EXPLORE_JSON) or {}).get("model_sha256") != model:
        write_json(out / folder.EXPLORE_JSON, {k: result[k] for k in folder.EXPLORE_START})
    from sklearn.decomposition import PCA
    codes = test_z[:MAP_IMAGES]
    if np.ptp(codes, axis=0).max() == 0:  # no map to draw (and scikit-learn's t-SNE crashes on one)
        log("explore: every test image has the same latent code (a collapsed encoder): no maps")
        maps, tsne = [], False
    elif codes.shape[1] < 2:  # (a latent of 1: PCA's and t-SNE's two components cannot be fitted)
        log("explore: the latent code is one value: no 2-D maps")
        maps, tsne = [], False
    else:
        maps = [("pca", PCA(n_components=2).fit_transform(codes))]
    if tsne:
        from sklearn.manifold import TSNE
        log(f"explore: t-SNE map of {min(MAP_IMAGES, len(test_z)):,} test images")
        maps.append(("tsne", TSNE(n_components=2, init="pca", random_state=0,
                                  perplexity=min(30, len(codes) - 1)).fit_transform(codes)))
    figures = []
    for name, xy in maps:
        plots.scatter_map(f"test-set latent codes, {MAP_NAMES[name]} ({len(xy):,} images)", xy,
                          test_y[:MAP_IMAGES], classes, out / map_file(name))
        figures.append(map_file(name))

    if run.task == AUTOENCODER:  # interpolate between the first test images of two classes
        a, b = (int((s.test_y == c).nonzero()[0]) for c in _two_classes(s.test_y))
        with torch.inference_mode():
            ends = run.model.encoder(to_inputs(s.test_x[[a, b]], "cpu"))
            steps = torch.linspace(0, 1, 9)
            z = torch.stack([(1 - w) * ends[0] + w * ends[1] for w in steps])
            images = run.model.decoder(z).float()[:, 0].numpy()
        plots.image_rows([("", images)], out / INTERPOLATION, titles=[f"{w:.2f}" for w in steps])
        figures.append(INTERPOLATION)
    result["figures"] = figures
    result["seconds"] = time.perf_counter() - t0
    write_json(out / folder.EXPLORE_JSON, sealed(result, folder.EXPLORE_SEAL))
    return {**result, "out": str(out)}


def refuse_too_few(s: Splits, run: str, t: TrainConfig, advice: str) -> None:
    """A latent space to score needs KNN_K training images (the k-NN's neighbours) of two classes
    at least and 2 test images (a map): refused in one line, by ``explore`` and, before its runs,
    by a study that explores ``run`` (trained with ``t``). ``advice``: how to do without it, then
    what gives what is short: a larger subset where one cut it short, else a larger dataset."""
    def more(images: str, subset: str) -> str:
        return f"a larger {subset}" if getattr(t, subset) else f"a dataset of more {images}"
    few_train, few_test = len(s.train_y) < KNN_K, len(s.test_y) < 2
    if few_train or few_test:
        short = " and ".join(more(images, subset) for images, subset, few in (
            ("training images", "train_subset", few_train), ("test images", "eval_subset", few_test)) if few)
        raise UserError(f"{run}: {count(len(s.train_y), 'training image')} and "
                        f"{count(len(s.test_y), 'test image')}, where a latent space needs "
                        f"{KNN_K} training images at least (the k-NN score's neighbours) and 2 test images (a map); "
                        f"{advice} {short}")
    if len(s.train_y[:FIT_IMAGES].unique()) < 2:
        raise UserError(f"the first {min(len(s.train_y), FIT_IMAGES):,} training images of {run} hold a single class: "
                        "the k-NN and linear-probe scores need two at least (a dataset of one class has no latent "
                        f"space to score); {advice} " + ("a larger train_subset, if the dataset holds other classes"
                                                        if t.train_subset else "a dataset of two classes at least"))


def refuse_unexplorable(study: Study, data: Dataset) -> None:
    """``refuse_too_few`` for each autoencoder a study's [explore] names, before anything trains
    (``study`` and ``study --plan``), not after its runs."""
    for name in study.explore.autoencoders:
        t = next(a for a in study.autoencoders if a.name == name).train
        refuse_too_few(make_splits(data, t.val, t.train_subset, t.eval_subset), f"[explore] autoencoder {name}", t,
                       "take it out of [explore], or give it")


def _refuse_others(out: Path, folder: RunFolder, model: str) -> None:
    """What ``out`` holds is kept unless it is this run's latent space (its model's digest; a run's
    own explore/ folder is its own, wherever the run was moved or copied): another run's maps,
    or the user's own files under the names explore writes."""
    if out.resolve() == (folder / folder.EXPLORE).resolve():
        return
    refuse_a_model_folder(out)  # this run's own folder too: its maps go to its explore/
    before = read_rebuildable_json(out / folder.EXPLORE_JSON)
    if before is not None:
        same = (before["model_sha256"] == model if "model_sha256" in before  # (an older one: the run's path)
                else Path(before.get("run", "")).resolve() == folder.path.resolve())
        if not same:
            raise UserError(f"--out {out} holds the latent space of another model ({before.get('run')}, or a run "
                            "trained again since); choose another --out, or delete it to map this run")
        return
    # (an explore.json fashionae cannot read is not its own: it writes whole files only)
    taken = [name for name in (folder.EXPLORE_JSON, *map(map_file, MAP_NAMES), INTERPOLATION) if (out / name).exists()]
    if taken:
        raise UserError(f"--out {out} already holds {', '.join(taken)}, not written by fashionae explore; "
                        "nothing was written: choose another --out")


def _refuse_the_studys_otherwise(out: Path, folder: RunFolder, tsne: bool) -> None:
    """A study's run that its [explore] maps keeps the study's maps in its explore/: mapped there
    with t-SNE or without otherwise than the study asks, its report would lose them (until the
    study made them again); the same maps again are not refused."""
    if out.resolve() != (folder / folder.EXPLORE).resolve():
        return
    for home, run in StudyFolder.holding(folder.path):
        try:
            study = home.study()
        except UserError:  # (a damaged study.json: the study writes it again, and maps the run as it asks)
            continue
        asked = study.explore
        if asked.tsne != tsne and run in {explored_run(study, name) for name in asked.autoencoders}:
            raise UserError(f"{folder.path} is mapped by its study {home.path} ([explore] tsne = "
                            f"{str(asked.tsne).lower()}), whose report shows the maps in {out}: "
                            f"{'leave out --no-tsne' if asked.tsne else 'add --no-tsne'}, or give --out to map it "
                            "elsewhere")


def _two_classes(labels: torch.Tensor) -> tuple[int, int]:
    """T-shirt/top and Trouser for Fashion-MNIST: the first two classes present."""
    present = torch.unique(labels).tolist()
    return present[0], present[min(1, len(present) - 1)]
