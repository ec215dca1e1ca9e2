"""Fuzzing and crash tests: bad bytes only ever give fashionae's own error, and a run
killed with SIGKILL resumes to the same result as a run never stopped."""

import json
import math
import os
import signal
import struct
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from safetensors.torch import load as safetensors_load

from fashionae.data import parse_idx
from fashionae.errors import UserError
from fashionae.modelfile import load_model
from fashionae.models import ModelConfig, build_model
from fashionae.study import load_study
from helpers import PAPER, idx_bytes, model_file_bytes, same_weights, without_timings

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
VALID_IDX = idx_bytes(torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8))


def mutate(data: bytes, positions: list[int], values: list[int], cut: int | None) -> bytes:
    b = bytearray(data)
    for p, v in zip(positions, values):
        if b:
            b[p % len(b)] = v
    return bytes(b[:cut] if cut is not None else b)


@FUZZ
@given(st.binary(max_size=200))
def test_idx_parser_random_bytes(raw):
    try:
        parse_idx(raw)
    except UserError:
        pass


def idx_says(data: bytes):
    """What a well-formed IDX file of unsigned bytes holds, decoded independently of parse_idx:
    (dims, payload), or None where the bytes are not such a file."""
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] not in (1, 3):
        return None
    rank = data[3]
    if len(data) < 4 + 4 * rank:
        return None
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    payload = data[4 + 4 * rank:]
    return (dims, payload) if len(payload) == math.prod(dims) else None


@FUZZ
@given(st.lists(st.integers(0, 10_000), max_size=6), st.lists(st.integers(0, 255), max_size=6),
       st.one_of(st.none(), st.integers(0, len(VALID_IDX))))
def test_idx_parser_mutated_files(positions, values, cut):
    """Parsed exactly when the bytes are a valid file, and then to what its header and payload say
    (a header byte changed into other valid dimensions reshapes; a payload byte shows up)."""
    data = mutate(VALID_IDX, positions, values, cut)
    expected = idx_says(data)
    try:
        out = parse_idx(data)
    except UserError:
        assert expected is None, "a valid IDX file was refused"
        return
    assert expected is not None, "an invalid IDX file was accepted"
    dims, payload = expected
    assert out.dtype == torch.uint8 and tuple(out.shape) == dims
    assert out.numpy().tobytes() == payload


@FUZZ
@given(st.lists(st.integers(0, 255), min_size=1, max_size=40), st.integers(1, 4))
def test_idx_round_trip(pixels, rows):
    array = torch.tensor(pixels * rows, dtype=torch.uint8).reshape(rows, 1, len(pixels))
    assert torch.equal(parse_idx(idx_bytes(array)), array)


STUDY_TEXT = """name = "fuzz"
seeds = 1
[train]
epochs = 2
[[autoencoders]]
name = "a"
arch = "linear"
latent = 8
[classifiers]
encoder = "a"
strategies = ["frozen"]
[profiles.quick]
train = { epochs = 1 }
"""


@FUZZ
@given(st.lists(st.integers(0, 10_000), max_size=4), st.lists(st.integers(32, 126), max_size=4),
       st.one_of(st.none(), st.integers(0, len(STUDY_TEXT))))
def test_study_loader_mutated_files(tmp_path_factory, positions, values, cut):
    path = tmp_path_factory.mktemp("s") / "s.toml"
    path.write_bytes(mutate(STUDY_TEXT.encode(), positions, values, cut))
    try:
        load_study(path)
    except UserError:
        pass


@FUZZ
@given(st.text(max_size=120))
def test_study_loader_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("s") / "s.toml"
    path.write_text(text)
    try:
        load_study(path)
    except UserError:
        pass


torch.manual_seed(0)
MODEL_BYTES = model_file_bytes(build_model(ModelConfig(arch="linear", latent=4)))
ORIGINAL = safetensors_load(MODEL_BYTES)
WEIGHTS_START = 8 + struct.unpack("<Q", MODEL_BYTES[:8])[0]  # after the length and the JSON header


def bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().numpy().tobytes()  # -0.0 and 0.0 differ here, unlike torch.equal


@FUZZ
@given(st.lists(st.integers(0, len(MODEL_BYTES) - 1), max_size=4), st.lists(st.integers(0, 255), max_size=4),
       st.one_of(st.none(), st.integers(0, len(MODEL_BYTES))))
def test_model_loader_mutated_files(tmp_path_factory, positions, values, cut):
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    data = mutate(MODEL_BYTES, positions, values, cut)
    path.write_bytes(data)
    try:
        model = load_model(path)
    except UserError:
        return
    # whatever loads is the original model, bit for bit: the checksum guards the weights
    state = model.state_dict()
    assert set(state) == set(ORIGINAL)
    assert all(bits(state[k]) == bits(ORIGINAL[k]) for k in ORIGINAL)
    assert data[WEIGHTS_START:] == MODEL_BYTES[WEIGHTS_START:]


@FUZZ
@given(st.integers(WEIGHTS_START, len(MODEL_BYTES) - 1), st.integers(1, 255))
def test_any_weight_byte_changed_is_refused(tmp_path_factory, position, flip):
    data = bytearray(MODEL_BYTES)
    data[position] ^= flip  # a different byte, always
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum"):
        load_model(path)


# ------------------------------------------------------------------ kill and resume
# A process killed with SIGKILL the moment a checkpoint appears (polled for, so the kill lands
# between two epochs of a run that has more to do), then the same command again: every file
# must come out as from a run never stopped, the figures and the weights.

SMALL = ["--epochs", "3", "--batch-size", "20", "--train-subset", "300", "--eval-subset", "100",
         "--train-eval-subset", "100", "--no-verify", "--device", "cpu"]


def read(folder):
    rows = [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines()]
    return without_timings(rows), without_timings(json.loads((folder / "summary.json").read_text()))


def fashionae(*args, wait=True, log=None):
    cmd = [sys.executable, "-m", "fashionae", *map(str, args)]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "w") as stderr:  # the child holds its own copy of the file
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)


def kill_at_first_checkpoint(proc, root, timeout=300, sig=signal.SIGKILL):
    """Send ``sig`` to ``proc`` as soon as a checkpoint.safetensors appears under ``root``; return
    the run folder it was stopped in. Fails if the process ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = next(root.rglob("checkpoint.safetensors"), None) if root.exists() else None
        if found is not None:
            os.kill(proc.pid, sig)
            proc.wait()
            # SIGTERM is handled as Ctrl-C is, with the shell's code for it: 128 + 15
            assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), \
                "the process ended before it could be stopped"
            return found.parent
        assert proc.poll() is None, "the process ended before writing any checkpoint"
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("no checkpoint appeared in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_last_line_leaves_a_finished_command_finished(data_dir, tmp_path, sig):
    """Python's teardown of torch lasts about 0.6 s after a command's last line: a Ctrl-C or
    SIGTERM there ended a finished run with status 130 or 143, and no message."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "fashionae", *map(str, ae_args(data_dir)), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith(f"{out}: val MSE"):  # the last line: the run is finished
            time.sleep(0.05)
            proc.send_signal(sig)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "fashionae:" not in err and (out / "summary.json").exists()  # no "interrupted", no error


def assert_killed_mid_run(run):
    """The kill came between two epochs: a checkpoint, and no summary or model yet."""
    assert (run / "checkpoint.safetensors").exists()
    assert not (run / "summary.json").exists() and not (run / "model.safetensors").exists()


def ae_args(data_dir) -> tuple:
    return ("train-ae", "--latent", 16, *SMALL, "--data-dir", data_dir)


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """The run never stopped, which each stopped one must come out as."""
    out = tmp_path_factory.mktemp("straight") / "run"
    done = fashionae(*ae_args(data_dir), "--out", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_sigkill_and_resume_gives_identical_files(data_dir, straight, tmp_path, sig):
    args = ae_args(data_dir)
    victim = tmp_path / "killed"
    run = kill_at_first_checkpoint(fashionae(*args, "--out", victim, wait=False, log=tmp_path / "log"), victim,
                                   sig=sig)
    assert run == victim
    assert_killed_mid_run(victim)
    if sig == signal.SIGTERM:  # a scheduler's stop: one line, as for Ctrl-C
        assert (tmp_path / "log").read_text().splitlines()[-1] == (
            "fashionae: terminated; finished epochs are kept, run the same command to resume")
    done = fashionae(*args, "--out", victim)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert read(straight) == read(victim)
    assert same_weights(straight / "model.safetensors", victim / "model.safetensors")
    assert not (victim / "checkpoint.safetensors").exists()


def test_sigkill_augmented_classifier_resumes_to_the_same_weights(data_dir, tmp_path):
    """--augment draws shifts and flips from the shuffling generator: resuming must restore it."""
    ae = tmp_path / "ae"
    made = fashionae("train-ae", "--latent", 16, *SMALL, "--epochs", 1, "--data-dir", data_dir, "--out", ae)
    assert made.returncode == 0, made.stderr
    args = ("train-clf", "--strategy", "finetune", "--encoder", ae, "--augment", *SMALL, "--epochs", 3,
            "--data-dir", data_dir)
    assert fashionae(*args, "--out", tmp_path / "straight").returncode == 0
    victim = tmp_path / "killed"
    kill_at_first_checkpoint(fashionae(*args, "--out", victim, wait=False, log=tmp_path / "log"), victim)
    assert_killed_mid_run(victim)
    done = fashionae(*args, "--out", victim)
    assert done.returncode == 0 and "resuming" in done.stderr, done.stderr
    assert read(tmp_path / "straight") == read(victim)
    assert same_weights(tmp_path / "straight" / "model.safetensors", victim / "model.safetensors")




@pytest.mark.slow  # two whole studies: about two minutes on 2 cores
def test_sigkill_study_and_resume_gives_the_same_results(data_dir, tmp_path):
    # the smoke profile trains 1 epoch per run, which leaves no epoch to be killed in: 2 here
    smoke = "train = { epochs = 1, batch_size = 50, train_subset = 400, eval_subset = 300 }"
    text = PAPER.read_text()
    assert smoke in text
    study = tmp_path / "paper.toml"
    study.write_text(text.replace(smoke, smoke.replace("epochs = 1", "epochs = 2")))
    args = ("study", study, "--profile", "smoke", "--data-dir", data_dir, "--no-verify", "--device", "cpu")
    straight = fashionae(*args, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    victim = tmp_path / "killed"
    run = kill_at_first_checkpoint(fashionae(*args, "--out", victim, wait=False, log=tmp_path / "log"), victim)
    assert_killed_mid_run(run)
    assert not (victim / "results.json").exists()
    done = fashionae(*args, "--out", victim)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    results = [json.loads((folder / "results.json").read_text()) for folder in (tmp_path / "straight", victim)]
    # the provenance says which run was stopped and resumed; the rest is the same
    assert {r["run"]: r.pop("sessions") for r in results[1]["runs"]} == {
        r["run"]: 2 if r["run"] == run.name else 1 for r in results[0]["runs"]}
    assert {r.pop("sessions") for r in results[0]["runs"]} == {1}
    assert without_timings(results[0]) == without_timings(results[1])
    models = sorted(p.relative_to(victim) for p in victim.rglob("model.safetensors"))
    assert len(models) == 8  # 4 autoencoders, 4 classifiers
    for m in models:
        assert same_weights(tmp_path / "straight" / m, victim / m), m


@pytest.mark.parametrize("executor, exactly", [(None, "OMP_NUM_THREADS=2"), ("ray", "--cpus-per-run 2")])
def test_a_run_resumed_on_other_threads_says_its_result_will_differ(tiny, tmp_path, monkeypatch, executor, exactly):
    from fashionae.runs import RunConfig, execute
    from fashionae.training import TrainConfig
    cfg = RunConfig(model=ModelConfig(latent=4), train=TrainConfig(epochs=2, batch_size=50, train_subset=200,
                                                                  eval_subset=100, device="cpu", precision="fp32"))

    def stop(row):
        raise KeyboardInterrupt  # after epoch 1's checkpoint

    if executor:  # as a Ray task sets it: the threads are Ray's to give
        monkeypatch.setenv("FASHIONAE_EXECUTOR", executor)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            execute(cfg, tmp_path / "run", data=tiny, log=lambda m: None, on_epoch=stop)
        torch.set_num_threads(1)
        messages = []
        execute(cfg, tmp_path / "run", data=tiny, log=messages.append)
    finally:
        torch.set_num_threads(threads)
    assert any("it started on 2 threads and resumes on 1" in m and f"({exactly} resumes it exactly)" in m
               for m in messages), messages
    # its provenance keeps both sessions, so the report says where the result moved
    from fashionae.results import _run_info
    from fashionae.runfolder import RunFolder
    assert [s["threads"] for s in RunFolder(tmp_path / "run").sessions()] == [2, 1]
    assert _run_info("run", RunFolder(tmp_path / "run"))["threads"] == "2 → 1"


def test_a_run_of_two_processes_resumed_on_one_is_refused_and_its_record_kept(tiny, tmp_path):
    """A checkpoint of torchrun's processes resumes only on as many: refused before the run's
    record (config.json) is rewritten, so the next, right resume still knows its first session."""
    from fashionae.runs import RunConfig, execute
    from fashionae.runfolder import RunFolder
    from fashionae.training import TrainConfig
    cfg = RunConfig(model=ModelConfig(latent=4), train=TrainConfig(epochs=2, batch_size=50, train_subset=200,
                                                                  eval_subset=100, device="cpu", precision="fp32"))

    def stop(row):
        raise KeyboardInterrupt  # after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        execute(cfg, tmp_path / "run", data=tiny, log=lambda m: None, on_epoch=stop)
    config = RunFolder(tmp_path / "run").raw_config()
    config["environment"]["processes"] = 2  # as torchrun's two processes record it
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    messages = []
    with pytest.raises(UserError, match=r"^.*run was trained on 2 processes, and this command runs 1; resume it under "
                                        r"torchrun with 2 processes in all \(--nproc-per-node 2 on one machine\)$"):
        execute(cfg, tmp_path / "run", data=tiny, log=messages.append)
    assert RunFolder(tmp_path / "run").raw_config() == config
    assert not any("threads" in m for m in messages)


def test_the_commit_recorded_is_fashionaes_own_not_that_of_a_repository_it_is_installed_in(tmp_path, monkeypatch):
    """A package installed into a virtual environment inside another project's repository: that
    repository's commit says nothing of fashionae's code, so none is recorded."""
    from fashionae import runs
    other = tmp_path / "project"
    package = other / ".venv" / "site-packages" / "fashionae"
    package.mkdir(parents=True)
    (other / "notes.txt").write_text("the user's project\n")
    git = ["git", "-C", str(other), "-c", "user.name=u", "-c", "user.email=u@example.org"]
    for args in (["init", "-q"], ["add", "notes.txt"], ["commit", "-q", "-m", "theirs"]):
        subprocess.run(git + args, check=True, capture_output=True)
    (package / "runs.py").write_text("")
    monkeypatch.setattr(runs, "__file__", str(package / "runs.py"))
    assert runs.git_commit() is None
    fresh = tmp_path / "fresh" / "fashionae"  # a repository without a commit yet
    fresh.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(fresh.parent)], check=True, capture_output=True)
    (fresh / "runs.py").write_text("")
    subprocess.run(["git", "-C", str(fresh.parent), "add", "."], check=True, capture_output=True)
    monkeypatch.setattr(runs, "__file__", str(fresh / "runs.py"))
    assert runs.git_commit() is None
    monkeypatch.setattr(runs, "__file__", str(package / "runs.py"))
    subprocess.run(git + ["add", "-f", ".venv"], check=True, capture_output=True)  # its own checkout: recorded
    subprocess.run(git + ["commit", "-q", "-m", "ours"], check=True, capture_output=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert runs.git_commit() == head
    (package / "runs.py").write_text("# changed\n")
    assert runs.git_commit() == head + "+dirty"
    (other / "notes.txt").write_text("changed too, outside the package\n")
    (package / "runs.py").write_text("")
    assert runs.git_commit() == head
