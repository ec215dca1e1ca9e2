import time

import numpy as np
import pytest
import torch

from fashionae import baselines
from fashionae.baselines import baselines_fault, compute_baselines
from fashionae.cli import main
from fashionae.data import Splits, make_splits
from fashionae.errors import UserError


def test_baselines_match_a_direct_computation(tiny):
    splits = make_splits(tiny, "holdout", train_subset=800, eval_subset=300)
    b = compute_baselines(splits, logreg_max_iter=100)
    pca_test = {r["k"]: r["test_mse"] for r in b["pca"]}
    train = splits.train_x.reshape(800, -1).double().numpy() / 255
    test = splits.test_x.reshape(len(splits.test_x), -1).double().numpy() / 255
    # PCA by hand: the top-k right singular vectors of the centred training data
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    for k in (16, 64):
        w = vt[:k]
        direct = np.mean(((test - mean) @ w.T @ w + mean - test) ** 2)
        assert abs(pca_test[k] - direct) < 1e-5
    assert abs(b["mean_image"]["test_mse"] - np.mean((test - mean) ** 2)) < 1e-6
    assert [r["k"] for r in b["pca"]] == [16, 32, 64, 128, 256, 512, 784]
    errors = [r["test_mse"] for r in b["pca"]]
    assert errors == sorted(errors, reverse=True)
    assert b["logistic_regression"]["test_acc"] > 0.5  # the synthetic classes are separable
    assert baselines_fault(b) is None  # what compute_baselines writes is what a reader accepts


GOOD = {"train_size": 8, "val_size": 4, "test_size": 4, "pca": [{"k": 16, "val_mse": 0.1, "test_mse": 0.2}],
        "mean_image": {"val_mse": 0.3, "test_mse": 0.3}, "logistic_regression": {"val_acc": 0.5, "test_acc": 0.5}}


@pytest.mark.parametrize("edit, fault", [
    ([], "it is not a JSON object"),
    ({"train_size": "8"}, "its set sizes are missing or not numbers"),
    ({"test_size": None}, "its set sizes are missing or not numbers"),
    ({"pca": {"k": 16}}, "its PCA figures are missing or malformed"),
    ({"pca": [{"k": 16, "val_mse": 0.1}]}, "its PCA figures are missing or malformed"),
    ({"pca": [GOOD["pca"][0], {"k": 32}]}, "its PCA figures are missing or malformed"),  # one bad row of two
    ({"mean_image": {"val_mse": True, "test_mse": 0.3}}, "its mean-image figures are missing or malformed"),
    ({"logistic_regression": None}, "its logistic-regression figures are missing or malformed"),
    ({"mean_image": {"val_mse": 0.3}}, "its mean-image figures are missing or malformed"),  # each figure is asked
    ({"logistic_regression": {"val_acc": 0.5}}, "its logistic-regression figures are missing or malformed"),
])
def test_edited_baselines_are_named_by_what_they_lack(edit, fault):
    assert baselines_fault(GOOD) is None
    assert baselines_fault(edit if isinstance(edit, list) else {**GOOD, **edit}) == fault


def test_baselines_edited_into_other_numbers_are_known_by_their_digest():
    """baselines.json records its own digest (one written before it did records none, and passes)."""
    from fashionae.files import sealed
    good = sealed(GOOD, baselines.BASELINES_SEAL)
    assert baselines_fault(good) is None
    assert baselines_fault({**good, "logistic_regression": {"val_acc": 0.5, "test_acc": 0.99}}) == (
        "it does not match the digest it records")


def test_a_single_class_is_refused_before_any_fit(tiny, data_dir, tmp_path, capsys):
    splits = make_splits(tiny, train_subset=1)
    with pytest.raises(UserError, match=r"^the baselines' training set \(1 images\) holds a single class, and their "
                                        r"logistic regression needs two: use a larger training subset .*, or, for a "
                                        r"dataset of one class, leave the baselines out \(\[baselines\] enabled = false\)$"):
        compute_baselines(splits, logreg_max_iter=100)
    # by a study, before anything trains
    study = tmp_path / "s.toml"
    study.write_text('[train]\nepochs = 1\ntrain_subset = 100\n[[autoencoders]]\nname = "a"\narch = "conv"\n'
                     "[baselines]\ntrain_subset = 1\n")
    for plan in (["--plan"], []):  # --plan too
        assert main(["study", str(study), "--data-dir", str(data_dir), "--no-verify", "--out", str(tmp_path / "out"),
                     *plan]) == 2
        assert "holds a single class" in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs").exists()


def test_baselines_of_two_datasets_of_one_name_are_not_mistaken_for_each_other(tmp_path):
    """A dataset of your own is known by its files too (its name is its folder's)."""
    from fashionae.baselines import write_baselines
    from fashionae.datasets import load_dataset
    for seed, folder in enumerate(("a/data", "b/data")):
        images = np.random.default_rng(seed).random((60, 8, 8), dtype=np.float32)
        labels = np.arange(60) % 3
        (tmp_path / folder).mkdir(parents=True)
        np.savez(tmp_path / folder / "d.npz", x_train=images[:40], y_train=labels[:40], x_test=images[40:],
                 y_test=labels[40:])
    a, b = (load_dataset(str(tmp_path / f)) for f in ("a/data", "b/data"))
    assert a.name == b.name
    first = write_baselines(tmp_path / "baselines.json", a, "holdout", None, None, 50, lambda m: None)
    second = write_baselines(tmp_path / "baselines.json", b, "holdout", None, None, 50, lambda m: None)
    assert second["mean_image"] != first["mean_image"]  # computed again, not the first dataset's


def test_baselines_are_measured_on_the_images_the_runs_are(tiny, tmp_path):
    """A study whose runs validate and test on their first N images (the smoke profile's 300)
    gets baselines measured on the same N, and baselines measured on every image are computed
    again for it; a study on every image keeps the settings (and so the files) it had."""
    from fashionae.baselines import write_baselines
    from fashionae.study import load_study
    from helpers import PAPER
    assert load_study(PAPER, "smoke").baselines.eval_subset == 300
    assert load_study(PAPER, "quick").baselines.eval_subset is None
    quiet = lambda m: None  # noqa: E731
    whole = write_baselines(tmp_path / "b.json", tiny, "holdout", 400, None, 20, quiet)
    part = write_baselines(tmp_path / "b.json", tiny, "holdout", 400, 100, 20, quiet)
    assert whole["test_size"] == len(tiny.test_labels) > 100 and "eval_subset" not in whole["settings"]
    assert part["test_size"] == part["val_size"] == 100 and part["settings"]["eval_subset"] == 100


def _splits(sizes, size=28, seed=0, flip_test=False) -> Splits:
    """Uniform random uint8 pixels (every dimension a real one) with a bright band whose
    position is the class (0: bottom, 1: top). ``flip_test``: the test labels are the wrong ones,
    so that a figure measured on the test set cannot pass for the validation set's."""
    g = torch.Generator().manual_seed(seed)
    sets = []
    for n in sizes:
        y = torch.arange(n) % 2
        x = torch.randint(0, 256, (n, size, size), generator=g, dtype=torch.uint8)
        x[y == 1, :2], x[y == 0, -2:] = 255, 255
        sets += [x, y]
    if flip_test:
        sets[5] = 1 - sets[5]
    return Splits(*sets, "synthetic")


def _capture_logreg(monkeypatch) -> list:
    """The logistic regressions compute_baselines fits, kept for the test to read."""
    fitted, fit = [], baselines.fit_quietly
    monkeypatch.setattr(baselines, "fit_quietly", lambda est, x, y: fitted.append(est) or fit(est, x, y))
    return fitted


def test_validation_figures_are_the_validation_sets(monkeypatch):
    """PCA at every k keeps exactly k components, and each val_* figure (what a study's runs
    are chosen by, beside their own val figures) is measured on the validation split, not the test
    set: on data of more real dimensions than any k, checked against numpy by hand."""
    splits = _splits((800, 200, 150), flip_test=True)
    fitted = _capture_logreg(monkeypatch)
    b = compute_baselines(splits, logreg_max_iter=200)
    assert (b["train_size"], b["val_size"], b["test_size"]) == (800, len(splits.val_x), 150) == (800, 200, 150)
    train, val, test = (x.reshape(len(x), -1).double().numpy() / 255
                        for x in (splits.train_x, splits.val_x, splits.test_x))
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    rows = {r["k"]: r for r in b["pca"]}
    for k in (16, 128, 512):
        w = vt[:k]
        for name, x in (("val_mse", val), ("test_mse", test)):
            assert abs(rows[k][name] - np.mean(((x - mean) @ w.T @ w + mean - x) ** 2)) < 1e-5, (k, name)
    for name, x in (("val_mse", val), ("test_mse", test)):
        assert abs(b["mean_image"][name] - np.mean((x - mean) ** 2)) < 1e-6, name
    [logreg] = fitted
    lr = b["logistic_regression"]
    assert lr["val_acc"] == np.mean(logreg.predict(val.astype(np.float32)) == splits.val_y.numpy()) > 0.9
    assert lr["test_acc"] == np.mean(logreg.predict(test.astype(np.float32)) == splits.test_y.numpy()) < 0.1


def test_logistic_regression_runs_the_iterations_asked_and_says_whether_it_converged(monkeypatch):
    """logreg_max_iter is the fit's limit (recorded as such), and ``converged`` tells a fit cut
    short from one that finished: a reader of baselines.json knows whether the accuracy is final."""
    fitted = _capture_logreg(monkeypatch)
    short = compute_baselines(_splits((200, 50, 50), size=8), logreg_max_iter=1)["logistic_regression"]
    assert fitted[-1].max_iter == 1 and list(fitted[-1].n_iter_) == [1]
    assert short["max_iter"] == 1 and short["converged"] is False
    full = compute_baselines(_splits((200, 50, 50), size=8), logreg_max_iter=5000)["logistic_regression"]
    assert fitted[-1].max_iter == 5000 and 1 < fitted[-1].n_iter_[0] < 5000
    assert full["max_iter"] == 5000 and full["converged"] is True


def _own_data(folder, seed=0):
    """A dataset of your own: 40 training and 20 test 8x8 images of 3 classes, in ``folder``."""
    from fashionae.datasets import load_dataset
    images = np.random.default_rng(seed).random((60, 8, 8), dtype=np.float32)
    labels = np.arange(60) % 3
    folder.mkdir(parents=True)
    np.savez(folder / "d.npz", x_train=images[:40], y_train=labels[:40], x_test=images[40:], y_test=labels[40:])
    return load_dataset(str(folder))


def test_baselines_of_another_dataset_are_refused_by_its_name(tiny, tmp_path):
    """baselines.json records the dataset it was computed on, and the baselines command (which
    keeps others' figures) names it when asked for another: a refusal that named no setting
    ("other settings: ;") would leave the user guessing what differs."""
    from fashionae.baselines import baseline_settings, changed_settings, write_baselines
    mine = _own_data(tmp_path / "mine")
    assert baseline_settings("holdout", None, None, 50, tiny) == {
        "val": "holdout", "train_subset": None, "logreg_max_iter": 50, "dataset": "fashion-mnist"}
    assert baseline_settings("holdout", None, None, 50, mine)["dataset"] == "mine"
    path = tmp_path / "b" / "baselines.json"
    path.parent.mkdir()
    first = write_baselines(path, tiny, "holdout", 200, 100, 20, lambda m: None, keep_others=True)
    assert first["settings"]["dataset"] == "fashion-mnist"
    with pytest.raises(UserError, match=rf"^{path} holds baselines computed with other settings: dataset "
                                        rf"fashion-mnist \(now mine\), dataset_sha256 none \(now {mine.sha256}\), "
                                        r"eval_subset 100 \(now all\), train_subset 200 \(now all\); choose another"):
        write_baselines(path, mine, "holdout", None, None, 20, lambda m: None, keep_others=True)
    # each key of either side is compared; the dataset's only where the asked settings name one
    assert changed_settings({"dataset": "a", "val": "holdout"}, {"dataset": "b", "val": "holdout"}) == [
        ("dataset", "a", "b")]
    assert changed_settings({"dataset": "a", "dataset_sha256": "ab", "val": "test"}, {"val": "holdout"}) == [
        ("val", "test", "holdout")]
    assert changed_settings({"eval_subset": 100}, {}) == [("eval_subset", 100, None)]
    assert changed_settings({}, {"eval_subset": 100}) == [("eval_subset", None, 100)]


def test_the_baselines_say_each_step_before_it_and_time_themselves(tmp_path):
    """Each step is said first (on the full dataset each takes a minute or more), through the
    log the caller gives (the study's, the command's), and ``seconds`` (which the command
    prints) is the time they took."""
    from fashionae.baselines import write_baselines
    lines = []
    t0 = time.perf_counter()
    b = write_baselines(tmp_path / "baselines.json", _own_data(tmp_path / "mine"), "test", None, None, 50,
                        lines.append)  # every training image: none held out
    assert 0 < b["seconds"] <= time.perf_counter() - t0
    assert lines == ["baselines: PCA of 40 training images (k = 16, 32, 40) and the mean image",
                     "baselines: logistic regression on pixels (40 images, at most 50 iterations)"]


def test_a_fit_cut_short_is_said_whatever_the_warning_filters(monkeypatch):
    """``converged`` does not hang on the warnings being shown: under ``-W ignore`` (or a second
    fit from the same line, once a warning was shown) a fit cut short is still said to be."""
    import warnings
    from sklearn.linear_model import LogisticRegression
    s = _splits((200, 10, 10), size=8)
    x, y = s.train_x.reshape(200, -1).numpy() / 255.0, s.train_y.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert baselines.fit_quietly(LogisticRegression(max_iter=1), x, y) is False
    assert baselines.fit_quietly(LogisticRegression(max_iter=5000), x, y) is True


def test_damaged_or_edited_baselines_are_computed_again_not_kept_nor_refused(tiny, tmp_path):
    """What write_baselines writes is sealed; a file of these settings edited since is computed again,
    and with keep_others one of other settings edited since is not refused (it is no one's figures)."""
    import json
    from fashionae.baselines import computed_baselines, write_baselines
    from fashionae.files import seal_broken
    path, quiet = tmp_path / "b.json", (lambda m: None)
    b = write_baselines(path, tiny, "holdout", 400, 100, 20, quiet)
    assert not seal_broken(json.loads(path.read_text()), baselines.BASELINES_SEAL)
    assert baselines.BASELINES_SEAL in json.loads(path.read_text())
    edited = {**b, "logistic_regression": {**b["logistic_regression"], "test_acc": 0.99}}
    path.write_text(json.dumps(edited))
    assert computed_baselines(path, b["settings"]) is None
    again = write_baselines(path, tiny, "holdout", 400, 100, 20, quiet, keep_others=True)
    assert again["logistic_regression"]["test_acc"] == b["logistic_regression"]["test_acc"]
    path.write_text(json.dumps(edited))  # edited, and of other settings than those asked now
    other = write_baselines(path, tiny, "holdout", 400, 50, 20, quiet, keep_others=True)
    assert other["settings"]["eval_subset"] == 50
