import json
import shutil
import sys

import pytest
import torch

from fashionae.models import ModelConfig
from fashionae.runs import RunConfig, execute
from fashionae.training import TrainConfig, lr_at
from fashionae.errors import UserError
from helpers import ON_DEVICE, QUIET, read_metrics, same_weights


def small(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=50, train_subset=400, eval_subset=200, **ON_DEVICE)
    return TrainConfig(**{**base, **kw})


def ae_run(**kw) -> RunConfig:
    return RunConfig(model=ModelConfig(latent=32), train=small(**kw))


def test_loss_falls_and_files_written(tiny, tmp_path):
    s = execute(ae_run(epochs=3), tmp_path / "run", data=tiny, **QUIET)
    rows = read_metrics(tmp_path / "run")
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    for name in ("config.json", "metrics.jsonl", "model.safetensors", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()
    for key in ("best_epoch", "val_loss", "best_val_loss", "test_loss", "seconds_total",
                "images_per_second"):
        assert key in s
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["precision"] in ("fp32", "bf16") and cfg["environment"]["torch"]
    assert cfg["train"]["dropout_masks"] == "counter"  # auto, for a new run


def test_same_seed_same_metrics_and_weights(tiny, tmp_path):
    for name in ("a", "b"):
        execute(ae_run(seed=3), tmp_path / name, data=tiny, **QUIET)
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    assert same_weights(tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors")
    execute(ae_run(seed=4), tmp_path / "c", data=tiny, **QUIET)
    assert read_metrics(tmp_path / "a") != read_metrics(tmp_path / "c")


def stopped_after_its_first_epoch(cfg, folder, data, monkeypatch, **kw) -> None:
    """The run stopped (Ctrl-C) right after its first epoch's checkpoint is written (of this
    session: a run trained on, ``extend=True``, stops after its first new epoch)."""
    import fashionae.training as training
    real_save = training.save_checkpoint

    def crash_after_first(*args):
        real_save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        execute(cfg, folder, data=data, **QUIET, **kw)
    monkeypatch.setattr(training, "save_checkpoint", real_save)


def test_resume_from_checkpoint_is_bit_identical(tiny, tmp_path, monkeypatch):
    """Stop a run after its first epoch, resume it: the same files as a run never stopped."""
    execute(ae_run(epochs=3), tmp_path / "straight", data=tiny, **QUIET)

    stopped_after_its_first_epoch(ae_run(epochs=3), tmp_path / "resumed", tiny, monkeypatch)
    assert (tmp_path / "resumed" / "checkpoint.safetensors").exists()
    assert not (tmp_path / "resumed" / "summary.json").exists()
    execute(ae_run(epochs=3), tmp_path / "resumed", data=tiny, **QUIET)
    assert read_metrics(tmp_path / "straight") == read_metrics(tmp_path / "resumed")
    assert same_weights(tmp_path / "straight" / "model.safetensors",
                        tmp_path / "resumed" / "model.safetensors")


def test_a_run_in_a_folder_named_in_another_encoding_resumes_and_is_read(tiny, tmp_path, monkeypatch):
    """A folder whose name is not UTF-8 (bytes from another system's encoding): safetensors' own
    open refused the path, and its files were called truncated or tampered, deleting them advised."""
    import os
    from fashionae.checkpoint import checkpoint_epoch
    from fashionae.modelfile import load_model
    if sys.platform != "linux":
        pytest.skip("a name that is not UTF-8 is a Linux file system's")
    folder = tmp_path / os.fsdecode(b"caf\xe9")  # Latin-1's é
    stopped_after_its_first_epoch(ae_run(epochs=2), folder, tiny, monkeypatch)
    assert checkpoint_epoch(folder / "checkpoint.safetensors") == 1
    execute(ae_run(epochs=2), folder, data=tiny, **QUIET)
    execute(ae_run(epochs=2), tmp_path / "straight", data=tiny, **QUIET)
    assert same_weights(folder / "model.safetensors", tmp_path / "straight" / "model.safetensors")
    assert load_model(folder / "model.safetensors") is not None


@pytest.mark.parametrize("damage, fault", [
    (lambda raw: raw[:1000], "is not a valid safetensors file .*; it is truncated or tampered:"),
    (lambda raw: raw[:-1000], r"is not a valid safetensors file \([\d,]+ bytes where its header gives [\d,]+\); it is "
                              "truncated or tampered:"),
    (lambda raw: raw + b"\0", "is not a valid safetensors file .*; it is truncated or tampered:"),
    (lambda raw: raw[:-5] + bytes([raw[-5] ^ 0xFF]) + raw[-4:], "fails its checksum: it was modified or damaged;"),
])
def test_a_damaged_checkpoint_is_refused_with_the_fix_that_works(tiny, tmp_path, monkeypatch, damage, fault):
    """A truncated checkpoint, or one with a flipped bit in its tensors, is never resumed from;
    the message says to delete it, and the run restarts once it is gone."""
    from fashionae.checkpoint import checkpoint_epoch
    stopped_after_its_first_epoch(ae_run(), tmp_path / "run", tiny, monkeypatch)
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    assert checkpoint_epoch(ckpt) == 1
    ckpt.write_bytes(damage(ckpt.read_bytes()))
    assert checkpoint_epoch(ckpt) == (1 if "checksum" in fault else 0)  # (--plan's estimate: from epoch 1)
    config, said = (tmp_path / "run" / "config.json").read_bytes(), []
    for _ in range(2):  # refused before it says it resumes or records a session that never ran
        with pytest.raises(UserError, match=rf"^checkpoint .*checkpoint.safetensors {fault} delete it to "
                                            r"restart the run from scratch$"):
            execute(ae_run(), tmp_path / "run", data=tiny, log=said.append)
    assert said == [] and (tmp_path / "run" / "config.json").read_bytes() == config
    ckpt.unlink()
    said = []
    assert execute(ae_run(), tmp_path / "run", data=tiny, log=said.append)["epochs"] == 2
    assert said[0].endswith(": no checkpoint to resume from, so it trains from epoch 1")


def test_a_checkpoint_edited_or_of_another_run_is_refused(tiny, tmp_path, monkeypatch):
    """The checkpoint's state (its epoch, history, random states) is covered by a digest, and
    names its run's settings: an edited one, or another run's put in its place (the same command
    with another seed), is refused, not resumed from."""
    import fashionae.training as training
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    real_save = training.save_checkpoint

    def crash_after_first(*args):
        real_save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", crash_after_first)
    for name, seed in (("run", 0), ("other", 7)):
        with pytest.raises(KeyboardInterrupt):
            execute(ae_run(seed=seed), tmp_path / name, data=tiny, **QUIET)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    original = ckpt.read_bytes()
    with safe_open(str(ckpt), "pt") as f:
        meta = f.metadata()
    state = json.loads(meta["state"])
    save_file(load_file(str(ckpt)), str(ckpt), metadata=meta | {"state": json.dumps(state | {"epoch": 2})})
    with pytest.raises(UserError, match=r"^checkpoint .* fails its checksum: it was modified or damaged; delete it"):
        execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)
    ckpt.write_bytes((tmp_path / "other" / "checkpoint.safetensors").read_bytes())
    with pytest.raises(UserError, match=r"^checkpoint .* is another run's \(train seed 7 there, 0 in this run\); "
                                        r"delete it to restart the run from scratch$"):
        execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)
    ckpt.write_bytes(original)
    assert execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)["epochs"] == 2


def test_finished_run_is_kept_and_other_settings_refused(tiny, tmp_path, monkeypatch):
    execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    messages = []
    (tmp_path / "run" / "checkpoint.safetensors").write_bytes(b"left by a run stopped as it finished")
    execute(ae_run(), tmp_path / "run", data=tiny, log=messages.append)
    assert "already finished" in messages[0]
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()  # the weights' and moments' copy: gone
    monkeypatch.setattr("fashionae.runfolder.remove_file", lambda path: pytest.fail(f"removes {path}"))
    execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)  # nothing to remove: nothing written (a read-only copy)
    (tmp_path / "run" / "checkpoint.safetensors").mkdir()  # no training state, and none needed: kept as it is,
    messages = []                                           # as a study keeps it
    execute(ae_run(), tmp_path / "run", data=tiny, log=messages.append)
    assert messages == [f"{tmp_path / 'run'}: already finished, kept as is"]
    with pytest.raises(UserError, match="other settings.*seed"):
        execute(ae_run(seed=5), tmp_path / "run", data=tiny, **QUIET)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        execute(ae_run(), tmp_path / "other", data=tiny, **QUIET)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_a_run_another_process_finished_while_this_one_waited_for_its_lock_is_kept(tiny, tmp_path, monkeypatch):
    """The state seen before the folder's lock is taken may be stale (another fashionae finished the
    run meanwhile): asked again under the lock, a finished run is returned as it is, not trained again."""
    from fashionae import runs
    from fashionae.runfolder import RunFolder
    summary = execute(ae_run(epochs=1), tmp_path / "run", data=tiny, **QUIET)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    state_for, asked = RunFolder.state_for, []

    def stale_then_true(self, *args, **kwargs):  # "new" before the lock, as it was then
        asked.append(1)
        return "new" if len(asked) == 1 else state_for(self, *args, **kwargs)
    monkeypatch.setattr(RunFolder, "state_for", stale_then_true)
    monkeypatch.setattr(runs, "fit", lambda *a, **k: pytest.fail("trains a finished run again"))
    assert execute(ae_run(epochs=1), tmp_path / "run", data=tiny, **QUIET) == summary
    assert len(asked) == 2 and (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_a_run_trained_on_for_more_epochs_is_the_longer_run_bit_for_bit(tiny, tmp_path, monkeypatch):
    """extend: a finished run that kept its training state (keep_state), trained on from 2 epochs
    to 3, is the run of 3 epochs: its metrics, weights and figures; so is an unfinished run
    trained on past the end it was asked for. Each records the sessions that made it."""
    from fashionae.runfolder import RunFolder
    straight = execute(ae_run(epochs=3), tmp_path / "straight", data=tiny, **QUIET)
    execute(ae_run(keep_state=True), tmp_path / "kept", data=tiny, **QUIET)
    assert (tmp_path / "kept" / "checkpoint.safetensors").exists()
    said = []
    extended = execute(ae_run(epochs=3), tmp_path / "kept", data=tiny, log=said.append, extend=True)
    assert said[0].endswith("/kept: training it on from epoch 2 to 3; its training state is not kept (keep_state, "
                            "--keep-state), so it cannot be trained on again")
    assert not (tmp_path / "kept" / "checkpoint.safetensors").exists()  # kept only where asked for again
    stopped_after_its_first_epoch(ae_run(), tmp_path / "stopped", tiny, monkeypatch)
    execute(ae_run(epochs=3), tmp_path / "stopped", data=tiny, extend=True, **QUIET)
    timing = ("seconds_total", "images_per_second", "summary_sha256", "metrics_sha256")
    for run in ("kept", "stopped"):
        folder = RunFolder(tmp_path / run)
        assert read_metrics(folder.path) == read_metrics(tmp_path / "straight")
        assert same_weights(folder / "model.safetensors", tmp_path / "straight" / "model.safetensors")
        assert {k: v for k, v in folder.summary().items() if k not in timing} == \
            {k: v for k, v in straight.items() if k not in timing}
        assert len(folder.sessions()) == 2 and folder.config().train.epochs == 3
    assert extended["epochs"] == 3


def test_a_run_that_cannot_be_trained_on_says_why_and_is_left_as_it_was(tiny, tmp_path):
    run = tmp_path / "kept"
    execute(ae_run(keep_state=True), run, data=tiny, **QUIET)
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"/kept holds a run of 2 epochs, and 3 are asked for; add --extend to train "
                                        r"it on to 3 from its training state, or choose another --out$"):
        execute(ae_run(epochs=3), run, data=tiny, **QUIET)
    with pytest.raises(UserError, match=r"/kept holds a finished run of 2 epochs, and 1 is asked for: a run is trained "
                                        r"on to more epochs, never back to fewer; choose another --out, or delete it "
                                        r"to start over$"):
        execute(ae_run(epochs=1), run, data=tiny, extend=True, **QUIET)
    with pytest.raises(UserError, match="holds a run with other settings"):
        execute(ae_run(epochs=3, lr=2e-3), run, data=tiny, extend=True, **QUIET)
    said = []
    execute(ae_run(), run, data=tiny, log=said.append)  # without keep_state now: the state it kept stays
    assert said == [f"{run}: already finished, kept as is"]
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files
    execute(ae_run(), tmp_path / "plain", data=tiny, **QUIET)
    with pytest.raises(UserError, match=r"/plain holds a run of 2 epochs that did not keep its training state \(Adam's "
                                        r"moments, the random generators\), which training it on needs; train a run "
                                        r"of 3 epochs into another --out \(with --keep-state, --extend can train it "
                                        r"on later\)$"):
        execute(ae_run(epochs=3), tmp_path / "plain", data=tiny, extend=True, **QUIET)
    execute(ae_run(epochs=1, schedule="onecycle", keep_state=True), tmp_path / "cycle", data=tiny, **QUIET)
    with pytest.raises(UserError, match=r"/cycle holds a run of 1 epoch whose onecycle schedule is fitted to its epochs: "
                                        r"trained on, it would not be a run of 3 epochs; train a run of 3 epochs "
                                        r"into another --out$"):
        execute(ae_run(epochs=3, schedule="onecycle"), tmp_path / "cycle", data=tiny, extend=True, **QUIET)


def test_a_run_stopped_while_trained_on_is_unfinished_and_resumes_to_the_longer_run(tiny, tmp_path, monkeypatch):
    """Stopped while trained on from 1 epoch to 3, the folder holds an unfinished run of 3
    epochs (no summary.json of the 1-epoch run, whose figures its metrics no longer give), and
    the same command, --extend or not, finishes it as the run of 3 epochs."""
    from fashionae.runfolder import RunFolder
    execute(ae_run(epochs=3), tmp_path / "straight", data=tiny, **QUIET)
    run = tmp_path / "kept"
    execute(ae_run(epochs=1, keep_state=True), run, data=tiny, **QUIET)
    stopped_after_its_first_epoch(ae_run(epochs=3), run, tiny, monkeypatch, extend=True)
    with pytest.raises(UserError, match="has not finished training"):
        RunFolder(run).require()
    assert not (run / "model.safetensors").exists()  # the 1-epoch run's, gone with its summary
    with pytest.raises(UserError, match=r"/kept holds a run of 3 epochs that has trained 2 epochs already: ask for 2 "
                                        r"or more; train a run of 1 epoch into another --out$"):
        execute(ae_run(epochs=1, keep_state=True), run, data=tiny, extend=True, **QUIET)
    execute(ae_run(epochs=3), run, data=tiny, **QUIET)
    assert read_metrics(run) == read_metrics(tmp_path / "straight")
    assert same_weights(run / "model.safetensors", tmp_path / "straight" / "model.safetensors")
    assert not (run / "checkpoint.safetensors").exists()


def test_a_run_stopped_while_trained_on_to_a_mistyped_end_is_aimed_again(tiny, tmp_path, monkeypatch):
    """Trained on to 1000 epochs (a typo for 3) and stopped after its second: the unfinished run
    takes another end with --extend, as long as it has not trained past it, and is the run of 3
    epochs. Its training state not kept this time, the run says it cannot be trained on again."""
    execute(ae_run(epochs=3), tmp_path / "straight", data=tiny, **QUIET)
    run = tmp_path / "kept"
    execute(ae_run(epochs=1, keep_state=True), run, data=tiny, **QUIET)
    stopped_after_its_first_epoch(ae_run(epochs=1000, keep_state=True), run, tiny, monkeypatch, extend=True)
    with pytest.raises(UserError, match=r"/kept holds a run of 1,000 epochs, and 3 are asked for; add --extend"):
        execute(ae_run(epochs=3), run, data=tiny, **QUIET)
    said = []
    execute(ae_run(epochs=3), run, data=tiny, extend=True, log=said.append)
    assert said[0].endswith("/kept: training it on from epoch 2 to 3; its training state is not kept (keep_state, "
                            "--keep-state), so it cannot be trained on again")
    assert read_metrics(run) == read_metrics(tmp_path / "straight")
    assert same_weights(run / "model.safetensors", tmp_path / "straight" / "model.safetensors")


def test_a_run_stopped_while_trained_on_whose_checkpoint_is_deleted_trains_again(tiny, tmp_path, monkeypatch):
    """A damaged checkpoint says to delete it to restart the run from scratch: of a run stopped
    while trained on (its summary and model gone), that is what deleting it does, at the epochs
    it was asked for or any other number."""
    run = tmp_path / "kept"
    execute(ae_run(epochs=1, keep_state=True), run, data=tiny, **QUIET)
    stopped_after_its_first_epoch(ae_run(epochs=3, keep_state=True), run, tiny, monkeypatch, extend=True)
    (run / "checkpoint.safetensors").write_bytes(b"damaged")
    with pytest.raises(UserError, match="delete it to restart the run from scratch$"):
        execute(ae_run(epochs=3), run, data=tiny, **QUIET)
    (run / "checkpoint.safetensors").unlink()
    other = tmp_path / "other"
    shutil.copytree(run, other)
    said = []
    execute(ae_run(epochs=3), run, data=tiny, log=said.append)
    assert said[0].endswith("/kept: no checkpoint to resume from, so it trains from epoch 1")
    execute(ae_run(epochs=3), tmp_path / "straight", data=tiny, **QUIET)
    assert read_metrics(run) == read_metrics(tmp_path / "straight")
    execute(ae_run(epochs=1), other, data=tiny, **QUIET)
    assert read_metrics(other) == read_metrics(tmp_path / "straight")[:1]


def test_a_run_that_cannot_be_reopened_to_be_trained_on_says_so_and_stays(tiny, tmp_path, monkeypatch):
    """A folder fashionae may not remove files from (immutable, another user's): one line, and
    the finished run stays as it was."""
    import errno
    from pathlib import Path
    run = tmp_path / "kept"
    execute(ae_run(epochs=1, keep_state=True), run, data=tiny, **QUIET)
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    real_unlink = Path.unlink

    def refused(path, missing_ok=False):
        if path.parent == run:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        real_unlink(path, missing_ok=missing_ok)
    monkeypatch.setattr(Path, "unlink", refused)
    with pytest.raises(UserError, match=r"^cannot write in .*/kept: Operation not permitted; choose a writable folder$"):
        execute(ae_run(epochs=2, keep_state=True), run, data=tiny, extend=True, **QUIET)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files


def test_a_state_that_cannot_train_the_run_on_is_refused_before_the_run_is_touched(tiny, tmp_path):
    """A kept state that is another run's (copied in), or a run of two processes trained on by
    one, is refused before its summary goes: the finished run stays finished, byte for byte.
    --extend where there is no run is refused too, rather than training a new one."""
    from fashionae.runfolder import RunFolder
    run = tmp_path / "kept"
    execute(ae_run(keep_state=True), run, data=tiny, **QUIET)
    execute(ae_run(keep_state=True, seed=1), tmp_path / "other", data=tiny, **QUIET)
    own = (run / "checkpoint.safetensors").read_bytes()
    (run / "checkpoint.safetensors").write_bytes((tmp_path / "other" / "checkpoint.safetensors").read_bytes())
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"checkpoint .*/kept/checkpoint.safetensors is another run's \(train seed 1 "
                                        r"there, 0 in this run\); delete it, and \S+/kept stays the finished run it "
                                        r"is; train a run of 3 epochs into another --out$"):
        execute(ae_run(epochs=3), run, data=tiny, extend=True, **QUIET)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files
    (run / "checkpoint.safetensors").unlink()  # as the message says: the finished run is kept, as it is
    assert execute(ae_run(), run, data=tiny, **QUIET)["epochs"] == 2
    (run / "checkpoint.safetensors").write_bytes(own)
    config = json.loads((run / "config.json").read_text())
    damaged = {**config, "environment": {**config["environment"], "earlier_sessions": {"threads": 2}}}
    (run / "config.json").write_text(json.dumps(damaged))
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"config.json records earlier sessions that are not a list of records"):
        execute(ae_run(epochs=3), run, data=tiny, extend=True, **QUIET)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files
    config["environment"]["processes"] = 2  # as torchrun --nproc-per-node 2 records it
    (run / "config.json").write_text(json.dumps(config))
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"/kept was trained on 2 processes, and this command runs 1; train it on, as it "
                                        r"was trained, under torchrun with 2 processes in all \(--nproc-per-node 2 on one machine\)$"):
        execute(ae_run(epochs=3), run, data=tiny, extend=True, **QUIET)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files
    assert RunFolder(run).require().summary()["epochs"] == 2
    with pytest.raises(UserError, match=r"^--extend: .*/new holds no run to train on; give the folder of the run to "
                                        r"train on \(and its settings\), or leave --extend out to train a new run$"):
        execute(ae_run(epochs=3), tmp_path / "new", data=tiny, extend=True, **QUIET)
    assert not (tmp_path / "new").exists()


def test_a_run_trained_on_on_other_threads_says_so_as_a_resumed_one_does(tiny, tmp_path):
    run = tmp_path / "kept"
    execute(ae_run(epochs=1, keep_state=True), run, data=tiny, **QUIET)
    config = json.loads((run / "config.json").read_text())
    now = config["environment"]["threads"]
    config["environment"]["threads"] = now + 1  # as a run started with OMP_NUM_THREADS one higher records it
    (run / "config.json").write_text(json.dumps(config))
    said = []
    execute(ae_run(), run, data=tiny, extend=True, log=said.append)
    assert said[1].startswith(f"{run}: it started on {now + 1} threads and resumes on {now}, which sum in another "
                              "order") and said[1].endswith(f"(OMP_NUM_THREADS={now + 1} resumes it exactly)")


def test_a_run_that_recorded_no_threads_is_said_to_resume_on_none_other():
    """A run's record without its threads (written before they were kept, or 0) says nothing of
    other threads as it resumes: there is no number to compare."""
    from fashionae.runs import other_threads_note
    assert other_threads_note(None) is None and other_threads_note(0) is None
    assert other_threads_note(torch.get_num_threads()) is None
    assert "resumes on" in other_threads_note(torch.get_num_threads() + 1)


def test_a_checkpoint_is_tied_to_its_epochs_under_a_one_cycle_schedule_alone():
    """Under a constant schedule the epochs asked for are not part of what a checkpoint must
    match (a run trained on resumes from its own); a one-cycle schedule's shape is its epochs."""
    from fashionae.checkpoint import run_settings
    model = torch.nn.Linear(1, 1)
    assert "epochs" not in run_settings(model, small())["train"]
    assert run_settings(model, small(schedule="onecycle"))["train"]["epochs"] == 2


def test_a_folder_left_by_a_kill_during_its_first_write_starts_and_loses_its_leftovers(tiny, tmp_path):
    """Killed while writing config.json the first time, a run leaves only its lock and
    atomic_write's temporary: that is no foreign folder, and the temporary goes."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("")
    (run / ".config.json.k1ll3d_8.tmp").write_text('{"half": ')
    assert execute(ae_run(), run, data=tiny, **QUIET)["epochs"] == 2
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".lock"]


def test_a_finished_run_without_its_model_says_what_to_do(tiny, tmp_path):
    execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)
    (tmp_path / "run" / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"^(\S+)/run finished training but its model.safetensors is gone; put back a "
                                        r"copy of it, or delete \1/run and run its command again to train it again$"):
        execute(ae_run(), tmp_path / "run", data=tiny, **QUIET)


def test_onecycle_schedule_shape():
    cfg = TrainConfig(lr=1e-2, schedule="onecycle")
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) == pytest.approx(1e-2)
    assert lrs.index(max(lrs)) == 25 and all(a > b for a, b in zip(lrs[25:], lrs[26:]))  # then down, every step
    assert lr_at(100, 100, cfg) == pytest.approx(1e-2 / 1e4) and lrs[-1] < 1e-2 / 1e3  # to lr / 10^4


def test_the_schedule_runs_once_over_every_step_of_every_epoch(tiny, monkeypatch):
    """One cycle over the whole run, not one per epoch; each epoch's row records the rate of
    its last step."""
    from fashionae import training
    from fashionae.models import build_model
    asked = []
    monkeypatch.setattr(training, "lr_at", lambda step, total, cfg: asked.append((step, total)) or lr_at(step, total, cfg))
    cfg = TrainConfig(epochs=2, batch_size=50, lr=1e-2, schedule="onecycle", device="cpu", precision="fp32")
    torch.manual_seed(0)
    rows = training.fit(build_model(ModelConfig(latent=4)), (tiny.train_images[:230], tiny.train_labels[:230]),
                        (tiny.train_images[:50], tiny.train_labels[:50]), cfg)
    assert asked == [(step, 10) for step in range(10)]  # 5 steps an epoch (the last of 30 images)
    assert [r["lr"] for r in rows] == [pytest.approx(lr_at(4, 10, cfg)), pytest.approx(lr_at(9, 10, cfg))]


def test_bad_training_settings():
    for bad in (dict(epochs=0), dict(batch_size=-1), dict(lr=0), dict(val="train"),
                dict(precision="fp8"), dict(schedule="step"), dict(train_subset=0)):
        with pytest.raises(UserError):
            TrainConfig(**bad).validate()


def test_augment_shifts_and_flips_each_image():
    from fashionae.training import augment_batch
    x = torch.zeros(64, 1, 28, 28)
    x[:, 0, 14, 10] = 1.0  # one bright pixel, left of centre
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.all(out.sum((1, 2, 3)) == 1)
    rows, cols = (out[:, 0] == 1).nonzero()[:, 1], (out[:, 0] == 1).nonzero()[:, 2]
    assert rows.sub(14).abs().max() <= 2
    flipped = (cols - 17).abs() <= 2  # 27 - 10 = 17 after a horizontal flip
    assert flipped.any() and (~flipped).any() and torch.all(flipped | ((cols - 10).abs() <= 2))


def test_augment_is_a_seeded_shift_and_flip_of_each_image():
    """Image i is flipped left-right when drawn so, then shifted by (dy, dx) in [-2, 2]: pixel
    (r, c) of the output is pixel (r + dy, c + dx) of the input, zero outside. Every draw comes
    from the generator it is given (under torchrun each rank's copy draws the same), none from
    torch's global one."""
    from fashionae.training import augment_batch
    n, h, w = 400, 12, 9  # not square: rows and columns cannot be swapped unnoticed
    x = torch.rand(n, 1, h, w)
    torch.manual_seed(123)
    out = augment_batch(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    dx, dy = torch.randint(-2, 3, (2, n), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    for i in range(n):
        image = x[i, 0].flip(1) if flip[i] else x[i, 0]
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
        expected = padded[2 + dy[i]:2 + dy[i] + h, 2 + dx[i]:2 + dx[i] + w]
        assert torch.equal(out[i, 0], expected), i
    assert len(set(zip(dx.tolist(), dy.tolist()))) == 25 and 0 < flip.sum() < n
    torch.manual_seed(456)  # another global state, the same result
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(5)), out)


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_training_step_does_not_page_fault_its_activations_in_again():
    """glibc would hand the step's multi-megabyte activations back to the OS after every step
    and fault them in again (thousands of page faults a step); ``keep_freed_memory`` keeps them.
    Measured in a process of its own: the count is the whole process's, and in CI's full suite,
    after hundreds of tests, one run counted ~11,000 a step in every window."""
    import subprocess
    import sys
    code = """
import resource, torch
from fashionae.models import ModelConfig, build_model
from fashionae.training import keep_freed_memory
keep_freed_memory()
torch.manual_seed(0)
model = build_model(ModelConfig())
opt = torch.optim.Adam(model.parameters())
x = torch.rand(100, 1, 28, 28)

def step():
    opt.zero_grad()
    model(x).loss.backward()
    opt.step()
for _ in range(3):
    step()


def faults_per_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
print(min(faults_per_step() for _ in range(3)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # measured: about 11,000 faults a step without it, under 200 with it; the quietest of three
    # windows is taken, since the activations would fault in every window
    assert float(done.stdout) < 1_000


@pytest.mark.parametrize("native", [False, True])
def test_emulated_bf16_is_named_before_it_trains_or_evaluates(tiny, tmp_path, monkeypatch, native):
    import fashionae.training as training
    from fashionae.runs import evaluate_run
    monkeypatch.setattr(training, "native_bf16", lambda device: native)
    cfg, said = ae_run(epochs=1, precision="bf16", train_subset=100, eval_subset=50), []
    execute(cfg, tmp_path / "run", data=tiny, log=said.append)
    evaluate_run(tmp_path / "run", cfg.train.device, data_dir=tiny.folder, verify=False, log=said.append)
    warning = training.slow_precision(cfg.train.resolved())
    assert (warning is None) == native
    assert [m for m in said if "bf16 is emulated" in m] == ([] if native else [
        f"{tmp_path / 'run'}: {warning}; --precision auto chooses fp32 here",
        f"{tmp_path / 'run'}: it was trained in bf16, measured again in bf16 here, and {warning}"])
    assert training.slow_precision(training.TrainConfig(precision="fp32", device="cpu")) is None


def test_evaluation_casts_each_weight_once_and_gives_the_figures_of_batch_by_batch_inference():
    """bf16 evaluation in one autocast region: the linear layers' weights are cast once for the
    whole set, not once a batch, and the loss is the same, bit for bit, as batch by batch."""
    from fashionae.models import build_model
    from fashionae.training import EVAL_BATCH, evaluate
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=16)).eval()
    x, y = torch.rand(3 * EVAL_BATCH, 1, 28, 28), torch.zeros(3 * EVAL_BATCH, dtype=torch.long)
    cfg = TrainConfig(precision="bf16", device="cpu").resolved()
    with torch.profiler.profile(record_shapes=True) as profile:
        loss = evaluate(model, x, y, cfg)["loss"]
    weight = list(model.encoder.bottleneck[1].weight.shape)
    casts = [e for e in profile.key_averages(group_by_input_shape=True)
             if e.key == "aten::_to_copy" and e.input_shapes[:1] == [weight]]
    assert sum(e.count for e in casts) == 1
    with torch.inference_mode():
        by_batch = []
        for i in range(0, len(x), EVAL_BATCH):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                by_batch.append(model(x[i:i + EVAL_BATCH].contiguous(memory_format=torch.channels_last),
                                      y[i:i + EVAL_BATCH]).loss.double() * EVAL_BATCH)
    assert loss == (sum(by_batch) / len(x)).item()


def test_an_evaluation_inside_an_autocast_region_leaves_the_weights_trainable_there():
    """Evaluation's casts, made without autograd and kept to the end of an enclosing autocast
    region, do not cut a training step after it in that region off its weights (PyTorch makes
    them with autograd's history): every weight still gets its gradient."""
    from fashionae.models import build_model
    from fashionae.training import evaluate
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=16))
    x, y = torch.rand(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        evaluate(model, x, y, TrainConfig(precision="bf16", device="cpu").resolved())
        model(x, y).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_a_process_left_without_a_batch_measures_one_image_counted_for_nothing():
    """Under torchrun, a set of fewer batches than processes leaves a process without one: it
    still runs the model (so that every process adds up the same figures) on one image, whose
    figures it does not count; the sums across processes are then the other processes' alone."""
    from fashionae.distributed import Dist
    from fashionae.models import build_model
    from fashionae.training import evaluate

    class SecondOfTwo(Dist):  # the process group's sums as rank 1 alone contributes them; rank 0 predicted [3, 1]
        def sum(self, values):
            return values

        def gather_object(self, obj):
            return [[torch.tensor([3, 1])], obj]

    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=16, task="classifier"))
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    x, y = torch.rand(10, 1, 28, 28), torch.zeros(10, dtype=torch.long)
    cfg = TrainConfig(device="cpu").resolved()
    alone = evaluate(model, x, y, cfg, predictions=True)
    idle = evaluate(model, x, y, cfg, predictions=True, dist=SecondOfTwo(rank=1, world=2))
    assert seen == [10, 1]
    assert alone["loss"] > 0 and idle["loss"] == 0 and idle["acc"] == 0
    assert idle["predictions"].tolist() == [3, 1]  # every process's, in rank order: none of its own


def test_predictions_measured_by_two_processes_come_back_in_the_images_order(monkeypatch):
    """Under torchrun, process r measures batches r, r + world, ...: the predictions gathered
    from every process are put back in batch order, the order of the labels (the confusion
    matrix compares the two)."""
    from fashionae import training
    from fashionae.distributed import Dist
    from fashionae.models import build_model
    monkeypatch.setattr(training, "EVAL_BATCH", 3)  # 10 images: 4 batches, 2 a process
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=16, task="classifier"))
    torch.nn.init.normal_(model.head.weight, std=10)  # predictions that differ from image to image
    torch.nn.init.zeros_(model.head.bias)
    x, y = torch.rand(10, 1, 28, 28), torch.zeros(10, dtype=torch.long)
    cfg = TrainConfig(device="cpu").resolved()
    sent = {}

    class Rank(Dist):  # a world of two, each process's gathered share as rank 0 sent it
        def sum(self, values):
            return values

        def gather_object(self, obj):
            sent[self.rank] = obj
            return [sent.get(0), obj]

    alone = training.evaluate(model, x, y, cfg, predictions=True)["predictions"]
    assert len(set(alone.tolist())) > 1  # an order to get wrong
    training.evaluate(model, x, y, cfg, predictions=True, dist=Rank(rank=0, world=2))
    two = training.evaluate(model, x, y, cfg, predictions=True, dist=Rank(rank=1, world=2))
    assert two["predictions"].tolist() == alone.tolist()


def test_an_epochs_training_loss_is_the_mean_over_every_training_image(tiny):
    """With a learning rate too small to move the weights and no dropout, the loss summed over
    the training pass is the loss of the whole set in eval mode; the train-eval figure is of
    the first train_eval_subset images."""
    from fashionae import training
    from fashionae.models import build_model
    cfg = TrainConfig(epochs=1, batch_size=100, lr=1e-12, device="cpu", precision="fp32", train_eval_subset=50)
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=4, dropout=0.0))
    images, labels = tiny.train_images[:230], tiny.train_labels[:230]  # a last batch of 30
    row, = training.fit(model, (images, labels), (tiny.test_images[:50], tiny.test_labels[:50]), cfg)
    every = training.evaluate(model, training.to_inputs(images, "cpu"), labels, cfg)["loss"]
    first = training.evaluate(model, training.to_inputs(images[:50], "cpu"), labels[:50], cfg)["loss"]
    assert row["train_loss"] == pytest.approx(every, rel=1e-5) and row["train_eval_loss"] == first


def test_an_epochs_speed_is_its_training_images_over_its_training_pass(tiny, monkeypatch):
    """img/s counts the images trained on (230) over the training pass alone (2 s on this clock),
    not the images validated (50) nor the epoch's evaluations (3 s more)."""
    from types import SimpleNamespace
    from fashionae import training
    from fashionae.models import build_model
    clock = iter([0.0, 2.0, 5.0])  # the epoch starts, its training pass ends, its evaluations end
    monkeypatch.setattr(training, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    cfg = TrainConfig(epochs=1, batch_size=100, device="cpu", precision="fp32", train_eval_subset=50)
    row, = training.fit(build_model(ModelConfig(latent=4)), (tiny.train_images[:230], tiny.train_labels[:230]),
                        (tiny.test_images[:50], tiny.test_labels[:50]), cfg)
    assert (row["train_images_per_second"], row["seconds"]) == (115.0, 5.0)


def test_a_runs_speed_is_its_images_over_the_time_of_all_its_training_passes(tiny, tmp_path):
    """summary.json's images_per_second: every epoch's training images over the time all its
    training passes took (each epoch's count over its speed), not one epoch's images."""
    summary = execute(ae_run(epochs=2), tmp_path / "run", data=tiny, **QUIET)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert summary["images_per_second"] == pytest.approx(2 / sum(1 / r["train_images_per_second"] for r in rows))


def test_the_order_of_the_training_images_follows_the_seed(tiny):
    """The same initial weights, no dropout: only the shuffling depends on the seed, and it does."""
    from fashionae import training
    from fashionae.models import build_model
    losses = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=1, batch_size=50, seed=seed, device="cpu", precision="fp32")
        row, = training.fit(build_model(ModelConfig(latent=4, dropout=0.0)), (tiny.train_images[:200],
                            tiny.train_labels[:200]), (tiny.test_images[:50], tiny.test_labels[:50]), cfg)
        losses.append(row["val_loss"])
    assert losses[0] == losses[1] != losses[2]


def checkpoint_of(folder, cfg: ModelConfig, rng: list[dict], name: str = "checkpoint"):
    """A checkpoint written by ``save_checkpoint`` itself, of a fresh model of ``cfg``."""
    from fashionae.checkpoint import run_settings, save_checkpoint
    from fashionae.models import build_model
    model = build_model(cfg)
    path = folder / f"{name}.safetensors"
    save_checkpoint(path, model, torch.optim.Adam(model.parameters()), 1, [], rng, run_settings(model, small()))
    return path


@pytest.fixture
def kept_rng():
    """The process's random generators as they were: loading a checkpoint sets them."""
    from fashionae.checkpoint import rng_state, set_rng_state
    before = rng_state(torch.Generator())
    yield
    set_rng_state(before, torch.Generator())


def test_each_process_resumes_with_its_own_random_state(tmp_path, kept_rng):
    """Under torchrun each rank gets its own random state back (rank 0's on every rank: the
    ranks draw the same dropout masks and shuffles after a resume), and a checkpoint of another
    number of processes is refused by what is wrong, not called damaged."""
    from fashionae.checkpoint import load_checkpoint, rng_state, run_settings
    from fashionae.models import build_model
    cfg = ModelConfig(latent=8)
    states = [rng_state(torch.Generator().manual_seed(seed)) for seed in (1, 2)]
    model = build_model(cfg)
    settings = run_settings(model, small())
    gen = torch.Generator()
    two = checkpoint_of(tmp_path, cfg, states, "two")
    assert load_checkpoint(two, model, torch.optim.Adam(model.parameters()), gen, settings, rank=1, world=2) == (1, [])
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(2).get_state())
    load_checkpoint(two, model, torch.optim.Adam(model.parameters()), gen, settings, rank=0, world=2)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(1).get_state())
    one = checkpoint_of(tmp_path, cfg, states[:1], "one")
    for world in (2, 3):
        with pytest.raises(UserError, match=rf"^checkpoint .* was written by 1 process, and this command runs {world}; "
                                            rf"resume it in one process, without torchrun$"):
            load_checkpoint(one, model, torch.optim.Adam(model.parameters()), gen, settings, rank=1, world=world)
    with pytest.raises(UserError, match=r"was written by 2 processes, and this command runs 1; resume it under torchrun "
                                        r"with 2 processes in all \(--nproc-per-node 2 on one machine\)$"):
        load_checkpoint(two, model, torch.optim.Adam(model.parameters()), gen, settings)


def test_a_checkpoint_of_other_model_settings_is_refused(tmp_path, kept_rng):
    """The model's settings tie a checkpoint to its run as the training's do: one of another
    dropout rate (the same shapes, so its weights would load) is refused, not resumed from."""
    from fashionae.checkpoint import load_checkpoint, rng_state, run_settings
    from fashionae.models import build_model
    ckpt = checkpoint_of(tmp_path, ModelConfig(latent=8, dropout=0.2), [rng_state(torch.Generator())])
    model = build_model(ModelConfig(latent=8, dropout=0.0))
    settings = run_settings(model, small())
    assert settings["model"]["latent"] == 8 and settings["model"]["dropout"] == 0.0
    assert settings["train"]["seed"] == small().seed
    with pytest.raises(UserError, match=r"^checkpoint .* is another run's \(model dropout 0\.2 there, 0\.0 in this "
                                        r"run\); delete it to restart the run from scratch$"):
        load_checkpoint(ckpt, model, torch.optim.Adam(model.parameters()), torch.Generator(), settings)
    same = build_model(ModelConfig(latent=8, dropout=0.2))
    assert load_checkpoint(ckpt, same, torch.optim.Adam(same.parameters()), torch.Generator(),
                           run_settings(same, small()))[0] == 1


def test_the_cuda_random_states_are_kept_and_restored(monkeypatch, kept_rng):
    """Each GPU's random state (the stock dropout masks' generator there) is saved with the
    others and set again on resume; here the CUDA calls are stand-ins, as no GPU need be present."""
    from fashionae.checkpoint import rng_state, set_rng_state
    gpus = [torch.arange(16, dtype=torch.uint8), torch.arange(100, 116, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    state = json.loads(json.dumps(rng_state(torch.Generator())))  # as the checkpoint holds it
    assert len(state["cuda"]) == 2
    set_rng_state(state, torch.Generator())
    assert len(restored) == 2 and all(torch.equal(a, b) for a, b in zip(restored, gpus))


def rewritten(path, change):
    """The checkpoint at ``path`` with its metadata changed by ``change`` and its digests made
    again: what a faulty writer (not a damaged disk) would leave."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from fashionae.modelfile import text_sha256
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    meta = change(meta)
    if "state" in meta:
        meta["state_sha256"] = text_sha256(meta["state"])
    save_file(load_file(str(path)), str(path), metadata=meta)
    return path


def test_a_checkpoint_whose_state_is_incomplete_is_called_damaged(tmp_path, kept_rng):
    """A state without its digest's text, or without one of its parts (the epoch, the history,
    Adam's settings), is refused as damaged, with the fix, never a traceback."""
    from fashionae.checkpoint import load_checkpoint, read_checkpoint, rng_state, run_settings
    from fashionae.models import build_model
    cfg = ModelConfig(latent=8)
    model = build_model(cfg)
    settings = run_settings(model, small())

    def of(change, name):
        return rewritten(checkpoint_of(tmp_path, cfg, [rng_state(torch.Generator())], name), change)

    def without(key):
        def change(meta):
            return meta | {"state": json.dumps({k: v for k, v in json.loads(meta["state"]).items() if k != key})}
        return change

    no_text = of(lambda meta: {k: v for k, v in meta.items() if k != "state"}, "no_text")  # its key's name hit
    with pytest.raises(UserError, match=r"^checkpoint .*no_text.safetensors fails its checksum: it was modified or "
                                        r"damaged; delete it to restart the run from scratch$"):
        read_checkpoint(no_text, settings, 1)
    with pytest.raises(UserError, match=r"^checkpoint .*no_epoch.safetensors is damaged \(KeyError\); my fix$"):
        read_checkpoint(of(without("epoch"), "no_epoch"), settings, 1, "my fix")
    for key in ("history", "param_groups"):
        with pytest.raises(UserError, match=rf"^checkpoint .*no_{key}.safetensors is damaged \(KeyError\); delete it "
                                            r"to restart the run from scratch$"):
            load_checkpoint(of(without(key), f"no_{key}"), model, torch.optim.Adam(model.parameters()),
                            torch.Generator(), settings)


def test_a_checkpoint_of_another_architecture_is_refused_by_its_name(tmp_path, kept_rng):
    """A model that is no fashionae model (bench's, a test's) has no settings to tell its
    checkpoint from another's: the weights' shapes do, and the message names the file."""
    from fashionae.checkpoint import load_checkpoint, rng_state, run_settings, save_checkpoint
    written, other = torch.nn.Linear(3, 2), torch.nn.Linear(4, 2)
    path = tmp_path / "linear.safetensors"
    save_checkpoint(path, written, torch.optim.Adam(written.parameters()), 1, [], [rng_state(torch.Generator())],
                    run_settings(written, small()))
    with pytest.raises(UserError, match=r"^.*linear.safetensors: tensor weight is torch.float32\[2, 3\], the "
                                        r"architecture needs torch.float32\[2, 4\]$"):
        load_checkpoint(path, other, torch.optim.Adam(other.parameters()), torch.Generator(),
                        run_settings(other, small()))


def test_the_epochs_a_checkpoint_holds_are_none_without_a_readable_one(tmp_path):
    """``epochs_trained`` (study --plan's estimate of what is left): 0 with no checkpoint or one
    that cannot be read (what is wrong with it is said when the run starts), else its epoch."""
    from fashionae.checkpoint import checkpoint_epoch, rng_state
    assert checkpoint_epoch(tmp_path / "none.safetensors") == 0
    (tmp_path / "cut.safetensors").write_bytes(b"damaged")
    assert checkpoint_epoch(tmp_path / "cut.safetensors") == 0
    assert checkpoint_epoch(checkpoint_of(tmp_path, ModelConfig(latent=8), [rng_state(torch.Generator())])) == 1


def test_a_model_too_large_is_refused_by_what_training_it_takes(monkeypatch, tmp_path):
    """16 bytes a trained parameter (weight, gradient, Adam's two moments), 4 a frozen one's;
    the memory is the device's, less a container's limit (cgroup v2 or v1)."""
    from fashionae import machine, training
    monkeypatch.setattr(training, "memory_bytes", lambda device: 6 * 2**30)
    clf = ModelConfig(task="classifier", latent=200_000)  # 629 M parameters, 2 M of them the head's
    t = TrainConfig(device="cpu")
    training.refuse_too_large(clf, t, frozen_encoder=True)  # 2.4 GiB: fits
    with pytest.raises(UserError, match=r"^the model has 629,\d{3},\d{3} parameters: training it takes at least 9 GiB "
                                        r"\(its weights, and the gradients and Adam's "
                                        r"moments of those it trains\), more than this machine's 6 GiB; "
                                        r"use a smaller latent or smaller images$"):
        training.refuse_too_large(clf, t)
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(machine, "CGROUP_LIMITS", (v2, v1))
    total = machine.memory_bytes("cpu")  # neither file: the machine's memory
    v2.write_text("max\n")
    v1.write_text(f"{2**30}\n")
    assert total > 2**30 and machine.memory_bytes("cpu") == 2**30
    v1.write_text("9223372036854771712\n")  # v1's "no limit"
    assert machine.memory_bytes("cpu") == total


def test_a_cgroup_v1_limit_counts_where_there_is_no_v2_file_and_an_unreadable_one_is_no_limit(monkeypatch, tmp_path):
    """On a cgroup v1 machine (no memory.max) its memory.limit_in_bytes is the limit; a limit file
    that holds no number (empty) is no limit, not an error."""
    from fashionae import machine
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(machine, "CGROUP_LIMITS", (v2, v1))
    total = machine.memory_bytes("cpu")
    v1.write_text(f"{2**30}\n")
    assert total > 2**30 and machine.memory_bytes("cpu") == 2**30
    v1.unlink()
    v2.write_text("\n")
    assert machine.memory_bytes("cpu") == total


def test_a_checkpoint_restores_every_generator_adams_moments_and_settings_the_epoch_and_history(tmp_path, kept_rng):
    """What a resume takes back, each part on its own: the weights, Adam's moments, step and
    settings (its learning rate), the epoch and history as written, and every random generator
    (torch's, the shuffle's, NumPy's, Python's) as it was when the checkpoint was written."""
    import random
    import numpy as np
    from fashionae.checkpoint import load_checkpoint, rng_state, run_settings, save_checkpoint
    from fashionae.models import build_model
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=8))
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    model(torch.rand(2, 1, 28, 28)).loss.backward()
    opt.step()
    opt.param_groups[0]["lr"] = 0.0021  # as a schedule leaves it
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    shuffle = torch.Generator().manual_seed(5)
    settings = run_settings(model, small())
    history = [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.25}]
    save_checkpoint(tmp_path / "c.safetensors", model, opt, 2, history, [rng_state(shuffle)], settings)
    draws = (torch.rand(3), torch.rand(3, generator=shuffle), np.random.rand(3), [random.random() for _ in range(3)])

    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    other = build_model(ModelConfig(latent=8))
    other_opt, other_shuffle = torch.optim.Adam(other.parameters(), lr=0.003), torch.Generator().manual_seed(9)
    assert load_checkpoint(tmp_path / "c.safetensors", other, other_opt, other_shuffle, settings) == (2, history)
    assert (torch.equal(torch.rand(3), draws[0]) and torch.equal(torch.rand(3, generator=other_shuffle), draws[1])
            and np.array_equal(np.random.rand(3), draws[2]) and [random.random() for _ in range(3)] == draws[3])
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))
    assert other_opt.param_groups[0]["lr"] == 0.0021 and other_opt.param_groups[0]["betas"] == (0.9, 0.999)
    for p, q in zip(model.parameters(), other.parameters()):
        mine, theirs = opt.state[p], other_opt.state[q]
        assert mine.keys() == theirs.keys() == {"step", "exp_avg", "exp_avg_sq"}
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_a_checkpoint_whose_epoch_is_no_number_is_called_damaged(tmp_path, kept_rng):
    """An epoch that is no number (a faulty writer's) is refused as damaged when the checkpoint is
    read (as --extend reads it, before the run is touched), not taken up by the run."""
    from fashionae.checkpoint import read_checkpoint, rng_state, run_settings
    from fashionae.models import build_model
    cfg = ModelConfig(latent=8)
    settings = run_settings(build_model(cfg), small())

    def epoch(value):
        return lambda meta: meta | {"state": json.dumps(json.loads(meta["state"]) | {"epoch": value})}
    for value, error in (("two", "ValueError"), (None, "TypeError")):
        path = rewritten(checkpoint_of(tmp_path, cfg, [rng_state(torch.Generator())], f"e{error}"), epoch(value))
        with pytest.raises(UserError, match=rf"^checkpoint .* is damaged \({error}\); delete it to restart"):
            read_checkpoint(path, settings, 1)


def test_a_checkpoint_is_tied_to_the_model_settings_the_run_uses_and_not_to_settings_it_predates(tmp_path, kept_rng):
    """An autoencoder's checkpoint records no setting its model does not use (its paper head); one
    written before a setting existed (its settings lack the key) is still this run's."""
    from fashionae.checkpoint import read_checkpoint, rng_state, run_settings
    from fashionae.models import build_model
    cfg = ModelConfig(latent=8)
    settings = run_settings(build_model(cfg), small())
    assert "paper_head" not in settings["model"] and "latent" in settings["model"]

    def older(meta):
        state = json.loads(meta["state"])
        del state["settings"]["train"]["seed"], state["settings"]["model"]["dropout"]
        return meta | {"state": json.dumps(state)}
    path = rewritten(checkpoint_of(tmp_path, cfg, [rng_state(torch.Generator())]), older)
    assert read_checkpoint(path, settings, 1)[1]["epoch"] == 1
