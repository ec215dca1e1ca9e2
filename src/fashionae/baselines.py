"""Reference points computed on the same splits as the runs: PCA reconstruction, the
mean image, and logistic regression on raw pixels (scikit-learn does the work)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .data import Dataset, Splits, make_splits
from .errors import UserError
from .files import read_rebuildable_json, seal_broken, sealed, write_json
from .settings import is_number

if TYPE_CHECKING:
    from .study import Study

PCA_KS = (16, 32, 64, 128, 256, 512, 1024)
BASELINES_SEAL = "baselines_sha256"  # baselines.json's digest of the rest of itself (before 0.3.23: none)


def _flat(images) -> np.ndarray:
    return images.reshape(len(images), -1).numpy().astype(np.float32) / 255.0


def mean_image_mse(splits: Splits) -> dict:
    """The MSE per pixel of the training set's mean image, the answer of a model that learned
    nothing (the same output for every image), on the validation and test images."""
    mean = _flat(splits.train_x).mean(0)
    return {"val_mse": float(np.mean((_flat(splits.val_x) - mean) ** 2)),
            "test_mse": float(np.mean((_flat(splits.test_x) - mean) ** 2))}


def fit_quietly(estimator, x, y) -> bool:
    """Fit a scikit-learn estimator; return whether it converged (instead of warning)."""
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(x, y)
    return not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def check_classes(splits: Splits) -> None:
    """The logistic-regression baseline needs two classes in its training set: refused in one
    line (by a study, before anything trains)."""
    if len(splits.train_y.unique()) < 2:
        raise UserError(f"the baselines' training set ({len(splits.train_y)} images) holds a single class, and "
                        "their logistic regression needs two: use a larger training subset (--train-subset; in a "
                        "study, [baselines] train_subset), or, for a dataset of one class, leave the baselines out "
                        "([baselines] enabled = false)")


def compute_baselines(splits: Splits, logreg_max_iter: int, seed: int = 0,
                      log=lambda m: None) -> dict:
    """Each step says what it does first: on the full dataset each takes a minute or more."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    check_classes(splits)
    t0 = time.perf_counter()
    train, val, test = _flat(splits.train_x), _flat(splits.val_x), _flat(splits.test_x)
    ks = sorted({min(k, train.shape[1], len(train)) for k in PCA_KS})
    log(f"baselines: PCA of {len(train):,} training images (k = {', '.join(map(str, ks))}) and the mean image")
    pca = PCA(n_components=max(ks), svd_solver="full").fit(train)

    def pca_mse(x: np.ndarray, k: int) -> float:
        w = pca.components_[:k]
        recon = (x - pca.mean_) @ w.T @ w + pca.mean_
        return float(np.mean((recon - x) ** 2))

    log(f"baselines: logistic regression on pixels ({len(train):,} images, at most {logreg_max_iter} iterations)")
    logreg = LogisticRegression(max_iter=logreg_max_iter, random_state=seed)
    converged = fit_quietly(logreg, train, splits.train_y.numpy())
    return {
        "train_size": len(train), "val_size": len(val), "test_size": len(test),
        "pca": [{"k": k, "val_mse": pca_mse(val, k), "test_mse": pca_mse(test, k)} for k in ks],
        "mean_image": mean_image_mse(splits),
        "logistic_regression": {"val_acc": float(logreg.score(val, splits.val_y.numpy())),
                                "test_acc": float(logreg.score(test, splits.test_y.numpy())),
                                "max_iter": logreg_max_iter, "converged": converged},
        "seconds": time.perf_counter() - t0,
    }


def baselines_fault(b) -> str | None:
    """What is wrong with a baselines.json's content (the shape ``compute_baselines`` writes), or None."""
    def numbers(d, keys) -> bool:
        return isinstance(d, dict) and all(is_number(d.get(k)) for k in keys)
    if not isinstance(b, dict):
        return "it is not a JSON object"
    if not numbers(b, ("train_size", "val_size", "test_size")):
        return "its set sizes are missing or not numbers"
    if not isinstance(b.get("pca"), list) or not all(numbers(r, ("k", "val_mse", "test_mse")) for r in b["pca"]):
        return "its PCA figures are missing or malformed"
    if not numbers(b.get("mean_image"), ("val_mse", "test_mse")):
        return "its mean-image figures are missing or malformed"
    if not numbers(b.get("logistic_regression"), ("val_acc", "test_acc")):
        return "its logistic-regression figures are missing or malformed"
    if seal_broken(b, BASELINES_SEAL):
        return "it does not match the digest it records"
    return None


def baseline_settings(val: str, train_subset: int | None, eval_subset: int | None, logreg_max_iter: int,
                      data: Dataset | None = None) -> dict:
    """The settings baselines.json records, by which it is known again (with ``data``: the
    dataset's name and, for your own data, its files' digest too)."""
    return {"val": val, "train_subset": train_subset, "logreg_max_iter": logreg_max_iter,
            **({"dataset": data.name} if data else {}), **({"eval_subset": eval_subset} if eval_subset else {}),
            **({"dataset_sha256": data.sha256} if data and data.sha256 else {})}  # your own data: by its files too


def study_settings(study: Study, data: Dataset | None = None) -> dict:
    """``baseline_settings`` of a study's [baselines]."""
    b = study.baselines
    return baseline_settings(study.val, b.train_subset, b.eval_subset, b.logreg_max_iter, data)


def changed_settings(theirs: dict, asked: dict) -> list[tuple[str, object, object]]:
    """(key, there, asked) of each setting in which a baselines.json's ``theirs`` differs from
    ``asked``, the keys of either side: the dataset's only where ``asked`` names one (a report
    rebuilt without the dataset cannot tell them)."""
    keys = set(theirs) | set(asked)
    if "dataset" not in asked:
        keys -= {"dataset", "dataset_sha256"}
    return [(k, theirs.get(k), asked.get(k)) for k in sorted(keys) if theirs.get(k) != asked.get(k)]


def setting_text(key: str, value) -> str:
    """A baselines setting in words: a subset not given is all images; a setting not recorded, none."""
    return ("all" if key.endswith("_subset") else "none") if value is None else str(value)


def computed_baselines(path: Path, settings: dict) -> dict | None:
    """baselines.json, where it holds the figures of these ``settings`` (damaged or edited: not)."""
    old = read_rebuildable_json(path)
    return old if old and not baselines_fault(old) and old.get("settings") == settings else None


def write_baselines(path: Path, data: Dataset, val: str, train_subset: int | None, eval_subset: int | None,
                    logreg_max_iter: int, log: Callable[[str], None], keep_others: bool = False) -> dict:
    """baselines.json, computed unless it holds these settings already. One shape for the
    ``baselines`` command and the study: the figures and the ``settings`` they came from.
    ``eval_subset``: measured on the first N validation and test images, as the runs that share
    it are. ``keep_others``: refuse to replace baselines computed with other settings."""
    settings = baseline_settings(val, train_subset, eval_subset, logreg_max_iter, data)
    if done := computed_baselines(path, settings):
        return done
    old = read_rebuildable_json(path)
    if old and not baselines_fault(old) and keep_others:  # (damaged or edited: computed again)
        changed = ", ".join(f"{k} {setting_text(k, there)} (now {setting_text(k, now)})"
                            for k, there, now in changed_settings(old.get("settings") or {}, settings))
        raise UserError(f"{path} holds baselines computed with other settings: {changed}; "
                        "choose another --out, or delete it to compute these")
    splits = make_splits(data, val, train_subset, eval_subset)
    b = sealed({**compute_baselines(splits, logreg_max_iter, log=log), "settings": settings}, BASELINES_SEAL)
    write_json(path, b)
    return b
