import json

import pytest

from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.models import ModelConfig
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
    with pytest.raises(UserError, match="training images hold a single class: the k-NN and linear-probe scores need "
                                        "two at least"):
        explore_module.explore(tmp_path / "ae", data=one)
