"""The run folder: which settings make a run's identity, the data a run is loaded again
with, and how its files are checked."""

import dataclasses
import json
import os
import re
import shlex
import shutil

import pytest
import torch

from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.inference import LoadedRun
from fashionae.models import ModelConfig, build_model
from fashionae.runconfig import RunConfig
from fashionae.resumeline import resume_line
from fashionae.runfolder import CLASSIFIER_EPOCH_FIGURES, CLASSIFIER_FIGURES, EPOCH_FIGURES, SUMMARY_FIGURES, RunFolder
from fashionae.settings import CLASSIFIER
from fashionae.training import TrainConfig
from helpers import shapes, unsealed, write_dataset


def test_identity_holds_what_changes_the_numbers_and_nothing_else():
    base = RunConfig(model=ModelConfig(latent=32), train=TrainConfig(epochs=2))
    same = [dataclasses.replace(base, encoder_run="elsewhere/ae"),  # where the encoder lives
            dataclasses.replace(base, train=TrainConfig(epochs=2, tensorboard=True))]
    for other in same:
        assert other.identity() == base.identity()
    changed = {"strategy": dataclasses.replace(base, strategy="frozen"),
               "encoder_sha256": dataclasses.replace(base, encoder_sha256="ab" * 32),
               "dataset": dataclasses.replace(base, dataset="shapes"),
               "dataset_sha256": dataclasses.replace(base, dataset_sha256="cd" * 32),
               "model.latent": dataclasses.replace(base, model=ModelConfig(latent=64)),
               "train.epochs": dataclasses.replace(base, train=TrainConfig(epochs=3))}
    for key, other in changed.items():
        diff = {k for k in base.identity() if base.identity()[k] != other.identity()[k]}
        assert diff == {key}, key


def test_a_folder_refuses_a_run_with_another_dataset(tmp_path):
    """The identity check of ``state_for`` covers the data: the same settings on other data
    are another run."""
    base = RunConfig(model=ModelConfig(latent=32), train=TrainConfig(epochs=2))
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_config(base, {}, {})
    folder.write_metrics([{"epoch": 1}])
    (folder / folder.CHECKPOINT).write_bytes(b"")  # an epoch trained: a run to keep
    assert folder.state_for(base) == "resume"
    with pytest.raises(UserError, match="dataset_sha256: None there"):
        folder.state_for(dataclasses.replace(base, dataset_sha256="cd" * 32))


def test_load_data_finds_the_dataset_where_it_was(own_run):
    data, run = own_run
    ds = RunFolder(run).load_data()
    assert ds.name == "shapes" and ds.image_size == (16, 24) and ds.verified
    assert not RunFolder(run).load_data(verify=False).verified  # verify is passed on


def test_load_data_follows_a_moved_dataset_and_refuses_changed_files(own_run, tmp_path):
    data, run = own_run
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    assert RunFolder(run).load_data(str(moved)).sha256 == RunFolder(run).load_data().sha256
    changed = shapes(tmp_path / "changed", n_train=200)  # same name and classes, other images
    with pytest.raises(UserError, match=r"are not the ones .* \(their SHA-256 differ\); pass --data-dir"):
        RunFolder(run).load_data(str(changed))
    with pytest.raises(UserError, match=rf"^--data-dir {re.escape(str(tmp_path / 'nonexist'))} is not a folder; give "
                                        rf"the folder where .* is now \({re.escape(str(run))} was trained on it in "
                                        rf"{re.escape(str(data))}\)$"):
        RunFolder(run).load_data(str(tmp_path / "nonexist"))
    gone = tmp_path / "run-copy"
    shutil.copytree(run, gone)
    config = (gone / "config.json").read_text().replace(str(data), str(tmp_path / "nowhere"))
    (gone / "config.json").write_text(config)
    with pytest.raises(UserError, match="which is not there now; pass --data-dir"):
        RunFolder(gone).load_data()
    config = json.loads(config)
    del config["data"]  # a config.json that says nothing of where the data was
    (gone / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="in None, which is not there now"):
        RunFolder(gone).load_data()
    config["data"] = {"source": 5}  # an edited source that is not a path
    (gone / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="in 5, which is not there now"):
        RunFolder(gone).load_data()


def test_load_data_of_a_fashion_mnist_run_takes_data_dir_and_verify(tmp_path):
    data = write_dataset(tmp_path / "fmnist", n_train=300, n_test=100)  # not the real files
    run = tmp_path / "run"
    assert main(["train-ae", "--data-dir", str(data), "--no-verify", "--latent", "4", "--epochs", "1",
                 "--batch-size", "50", "--out", str(run)]) == 0
    ds = RunFolder(run).load_data(str(data), verify=False)
    assert ds.name == "fashion-mnist" and len(ds.train_images) == 300 and not ds.verified
    with pytest.raises(UserError, match="SHA-256"):  # verified by default: these are not the real files
        RunFolder(run).load_data(str(data))


def test_from_dict_fills_what_an_older_config_lacks_and_round_trips():
    full = RunConfig(model=ModelConfig(task="classifier", latent=32), train=TrainConfig(epochs=2),
                     strategy="frozen", encoder_run="runs/ae", encoder_sha256="ab" * 32,
                     dataset="shapes", dataset_sha256="cd" * 32)
    assert RunConfig.from_dict(full.to_dict()) == full
    minimal = {"model": full.to_dict()["model"], "train": full.to_dict()["train"]}
    older = RunConfig.from_dict(minimal)
    assert (older.strategy, older.encoder_run, older.encoder_sha256, older.dataset,
            older.dataset_sha256) == (None, None, None, "fashion-mnist", None)


def test_a_classifier_uses_its_encoders_weights_where_its_strategy_starts_from_them(tmp_path):
    """frozen and finetune start from the encoder's weights: its digest is part of what they use,
    so a folder trained on another encoder's weights differs; scratch and random-frozen take only
    its architecture. A classifier uses its training's classifier settings (``augment``), which
    an autoencoder does not."""
    def clf(strategy, digest="ab" * 32, **train):
        return RunConfig(model=ModelConfig(task=CLASSIFIER, latent=8), train=TrainConfig(**train),
                         strategy=strategy, encoder_run="runs/ae", encoder_sha256=digest)

    ae = RunConfig(model=ModelConfig(latent=8), train=TrainConfig())
    assert ae.unused() == {"model.paper_head", "train.augment"}
    for strategy in ("frozen", "finetune"):
        assert clf(strategy).unused() == {"model.decoder"}
    for strategy in ("scratch", "random-frozen"):
        assert clf(strategy).unused() == {"model.decoder", "encoder_sha256"}
    for strategy in ("frozen", "scratch"):
        folder = RunFolder(tmp_path / strategy)
        folder.path.mkdir()
        folder.write_config(clf(strategy), {}, {})
        assert folder.differences(clf(strategy, augment=True)) == ["train.augment: False there, True now"]
        other = folder.differences(clf(strategy, "cd" * 32))
        assert other == ([f"encoder_sha256: {'ab' * 32!r} there, {'cd' * 32!r} now"] if strategy == "frozen" else [])


def test_what_a_run_is_trained_with_leaves_out_the_seed_and_how_it_was_carried_out():
    """Two seeds of a run are trained with the same: the seed, the encoder's digest, the train
    loss's subset and how the run was carried out (the device, the masks' generator, the memory
    layout, determinism) are left out; the rest of what it uses is kept."""
    base = RunConfig(model=ModelConfig(task=CLASSIFIER, latent=8), train=TrainConfig(), strategy="frozen",
                     encoder_sha256="ab" * 32)
    other = dataclasses.replace(base, encoder_sha256="cd" * 32, train=TrainConfig(
        seed=1, train_eval_subset=100, device="cpu", dropout_masks="stock", channels_last=False, deterministic=True))
    assert base.trained_with() == other.trained_with()
    assert base.trained_with()["train.lr"] == TrainConfig().lr and base.trained_with()["strategy"] == "frozen"
    assert "model.decoder" not in base.trained_with()
    assert dataclasses.replace(base, train=TrainConfig(lr=2e-3)).trained_with() != base.trained_with()
    # a frozen encoder runs in eval mode: its dropout trains nothing (but under the paper head, which
    # runs it in training mode), where a scratch or fine-tuned encoder's does
    def dropout(strategy: str, paper_head: bool = False, **model) -> dict:
        return dataclasses.replace(base, strategy=strategy, model=ModelConfig(
            task=CLASSIFIER, latent=8, paper_head=paper_head, **model)).trained_with()
    for strategy in ("frozen", "random-frozen"):
        assert dropout(strategy, dropout=0.0) == dropout(strategy) == dropout(strategy, dropout_after_pool=True)
        assert dropout(strategy, True, dropout=0.0) != dropout(strategy, True)
    for strategy in ("finetune", "scratch"):
        assert dropout(strategy, dropout=0.0) != dropout(strategy) != dropout(strategy, dropout_after_pool=True)


def put_summary(folder: RunFolder, summary) -> None:
    """A summary.json of any content, unsealed: as fashionae wrote them before 0.3.2, or edited."""
    (folder / folder.SUMMARY).write_text(json.dumps(summary))


def test_a_moved_runs_line_runs_from_where_its_project_is_now_and_never_trains_another_folder(tmp_path):
    """A run whose recorded command ran in a folder that is gone: where that folder moved with the
    run (a project moved whole, the --out leading to the run from inside it, up a level too), the
    line runs from there as it was, its other relative paths with it; not where the --out would lead
    elsewhere through a link; and where the folder it ran in is still there (the run copied out of
    it), from there, with --out this folder."""
    def line(run, recorded: str) -> str:
        folder = RunFolder(run)
        folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"command": recorded})
        with pytest.raises(UserError) as refused:
            folder.require()
        return str(refused.value).split("to resume it: ", 1)[1]
    (tmp_path / "new" / "work").mkdir(parents=True)  # a project moved from old/ to new/, its runs beside work/
    (tmp_path / "new" / "runs" / "a").mkdir(parents=True)
    (tmp_path / "new" / "data").mkdir()
    assert line(tmp_path / "new" / "runs" / "a", f"cd {tmp_path}/old/work && fashionae train-ae --data-dir ../data "
                                                  "--out ../runs/a") == (
        f"cd {tmp_path}/new/work && fashionae train-ae --data-dir ../data --out ../runs/a")
    for words in ("FASHIONAE_DATA=../data OMP_NUM_THREADS=1 fashionae train-ae --dataset fashion-mnist",
                  "FASHIONAE_DATA=/usr/share/x fashionae train-ae --data-dir=../data --encoder ../runs/a"):
        assert line(tmp_path / "new" / "runs" / "a", f"cd {tmp_path}/old/work && {words} --out ../runs/a") == (
            f"cd {tmp_path}/new/work && {words} --out ../runs/a")  # (its paths lead there: the data, the encoder)
    for words in ("FASHIONAE_DATA=nowhere fashionae train-ae", "fashionae train-ae --data-dir nowhere",
                  "fashionae train-ae --dataset sub/x", "fashionae train-clf --encoder=../nowhere"):  # leading nowhere
        assert line(tmp_path / "new" / "runs" / "a", f"cd {tmp_path}/old/work && {words} --out ../runs/a") == (
            f"{words} --out {tmp_path}/new/runs/a")  # (no cd guessed: its --out made this folder)
    (tmp_path / "solo" / "a").mkdir(parents=True)  # a run moved alone, out of its project (gone): its own name
    # alone is shared, and its relative paths lead nowhere from the folder that guess gives: no cd
    assert line(tmp_path / "solo" / "a", f"cd {tmp_path}/proj9 && fashionae train-ae --dataset data/x --out a") == (
        f"fashionae train-ae --dataset data/x --out {tmp_path}/solo/a")
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)  # a/../run leads to elsewhere/run through the link a
    (tmp_path / "n8" / "run").mkdir(parents=True)
    (tmp_path / "n8" / "a").symlink_to(tmp_path / "elsewhere" / "sub")
    assert line(tmp_path / "n8" / "run", f"cd {tmp_path}/gone && fashionae train-ae --out a/../run") == (
        f"fashionae train-ae --out {tmp_path}/n8/run")
    (tmp_path / "proj").mkdir()  # the project still there, the run copied out of it
    (tmp_path / "backup" / "runs" / "a").mkdir(parents=True)
    assert line(tmp_path / "backup" / "runs" / "a", f"cd {tmp_path}/proj && FASHIONAE_DATA=data fashionae train-ae "
                                                     "--out runs/a") == (
        f"cd {tmp_path}/proj && FASHIONAE_DATA=data fashionae train-ae --out {tmp_path}/backup/runs/a")


def test_a_folder_says_what_it_lacks(tmp_path, monkeypatch):
    missing = RunFolder(tmp_path / "absent")
    with pytest.raises(UserError, match=r"^encoder run .*absent does not exist; give a fashionae run folder$"):
        missing.require(what="encoder run")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match=r"^.*model.safetensors is a file; give a fashionae run folder$"):
        RunFolder(tmp_path / "model.safetensors").require()
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "moved").symlink_to(tmp_path / "elsewhere")
    for link in ("loop-a", "moved"):  # not "does not exist": the link is there
        with pytest.raises(UserError, match=rf"^.*{link} is a link that leads nowhere \(to a path that does not "
                                            r"exist, or round a loop of links\); give a fashionae run folder$"):
            RunFolder(tmp_path / link).require()
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    with pytest.raises(UserError, match=rf"^{re.escape(str(folder.path))} is not a fashionae run folder "
                                        r"\(no config.json\); give a folder that train-ae, train-clf or a study "
                                        r"wrote \(a study's runs are in its runs/\)$"):
        folder.require()
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {})
    study = tmp_path / "study"
    run = RunFolder(study / "runs" / "ae-a-seed0")
    run.path.mkdir(parents=True)
    run.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {})
    for above in (study / "runs", study):  # a study's runs/ folder, or the study folder: one of its runs named
        with pytest.raises(UserError, match=rf"^{re.escape(str(above))} is not a fashionae run folder \(no config.json\); "
                                            rf"it holds runs: give one, such as {re.escape(str(run.path))} \(an autoencoder\)$"):
            RunFolder(above).require()
    clf = RunFolder(study / "runs" / "clf-frozen-seed0")  # and one of each task: classify wants a classifier
    clf.path.mkdir()
    clf.write_config(RunConfig(model=ModelConfig(task=CLASSIFIER), train=TrainConfig()), {}, {})
    with pytest.raises(UserError, match=rf"such as {re.escape(str(run.path))} \(an autoencoder\) "
                                        rf"or {re.escape(str(clf.path))} \(a classifier\)$"):
        RunFolder(study).require()
    with pytest.raises(UserError, match=rf"^{re.escape(str(folder.path))} has not finished training "
                                        r"\(no summary.json\); run its command again to resume it$"):
        folder.require()
    with folder.lock():  # one a study is training now: not to resume, but to wait for
        with pytest.raises(UserError, match=rf"^{re.escape(str(folder.path))} is being trained by another fashionae "
                                            rf"process \(pid {os.getpid()}\); wait for it to finish$"):
            folder.require()
    command = f"cd {tmp_path} && fashionae train-ae --epochs 3 --out run"  # recorded by train-ae and train-clf: said
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"command": command})
    with pytest.raises(UserError, match=rf"\(no summary.json\); run its command again to resume it: {re.escape(command)}$"):
        folder.require()
    # a folder moved or copied since: the command would train its old place. Its project moved whole
    # (its --out leads here from a folder as it did): from there, as it was; else with its --out this
    # folder, from where it ran where that is still there (the default folder: said too)
    this = f"--out {folder.path.resolve()}"
    for recorded, here in (
            (f"cd {tmp_path}/old && fashionae train-ae --epochs 3 --out run --seed 2",
             f"cd {tmp_path} && fashionae train-ae --epochs 3 --out run --seed 2"),
            (f"cd {tmp_path}/old && fashionae train-ae --epochs 3 --out ./run/ --seed 2",
             f"cd {tmp_path} && fashionae train-ae --epochs 3 --out ./run/ --seed 2"),
            (f"cd {tmp_path} && fashionae train-ae --epochs 3 --out=elsewhere --seed 2",
             f"cd {tmp_path} && fashionae train-ae --epochs 3 --seed 2 {this}"),
            (f"cd {tmp_path}/gone && fashionae train-ae --epochs 3 --out ../elsewhere --seed 2",
             f"fashionae train-ae --epochs 3 --seed 2 {this}"),  # (nowhere to go: no cd)
            (f"cd {tmp_path} && fashionae train-ae --epochs 3 --seed 2",
             f"cd {tmp_path} && fashionae train-ae --epochs 3 --seed 2 {this}")):
        folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"command": recorded})
        with pytest.raises(UserError, match=rf"run its command again to resume it: {re.escape(here)}$"):
            folder.require()
    # as resume_line writes it (a data folder with a space, torchrun), read back: --out moved to this folder
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    recorded = resume_line("fashionae train-ae --out old", "/my data", 2)
    assert recorded == (f"cd {tmp_path} && FASHIONAE_DATA='/my data' OMP_NUM_THREADS={threads} torchrun "
                        "--nproc-per-node 2 -m fashionae train-ae --out old")
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"command": recorded, "processes": 2})
    here = (f"cd {tmp_path} && FASHIONAE_DATA='/my data' OMP_NUM_THREADS={threads} torchrun --nproc-per-node 2 -m "
            f"fashionae train-ae --out {folder.path.resolve()}")
    with pytest.raises(UserError, match=rf"\(no summary.json\); run its command again to resume it: {re.escape(here)}$"):
        folder.require()
    for edited in ("", "garbage words", "cd /nowhere && rm -rf ~", 'unbalanced "quote', "fashionae study s.toml",
                   "torchrun --nproc-per-node 2 fashionae train-ae", 5, f"{command} && rm -rf ~", f"{command}; ls",
                   f"{command}\nrm -rf /", f"cd {tmp_path}\0 && fashionae train-ae --out run", "cd  " + command[3:],
                   command + " x" * 5_000):  # never said as the line to run: another, or not as resume_line quotes it
        folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"command": edited})
        with pytest.raises(UserError, match=r"\(no summary.json\); run its command again to resume it$"):
            folder.require()
    from fashionae.resumeline import runs_fashionae
    for where in ("plain", "a space", "it's", "$HOME", "é", 'say "x"', "a\ttab"):  # each line resume_line writes: said
        (tmp_path / where).mkdir()
        monkeypatch.chdir(tmp_path / where)
        for argv in (["--out", "lr=0.1 run"], ["--out", "x=é"], ["--out=x"], ["--dataset", "a=b c", "--out", "A=1;B"],
                     ["--out", "x=$y"], ["--out", "x="]):
            for data, processes in ((None, 1), ("/my data", 2), ("d=é", 1)):
                written = resume_line(shlex.join(["fashionae", "train-ae", *argv]), data, processes)
                assert runs_fashionae(written, "train-ae") and not runs_fashionae(written, "study"), written
    monkeypatch.chdir(tmp_path)
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"processes": 2})  # (none recorded)
    with pytest.raises(UserError, match=r"\(no summary.json\); run its command again, under torchrun with 2 processes "
                                        r"in all \(--nproc-per-node 2 on one machine\), to resume it$"):
        folder.require()
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {})
    (folder / "checkpoint.safetensors").mkdir()  # not a training state: refused, never taken for none
    with pytest.raises(UserError, match=r"checkpoint.safetensors is a folder, not a training state; remove it \(a "
                                        r"finished run stays as it is; an unfinished one then trains from epoch 1\)$"):
        folder.progress()
    (folder / "checkpoint.safetensors").rmdir()
    (folder / "checkpoint.safetensors").symlink_to(folder / "gone")
    with pytest.raises(UserError, match=r"checkpoint.safetensors is a broken link, not a training state"):
        folder.has_checkpoint()
    (folder / "checkpoint.safetensors").unlink()
    (folder / ".lock").write_text("elsewhere:4711")  # another host's: whether it still runs cannot be told here
    with pytest.raises(UserError, match=r"has not finished training, and its lock names a process on another host "
                                        r"\(pid 4711 on elsewhere\): wait for it to finish, or if that process is "
                                        r"gone, run its command again to resume it$"):
        folder.require()
    put_summary(folder, dict.fromkeys(SUMMARY_FIGURES, 1))
    assert folder.require() is folder and folder.summary() == dict.fromkeys(SUMMARY_FIGURES, 1)
    assert repr(folder) == f"RunFolder({str(folder.path)!r})"


def test_a_folders_files_read_back_or_say_they_are_damaged(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    assert folder.metrics() == [] and folder.explore_result() is None
    with pytest.raises(UserError, match=r"^run summary .*summary.json is missing$"):
        folder.summary()
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {})
    assert folder.classes()[6] == "Shirt"  # no classes recorded: Fashion-MNIST's
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {"classes": ["a", "b"]}, {})
    assert folder.classes() == ("a", "b")
    config = json.loads((folder / "config.json").read_text())
    del config["data"]  # a folder from before the data were recorded (0.1)
    (folder / "config.json").write_text(json.dumps(config))
    assert folder.classes()[0] == "T-shirt/top" and folder.data_record() == {}
    # the sessions a resumed run records, first to last
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {},
                        {"threads": 1, "earlier_sessions": [{"threads": 2}]})
    assert folder.sessions() == [{"threads": 2}, {"threads": 1}] and folder.environment()["threads"] == 1
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {"earlier_sessions": {"threads": 2}})
    with pytest.raises(UserError, match=r"config.json records earlier sessions that are not a list of records "
                                        r"\(it was edited or damaged\)"):
        folder.sessions()
    rows = [dict.fromkeys(EPOCH_FIGURES, 0.5) | {"epoch": e} for e in (1, 2)]
    (folder / "metrics.jsonl").write_text(f"{json.dumps(rows[0])}\n\n{json.dumps(rows[1])}\n")
    assert folder.metrics() == rows
    tail = (rf" \(it was edited or damaged\); put back a copy of it, or delete {re.escape(str(folder.path))} and run "
            "its command again$")  # a copy first: deleting the folder loses its training
    for bad in ('{"epoch": 1}\n', f'{json.dumps({**rows[0], "val_loss": "0.1"})}\n', "[1, 2]\n"):
        (folder / "metrics.jsonl").write_text(bad)
        with pytest.raises(UserError, match=r"metrics.jsonl holds a row without an epoch's figures \(epoch, "
                                            r"train_loss, train_eval_loss, val_loss, seconds\)" + tail):
            folder.metrics()
    (folder / "metrics.jsonl").write_text(f"{json.dumps(rows[0])}\n")
    put_summary(folder, dict.fromkeys(SUMMARY_FIGURES, 2))  # finished after 2 epochs: one row is missing
    with pytest.raises(UserError, match=r"metrics.jsonl holds 1 epochs where summary.json says 2" + tail):
        folder.metrics()
    (folder / "metrics.jsonl").unlink()
    with pytest.raises(UserError, match=r"metrics.jsonl holds 0 epochs where summary.json says 2" + tail):
        folder.metrics()
    (folder / "summary.json").unlink()
    for cut in ('{"epoch": 1}\n{"epo', '{"epoch": 1}\n' + "[" * 100_000 + "]" * 100_000):  # (too deep: the same)
        (folder / "metrics.jsonl").write_text(cut)
        with pytest.raises(UserError, match=rf"metrics.jsonl is unreadable \(.*\); put back a copy of it, or delete "
                                            rf"{re.escape(str(folder.path))} and run its command again$"):
            folder.metrics()
    (folder / "explore").mkdir()
    (folder / "explore" / "map.png").write_bytes(b"png")
    explored = {"latent": 16, "fit_images": 100, "knn_acc": 0.5, "linear_probe_acc": 0.6, "figures": ["map.png"]}
    (folder / "explore" / "explore.json").write_text(json.dumps(explored))
    assert folder.explore_result() == explored and folder.explore_fault() is None
    # edited or damaged: none (explore and the study write it again), and said to be damaged
    for bad in ({**explored, "knn_acc": None}, {k: v for k, v in explored.items() if k != "latent"},
                {**explored, "figures": ["gone.png"]}, {**explored, "figures": ["../config.json"]},
                {**explored, "figures": "map.png"}, [explored]):
        (folder / "explore" / "explore.json").write_text(json.dumps(bad))
        assert folder.explore_result() is None and folder.explore_fault() == "is damaged or was edited"
    (folder / "explore" / "explore.json").write_text("{bad")
    assert folder.explore_result() is None and folder.explore_fault() == "is damaged or was edited"
    # sealed with its digest as explore writes it: a number edited into another number is known too
    from fashionae.files import sealed
    (folder / "explore" / "explore.json").write_text(json.dumps(sealed(explored, folder.EXPLORE_SEAL)))
    assert folder.explore_result()["knn_acc"] == 0.5 and folder.explore_fault() is None
    (folder / "explore" / "explore.json").write_text(json.dumps({**sealed(explored, folder.EXPLORE_SEAL),
                                                                  "knn_acc": 0.9}))
    assert folder.explore_result() is None and folder.explore_fault() == "is damaged or was edited"
    (folder / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"^run settings .*config.json is unreadable or not valid JSON \(.*\); put back "
                                        r"a copy of it, or delete .* and run its command again$"):  # a copy first
        folder.raw_config()
    (folder / "summary.json").write_text("{not json")
    with pytest.raises(UserError, match=r"^run summary .*summary.json is unreadable or not valid JSON \(.*\); put "
                                        r"back a copy of it, or delete .* and run its command again$"):
        folder.summary()
    (folder / "summary.json").unlink()
    (folder / "config.json").write_text('{"model": {"latent": "big"}, "train": {}}')
    with pytest.raises(UserError, match=r"holds settings this fashionae cannot read .*; it was written by "
                                        r"another version, or edited: put back a copy of it, or delete .* and run "
                                        r"its command again, or read it with the version that wrote it$"):
        folder.config()
    for lost in ("model", "train"):  # a table deleted: a KeyError's bare ('model') before, with no fix
        (folder / "config.json").write_text(json.dumps({k: {} for k in ("model", "train", "data") if k != lost}))
        with pytest.raises(UserError, match=r"config.json is not a run's settings as fashionae writes them \(it was "
                                            r"edited or damaged\); put back a copy of it"):
            folder.config()


def test_state_for_an_out_folder(tmp_path):
    cfg = RunConfig(model=ModelConfig(latent=32), train=TrainConfig(epochs=2))
    assert RunFolder(tmp_path / "absent").state_for(cfg) == "new"
    empty = RunFolder(tmp_path / "empty")
    empty.path.mkdir()
    (empty / ".lock").write_text("")  # a lock left behind is not content
    assert empty.state_for(cfg) == "new"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"^/.*file exists and is not a folder; move it away, or choose another --out$"):
        RunFolder(tmp_path / "file").state_for(cfg)
    (empty / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"^/.*empty is not empty and holds no fashionae run; move its files "
                                        r"away, or choose an empty or new --out$"):
        empty.state_for(cfg)
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_config(cfg, {}, {})
    other = dataclasses.replace(cfg, model=ModelConfig(latent=64, dropout=0.0), strategy="frozen",
                                train=TrainConfig(epochs=3, lr=0.01))
    # killed before its first epoch (out of memory, by the system): its settings alone, replaced
    assert run.state_for(other) == "new" and run.state_for(cfg) == "resume"
    assert run.started() is None  # nor does it hand its device, precision or masks down to the next try
    run.write_metrics([{"epoch": 1}])  # its epochs' figures alone (its checkpoint deleted): nothing to go on from
    assert run.started() is None and run.state_for(other) == "new"
    (run / run.CHECKPOINT).write_bytes(b"")  # once an epoch is done, it is a run to keep
    assert run.started() == cfg.train
    with pytest.raises(UserError) as e:
        run.state_for(other)
    message = str(e.value)
    assert message.startswith(f"{run.path} holds a run with other settings (model.latent: 32 there, "
                              "64 now; model.dropout: 0.2 there, 0.0 now; train.epochs: 2 there, 3 now); ")
    assert message.endswith("choose another --out, or delete it to start over")


def test_edited_settings_and_summaries_are_refused_saying_what_to_do(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    clf = RunConfig(model=ModelConfig(task="classifier", num_classes=3), train=TrainConfig(), strategy="frozen")
    folder.write_config(clf, {"classes": ["a", "b", "c"]}, {})
    folder.write_model(build_model(clf.model))
    good = {**dict.fromkeys(SUMMARY_FIGURES + CLASSIFIER_FIGURES, 0.5), "epochs": 1, "per_class_acc": [1.0, 0.5, 0.0],
            "confusion_matrix": [[2, 0, 0], [1, 1, 0], [0, 2, 0]],
            "most_confused": {"true": "c", "predicted": "b", "count": 2}}
    put_summary(folder, good)
    assert folder.summary() == good and LoadedRun(folder.path).classes == ("a", "b", "c")
    tail = (rf" \(it was edited or damaged\); put back a copy of it, or delete {re.escape(str(folder.path))} and run "
            "its command again$")  # a copy first: deleting the folder loses its training

    no_epochs = {k: v for k, v in good.items() if k != "epochs"}
    malformed = "its per-class accuracy or confusion matrix is missing or malformed"
    for summary, fault in [([], "it is not a JSON object"), (no_epochs, "'epochs' is missing"),
                           ({**good, "epochs": 0}, "'epochs' is not a positive number"),
                           ({**good, "val_loss": "0.1"}, "'val_loss' is not a number"),
                           ({**good, "test_acc": True}, "'test_acc' is not a number"),
                           ({**good, "confusion_matrix": [[2, 0], [1, 1]]}, malformed),
                           ({**good, "confusion_matrix": [[2, 0, 0], [1, 1], [0, 2, 0]]}, malformed),
                           ({**good, "per_class_acc": None}, malformed),
                           ({**good, "most_confused": {"true": "c"}}, malformed)]:
        put_summary(folder, summary)
        with pytest.raises(UserError, match=rf"^{re.escape(str(folder / 'summary.json'))} does not hold a "
                                            rf"finished run's figures: {re.escape(fault)}{tail}"):
            folder.summary()
    ae = RunFolder(tmp_path / "ae")
    ae.path.mkdir()
    ae.write_config(RunConfig(), {}, {})
    put_summary(ae, dict.fromkeys(SUMMARY_FIGURES, 1))  # an autoencoder has no accuracies
    assert ae.summary() == dict.fromkeys(SUMMARY_FIGURES, 1)

    one_epoch = {**good, "epochs": 1, "best_epoch": 1, "best_val_acc_epoch": 1,  # the row's figures below
                 **dict.fromkeys(("train_loss", "train_eval_loss", "val_loss", "best_val_loss"), 1)}
    put_summary(folder, one_epoch)  # a classifier's epochs have accuracies too
    row = dict.fromkeys(EPOCH_FIGURES, 1)
    (folder / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"metrics.jsonl holds a row without an epoch's figures \(epoch, train_loss, "
                                        r"train_eval_loss, val_loss, seconds, train_acc, train_eval_acc, val_acc\)"):
        folder.metrics()
    (folder / "metrics.jsonl").write_text(json.dumps(row | dict.fromkeys(CLASSIFIER_EPOCH_FIGURES, 0.5)) + "\n")
    assert len(folder.metrics()) == 1
    # a summary that says other figures than its epochs, or a test accuracy its confusion matrix does not give
    for edit, fault in [({"val_loss": 0.25}, "says val_loss 0.25 where metrics.jsonl says 1"),
                        ({"best_epoch": 2}, "says best_epoch 2 where metrics.jsonl says 1"),
                        ({"best_val_acc": 0.9}, "says best_val_acc 0.9 where metrics.jsonl says 0.5"),
                        ({"test_acc": 0.9}, "has a confusion matrix that does not give its test accuracy, "
                                             "as fashionae 0.3.0 recorded them under torchrun")]:
        put_summary(folder, {**one_epoch, **edit})
        with pytest.raises(UserError, match=rf"^{re.escape(str(folder / 'summary.json'))} {fault}{tail}"):
            folder.metrics()
    put_summary(folder, one_epoch)
    nan_row = row | dict.fromkeys(CLASSIFIER_EPOCH_FIGURES, 0.5) | {"val_loss": float("nan")}
    (folder / "metrics.jsonl").write_text(json.dumps(nan_row) + "\n")  # a run that diverged
    put_summary(folder, {**one_epoch, "val_loss": float("nan"), "best_val_loss": float("nan")})
    assert len(folder.metrics()) == 1  # NaN is what its epochs say too
    (folder / "metrics.jsonl").write_text(json.dumps(row | dict.fromkeys(CLASSIFIER_EPOCH_FIGURES, 0.5)) + "\n")
    put_summary(folder, one_epoch)
    (folder / "metrics.jsonl").write_text(json.dumps(row | dict.fromkeys(CLASSIFIER_EPOCH_FIGURES, 0.5) | {"epoch": 7})
                                          + "\n")
    with pytest.raises(UserError, match=r"metrics.jsonl does not number its epochs 1, 2, 3, … in order"):
        folder.metrics()

    put_summary(folder, good)
    config = json.loads((folder / "config.json").read_text())
    for raw in ([], "text", {**config, "model": None}, {**config, "train": []}, {**config, "data": None},
                {**config, "environment": 3}):
        (folder / "config.json").write_text(json.dumps(raw))
        with pytest.raises(UserError, match=rf"^{re.escape(str(folder / 'config.json'))} is not a run's "
                                            rf"settings as fashionae writes them{tail}"):
            folder.config()
    for classes in (None, "abc", ["a", 2, "c"]):
        (folder / "config.json").write_text(json.dumps({**config, "data": {"classes": classes}}))
        with pytest.raises(UserError, match=rf"config.json records class names that are not a list of names{tail}"):
            folder.classes()
    (folder / "config.json").write_text(json.dumps({**config, "data": {"classes": ["a", "b"]}}))
    with pytest.raises(UserError, match=rf"config.json names 2 classes but the model has 3{tail}"):
        LoadedRun(folder.path)
    (folder / "config.json").write_text(json.dumps({**config, "data": {"pictures": {"invert": "auto", "fill": 0.7}}}))
    assert folder.pictures() == {"invert": "auto", "fill": 0.7}
    (folder / "config.json").write_text(json.dumps({**config, "data": {"pictures": {"fill": 1}}}))  # JSON's int
    assert folder.pictures() == {"invert": "auto", "fill": 1.0} and type(folder.pictures()["fill"]) is float
    (folder / "config.json").write_text(json.dumps(config))  # a run of Fashion-MNIST, or from before
    assert folder.pictures() == {"invert": "auto", "fill": 1.0}
    assert folder.dataset_levels() == {"border": 0.0, "background": 0.0}
    for border in (0, 12.5, 255):
        (folder / "config.json").write_text(json.dumps({**config, "data": {"border": border, "background": 3}}))
        assert folder.dataset_levels() == {"border": border, "background": 3}
    # a run of its own dataset from before 0.3.29 records no levels: its pictures prepared as for a dark one, said
    assert not folder.levels_unknown()  # (Fashion-MNIST's: known)
    (folder / "config.json").write_text(json.dumps({**config, "dataset_sha256": "0" * 64, "data": {}}))
    assert folder.levels_unknown()
    (folder / "config.json").write_text(json.dumps({**config, "dataset_sha256": "0" * 64,
                                                    "data": {"border": 0, "background": 0}}))
    assert not folder.levels_unknown()
    for border, read in ((242.2, 242.2), (122.2, 122.2), (0, 255.0)):  # light: 0.3.29 recorded none (0): white
        (folder / "config.json").write_text(json.dumps({**config, "data": {"border": border, "background": 250}}))
        assert folder.dataset_levels() == {"border": read, "background": 250}
    for key in ("border", "background"):
        for level in (-1, 255.5, "12", None, True, float("nan")):
            (folder / "config.json").write_text(json.dumps({**config, "data": {key: level}}))
            with pytest.raises(UserError, match=rf"config.json records its images' {key} level as "
                                                rf"{re.escape(repr(level))}, not a number of 0 to 255{tail}"):
                folder.dataset_levels()
    for pictures, fault in ((3, "must be a table \\(a dict\\) of invert and fill"), ({"fill": 2}, "fill must be above 0"),
                            ({"invert": "maybe"}, "invert must be auto, yes or no"), ({"fil": 1}, "has an unknown key 'fil'")):
        (folder / "config.json").write_text(json.dumps({**config, "data": {"pictures": pictures}}))
        with pytest.raises(UserError, match=rf"config.json records how its dataset's pictures were prepared wrongly "
                                            rf"\(\[pictures\]: {fault}.*{tail}"):
            folder.pictures()


def test_a_model_that_does_not_match_its_settings_says_what_to_do(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_config(RunConfig(model=ModelConfig(latent=8), train=TrainConfig()), {}, {})
    folder.write_model(build_model(ModelConfig(latent=16)))  # another model put in its place
    with pytest.raises(UserError, match=r"model.safetensors does not match the settings in .*config.json: one of "
                                        r"them was edited or replaced; put back a copy of the one replaced, or delete .* and run its "
                                        r"command again$"):
        folder.load_model()


def test_a_finished_runs_model_replaced_by_another_of_the_same_shape_is_refused(own_run, tmp_path, capsys):
    """summary.json records the SHA-256 of the model it summarises: another run's model file,
    valid and of the same settings, is not this run's (eval would measure it as this run's)."""
    _, run = own_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert RunFolder(copy).summary()["model_sha256"] == RunFolder(copy).model_sha256()
    other = RunFolder(copy).load_model()
    with torch.no_grad():
        next(other.parameters()).add_(0.01)  # trained otherwise, same settings
    RunFolder(copy).write_model(other)
    with pytest.raises(UserError, match=r"model.safetensors is not the model this run trained \(its SHA-256 differs "
                                        r"from the one summary.json records\): it was replaced; put back a copy of it, or delete "
                                        r".* and run its command again$"):
        RunFolder(copy).load_model()
    assert main(["eval", str(copy)]) == 2
    assert "is not the model this run trained" in capsys.readouterr().err


def test_a_finished_runs_lost_model_file_says_one_thing_to_do(own_run, tmp_path, capsys):
    _, run = own_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / RunFolder.MODEL).unlink()
    assert main(["eval", str(copy)]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: {copy / RunFolder.MODEL} is missing; put back a copy of it, or "
                                       f"delete {copy} and run its command again\n")
    # something else by its name is said as what it is, not as missing
    for make, what in ((lambda m: m.mkdir(), "a folder"), (lambda m: m.symlink_to(tmp_path / "gone"), "a broken link"),
                       (lambda m: m.symlink_to("/dev/null"), "not a regular file")):
        make(copy / RunFolder.MODEL)
        assert main(["eval", str(copy)]) == 2
        assert capsys.readouterr().err.startswith(f"fashionae: error: {copy / RunFolder.MODEL} is {what}; remove it, "
                                                  "then put back a copy of it")
        (copy / RunFolder.MODEL).rmdir() if what == "a folder" else (copy / RunFolder.MODEL).unlink()


def test_a_finished_runs_files_edited_afterwards_are_refused(own_run, tmp_path):
    """summary.json seals the model, config.json's settings, metrics.jsonl's epochs and itself:
    a figure that no other file repeats (the test MSE, a middle epoch's) or a setting edited
    after the run finished is refused, not reported or kept as the run's."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(own_run[1], run.path)
    summary = run.summary()
    assert {"model_sha256", "config_sha256", "metrics_sha256", "summary_sha256"} <= set(summary)
    assert run.metrics() and run.load_model()
    tail = rf" \(it was edited or damaged\); put back a copy of it, or delete {re.escape(str(run.path))} and run its command again$"
    originals = {name: (run / name).read_text() for name in (run.SUMMARY, run.METRICS, run.CONFIG)}

    def edited(name, change):
        content = originals[name]
        (run / name).write_text("\n".join(json.dumps(change(json.loads(line))) for line in content.splitlines())
                                if name == run.METRICS else json.dumps(change(json.loads(content))))

    edited(run.SUMMARY, lambda s: s | {"test_loss": s["test_loss"] / 2})
    with pytest.raises(UserError, match=rf"summary.json does not match the digest it records{tail}"):
        run.summary()
    # ... and with its seals taken out, as an older version's: config.json says which wrote it
    edited(run.SUMMARY, lambda s: {k: v for k, v in s.items() if k in ("model_sha256",) or not k.endswith("_sha256")}
           | {"test_loss": s["test_loss"] / 2})
    with pytest.raises(UserError, match=rf"summary.json lacks the digests its fashionae version seals it with{tail}"):
        run.summary()
    (run / run.SUMMARY).write_text(originals[run.SUMMARY])
    edited(run.METRICS, lambda row: row | {"seconds": row["seconds"] + 1})  # in no figure of the summary
    with pytest.raises(UserError, match=rf"metrics.jsonl holds other epochs than those the run finished with "
                                        rf"\(their digest is in summary.json\){tail}"):
        run.metrics()
    (run / run.METRICS).write_text(originals[run.METRICS])
    edited(run.CONFIG, lambda c: c | {"train": c["train"] | {"lr": 0.002}})
    with pytest.raises(UserError, match=r"config.json holds other settings than those the run finished with"):
        run.summary()
    data, _ = own_run  # and the command that would keep it as finished says so, in one line
    assert main(["train-ae", "--dataset", str(data), "--latent", "4", "--epochs", "1", "--batch-size", "40",
                 "--lr", "0.002", "--out", str(run.path)]) == 2
    edited(run.CONFIG, lambda c: c | {"environment": {"threads": 64}})  # where it ran: not sealed
    assert run.summary() == summary


def test_a_finished_run_that_lost_its_summary_or_config_is_refused_not_trained_again(own_run, tmp_path, capsys):
    """summary.json deleted from a finished run (no checkpoint left to resume from): training it
    again would overwrite its model, so the command refuses and says to put it back; a folder
    without its config.json is named as one that lost it, not as no run at all."""
    data, finished = own_run
    run = RunFolder(tmp_path / "run")
    shutil.copytree(finished, run.path)
    model = (run / run.MODEL).read_bytes()
    (run / run.SUMMARY).rename(tmp_path / "kept.json")
    lost = (f"{run.path} holds a trained model but neither its summary.json nor a checkpoint to resume from: "
            f"summary.json was deleted or moved; put it back, or delete {run.path} and run its command again to train "
            "it again")
    with pytest.raises(UserError, match=f"^{re.escape(lost)}$"):
        run.require()
    assert main(["train-ae", "--dataset", str(data), "--latent", "4", "--epochs", "1", "--batch-size", "40",
                 "--out", str(run.path)]) == 2
    assert capsys.readouterr().err == f"fashionae: error: {lost}\n" and (run / run.MODEL).read_bytes() == model
    (tmp_path / "kept.json").rename(run / run.SUMMARY)
    (run / run.CONFIG).unlink()
    lost = (f"{run.path} holds a run's files but not its config.json: it was deleted or moved; put back a copy of "
            f"it, or delete {run.path} and run its command again")
    with pytest.raises(UserError, match=f"^{re.escape(lost)}$"):
        run.require()
    # train-ae --out on it says the same (it said "move its files away", which loses the run)
    assert main(["train-ae", "--dataset", str(data), "--latent", "4", "--epochs", "1", "--batch-size", "40",
                 "--out", str(run.path)]) == 2
    assert capsys.readouterr().err == f"fashionae: error: {lost}, or choose another --out\n"
    assert (run / run.MODEL).read_bytes() == model


def test_a_setting_the_model_does_not_use_is_no_difference(tmp_path):
    """A conv model's latent size, or where dropout goes when there is none: a study whose shared
    [model] table changes them asks for the same runs, which are kept."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_config(RunConfig(model=ModelConfig(arch="conv", dropout=0.0)), {}, {})
    same = RunConfig(model=ModelConfig(arch="conv", latent=64, dropout=0.0, dropout_after_pool=True))
    assert folder.differences(same) == []
    assert folder.differences(RunConfig(model=ModelConfig(arch="conv", dropout=0.1))) == [
        "model.dropout: 0.0 there, 0.1 now"]


def test_the_best_epoch_is_the_first_of_the_lowest_validation_loss_and_the_last_epochs_figures_the_last():
    from fashionae.runfolder import epoch_figures
    rows = [{"epoch": e, "train_loss": t, "train_eval_loss": t / 2, "val_loss": v, "train_acc": 0.1 * e,
             "train_eval_acc": 0.05 * e, "val_acc": a}
            for e, t, v, a in ((1, 0.9, 0.3, 0.5), (2, 0.8, 0.1, 0.9), (3, 0.7, 0.2, 0.7), (4, 0.6, 0.1, 0.9))]
    assert epoch_figures(rows) == {
        "epochs": 4, "best_epoch": 2, "best_val_loss": 0.1, "best_val_acc": 0.9, "best_val_acc_epoch": 2,
        "train_loss": 0.6, "train_eval_loss": 0.3, "val_loss": 0.1, "train_acc": 0.4, "train_eval_acc": 0.2,
        "val_acc": 0.9}


def test_a_summary_without_its_seals_is_refused_from_0_3_2_on(own_run, tmp_path):
    """Seals came with 0.3.2: a summary.json without them is accepted from a folder whose config.json
    records an earlier version only, 0.3.2 itself included among those that seal."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(own_run[1], run.path)
    unsealed(run.path)  # as 0.3.1 wrote it
    summary = run.summary()
    config = json.loads((run / run.CONFIG).read_text())
    for version, sealed in (("0.3.1", False), ("0.2.9", False), ("0.3.2", True), ("0.3.10", True), ("0.4", True)):
        config["environment"]["fashionae"] = version
        (run / run.CONFIG).write_text(json.dumps(config))
        if sealed:
            with pytest.raises(UserError, match="summary.json lacks the digests its fashionae version seals it with"):
                run.summary()
        else:
            assert run.summary() == summary, version


def test_the_data_record_of_a_finished_run_is_sealed_its_environment_not(own_run, tmp_path):
    """config.json's record of the data (class names, sizes, the split) is the run's as much as its
    settings: edited after the run finished, it is refused; where the run ran is not sealed."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(own_run[1], run.path)
    original = json.loads((run / run.CONFIG).read_text())
    for data in ({**original["data"], "classes": ["a", "b", "c", "d", "e"]},
                 {**original["data"], "val_size": original["data"]["val_size"] + 1}):
        (run / run.CONFIG).write_text(json.dumps({**original, "data": data}))
        with pytest.raises(UserError, match=r"config.json holds other settings than those the run finished with"):
            run.summary()
    (run / run.CONFIG).write_text(json.dumps({**original, "environment": {**original["environment"], "host": "x"}}))
    assert run.summary()


@pytest.mark.parametrize("file", [RunFolder.SUMMARY, RunFolder.METRICS, RunFolder.CHECKPOINT, RunFolder.MODEL])
def test_a_folder_holding_one_file_of_a_run_is_named_as_one_that_lost_its_config(tmp_path, file):
    """By require (eval, train-clf --encoder: a summary.json says it too), and by state_for
    (train-ae --out, a study's run: by the files no other tool names so, with another --out
    offered); a folder of another tool's metrics.jsonl is no run."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    (folder / file).write_text("{}")  # no config.json
    lost = (f"^{re.escape(str(folder.path))} holds a run's files but not its config.json: it was deleted or moved; "
            f"put back a copy of it, or delete {re.escape(str(folder.path))} and run its command again")
    foreign = f"^{re.escape(str(folder.path))} is (not empty and holds no|not a) fashionae run"
    with pytest.raises(UserError, match=lost + "$" if file != RunFolder.METRICS else foreign):
        folder.require()
    with pytest.raises(UserError, match=lost + ", or choose another --out$"
                       if file in (RunFolder.CHECKPOINT, RunFolder.MODEL) else foreign):
        folder.state_for(RunConfig())


def test_a_finished_run_asked_for_again_is_checked_before_it_is_kept(own_run, tmp_path):
    """``state_for`` the same settings: 'complete' for a finished run as written, refused where its
    epochs or its model were replaced since (the run would be kept and reported as it is)."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(own_run[1], run.path)
    cfg = run.config()
    assert run.state_for(cfg) == "complete"
    metrics = (run / run.METRICS).read_text()
    rows = [json.loads(line) for line in metrics.splitlines()]
    (run / run.METRICS).write_text("".join(json.dumps(r | {"seconds": r["seconds"] + 1}) + "\n" for r in rows))
    with pytest.raises(UserError, match="metrics.jsonl holds other epochs than those the run finished with"):
        run.state_for(cfg)
    (run / run.METRICS).write_text(metrics)
    other = run.load_model()
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    run.write_model(other)
    with pytest.raises(UserError, match="model.safetensors is not the model this run trained"):
        run.state_for(cfg)


def test_each_resume_keeps_every_session_before_it(tmp_path):
    folder = RunFolder(tmp_path / "run")
    cfg = RunConfig(model=ModelConfig(), train=TrainConfig())
    folder.write_config(cfg, {}, {"threads": 1})
    folder.write_config(cfg, {}, {"threads": 2}, keep_sessions=True)
    folder.write_config(cfg, {}, {"threads": 3}, keep_sessions=True)
    assert folder.sessions() == [{"threads": 1}, {"threads": 2}, {"threads": 3}]


def test_the_model_file_is_replaced_whole_never_rewritten_in_place(tmp_path):
    """A reader of the old model.safetensors (another process's hard link, a copy being made) keeps
    the old file whole: the new one takes its name only once it is written."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_model(build_model(ModelConfig(latent=8)))
    before = (folder / folder.MODEL).read_bytes()
    (tmp_path / "reader").hardlink_to(folder / folder.MODEL)
    folder.write_model(build_model(ModelConfig(latent=16)))
    assert (tmp_path / "reader").read_bytes() == before != (folder / folder.MODEL).read_bytes()


def classifier_folder(tmp_path) -> tuple[RunFolder, dict]:
    """A finished three-class classifier of one epoch, its summary unsealed: (folder, summary)."""
    folder = RunFolder(tmp_path / "clf")
    folder.path.mkdir()
    folder.write_config(RunConfig(model=ModelConfig(task="classifier", num_classes=3), train=TrainConfig(),
                                  strategy="frozen"), {"classes": ["a", "b", "c"]}, {})
    row = dict.fromkeys(EPOCH_FIGURES + CLASSIFIER_EPOCH_FIGURES, 0.5) | {"epoch": 1}
    (folder / folder.METRICS).write_text(json.dumps(row) + "\n")
    summary = {**dict.fromkeys(SUMMARY_FIGURES + CLASSIFIER_FIGURES, 0.5), "epochs": 1, "best_epoch": 1,
               "best_val_acc_epoch": 1, "per_class_acc": [1.0, 0.5, 0.0],
               "confusion_matrix": [[2, 0, 0], [1, 1, 0], [0, 2, 0]],  # 3 of 6 right: test_acc 0.5
               "most_confused": {"true": "c", "predicted": "b", "count": 2}}
    put_summary(folder, summary)
    assert len(folder.metrics()) == 1
    return folder, summary


def test_a_classifier_summary_whose_per_class_figures_or_test_accuracy_do_not_fit_is_refused(tmp_path):
    folder, good = classifier_folder(tmp_path)
    put_summary(folder, {**good, "per_class_acc": [1.0, 0.5]})  # two classes' accuracy for a 3 x 3 matrix
    with pytest.raises(UserError, match="its per-class accuracy or confusion matrix is missing or malformed"):
        folder.summary()
    put_summary(folder, {**good, "test_acc": 0.505})  # the matrix gives 0.5: a point in 200 off
    with pytest.raises(UserError, match="has a confusion matrix that does not give its test accuracy"):
        folder.metrics()


def test_a_run_killed_after_writing_its_model_and_before_its_summary_resumes(tmp_path):
    """The model is written before summary.json, and the checkpoint deleted after it: a run killed
    between the two holds a model and its checkpoint, and is resumed, not refused."""
    cfg = RunConfig(model=ModelConfig(latent=8), train=TrainConfig(epochs=2))
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_config(cfg, {}, {})
    folder.write_metrics([dict.fromkeys(EPOCH_FIGURES, 0.5) | {"epoch": 1}])
    folder.write_model(build_model(cfg.model))
    (folder / folder.CHECKPOINT).write_bytes(b"state")
    folder.refuse_lost_summary()
    assert folder.state_for(cfg) == "resume"
    with pytest.raises(UserError, match=r"has not finished training \(no summary.json\); run its command again"):
        folder.require()


def test_a_folder_holding_a_finished_runs_summary_is_a_run_to_keep(tmp_path):
    """Its settings and summary.json alone (its epochs' file lost): not a run stopped before its first
    epoch, so other settings are refused rather than trained over it."""
    cfg = RunConfig(model=ModelConfig(latent=32), train=TrainConfig(epochs=2))
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_config(cfg, {}, {})
    put_summary(folder, dict.fromkeys(SUMMARY_FIGURES, 1))
    assert folder.holds_training()
    with pytest.raises(UserError, match="holds a run with other settings"):
        folder.state_for(dataclasses.replace(cfg, model=ModelConfig(latent=64)))


def test_an_environment_entry_not_of_its_kind_is_refused_as_damaged(tmp_path):
    """config.json's environment is not sealed, and the report sorts and lists its entries: one
    edited to another kind (a table for the host) is said in one line, not a crash of the report."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    env = {"host": "vm", "threads": 2, "isa": ["AVX2"], "git_commit": None, "later_entry": {"any": 1}}
    folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, env)
    assert folder.environment() == env and len(folder.sessions()) == 1
    for key, value, said in (("host", {"a": 1}, '{"a": 1}, not text'), ("threads", True, "true, not a whole number"),
                             ("earlier_sessions", [{"threads": "2"}], '"2", not a whole number')):
        folder.write_config(RunConfig(model=ModelConfig(), train=TrainConfig()), {}, {**env, key: value})
        with pytest.raises(UserError, match=rf"config.json records its environment's \w+ as {re.escape(said)} "
                                            r"\(it was edited or damaged\); give it back .* \(what the report shows of "
                                            r"where the run was made\), or delete .* and run its command again$"):
            folder.sessions()


def test_the_encoders_name_is_its_run_folders_name_wherever_its_study_is():
    """A classifier's encoder is named by its run folder's name, not the path it was found at."""
    assert RunConfig(encoder_run="studies/old/place/runs/ae-linear-64-s0").encoder_name == "ae-linear-64-s0"
    assert RunConfig().encoder_name == ""


def test_a_classifiers_encoder_trained_again_is_said_in_words_with_its_threads_where_they_differ(tmp_path, monkeypatch):
    """Its digest would say nothing: an earlier encoder; and where the new one ran on other threads
    than the classifier (an encoder trained again), how it may come out as before."""
    cfg = RunConfig(model=ModelConfig(task="classifier"), strategy="frozen", encoder_run=str(tmp_path / "ae"),
                    encoder_sha256="0" * 64)
    threads = {"clf": 2, "ae": 1}
    monkeypatch.setattr(RunFolder, "environment", lambda self: {"threads": threads[self.path.name]})
    clf = RunFolder(tmp_path / "clf")
    assert clf.in_words("train.lr: 0.001 there, 0.002 now", cfg) == "train.lr: 0.001 there, 0.002 now"
    said = clf.in_words("encoder_sha256: 'ab' there, 'cd' now", cfg)
    assert said == ("trained on an earlier ae (the new one ran on 1 thread, the classifier on 2: deleted and trained "
                    "again with OMP_NUM_THREADS=2, it may come out as before)")
    threads["ae"] = 2
    assert clf.in_words("encoder_sha256: 'ab' there, 'cd' now", cfg) == "trained on an earlier ae"

    def lost(self):
        raise UserError("no config")
    monkeypatch.setattr(RunFolder, "environment", lambda self: {"threads": 2} if self.path.name == "clf" else lost(self))
    assert clf.in_words("encoder_sha256: 'ab' there, 'cd' now", cfg) == "trained on an earlier ae"
