"""Commands end to end, as a user runs them, each with an outcome that a wrong number would change.

Where the other test files already run a command through the command line, it is not repeated
here: eval (test_cli), study and report (test_report, test_datasets), explore (test_explore),
reconstruct and classify (test_images), bench (test_bench), study --executor ray
(test_scale_out). This file adds data, train-clf with every strategy, baselines and export.
"""

import json
import os
import re
import shlex

import pytest
import torch

from fashionae.cli import main
from helpers import cli, extra_or_skip, synthetic_images

FAST = ["--batch-size", "20", "--eval-subset", "200", "--train-eval-subset", "100", "--no-verify",
        "--device", "cpu", "--dropout", "0"]


def test_data_describes_the_files_it_found(capsys, data_dir):
    code, out, _ = cli(capsys, "data", "--data-dir", data_dir, "--no-verify")
    assert code == 0
    assert "11,000 train + 300 test images of 28x28, 10 classes, checksums not verified (--no-verify)" in out
    # the per-class counts are the labels' counts, in class order
    _, labels = synthetic_images(11_000, 0)
    counts = [int(n.replace(",", "")) for n in re.findall(r"\(([\d,]+) / [\d,]+\)", out.splitlines()[1])]
    assert counts == torch.bincount(labels, minlength=10).tolist()
    assert out.splitlines()[1].startswith("classes (training / test images): T-shirt/top (")


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    """Small 16x16 images whose class is a bright bar's row: a few times cheaper than 28x28.
    (Whether a trained encoder beats a random one is tested on the real data, test_real_data:
    these bars take an autoencoder longer to learn than a test can wait.)"""
    from fashionae.datasets import write_npz_dataset
    root = tmp_path_factory.mktemp("bars")
    x, y = synthetic_images(600, 0, size=16)
    xt, yt = synthetic_images(200, 1, size=16)
    write_npz_dataset(root / "bars", x.numpy(), y.numpy(), xt.numpy(), yt.numpy())
    return root / "bars"


@pytest.fixture(scope="module")
def encoder(bars, tmp_path_factory):
    out = tmp_path_factory.mktemp("ae") / "ae"
    assert main(["train-ae", "--dataset", str(bars), "--latent", "64", "--epochs", "1",
                 *FAST, "--out", str(out)]) == 0
    from fashionae.runfolder import RunFolder  # the command that resumes it, from anywhere, recorded
    assert RunFolder(out).environment()["command"] == (
        f"cd {shlex.quote(os.getcwd())} && OMP_NUM_THREADS={torch.get_num_threads()} ") + shlex.join(
        ["fashionae", "train-ae", "--dataset", str(bars), "--latent", "64", "--epochs", "1", *FAST, "--out", str(out)])
    return out


def printed_figures(out: str) -> dict:
    """The figures train-clf prints; its most confused pair as a count ("none": 0), and its
    classes where it names some."""
    m = re.search(r"val acc ([\d.]+) \(best ([\d.]+)\), test acc ([\d.]+); most confused: (?:(.+) taken for "
                  r"(.+) \((\d+)×\)|(none) \(no test image misclassified\));", out)
    return {"val_acc": float(m[1]), "best_val_acc": float(m[2]), "test_acc": float(m[3]),
            "most_confused": {"count": 0} if m[7] else {"true": m[4], "predicted": m[5], "count": int(m[6])}}


def test_train_clf_every_strategy(capsys, bars, encoder, tmp_path):
    acc = {}
    for strategy in ("frozen", "finetune", "scratch", "random-frozen"):
        out = tmp_path / strategy
        code, stdout, _ = cli(capsys, "train-clf", "--dataset", bars, "--strategy", strategy, "--encoder", encoder,
                              "--epochs", 2, "--lr", "3e-3", *FAST, "--out", out)
        assert code == 0
        summary = json.loads((out / "summary.json").read_text())
        # what the command prints is what the run folder holds
        printed = printed_figures(stdout)
        assert printed == {"val_acc": round(summary["val_acc"], 4), "best_val_acc": round(summary["best_val_acc"], 4),
                           "test_acc": round(summary["test_acc"], 4),
                           "most_confused": summary["most_confused"] if summary["most_confused"]["count"] else {"count": 0}}
        assert summary["epochs"] == 2 and sum(map(sum, summary["confusion_matrix"])) == 200
        acc[strategy] = summary["test_acc"]
    # the strategies that train their encoder learn the bars (10 classes: chance is 0.1)
    assert acc["finetune"] > 0.5 and acc["scratch"] > 0.5


def test_baselines_command(capsys, data_dir, tmp_path):
    code, out, _ = cli(capsys, "baselines", "--data-dir", data_dir, "--no-verify", "--train-subset", 500,
                       "--logreg-max-iter", 50, "--out", tmp_path / "b")
    assert code == 0
    b = json.loads((tmp_path / "b" / "baselines.json").read_text())
    assert b["train_size"] == 500
    pca = ", ".join(f"k={r['k']}: {r['test_mse']:.4f}" for r in b["pca"])
    assert out.startswith(f"PCA test MSE {pca}; mean image {b['mean_image']['test_mse']:.4f}; ")
    assert f"test accuracy {b['logistic_regression']['test_acc']:.4f}" in out
    mse = [r["test_mse"] for r in b["pca"]]
    # more components never reconstruct worse, and every k beats the mean image
    assert mse == sorted(mse, reverse=True) and mse[0] < b["mean_image"]["test_mse"]
    assert b["logistic_regression"]["test_acc"] > 0.9  # the bars are linearly separable

    # computed figures are never replaced: the same settings keep them, other settings are
    # refused, and a study's baselines belong to its study
    before = (tmp_path / "b" / "baselines.json").read_text()
    code, _, _ = cli(capsys, "baselines", "--data-dir", data_dir, "--no-verify", "--train-subset", 500,
                     "--logreg-max-iter", 50, "--out", tmp_path / "b")
    assert code == 0 and (tmp_path / "b" / "baselines.json").read_text() == before
    code, _, err = cli(capsys, "baselines", "--data-dir", data_dir, "--no-verify", "--train-subset", 400,
                       "--out", tmp_path / "b")
    assert (code, err) == (2, f"fashionae: error: {tmp_path / 'b' / 'baselines.json'} holds baselines computed with "
                              "other settings: logreg_max_iter 50 (now 200), train_subset 500 (now 400); choose another "
                              "--out, or delete it to compute these\n")
    assert (tmp_path / "b" / "baselines.json").read_text() == before
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.json").write_text('{"name": "s", "autoencoders": []}')
    code, _, err = cli(capsys, "baselines", "--out", tmp_path / "s")
    assert code == 2 and err == (f"fashionae: error: {tmp_path / 's'} is a study folder, whose baselines "
                                 "`fashionae study` computes with the study's settings; choose another --out\n")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text('{"model": {}, "train": {}}')  # a run folder, which holds one run's files
    code, _, err = cli(capsys, "baselines", "--out", tmp_path / "r")
    assert code == 2 and err == (f"fashionae: error: {tmp_path / 'r'} is a run folder, which holds one run's files; "
                                 "choose another --out\n")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["config.json"]
    (tmp_path / "r" / "config.json").write_text('{"name": "my web app"}')  # another tool's: not refused as a run
    code, _, err = cli(capsys, "baselines", "--out", tmp_path / "r", "--data-dir", "/nowhere/at/all")
    assert code == 2 and "run folder" not in err and "/nowhere/at/all" in err
    (tmp_path / "shoe.jpg").write_text("a photo")  # a file where the folder would be
    code, _, err = cli(capsys, "baselines", "--out", tmp_path / "shoe.jpg")
    assert (code, err) == (2, f"fashionae: error: --out {tmp_path / 'shoe.jpg'} is a file; give a folder\n")


def test_baselines_validate_and_measure_as_asked(capsys, data_dir, tmp_path):
    """--val and --eval-subset decide the images the figures are over, as for a run."""
    code, _, _ = cli(capsys, "baselines", "--data-dir", data_dir, "--no-verify", "--train-subset", 200,
                     "--eval-subset", 100, "--val", "test", "--logreg-max-iter", 20, "--out", tmp_path / "b")
    assert code == 0
    b = json.loads((tmp_path / "b" / "baselines.json").read_text())
    assert (b["train_size"], b["val_size"], b["test_size"]) == (200, 100, 100)
    assert b["settings"]["val"] == "test" and b["settings"]["eval_subset"] == 100
    # the validation set is the test set: the same images, the same figures
    assert b["pca"][0]["val_mse"] == b["pca"][0]["test_mse"]
    assert b["logistic_regression"]["val_acc"] == b["logistic_regression"]["test_acc"]
    # by default, as for training, on held-out training images
    code, _, _ = cli(capsys, "baselines", "--data-dir", data_dir, "--no-verify", "--train-subset", 200,
                     "--eval-subset", 100, "--logreg-max-iter", 20, "--out", tmp_path / "holdout")
    assert code == 0
    assert json.loads((tmp_path / "holdout" / "baselines.json").read_text())["settings"]["val"] == "holdout"


def test_export_classifier_predicts_as_torch(capsys, bars, encoder, tmp_path):
    extra_or_skip("onnx", "onnx", "onnxruntime", "onnxscript")
    import numpy as np
    import onnxruntime as ort
    import fashionae
    clf = tmp_path / "clf"
    assert cli(capsys, "train-clf", "--dataset", bars, "--strategy", "finetune", "--encoder", encoder,
               "--epochs", 1, *FAST, "--out", clf)[0] == 0
    path = tmp_path / "clf.onnx"
    code, out, _ = cli(capsys, "export", clf, "-o", path)
    assert code == 0 and "logits float32 [N, 10]" in out
    x, _ = synthetic_images(37, 5, size=16)  # an odd batch size: the batch axis is dynamic
    images = x.unsqueeze(1).float().div(255)
    logits = ort.InferenceSession(str(path)).run(None, {"images": images.numpy()})[0]
    run = fashionae.load(clf)
    assert np.abs(logits - run.model.logits(images).detach().numpy()).max() < 1e-4
    assert logits.argmax(1).tolist() == run.model.predict(images).tolist()


def test_baselines_prints_the_test_figures_not_the_validation_ones(capsys, tmp_path):
    """A dataset whose test images are unlike its training images (negated, their labels moved
    on by one): the validation figures (held-out training images) and the test figures differ,
    and the line printed is the test set's."""
    from fashionae.datasets import write_npz_dataset
    x_train, y_train = synthetic_images(360, 0)
    x_test, y_test = synthetic_images(120, 1)
    data = tmp_path / "shifted"
    write_npz_dataset(data, x_train, y_train, 255 - x_test, (y_test + 1) % 10)
    code, out, _ = cli(capsys, "baselines", "--dataset", data, "--logreg-max-iter", 30, "--out", tmp_path / "b")
    assert code == 0
    b = json.loads((tmp_path / "b" / "baselines.json").read_text())
    pca = ", ".join(f"k={r['k']}: {r['test_mse']:.4f}" for r in b["pca"])
    assert f"{b['pca'][0]['val_mse']:.4f}" != f"{b['pca'][0]['test_mse']:.4f}"  # (else the line could not tell)
    assert f"{b['mean_image']['val_mse']:.4f}" != f"{b['mean_image']['test_mse']:.4f}"
    assert f"{b['logistic_regression']['val_acc']:.4f}" != f"{b['logistic_regression']['test_acc']:.4f}"
    assert out.startswith(f"PCA test MSE {pca}; mean image {b['mean_image']['test_mse']:.4f}; logistic regression "
                          f"on pixels: test accuracy {b['logistic_regression']['test_acc']:.4f}  (")
