import json

import pytest
import torch

from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.models import ModelConfig
from fashionae.runfolder import RunFolder
from fashionae.runs import RunConfig, execute
from helpers import ON_DEVICE
from fashionae.training import TrainConfig


def test_explore_writes_maps_interpolation_and_scores(tiny, data_dir, tmp_path, capsys):
    t = TrainConfig(epochs=1, batch_size=50, train_subset=400, eval_subset=200, **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(latent=16), train=t), tmp_path / "ae", data=tiny, log=lambda m: None)
    assert main(["explore", str(tmp_path / "ae"), "--data-dir", str(data_dir), "--no-verify"]) == 0
    assert "k-NN" in capsys.readouterr().out
    folder = tmp_path / "ae" / "explore"
    result = json.loads((folder / "explore.json").read_text())
    for name in ("latent_pca.png", "latent_tsne.png", "interpolation.png"):
        assert (folder / name).is_file() and name in result["figures"]
    # the synthetic classes are separable by their bar's position: the latent keeps that
    assert result["knn_acc"] > 0.5 and result["linear_probe_acc"] > 0.5
    assert result["latent"] == 16
    # a file where the figures' folder should be: refused before any work
    (tmp_path / "afile").write_text("mine")
    assert main(["explore", str(tmp_path / "ae"), "--out", str(tmp_path / "afile"), "--no-tsne"]) == 2
    assert capsys.readouterr().err == f"fashionae: error: --out {tmp_path / 'afile'} is a file; give a folder\n"
    assert main(["explore", str(tmp_path / "ae"), "--out", str(tmp_path / "afile" / "maps"), "--no-tsne"]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: --out {tmp_path / 'afile' / 'maps'}: {tmp_path / 'afile'} "
                                       "is a file, so the folder cannot be made; give another\n")
    assert (tmp_path / "afile").read_text() == "mine"
    # a run folder (another's, or the run's own) or a study folder: their layouts are theirs
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "study.json").write_text('{"name": "s", "autoencoders": []}')
    for out, kind in (("ae", "run folder, which holds one run's files"), ("study", "study folder, which holds a study's files")):
        assert main(["explore", str(tmp_path / "ae"), "--out", str(tmp_path / out), "--no-tsne"]) == 2
        assert capsys.readouterr().err == f"fashionae: error: {tmp_path / out} is a {kind}; choose another --out\n"
    assert not (tmp_path / "ae" / "explore.json").exists() and not (tmp_path / "study" / "explore.json").exists()
    # a folder that holds another run's maps keeps them; the same run's are made again
    maps = tmp_path / "maps"
    assert main(["explore", str(tmp_path / "ae"), "--out", str(maps), "--no-tsne", "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    assert main(["explore", str(tmp_path / "ae" / "."), "--out", str(maps), "--no-tsne", "--data-dir",
                 str(data_dir), "--no-verify"]) == 0
    execute(RunConfig(model=ModelConfig(latent=8), train=t), tmp_path / "other", data=tiny, log=lambda m: None)
    before = (maps / "explore.json").read_text()
    capsys.readouterr()
    assert main(["explore", str(tmp_path / "other"), "--out", str(maps), "--no-tsne", "--data-dir", str(data_dir),
                 "--no-verify"]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: --out {maps} holds the latent space of another model "
                                       f"({tmp_path / 'ae'}, or a run trained again since); choose another --out, or "
                                       "delete it to map this run\n")
    assert (maps / "explore.json").read_text() == before
    # the same run moved, or named by a path relative to another folder, is the same run
    (tmp_path / "ae").rename(tmp_path / "moved")
    assert main(["explore", str(tmp_path / "moved"), "--out", str(maps), "--no-tsne", "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    assert main(["explore", str(tmp_path / "moved"), "--no-tsne", "--data-dir", str(data_dir), "--no-verify"]) == 0
    # interrupted after its maps, before its interpolation: the same command again takes them as its own
    from fashionae import plots

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    again = tmp_path / "again"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "image_rows", interrupted)
        assert main(["explore", str(tmp_path / "moved"), "--out", str(again), "--no-tsne", "--data-dir",
                     str(data_dir), "--no-verify"]) == 130
    assert (again / "latent_pca.png").is_file() and not (again / "interpolation.png").exists()
    assert main(["explore", str(tmp_path / "moved"), "--out", str(again), "--no-tsne", "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    assert (again / "interpolation.png").is_file()
    # a folder of the user's own files under explore's names: refused before any work, the files kept
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "interpolation.png").write_text("my picture")
    capsys.readouterr()
    assert main(["explore", str(tmp_path / "moved"), "--out", str(mine), "--no-tsne"]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: --out {mine} already holds interpolation.png, not written "
                                       "by fashionae explore; nothing was written: choose another --out\n")
    assert (mine / "interpolation.png").read_text() == "my picture" and len(list(mine.iterdir())) == 1
    (mine / "interpolation.png").unlink()
    (mine / "explore.json").write_text("[1, 2]")  # the user's, under explore's name: no JSON object of ours
    assert main(["explore", str(tmp_path / "moved"), "--out", str(mine), "--no-tsne"]) == 2
    assert "already holds explore.json, not written by fashionae explore" in capsys.readouterr().err
    assert (mine / "explore.json").read_text() == "[1, 2]"


def test_a_collapsed_encoder_gets_scores_and_no_maps(tiny, tmp_path, monkeypatch):
    """Every code the same (dead ReLUs): scikit-learn's t-SNE crashed the process on them."""
    import numpy as np
    from fashionae import explore as explore_module
    t = TrainConfig(epochs=1, batch_size=50, train_subset=400, eval_subset=200, **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(latent=16), train=t), tmp_path / "ae", data=tiny, log=lambda m: None)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.zeros((len(images), 16), np.float32))
    loaded = []  # and the codes are fp32's whatever the run trained in: the same on every machine
    real = explore_module.LoadedRun
    monkeypatch.setattr(explore_module, "LoadedRun", lambda *args: loaded.append(args[1:]) or real(*args))
    lines = []
    result = explore_module.explore(tmp_path / "ae", data=tiny, log=lines.append)
    assert loaded == [("fp32",)]
    assert "explore: every test image has the same latent code (a collapsed encoder): no maps" in lines
    assert result["figures"] == ["interpolation.png"] and 0 <= result["knn_acc"] <= 1


def test_one_class_has_no_scores_to_give(tiny, tmp_path):
    from dataclasses import replace
    from fashionae import explore as explore_module
    t = TrainConfig(epochs=1, batch_size=50, train_subset=400, eval_subset=200, **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(latent=16), train=t), tmp_path / "ae", data=tiny, log=lambda m: None)
    one = replace(tiny, train_labels=tiny.train_labels * 0)
    with pytest.raises(UserError, match="training images of .*ae hold a single class: the k-NN and linear-probe "
                                        "scores need two at least .*; explore a run trained with a larger "
                                        "train_subset, if the dataset holds other classes$"):
        explore_module.explore(tmp_path / "ae", data=one)


@pytest.fixture(scope="module")
def explored_run(data_dir, tmp_path_factory):
    """One small trained autoencoder for the tests below, which stub out the slow parts."""
    from fashionae.data import load_fashion_mnist
    folder = tmp_path_factory.mktemp("explored") / "ae"
    t = TrainConfig(epochs=1, batch_size=50, train_subset=400, eval_subset=200, **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(latent=16), train=t), folder, data=load_fashion_mnist(data_dir, verify=False),
            log=lambda m: None)
    return folder


def drawn(monkeypatch):
    """What explore hands the plotting functions (nothing is drawn): the maps' points and
    labels, the interpolation's images."""
    from fashionae import plots
    seen = {"maps": [], "rows": []}
    monkeypatch.setattr(plots, "scatter_map", lambda title, xy, labels, classes, path:
                        seen["maps"].append((xy, labels)))
    monkeypatch.setattr(plots, "image_rows", lambda rows, path, titles=None: seen["rows"].append(rows))
    return seen


def test_the_scores_are_the_knn_and_the_probe_on_the_test_codes():
    """The k-NN and probe accuracies are each what its name says, measured on the test codes:
    swapped, or the k-NN measured on the codes it was fitted on (a perfect score whatever the
    latent), the user would compare encoders by the wrong numbers."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from fashionae.explore import feature_scores
    rng = np.random.default_rng(0)
    train_y, test_y = np.arange(200) % 4, np.arange(100) % 4
    centres = rng.normal(size=(4, 6)) * 3
    train_z = centres[train_y] + rng.normal(size=(200, 6)) * 0.3  # separable
    test_z = centres[test_y] + rng.normal(size=(100, 6)) * 3  # noisy: the two scores differ
    scores = feature_scores(train_z, train_y, test_z, test_y)
    knn = KNeighborsClassifier(5).fit(train_z, train_y).score(test_z, test_y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(train_z, train_y)
    probe = probe.score(test_z, test_y)
    assert knn != probe and knn < 1
    assert scores["knn_acc"] == knn and scores["linear_probe_acc"] == probe


def test_the_interpolation_runs_between_two_classes(explored_run, tiny, tmp_path, monkeypatch):
    """The first test images of the first two classes present are its ends: its first and last
    images differ (the same end twice, the user sees one image nine times)."""
    import numpy as np
    import torch
    from fashionae import explore as explore_module
    assert explore_module._two_classes(torch.tensor([3, 3, 5])) == (3, 5)
    assert explore_module._two_classes(torch.tensor([5, 3, 3])) == (3, 5)
    assert explore_module._two_classes(torch.tensor([4, 4])) == (4, 4)  # one class: its first image, twice
    assert explore_module._two_classes(torch.tensor([2, 0, 1, 0])) == (0, 1)  # of three: the first two, not the last
    seen = drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.random.default_rng(0).normal(
        size=(len(images), 16)).astype(np.float32))
    explore_module.explore(explored_run, tmp_path / "out", data=tiny, tsne=False)
    [[(_, images)]] = seen["rows"]
    assert images.shape[0] == 9
    assert np.abs(images[0] - images[-1]).max() > 1e-3


def test_the_map_colours_each_point_by_its_own_label(explored_run, tiny, tmp_path, monkeypatch):
    """The map shows the first test images, each coloured by its own class (the last images'
    labels on the first images' points: a map whose classes look mixed, whatever the latent)."""
    import numpy as np
    from fashionae import explore as explore_module
    seen = drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "MAP_IMAGES", 50)  # fewer than the test images
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.random.default_rng(0).normal(
        size=(len(images), 16)).astype(np.float32))
    explore_module.explore(explored_run, tmp_path / "out", data=tiny, tsne=False)
    [(xy, labels)] = seen["maps"]
    assert len(xy) == 50 < len(tiny.test_labels)
    assert np.array_equal(labels, tiny.test_labels[:50].numpy())


def test_two_classes_are_enough_to_score_and_the_fit_is_on_the_training_codes(explored_run, tiny, tmp_path,
                                                                                 monkeypatch):
    """A dataset of two classes is scored (two is the least the probes need); explore.json
    counts the training images the probes were fitted on (at most FIT_IMAGES, of those the run
    trained on: its train_subset), not the test's (those the run was tested on: its eval_subset)."""
    from dataclasses import replace
    import numpy as np
    from fashionae import explore as explore_module
    from fashionae.data import make_splits
    drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.random.default_rng(0).normal(
        size=(len(images), 16)).astype(np.float32))
    two = replace(tiny, train_labels=tiny.train_labels % 2, test_labels=tiny.test_labels % 2)
    fits, score = [], explore_module.feature_scores  # the images each probe is fitted and scored on
    monkeypatch.setattr(explore_module, "feature_scores", lambda *a: fits.append([len(x) for x in a]) or score(*a))
    result = explore_module.explore(explored_run, tmp_path / "out", data=two, tsne=False)
    t = RunFolder(explored_run).config().train
    run_splits = make_splits(two, t.val, t.train_subset, t.eval_subset)
    fitted, tested = min(explore_module.FIT_IMAGES, len(run_splits.train_y)), len(run_splits.test_y)
    assert (fitted, tested) == (400, 200) and fits == [[fitted, fitted, tested, tested]]
    assert result["fit_images"] == fitted and result["test_images"] == tested
    assert json.loads((tmp_path / "out" / "explore.json").read_text())["fit_images"] == fitted
    assert 0 <= result["knn_acc"] <= 1


def test_no_tsne_leaves_the_t_sne_map_out(own_run, capsys):
    data, run = own_run
    assert main(["explore", str(run), "--no-tsne", "--no-verify"]) == 0
    assert "figures in " + str(run / "explore") in capsys.readouterr().out
    result = json.loads((run / "explore" / "explore.json").read_text())
    assert result["figures"] == ["latent_pca.png", "interpolation.png"]
    assert not (run / "explore" / "latent_tsne.png").exists()


def test_explore_finds_a_moved_dataset_in_data_dir(tmp_path, capsys):
    from helpers import shapes
    data = shapes(tmp_path / "data")
    assert main(["train-ae", "--dataset", str(data), "--latent", "4", "--epochs", "1", "--batch-size", "40",
                 "--out", str(tmp_path / "ae")]) == 0
    data.rename(tmp_path / "moved")
    assert main(["explore", str(tmp_path / "ae"), "--no-tsne"]) == 2
    assert str(data) in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "ae"), "--no-tsne", "--data-dir", str(tmp_path / "moved")]) == 0
    assert json.loads((tmp_path / "ae" / "explore" / "explore.json").read_text())["knn_acc"] >= 0


@pytest.mark.parametrize("train_subset, eval_subset", [(4, 200), (400, 1)])
def test_a_run_of_too_few_images_has_no_latent_space_to_score(tiny, tmp_path, train_subset, eval_subset):
    """The probes fit on the images the run trained on, and score on those it was tested on: fewer
    than the k-NN's neighbours, or a single test image, is refused in one line."""
    from fashionae import explore as explore_module
    t = TrainConfig(epochs=1, batch_size=4, train_subset=train_subset, eval_subset=eval_subset, **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(latent=16), train=t), tmp_path / "ae", data=tiny, log=lambda m: None)
    short = "train_subset" if train_subset == 4 else "eval_subset"
    with pytest.raises(UserError, match=f"ae: {train_subset} training images and {eval_subset} test images?, where "
                                        f"a latent space needs 5 training images at least .*; explore a run trained "
                                        f"with a larger {short}$"):
        explore_module.explore(tmp_path / "ae", data=tiny)
    assert not (tmp_path / "ae" / "explore").exists()


def test_too_few_images_for_a_latent_space_says_what_would_give_them():
    """What is short is named with what gives it: a larger subset where one cut it short, else a
    dataset of more images, or of two classes."""
    from types import SimpleNamespace

    from fashionae.explore import refuse_too_few
    small = SimpleNamespace(train_y=torch.arange(50) % 2, test_y=torch.zeros(1, dtype=torch.long))
    with pytest.raises(UserError, match=r"^\[explore\] autoencoder a: 50 training images and 1 test image, where .*; "
                                        r"take it out of \[explore\], or give it a dataset of more test images$"):
        refuse_too_few(small, "[explore] autoencoder a", TrainConfig(), "take it out of [explore], or give it")
    with pytest.raises(UserError, match=r"^run: 3 training images and 1 test image, .*; explore a run trained with a "
                                        r"larger train_subset and a dataset of more test images$"):
        refuse_too_few(SimpleNamespace(train_y=small.train_y[:3], test_y=small.test_y), "run",
                       TrainConfig(train_subset=3), "explore a run trained with")
    one_class = SimpleNamespace(train_y=torch.zeros(50, dtype=torch.long), test_y=torch.zeros(9, dtype=torch.long))
    with pytest.raises(UserError, match=r"^the first 50 training images of run hold a single class: .*; explore a run "
                                        r"trained with a larger train_subset, if the dataset holds other classes$"):
        refuse_too_few(one_class, "run", TrainConfig(train_subset=50), "explore a run trained with")
    with pytest.raises(UserError, match=r"hold a single class: .*; explore a run trained with a dataset of two classes "
                                        r"at least$"):
        refuse_too_few(one_class, "run", TrainConfig(), "explore a run trained with")
    # one training image (no subset: the dataset is short of them); 5 and 2 are the least that do
    with pytest.raises(UserError, match=r"^run: 1 training image and 2 test images, where .*; explore a run trained "
                                        r"with a dataset of more training images$"):
        refuse_too_few(SimpleNamespace(train_y=torch.zeros(1), test_y=torch.zeros(2)), "run", TrainConfig(),
                       "explore a run trained with")
    refuse_too_few(SimpleNamespace(train_y=torch.arange(5) % 2, test_y=torch.zeros(2)), "run", TrainConfig(),
                   "explore a run trained with")


def test_an_out_folder_is_judged_by_the_run_it_names_and_by_the_files_of_explore_it_holds(explored_run, tmp_path):
    """An explore.json from before it held the model's digest names only its run: this run's
    (as its path was spelled then) is its own, another's or one naming none is refused; the
    user's files under explore's names are all named."""
    import re

    from fashionae.explore import _refuse_others
    folder = RunFolder(explored_run)
    model, out = folder.model_sha256(), tmp_path / "maps"
    out.mkdir()
    (out / "explore.json").write_text(json.dumps({"run": str(explored_run / ".")}))
    _refuse_others(out, folder, model)
    for before in ({"run": str(tmp_path / "other")}, {}):
        (out / "explore.json").write_text(json.dumps(before))
        with pytest.raises(UserError, match=rf"^--out {re.escape(str(out))} holds the latent space of another model "
                                            rf"\({re.escape(str(before.get('run')))}, or a run trained again since\)"):
            _refuse_others(out, folder, model)
    (out / "explore.json").unlink()
    (out / "latent_tsne.png").write_text("mine")
    (out / "interpolation.png").write_text("mine too")
    with pytest.raises(UserError, match=r" already holds latent_tsne.png, interpolation.png, not written by "):
        _refuse_others(out, folder, model)


def test_codes_that_differ_by_dimension_only_are_collapsed_too(explored_run, tiny, tmp_path, monkeypatch):
    """A collapsed encoder whose last layer adds a bias gives every image the same code, but not
    the same value in each dimension: no map either (scikit-learn's t-SNE crashed on such
    codes), whichever dimension varies or not."""
    import numpy as np
    from fashionae import explore as explore_module
    seen = drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.tile(np.arange(16, dtype=np.float32),
                                                                               (len(images), 1)))
    lines = []
    result = explore_module.explore(explored_run, tmp_path / "out", data=tiny, tsne=False, log=lines.append)
    assert "explore: every test image has the same latent code (a collapsed encoder): no maps" in lines
    assert seen["maps"] == [] and result["figures"] == ["interpolation.png"]


def test_a_latent_of_one_value_has_no_maps(explored_run, tiny, tmp_path, monkeypatch):
    """One value a code (``latent = 1`` is allowed): no 2-D map to fit (PCA raised), the scores and
    the interpolation stand."""
    import numpy as np
    from fashionae import explore as explore_module
    seen = drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.random.default_rng(0).normal(
        size=(len(images), 1)).astype(np.float32))
    lines = []
    result = explore_module.explore(explored_run, tmp_path / "out", data=tiny, log=lines.append)
    assert "explore: the latent code is one value: no 2-D maps" in lines
    assert seen["maps"] == [] and result["figures"] == ["interpolation.png"] and 0 <= result["knn_acc"] <= 1


def test_a_latent_of_two_values_is_mapped(explored_run, tiny, tmp_path, monkeypatch):
    """Two values (the smallest latent a 2-D map needs): the PCA map is the codes' two components."""
    import numpy as np
    from fashionae import explore as explore_module
    seen = drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.random.default_rng(0).normal(
        size=(len(images), 2)).astype(np.float32))
    lines = []
    result = explore_module.explore(explored_run, tmp_path / "out", data=tiny, tsne=False, log=lines.append)
    [(xy, _)] = seen["maps"]
    assert xy.shape == (result["test_images"], 2) and result["latent"] == 2
    assert lines == ["explore: k-NN and linear probe on 400 latent codes of 2 values"]


def test_explore_checks_the_fashion_mnist_files_unless_told_not_to(explored_run, data_dir, tmp_path, monkeypatch):
    """Without --no-verify (``verify``), the data a Fashion-MNIST run is explored on is checked
    against the dataset's digests: the synthetic files are refused, before any work."""
    from fashionae import explore as explore_module
    drawn(monkeypatch)
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\.gz fails its SHA-256 check"):
        explore_module.explore(explored_run, tmp_path / "out", data_dir=str(data_dir), tsne=False)
    assert not (tmp_path / "out" / "explore.json").exists()
    assert explore_module.explore(explored_run, tmp_path / "out", data_dir=str(data_dir), verify=False,
                                  tsne=False)["latent"] == 16


def test_an_interrupted_explore_is_known_by_its_models_digest(explored_run, own_run, tiny, tmp_path, monkeypatch):
    """explore.json, written before the maps, records the run and its model's digest: after an
    interruption, another model is refused by the run's name, and the same model from another
    folder (the run copied or moved) carries on."""
    import shutil
    from fashionae import explore as explore_module
    from fashionae import plots

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "scatter_map", interrupted)
        with pytest.raises(KeyboardInterrupt):
            explore_module.explore(explored_run, out, data=tiny, tsne=False)
    assert json.loads((out / "explore.json").read_text()) == {"run": str(explored_run),
                                                             "model_sha256": RunFolder(explored_run).model_sha256()}
    drawn(monkeypatch)
    with pytest.raises(UserError, match=rf"^--out {out} holds the latent space of another model \({explored_run}, or a "
                                        r"run trained again since\)"):
        explore_module.explore(own_run[1], out, tsne=False)
    shutil.copytree(explored_run, tmp_path / "copy")
    assert explore_module.explore(tmp_path / "copy", out, data=tiny, tsne=False)["run"] == str(tmp_path / "copy")
    # a finished latent space of this model stays whole while it is mapped again, and after an interruption
    finished = (out / "explore.json").read_text()
    assert json.loads(finished)["knn_acc"] >= 0 and "explore_sha256" in json.loads(finished)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "scatter_map", interrupted)
        with pytest.raises(KeyboardInterrupt):
            explore_module.explore(tmp_path / "copy", out, data=tiny, tsne=False)
    assert (out / "explore.json").read_text() == finished


@pytest.mark.parametrize("points", [2, 12])
def test_a_t_sne_map_of_fewer_points_than_its_perplexity(explored_run, tiny, tmp_path, monkeypatch, points):
    """t-SNE's perplexity must stay below the points it maps: a run tested on few images (2 at
    least) still gets its t-SNE map, two coordinates a point, as its PCA map does."""
    import numpy as np
    from fashionae import explore as explore_module
    seen = drawn(monkeypatch)
    monkeypatch.setattr(explore_module, "MAP_IMAGES", points)
    monkeypatch.setattr(explore_module, "_embed", lambda run, images: np.random.default_rng(0).normal(
        size=(len(images), 16)).astype(np.float32))
    result = explore_module.explore(explored_run, tmp_path / "out", data=tiny)
    assert [xy.shape for xy, _ in seen["maps"]] == [(points, 2), (points, 2)]
    assert result["figures"] == ["latent_pca.png", "latent_tsne.png", "interpolation.png"]


def test_the_interpolation_decodes_the_line_from_the_first_image_of_one_class_to_the_other(explored_run, tiny,
                                                                                          tmp_path, monkeypatch):
    """Its nine images decode the codes (1 - w) a + w b, w from 0 to 1, of the first test images
    a and b of the first two classes: the ends are those images' reconstructions, the middle
    decodes their codes' mean (not a line past b, nor another image of the class)."""
    from fashionae import explore as explore_module
    from fashionae.inference import LoadedRun
    from fashionae.training import to_inputs
    seen = drawn(monkeypatch)
    explore_module.explore(explored_run, tmp_path / "out", data=tiny, tsne=False)
    [[(_, images)]] = seen["rows"]
    run = LoadedRun(explored_run, "fp32")
    from fashionae.data import make_splits
    t = RunFolder(explored_run).config().train
    s = make_splits(tiny, t.val, t.train_subset, t.eval_subset)
    a, b = (int((s.test_y == c).nonzero()[0]) for c in s.test_y.unique()[:2])
    with torch.inference_mode():
        ends = run.model.encoder(to_inputs(s.test_x[[a, b]], "cpu"))
        expected = run.model.decoder(torch.stack([ends[0], ends.mean(0), ends[1]])).float()[:, 0].numpy()
    assert images.shape[0] == 9
    for got, want in zip(images[[0, 4, 8]], expected):
        assert abs(got - want).max() < 1e-5


def test_a_single_class_is_judged_on_the_images_the_probes_fit_and_none_is_plural():
    """The probes fit the first FIT_IMAGES training images: one class there is refused even where
    later ones hold others; no training image at all is said as 0 images."""
    from types import SimpleNamespace

    from fashionae.explore import FIT_IMAGES, refuse_too_few
    later = SimpleNamespace(train_y=torch.cat([torch.zeros(FIT_IMAGES, dtype=torch.long), torch.ones(50, dtype=torch.long)]),
                            test_y=torch.arange(9) % 2)
    with pytest.raises(UserError, match=f"^the first {FIT_IMAGES:,} training images of run hold a single class: "):
        refuse_too_few(later, "run", TrainConfig(), "explore a run trained with")
    with pytest.raises(UserError, match=r"^run: 0 training images and 2 test images, where "):
        refuse_too_few(SimpleNamespace(train_y=torch.zeros(0), test_y=torch.zeros(2)), "run", TrainConfig(),
                       "explore a run trained with")


def test_a_latent_with_a_dead_unit_is_still_mapped(explored_run, tiny, tmp_path, monkeypatch):
    """One value the same in every code (a unit that never fires) is no collapsed encoder: the others
    differ, and are mapped."""
    import numpy as np
    from fashionae import explore as explore_module
    seen = drawn(monkeypatch)

    def embed(run, images):
        z = np.random.default_rng(0).normal(size=(len(images), 3)).astype(np.float32)
        z[:, 1] = 0.0
        return z
    monkeypatch.setattr(explore_module, "_embed", embed)
    lines = []
    result = explore_module.explore(explored_run, tmp_path / "out", data=tiny, tsne=False, log=lines.append)
    [(xy, _)] = seen["maps"]
    assert xy.shape == (result["test_images"], 2) and "latent_pca.png" in result["figures"]
    assert not any("collapsed" in line for line in lines)


def test_the_linear_probe_runs_its_iterations_and_says_whether_it_converged(monkeypatch):
    import numpy as np
    from fashionae import baselines
    from fashionae import explore as explore_module
    fitted, fit = [], baselines.fit_quietly
    monkeypatch.setattr(baselines, "fit_quietly", lambda est, x, y: fitted.append(est) or fit(est, x, y))
    g = np.random.default_rng(0)
    z, y = g.normal(size=(200, 6)), np.arange(200) % 3
    monkeypatch.setattr(explore_module, "PROBE_MAX_ITER", 1)
    assert explore_module.feature_scores(z, y, z, y)["linear_probe_converged"] is False
    assert fitted[-1][-1].max_iter == 1
    monkeypatch.setattr(explore_module, "PROBE_MAX_ITER", 5000)
    assert explore_module.feature_scores(z, y, z, y)["linear_probe_converged"] is True
