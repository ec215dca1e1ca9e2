import io
import json
import math
import os
import platform
import re
import shutil
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fashionae import executors, plan as plan_mod, preflight
from fashionae import preview
from fashionae import progress as progress_mod
from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.pipeline import run_study
from fashionae.report import _ablation_effect
from fashionae.summary import summary
from fashionae.results import collect_results, reached_targets
from fashionae.models import ModelConfig
from fashionae.runconfig import RunConfig
from fashionae.runfolder import RunFolder
from fashionae.study import BUNDLED, Study, bundled_studies, load_study, study_file
from fashionae.studyfolder import StudyFolder
from fashionae.training import TrainConfig
from helpers import PAPER, QUIET, STUDIES, cli, extra_or_skip


def test_smoke_study_end_to_end_then_report_rebuilds_it(data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["study", str(PAPER), "--profile", "smoke", "--out", str(out),
                 "--data-dir", str(data_dir), "--no-verify"])
    assert code == 0
    assert "report:" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["study"] == "paper" and results["profile"] == "smoke"
    assert [a["name"] for a in results["autoencoders"]] == ["linear-64", "linear-512", "linear-1024", "conv"]
    for ae in results["autoencoders"]:
        for key in ("train_mse", "val_mse", "test_mse", "best_epoch", "seconds"):
            assert set(ae[key]) == {"mean", "std", "values"}
    # trained alike, so the claims compare them: the settings they share, not what sets them apart
    settings = [ae["settings"] for ae in results["autoencoders"]]
    assert all(s == settings[0] for s in settings) and settings[0]["train.epochs"] == 1
    assert not {"model.arch", "model.latent", "train.seed", "train.device"} & set(settings[0])
    assert [c["strategy"] for c in results["classifiers"]] == ["frozen", "finetune", "scratch", "random-frozen"]
    assert all(c["encoder"] == "linear-512" for c in results["classifiers"])
    # every figure is its runs' own, read from their summary.json (the names written out here, so
    # that a figure read from the wrong key, validation for test, fails)
    for entries, names in ((results["autoencoders"], {"train_eval_mse": "train_eval_loss", "train_mse": "train_loss",
                                                      "val_mse": "val_loss", "test_mse": "test_loss"}),
                           (results["classifiers"], {"train_eval_acc": "train_eval_acc", "train_acc": "train_acc",
                                                     "val_acc": "val_acc", "test_acc": "test_acc"})):
        for entry in entries:
            summaries = [json.loads((out / "runs" / Path(r).name / "summary.json").read_text()) for r in entry["runs"]]
            for figure, key in names.items():
                assert entry[figure]["values"] == [s[key] for s in summaries], (entry["name"], figure)
    assert results["baselines"]["pca"] and "report" in results["reference"]
    assert len(results["claims"]) == 8
    page = (out / "report.html").read_text()
    images = re.findall(r'src="(figures/[^"]+)"', page)
    # overviews, AE curves, reconstructions, strategies and control, confusions
    assert len(images) == 2 + 4 + 1 + 4 + 2
    assert all((out / i).is_file() for i in images)
    assert "Table II" in (out / "report.md").read_text()

    # `fashionae report` rebuilds the same results from the folders alone, without the dataset
    before = (out / "results.json").read_text()
    (out / "results.json").unlink()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "results.json").read_text() == before and (out / "report.html").is_file()

    # damaged files the study can rebuild: the timing is left out of a report, and the baselines
    # are named with the command that computes them again, which then works
    timing = (out / "timing.json").read_text()
    assert json.loads(timing)["invocations"] == 1
    (out / "timing.json").write_text("{bad")
    (out / "baselines.json").write_text("{bad")
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fashionae: error: baselines {out / 'baselines.json'} is unreadable or not valid JSON")
    assert err.endswith("; run the study command again: it computes them again\n")
    assert main(["study", str(PAPER), "--profile", "smoke", "--out", str(out),
                 "--data-dir", str(data_dir), "--no-verify"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["baselines"] == results["baselines"] | {k: again["baselines"][k] for k in ("seconds", "baselines_sha256")}
    # an invocation that trained nothing makes up no record of one that trained: the damaged one is left out
    assert (out / "timing.json").read_text() == "{bad" and "timing" not in again
    (out / "timing.json").write_text(timing)
    assert main(["study", str(PAPER), "--profile", "smoke", "--out", str(out),
                 "--data-dir", str(data_dir), "--no-verify"]) == 0
    assert (out / "timing.json").read_text() == timing  # one that trained nothing keeps the record of one that did
    assert json.loads((out / "results.json").read_text())["timing"] == json.loads(timing)
    (out / "timing.json").write_text('{"x": 1}')  # edited into another shape: left out too (a KeyError before)
    assert main(["report", str(out)]) == 0 and "timing" not in json.loads((out / "results.json").read_text())
    (out / "timing.json").write_text(timing)

    # edited files, valid JSON of the wrong shape: named with what to do, and the study command
    # writes again what it owns (study.json, the baselines)
    description = (out / "study.json").read_text()
    capsys.readouterr()
    fix = f"; run the study command again with --out {out}: it writes it again and keeps the finished runs\n"
    (out / "study.json").write_text("[]")
    assert main(["report", str(out)]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: study description {out / 'study.json'} is unreadable "
                                       "or not a JSON object (it was edited or damaged)" + fix)
    (out / "study.json").write_text(json.dumps({**json.loads(description), "seeds": "3"}))
    assert main(["report", str(out)]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: study file {out / 'study.json'}: seeds must be an "
                                       "integer from 1 to 100, got '3'" + fix)
    (out / "study.json").write_text(description)
    (out / "baselines.json").write_text(json.dumps({**again["baselines"], "pca": None}))
    assert main(["report", str(out)]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: baselines {out / 'baselines.json'} are damaged or "
                                       "were edited (its PCA figures are missing or malformed); run the study "
                                       "command again: it computes them again\n")
    (out / "study.json").write_text("[]")
    assert main(["study", str(PAPER), "--profile", "smoke", "--out", str(out),
                 "--data-dir", str(data_dir), "--no-verify"]) == 0
    assert (out / "study.json").read_text() == description
    assert json.loads((out / "results.json").read_text())["baselines"]["pca"] == again["baselines"]["pca"]


def test_interrupted_study_resumes_and_retrains_nothing_finished(data_dir, tmp_path, monkeypatch):
    s = load_study(PAPER, "smoke")
    out = tmp_path / "study"
    real_execute = executors.execute

    def interrupted(cfg, folder, **kw):
        if Path(folder).name == "clf-finetune-seed0":
            raise KeyboardInterrupt
        return real_execute(cfg, folder, **kw)

    monkeypatch.setattr(executors, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(s, out, data_dir=str(data_dir), verify=False, **QUIET)
    finished = {p.name: (p / "model.safetensors").stat().st_mtime_ns
                for p in (out / "runs").iterdir() if (p / "summary.json").exists()}
    assert "ae-conv-seed0" in finished and "clf-frozen-seed0" in finished
    monkeypatch.setattr(executors, "execute", real_execute)
    with pytest.raises(UserError, match=rf"^study {re.escape(str(out))} is not finished: \d+ of its \d+ runs are "
                                        r"left \(clf-finetune-seed0 first\); run the same `fashionae study "
                                        rf"\.\.\. --out {re.escape(str(out))}` command again to resume it$"):
        collect_results(out)  # what `fashionae report` says of it
    run_study(s, out, data_dir=str(data_dir), verify=False, **QUIET)
    for name, mtime in finished.items():
        assert (out / "runs" / name / "model.safetensors").stat().st_mtime_ns == mtime
    assert (out / "runs" / "clf-finetune-seed0" / "summary.json").exists()

    def nothing_to_do(*args):  # (Ray's: started for nothing, about 20 s)
        raise AssertionError("the executor is not called where every run is finished")
    run_study(s, out, data_dir=str(data_dir), verify=False, executor=nothing_to_do, **QUIET)
    (out / "runs" / "clf-scratch-seed0" / "summary.json").unlink()
    with pytest.raises(UserError, match=r"clf-scratch-seed0 holds a trained model but neither its summary.json nor a "
                                        r"checkpoint to resume from"):  # not "run the study again", which refuses it
        collect_results(out)


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


MINIMAL = '[[autoencoders]]\nname = "a"\narch = "conv"\n'


def study_out(tmp_path, data_dir) -> tuple[Path, list[str]]:
    """A study folder, and the options that run a study into it on the tests' data."""
    out = tmp_path / "study"
    return out, ["--out", str(out), "--data-dir", str(data_dir), "--no-verify"]


TINY_TRAIN = '[train]\nepochs = 1\nbatch_size = 50\ntrain_subset = 300\neval_subset = 200\n'  # a study in seconds


def test_a_run_folder_moved_to_another_disk_and_linked_back_keeps_its_classifiers(tmp_path, data_dir, capsys):
    """An autoencoder's run folder moved elsewhere and replaced by a link (another disk) is the same
    run of the study: its classifier, trained on it, is kept, not refused as trained on another
    encoder (the encoder's folder is known by the name the study gives it, not by the link's target)."""
    text = ('seeds = 1\n' + TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
            '[classifiers]\nencoder = "a"\nstrategies = ["frozen"]\n[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, text)), *common]) == 0
    clf = out / "runs" / "clf-frozen-seed0" / "model.safetensors"
    trained = clf.read_bytes()
    ae = out / "runs" / "ae-a-seed0"
    ae.rename(tmp_path / "elsewhere")
    ae.symlink_to(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["study", str(write(tmp_path, text)), *common]) == 0, capsys.readouterr().err
    assert clf.read_bytes() == trained  # kept, not trained again
    # the disk gone (the link's target): said before anything trains, by --plan too, nothing touched
    (tmp_path / "elsewhere").rename(tmp_path / "gone")
    capsys.readouterr()
    for plan in (["--plan"], []):
        code, _, err = cli(capsys, "study", write(tmp_path, text), *plan, *common)
        assert (code, err) == (2, f"fashionae: error: {ae} is a link to {tmp_path / 'elsewhere'}, which is no folder "
                                  "(moved or deleted?): point it at the folder, or remove it\n")
    assert clf.read_bytes() == trained and ae.is_symlink()


def test_the_timing_record_counts_the_invocations_that_trained_and_is_none_when_edited(tmp_path):
    """``StudyFolder.write_timing`` / ``timing``: read back as written, the invocations counted; a
    record missing, unreadable or of another shape is None (left out of the report, written anew)."""
    folder = StudyFolder(tmp_path / "out")
    folder.path.mkdir()
    assert folder.timing() is None
    folder.write_timing(12.5, {"autoencoders": 10.0}, "fashionae study paper", "local")
    first = {"last_invocation_seconds": 12.5, "stages": {"autoencoders": 10.0}, "invocations": 1,
             "command": "fashionae study paper", "executor": "local"}
    assert folder.timing() == first
    folder.write_timing(3, {}, None, "ray")
    assert folder.timing() == {"last_invocation_seconds": 3, "stages": {}, "invocations": 2, "command": None,
                               "executor": "ray"}
    for edited in [{"x": 1}] + [first | edit for edit in (
            {"last_invocation_seconds": "12.5"}, {"stages": []}, {"stages": {"a": "1"}}, {"invocations": 1.0},
            {"command": 3}, {"executor": None})]:
        (folder / folder.TIMING).write_text(json.dumps(edited))
        assert folder.timing() is None, edited
    (folder / folder.TIMING).write_text(json.dumps({k: v for k, v in first.items() if k != "executor"}))
    assert folder.timing() == {k: v for k, v in first.items() if k != "executor"}  # (the first kind: local's)
    (folder / folder.TIMING).write_text("[1]")
    assert folder.timing() is None
    folder.write_timing(1, {}, None, "local")  # counted afresh
    assert folder.timing()["invocations"] == 1


def test_a_link_in_runs_to_a_run_folder_of_the_study_does_not_take_its_name(tmp_path):
    """``encoder_run_name``: a classifier's encoder is known by its run folder's name where that
    folder is there; a link beside it to the same folder (a user's alias) does not take its place.
    A folder recorded by a link's target (0.3.23) is known by the link's name."""
    from types import SimpleNamespace
    folder = StudyFolder(tmp_path / "out")
    runs = folder / folder.RUNS
    (runs / "ae-a-seed0").mkdir(parents=True)
    (runs / "zz-alias").symlink_to(runs / "ae-a-seed0")
    (tmp_path / "disk2").mkdir()
    (runs / "ae-b-seed0").symlink_to(tmp_path / "disk2")
    for recorded, name in ((runs / "ae-a-seed0", "ae-a-seed0"), (tmp_path / "disk2", "ae-b-seed0")):
        cfg = SimpleNamespace(encoder_run=str(recorded), encoder_name=recorded.name)
        assert folder.encoder_run_name(cfg) == name


def test_the_study_holding_a_run_folder_is_the_one_whose_runs_it_is_in(tmp_path, monkeypatch):
    """``StudyFolder.holding``: a run folder in a study's runs/ (named through a link to it, or
    where it lies), not one kept elsewhere in a study folder (a copy under backup/); and "." is
    read as the shell names it, where $PWD is the working folder, and as the process's own where
    $PWD is stale."""
    from fashionae import studyfolder
    study = tmp_path / "study"
    (study / "runs" / "ae-a-seed0").mkdir(parents=True)
    (study / "backup" / "ae-a-seed0").mkdir(parents=True)
    (study / "study.json").write_text("{}")
    assert [(h.path, n) for h, n in StudyFolder.holding(study / "runs" / "ae-a-seed0")] == [(study, "ae-a-seed0")]
    assert StudyFolder.holding(study / "backup" / "ae-a-seed0") == []
    monkeypatch.chdir(study / "backup")
    monkeypatch.setenv("PWD", str(study / "runs"))  # stale: another folder than the working one
    assert studyfolder._shell_cwd() == study / "backup"
    assert StudyFolder.holding(Path("ae-a-seed0")) == []


def test_a_classifier_that_recorded_its_linked_encoder_by_the_links_target_is_kept(tmp_path, data_dir, capsys,
                                                                                    monkeypatch):
    """0.3.23 and before recorded the folder of a classifier's encoder resolved: a run folder that
    was a link (on another disk from the start) by its target's name. Such a classifier is the
    study's run on that encoder still: kept, not refused as trained on another."""
    from fashionae import runs
    ae_only = ('seeds = 1\n' + TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
               '[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, ae_only)), *common]) == 0
    ae = out / "runs" / "ae-a-seed0"
    ae.rename(tmp_path / "disk2")
    ae.symlink_to(tmp_path / "disk2")
    both = ae_only + '[classifiers]\nencoder = "a"\nstrategies = ["frozen"]\n'
    with monkeypatch.context() as m:
        m.setattr(runs, "named_as_given", lambda path: path.resolve())  # as 0.3.23 recorded it
        assert main(["study", str(write(tmp_path, both)), *common]) == 0
    clf = out / "runs" / "clf-frozen-seed0"
    assert json.loads((clf / "config.json").read_text())["encoder_run"] == str(tmp_path / "disk2")
    trained = (clf / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["study", str(write(tmp_path, both)), *common]) == 0, capsys.readouterr().err
    assert (clf / "model.safetensors").read_bytes() == trained


def test_a_seed_that_learned_nothing_is_said_without_the_baselines(tmp_path, data_dir):
    """The mean image's MSE, by which a seed that learned next to nothing is named, is saved with
    the report's samples: known where the study computes no baselines (compare.toml's way)."""
    text = ('seeds = 1\n' + TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
            '[baselines]\nenabled = false\n')
    out = tmp_path / "study"
    assert main(["study", str(write(tmp_path, text)), "--out", str(out), "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["baselines"] == {} and results["mean_image"] == StudyFolder(out).mean_image()
    (a,) = results["autoencoders"]  # (300 images, 1 epoch: no better than the mean image)
    assert a["test_mse"]["mean"] >= 0.9 * results["mean_image"]["test_mse"]
    assert "Learned next to nothing: autoencoder a (1 of 1 seed)" in (out / "report.md").read_text()


def test_two_autoencoders_alike_but_for_their_names_are_said_to_train_the_same_models(tmp_path, data_dir, capsys):
    """Said (the study runs as written), and true: their models come out byte for byte the same."""
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
            '[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 8\n'
            '[[autoencoders]]\nname = "c"\narch = "linear"\nlatent = 4\n[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, body)), *common]) == 0
    assert capsys.readouterr().err.startswith(
        "note: autoencoders 'a' and 'b' have the same settings, so on the same seeds they train the same models "
        "twice; change one of them, or remove it\n")
    models = {name: (out / "runs" / f"ae-{name}-seed0" / "model.safetensors").read_bytes() for name in "abc"}
    assert models["a"] == models["b"] != models["c"]
    # alike in what trained_with compares, but not in how their dropout masks are drawn: not twins
    masks = body.replace('latent = 8\n[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 8\n',
                         'latent = 8\n[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 8\n'
                         'train = { dropout_masks = "mersenne" }\n')
    assert masks != body
    assert main(["study", str(write(tmp_path, masks)), "--plan", "--out", str(tmp_path / "other"), *common[2:]]) == 0
    assert "note: autoencoders" not in capsys.readouterr().err
    # alike in what changes their numbers: a tracker, a setting the model does not use, are no difference
    alike = ('[[autoencoders]]\nname = "a"\narch = "conv"\n[[autoencoders]]\nname = "d"\narch = "conv"\n'
             'train = { tensorboard = true }\n[[autoencoders]]\nname = "c"\narch = "conv"\ndropout = 0.0\n'
             'dropout_after_pool = true\n[[autoencoders]]\nname = "c2"\narch = "conv"\ndropout = 0.0\n')
    assert load_study(write(tmp_path, alike)).twins() == [["a", "d"], ["c", "c2"]]
    three = write(tmp_path, alike + '[[autoencoders]]\nname = "e"\narch = "conv"\n')
    assert load_study(three).twins() == [["a", "d", "e"], ["c", "c2"]]  # a group, not its pairs
    assert main(["study", str(three), "--plan", "--out", str(tmp_path / "three"), *common[2:]]) == 0
    assert capsys.readouterr().err.startswith(
        "note: autoencoders 'a', 'd' and 'e' have the same settings, so on the same seeds they train the same models "
        "3 times; change or remove all of them but one\nnote: autoencoders 'c' and 'c2' have")


def test_a_copy_of_a_study_file_that_kept_its_name_is_told_to_take_its_own(tmp_path, data_dir, capsys, monkeypatch):
    """A copy of a study file, its variant changed, that kept the original's name writes where the
    original wrote by default (runs/<name>-<profile>): its refusal says so first, since deleting
    the runs, the usual fix, would delete the original's. Under another --out it is not said."""
    monkeypatch.chdir(tmp_path)
    body = ('name = "mine"\n' + TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = {}\n'
            "[baselines]\nenabled = false\n")
    data = ["--data-dir", str(data_dir), "--no-verify"]
    assert main(["study", str(write(tmp_path, body.format(16))), *data]) == 0
    copy = tmp_path / "copy.toml"
    copy.write_text(body.format(8))
    capsys.readouterr()
    assert main(["study", str(copy), "--plan", *data]) == 2
    assert capsys.readouterr().err == (
        "fashionae: error: 1 run folder of runs/mine-default/runs holds a run that differs from what the study asks for "
        "now: ae-a-seed0 (model.latent: 16 there, 8 now); if it is another study file's, named 'mine' too (every "
        "study of that name writes to runs/mine-default unless --out says otherwise), give this study a name of its "
        "own in its file, or another --out, to keep it; else delete it and run the study again (its other finished "
        "runs are kept)\n")
    shutil.copytree("runs/mine-default", "elsewhere")
    assert main(["study", str(copy), "--plan", "--out", "elsewhere", *data]) == 2
    assert capsys.readouterr().err.endswith("(model.latent: 16 there, 8 now); delete it and run the study again (its "
                                            "other finished runs are kept), or choose another --out\n")
    copy.write_text(body.format(8).replace('"mine"', '"mine-too"'))
    assert main(["study", str(copy), *data]) == 0 and Path("runs/mine-too-default/runs/ae-a-seed0").is_dir()


BUNDLED_NAMES = "compare, digits, dropout, future, paper, protocol"


def test_a_bundled_study_is_run_by_its_name_where_no_file_has_it(tmp_path, monkeypatch):
    """An installed package has no repository's studies/: `fashionae study paper` runs the bundled
    file, which is the repository's (one copy); a file of that name where the command runs wins."""
    monkeypatch.chdir(tmp_path)
    assert ", ".join(bundled_studies()) == BUNDLED_NAMES
    assert study_file("paper") == BUNDLED / "paper.toml"
    assert (BUNDLED / "paper.toml").read_bytes() == PAPER.read_bytes()
    assert load_study("paper", "smoke").name == load_study(PAPER, "smoke").name == "paper"
    for not_a_name in ("paper.toml", "studies/paper", "Paper", "./paper"):
        assert study_file(not_a_name) == Path(not_a_name)
    with pytest.raises(UserError, match="^study file paper does not exist"):
        load_study(study_file("./paper"))  # a path, looked up once: never a name again
    with pytest.raises(UserError, match=r"^study file \./paper does not exist"):  # said as given: a path
        load_study("./paper")
    (tmp_path / "paper").mkdir()  # a folder of that name is not a study file
    assert study_file("paper") == BUNDLED / "paper.toml"
    (tmp_path / "paper").rmdir()
    (tmp_path / "paper").write_text(MINIMAL)
    assert study_file("paper") == Path("paper") and load_study("paper").name == "paper"
    assert load_study("paper").profile == "default"  # the local file's: it has no profiles
    for text in ("x = 1\n", "x\n", "", "\udcff"):  # not a study file: the error says it was read for the bundled one
        (tmp_path / "paper").write_text(text, errors="surrogateescape")
        with pytest.raises(UserError, match=r"^study file paper(:| is (not valid TOML|empty|not text)).*; the file paper "
                                            r"here was read, not the bundled study paper: move or rename it to run "
                                            r"that one$"):
            load_study("paper")
    with pytest.raises(UserError, match=r"is not text \(TOML is UTF-8 text\); give a study file, or the name of a "
                                        r"bundled one: [a-z, ]+$"):  # a path: no name to be taken for
        load_study(tmp_path / "paper")
    with pytest.raises(UserError, match=f"^study file nosuch does not exist; give a study file, or the name of a "
                       f"bundled one: {BUNDLED_NAMES}$"):
        load_study("nosuch")
    (tmp_path / "mine.toml").write_text(MINIMAL)  # the name of one, without its .toml
    with pytest.raises(UserError, match=f"^study file {re.escape(str(tmp_path / 'mine'))} does not exist; did you mean "
                                        f"{re.escape(str(tmp_path / 'mine.toml'))}\\?$"):
        load_study(str(tmp_path / "mine"))
    (tmp_path / "mine").mkdir()  # a folder of that name beside it (its runs, say)
    with pytest.raises(UserError, match=f"^{re.escape(str(tmp_path / 'mine'))} is a folder; did you mean "
                                        f"{re.escape(str(tmp_path / 'mine.toml'))}\\? Or, to rebuild a study "
                                        "folder's report: fashionae report "):
        load_study(str(tmp_path / "mine"))
    for folder in (".", "/", ".."):  # no name to add .toml to
        with pytest.raises(UserError, match=f"^{re.escape(folder)} is a folder; give a study file"):
            load_study(folder)


def test_the_package_ships_every_bundled_study():
    """pyproject's package data holds the bundled studies (a wheel without them runs none)."""
    data = tomllib.loads((STUDIES.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [f for f in BUNDLED.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    assert shipped and all(any(f.relative_to(BUNDLED.parent).match(g) for g in data["fashionae"]) for f in shipped)


def test_a_study_file_that_is_not_text_or_has_no_such_profile(tmp_path):
    (tmp_path / "s.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    with pytest.raises(UserError, match=f"^study file {tmp_path / 's.png'} is not text \\(TOML is UTF-8 text\\); give a "
                       f"study file, or the name of a bundled one: {BUNDLED_NAMES}$"):
        load_study(tmp_path / "s.png")
    with pytest.raises(UserError, match=f"^{tmp_path} is a folder; give a study file, or the name of a bundled one: "
                       f"{BUNDLED_NAMES}; or to rebuild a study folder's report: fashionae report {tmp_path}$"):
        load_study(tmp_path)
    with pytest.raises(UserError, match="has no profile 'x'; it has no profiles: leave out --profile$"):
        load_study(write(tmp_path, MINIMAL), profile="x")
    with pytest.raises(UserError, match=r"^study file s.toml: unknown key 'profiles' in \[baselines\]"):
        load_study(write(tmp_path, MINIMAL + "[baselines]\nprofiles = 3\n"), profile="quick")  # misplaced, said so
    with pytest.raises(UserError, match=r"^study file s.toml: a profiles table inside \[\[autoencoders\]\]; profiles "
                                        r"belong at the top level \(\[profiles.NAME\]\)$"):
        load_study(write(tmp_path, MINIMAL + "[autoencoders.profiles.quick]\nlatent = 4\n"), profile="quick")


def test_a_study_file_and_a_dataset_toml_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    """Windows' Notepad starts a UTF-8 file with a BOM, which tomllib calls an invalid statement at line 1."""
    path = tmp_path / "s.toml"
    path.write_bytes(b"\xef\xbb\xbf" + ('name = "s\u00e9"\n' + MINIMAL).encode())
    assert load_study(path).name == "s\u00e9"
    path.write_text('name = "s"\n' + MINIMAL, encoding="utf-16")  # PowerShell 5's >: said so
    with pytest.raises(UserError, match=r"^study file .*s.toml is UTF-16 text; TOML is UTF-8: save it as UTF-8$"):
        load_study(path)
    from fashionae.datasets import _dataset_toml
    (tmp_path / "dataset.toml").write_bytes(b"\xef\xbb\xbf" + 'classes = ["a", "b"]\n'.encode())
    assert _dataset_toml(tmp_path) == {"classes": ["a", "b"]}
    (tmp_path / "dataset.toml").write_text('classes = ["a", "b"]\n', encoding="utf-16")
    with pytest.raises(UserError, match=r"dataset.toml is UTF-16 text; TOML is UTF-8: save it as UTF-8$"):
        _dataset_toml(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("name = ", "not valid TOML"),
    ("colour = 1\n" + MINIMAL, "unknown key 'colour'"),
    (MINIMAL + "[train]\nepoch = 3\n", "unknown key 'epoch' in \\[train\\]; known"),  # a typo: no home said
    # a key in another table than its own: where it goes is said
    (MINIMAL + "[train]\nlatent = 3\n", "unknown key 'latent' in \\[train\\] \\(it is a key of \\[model\\] or an "
     "\\[\\[autoencoders\\]\\] entry\\); known keys: augment,"),
    ("[model]\nepochs = 3\n" + MINIMAL, "unknown key 'epochs' in \\[model\\] \\(it is a key of \\[train\\]\\); known"),
    (MINIMAL + "seeds = 3\n", "unknown key 'seeds' in autoencoders\\[0\\] \\(it is a key of the top level, before "
     "any \\[table\\]\\); known"),
    (MINIMAL + "strategies = []\n", "unknown key 'strategies' in autoencoders\\[0\\] \\(it is a key of "
     "\\[classifiers\\]\\); known"),
    # a training setting in a table with a train of its own goes there, not in the [train] every run takes
    (MINIMAL + "lr = 3e-3\n", "unknown key 'lr' in autoencoders\\[0\\] \\(a training setting: in this table's own "
     "train, train = \\{ lr = \\.\\.\\. \\}\\); known"),
    (MINIMAL + "[profiles.quick]\nepochs = 2\n", "unknown key 'epochs' in profile 'quick' \\(a training setting: in "
     "this table's own train, train = \\{ epochs = \\.\\.\\. \\}\\); known"),
    ("lr = 3e-3\n" + MINIMAL, "unknown key 'lr' in the top level \\(it is a key of \\[train\\]\\); known"),
    (MINIMAL + "[train]\nepochs = 0\n", "epochs must be a positive integer"),
    (MINIMAL + "[classifiers]\nencoder = \"b\"\n", "encoder 'b' is not trained"),
    (MINIMAL + "[classifiers]\nstrategies = [\"melt\"]\n", "strategies must be a list drawn from .*, got 'melt'$"),
    (MINIMAL + "[classifiers]\nstrategies = \"frozen\"\n", "strategies must be a list drawn from .*, got the string "
     "'frozen' \\(write \\['frozen'\\]\\)$"),
    ('[[autoencoders]]\nname = "a"\narch = "mlp"\n', "unknown arch"),
    ("seeds = 0\n" + MINIMAL, "seeds must be"),
    ("", "s.toml is empty; give a study file, or the name of a bundled one: compare, digits,"),
    ("seeds = 2\n", "must list at least one"),
    ('[autoencoders]\nname = "a"\narch = "conv"\n', "\\[autoencoders\\] is one table; write each autoencoder "
     "under \\[\\[autoencoders\\]\\] \\(two brackets: an entry of the list\\)$"),
    (MINIMAL + "[train]\nbatch_size = 0\n", "\\[train\\]: batch_size must be a positive integer"),  # as written
    (MINIMAL + "[train]\nlr = \"1e-3\"\n", "lr must be a number in \\(0"),
    ("profiles = 5\n" + MINIMAL, "\\[profiles\\] must be a table"),
    (MINIMAL + "[profiles]\nquick = 3\n", "\\[profiles.quick\\] must be a table"),
    (MINIMAL + "[classifiers]\nencoder = \"a\"\ntrain = 5\n", "\\[classifiers.train\\] must be a table"),
    (MINIMAL + "[classifiers]\nencoder = \"a\"\n[classifiers.train]\nfoo = 1\n",
     "unknown key 'foo' in \\[classifiers.train\\]; known keys: augment, "),
    # seed is not offered among the keys: the study sets it, and refuses it in the file
    (MINIMAL + "[train]\nepoch = 1\n", "unknown key 'epoch' in \\[train\\]; known keys: .*schedule, "
     "tensorboard, train_eval_subset"),
    # a bad value the chosen profile overrides is still refused where it is written
    (MINIMAL + "[train]\nepochs = \"ten\"\n[profiles.quick]\ntrain = { epochs = 1 }\n",
     "^study file s.toml: \\[train\\]: epochs must be a positive integer, got 'ten'$"),
    ("[[train]]\nepochs = 3\n" + MINIMAL + "[profiles.quick]\ntrain = { epochs = 1 }\n",
     "^study file s.toml: \\[train\\] must be a table$"),
    (MINIMAL * 2, "two autoencoders share the name 'a'$"),
    ('[[autoencoders]]\nname = "a b"\n', "needs a name of letters, digits and '-'"),
    (f'[[autoencoders]]\nname = "{"a" * 65}"\n', "needs a name of letters, digits and '-', at most 64 of them$"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\ntrain = { val = "test" }\n', "every autoencoder must use the same val split"),
    (MINIMAL + '[classifiers]\nencoder = "a"\ntrain = { val = "test" }\n',
     "the classifiers must use the autoencoders' val split"),
    (MINIMAL + '[targets]\nautoencoder = "zz"\nval_mse = 0.1\n', "autoencoder 'zz' is not an autoencoder of the study"),
    ('dataset = "no/such/folder"\n' + MINIMAL, "^study file s.toml: dataset 'no/such/folder' is not a folder here \\(/.*"
     "no/such/folder\\); give \"fashion-mnist\" or your dataset's folder \\(four IDX files or one .npz, see "
     "docs/datasets.md\\), relative to where you run fashionae$"),
    (MINIMAL + '[targets]\nclassifier = "finetune"\nval_acc = 0.9\n',
     "^study file s.toml: \\[targets\\] classifier 'finetune' is not a classifier of the study; with several encoders "
     "it names one as \"ENCODER/STRATEGY\" \\(known: none: the study has no \\[classifiers\\]\\)$"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n[classifiers]\nencoder = ["a", "b"]\n'
     'strategies = ["finetune"]\n[targets]\nclassifier = "finetune"\nval_acc = 0.9\n',
     "classifier 'finetune' is not a classifier of the study; .* \\(known: 'a/finetune', 'b/finetune'\\)$"),
    (MINIMAL + '[targets]\nautoencoder = "a"\ntest_mse = 0.1\n', "a target is judged on the validation set"),
    (MINIMAL + '[targets]\nautoencoder = "a"\n', "^study file s.toml: \\[targets\\] autoencoder and val_mse go "
     "together: the autoencoder and the figure it should reach; set both, or neither$"),
    (MINIMAL + '[classifiers]\nencoder = "a"\n[targets]\nval_acc = 0.9\n', "\\[targets\\] classifier and val_acc go together"),
    (MINIMAL + '[explore]\nautoencoders = ["zz"]\n', "\\[explore\\] autoencoders must name autoencoders of the "
     "study: 'zz' is none \\(known: a\\)$"),
    (MINIMAL + '[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "zz"\n',
     "ablation 'x' names 'zz', no autoencoder of the study \\(known: a\\)$"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\ntrain = { tensorboard = true }\n'
     '[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n',
     "^study file s.toml: ablation 'x': a and b train the same model, so the line would compare a model with "
     "itself; change the variant$"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\ntrain = { train_eval_subset = 100 }\n'
     '[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n', "a and b train the same model"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\ntrain = { eval_subset = 100 }\n'
     '[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n',
     "^study file s.toml: ablation 'x': a and b are measured on different images \\(their eval_subset differ\\), "
     "so their MSEs cannot be compared; give both the same eval_subset$"),
    (MINIMAL + '[[ablation]]\nchange = "x"\nbaseline = "a"\n',
     "^study file s.toml: ablation\\[0\\] \\('x'\\) has no variant; name the two autoencoders it compares$"),
    ('default_profile = "quik"\n' + MINIMAL + "[profiles.quick]\nseeds = 2\n",
     "has no profile 'quik' \\(its default_profile\\); choose one of quick$"),
    ('default_profile = "quik"\n' + MINIMAL, "has no profile 'quik' \\(its default_profile\\); it has no profiles: "
     "remove its default_profile$"),
    # a seed would be overridden by the study's seeds: refused wherever a train table is
    (MINIMAL + "[train]\nseed = 3\n", "^study file s.toml: \\[train\\]: seed is set by the study, each run once "
                                     "per seed; remove it, and set how many seeds with seeds = N \\(or --seeds N\\)$"),
    ('[[autoencoders]]\nname = "a"\ntrain = { seed = 1 }\n', "autoencoders\\[0\\].train: seed is set by the study"),
    (MINIMAL + "[classifiers]\nencoder = \"a\"\n[profiles.quick]\nclassifiers = { train = { seed = 2 } }\n",
     "\\[profiles.quick.classifiers.train\\]: seed is set by the study"),
    # every profile is checked when the file loads, not only the one asked for
    (MINIMAL + "[profiles.quick]\nseeds = 2\n[profiles.other]\ntrain = { epochz = 1 }\n",
     "^study file s.toml: unknown key 'epochz' in \\[profiles.other.train\\]"),
    (MINIMAL + "[profiles.quick]\nseeds = 2\n[profiles.other]\nmodel = { dropout = 2 }\n",
     "^study file s.toml: \\[profiles.other.model\\]: dropout must be"),
    # a profile's targets too, where the profile writes them; a test figure refused there as at the top
    (MINIMAL + '[profiles.quick]\ntargets = { autoencoder = "a", val_mse = 0.1, bogus = 1 }\n',
     "^study file s.toml: unknown key 'bogus' in \\[profiles.quick.targets\\]; known keys: autoencoder, classifier, "
     "val_acc, val_mse$"),
    (MINIMAL + '[profiles.quick]\ntargets = { autoencoder = "a", val_mse = "x" }\n',
     "^study file s.toml: \\[profiles.quick.targets\\]: val_mse must be a number"),
    (MINIMAL + '[profiles.quick]\ntargets = { autoencoder = "a", test_mse = 0.1 }\n',
     "^study file s.toml: \\[profiles.quick.targets\\] test_mse: a target is judged on the validation set"),
    (MINIMAL + '[targets]\nautoencoder = "a"\nval_mse = 0.1\nbogus = 1\n',
     "^study file s.toml: unknown key 'bogus' in \\[targets\\]; known keys: autoencoder, classifier, val_acc, val_mse$"),
    # what every profile shares is said as the file's, not as the first other profile's
    ('[[autoencoders]]\nname = "a"\ndropuot = 0.1\n[profiles.quick]\nseeds = 2\n[profiles.aaa]\nseeds = 1\n',
     "^study file s.toml: unknown key 'dropuot' in autoencoders\\[0\\]"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n[[ablation]]\nchange = "x"\nbaseline = "b"\nvariant = "b"\n',
     "ablation 'x' compares b with itself; name the autoencoder that differs as its variant"),
    # the name and the profile name the default folder, runs/NAME-PROFILE: never a path
    ('name = "../elsewhere"\n' + MINIMAL, "^study file s.toml: name '../elsewhere' names the study's default folder "
     "\\(runs/NAME-PROFILE\\): give one in one plain line, without '/' or '\\\\', that does not start with '.'$"),
    ('name = ""\n' + MINIMAL, "name '' names the study's default folder"),
    ('name = "a\\u0000b"\n' + MINIMAL, "name 'a\\\\x00b' names the study's default folder"),  # a NUL: no folder takes it
    ('name = "red\\u001b[31m"\n' + MINIMAL, "name 'red\\\\x1b\\[31m' names"),  # a terminal's escape code
    (MINIMAL + '[profiles."a/b"]\nseeds = 2\n', "profile name 'a/b' names the study's default folder"),
    # what would be ignored, trained twice or share a folder
    ('[[autoencoders]]\nname = "c"\narch = "conv"\nlatent = 64\n',
     "^study file s.toml: autoencoders\\[0\\] \\('c'\\) is conv, whose latent is the feature map: remove its latent$"),
    (MINIMAL + '[classifiers]\nencoder = "a"\nstrategies = ["frozen", "frozen"]\n',
     "strategies names one strategy twice; name each once"),
    (MINIMAL + '[classifiers]\nencoder = ["a", "a"]\n', "encoder names one encoder twice; name each once"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "linear"\n[[ablation]]\nchange = "x"\nbaseline = "a"\n'
     'variant = "b"\n[[ablation]]\nchange = "y"\nbaseline = "a"\nvariant = "b"\n',
     "ablation 'y' compares a with b, as a line before it does; remove one"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "linear"\n[[ablation]]\nchange = "x"\nbaseline = "a"\n'
     'variant = "b"\n[[ablation]]\nchange = "y"\nbaseline = "b"\nvariant = "a"\n',
     "ablation 'y' compares b with a, as a line before it does the other way round \\(a change and its reverse are "
     "one question, one interval\\); remove one$"),
    ('[model]\ndropout = 0.0\n[[autoencoders]]\nname = "a"\n[[autoencoders]]\nname = "b"\ndropout_after_pool = true\n'
     '[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n',
     "ablation 'x': a and b train the same model"),  # no dropout: where it goes changes nothing
    ('[[autoencoders]]\nname = "a"\n[[autoencoders]]\nname = "b"\n[autoencoders.train]\nchannels_last = false\n'
     '[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n',
     "ablation 'x': a and b train the same model"),  # how a run is carried out is no change of model
    (MINIMAL + "[profiles.default]\nseeds = 2\n", "a profile cannot be named 'default'"),
    # a name that is no string, read for the command line's --precision before the file is checked
    ('[[autoencoders]]\nname = ["a"]\n[[autoencoders]]\nname = "b"\n[[ablation]]\nchange = "x"\nbaseline = "a"\n'
     'variant = "b"\n', "^study file s.toml: autoencoders\\[0\\] needs a name"),
    # a seed in an autoencoder's table has no home: not sent to its train, which refuses it
    (MINIMAL + "seed = 1\n", "^study file s.toml: unknown key 'seed' in autoencoders\\[0\\]; known keys"),
    # of two unknown keys, the first in order is named
    ("colour = 1\nflavour = 2\n" + MINIMAL, "^study file s.toml: unknown key 'colour' in the top level"),
    ('dataset = 3\n' + MINIMAL, "^study file s.toml: dataset must be a string$"),
    ('name = ".hidden"\n' + MINIMAL, "^study file s.toml: name '.hidden' names the study's default folder"),
    ('[[autoencoders]]\nname = "a_b"\narch = "conv"\n', "^study file s.toml: autoencoders\\[0\\] needs a name of letters, "
     "digits and '-'"),
    (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "linear"\n[[ablation]]\nchange = ""\nbaseline = "a"\nvariant = "b"\n',
     "^study file s.toml: ablation\\[0\\]: change must name the change$"),
    (MINIMAL + '[explore]\nautoencoders = [1]\n', "^study file s.toml: \\[explore\\]: autoencoders must be a list of names"),
    (MINIMAL + '[targets]\nautoencoder = 1\nval_mse = 0.1\n', "^study file s.toml: \\[targets\\]: autoencoder must be a name, got 1$"),
])
def test_bad_study_files(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_study(write(tmp_path, text))


def refuse_lines(plan, states, study, folder, data):
    """``preflight.refuse_lines_of_one_model`` on each run's settings as ``plan_states`` would know
    them (``preflight.concrete``: "auto" resolved here, or as a run in ``folder`` started)."""
    known = {r.name: (preflight.concrete(r.config, folder.run(r.name), data), True) for r in plan}
    preflight.refuse_lines_of_one_model(plan, states, known, study, folder)


def test_an_ablation_line_set_apart_by_auto_alone_is_refused_before_it_trains(tmp_path, data_dir, tiny, capsys):
    """precision "auto" against the value auto takes on this machine trains one model twice: what
    "auto" resolves to is known only here, so the line is refused before anything trains (by
    ``study --plan`` too), naming both values; against the other value, the study plans."""
    from fashionae.training import native_bf16
    here, other = ("bf16", "fp32") if native_bf16("cpu") else ("fp32", "bf16")
    out, options = study_out(tmp_path, data_dir)
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
            '[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 8\ntrain = {{ precision = "{}" }}\n'
            '[[ablation]]\nchange = "explicit precision"\nbaseline = "a"\nvariant = "b"\n')
    for plan in (["--plan"], []):
        assert main(["study", str(write(tmp_path, body.format(here))), *options, *plan]) == 2
        assert capsys.readouterr().err.endswith(
            "error: ablation 'explicit precision': a and b would train the same model, as they differ only by "
            f"what \"auto\" resolves to on this machine: precision auto and {here}, both {here}; give both the "
            "setting explicitly, each its own value, to compare them, or remove the line\n")
        assert not (out / "runs").exists()
    assert main(["study", str(write(tmp_path, body.format(other))), *options, "--plan"]) == 0
    # its runs all finished (before this was refused): kept, its line reported as of one model, not judged
    from fashionae.plan import make_plan
    study = load_study(write(tmp_path, body.format(here)))
    plan = make_plan(study)
    refuse_lines(plan, {r.name: "complete" for r in plan}, study, StudyFolder(out), tiny)


def test_an_ablation_line_whose_finished_seeds_are_one_model_and_new_ones_two_is_refused(tmp_path, tiny, monkeypatch):
    """Seeds 0 and 1 trained where auto chose bf16 (one model: a = auto, b = bf16); seed 2, to train
    where auto chooses fp32, would be two: a line mixing them measures neither, refused by its
    seeds. And where a kept run of the auto side started (resumed here), its start is said to
    have decided auto."""
    from fashionae.plan import make_plan
    from fashionae.runfolder import RunFolder
    study = load_study(write(tmp_path, TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
                             '[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 8\n'
                             'train = { precision = "bf16" }\n[[ablation]]\nchange = "bf16"\nbaseline = "a"\n'
                             'variant = "b"\n'))
    study = replace(study, seeds=[0, 1, 2])
    plan = make_plan(study)
    states = {r.name: "new" if r.seed == 2 else "complete" for r in plan}

    def concrete(cfg, run_folder, data):  # auto: bf16 where seeds 0 and 1 started, fp32 here
        chosen = "bf16" if not run_folder.path.name.endswith("seed2") else "fp32"
        precision = chosen if cfg.train.precision == "auto" else cfg.train.precision
        return replace(cfg, train=replace(cfg.train, precision=precision, device="cpu", dropout_masks="counter"))
    monkeypatch.setattr(preflight, "concrete", concrete)
    folder = StudyFolder(tmp_path / "out")
    with pytest.raises(UserError, match="^ablation 'bf16': a and b trained the same model on seeds 0, 1, as those runs "
                                        "started \\(precision auto and bf16, both bf16\\), and would train two "
                                        "on seed 2: a line mixing them measures neither; remove the line, or delete"):
        refuse_lines(plan, states, study, folder, tiny)
    # seed 2 finished too, as two models: nothing left to train mixes the line, which is kept as it ran
    refuse_lines(plan, {r.name: "complete" for r in plan}, study, folder, tiny)
    # seed 2 alike too, its auto side's run kept here half-trained: its start decided auto
    monkeypatch.setattr(preflight, "concrete", lambda cfg, f, d: concrete(cfg, RunFolder(tmp_path / "seed0"), d))
    monkeypatch.setattr(RunFolder, "started", lambda self: self.path.name == "ae-a-seed2" or None)
    with pytest.raises(UserError, match="train the same model on seed 2, as they differ only by what \"auto\" resolves "
                                        "to on this machine, or resolved to where a kept run started: precision auto "
                                        "and bf16, both bf16"):
        refuse_lines(plan, states, study, folder, tiny)
    monkeypatch.setattr(RunFolder, "started", lambda self: self.path.name == "ae-b-seed2" or None)  # b's: set, not auto
    with pytest.raises(UserError, match="train the same model on seed 2, as they differ only by what \"auto\" resolves "
                                        "to on this machine: "):
        refuse_lines(plan, states, study, folder, tiny)


def test_an_ablation_line_that_the_command_lines_precision_makes_one_model_says_so(tmp_path):
    """--precision sets every run's: two autoencoders set apart by their precisions alone train
    one model under it, which the refusal names (the file alone reads otherwise)."""
    text = (MINIMAL.replace('"conv"\n', '"conv"\ntrain = { precision = "fp32" }\n') + '[[autoencoders]]\nname = "b"\n'
            'arch = "conv"\ntrain = { precision = "bf16" }\n[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n')
    assert [a.train.precision for a in load_study(write(tmp_path, text)).autoencoders] == ["fp32", "bf16"]
    with pytest.raises(UserError, match="^study file s.toml: ablation 'x': a and b train the same model with --precision "
                                        "bf16 \\(which sets every run's\\), so the line would compare a model with "
                                        "itself; change the variant, or leave out --precision$"):
        load_study(write(tmp_path, text), train_overrides={"precision": "bf16"})
    # alike whatever the option (their precisions the same as written): not said to be its doing
    alike = text.replace('precision = "fp32"', 'device = "cpu"').replace('train = { precision = "bf16" }\n', '')
    for same in (alike, alike.replace('device = "cpu"', 'device = "cpu", precision = "auto"')):  # auto, unset or not
        with pytest.raises(UserError, match="^study file s.toml: ablation 'x': a and b train the same model, so the "
                                            "line would compare a model with itself; change the variant$"):
            load_study(write(tmp_path, same), train_overrides={"precision": "fp32"})


def test_an_ablation_line_set_apart_by_auto_alone_is_refused_after_other_lines(tmp_path, tiny):
    """Every line is looked at, not only the first: one of two models (latent 8 against 4) or one
    whose runs all finished before it is passed by, and the next line, of one model, is still
    refused."""
    from fashionae.plan import make_plan
    from fashionae.training import native_bf16
    here = "bf16" if native_bf16("cpu") else "fp32"
    study = load_study(write(tmp_path, TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
                             '[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 8\n'
                             f'train = {{ precision = "{here}" }}\n'
                             '[[autoencoders]]\nname = "c"\narch = "linear"\nlatent = 4\n'
                             '[[ablation]]\nchange = "smaller"\nbaseline = "a"\nvariant = "c"\n'
                             '[[ablation]]\nchange = "explicit precision"\nbaseline = "a"\nvariant = "b"\n'))
    plan = make_plan(study)
    folder = StudyFolder(tmp_path / "out")
    finished = {r.name: "complete" if r.group in ("a", "c") else "new" for r in plan}
    for states in ({r.name: "new" for r in plan}, finished):
        with pytest.raises(UserError, match="ablation 'explicit precision': a and b would train the same model, as"):
            refuse_lines(plan, states, study, folder, tiny)
    # seeds added to a finished study (--seeds raised): a new seed of one model is refused, by its number,
    # whatever the finished seeds compared (they are kept, and were judged on what they ran)
    study = replace(study, seeds=[0, 1, 2])
    plan = make_plan(study)
    added = {r.name: "new" if r.seed == 2 else "complete" for r in plan}
    with pytest.raises(UserError, match="^ablation 'explicit precision': a and b would train the same model on seed 2, "
                                        "as they differ only by"):
        refuse_lines(plan, added, study, folder, tiny)


def test_a_folder_whose_study_asked_a_line_and_its_reverse_is_read_as_it_ran(tmp_path):
    """Refused in a study file since 0.3.17, a line and its reverse in a folder's study.json (as
    the study ran) still read: its report is rebuilt, the pair one comparison."""
    two = MINIMAL + '[[autoencoders]]\nname = "b"\narch = "linear"\n[[ablation]]\nchange = "x"\nbaseline = "a"\n' \
        'variant = "b"\n'
    d = load_study(write(tmp_path, two)).to_dict()
    d["ablation"].append({"change": "y", "baseline": "b", "variant": "a"})
    assert [(c.baseline, c.variant) for c in Study.from_dict(d, "study.json").ablation] == [("a", "b"), ("b", "a")]


def test_two_classifier_stages_that_would_share_a_folder_are_refused_before_anything_trains(tmp_path):
    from fashionae.plan import make_plan
    study = load_study(write(tmp_path, '[[autoencoders]]\nname = "a"\nlatent = 8\n[[autoencoders]]\nname = "a-random"\n'
                                        'latent = 16\n[classifiers]\nencoder = ["a", "a-random"]\n'
                                        'strategies = ["frozen", "random-frozen"]\n'))
    with pytest.raises(UserError, match=r"^study s: two of its runs would share the folder "
                                        r"clf-a-random-frozen-seed0; rename one of the autoencoders whose names it joins$"):
        make_plan(study)


def test_seeds_on_the_command_line_are_checked_as_such(tmp_path):
    with pytest.raises(UserError, match=r"^--seeds must be an integer from 1 to 100, got 0$"):
        load_study(write(tmp_path, MINIMAL), seeds=0)


def test_the_profile_note_of_a_study_run_with_other_seeds_says_what_ran():
    """A profile's note tells its seeds ("3 seeds, 2 epochs ..."); run with --seeds 2, the
    report's About says so beside it, not only the file's 3."""
    note = load_study(STUDIES / "compare.toml").profile_note
    assert note.startswith("Quick profile: 3 seeds")
    assert load_study(STUDIES / "compare.toml", seeds=3).profile_note == note
    assert load_study(STUDIES / "compare.toml", seeds=2).profile_note == note + " (Run with --seeds 2; the profile has 3.)"


def test_the_command_lines_train_settings_override_every_train_table_of_the_file(tmp_path):
    text = ('[train]\nprecision = "bf16"\n[[autoencoders]]\nname = "a"\ntrain = { precision = "bf16" }\n'
            '[[autoencoders]]\nname = "b"\narch = "conv"\n[classifiers]\nencoder = "a"\n'
            'train = { precision = "bf16", device = "cpu" }\n')
    s = load_study(write(tmp_path, text), train_overrides={"precision": "fp32", "device": "cpu"})
    trains = [a.train for a in s.autoencoders] + [s.classifiers.train]
    assert [(t.precision, t.device) for t in trains] == [("fp32", "cpu")] * 3
    assert load_study(write(tmp_path, text)).autoencoders[0].train.precision == "bf16"  # the file's, without


def test_the_train_table_takes_a_classifiers_setting_for_the_classifiers_only(tmp_path):
    """[train] holds every training setting; one only classifiers take (augment) goes to them, and
    the autoencoders train without it."""
    s = load_study(write(tmp_path, MINIMAL + '[train]\naugment = true\n[classifiers]\nencoder = "a"\n'))
    assert s.classifiers.train.augment and not s.autoencoders[0].train.augment


def test_profiles(tmp_path):
    with pytest.raises(UserError, match="no profile 'fast'.*quick"):
        load_study(write(tmp_path, MINIMAL + "[profiles.quick]\nseeds = 2\n"), "fast")
    s = load_study(write(tmp_path, MINIMAL + "[profiles.quick]\nseeds = 2\ntrain = { epochs = 4 }\n"))
    assert s.profile == "quick" and s.seeds == [0, 1] and s.autoencoders[0].train.epochs == 4
    paper = load_study(PAPER, "paper")
    assert paper.classifiers.paper_head and paper.autoencoders[0].train.val == "test"
    assert paper.autoencoders[0].train.epochs == 60 and paper.autoencoders[0].train.batch_size == 100
    assert load_study(PAPER, "full", seeds=5).seeds == list(range(5))


def test_a_dataset_folder_is_checked_for_the_profile_asked_for_only(tmp_path, monkeypatch):
    """Another profile may name a dataset built on another machine, or not yet."""
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, MINIMAL + '[profiles.quick]\nseeds = 1\n[profiles.digits]\ndataset = "data/digits"\n')
    assert load_study(path, "quick").dataset == "fashion-mnist"
    with pytest.raises(UserError, match=r"^study file s.toml: dataset 'data/digits' is not a folder here"):
        load_study(path, "digits")


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_study_files_load_in_every_profile(path, tmp_path, monkeypatch):
    import tomllib
    raw = tomllib.loads(path.read_text())
    monkeypatch.chdir(tmp_path)  # where a dataset of one's own is (as docs/datasets.md has it written)
    (tmp_path / raw.get("dataset", "fashion-mnist")).mkdir(parents=True, exist_ok=True)
    for profile in raw.get("profiles", {}):
        s = load_study(path, profile)
        assert s.autoencoders and s.profile == profile
    assert load_study(path).profile == raw.get("default_profile", "quick")


def test_the_estimate_of_a_run_to_resume_counts_the_epochs_it_has_left():
    from types import SimpleNamespace

    t = TrainConfig(epochs=4, batch_size=50, val="test", train_subset=1_000, eval_subset=200, train_eval_subset=400)
    cfg = RunConfig(train=t)
    data = SimpleNamespace(train_images=[0] * 5_000, test_images=[0] * 1_000)
    probes = {preview.probe_key(cfg): (100.0, 200.0)}  # img/s: train, evaluate
    epoch = 1_000 / 100 + (400 + 200) / 200  # 13 s; and the test set once at the end, 1 s
    assert preview.estimate_seconds(cfg, data, probes) == 4 * epoch + 1
    assert preview.estimate_seconds(cfg, data, probes, trained=3) == epoch + 1
    assert preview.estimate_seconds(cfg, data, probes, trained=4) == 1


def test_a_run_re_measures_no_more_training_images_than_it_trains_on():
    """train_eval_subset above the training images: the epoch's re-measurement counts those there are."""
    from types import SimpleNamespace

    data = SimpleNamespace(train_images=[0] * 5_000, test_images=[0] * 1_000)
    t = TrainConfig(val="test", train_subset=1_000, eval_subset=200, train_eval_subset=400)
    assert preview.image_counts(t, data) == (1_000, 400, 200, 200)
    assert preview.image_counts(replace(t, train_eval_subset=3_000), data) == (1_000, 1_000, 200, 200)
    assert preview.image_counts(replace(t, train_eval_subset=None), data) == (1_000, 1_000, 200, 200)


def test_runs_in_another_precision_are_probed_on_their_own(monkeypatch):
    """bf16 and fp32 train at different speeds: a study holding both probes each, and each run's
    estimate is its own precision's."""
    from types import SimpleNamespace

    from fashionae import bench
    speeds = {"fp32": (100.0, 200.0), "bf16": (400.0, 800.0)}
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: speeds[train.precision])
    data = SimpleNamespace(train_images=[0] * 5_000, test_images=[0] * 1_000)
    t = TrainConfig(epochs=1, batch_size=50, val="test", train_subset=1_000, eval_subset=200, precision="fp32")
    probes = {}
    fp32 = preview.estimate_seconds(RunConfig(train=t), data, probes)
    bf16 = preview.estimate_seconds(RunConfig(train=replace(t, precision="bf16")), data, probes)
    assert (fp32, bf16) == (1_000 / 100 + 1_200 / 200 + 1, (1_000 / 100 + 1_200 / 200 + 1) / 4)


def test_the_plan_estimates_nothing_for_a_finished_run(tmp_path, monkeypatch):
    """A finished run trains no more: no probe of its model, 0 s in the plan's total."""
    from types import SimpleNamespace

    from fashionae import bench
    probed = []
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: probed.append(model) or (100.0, 200.0))
    study = load_study(write(tmp_path, 'seeds = 1\n' + MINIMAL + '[[autoencoders]]\nname = "b"\narch = "linear"\n'
                                        '[train]\nepochs = 2\nval = "test"\ntrain_subset = 100\neval_subset = 50\n'), None)
    plan = plan_mod.make_plan(study)
    states = {plan[0].name: "complete", plan[1].name: "resume"}  # (a checkpoint it cannot read: from epoch 1)
    rows = preview.describe(plan, states, {r.name: (r.config, True) for r in plan},
                            SimpleNamespace(train_images=[0] * 1_000, test_images=[0] * 500), StudyFolder(tmp_path / "out"))
    assert [r["estimated_seconds"] for r in rows] == [0.0, 2 * (100 / 100 + 150 / 200) + 50 / 200]
    assert probed == [plan[1].config.model]
    out = io.StringIO()
    preview.print_plan(rows, as_json=False, out=out)
    assert "\n2 runs, 1 finished; " in out.getvalue()  # the resumed one is not


def test_the_speed_probe_takes_a_batch_no_larger_than_the_images_trained_on(monkeypatch):
    """A batch size above the training images (valid: a batch holds what there is) is probed at
    their number, not allocated whole (10,000,000 images of 28x28: 31 GB)."""
    from types import SimpleNamespace

    from fashionae import bench
    probed = []
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: probed.append(train.batch_size) or (1.0, 1.0))
    cfg = RunConfig(train=TrainConfig(epochs=1, batch_size=10_000_000, val="test", train_subset=300))
    preview.estimate_seconds(cfg, SimpleNamespace(train_images=[0] * 5_000, test_images=[0] * 100), {})
    assert probed == [300]


def test_the_plan_of_an_interrupted_run_estimates_the_epochs_it_has_left(data_dir, tmp_path, monkeypatch, capsys):
    from fashionae import bench
    path = write(tmp_path, 'name = "tiny"\nseeds = 1\n[train]\nepochs = 3\nbatch_size = 50\ntrain_subset = 200\n'
                           'eval_subset = 100\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
                           '[baselines]\nenabled = false\n')
    real_execute = executors.execute

    def stop(row):
        raise KeyboardInterrupt  # after the first epoch's checkpoint

    monkeypatch.setattr(executors, "execute", lambda cfg, folder, **kw: real_execute(cfg, folder, **{**kw, "on_epoch": stop}))
    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(path, None), tmp_path / "out", data_dir=str(data_dir), verify=False, **QUIET)
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: (100.0, 200.0))
    assert main(["study", str(path), "--plan", "--json", "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["state"] == "resume"
    epoch = 200 / 100 + (200 + 100) / 200
    assert row["estimated_seconds"] == pytest.approx(2 * epoch + 100 / 200)  # the checkpoint holds epoch 1
    # a damaged checkpoint: the run will refuse it when it starts, which the plan says; it counts every epoch
    (tmp_path / "out" / "runs" / "ae-a-seed0" / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    assert main(["study", str(path), "--plan", "--json", "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["state"] == "damaged" and row["estimated_seconds"] == pytest.approx(3 * epoch + 100 / 200)
    assert main(["study", str(path), "--plan", "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
                 "--no-verify"]) == 0  # said, with what the study will do (it said resume, and the study refused it)
    assert "\ndamaged: an unfinished run whose training state cannot be read, which the study refuses when it starts " \
           "(it says why): delete its checkpoint.safetensors to train it from epoch 1\n" in capsys.readouterr().out
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--data-dir", str(data_dir), "--no-verify"]) == 2
    assert "checkpoint.safetensors is not a valid safetensors file" in capsys.readouterr().err
    # no training state at all (stopped in its first epoch; deleted): said to start again, as it will
    (tmp_path / "out" / "runs" / "ae-a-seed0" / "checkpoint.safetensors").unlink()
    assert main(["study", str(path), "--plan", "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert "ae-a-seed0  restart " in out and ("\nrestart: an unfinished run with no training state to resume from "
                                              "(stopped in its first epoch, or its checkpoint deleted): trained from "
                                              "epoch 1\n") in out
    from fashionae.lock import FolderLock
    with FolderLock(tmp_path / "out"):  # a study training it now: its states are said to change
        assert main(["study", str(path), "--plan", "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
                     "--no-verify"]) == 0
    assert capsys.readouterr().err.endswith(
        f"note: {tmp_path / 'out'} is in use by another fashionae process (pid {os.getpid()} on {platform.node()}): "
        "the states above are as they are now, and change as it trains\n")


def test_the_plan_as_a_table(data_dir, tmp_path, capsys):
    assert main(["study", str(PAPER), "--profile", "smoke", "--plan", "--out", str(tmp_path / "plan"),
                 "--data-dir", str(data_dir), "--no-verify"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "state", "model", "images", "epochs", "batch", "lr", "schedule", "val",
                                "precision", "dropout", "head", "estimate"]
    assert lines[1].split()[:6] == ["ae-linear-64-seed0", "new", "linear", "64", "400/300", "1"]
    assert lines[4].split()[:3] == ["ae-conv-seed0", "new", "conv"]
    assert len([line for line in lines if line.startswith(("ae-", "clf-"))]) == 8
    assert lines[-2].startswith("8 runs, 0 finished; estimated wall time of the rest on this machine")
    assert lines[-1] == ("Not in the estimate, after the runs: the baselines (PCA, mean image, logistic regression "
                         "on pixels).")
    assert not (tmp_path / "plan").exists()
    assert "under Ray" not in capsys.readouterr().err
    extra_or_skip("ray", "ray")  # the executor's options are checked under --plan too
    assert main(["study", str(PAPER), "--profile", "smoke", "--plan", "--out", str(tmp_path / "plan"),
                 "--data-dir", str(data_dir), "--no-verify", "--executor", "ray"]) == 0
    assert "note: under Ray the runs overlap" in capsys.readouterr().err


def test_a_subset_larger_than_the_data_is_said_once_for_the_study(data_dir, tmp_path, capsys):
    """Every run of a study asks for more images than the data holds: the plan and the study say
    it once, for all of them, not once a run (a run alone says its own: tests/test_cli.py)."""
    study = tmp_path / "big.toml"
    study.write_text('name = "big"\nseeds = 2\n[train]\nepochs = 1\nbatch_size = 100\ntrain_subset = 50000\n'
                     'eval_subset = 500\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
                     '[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 16\n[baselines]\nenabled = false\n')
    note = ("ae-a-seed0 and 3 more runs: train_subset 50,000 is more than the 9,167 training images; all of them are "
            "used")
    for plan in (["--plan"], []):
        assert main(["study", str(study), *plan, "--out", str(tmp_path / "s"), "--data-dir", str(data_dir),
                     "--no-verify"]) == 0
        err = capsys.readouterr().err
        assert err.count("is more than the") == 1 and note in err.splitlines(), err
    # once they are trained, there is nothing left to say it of
    for plan in (["--plan"], []):
        assert main(["study", str(study), *plan, "--out", str(tmp_path / "s"), "--data-dir", str(data_dir),
                     "--no-verify"]) == 0
        assert "is more than the" not in capsys.readouterr().err


def test_the_plans_bf16_warning_leaves_out_the_runs_already_finished(data_dir, tmp_path, capsys, monkeypatch):
    """Runs finished in bf16 train no more: the plan's warning counts only those left to train."""
    from fashionae import bench, training
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: (100.0, 200.0))  # no timing here
    out, common = study_out(tmp_path, data_dir)
    body = (TINY_TRAIN + 'precision = "bf16"\n[baselines]\nenabled = false\n[[autoencoders]]\nname = "a"\n'
            'arch = "linear"\nlatent = 8\n[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 16\n')
    assert main(["study", str(write(tmp_path, body)), *common]) == 0
    body += '[[autoencoders]]\nname = "c"\narch = "linear"\nlatent = 4\n'
    capsys.readouterr()
    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    assert main(["study", str(write(tmp_path, body)), "--plan", *common]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ae-c-seed0 asks for bf16, and bf16 is emulated")


def test_a_wall_time_reads_in_the_largest_units_that_matter():
    assert [progress_mod.duration(s) for s in (-1, 42, 245, 3599, 3600, 24_945)] == [
        "0s", "42s", "4m05s", "59m59s", "1h00m", "6h55m"]


def test_the_plan_warns_once_of_bf16_on_a_machine_that_emulates_it(data_dir, tmp_path, capsys, monkeypatch):
    from fashionae import training
    args = ["study", str(PAPER), "--profile", "smoke", "--plan", "--out", str(tmp_path / "plan"),
            "--data-dir", str(data_dir), "--no-verify", "--device", "cpu", "--precision", "bf16"]
    from fashionae import bench
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: (100.0, 200.0))  # no timing here
    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "warning: 8 runs (ae-linear-64-seed0 first) ask for bf16, and bf16 is emulated on this CPU" in err
    assert next(line for line in err.splitlines() if line.startswith("warning:")).endswith(
        "; --precision auto chooses fp32 here")
    monkeypatch.setattr(training, "native_bf16", lambda device: True)
    assert main(args) == 0 and "warning" not in capsys.readouterr().err


def test_out_holding_another_study_is_refused(tmp_path):
    """Unless it holds only what a study writes before its runs (one refused by its executor, say):
    that folder is taken."""
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / "study.json").write_text(json.dumps({"name": "other", "profile": "quick"}))
    (out / "samples.safetensors").write_bytes(b"")
    (out / ".study.json.k1ll3d_8.tmp").write_text("{")  # left by a write that was killed: bookkeeping, not a study's
    empty = tmp_path / "empty"  # a data folder without the data: the error that comes past the folder's check
    empty.mkdir()  # (it was /nonexistent, which some machines have as a folder, and others not at all)
    with pytest.raises(UserError, match=f"^{re.escape(str(empty))} has no train-images"):
        run_study(load_study(PAPER, "smoke"), out, data_dir=str(empty), **QUIET)
    for kept in ("runs/ae-x-seed0", "report.md"):  # a run (even unstarted), or another study's outputs
        (out / kept).mkdir()
        with pytest.raises(UserError, match="holds another study"):
            run_study(load_study(PAPER, "smoke"), out, data_dir=str(empty), **QUIET)
        (out / kept).rmdir()
    assert json.loads((out / "study.json").read_text())["name"] == "other"


def test_future_study_compares_encoder_types(data_dir, tmp_path):
    """Several encoders in one classifier stage, and the latent-space section."""
    s = load_study(STUDIES / "future.toml", "smoke")
    # two of its encoder types, linear, to keep the test short: the paper's and the strong one
    # (batch norm: its statistics must travel into the classifier and the latent-space section)
    s.autoencoders = [a for a in s.autoencoders if a.model.arch == "linear" and a.name != "strided-512"]
    s.classifiers.strategies = ["finetune"]
    s.classifiers.encoders = s.explore.autoencoders = ["paper-512", "strong-512"]
    s.ablation = [c for c in s.ablation if c.variant == "strong-512"]
    out = tmp_path / "future"
    results = run_study(s, out, data_dir=str(data_dir), verify=False, **QUIET)
    names = [c["name"] for c in results["classifiers"]]
    assert names == ["paper-512/finetune", "strong-512/finetune"]
    # the ablation line pairs the two encoders' classifiers too
    (line,) = results["ablation"]
    fine = line["classifiers"]["finetune"]["test_acc"]
    assert fine["values"] == pytest.approx([100 * (results["classifiers"][1]["test_acc"]["mean"]
                                                   - results["classifiers"][0]["test_acc"]["mean"])])
    assert (out / "runs" / "clf-strong-512-finetune-seed0" / "summary.json").is_file()
    # the probes on the codes of the images the profile trains on (its train_subset), not 10,000
    assert all(a["explore"]["knn_acc"] > 0 and a["explore"]["fit_images"] == s.autoencoders[0].train.train_subset
               for a in results["autoencoders"])
    page = (out / "report.html").read_text()
    assert "Latent space" in page and "latent_strong-512_latent_pca.png" in page
    assert "what each change of encoder does to the classifiers' accuracy" in page
    assert "overview_ablation_classifiers.png" in page
    assert "the ablation's classifier comparisons give no verdict" in page

    # an edited explore.json is named by the report and computed again by the study
    explored = out / "runs" / "ae-strong-512-seed0" / "explore" / "explore.json"
    scores = json.loads(explored.read_text())
    explored.write_text(json.dumps({**scores, "knn_acc": "high"}))
    with pytest.raises(UserError, match=rf"^{re.escape(str(explored))} is damaged or was edited; run the "
                                        "study command again: it computes it again$"):
        collect_results(out)
    # and one whose figure was edited into another number (it records its own digest), one copied from another
    # run, one stopped before its scores, and one deleted: each named, none reported as the run's
    kept = out / "runs" / "ae-paper-512-seed0" / "explore" / "explore.json"
    for state, why in (({**scores, "knn_acc": 0.99}, "is damaged or was edited"),
                       (json.loads(kept.read_text()), "holds the latent space of another model than "
                                                      f"{explored.parent.parent}'s .copied from another run"),
                       ({k: scores[k] for k in ("run", "model_sha256")}, "holds no scores: the latent space was "
                                                                          "stopped before it was finished"),
                       (None, r"is missing \(the study was stopped before it mapped the run, or it was deleted\)")):
        if state is None:
            explored.unlink()
        else:
            explored.write_text(json.dumps(state))
        with pytest.raises(UserError, match=rf"^{re.escape(str(explored))} {why}"):
            collect_results(out)
    kept = out / "runs" / "ae-paper-512-seed0" / "explore" / "explore.json"
    kept_at = kept.stat().st_mtime_ns
    again = run_study(s, out, data_dir=str(data_dir), verify=False, **QUIET)
    assert again["autoencoders"][-1]["explore"]["knn_acc"] == scores["knn_acc"]
    assert kept.stat().st_mtime_ns == kept_at  # the other encoder's latent space, intact, is not computed again


def test_plan_of_the_paper_profile(data_dir, tmp_path, capsys):
    """--plan trains nothing and shows every run's resolved settings: the paper profile is the
    author's protocol, with classifier stages on both the 1024 and the 512 encoder."""
    out = tmp_path / "plan"
    assert main(["study", str(PAPER), "--profile", "paper", "--plan", "--json", "--out", str(out),
                 "--data-dir", str(data_dir), "--no-verify"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert not out.exists()
    assert len(rows) == 4 + 2 * 4
    for r in rows:
        t = r["train"]
        assert (t["precision"], t["val"], t["epochs"], t["batch_size"], t["lr"], t["schedule"]) == \
            ("fp32", "test", 60, 100, 0.001, "constant")
        assert r["model"]["dropout"] == 0.2 and r["state"] == "new" and r["estimated_seconds"] > 0
    clfs = [r for r in rows if r["kind"] == "classifier"]
    assert all(r["model"]["paper_head"] for r in clfs)
    assert {r["encoder"] for r in clfs} == {"linear-1024", "linear-512"}
    assert {r["model"]["latent"] for r in clfs} == {1024, 512}
    assert all(r["needs"] == [f"ae-{r['encoder']}-seed0"] for r in clfs)


@pytest.mark.parametrize("study", [PAPER, STUDIES / "future.toml"])
def test_recommended_profile_has_seeds_enough_and_never_looks_at_the_test_set(study):
    """The recommended protocol is judged by verdicts and targets: 3 seeds of every run, held-out
    validation for every choice, and targets on validation figures only."""
    resolved = load_study(study, "recommended")
    plan = plan_mod.make_plan(resolved)
    seeds: dict[str, set[int]] = {}
    for run in plan:
        t = run.config.train
        assert (t.val, t.schedule, run.config.model.dropout) == ("holdout", "onecycle", 0.0)
        assert t.augment == (run.kind == "classifier")
        seeds.setdefault(run.group, set()).add(run.seed)
    assert seeds and all(s == {0, 1, 2} for s in seeds.values())
    targets = resolved.targets  # test_* targets are refused on load
    assert targets.val_mse is not None and targets.val_acc is not None


def test_best_encoder_is_refused_when_validation_is_the_test_set(tmp_path):
    text = MINIMAL + '[train]\nval = "test"\n[classifiers]\nencoder = "best"\n'
    with pytest.raises(UserError, match="choose the encoder on the test set"):
        load_study(write(tmp_path, text))
    with pytest.raises(UserError, match="judged on the validation set"):
        load_study(write(tmp_path, MINIMAL + '[classifiers]\n[targets]\nclassifier = "finetune"\ntest_acc = 0.9\n'))
    # targets on validation figures, where validation is the test set, are test targets
    on_test = MINIMAL + '[train]\nval = "test"\n[targets]\nautoencoder = "a"\nval_mse = 0.01\n'
    with pytest.raises(UserError, match=r"\[targets\] would be judged on the test set \(val = \"test\"\)"):
        load_study(write(tmp_path, on_test))
    assert load_study(write(tmp_path, on_test.replace('"test"', '"holdout"'))).targets.val_mse == 0.01


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_on_a_terminal_and_plain_lines_in_a_log(monkeypatch):
    monkeypatch.setattr(shutil, "get_terminal_size", lambda: os.terminal_size((60, 20)))
    plan = plan_mod.make_plan(load_study(PAPER, "smoke"))
    states = {r.name: "new" for r in plan}
    first = plan[0]

    screen, logged = Terminal(), []
    progress = progress_mod.Progress(plan, states, 400, logged.append, stream=screen)
    progress.start(first)
    progress.step(4, 4)  # the last step is always drawn
    assert progress.epoch(first, {"epoch": 1, "seconds": 2.0}) is None  # the line says it
    progress.finished(first, {"seconds_total": 2.0})
    progress.close()
    drawn = screen.getvalue().split("\r\033[K")  # each redraw returns and clears the line
    assert "\n" not in screen.getvalue() and drawn[-1] == ""
    assert drawn[1] == "0/8 runs,   0% done, time left unknown yet · ae-linear-64 s"  # cut: never wraps
    assert drawn[2] == "0/8 runs,  12% done, time left unknown yet · ae-linear-64 s"
    assert logged == ["ae-linear-64 seed 0: done (1/8 runs, 2 s)"]  # above the line

    log, logged = io.StringIO(), []
    progress = progress_mod.Progress(plan, states, 400, logged.append, stream=log)
    progress.start(first)
    progress.step(4, 4)
    assert progress.epoch(first, {"epoch": 1, "seconds": 2.0}).startswith("0/8 runs,  12% done, about")
    progress.finished(first, {"seconds_total": 2.0})
    assert log.getvalue() == "" and logged == ["ae-linear-64 seed 0: done (1/8 runs, 2 s)"]


def test_progress_counts_the_epochs_a_run_to_resume_or_train_on_has_already():
    """A run of 4 epochs to train on from 2 is half done before it starts: the rest of the plan
    (here, nothing else) is what is left, not the whole run again."""
    study = load_study(PAPER, "smoke")
    plan = [replace(run, config=replace(run.config, train=replace(run.config.train, epochs=4)))
            for run in plan_mod.make_plan(study)[:2]]
    states = {plan[0].name: "extend", plan[1].name: "complete"}
    progress = progress_mod.Progress(plan, states, 400, lambda m: None, stream=io.StringIO(), trained={plan[0].name: 2})
    assert progress.status().startswith("1/2 runs,  75% done")
    assert progress.epoch(plan[0], {"epoch": 3, "seconds": 2.0}).startswith("1/2 runs,  88% done, about 2s left")


def test_progress_draws_on_the_stderr_of_the_moment(monkeypatch):
    """Not on the sys.stderr of import time, which a test runner or a notebook may have
    replaced (and closed) since."""
    plan = plan_mod.make_plan(load_study(PAPER, "smoke"))
    now = Terminal()
    monkeypatch.setattr(sys, "stderr", now)
    progress = progress_mod.Progress(plan, {r.name: "new" for r in plan}, 400, lambda m: None)
    progress.start(plan[0])
    progress.step(4, 4)
    assert progress.stream is now and "0/8 runs" in now.getvalue()


def test_ablation_pairs_seeds_and_reports_a_table_and_a_figure(data_dir, tmp_path):
    """Each ablation line is the variant's MSE relative to the baseline's, seed by seed, with a
    t-interval over the seeds; the report shows it as a table and as a figure. Both models have
    one latent size, as in an ablation (the size overview then shows points, not a curve)."""
    from fashionae.figures import _intervals
    text = ('seeds = 3\n' + TINY_TRAIN +
            '[[autoencoders]]\nname = "base"\narch = "linear"\nlatent = 16\n'
            '[[autoencoders]]\nname = "lean"\narch = "linear"\nlatent = 16\ndropout = 0.0\n'
            '[[ablation]]\nchange = "no dropout"\nbaseline = "base"\nvariant = "lean"\n')
    out = tmp_path / "study"
    assert main(["study", str(write(tmp_path, text)), "--out", str(out), "--data-dir", str(data_dir),
                 "--no-verify"]) == 0
    results = json.loads((out / "results.json").read_text())
    (row,) = results["ablation"]
    by_name = {a["name"]: a for a in results["autoencoders"]}
    for figure in ("val_mse", "test_mse"):
        expected = [v / b - 1 for b, v in zip(by_name["base"][figure]["values"], by_name["lean"][figure]["values"])]
        assert row[figure]["values"] == pytest.approx(expected)
        low, high = row[figure]["ci"]
        assert low < row[figure]["effect"] < high
    page = (out / "report.md").read_text()
    assert "## Ablation" in page and "no dropout" in page and "base → lean" in page
    assert (out / "figures" / "overview_ablation.png").is_file()
    assert "each at 97.50 %: all hold at once with 95 % confidence)" in page and "with its t-interval on the log scale" in page
    # one seed: its table and figure say there is no interval, not the confidence one would have had
    one = {f: {**row[f], "ci": None, "ci_reason": "one seed: no spread to measure"} for f in ("val_mse", "test_mse")}
    assert _intervals({**results, "ablation": [{**row, **one}]}, "ablation", "on the log scale") == \
        " (one seed: no spread to measure, so no intervals)"
    # the source study's claims compare models this study does not train: none is listed, and
    # the summary ranks means without calling the ranking a verdict
    assert results["reference"] and results["claims"] == [] and "## Claims" not in page
    assert "None of the source study's claims compares models that this study trains" in page
    assert summary(results)[0].endswith(" Each autoencoder trained on 300 images and was validated on 200 and "
                                        "tested on 200.")
    def said(results: dict) -> list[str]:  # (the models of 300 images and 1 epoch learned next to nothing: said)
        return [line for line in summary(results) if not line.startswith("Learned next to nothing: autoencoders ")]
    assert said(results)[1].startswith("The lowest mean test MSE per pixel is ")
    assert said(results)[2] == ("These rank means over seeds; which differences are real is for the ablation to "
                                "say, of the pairs they compare (no other pair is shown to differ).")
    assert said({**results, "ablation": []})[2] == ("These rank means over seeds, and say nothing of which "
                                                    "differences are real.")
    # fewer seeds than a verdict takes: the interval is shown, marked as no verdict
    assert _ablation_effect({**row, "seeds": 2}, "val_mse").endswith(" (2 seeds: no verdict)")
    assert "no verdict" not in _ablation_effect(row, "val_mse")


def test_a_changed_study_names_every_folder_it_no_longer_asks_for(data_dir, tmp_path, capsys):
    """Change one autoencoder's setting after a study ran: its folders, and the classifiers
    trained on them, are named together, before anything trains, by `--plan` too (which lists
    them as 'changed'); once the autoencoders alone are deleted, their classifiers are still
    refused (their own settings follow the encoder's), never kept beside a new encoder."""
    body = ('seeds = 2\n' + TINY_TRAIN +
            '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n{change}'
            '[[autoencoders]]\nname = "b"\narch = "conv"\n'
            '[classifiers]\nencoder = "a"\nstrategies = ["finetune"]\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, body.format(change=""))), *common]) == 0
    runs = out / "runs"
    kept = {p.name: (p / "model.safetensors").read_bytes() for p in runs.iterdir()}
    changed = write(tmp_path, body.format(change="dropout = 0.1\n"))
    capsys.readouterr()

    assert main(["study", str(changed), "--plan", "--json", *common]) == 2
    listing, err = capsys.readouterr()
    states = {json.loads(line)["run"]: json.loads(line)["state"] for line in listing.splitlines()}
    assert states == {"ae-a-seed0": "changed", "ae-a-seed1": "changed", "ae-b-seed0": "complete",
                      "ae-b-seed1": "complete", "clf-finetune-seed0": "changed", "clf-finetune-seed1": "changed"}
    # the classifiers are listed with the settings they will train with, their encoder's new ones
    clf = json.loads(listing.splitlines()[-1])
    assert (clf["run"], clf["model"]["dropout"], clf["settings_final"]) == ("clf-finetune-seed1", 0.1, True)
    assert err == (f"fashionae: error: 4 run folders of {runs} hold runs that differ from what the study asks "
                   "for now: ae-a-seed0 and ae-a-seed1 (each: model.dropout: 0.2 there, 0.1 now), clf-finetune-seed0 "
                   "(trained on an earlier ae-a-seed0), clf-finetune-seed1 "
                   "(trained on an earlier ae-a-seed1); delete them and run the study again (its other "
                   "finished runs are kept), or choose another --out\n")
    assert main(["study", str(changed), *common]) == 2 and capsys.readouterr().err == err

    old_config = (runs / "ae-a-seed0" / "config.json").read_text()
    for seed in (0, 1):
        shutil.rmtree(runs / f"ae-a-seed{seed}")
    assert main(["study", str(changed), *common]) == 2
    assert "clf-finetune-seed0 and clf-finetune-seed1 (each: model.dropout: 0.2 there, 0.1 now)" in \
        capsys.readouterr().err
    assert {p.name: (p / "model.safetensors").read_bytes() for p in runs.iterdir()} == {
        k: v for k, v in kept.items() if k.startswith(("ae-b", "clf"))}  # nothing trained meanwhile
    for seed in (0, 1):
        shutil.rmtree(runs / f"clf-finetune-seed{seed}")
    (runs / "ae-a-seed0").mkdir()  # the old run, killed before its first epoch: nothing to keep
    (runs / "ae-a-seed0" / "config.json").write_text(old_config)
    capsys.readouterr()
    assert main(["study", str(changed), "--plan", "--json", *common]) == 0
    states = {json.loads(line)["run"]: json.loads(line)["state"] for line in capsys.readouterr().out.splitlines()}
    assert states["ae-a-seed0"] == states["ae-a-seed1"] == "new"
    assert main(["study", str(changed), *common]) == 0
    assert (runs / "ae-b-seed0" / "model.safetensors").read_bytes() == kept["ae-b-seed0"]
    assert json.loads((runs / "ae-a-seed0" / "config.json").read_text())["model"]["dropout"] == 0.1


def test_a_study_asked_for_more_epochs_is_trained_on_with_extend_as_the_longer_study(data_dir, tmp_path, capsys,
                                                                                    monkeypatch):
    """With keep_state, a study file asking for more epochs is refused without --extend, saying
    that it trains the runs on; with it, they are trained on and come out as a study of that many
    epochs from the start, bit for bit. An autoencoder trained on has the classifiers that took its
    weights named, to delete, before anything trains; a scratch classifier takes its architecture
    only, and is kept and trained on."""
    body = (TINY_TRAIN + 'keep_state = true\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n{ae}'
            '[classifiers]\nencoder = "a"\nstrategies = ["finetune", "scratch"]\n{clf}[baselines]\nenabled = false\n')
    longer = "train = {{ epochs = 2 }}\n"
    out, common = study_out(tmp_path, data_dir)
    runs = out / "runs"
    assert main(["study", str(write(tmp_path, body.format(ae="", clf=""))), *common]) == 0

    def models(folder: Path) -> dict[str, bytes]:
        return {p.name: (p / "model.safetensors").read_bytes() for p in sorted((folder / "runs").iterdir())}

    def study_of(ae: str, clf: str, into: str) -> dict[str, bytes]:
        """The study of that many epochs from the start, in another folder."""
        assert main(["study", str(write(tmp_path, body.format(ae=ae, clf=clf))), "--out", str(tmp_path / into),
                     *common[2:]]) == 0
        return models(tmp_path / into)

    more_clf = write(tmp_path, body.format(ae="", clf=longer.format()))
    capsys.readouterr()
    assert main(["study", str(more_clf), *common]) == 2
    assert capsys.readouterr().err == (
        f"fashionae: error: 2 run folders of {runs} hold runs that differ from what the study asks for now: "
        "clf-finetune-seed0 and clf-scratch-seed0 (each: train.epochs: 1 there, 2 now; --extend trains it on); run "
        "the study again with --extend to train them on, or delete them to train anew\n")
    assert main(["study", str(more_clf), "--plan", "--json", "--extend", *common]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["state"], r["estimated_seconds"] > 0) for r in rows] == [("complete", False), ("extend", True),
                                                                        ("extend", True)]
    # stopped halfway (a copy of the study): the report says what is left, not that a folder was moved
    stopped, real_execute = tmp_path / "stopped", executors.execute
    shutil.copytree(out, stopped)
    monkeypatch.setattr(executors, "execute", lambda cfg, folder, **kw: (_ for _ in ()).throw(KeyboardInterrupt)
                        if Path(folder).name == "clf-scratch-seed0" else real_execute(cfg, folder, **kw))
    assert main(["study", str(more_clf), "--extend", "--out", str(stopped), *common[2:]]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["report", str(stopped)]) == 2
    assert capsys.readouterr().err == (
        f"fashionae: error: study {stopped} is not finished: 1 of its 3 runs is left (clf-scratch-seed0 first; 1 to "
        f"train on to more epochs); run the same `fashionae study ... --out {stopped} --extend` command again to "
        f"train them on ({stopped / 'report.html'}, its last report, is still there)\n")
    assert main(["study", str(more_clf), "--extend", *common]) == 0
    assert ": 3 runs on fashion-mnist, 1 finished already, 2 to train on from their training state\n" in capsys.readouterr().err
    # read again at 2 epochs, a look at the study after the one at 1: kept, as seeds are (``another_look``)
    assert json.loads((out / "results.json").read_text())["epochs_history"] == [
        {"a": 1, "finetune": 1, "scratch": 1}, {"a": 1, "finetune": 2, "scratch": 2}]
    assert models(out) == study_of("", longer.format(), "clf-longer")
    assert main(["study", str(write(tmp_path, body.format(ae="", clf=""))), "--extend", *common]) == 2
    assert ("clf-finetune-seed0 and clf-scratch-seed0 (each: train.epochs: 2 there, 1 now; --extend trains a run on to "
            "more epochs, never back to fewer)") in capsys.readouterr().err

    # the encoder trained on: the classifier on its weights is named, the scratch one is not
    more_ae = write(tmp_path, body.format(ae=longer.format(), clf=longer.format()))
    kept = models(out)
    (runs / "ae-a-seed0" / "checkpoint.safetensors").rename(tmp_path / "state")
    assert main(["study", str(more_ae), "--extend", *common]) == 2
    assert ("ae-a-seed0 (train.epochs: 1 there, 2 now; a run that did not keep its training state (Adam's moments, "
            "the random generators), which training it on needs), clf-finetune-seed0 (trained on an earlier ae-a-seed0)"
            ) in capsys.readouterr().err
    (tmp_path / "state").rename(runs / "ae-a-seed0" / "checkpoint.safetensors")
    assert main(["study", str(more_ae), "--extend", *common]) == 2
    assert capsys.readouterr().err == (
        f"fashionae: error: 1 run folder of {runs} holds a run that differs from what the study asks for now: "
        "clf-finetune-seed0 (trained on ae-a-seed0, which --extend trains on); delete it and run the study again "
        "with --extend (its other finished runs are kept)\n")
    assert main(["study", str(more_ae), *common]) == 2  # without --extend: the one to delete named, --extend said
    assert capsys.readouterr().err.endswith(
        "ae-a-seed0 (train.epochs: 1 there, 2 now; --extend trains it on), clf-finetune-seed0 (trained on an earlier "
        "ae-a-seed0); delete clf-finetune-seed0 and run the study again with --extend (its other finished runs are "
        "kept)\n")
    assert models(out) == kept  # nothing trained
    shutil.rmtree(runs / "clf-finetune-seed0")
    assert main(["study", str(more_ae), "--extend", *common]) == 0
    assert models(out) == study_of(longer.format(), longer.format(), "both-longer")
    assert len(RunFolder(runs / "clf-scratch-seed0").sessions()) == 2  # trained, then trained on once


def test_an_autoencoder_asked_for_more_epochs_keeps_its_scratch_classifier_and_is_mapped_again(
        data_dir, tmp_path, capsys):
    """An autoencoder asked for more epochs that cannot be trained on (it kept no state) is named
    alone: its scratch classifier takes its architecture only, and stays once it is deleted and
    trained again. Trained on with --extend, its latent space is mapped again: the report's is
    the longer model's, not the one before."""
    body = (TINY_TRAIN + 'keep_state = true\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n{ae}'
            '[classifiers]\nencoder = "a"\nstrategies = ["scratch"]\n[baselines]\nenabled = false\n'
            '[explore]\nautoencoders = ["a"]\ntsne = false\n')
    out, common = study_out(tmp_path, data_dir)
    runs, ae = out / "runs", RunFolder(out / "runs" / "ae-a-seed0")
    assert main(["study", str(write(tmp_path, body.format(ae=""))), *common]) == 0
    assert ae.explore_result()["model_sha256"] == ae.model_sha256()
    scratch = (runs / "clf-scratch-seed0" / "model.safetensors").read_bytes()
    longer = write(tmp_path, body.format(ae="train = { epochs = 2 }\n"))
    (ae / ae.CHECKPOINT).rename(tmp_path / "state")
    capsys.readouterr()
    assert main(["study", str(longer), "--extend", *common]) == 2
    assert capsys.readouterr().err == (
        f"fashionae: error: 1 run folder of {runs} holds a run that differs from what the study asks for now: "
        "ae-a-seed0 (train.epochs: 1 there, 2 now; a run that did not keep its training state (Adam's moments, the "
        "random generators), which training it on needs); delete it and run the study again (its other finished "
        "runs are kept), or choose another --out\n")
    (tmp_path / "state").rename(ae / ae.CHECKPOINT)
    before = ae.model_sha256()
    assert main(["study", str(longer), "--extend", *common]) == 0
    assert "explore: latent space of ae-a-seed0" in capsys.readouterr().err
    assert ae.model_sha256() != before and ae.explore_result()["model_sha256"] == ae.model_sha256()
    assert (runs / "clf-scratch-seed0" / "model.safetensors").read_bytes() == scratch


def test_a_best_classifier_to_train_on_is_judged_again_once_its_encoders_are_trained_on(data_dir, tmp_path, capsys):
    """encoder = "best", a scratch classifier asked for more epochs while an autoencoder it
    compares is trained on: --plan can only list it as 'extend' (the choice is not made yet); once
    the autoencoders are trained on and another one is best, it is refused as the study refuses
    before anything trains, not trained on the encoder it was not trained on."""
    body = (TINY_TRAIN + 'keep_state = true\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
            '[[autoencoders]]\nname = "b"\narch = "linear"\nlatent = 32\n{b}'
            '[classifiers]\nencoder = "best"\nstrategies = ["scratch"]\n{clf}[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    runs = out / "runs"
    assert main(["study", str(write(tmp_path, body.format(b="", clf=""))), *common]) == 0
    assert RunFolder(runs / "clf-scratch-seed0").config().encoder_run.endswith("ae-a-seed0")
    kept = (runs / "clf-scratch-seed0" / "model.safetensors").read_bytes()
    longer = write(tmp_path, body.format(b="train = { epochs = 6 }\n", clf="train = { epochs = 2 }\n"))
    capsys.readouterr()
    assert main(["study", str(longer), "--plan", "--json", "--extend", *common]) == 0
    states = {json.loads(line)["run"]: json.loads(line)["state"] for line in capsys.readouterr().out.splitlines()}
    assert states == {"ae-a-seed0": "complete", "ae-b-seed0": "extend", "clf-scratch-seed0": "extend"}
    assert main(["study", str(longer), "--extend", *common]) == 2
    assert capsys.readouterr().err.endswith(
        f"fashionae: error: 1 run folder of {runs} holds a run that differs from what the study asks for now: "
        "clf-scratch-seed0 (trained on ae-a-seed0, the encoder is now ae-b-seed0); delete it and run the study "
        "again (its other finished runs are kept), or choose another --out\n")
    assert RunFolder(runs / "ae-b-seed0").summary()["epochs"] == 6  # kept
    assert (runs / "clf-scratch-seed0" / "model.safetensors").read_bytes() == kept


def test_a_deleted_encoder_is_trained_again_and_keeps_its_classifiers_if_it_comes_out_the_same(
        data_dir, tmp_path, capsys):
    """An autoencoder folder deleted (damaged, say) is trained again; its classifiers are kept
    meanwhile and judged by the digest of the new encoder once it is trained: the same settings
    on the same threads give the same bits, and they stay; an encoder that comes out otherwise
    (here: another learning rate, which is no setting of the classifier's own) has them refused
    before the report, the new encoder kept."""
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n{train}'
            '[classifiers]\nencoder = "a"\nstrategies = ["finetune", "scratch"]\n[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    study = write(tmp_path, body.format(train=""))
    assert main(["study", str(study), *common]) == 0
    runs = out / "runs"
    kept = {p.name: (p / "model.safetensors").read_bytes() for p in runs.iterdir()}
    shutil.rmtree(runs / "ae-a-seed0")
    capsys.readouterr()
    assert main(["study", str(study), "--plan", *common]) == 0  # says what it keeps, and on what condition
    listing = capsys.readouterr().out
    assert "clf-finetune-seed0†" in listing and "† finished, and kept while an encoder it needs trains again" in listing
    (out / "figures" / ".overview.png.k1ll3d_8.tmp").write_text("half")  # left by a study that was killed
    assert main(["study", str(study), *common]) == 0
    assert not (out / "figures" / ".overview.png.k1ll3d_8.tmp").exists()  # its folder is tidied
    assert {p.name: (p / "model.safetensors").read_bytes() for p in runs.iterdir()} == kept
    assert "clf-finetune seed 0: done" not in capsys.readouterr().err  # kept, not trained again
    assert json.loads((out / "timing.json").read_text())["invocations"] == 2  # the second that trained

    # the encoder renamed in the study file: refused before anything trains, not deferred
    renamed = write(tmp_path, body.format(train="").replace('name = "a"', 'name = "b"').replace(
        'encoder = "a"', 'encoder = "b"'))
    for plan in (["--plan"], []):
        assert main(["study", str(renamed), *plan, *common]) == 2
        assert "(each: trained on ae-a-seed0, the encoder is now ae-b-seed0)" in capsys.readouterr().err
    assert not (runs / "ae-b-seed0").exists()

    shutil.rmtree(runs / "ae-a-seed0")
    assert main(["study", str(write(tmp_path, body.format(train="train = { lr = 3e-3 }\n"))), *common]) == 2
    assert capsys.readouterr().err.endswith(
        f"fashionae: error: 1 run folder of {runs} holds a run that differs from what the study asks for now: "
        "clf-finetune-seed0 (trained on an earlier ae-a-seed0); delete it and run the study again (its other "
        "finished runs are kept), or choose another --out\n")
    assert (runs / "ae-a-seed0" / "summary.json").is_file()  # the new encoder is kept
    assert (runs / "clf-finetune-seed0" / "model.safetensors").read_bytes() == kept["clf-finetune-seed0"]
    # (scratch takes the encoder's architecture, not its weights: the encoder's new digest leaves it be)


def test_a_best_encoder_deleted_is_trained_again_under_its_classifiers(data_dir, tmp_path, capsys):
    """With encoder = "best", the chosen autoencoder's folder deleted: its classifier is kept while
    the autoencoders train (its own settings cannot be judged before the choice: the first
    autoencoder's stand in for them) and stays once the same encoder comes out again."""
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "b"\narch = "conv"\n'
            '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
            '[classifiers]\nencoder = "best"\nstrategies = ["frozen"]\n[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    study = write(tmp_path, body)
    assert main(["study", str(study), *common]) == 0
    clf = out / "runs" / "clf-frozen-seed0"
    assert json.loads((clf / "config.json").read_text())["encoder_run"].endswith("ae-a-seed0")  # not the first
    model = (clf / "model.safetensors").read_bytes()
    shutil.rmtree(out / "runs" / "ae-a-seed0")
    for plan in (["--plan"], []):
        assert main(["study", str(study), *plan, *common]) == 0
    assert (clf / "model.safetensors").read_bytes() == model and (out / "runs" / "ae-a-seed0" / "summary.json").exists()
    capsys.readouterr()
    assert main(["study", str(study), *common]) == 0  # all finished: the choice made again, nothing trained
    assert (clf / "model.safetensors").read_bytes() == model and " done" not in capsys.readouterr().err


def test_a_second_encoder_names_the_classifier_folders_to_rename(data_dir, tmp_path, capsys):
    """A stage that goes from one encoder to two names its folders anew (clf-a-frozen-seed0):
    the plan says which finished folder to rename to keep it, and only the one trained on that
    encoder."""
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
            '[[autoencoders]]\nname = "b"\narch = "conv"\n[classifiers]\nencoder = {encoder}\n'
            'strategies = ["frozen"]\n[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, body.format(encoder='"a"'))), *common]) == 0
    capsys.readouterr()
    # --plan lists the runs, then refuses as the study does, which trains nothing before they are
    # renamed or deleted
    for plan in (["--plan"], []):
        assert main(["study", str(write(tmp_path, body.format(encoder='["a", "b"]'))), *plan, *common]) == 2
        out_text, err = capsys.readouterr()
        assert err.endswith("fashionae: error: 1 finished classifier folder(s) hold runs this study asks for under "
                            "another name, since its [classifiers] stage changed its number of encoders "
                            "(clf-frozen-seed0 → clf-a-frozen-seed0): rename them to keep them, or delete them to "
                            "train them anew\n")  # trained on a, not b: clf-b-frozen-seed0 is not named
        assert "does not ask for" not in err and ("clf-b-frozen-seed0" in out_text) == bool(plan)
    assert not (out / "runs" / "clf-b-frozen-seed0").exists()
    (out / "runs" / "clf-frozen-seed0").rename(out / "runs" / "clf-a-frozen-seed0")
    assert main(["study", str(write(tmp_path, body.format(encoder='"a"'))), "--plan", *common]) == 2
    assert "(clf-a-frozen-seed0 → clf-frozen-seed0)" in capsys.readouterr().err  # and back
    # a folder the study asks for that holds its run already: a copy under the other name is not refused
    shutil.copytree(out / "runs" / "clf-a-frozen-seed0", out / "runs" / "clf-frozen-seed0")
    assert main(["study", str(write(tmp_path, body.format(encoder='"a"'))), "--plan", *common]) == 0
    # an unfinished folder under the other name holds nothing to keep: not refused either
    shutil.rmtree(out / "runs" / "clf-frozen-seed0")
    (out / "runs" / "clf-a-frozen-seed0" / "summary.json").unlink()
    capsys.readouterr()
    assert main(["study", str(write(tmp_path, body.format(encoder='"a"'))), "--plan", *common]) == 0
    assert "rename them to keep them" not in capsys.readouterr().err


def test_more_seeds_keep_the_classifiers_of_a_best_encoder_that_stays_best(data_dir, tmp_path, capsys,
                                                                            monkeypatch):
    """encoder = "best" compares every autoencoder over every seed: with one more seed, the
    finished classifiers are kept while the new seed trains, and judged once it has (here the
    best stays the best: a latent of 1 cannot compete); a classifier whose encoder was renamed
    away is named with the encoder it was trained on."""
    body = ('seeds = {seeds}\n' + TINY_TRAIN +
            '[[autoencoders]]\nname = "wide"\narch = "linear"\nlatent = 16\n'
            '[[autoencoders]]\nname = "narrow"\narch = "linear"\nlatent = 1\n'
            '[classifiers]\nencoder = "{encoder}"\nstrategies = ["frozen"]\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, body.format(seeds=2, encoder="best"))), *common]) == 0
    runs = out / "runs"
    before = {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in runs.iterdir()}
    assert main(["study", str(write(tmp_path, body.format(seeds=3, encoder="best"))), *common]) == 0
    after = {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in runs.iterdir()}
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"ae-wide-seed2", "ae-narrow-seed2", "clf-frozen-seed2"}
    capsys.readouterr()
    # fewer seeds: the third seed's runs are kept, and said to be left out
    assert main(["study", str(write(tmp_path, body.format(seeds=2, encoder="best"))), *common, "--plan"]) == 0
    assert (f"{out} also holds 3 run folder(s) this study does not ask for (ae-narrow-seed2, ae-wide-seed2, "
            "clf-frozen-seed2): kept, and left out of its results and report (`--seeds 3` reports them with the "
            "others)") in capsys.readouterr().err
    assert main(["study", str(write(tmp_path, body.format(seeds=3, encoder="narrow"))), *common]) == 2
    assert ("clf-frozen-seed0 (trained on ae-wide-seed0, the encoder is now ae-narrow-seed0)"
            in capsys.readouterr().err)
    # a fourth seed that makes another encoder the best: the kept classifiers are refused once the
    # encoders are trained, before any report of them is written
    monkeypatch.setattr(plan_mod, "best_encoder", lambda study, folder: "narrow")
    (out / "report.md").unlink()
    assert main(["study", str(write(tmp_path, body.format(seeds=4, encoder="best"))), *common]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the study's log
    assert err.startswith(f"fashionae: error: 3 run folders of {runs} hold runs that differ from what the "
                          "study asks for now: clf-frozen-seed0 (trained on ae-wide-seed0, the encoder is now "
                          "ae-narrow-seed0), ")
    assert (runs / "ae-wide-seed3" / "summary.json").is_file() and not (out / "report.md").exists()


def test_a_study_with_a_finished_run_whose_model_is_gone_says_what_to_do(data_dir, tmp_path, capsys):
    text = TINY_TRAIN + '[[autoencoders]]\nname = "small"\narch = "linear"\nlatent = 8\n'
    args = ["study", str(write(tmp_path, text)), "--out", str(tmp_path / "st"), "--data-dir", str(data_dir),
            "--no-verify"]
    assert main(args) == 0
    run = tmp_path / "st" / "runs" / "ae-small-seed0"
    (run / "model.safetensors").unlink()
    capsys.readouterr()
    assert main(args) == 2
    assert capsys.readouterr().err == (f"fashionae: error: {run} finished training but its model.safetensors is "
                                       f"gone; put back a copy of it, or delete {run} and run its command again to train it "
                                       "again\n")


@pytest.mark.parametrize("damage", ["truncated model", "metrics line", "summary key"])
def test_a_finished_run_with_a_damaged_file_is_refused_before_anything_trains(data_dir, tmp_path, capsys, damage):
    """Not "kept as is", and not found only by the report after every other run has trained."""
    text = TINY_TRAIN + "".join(f'[[autoencoders]]\nname = "{n}"\narch = "linear"\nlatent = {latent}\n'
                                for n, latent in (("a", 8), ("b", 4)))
    args = ["study", str(write(tmp_path, text)), "--out", str(tmp_path / "st"), "--data-dir", str(data_dir),
            "--no-verify"]
    assert main(args) == 0
    run, other = (tmp_path / "st" / "runs" / f"ae-{n}-seed0" for n in ("a", "b"))
    shutil.rmtree(other)  # to be trained again, unless the damage is found first
    if damage == "truncated model":
        (run / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:1000])
    elif damage == "metrics line":
        with (run / "metrics.jsonl").open("a") as f:
            f.write('{"epoch": 2}\n')
    else:
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "epochs"}))
    damaged = {f: (run / f).read_bytes() for f in ("model.safetensors", "metrics.jsonl", "summary.json")}
    for command in (args + ["--plan"], args):
        capsys.readouterr()
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("fashionae: error: ") and err.rstrip(")\n").endswith(f"delete {run} and run its command again")
        assert err.count("\n") == 1 and not other.exists()  # one line, and nothing trained
    assert all((run / f).read_bytes() == data for f, data in damaged.items())


def test_the_study_file_page_names_every_key_and_its_template_runs(tmp_path):
    """docs/study-files.md lists every key a study file takes, and its example is the template
    studies/compare.toml's, whose profiles load (two autoencoders, one ablation line)."""
    from fashionae import settings
    from fashionae.study import AE_KEYS, CLF_KEYS, TOP_KEYS, Baselines, Comparison, Explore, Targets
    page = (STUDIES.parent / "docs" / "study-files.md").read_text()
    keys = (TOP_KEYS - {"profile", "profiles"} | AE_KEYS | CLF_KEYS | settings.keys(TrainConfig)
            | settings.keys(ModelConfig) | {f for cls in (Baselines, Explore, Targets, Comparison)
                                            for f in cls.__dataclass_fields__})
    tables = {"train", "model", "autoencoders", "classifiers", "baselines", "explore", "targets", "ablation"}
    missing = [k for k in sorted(keys) if f"`{k}`" not in page and f"`[{k}]`" not in page
               and f"`[[{k}]]`" not in page and not (k in tables and f"`{k}`" in page)]
    assert not missing, missing
    template = (STUDIES / "compare.toml").read_text()
    example = re.search(r"```toml\n(.*?)```", page, re.S).group(1)
    assert example in template
    for profile in ("quick", "full"):
        study = load_study(STUDIES / "compare.toml", profile)
        assert [a.name for a in study.autoencoders] == ["baseline", "variant"] and len(study.seeds) == 3
        assert [(c.baseline, c.variant) for c in study.ablation] == [("baseline", "variant")]
        assert [a.model.dropout for a in study.autoencoders] == [0.2, 0.0]


def test_targets_are_judged_on_validation_figures_of_seed_0(data_dir, tmp_path):
    text = ('seeds = 2\n' + TINY_TRAIN.replace("epochs = 1", "epochs = 2") +
            '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n[[autoencoders]]\nname = "b"\narch = "conv"\n'
            '[classifiers]\nencoder = "a"\nstrategies = ["finetune"]\n[baselines]\nenabled = false\n'
            '[targets]\nautoencoder = "a"\nval_mse = 1.0\nclassifier = "finetune"\nval_acc = 1.0\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, text)), *common]) == 0
    ae, conv, clf = ([json.loads(line) for line in (out / "runs" / name / "metrics.jsonl").read_text().splitlines()]
                     for name in ("ae-a-seed0", "ae-b-seed0", "clf-finetune-seed0"))
    reached, missed = json.loads((out / "results.json").read_text())["targets"]
    # an MSE below 1 is reached at the first epoch, after that epoch's seconds
    assert reached == {"target": "a val MSE <= 1.0", "reached": True, "epoch": 1,
                       "seconds_into_study": ae[0]["seconds"], "best": min(r["val_loss"] for r in ae)}
    assert missed == {"target": "finetune val accuracy >= 1.0", "reached": False, "epoch": None,
                      "seconds_into_study": None, "best": max(r["val_acc"] for r in clf)}
    # the study's figures over seeds are each seed's own (two seeds here, so seed 0 alone would not pass)
    results = json.loads((out / "results.json").read_text())
    summaries = {name: [json.loads((out / "runs" / f"{name}-seed{k}" / "summary.json").read_text()) for k in (0, 1)]
                 for name in ("ae-a", "ae-b", "clf-finetune")}
    a, b = results["autoencoders"]
    assert (a["latent"], b["latent"]) == (16, None)  # conv's latent is its feature map
    for entry, runs in ((a, summaries["ae-a"]), (b, summaries["ae-b"])):
        assert entry["val_rise_after_best"]["values"] == pytest.approx(
            [(s["val_loss"] - s["best_val_loss"]) / s["best_val_loss"] for s in runs])
        assert entry["seconds_per_epoch"]["values"] == pytest.approx([s["seconds_total"] / s["epochs"] for s in runs])
    finetune, runs = results["classifiers"][0], summaries["clf-finetune"]
    assert [c["values"] for c in finetune["per_class_acc"]] == [
        pytest.approx([s["per_class_acc"][i] for s in runs]) for i in range(len(finetune["per_class_acc"]))]
    assert finetune["most_confused"] == runs[0]["most_confused"]  # seed 0's, as the report says
    md = (out / "report.md").read_text()
    assert ("Targets, on seed 0 alone (a profile's speed to a quality, not a verdict): a val MSE <= 1.0: reached; "
            "finetune val accuracy >= 1.0: not reached.") in md
    # a figure equal to its goal reaches it, at the first epoch it does
    study = load_study(write(tmp_path, text))
    exact = replace(study, targets=replace(study.targets, val_mse=min(r["val_loss"] for r in ae),
                                           val_acc=max(r["val_acc"] for r in clf)))
    rows = reached_targets(exact, StudyFolder(out), plan_mod.make_plan(exact))
    assert [r["epoch"] for r in rows] == [min(r["epoch"] for r in runs if r[key] == best)
                                          for runs, key, best in ((ae, "val_loss", rows[0]["best"]),
                                                                  (clf, "val_acc", rows[1]["best"]))]
    # in training seconds into the study: the seed-0 runs before it in the plan, then its epochs
    before = sum(r["seconds"] for r in ae + conv)
    assert [r["seconds_into_study"] for r in rows] == [
        pytest.approx(sum(r["seconds"] for r in ae[:rows[0]["epoch"]])),
        pytest.approx(before + sum(r["seconds"] for r in clf[:rows[1]["epoch"]]))]
    # an autoencoder named as a strategy is not the classifier target's run (it has no accuracy)
    (out / "runs" / "ae-b-seed0").rename(out / "runs" / "ae-finetune-seed0")
    named = load_study(write(tmp_path, text.replace('name = "b"', 'name = "finetune"')))
    rows = reached_targets(named, StudyFolder(out), plan_mod.make_plan(named))
    assert rows[1] == missed


def test_a_classifier_target_is_judged_on_the_encoder_it_names(tmp_path):
    """With several encoders, "b/finetune" is b's classifier, not the first encoder's."""
    from types import SimpleNamespace
    accuracy = {"clf-a-finetune-seed0": 0.80, "clf-b-finetune-seed0": 0.95}
    metrics = {name: [{"epoch": 1, "seconds": 1.0, "val_acc": acc, "val_loss": 0.1}] for name, acc in accuracy.items()}
    folder = SimpleNamespace(run=lambda name: SimpleNamespace(
        metrics=lambda: metrics.get(name, [{"epoch": 1, "seconds": 1.0, "val_loss": 0.1}])))
    text = (MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n[classifiers]\nencoder = ["a", "b"]\n'
            'strategies = ["finetune"]\n[targets]\nclassifier = "b/finetune"\nval_acc = 0.9\n')
    study = load_study(write(tmp_path, text))
    assert study.classifiers.groups() == ["a/finetune", "b/finetune"]
    [row] = reached_targets(study, folder, plan_mod.make_plan(study))
    assert row["target"] == "b/finetune val accuracy >= 0.9" and row["reached"] and row["best"] == 0.95
    # with one encoder, a target names the strategy alone, as the report's rows do
    one = load_study(write(tmp_path, text.replace('["a", "b"]', '"a"').replace("b/finetune", "finetune")))
    assert one.classifiers.groups() == ["finetune"]
    # the study.json of fashionae 0.3.2 and before named a strategy alone: the first encoder's
    old = study.to_dict()
    old["targets"]["classifier"] = "finetune"
    assert Study.from_dict(old).targets.classifier == "a/finetune"


def test_the_best_encoder_is_chosen_on_mean_validation_mse_never_on_test(tmp_path):
    """"a" has the lowest test MSE and the luckiest seed 0; "b" the lowest mean validation MSE."""
    from types import SimpleNamespace
    summaries = {"ae-a-seed0": {"val_loss": 0.010, "test_loss": 0.001}, "ae-a-seed1": {"val_loss": 0.030, "test_loss": 0.001},
                 "ae-b-seed0": {"val_loss": 0.015, "test_loss": 0.009}, "ae-b-seed1": {"val_loss": 0.016, "test_loss": 0.009}}
    folder = SimpleNamespace(run=lambda name: SimpleNamespace(summary=lambda: summaries[name]))
    study = load_study(write(tmp_path, MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n'), seeds=2)
    assert plan_mod.best_encoder(study, folder) == "b"
    summaries["ae-a-seed1"]["val_loss"] = math.nan  # a seed of the first diverged: never the best
    summaries["ae-b-seed0"]["val_loss"] = 0.5
    assert plan_mod.best_encoder(study, folder) == "b"


def test_the_latent_space_section_explores_the_seed_the_report_shows(data_dir, tmp_path, monkeypatch, capsys):
    """With several seeds, [explore] takes each named autoencoder's seed-0 run: the one whose figures
    the report shows (and only it: the section's minutes are spent once). The plan says it leaves
    the section (and the baselines) out of its estimate, until they are computed."""
    from fashionae import explore
    from fashionae.preview import show_plan
    monkeypatch.setattr(explore, "FIT_IMAGES", 200)
    study = load_study(write(tmp_path, "seeds = 2\n" + TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\n'
                                       'latent = 8\n[explore]\nautoencoders = ["a"]\ntsne = false\n'), None)
    out = tmp_path / "out"
    show_plan(study, out, data_dir=str(data_dir), verify=False)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Not in the estimate, after the runs: the latent-space section of a (maps, k-NN, linear probe) and the "
        "baselines (PCA, mean image, logistic regression on pixels).")
    results = run_study(study, out, data_dir=str(data_dir), verify=False, **QUIET)
    runs = out / "runs"
    assert (runs / "ae-a-seed0" / "explore" / "explore.json").is_file()
    assert not (runs / "ae-a-seed1" / "explore").exists()
    assert results["autoencoders"][0]["explore"]["knn_acc"] > 0
    capsys.readouterr()
    show_plan(study, out, data_dir=str(data_dir), verify=False)
    assert "Not in the estimate" not in capsys.readouterr().out


def test_the_latent_space_section_is_the_studys_own_not_what_fashionae_explore_made(data_dir, tmp_path, monkeypatch,
                                                                                    capsys):
    """`fashionae explore` on a study's run (its explore/ by default): the run the study maps is not
    mapped there otherwise than [explore] asks (its report would lose them), the same maps are; one
    the study does not map gets no section in its report; a section mapped otherwise (made before
    this rule) is said by the report, and the study maps it again as it asks."""
    from fashionae import explore
    monkeypatch.setattr(explore, "FIT_IMAGES", 200)
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n[[autoencoders]]\nname = "b"\n'
            'arch = "linear"\nlatent = 16\n[baselines]\nenabled = false\n[explore]\nautoencoders = ["a"]\ntsne = false\n')
    out, common = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, body)), *common]) == 0
    a, b = out / "runs" / "ae-a-seed0", out / "runs" / "ae-b-seed0"
    mapped = (a / "explore" / "explore.json").read_bytes()
    assert json.loads(mapped)["tsne"] is False
    capsys.readouterr()
    code, _, err = cli(capsys, "explore", a, "--data-dir", data_dir, "--no-verify")
    assert (code, err) == (2, f"fashionae: error: {a} is mapped by its study {out} ([explore] tsne = false), whose "
                              f"report shows the maps in {a / 'explore'}: add --no-tsne, or give --out to map it "
                              "elsewhere\n")
    assert (a / "explore" / "explore.json").read_bytes() == mapped
    (tmp_path / "link").symlink_to(a)
    monkeypatch.chdir(a)  # the run as ".", or by a link: the same run of the same study
    for given in (".", tmp_path / "link", out / "runs" / ".." / "runs" / a.name):
        code, _, err = cli(capsys, "explore", given, "--data-dir", data_dir, "--no-verify")
        assert code == 2 and err.startswith(f"fashionae: error: {given} is mapped by its study {out} "), err
    monkeypatch.chdir(tmp_path)
    a.rename(tmp_path / "moved")  # a study whose run is a link to another disk's folder
    a.symlink_to(tmp_path / "moved")
    code, _, err = cli(capsys, "explore", a, "--data-dir", data_dir, "--no-verify")
    assert code == 2 and err.startswith(f"fashionae: error: {a} is mapped by its study {out} "), err
    monkeypatch.chdir(a)  # "." there, as the shell names it ($PWD: through the link)
    monkeypatch.setenv("PWD", str(a))
    code, _, err = cli(capsys, "explore", ".", "--data-dir", data_dir, "--no-verify")
    assert code == 2 and err.startswith(f"fashionae: error: . is mapped by its study {out} "), err
    monkeypatch.chdir(tmp_path)
    a.unlink()
    (tmp_path / "moved").rename(a)
    assert (a / "explore" / "explore.json").read_bytes() == mapped
    resolved = json.loads((out / "study.json").read_text())
    (out / "study.json").write_text(json.dumps({**resolved, "explore": {**resolved["explore"], "tsne": True}}))
    code, _, err = cli(capsys, "explore", a, "--no-tsne", "--data-dir", data_dir, "--no-verify")
    assert code == 2 and err.endswith("([explore] tsne = true), whose report shows the maps in "
                                      f"{a / 'explore'}: leave out --no-tsne, or give --out to map it elsewhere\n")
    (out / "study.json").write_text(json.dumps(resolved))
    code, _, err = cli(capsys, "explore", a, "--no-tsne", "--data-dir", data_dir, "--no-verify")
    assert code == 0, err  # the same maps again
    assert cli(capsys, "explore", a, "--data-dir", data_dir, "--no-verify", "--out", tmp_path / "mine")[0] == 0
    assert cli(capsys, "explore", b, "--data-dir", data_dir, "--no-verify")[0] == 0  # a run the study does not map
    results = collect_results(out)
    assert [bool(e["explore"]) for e in results["autoencoders"]] == [True, False]
    assert results["autoencoders"][0]["explore"]["tsne"] is False
    monkeypatch.setattr(explore, "_refuse_the_studys_otherwise", lambda *args: None)  # (as before the rule)
    assert cli(capsys, "explore", a, "--data-dir", data_dir, "--no-verify")[0] == 0
    code, _, err = cli(capsys, "report", out)
    assert (code, err) == (2, f"fashionae: error: {a / 'explore' / 'explore.json'} was mapped with t-SNE (by fashionae "
                              "explore, or before the study's [explore] changed), where the study asks for tsne = "
                              "false; run the study command again: it maps it again\n")
    assert main(["study", str(write(tmp_path, body)), *common]) == 0
    assert "explore: latent space of ae-a-seed0" in capsys.readouterr().err
    assert json.loads((a / "explore" / "explore.json").read_text())["tsne"] is False


@pytest.mark.parametrize("subsets", ["train_subset = 4\neval_subset = 200\n", "train_subset = 300\neval_subset = 1\n"])
def test_a_latent_space_section_on_too_few_images_is_refused_before_anything_trains(data_dir, tmp_path, capsys,
                                                                                    subsets):
    """[explore] on an autoencoder of under 5 training images or a single test image is refused by
    the study and its plan at once, in one line, not after its runs."""
    study = write(tmp_path, '[train]\nepochs = 1\nbatch_size = 4\n' + subsets + '[[autoencoders]]\nname = "a"\n'
                  'arch = "linear"\nlatent = 8\n[[autoencoders]]\nname = "b"\narch = "conv"\n'
                  '[explore]\nautoencoders = ["a"]\ntsne = false\n')
    out, common = study_out(tmp_path, data_dir)
    n_train, n_test = (4, 200) if "= 4" in subsets else (300, 1)
    for extra in (["--plan"], []):
        assert main(["study", str(study), *common, *extra]) == 2
        assert capsys.readouterr().err == (
            f"fashionae: error: [explore] autoencoder a: {n_train} training images and {n_test} test "
            f"image{'s' * (n_test > 1)}, where a latent space needs 5 training images at least (the k-NN score's "
            "neighbours) and 2 test images (a map); take it out of [explore], or give it a larger "
            f"{'train_subset' if n_train == 4 else 'eval_subset'}\n")
    assert not (out / "runs").exists()


def test_a_study_whose_classifier_diverged_reports_it_and_judges_nothing_of_it(data_dir, tmp_path, monkeypatch):
    """A fine-tuned classifier whose weights became NaN after its first step: its accuracies are
    not numbers, it confuses nothing, the report is written (its curves of no numbers drawn as
    nothing, no confusion figure of it) and says it diverged."""
    import math

    from fashionae import training
    real_prepare, real_execute, diverging = training.prepare, executors.execute, {}

    def execute(cfg, *a, **k):
        diverging["now"] = cfg.strategy == "finetune"
        return real_execute(cfg, *a, **k)

    def prepare(model, cfg):
        opt = real_prepare(model, cfg)
        if diverging["now"]:
            step = opt.step
            opt.step = lambda: (step(), [p.data.fill_(math.nan) for p in model.parameters()])
        return opt
    monkeypatch.setattr(executors, "execute", execute)
    monkeypatch.setattr(training, "prepare", prepare)
    study = load_study(write(tmp_path, TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 8\n'
                                       '[classifiers]\nencoder = "a"\nstrategies = ["finetune", "scratch"]\n'
                                       '[baselines]\nenabled = false\n'), None)
    out = tmp_path / "out"
    results = run_study(study, out, data_dir=str(data_dir), verify=False, **QUIET)
    finetune = next(c for c in results["classifiers"] if c["strategy"] == "finetune")
    assert math.isnan(finetune["test_acc"]["mean"]) and all(math.isnan(a["mean"]) for a in finetune["per_class_acc"])
    assert finetune["most_confused"] == {"true": None, "predicted": None, "count": None}
    page = (out / "report.md").read_text()
    assert "finetune had a run that diverged (scores that are not numbers, so no accuracy)" in page
    assert "none: the run diverged" in page
    assert "accuracy per epoch of the finetune classifier, one seed, which diverged: no curve to draw" in page
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert any("confusion_scratch" in f for f in figures) and not any("confusion_finetune" in f for f in figures)


def test_the_reports_samples_are_the_first_validation_image_of_each_class(tiny, tmp_path):
    """samples.safetensors, which the report's reconstruction figure shows without the dataset: the
    first validation image of each of the first 8 classes, in class order; and the MSE per pixel
    of the training set's mean image, by which the report names a seed that learned nothing."""
    from safetensors.torch import load_file

    from fashionae.data import make_splits
    from fashionae.pipeline import save_samples
    folder = StudyFolder(tmp_path)
    save_samples(folder, tiny, "holdout")
    samples = load_file(tmp_path / folder.SAMPLES)
    splits = make_splits(tiny, "holdout")
    first = [int((splits.val_y == c).nonzero()[0]) for c in range(8)]
    assert samples["labels"].tolist() == list(range(8))
    assert torch.equal(samples["images"], splits.val_x[first])
    mean = splits.train_x.double().mean(0) / 255
    assert folder.mean_image() == pytest.approx({k: float(((x.double() / 255 - mean) ** 2).mean())
                                                 for k, x in (("val_mse", splits.val_x), ("test_mse", splits.test_x))})
    (tmp_path / folder.SAMPLES).unlink()
    assert folder.samples() is folder.mean_image() is None


def test_an_out_folder_that_holds_something_else_is_refused_and_left_as_it_was(tmp_path, capsys):
    from helpers import cli
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    for out, message in ((mine, f"--out {mine} is not empty and holds no fashionae study; choose another --out"),
                         (run, f"--out {run} is a run folder, not a study's; choose another --out"),
                         (a_file, f"--out {a_file} is not a folder; choose another --out")):
        for plan in ([], ["--plan"]):
            code, _, err = cli(capsys, "study", PAPER, "--profile", "smoke", "--out", out, "--data-dir",
                               tmp_path / "nowhere", *plan)
            assert (code, err) == (2, f"fashionae: error: {message}\n")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and a_file.read_text() == "x"


def test_a_folder_with_another_tools_config_or_study_json_is_no_model_folder_of_ours(tmp_path):
    """``refuse_a_model_folder`` (baselines', explore's --out) refuses a run folder (a config.json
    with both a model and a training section) and a study folder (a study.json with autoencoders),
    and takes a config.json or study.json of another tool's for what it is: a file of the user's."""
    from fashionae.studyfolder import refuse_a_model_folder
    for name, text in (("config.json", {"model": {"name": "resnet"}}), ("config.json", {"train": {"lr": 1}}),
                       ("study.json", {"name": "mine", "runs": []})):
        other = tmp_path / f"other-{len(list(tmp_path.iterdir()))}"
        other.mkdir()
        (other / name).write_text(json.dumps(text))
        refuse_a_model_folder(other)  # not refused
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": {}, "train": {}}))
    with pytest.raises(UserError, match="is a run folder"):
        refuse_a_model_folder(run)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "study.json").write_text(json.dumps({"name": "x", "autoencoders": []}))
    with pytest.raises(UserError, match="is a study folder"):
        refuse_a_model_folder(tmp_path / "study")


def test_a_plan_of_one_run_says_one_run(data_dir, tmp_path, capsys):
    from fashionae.preview import show_plan
    study = load_study(write(tmp_path, TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "conv"\n'
                                       '[baselines]\nenabled = false\n'), None)
    show_plan(study, tmp_path / "out", data_dir=str(data_dir), verify=False)
    assert "\n1 run, 0 finished; estimated wall time of the rest" in capsys.readouterr().out


def test_a_model_too_large_for_the_machine_is_refused_by_name_before_anything_trains(data_dir, tmp_path, capsys):
    """Counted on the meta device: --plan does not build it for its speed probe, the study trains
    none of its other runs first."""
    path = write(tmp_path, TINY_TRAIN + '[[autoencoders]]\nname = "small"\narch = "conv"\n'
                                         '[[autoencoders]]\nname = "huge"\nlatent = 1_000_000_000\n'
                                         '[baselines]\nenabled = false\n')
    out = tmp_path / "out"
    for plan in (["--plan"], []):
        code, _, err = cli(capsys, "study", path, *plan, "--out", out, "--data-dir", data_dir, "--no-verify")
        assert code == 2 and re.fullmatch(r"fashionae: error: ae-huge-seed0 has [\d,]+ parameters: training it takes "
                                          r"at least [\d,]+ GiB \(its weights, and the gradients and Adam's "
                                          r"moments of those it trains\), more than "
                                          r"this machine's [\d,]+ GiB; use a smaller latent or smaller images\n", err)
    assert not (out / "runs").exists()


def test_an_autoencoder_renamed_in_the_study_file_is_said_with_how_to_keep_its_runs(data_dir, tmp_path, capsys):
    """Its finished folder holds the very run the new name asks for: the note says so, and the
    refusal of the classifiers trained on it says first how to keep them all."""
    text = TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "conv"\n[classifiers]\nencoder = "a"\n' \
        'strategies = ["frozen"]\n[baselines]\nenabled = false\n'
    out, opts = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, text)), *opts]) == 0
    renamed = write(tmp_path, text.replace('"a"', '"b"'))
    hint = ("ae-a-seed0 holds the run ae-b-seed0 asks for, with the same settings: if the autoencoder was renamed "
            "in the study file, give it its old name again to keep its runs")
    capsys.readouterr()
    code, _, err = cli(capsys, "study", renamed, *opts)
    assert code == 2 and err.endswith(f"(trained on ae-a-seed0, the encoder is now ae-b-seed0); {hint}; else delete it "
                                      "and run the study again (its other finished runs are kept), or choose another "
                                      "--out\n")
    code, _, err = cli(capsys, "study", renamed, "--plan", *opts)
    assert code == 2 and err.count(hint) == 1  # said by the refusal alone, as the study says it
    shutil.rmtree(out / "runs" / "clf-frozen-seed0")
    damaged = out / "runs" / "ae-0-seed0"  # a damaged finished folder, looked at first: not that run, and the next is
    damaged.mkdir()
    (damaged / "config.json").write_text("{")
    (damaged / "summary.json").write_text("{}")
    code, _, err = cli(capsys, "study", renamed, "--plan", *opts)
    assert code == 0 and f"left out of its results and report; {hint} (else it trains again)\n" in err
    other = write(tmp_path, text.replace('"a"', '"b"').replace('arch = "conv"', 'arch = "conv"\ndropout = 0.1'))
    code, _, err = cli(capsys, "study", other, "--plan", *opts)  # a new name and other settings: not the same run
    assert code == 0 and "left out of its results and report\n" in err and "old name" not in err


def test_a_rename_that_would_keep_only_some_of_the_changed_runs_is_not_said_as_their_fix(data_dir, tmp_path, capsys):
    """An autoencoder renamed while another one changed: giving the old name back keeps the
    classifiers trained on it, not the other's runs, so the refusal does not offer it as the fix."""
    text = TINY_TRAIN + '[[autoencoders]]\nname = "a"\narch = "conv"\n[[autoencoders]]\nname = "c"\narch = "conv"\n' \
        '[classifiers]\nencoder = "a"\nstrategies = ["frozen"]\n[baselines]\nenabled = false\n'
    out, opts = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, text)), *opts]) == 0
    capsys.readouterr()
    both = text.replace('"a"', '"b"').replace('name = "c"\narch = "conv"\n', 'name = "c"\narch = "conv"\ndropout = 0.1\n')
    code, _, err = cli(capsys, "study", write(tmp_path, both), "--plan", *opts)
    assert code == 2 and "ae-c-seed0 (model.dropout: " in err and "(trained on ae-a-seed0, the encoder is now " in err
    assert "old name" not in err


def test_keep_state_that_extend_could_not_use_is_said_before_anything_trains(data_dir, tmp_path, capsys):
    """Asked for once the runs had finished, or with a one-cycle schedule: --extend would refuse
    them later; the study and --plan say so now."""
    out, opts = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, TINY_TRAIN + MINIMAL)), *opts]) == 0
    capsys.readouterr()
    code, _, err = cli(capsys, "study", write(tmp_path, TINY_TRAIN + "keep_state = true\n" + MINIMAL), "--plan", *opts)
    assert code == 0 and ("ae-a-seed0: finished before keep_state was asked for, so no training state was kept: "
                          "--extend cannot train it on (delete a run to train it anew with keep_state)\n") in err
    onecycle = write(tmp_path, TINY_TRAIN + 'keep_state = true\nschedule = "onecycle"\n' + MINIMAL)
    code, _, err = cli(capsys, "study", onecycle, "--plan", "--seeds", "2", *opts[:1], str(tmp_path / "new"), *opts[2:])
    assert code == 0 and ("ae-a-seed0 and 1 more run: keep_state keeps a training state that --extend cannot use: "
                          "the onecycle schedule is fitted to the epochs") in err
    code, _, err = cli(capsys, "study", write(tmp_path, TINY_TRAIN + MINIMAL), "--plan", *opts)
    assert code == 0 and "keep_state" not in err


def test_a_changed_run_names_three_of_its_differences_at_most(data_dir, tmp_path, capsys):
    """Four settings changed: the refusal names the first three, enough to see why, not every one."""
    out, opts = study_out(tmp_path, data_dir)
    assert main(["study", str(write(tmp_path, TINY_TRAIN + MINIMAL)), *opts]) == 0
    capsys.readouterr()
    changed = TINY_TRAIN.replace("batch_size = 50", "batch_size = 25").replace("eval_subset = 200", "eval_subset = 100") \
        + "lr = 0.002\n" + MINIMAL + "dropout = 0.1\n"  # four differences
    code, _, err = cli(capsys, "study", write(tmp_path, changed), "--plan", *opts)
    assert code == 2, err
    reason = re.search(r"ae-a-seed0 \((.*)\); delete it", err).group(1)
    assert reason.count(" there, ") == 3, reason


def test_only_the_autoencoders_still_to_train_are_refused_as_too_large(tmp_path, monkeypatch):
    """A finished autoencoder is kept whatever this machine's memory: it trains no more."""
    study = load_study(write(tmp_path, TINY_TRAIN + MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n'), None)
    plan = plan_mod.make_plan(study)
    checked = []
    monkeypatch.setattr(preflight, "refuse_too_large", lambda model, train, name: checked.append(name))
    states = {r.name: "complete" if r.name.startswith("ae-a-") else "resume" for r in plan}
    preflight.refuse_too_large_models(plan, states, {r.name: (r.config, True) for r in plan})
    assert checked == [r.name for r in plan if r.name.startswith("ae-b-")]


def test_keep_state_is_said_of_no_run_still_to_train(tmp_path):
    """A run to train from the start keeps its state as asked: nothing to say of it."""
    study = load_study(write(tmp_path, TINY_TRAIN + "keep_state = true\n" + MINIMAL), None)
    for run in plan_mod.make_plan(study):
        for state in ("new", "resume"):
            assert preflight.keep_state_note(run, {run.name: state}, StudyFolder(tmp_path / "out")) is None


def test_a_refusal_names_what_to_delete_and_whether_to_extend(tmp_path):
    """Only the runs that cannot be trained on are named to delete (six at most, then a count);
    --extend is said where it trains the others."""
    from fashionae.preflight import EXTENDABLE, refuse_changed
    why = {"ae-a-seed0": f"train.epochs: 1 there, 2 now; {EXTENDABLE}",
           **{f"clf-finetune-seed{i}": "trained on an earlier ae-a-seed0" for i in range(8)}}
    with pytest.raises(UserError, match=r"; delete clf-finetune-seed0, clf-finetune-seed1, .*clf-finetune-seed5 and 2 "
                                        r"more, and run the study again with --extend \(its other finished runs are "
                                        r"kept\)$"):
        refuse_changed(why, StudyFolder(tmp_path))
    with pytest.raises(UserError, match=r"; run the study again with --extend to train it on, or delete it to train "
                                        r"anew$"):
        refuse_changed({"ae-a-seed0": why["ae-a-seed0"]}, StudyFolder(tmp_path))
    with pytest.raises(UserError) as refused:  # a rename elsewhere keeps none of them: not said as a fix
        refuse_changed({"ae-a-seed0": why["ae-a-seed0"]}, StudyFolder(tmp_path), {"ae-b-seed0": "ae-c-seed0"})
    assert "old name" not in str(refused.value)
    with pytest.raises(UserError, match=r"; delete it and run the study again \(its other finished runs are kept\), "
                                        r"or choose another --out$"):
        refuse_changed({"clf-finetune-seed0": "trained on an earlier ae-a-seed0"}, StudyFolder(tmp_path))


def test_a_refusal_shows_six_runs_then_a_count_and_says_it_or_them(tmp_path):
    """Six runs shown and the others counted, as the runs to delete are; one run is "it" and
    "holds", several "them" and "hold"; a classifier whose encoder --extend trains on is told to
    delete itself and use --extend though no run of its own can be trained on."""
    from fashionae.preflight import EXTENDABLE, ON_EXTENDED, refuse_changed
    folder = StudyFolder(tmp_path)

    def said(n, gone=0, **kw):  # n changed runs, the first `gone` of which cannot be trained on
        why = {f"clf-finetune-seed{i}": "trained on an earlier ae-a-seed0" for i in range(gone)}
        why |= {f"ae-a-seed{i}": f"train.epochs: 1 there, 2 now; {EXTENDABLE}" for i in range(n - gone)}
        with pytest.raises(UserError) as refused:
            refuse_changed(why, folder, **kw)
        return str(refused.value)

    two = said(2)
    assert two.startswith(f"2 run folders of {tmp_path / 'runs'} hold runs that differ from what the study asks "
                          "for now: ae-a-seed0 and ae-a-seed1 (each: ")  # (a reason alike said once)
    assert two.endswith(f"{EXTENDABLE}); run the study again with --extend to train them on, or delete them to "
                        "train anew")
    assert " more" not in said(6) and said(6).endswith(f"ae-a-seed4 and ae-a-seed5 (each: train.epochs: 1 there, 2 "
                                                       f"now; {EXTENDABLE}); "
                                                       "run the study again with --extend to train them on, or "
                                                       "delete them to train anew")
    seven = said(7)
    assert f"ae-a-seed5 (each: train.epochs: 1 there, 2 now; {EXTENDABLE}) and 1 more; run" in seven
    assert "ae-a-seed6" not in seven
    assert " and 3 more; " in said(9)
    names = ", ".join(f"clf-finetune-seed{i}" for i in range(6))
    assert said(7, gone=6).endswith(f"; delete {names} and run the study again with --extend (its other finished "
                                    "runs are kept)")
    assert said(8, gone=7).endswith(f"; delete {names} and 1 more, and run the study again with --extend (its other "
                                    "finished runs are kept)")
    shared = said(2, gone=2, shared_name="mine")
    assert "are another study file's, named 'mine' too (every study of that name writes to" in shared
    assert shared.endswith("; else delete them and run the study again (its other finished runs are kept)")
    with pytest.raises(UserError, match=r"^1 run folder of .* holds a run that differs .*: clf-scratch-seed0 \(trained "
                                        r"on ae-a-seed0, which --extend trains on\); delete it and run the study "
                                        r"again with --extend \(its other finished runs are kept\)$"):
        refuse_changed({"clf-scratch-seed0": f"trained on ae-a-seed0, {ON_EXTENDED}"}, folder)


def test_the_summary_says_which_ablation_changes_moved_the_mse():
    from fashionae.summary import _ablation_summary

    def line(change, effect, verdict, seeds=3):
        return {"change": change, "seeds": seeds, "val_mse": {"effect": effect, "verdict": verdict}}
    lower, higher, unclear = line("a", -0.2, "lower"), line("b", 0.1, "higher"), line("c", 0.01, "not shown")
    assert _ablation_summary([lower, higher, unclear, unclear]) == (
        "Of the ablation's 4 changes, 1 lowers the validation MSE at 95 % confidence (“a”, -20.0 %); 1 raises it at 95 % "
        "confidence (“b”, +10.0 %); 2 are not shown to move it (no interval wholly on one side of 0).")
    assert _ablation_summary([higher, higher, unclear]) == (
        "Of the ablation's 3 changes, 2 raise the validation MSE at 95 % confidence (“b”, +10.0 %; “b”, +10.0 %); "
        "1 is not shown to move it (no interval wholly on one side of 0).")
    assert _ablation_summary([unclear, unclear]) == "Of the ablation's 2 changes, none moves the validation MSE at 95 % confidence."
    assert _ablation_summary([higher]) == "The ablation's change “b” (+10.0 %) raises the validation MSE at 95 % confidence."
    # too few seeds: no verdict, and why; a diverged run: said, and left out of the count
    assert _ablation_summary([line("a", -0.2, "not shown", seeds=2)]) == (
        "With 2 seeds the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); its table gives each change with its "
        "interval.")
    assert _ablation_summary([line("a", -0.2, "not shown", seeds=1)]) == (
        "With 1 seed the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); its table gives each change.")
    assert _ablation_summary([unclear]) == ("The ablation's change “c” (+1.0 %) is not shown to move the validation "
                                            "MSE: its interval holds 0.")
    assert _ablation_summary([line("d", float("nan"), "not shown"), line("e", float("nan"), "not shown")]) == (
        "“d”, “e”: a run diverged, so no verdict.")
    nan = line("d", float("nan"), "not shown")
    assert _ablation_summary([lower, nan]) == ("The ablation's change “a” (-20.0 %) lowers the validation MSE at 95 % "
                                               "confidence. “d”: a run diverged, so no verdict.")
    assert _ablation_summary([lower, unclear, nan]) == (
        "Of the ablation's 2 changes with a figure on every seed, 1 lowers the validation MSE at 95 % confidence (“a”, "
        "-20.0 %); 1 is not shown to move it (no interval wholly on one side of 0). “d”: a run diverged, so no verdict.")
    assert _ablation_summary([nan]) == "“d”: a run diverged, so no verdict."


def test_reference_and_pca_columns_go_only_when_empty_in_every_row():
    from fashionae.report import _without_empty_columns
    header = ["model", "report train / val", "author's code val", "PCA test, same k", "val"]
    rows = [["a", "–", "–", "–", "–"], ["b", "0.1 / 0.2", "–", "0.3", "–"]]
    assert _without_empty_columns(header, rows) == (["model", "report train / val", "PCA test, same k", "val"],
                                                    [["a", "–", "–", "–"], ["b", "0.1 / 0.2", "0.3", "–"]])


def test_the_plan_of_a_best_encoder_says_its_settings_are_a_stand_in_until_it_is_chosen(data_dir, tmp_path, capsys):
    body = (TINY_TRAIN + '[[autoencoders]]\nname = "narrow"\narch = "linear"\nlatent = 1\n'
            '[[autoencoders]]\nname = "wide"\narch = "linear"\nlatent = 16\n'
            '[classifiers]\nencoder = "best"\nstrategies = ["frozen"]\n[baselines]\nenabled = false\n')
    out, common = study_out(tmp_path, data_dir)
    args = ["study", str(write(tmp_path, body)), *common]

    def plan_rows():
        assert main([*args, "--plan", "--json"]) == 0
        return {r["run"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    clf = plan_rows()["clf-frozen-seed0"]
    assert (clf["settings_final"], clf["model"]["latent"]) == (False, 1)  # the first autoencoder stands in
    assert main([*args, "--plan"]) == 0
    table = capsys.readouterr().out
    assert "clf-frozen-seed0*" in table and '* encoder = "best": chosen once the autoencoders are trained' in table
    assert main(args) == 0  # "wide" is the best: a latent of 1 cannot compete
    capsys.readouterr()
    rows = plan_rows()
    assert (rows["clf-frozen-seed0"]["settings_final"], rows["clf-frozen-seed0"]["model"]["latent"]) == (True, 16)
    assert all(r["state"] == "complete" and r["settings_final"] for r in rows.values())


def test_a_diverged_autoencoder_is_named_and_left_out_of_the_ranking():
    def ae(name, values):
        from fashionae.results import stats
        return {"name": name, "latent": 16, "test_mse": stats(values)}
    results = {"study": "s", "profile": "p", "seeds": 2, "val": "holdout", "reference": None, "baselines": None,
               "claims": [], "classifiers": [],
               "autoencoders": [ae("a", [0.02, 0.03]), ae("b", [float("nan"), 0.01]), ae("c", [0.04, 0.05])]}
    text = summary(results)
    assert text[1] == "b had a run that diverged (a figure that is not a number): left out of the ranking below."
    assert text[2] == "The lowest mean test MSE per pixel is a's, 0.0250 ± 0.0071, the highest c's, 0.0450 ± 0.0071."


def test_the_summary_names_every_classifier_tied_for_the_best_and_a_uniform_guess():
    def clf(name, strategy, values):
        from fashionae.results import stats
        return {"name": name, "strategy": strategy, "test_acc": stats(values), "seeds": [0, 1], "epochs": 5}
    results = {"study": "s", "profile": "p", "seeds": 2, "val": "holdout", "reference": None, "baselines": None,
               "claims": [], "autoencoders": [], "classes": ["a", "b", "c"],
               "classifiers": [clf("frozen", "frozen", [1 / 3, 1 / 3]), clf("finetune", "finetune", [1 / 3, 1 / 3]),
                               clf("scratch", "scratch", [0.2, 0.3])]}
    # each of them next to a uniform guess: said first
    assert summary(results)[1].startswith("Learned next to nothing: classifiers frozen (2 of 2 seeds), finetune (2 of "
                                          "2 seeds), scratch (2 of 2 seeds): ")
    assert summary(results)[2] == ("The highest mean test accuracy is shared by frozen and finetune, 33.33 ± 0.00 % "
                                   "(a uniform guess: 33.33 %).")
    results["classifiers"][2] = clf("scratch", "scratch", [0.5, 0.6])
    results["classifiers"].append(clf("random", "random-frozen", [0.25, 0.35]))
    assert summary({**results, "classes": None})[1] == (
        "The highest mean test accuracy is scratch's, 55.00 ± 7.07 % (a uniform guess: 10.00 %; the random-frozen control: "
        "30.00 ± 7.07 %).")  # a study of Fashion-MNIST records no class names: its ten


def test_an_ablation_cell_gives_the_change_its_interval_and_a_verdict_only_where_there_is_one():
    def cell(seeds, verdict, ci=(-0.3, -0.1), reason=None):
        return _ablation_effect({"seeds": seeds, "val_mse": {"effect": -0.2, "ci": ci, "ci_reason": reason,
                                                             "verdict": verdict}}, "val_mse")
    assert cell(3, "lower") == "-20.0 % [-30.0 %, -10.0 %]: lower"
    assert cell(3, "higher") == "-20.0 % [-30.0 %, -10.0 %]: higher"
    assert cell(3, "not shown") == "-20.0 % [-30.0 %, -10.0 %]"
    assert cell(2, "not shown") == "-20.0 % [-30.0 %, -10.0 %] (2 seeds: no verdict)"
    assert cell(1, "not shown", None, "one seed: no spread to measure") == "-20.0 % one seed: no spread to measure"


def test_seeds_trained_otherwise_are_said_and_shown_in_what_differs(data_dir, tmp_path, monkeypatch, capsys):
    """--precision auto chooses by machine: a seed added where bf16 is native, beside seeds
    trained in fp32, mixes them. The report says so, the ablation's "what differs" shows it
    (from the runs as they ran, not the study file's "auto")."""
    from fashionae import training
    path = write(tmp_path, 'seeds = 1\n' + TINY_TRAIN + '[model]\narch = "conv"\n[[autoencoders]]\nname = "a"\n'
                 'dropout = 0.2\n[[autoencoders]]\nname = "b"\ndropout = 0.0\n[[ablation]]\nchange = "no dropout"\n'
                 'baseline = "a"\nvariant = "b"\n[baselines]\nenabled = false\n')
    out, opts = study_out(tmp_path, data_dir)
    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    assert main(["study", str(path), *opts, "--device", "cpu"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [a["mixed"] for a in results["autoencoders"]] == [{}, {}]
    assert results["ablation"][0]["differs"] == {"model.dropout": [0.2, 0.0]}
    monkeypatch.setattr(training, "native_bf16", lambda device: True)
    assert main(["study", str(path), *opts, "--device", "cpu", "--seeds", "2"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [a["mixed"] for a in results["autoencoders"]] == [{"train.precision": ["fp32", "bf16"]}] * 2
    assert results["ablation"][0]["differs"] == {"model.dropout": [0.2, 0.0]}  # both sides mixed alike
    said = " ".join(summary(results))
    assert ("Not trained alike: a's seeds differ in precision (fp32, bf16) (and 1 more of its autoencoders and "
            "classifiers), so its means mix runs trained differently, and the claims leave it out") in said
    # a side trained one way against one trained the other: the line changes two things, and says so
    b = next(a for a in results["autoencoders"] if a["name"] == "b")
    from fashionae.verdicts import ablation
    from fashionae.study import load_study
    (row,) = ablation(load_study(path), [a for a in results["autoencoders"] if a["name"] == "a"]
                      + [{**b, "trained_with": {**b["trained_with"], "train.precision": "fp32"}}], [])
    assert row["differs"]["train.precision"] == ["by seed: fp32, bf16", "fp32"]
    assert "Not one change alone: “no dropout” changes dropout 0.2 → 0; precision by seed: fp32, bf16 → fp32." in \
        " ".join(summary({**results, "ablation": [row]}))


def half_trained_classifier(strategy, data_dir, tmp_path, monkeypatch):
    """A study of one encoder and one classifier of ``strategy``, stopped after the classifier's
    first epoch, its encoder's folder then deleted: (study, its folder)."""
    from fashionae import training
    body = (TINY_TRAIN.replace("epochs = 1", "epochs = 2") + '[[autoencoders]]\nname = "a"\narch = "linear"\n'
            f'latent = 16\n[classifiers]\nencoder = "a"\nstrategies = ["{strategy}"]\n[baselines]\nenabled = false\n')
    study, out = load_study(write(tmp_path, body)), tmp_path / "study"
    real = training.save_checkpoint

    def stop_after_the_first(path, *args, **kwargs):
        real(path, *args, **kwargs)
        if "clf-" in str(path):
            raise KeyboardInterrupt
    monkeypatch.setattr(training, "save_checkpoint", stop_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, out, data_dir=str(data_dir), verify=False, **QUIET)
    monkeypatch.setattr(training, "save_checkpoint", real)
    clf = out / "runs" / f"clf-{strategy}-seed0"
    assert (clf / "checkpoint.safetensors").exists() and not (clf / "summary.json").exists()
    shutil.rmtree(out / "runs" / "ae-a-seed0")
    return study, out


def test_a_half_trained_scratch_classifier_resumes_over_its_encoder_trained_again(data_dir, tmp_path, monkeypatch):
    """scratch takes its encoder's architecture, not its weights: stopped midway, it resumes once
    its encoder's deleted folder is trained again (a fine-tuned one could not: it is refused)."""
    study, out = half_trained_classifier("scratch", data_dir, tmp_path, monkeypatch)
    run_study(study, out, data_dir=str(data_dir), verify=False, **QUIET)
    assert json.loads((out / "runs" / "clf-scratch-seed0" / "summary.json").read_text())["epochs"] == 2


def test_a_half_trained_fine_tuned_classifier_is_refused_when_its_encoder_is_to_train_again(data_dir, tmp_path,
                                                                                          monkeypatch):
    """finetune takes its encoder's weights: stopped midway, its encoder's folder deleted, it
    cannot resume on the encoder trained again, and is refused before anything trains."""
    study, out = half_trained_classifier("finetune", data_dir, tmp_path, monkeypatch)
    with pytest.raises(UserError, match=r"^1 run folder of .* holds a run that differs from what the study asks for "
                                        r"now: clf-finetune-seed0 \(its encoder ae-a-seed0 is to be trained again, "
                                        r"and it cannot resume on another\); delete it and run the study again"):
        run_study(study, out, data_dir=str(data_dir), verify=False, **QUIET)
    assert not (out / "runs" / "ae-a-seed0").exists()  # refused before anything trains


def test_every_run_of_the_plan_trains_with_its_own_seed_on_its_own_seeds_encoder(tmp_path):
    """Each seed of a classifier is a run of its own: trained with that seed (not seed 0's again,
    which would give every seed one figure and the study a spread of nothing), on the encoder of
    the same seed."""
    study = load_study(write(tmp_path, MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n[classifiers]\n'
                                              'encoder = ["a", "b"]\nstrategies = ["frozen", "scratch"]\n'), seeds=3)
    plan = plan_mod.make_plan(study)
    assert len(plan) == 2 * 3 + 2 * 2 * 3
    for run in plan:
        assert run.name.endswith(f"-seed{run.seed}") and run.config.train.seed == run.seed, run.name
        if run.kind == "classifier":
            assert run.needs == (plan_mod.ae_run_name(run.encoder, run.seed),)
    assert sorted({run.config.train.seed for run in plan if run.kind == "classifier"}) == [0, 1, 2]


def test_the_baselines_take_the_subsets_of_train_unless_baselines_sets_its_own(tmp_path):
    """PCA and logistic regression are fitted and measured on the images the autoencoders are
    ([train]'s subsets), not on the whole dataset, unless [baselines] says otherwise."""
    study = load_study(write(tmp_path, TINY_TRAIN + MINIMAL))
    assert (study.baselines.train_subset, study.baselines.eval_subset) == (300, 200)
    own = load_study(write(tmp_path, TINY_TRAIN + MINIMAL + "[baselines]\ntrain_subset = 100\n"))
    assert (own.baselines.train_subset, own.baselines.eval_subset) == (100, 200)
    assert Study.from_dict(study.to_dict()).baselines == study.baselines  # study.json reads back the same


def test_an_autoencoders_or_the_classifier_stages_own_setting_wins_over_the_shared_tables(tmp_path):
    """[model] and [train] are what the runs share; a setting an autoencoder or [classifiers.train]
    gives itself is the one it trains with."""
    s = load_study(write(tmp_path, '[model]\narch = "linear"\ndropout = 0.1\n[train]\nepochs = 3\nlr = 2e-3\n'
                                   '[[autoencoders]]\nname = "a"\ndropout = 0.3\ntrain = { epochs = 4 }\n'
                                   '[[autoencoders]]\nname = "b"\n'
                                   '[classifiers]\nencoder = "a"\ntrain = { epochs = 5 }\n'))
    a, b = s.autoencoders
    assert (a.model.dropout, a.train.epochs, a.train.lr) == (0.3, 4, 2e-3)
    assert (b.model.dropout, b.train.epochs, b.train.lr) == (0.1, 3, 2e-3)
    assert (s.classifiers.train.epochs, s.classifiers.train.lr) == (5, 2e-3)


def test_the_run_folders_a_study_does_not_ask_for_are_folders_it_asks_for_by_no_name(tmp_path):
    """Its own runs, and a file beside them (notes, say), are not counted among them."""
    plan = plan_mod.make_plan(load_study(write(tmp_path, MINIMAL)))
    folder = StudyFolder(tmp_path / "out")
    states = {"ae-a-seed0": "new"}
    assert preflight.unasked_runs_note(plan, states, folder, None) is None  # no runs/ yet
    for name in ("ae-a-seed0", "ae-gone-seed0"):
        (tmp_path / "out" / "runs" / name).mkdir(parents=True)
    (tmp_path / "out" / "runs" / "notes.txt").write_text("mine")
    note = preflight.unasked_runs_note(plan, states, folder, None)  # no finished run there: none renamed
    assert " 1 run folder(s) " in note and "(ae-gone-seed0)" in note and "notes.txt" not in note
    assert "--seeds" not in note  # (another autoencoder's: no more seeds would report it)
    (tmp_path / "out" / "runs" / "ae-a-seed3").mkdir()  # seeds 1 and 2 missing: more seeds would train them
    assert "--seeds" not in preflight.unasked_runs_note(plan, states, folder, None)
    for seed in (1, 2):  # the seeds after this study's, every one: a study with them reports them all
        (tmp_path / "out" / "runs" / f"ae-a-seed{seed}").mkdir()
    assert preflight.unasked_runs_note(plan, states, folder, None).endswith(
        "kept, and left out of its results and report (`--seeds 4` reports them with the others)")


def test_a_table_of_verdicts_whose_family_changed_since_an_earlier_report_says_so(data_dir, tmp_path, capsys):
    """An ablation line added (2 intervals judged together, then 4: each wider) or dropped after a
    look (4, then 2: narrower, which a look must not buy) is said; a report of the same family, a
    rebuild, adds no entry; a results.json from before the history was kept starts it."""
    line = '[[ablation]]\nchange = "no dropout"\nbaseline = "a"\nvariant = "b"\n'
    base = (TINY_TRAIN + MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\ndropout = 0.0\n'
            '[[autoencoders]]\nname = "c"\narch = "conv"\ndropout = 0.1\n[baselines]\nenabled = false\n')
    out, opts = study_out(tmp_path, data_dir)

    def run(text: str) -> tuple[list[str], list, str]:
        capsys.readouterr()
        assert main(["study", str(write(tmp_path, text)), *opts, "--seeds", "3"]) == 0
        results = json.loads((out / "results.json").read_text())
        return ([s for s in summary(results) if "earlier report of" in s], results["family_history"],
                capsys.readouterr().out)
    assert run(base + line)[:2] == ([], [{"ablation": 2}])
    said, history, terminal = run(base + line + line.replace('"b"', '"c"').replace("no dropout", "dropout 0.1"))
    assert history == [{"ablation": 2}, {"ablation": 4}]
    assert said == ["In an earlier report of this study folder the ablation's MSE table made 2 comparisons, and "
                    "makes 4 now: more comparisons make each interval wider, fewer narrower, so a verdict may read "
                    "otherwise than it did for that alone."]
    assert f". {said[0]}\n" in terminal  # with the first table of verdicts
    capsys.readouterr()
    assert main(["report", str(out)]) == 0  # the same family again: no entry
    assert json.loads((out / "results.json").read_text())["family_history"] == history
    said, history, _ = run(base + line)
    assert history == [{"ablation": 2}, {"ablation": 4}, {"ablation": 2}]
    assert said[0].endswith("made 4 comparisons, and makes 2 now: more comparisons make each interval wider, fewer "
                            "narrower, so a verdict may read otherwise than it did for that alone; and a comparison "
                            "dropped after a look leaves the others' verdicts weaker than their intervals say "
                            "(docs/claims.md).")
    said, history, _ = run(base)  # no ablation, then one of 4 again: against the last report that had one
    assert history[-1] == {} and not said
    said, history, _ = run(base + line + line.replace('"b"', '"c"'))
    assert history[-2:] == [{}, {"ablation": 4}] and "made 2 comparisons, and makes 4 now: " in said[0]
    results = json.loads((out / "results.json").read_text())
    for older in ({k: v for k, v in results.items() if k != "family_history"},  # a results.json of 0.3.19
                  {**results, "family_history": [{"ablation": "2"}]}):  # damaged
        (out / "results.json").write_text(json.dumps(older))
        (out / "looks.json").write_text(json.dumps({"family_history": older.get("family_history")}))  # (alike)
        assert main(["report", str(out)]) == 0
        assert json.loads((out / "results.json").read_text())["family_history"] == [{"ablation": 4}]
    assert run(base + line + line.replace('"b"', '"c"'))[0] == []  # the same family as the last report's
    capsys.readouterr()  # the seeds alone change: the same comparisons, no entry
    assert main(["study", str(write(tmp_path, base + line + line.replace('"b"', '"c"'))), *opts, "--seeds", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["family_history"] == [{"ablation": 4}] and not [s for s in summary(results) if "comparisons" in s]


def test_each_report_with_other_seeds_is_a_look_said_with_what_it_costs(data_dir, tmp_path, capsys):
    """A study reported with 1 seed, then 2, then 1 again: each report is a look, and the summary
    says what several looks cost; a report with the seeds of the one before (a rebuild, nothing
    trained) adds none; results.json deleted keeps them (looks.json); a damaged history starts
    again from the seeds results.json had."""
    text = (TINY_TRAIN + MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\ndropout = 0.0\n'
            '[[ablation]]\nchange = "no dropout"\nbaseline = "a"\nvariant = "b"\n[baselines]\nenabled = false\n')
    out, opts = study_out(tmp_path, data_dir)
    study = write(tmp_path, text)

    def said() -> list[str]:
        results = json.loads((out / "results.json").read_text())
        return [line for line in summary(results) if "earlier reports" in line], results["seed_history"]
    assert main(["study", str(study), *opts, "--seeds", "1"]) == 0
    assert said() == ([], [1])
    for _ in range(2):
        assert main(["study", str(study), *opts, "--seeds", "2"]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    # the terminal says it too, with its first table of verdicts (here the ablation's)
    assert ". This study folder's earlier reports had 1 seed, and this one has 2: " in capsys.readouterr().out
    assert said() == (["This study folder's earlier reports had 1 seed, and this one has 2: a verdict read after "
                       "another look at the same study is weaker than its interval says (optional stopping, "
                       "docs/claims.md); read one the earlier looks did not show as a new experiment, planned "
                       "with 2 seeds."], [1, 2])
    assert main(["study", str(study), *opts, "--seeds", "1"]) == 0  # fewer seeds after a look: a look too
    assert said()[1] == [1, 2, 1] and "earlier reports had 1, then 2 seeds, and this one has 1:" in said()[0][0]
    (out / "results.json").unlink()  # deleted to rebuild it: the looks are kept apart (looks.json)
    assert main(["report", str(out)]) == 0 and said()[1] == [1, 2, 1]
    results = json.loads((out / "results.json").read_text())
    (out / "results.json").write_text(json.dumps({**results, "seed_history": "12"}))
    (out / "looks.json").write_text(json.dumps({"seed_history": "12"}))  # damaged: its seeds alone
    assert main(["report", str(out)]) == 0 and said() == ([], [1])
    capsys.readouterr()


def test_progress_shows_the_steps_done_the_epoch_at_most_the_last_and_the_in_epoch_bar_its_last_step(monkeypatch):
    """On a wide terminal the line shows the epoch's steps as a bar (2 of 4: half of it), then
    "evaluating" once they are all done; after its last epoch the run is at that epoch, not one
    past it. A single run's bar draws every 20th step and always its last, which clears the line."""
    monkeypatch.setattr(shutil, "get_terminal_size", lambda: os.terminal_size((400, 20)))
    monkeypatch.setenv("TERM", "xterm")
    plan = plan_mod.make_plan(load_study(PAPER, "smoke"))
    first, screen = plan[0], Terminal()
    epochs = first.config.train.epochs
    progress = progress_mod.Progress(plan, {r.name: "new" for r in plan}, 400, lambda m: None, stream=screen)
    progress.start(first)
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: 1e9)  # long since the last draw
    progress.step(2, 4)
    assert screen.getvalue().endswith(f"epoch 1/{epochs} [##########..........] 2/4")
    progress.step(4, 4)
    assert screen.getvalue().endswith(f"epoch 1/{epochs}, evaluating")
    progress.epoch(first, {"epoch": epochs, "seconds": 2.0})
    progress.draw()
    assert screen.getvalue().endswith(f"epoch {epochs}/{epochs}")
    progress.finished(first, {"seconds_total": 2.0})  # the line cleared, and no run drawn in it until the next
    assert screen.getvalue().endswith("\r\033[K")

    monkeypatch.setattr(sys, "stderr", Terminal())
    show = progress_mod.progress_bar("epoch 1")
    show(19, 45)
    assert sys.stderr.getvalue() == ""
    show(20, 45)
    show(45, 45)
    assert sys.stderr.getvalue() == ("\repoch 1 [#############.................] 20/45"
                                     "\repoch 1 [##############################] 45/45\r\033[K")


def test_progress_weighs_each_run_by_the_images_it_trains_on():
    """A run on a subset of 100 images is a quarter of the work of one on 300 (of 400 there are):
    it done, a quarter of the study is; a subset larger than the data counts the data's images."""
    study = load_study(PAPER, "smoke")
    plan = plan_mod.make_plan(study)[:2]
    plan = [replace(r, config=replace(r.config, train=replace(r.config.train, train_subset=subset)))
            for r, subset in zip(plan, (100, 300))]
    states = {plan[0].name: "complete", plan[1].name: "new"}
    assert progress_mod.Progress(plan, states, 400, lambda m: None, stream=io.StringIO()).status().startswith(
        "1/2 runs,  25% done")
    assert progress_mod.Progress(plan, states, 200, lambda m: None, stream=io.StringIO()).status().startswith(
        "1/2 runs,  33% done")  # 100 of 100 + 200


def test_the_profile_note_of_a_study_without_seeds_counts_its_one_seed(tmp_path):
    """A study file that leaves out seeds runs one: --seeds 1 is what it has, and says nothing more."""
    path = write(tmp_path, 'profile_note = "one seed"\n' + MINIMAL)
    assert load_study(path, seeds=1).profile_note == "one seed"
    assert load_study(path, seeds=2).profile_note == "one seed (Run with --seeds 2; the profile has 1.)"


def test_the_precision_an_autoencoder_is_written_with_is_its_own_trains_over_the_shared_one(tmp_path):
    """What --precision is said to have made alike: each autoencoder's precision as written, its own
    train's over [train]'s (a: fp32 of its own, b: the shared bf16)."""
    text = ('[train]\nprecision = "bf16"\n' + MINIMAL.replace('"conv"\n', '"conv"\ntrain = { precision = "fp32" }\n')
            + '[[autoencoders]]\nname = "b"\narch = "conv"\n[[ablation]]\nchange = "x"\nbaseline = "a"\nvariant = "b"\n')
    assert [a.train.precision for a in load_study(write(tmp_path, text)).autoencoders] == ["fp32", "bf16"]
    with pytest.raises(UserError, match="^study file s.toml: ablation 'x': a and b train the same model with --precision "
                                        "fp32 \\(which sets every run's\\)"):
        load_study(write(tmp_path, text), train_overrides={"precision": "fp32"})


def test_an_autoencoder_name_of_the_longest_length_is_taken(tmp_path):
    """NAME_MAX is the longest name taken, not the first refused."""
    from fashionae.study import NAME_MAX
    name = "a" * NAME_MAX
    assert load_study(write(tmp_path, MINIMAL.replace('"a"', f'"{name}"'))).autoencoders[0].name == name


def test_a_missing_toml_file_is_not_offered_with_a_second_toml(tmp_path):
    """"did you mean" adds .toml to a name without it only: a missing mine.toml is not mine.toml.toml."""
    (tmp_path / "mine.toml.toml").write_text(MINIMAL)
    with pytest.raises(UserError, match=f"^study file {re.escape(str(tmp_path / 'mine.toml'))} does not exist; give a "
                                        "study file, or the name of a bundled one"):
        load_study(str(tmp_path / "mine.toml"))


def test_a_classifier_stage_that_says_little_takes_the_defaults_and_checks_its_paper_head(tmp_path):
    """[classifiers] without strategies runs all four, with the fixed head; paper_head is true or false."""
    from fashionae.runconfig import STRATEGIES
    stage = load_study(write(tmp_path, MINIMAL + '[classifiers]\nencoder = "a"\n')).classifiers
    assert (stage.strategies, stage.paper_head, stage.encoders) == (list(STRATEGIES), False, ["a"])
    assert load_study(write(tmp_path, MINIMAL + '[classifiers]\nencoder = "a"\npaper_head = true\n')).classifiers.paper_head
    with pytest.raises(UserError, match="^study file s.toml: \\[classifiers\\] paper_head must be true or false, got 1$"):
        load_study(write(tmp_path, MINIMAL + '[classifiers]\nencoder = "a"\npaper_head = 1\n'))


def test_a_folders_study_with_targets_on_the_test_set_is_read_as_it_ran(tmp_path):
    """Targets judged on val = "test" are refused in a study file, but a study.json written so (by a
    version that took it) is read back as it ran."""
    s = load_study(write(tmp_path, MINIMAL + '[targets]\nautoencoder = "a"\nval_mse = 0.1\n'))
    d = s.to_dict()
    d["autoencoders"][0]["train"]["val"] = "test"
    read = Study.from_dict(d)
    assert (read.val, read.targets.autoencoder, read.targets.val_mse) == ("test", "a", 0.1)


def test_a_study_without_targets_writes_none_and_twins_are_two_or_more(tmp_path):
    """study.json holds no null targets (TOML has no null); ``twins`` names groups of two or more only."""
    s = load_study(write(tmp_path, MINIMAL + '[[autoencoders]]\nname = "b"\narch = "conv"\n'
                                              '[[autoencoders]]\nname = "c"\narch = "linear"\n'))
    assert s.to_dict()["targets"] == {}
    assert s.twins() == [["a", "b"]]


def test_baselines_and_explore_take_the_defaults_the_study_file_page_gives(tmp_path):
    """docs/study-files.md: logreg_max_iter 200, tsne true."""
    s = load_study(write(tmp_path, MINIMAL))
    assert (s.baselines.enabled, s.baselines.logreg_max_iter, s.explore.tsne, s.explore.autoencoders) == (True, 200, True, [])


def test_the_ends_of_a_targets_figure(tmp_path):
    """A target's figure is in (0, 1]: an accuracy of 1 is one, an MSE of 0 is none."""
    targets = ('[classifiers]\nencoder = "a"\nstrategies = ["frozen"]\n[train]\nval = "holdout"\n'
               '[targets]\nautoencoder = "a"\nclassifier = "frozen"\nval_acc = 1.0\nval_mse = {}\n')
    assert load_study(write(tmp_path, MINIMAL + targets.format(0.5))).targets.val_acc == 1.0
    with pytest.raises(UserError, match="^study file s.toml: \\[targets\\]: val_mse must be a number in \\(0, 1\\], got 0$"):
        load_study(write(tmp_path, MINIMAL + targets.format(0)))


def test_runs_in_another_memory_layout_are_probed_on_their_own(monkeypatch):
    """channels_last changes a run's speed as its precision does: each layout is its own probe."""
    from types import SimpleNamespace

    from fashionae import bench
    probed = []
    monkeypatch.setattr(bench, "probe_speed", lambda model, train: probed.append(train) or (100.0, 200.0))
    data = SimpleNamespace(train_images=[0] * 5_000, test_images=[0] * 1_000)
    t = TrainConfig(epochs=1, batch_size=50, val="test", train_subset=1_000, eval_subset=200)
    probes = {}
    for train in (t, replace(t, channels_last=not t.channels_last), t):
        preview.estimate_seconds(RunConfig(train=train), data, probes)
    assert [p.channels_last for p in probed] == [t.channels_last, not t.channels_last]


def test_a_copy_of_a_bundled_study_that_kept_its_words_is_told(tmp_path):
    """The report prints a study's description and profile note as its own: a template copied
    under a name of its own that kept them would describe another study (compare's dropout)."""
    from fashionae.study import kept_words_note
    text = (BUNDLED / "compare.toml").read_text()
    copy = write(tmp_path, text.replace('name = "compare"', 'name = "mylat"'))
    assert kept_words_note(load_study(copy), "my.toml") == (
        "my.toml keeps the description and the profile_note of the bundled study compare, which the report prints "
        "as this study's (mylat): say what yours is there")
    described = write(tmp_path, re.sub(r'description = """.*?"""\n', "", text, flags=re.S).replace(
        'name = "compare"', 'name = "mylat"\ndescription = "Latent 64 vs 512."'))
    assert load_study(described).description == "Latent 64 vs 512."
    assert kept_words_note(load_study(described), "my.toml").startswith("my.toml keeps the profile_note of the "
                                                                         "bundled study compare")
    assert kept_words_note(load_study(described, "full"), "my.toml").startswith("my.toml keeps the profile_note")
    assert kept_words_note(load_study(described, "full", 5), "my.toml").startswith("my.toml keeps the profile_note")
    assert kept_words_note(load_study(BUNDLED / "compare.toml"), "compare.toml") is None  # (itself)
    assert kept_words_note(load_study(write(tmp_path, 'name = "mine"\n' + MINIMAL)), "my.toml") is None


def test_seeds_too_few_for_a_verdict_are_said_before_the_runs(tmp_path):
    """A verdict takes 3 seeds chosen before the runs: a study of fewer says so before it trains
    (and --plan), not only in its report, where a seed added after a look is another look; of the
    claims only where its models test one (compare.toml's two alike linear 512s do not)."""
    from fashionae.preflight import too_few_seeds_note
    tail = " (that takes 3 seeds, chosen before the runs: --seeds 3 or more); "
    compare = load_study(BUNDLED / "compare.toml", "quick", 2)
    assert too_few_seeds_note(compare) == "with 2 seeds the report gives no verdict on the ablation" + tail + (
        "each effect comes with its interval")
    smaller = write(tmp_path, (BUNDLED / "compare.toml").read_text().replace("dropout = 0.0           # the one change",
                                                                            "latent = 64"))
    assert too_few_seeds_note(load_study(smaller, "quick", 2)).startswith(
        "with 2 seeds the report gives no verdict on the claims and the ablation (")  # 64 vs 512: a claim
    assert too_few_seeds_note(replace(load_study(smaller, "quick", 2), dataset=str(tmp_path))).startswith(
        "with 2 seeds the report gives no verdict on the ablation (")  # another dataset: no claims
    assert too_few_seeds_note(load_study(PAPER, "smoke")) == ("with 1 seed the report gives no verdict on the claims"
                                                             + tail + "one seed gives no interval either")
    assert too_few_seeds_note(load_study(smaller, "quick", 3)) is None
    assert too_few_seeds_note(replace(compare, ablation=[])) is None  # nothing to judge
    one = write(tmp_path, 'name = "one"\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 512\n'
                          '[classifiers]\nencoder = "best"\nstrategies = ["finetune"]\n')
    assert "on the claims (" in too_few_seeds_note(load_study(one))  # (the Shirt claim, on "best": the 512)
