"""TensorBoard logging: the events hold metrics.jsonl's figures, once per epoch, resumed or not."""

import json
import shutil
import sys
from collections import Counter

import numpy as np
import pytest

from fashionae.cli import main
from fashionae.data import load_fashion_mnist
from fashionae.models import ModelConfig
from fashionae.runs import RunConfig, execute
from fashionae.tracking import tag
from fashionae.training import TrainConfig
from helpers import PAPER, QUIET, extra_or_skip, write_dataset

extra_or_skip("tensorboard", "tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402


@pytest.fixture(scope="module")
def small_data_dir(tmp_path_factory):
    """A small synthetic Fashion-MNIST-like folder (the runs here use 100 of its images)."""
    return write_dataset(tmp_path_factory.mktemp("data"), n_train=600, n_test=100)


@pytest.fixture(scope="module")
def small(small_data_dir):
    return load_fashion_mnist(small_data_dir, verify=False)


def ae(epochs=2, tensorboard=True):
    return RunConfig(model=ModelConfig(latent=16), train=TrainConfig(
        epochs=epochs, batch_size=50, train_subset=100, eval_subset=50, train_eval_subset=50,
        device="cpu", tensorboard=tensorboard))


def events(run) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def raw_steps(run) -> Counter:
    """(tag, step) -> how many events the files hold, before TensorBoard's purges."""
    counts = Counter()
    for path in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                counts[value.tag, event.step] += 1
    return counts


def session_logs(run) -> list[tuple[str, int, int]]:
    """(events file, step, status) of every session log the files hold: a writer's start, with
    what it purges."""
    return [(path.name, event.step, event.session_log.status)
            for path in sorted((run / "tensorboard").glob("events.out.tfevents.*"))
            for event in EventFileLoader(str(path)).Load() if event.HasField("session_log")]


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_events_hold(run, rows):
    acc = events(run)
    for key in rows[0]:
        if key == "epoch":
            continue
        logged = acc.Scalars(tag(key))
        assert [e.step for e in logged] == [r["epoch"] for r in rows], key
        assert [np.float32(e.value) for e in logged] == [np.float32(r[key]) for r in rows], key
    return acc


def hparams(acc) -> HParamsPluginData:
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return HParamsPluginData.FromString(content).session_start_info


def test_autoencoder_events_hold_metrics_images_and_hparams(small, tmp_path):
    run = tmp_path / "ae"
    summary = execute(ae(epochs=2), run, data=small, **QUIET)
    rows = metrics(run)
    acc = assert_events_hold(run, rows)
    assert {"loss/train", "loss/train_eval", "loss/val", "epoch/lr", "epoch/seconds",
            "epoch/train_images_per_second"} <= set(acc.Tags()["scalars"])  # grouped: loss/, accuracy/, epoch/
    assert "custom_scalars__config__" in acc.Tags()["tensors"]  # one chart of train and validation loss
    grids = acc.Images("reconstructions")
    assert [g.step for g in grids] == [1, 2]  # the first epoch and the last
    assert (grids[0].height, grids[0].width) == (2 * 28, 8 * 28)
    for key in ("test_loss", "best_val_loss", "val_loss"):
        assert np.float32(acc.Scalars(f"final/{key}")[-1].value) == np.float32(summary[key])
    start = hparams(acc)
    assert start.hparams["model.latent"].number_value == 16
    assert start.hparams["model.encoder_type"].string_value == "paper"
    assert start.hparams["train.epochs"].number_value == 2
    # only the settings this run uses: no classifier's head or augmentation
    assert "model.paper_head" not in start.hparams and "train.augment" not in start.hparams
    # no experiment summary: TensorBoard would take one run's as the study's, hiding the others' settings
    assert set(acc.PluginTagToContent("hparams")) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}


def test_reconstruction_grids_come_every_fifth_epoch_the_first_and_the_last(small, tmp_path):
    """Over 6 epochs the grids are at epochs 1, 5 and 6 (tracking.IMAGE_EVERY; the first and the
    last always): a long run's image tab shows its progress without one grid an epoch."""
    run = tmp_path / "ae6"
    execute(ae(epochs=6), run, data=small, **QUIET)
    assert [g.step for g in events(run).Images("reconstructions")] == [1, 5, 6]


def test_classifier_cli_logs_accuracies(small_data_dir, tmp_path, capsys):
    run = tmp_path / "clf"
    assert main(["train-clf", "--strategy", "scratch", "--latent", "16", "--epochs", "2",
                 "--batch-size", "50", "--train-subset", "100", "--eval-subset", "50",
                 "--data-dir", str(small_data_dir), "--no-verify", "--tensorboard", "--out", str(run)]) == 0
    acc = assert_events_hold(run, metrics(run))
    assert {"accuracy/train", "accuracy/train_eval", "accuracy/val"} <= set(acc.Tags()["scalars"])
    assert "reconstructions" not in acc.Tags()["images"]
    summary = json.loads((run / "summary.json").read_text())
    assert np.float32(acc.Scalars("final/test_acc")[-1].value) == np.float32(summary["test_acc"])
    assert hparams(acc).hparams["strategy"].string_value == "scratch"
    assert "model.decoder" not in hparams(acc).hparams and "train.augment" in hparams(acc).hparams


class Stop(Exception):
    pass


def stop_at(epoch):
    def on_epoch(row):
        if row["epoch"] == epoch:
            raise Stop
        return ""
    return on_epoch


@pytest.mark.parametrize("stop, restart", [(1, False), (2, False), (2, True), (3, False)])
def test_a_resumed_run_logs_every_epoch_once(small, tmp_path, stop, restart):
    """Stopped at ``stop`` (its metrics and checkpoint written, not yet its events), then run
    again; with ``restart`` the checkpoint is lost, so training starts over at epoch 1 and the
    events of the first attempt must be purged."""
    run = tmp_path / "ae"
    with pytest.raises(Stop):
        execute(ae(epochs=3), run, data=small, on_epoch=stop_at(stop), **QUIET)
    if restart:
        (run / "checkpoint.safetensors").unlink()
    if stop == 1:  # killed as its writer opened: an events file of its version record alone, no layout
        from torch.utils.tensorboard import SummaryWriter
        shutil.rmtree(run / "tensorboard", ignore_errors=True)
        SummaryWriter(str(run / "tensorboard")).close()
    execute(ae(epochs=3), run, data=small, **QUIET)
    rows = metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    acc = assert_events_hold(run, rows)  # one value per epoch, as TensorBoard shows them
    # the grid of epoch 1 is lost when the run stopped before writing it: that model is gone;
    # the last epoch's is drawn by the final model (stopped after the last epoch: no epoch is left to train)
    assert [g.step for g in acc.Images("reconstructions")] == ([3] if stop == 1 else [1, 3])
    assert [e.step for e in acc.Scalars("final/val_loss")] == [3]
    counts = raw_steps(run)
    assert counts["custom_scalars__config__", 0] == 1  # the charts' layout, once
    if not restart:  # and nothing written twice in the first place
        assert {counts["loss/val", e] for e in (1, 2, 3)} == {1}


def test_a_writer_opened_within_the_second_of_the_last_events_file_waits_for_the_next(tmp_path):
    """TensorBoard reads events files in the order of their names (the second, then the process
    and a count that sort as text: ".10" before ".9"): a file made in the same second as the last
    could be read before it, and its epochs purged as out of order. So the next second is waited for."""
    import time
    from fashionae.tracking import _after_the_last_events_file
    (tmp_path / "events.out.tfevents.1000000000.vm.1.9").write_bytes(b"")  # long ago: no wait
    start = time.monotonic()
    _after_the_last_events_file(tmp_path)
    assert time.monotonic() - start < 0.5
    now = int(time.time())
    (tmp_path / f"events.out.tfevents.{now}.vm.1.9").write_bytes(b"")
    _after_the_last_events_file(tmp_path)
    assert int(time.time()) > now
    (tmp_path / f"events.out.tfevents.{now + 60}.vm.1.9").write_bytes(b"")  # another machine's clock: not waited for
    start = time.monotonic()
    _after_the_last_events_file(tmp_path)
    assert time.monotonic() - start < 0.5


def test_a_run_stopped_after_its_final_events_writes_them_once(small, tmp_path, monkeypatch):
    """Stopped between the final figures' events and summary.json, then run again: the final
    figures and hparams are not written a second time."""
    from fashionae.runfolder import RunFolder
    run = tmp_path / "ae"
    with monkeypatch.context() as m:
        m.setattr(RunFolder, "write_summary", lambda self, summary: (_ for _ in ()).throw(Stop()))
        with pytest.raises(Stop):
            execute(ae(), run, data=small, **QUIET)
    execute(ae(), run, data=small, **QUIET)
    counts = raw_steps(run)
    assert counts["final/val_loss", 2] == 1 and counts["_hparams_/session_start_info", 0] == 1
    assert_events_hold(run, metrics(run))
    assert [g.step for g in events(run).Images("reconstructions")] == [1, 2]


def test_a_run_trained_on_logs_its_new_epochs_and_final_figures(small, tmp_path):
    """--extend from 1 epoch to 3: the events hold each epoch once, the final figures of both the
    shorter run and the longer one (at their last epochs), the longer one's last grid, and the
    longer one's settings alone as hparams (the HParams tab showed the shorter one's epochs
    beside the longer one's figures)."""
    from dataclasses import replace
    run = tmp_path / "ae"
    kept = ae(epochs=1)
    execute(replace(kept, train=replace(kept.train, keep_state=True)), run, data=small, **QUIET)
    assert hparams(events(run)).hparams["train.epochs"].number_value == 1
    starts = session_logs(run)  # where each writer started, hiding what an earlier attempt wrote from there
    (run / "tensorboard" / ".events.out.tfevents.1.vm.1.0.abc.tmp").write_bytes(b"cut short")  # a killed rewrite's
    execute(ae(epochs=3), run, data=small, extend=True, **QUIET)
    assert session_logs(run)[:len(starts)] == starts and len(session_logs(run)) == len(starts) + 1
    assert not list((run / "tensorboard").glob(".*.tmp"))
    acc = assert_events_hold(run, metrics(run))
    final = json.loads((run / "summary.json").read_text())["val_loss"]
    assert [(e.step, e.value) for e in acc.Scalars("final/val_loss")][1:] == [(3, pytest.approx(final))]
    assert [e.step for e in acc.Scalars("final/val_loss")] == [1, 3]
    assert [g.step for g in acc.Images("reconstructions")] == [1, 3]
    counts = raw_steps(run)
    assert [n for (t, _), n in counts.items() if t.startswith("_hparams_/")] == [1, 1]  # a start and an end, once
    assert hparams(acc).hparams["train.epochs"].number_value == 3
    assert counts[tag("val_loss"), 1] == 1 and ("custom_scalars__config__", 0) in counts  # the rest kept as it was


def test_a_run_trained_on_and_stopped_before_its_final_figures_gets_them_later(small, tmp_path, monkeypatch):
    """Trained on from 1 epoch to 3 and stopped once its epochs' events are written, before its
    final figures; finished without --tensorboard, then run with it: the events then hold the
    longer run's final figures too, not only the shorter one's."""
    from dataclasses import replace
    from fashionae.tracking import TensorBoardLogger
    run = tmp_path / "ae"
    kept = ae(epochs=1)
    execute(replace(kept, train=replace(kept.train, keep_state=True)), run, data=small, **QUIET)
    with monkeypatch.context() as m:
        m.setattr(TensorBoardLogger, "close", lambda self, *args: (_ for _ in ()).throw(Stop()))
        with pytest.raises(Stop):
            execute(ae(epochs=3), run, data=small, extend=True, **QUIET)
    execute(ae(epochs=3, tensorboard=False), run, data=small, **QUIET)
    said = []
    execute(ae(epochs=3), run, data=small, log=said.append)
    assert said == [f"{run}: already finished, kept as is; its TensorBoard events written from metrics.jsonl"]
    acc = assert_events_hold(run, metrics(run))
    final = json.loads((run / "summary.json").read_text())["val_loss"]
    assert [(e.step, e.value) for e in acc.Scalars("final/val_loss")][1:] == [(3, pytest.approx(final))]


def test_turning_tensorboard_on_later_is_no_conflict(small, tmp_path):
    stopped = tmp_path / "stopped"
    with pytest.raises(Stop):
        execute(ae(tensorboard=False), stopped, data=small, on_epoch=stop_at(1), **QUIET)
    execute(ae(tensorboard=True), stopped, data=small, **QUIET)
    assert_events_hold(stopped, metrics(stopped))  # epoch 1 too, from the history


def test_a_run_finished_without_tensorboard_gets_its_events_from_its_metrics(small, tmp_path):
    done = tmp_path / "done"
    summary = execute(ae(tensorboard=False), done, data=small, **QUIET)
    model = (done / "model.safetensors").read_bytes()
    assert not (done / "tensorboard").exists()
    assert execute(ae(tensorboard=True), done, data=small, **QUIET) == summary  # kept as is...
    assert (done / "model.safetensors").read_bytes() == model
    acc = assert_events_hold(done, metrics(done))  # ...and shown: every epoch, the final figures, one grid
    assert acc.Scalars("final/val_loss")[0].value == pytest.approx(summary["val_loss"])
    assert [g.step for g in acc.Images("reconstructions")] == [2]
    before = raw_steps(done)
    execute(ae(tensorboard=True), done, data=small, **QUIET)
    assert raw_steps(done) == before  # written once


def test_events_of_flat_tags_are_written_again_grouped(small, tmp_path):
    """A finished run whose events fashionae 0.3.0 wrote (tags as metrics.jsonl's keys, and an
    hparams experiment of its own) gets them written again when asked for them."""
    from torch.utils.tensorboard import SummaryWriter
    done = tmp_path / "done"
    summary = execute(ae(tensorboard=False), done, data=small, **QUIET)
    old = SummaryWriter(str(done / "tensorboard"))
    for row in metrics(done):
        old.add_scalar("val_loss", row["val_loss"], row["epoch"])
    old.add_scalar("final/val_loss", summary["val_loss"], summary["epochs"])
    old.close()
    execute(ae(tensorboard=True), done, data=small, **QUIET)
    acc = assert_events_hold(done, metrics(done))
    assert "val_loss" not in acc.Tags()["scalars"] and "loss/val" in acc.Tags()["scalars"]


def test_events_of_another_attempt_are_written_again_from_the_metrics(small, tmp_path):
    """A finished run whose events hold epochs its metrics.jsonl does not (an earlier attempt
    that ran further, then was started over without --tensorboard) gets them written anew."""
    from torch.utils.tensorboard import SummaryWriter
    done = tmp_path / "done"
    execute(ae(tensorboard=False), done, data=small, **QUIET)
    other = SummaryWriter(str(done / "tensorboard"))
    for epoch in (1, 2, 3):
        other.add_scalar(tag("val_loss"), 9.0, epoch)
    other.close()
    execute(ae(tensorboard=True), done, data=small, **QUIET)
    acc = assert_events_hold(done, metrics(done))
    assert [e.step for e in acc.Scalars("final/val_loss")] == [2]


def test_a_study_run_again_with_tensorboard_logs_its_finished_runs(small_data_dir, tmp_path, capsys):
    study = tmp_path / "tiny.toml"
    study.write_text('name = "tiny"\nseeds = 2\n[train]\nepochs = 2\nbatch_size = 50\ntrain_subset = 100\n'
                     'eval_subset = 50\n[[autoencoders]]\nname = "a"\nlatent = 16\n[baselines]\nenabled = false\n')
    args = ["study", str(study), "--data-dir", str(small_data_dir), "--no-verify", "--out", str(tmp_path / "s")]
    assert main(args) == 0
    runs = sorted((tmp_path / "s" / "runs").iterdir())
    assert len(runs) == 2 and not any((run / "tensorboard").exists() for run in runs)
    capsys.readouterr()
    assert main([*args, "--tensorboard"]) == 0
    assert "tensorboard: the events of 2 finished runs written from metrics.jsonl" in capsys.readouterr().err
    for run in runs:
        assert_events_hold(run, metrics(run))
    assert main([*args, "--tensorboard"]) == 0
    assert "tensorboard:" not in capsys.readouterr().err  # written once


def test_a_finished_run_asked_for_its_events_without_the_extra_names_it(small, tmp_path, monkeypatch):
    from fashionae.errors import UserError
    execute(ae(tensorboard=False), tmp_path / "done", data=small, **QUIET)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(UserError, match=r"^--tensorboard needs tensorboard, which is not installed: "
                                        r"pip install 'fashionae\[tensorboard\]'$"):
        execute(ae(tensorboard=True), tmp_path / "done", data=small, **QUIET)


def test_without_the_extra_one_line_names_it(small_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    assert main(["train-ae", "--latent", "16", "--epochs", "1", "--train-subset", "100",
                 "--data-dir", str(small_data_dir),
                 "--no-verify", "--tensorboard", "--out", str(tmp_path / "ae")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'fashionae[tensorboard]'" in err
    assert not (tmp_path / "ae").exists()  # said before the folder is made: the same command works once installed


@pytest.mark.parametrize("module, option, extra", [("tensorboard", "--tensorboard", "tensorboard"),
                                                   ("ray", "--executor=ray", "ray")])
def test_a_study_names_a_missing_extra_before_it_writes_anything(small_data_dir, tmp_path, capsys, monkeypatch,
                                                                 module, option, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    paper = PAPER
    assert main(["study", str(paper), "--profile", "smoke", option, "--data-dir", str(small_data_dir), "--no-verify",
                 "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'fashionae[{extra}]'" in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("damage", ["a file", "a dangling link", "an unreadable event file", "a read-only folder"])
def test_a_tensorboard_path_that_cannot_hold_events_is_one_line(small, small_data_dir, tmp_path, capsys, damage,
                                                                monkeypatch):
    from helpers import cli
    run = tmp_path / "done"
    execute(ae(tensorboard=False), run, data=small, **QUIET)
    events = run / "tensorboard"
    if damage == "a file":
        events.write_text("junk")
    elif damage == "a dangling link":
        events.symlink_to(tmp_path / "gone")
    elif damage == "an unreadable event file":
        (events / "events.out.tfevents.1.x").mkdir(parents=True)  # a folder where a file is read
    else:  # (root writes in a folder of any mode: a read-only file system, as a bind mount makes one)
        import errno
        import tempfile
        from pathlib import Path
        events.mkdir()
        made = tempfile.TemporaryFile

        def read_only(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == events:
                raise OSError(errno.EROFS, "Read-only file system")
            return made(*args, dir=dir, **kwargs)
        monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    summary = (run / "summary.json").read_text()
    code, _, err = cli(capsys, "train-ae", "--latent", 16, "--epochs", 2, "--batch-size", 50, "--train-subset", 100,
                       "--eval-subset", 50, "--train-eval-subset", 50, "--device", "cpu", "--tensorboard",
                       "--data-dir", small_data_dir, "--no-verify", "--out", run)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"fashionae: error: {events} cannot hold this run's TensorBoard events (")
    assert (damage != "a file") or "(not a folder)" in err
    assert (damage != "a read-only folder") or "(cannot write in it: Read-only file system); make it writable, or" in err
    assert err.endswith(("); delete it: fashionae writes them again from metrics.jsonl\n" if damage != "a read-only folder"
                         else "); make it writable, or delete it: fashionae writes them again from metrics.jsonl\n"))
    assert (run / "summary.json").read_text() == summary


def test_the_backfilled_grid_is_the_one_the_run_would_have_logged(small, tmp_path):
    """The same run (validated on the test set here) trained with --tensorboard, and trained
    without it and then asked for its events: their last reconstruction grids are the same image."""
    from dataclasses import replace
    cfg = ae(epochs=2)
    cfg = replace(cfg, train=replace(cfg.train, val="test"))
    execute(cfg, tmp_path / "live", data=small, **QUIET)
    execute(replace(cfg, train=replace(cfg.train, tensorboard=False)), tmp_path / "later", data=small, **QUIET)
    execute(cfg, tmp_path / "later", data=small, **QUIET)
    live, later = (events(tmp_path / name).Images("reconstructions")[-1] for name in ("live", "later"))
    assert (live.step, live.encoded_image_string) == (later.step, later.encoded_image_string)


def test_each_epochs_events_are_on_disk_before_the_next_epoch_starts(small, tmp_path, monkeypatch):
    """While epoch e + 1 runs, the event files already hold epoch e's figures and grid: a run
    killed mid-epoch (or watched live in TensorBoard) loses no epoch it finished. The writer
    writes from a background thread, on its own only every two minutes or so: each epoch's
    events are flushed before the next epoch starts."""
    from torch.utils.tensorboard import SummaryWriter
    run, flushes, seen = tmp_path / "ae", [], {}
    flush = SummaryWriter.flush
    monkeypatch.setattr(SummaryWriter, "flush", lambda self: (flushes.append(1), flush(self))[1])

    def on_epoch(row):  # the next epoch's, before its events
        seen[row["epoch"]] = len(flushes), raw_steps(run) if row["epoch"] > 1 else None
        return ""
    execute(ae(epochs=3), run, data=small, on_epoch=on_epoch, **QUIET)
    assert [seen[e][0] for e in (1, 2, 3)] == [0, 1, 2]  # flushed once an epoch
    assert seen[2][1]["loss/val", 1] == 1 and seen[2][1]["reconstructions", 1] == 1
    assert seen[3][1]["loss/val", 2] == 1


def test_the_grids_top_row_is_the_first_validation_images(small, tmp_path):
    """The grid shows the fixed validation images 0..7 above their reconstructions: every grid of
    every run shows the same images, so that epochs and runs compare at a glance."""
    import io

    from PIL import Image

    from fashionae.data import make_splits
    from fashionae.tracking import IMAGES
    run = tmp_path / "ae"
    execute(ae(epochs=1), run, data=small, **QUIET)
    grid = events(run).Images("reconstructions")[0]
    pixels = np.asarray(Image.open(io.BytesIO(grid.encoded_image_string)).convert("L"), dtype=np.int16)
    val = make_splits(small, "holdout", train_subset=100, eval_subset=50).val_x[:IMAGES].numpy()
    top = np.concatenate(list(val), axis=1).astype(np.int16)  # [28, 8 * 28]
    assert pixels.shape == (2 * 28, IMAGES * 28)
    assert np.abs(pixels[:28] - top).max() <= 1  # (the PNG's bytes truncate x * 255)


def test_hparams_hold_no_digests(small, tmp_path):
    """A run's hparams are settings to compare runs by; a dataset's or an encoder's SHA-256 is a
    64-character string that differs with every file, and would only clutter TensorBoard's table."""
    from dataclasses import replace

    import torch

    from fashionae.models import build_model
    from fashionae.runfolder import RunFolder
    from fashionae.tracking import TensorBoardLogger
    cfg = replace(ae(epochs=1), dataset="mine", dataset_sha256="ab" * 32)
    rows = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4}]
    logger = TensorBoardLogger(RunFolder(tmp_path), cfg, build_model(cfg.model),
                               torch.zeros(8, 28, 28, dtype=torch.uint8))
    logger(rows)
    logger.close({"epochs": 1, "val_loss": 0.4, "test_loss": 0.45}, rows)
    held = hparams(events(tmp_path)).hparams
    assert held["dataset"].string_value == "mine"
    assert not [k for k in held if k.endswith("sha256")]


def test_a_grid_the_resumed_writer_hides_is_drawn_again(small, tmp_path):
    """Events that hold the last epoch's grid but not its figures (an earlier attempt's): the
    writer resumes at that epoch and hides what the events hold from there, that grid too, so it
    is drawn again by the final model, not taken as held and lost."""
    from torch.utils.tensorboard import SummaryWriter
    done = tmp_path / "done"
    execute(ae(tensorboard=False), done, data=small, **QUIET)
    earlier = SummaryWriter(str(done / "tensorboard"))
    earlier.add_scalar(tag("val_loss"), metrics(done)[0]["val_loss"], 1)
    for epoch in (1, 2):
        earlier.add_image("reconstructions", np.zeros((1, 56, 224), dtype=np.float32), epoch)
    earlier.close()
    execute(ae(tensorboard=True), done, data=small, **QUIET)
    assert [g.step for g in events(done).Images("reconstructions")] == [1, 2]


def test_a_finished_run_whose_events_lack_only_the_last_grid_gets_it(small, tmp_path):
    """Events that hold every epoch and the final figures but no grid of the last epoch are not
    complete: asked for them again, the run gets its last grid, drawn by its final model."""
    from torch.utils.tensorboard import SummaryWriter
    done = tmp_path / "done"
    summary = execute(ae(tensorboard=False), done, data=small, **QUIET)
    partial = SummaryWriter(str(done / "tensorboard"))
    for row in metrics(done):
        partial.add_scalar(tag("val_loss"), row["val_loss"], row["epoch"])
    partial.add_scalar("final/val_loss", summary["val_loss"], summary["epochs"])
    partial.close()
    execute(ae(tensorboard=True), done, data=small, **QUIET)
    assert [g.step for g in events(done).Images("reconstructions")] == [2]
    assert raw_steps(done)["final/val_loss", 2] == 1  # the final figures not written twice


def test_drawing_a_grid_leaves_the_model_in_the_mode_it_was_in(tmp_path):
    """A grid is drawn in eval mode between two epochs of training: the model goes back to training
    mode after, or every epoch after the first grid would train without its dropout."""
    logger = logger_on(tmp_path)
    for training in (True, False):
        logger.model.train(training)
        assert logger.reconstructions().shape == (1, 56, 224)
        assert logger.model.training == training


def logger_on(folder, epochs=1):
    """A TensorBoardLogger of an untrained autoencoder writing into ``folder``."""
    import torch

    from fashionae.models import build_model
    from fashionae.runfolder import RunFolder
    from fashionae.tracking import TensorBoardLogger
    cfg = ae(epochs=epochs)
    return TensorBoardLogger(RunFolder(folder), cfg, build_model(cfg.model), torch.zeros(8, 28, 28, dtype=torch.uint8))


def test_the_epoch_number_is_the_step_not_a_chart_of_its_own(tmp_path):
    """A row's epoch is each scalar's step: the events hold a chart for every other figure, and no
    epoch/epoch chart, a straight line that says nothing."""
    rows = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "seconds": 2.0}]
    logger = logger_on(tmp_path)
    logger(rows)
    logger.close({"epochs": 1, "val_loss": 0.4}, rows)
    assert set(events(tmp_path).Tags()["scalars"]) == {"loss/train", "loss/val", "epoch/seconds", "final/val_loss"}


def test_a_finished_run_started_over_writes_its_final_figures_again(tmp_path):
    """Events of a finished attempt (final figures at its last epoch), then the run trained again from
    epoch 1: the writer hides everything from epoch 1 on, the final figures too, so they are written
    again, not taken as held and lost."""
    rows = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4}]
    first = logger_on(tmp_path)
    first(rows)
    first.close({"epochs": 1, "val_loss": 0.4}, rows)
    again = logger_on(tmp_path)
    again(rows)
    again.close({"epochs": 1, "val_loss": 0.3}, rows)
    assert [(e.step, round(e.value, 6)) for e in events(tmp_path).Scalars("final/val_loss")] == [(1, 0.3)]


def test_settings_a_run_has_not_are_left_out_of_its_hparams(tmp_path):
    """An autoencoder has no classifier strategy: its hparams leave the setting out (blank in
    TensorBoard's table beside the classifiers'), not the string "None" as if it were one."""
    rows = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4}]
    logger = logger_on(tmp_path)
    logger(rows)
    logger.close({"epochs": 1, "val_loss": 0.4}, rows)
    held = hparams(events(tmp_path)).hparams
    assert "strategy" not in held and "model.latent" in held


def test_events_that_lack_an_early_epoch_are_written_again(small, tmp_path):
    """Events that hold the last epoch, its grid and the final figures but not epoch 1 (an attempt's
    event file deleted, say) are not complete: asked for them, the run's events are written anew."""
    from torch.utils.tensorboard import SummaryWriter
    done = tmp_path / "done"
    summary = execute(ae(tensorboard=False), done, data=small, **QUIET)
    partial = SummaryWriter(str(done / "tensorboard"))
    partial.add_scalar(tag("val_loss"), metrics(done)[1]["val_loss"], 2)
    partial.add_image("reconstructions", np.zeros((1, 56, 224), dtype=np.float32), 2)
    partial.add_scalar("final/val_loss", summary["val_loss"], 2)
    partial.close()
    execute(ae(tensorboard=True), done, data=small, **QUIET)
    assert_events_hold(done, metrics(done))
