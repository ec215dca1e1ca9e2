"""Scale out: a study's runs as Ray tasks (``--executor ray``) and one run on several
processes (torchrun). Ray starts once for the module, on this machine, with four logical
CPUs and one logical GPU (so that four runs at a quarter of a GPU can be scheduled at once)."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fashionae import ray_executor
from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.pipeline import run_study
from fashionae.ray_executor import RayExecutor
from fashionae.runs import evaluate_run
from fashionae.study import load_study
from helpers import QUIET, extra_or_skip, read_metrics, same_weights, write_dataset



@pytest.fixture(scope="module")
def cluster():
    """Ray on this machine, as a module; the torchrun tests below need no Ray and run without it."""
    (ray,) = extra_or_skip("ray", "ray")
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """The local executor at one torch thread: what each Ray task gets with --cpus-per-run 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_study(tmp_path, seeds: int = 1, epochs: int = 3, keep_state: bool = False):
    path = tmp_path / "tiny.toml"
    path.write_text(f'name = "tiny"\nseeds = {seeds}\n'
                    f"[train]\nepochs = {epochs}\nbatch_size = 50\ntrain_subset = 400\neval_subset = 300\n"
                    f"keep_state = {str(keep_state).lower()}\n"
                    '[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
                    "[baselines]\nenabled = false\n")
    return load_study(path, None)


def numbers(results: dict):
    """results.json without what differs from one execution to the next: timings, and the
    provenance of each run (executor, threads, host)."""
    if isinstance(results, dict):
        return {k: numbers(v) for k, v in results.items()
                if "second" not in k and k not in ("timing", "runs", "evidence")}
    if isinstance(results, list):
        return [numbers(v) for v in results]
    return results


# ------------------------------------------------------------------ --executor ray

def test_ray_executor_gives_the_local_executors_numbers(cluster, one_thread, data_dir, tmp_path, capsys):
    # two autoencoders, and classifiers that wait for the better one: a task that needs others
    study = tmp_path / "two.toml"
    study.write_text('name = "two"\nseeds = 1\n[train]\nepochs = 1\nbatch_size = 50\ntrain_subset = 400\n'
                     'eval_subset = 300\n[[autoencoders]]\nname = "a"\narch = "linear"\nlatent = 16\n'
                     '[[autoencoders]]\nname = "b"\narch = "conv"\n[classifiers]\nencoder = "best"\n'
                     'strategies = ["frozen", "finetune"]\n[baselines]\nenabled = false\n')
    args = ["study", str(study), "--data-dir", str(data_dir), "--no-verify"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray", "--cpus-per-run", "1"]) == 0
    log = capsys.readouterr().err
    local, distributed = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("local", "ray"))
    assert numbers(distributed) == numbers(local)
    assert {r["executor"] for r in distributed["runs"]} == {"ray"}
    assert distributed["timing"]["executor"].startswith("ray (local, 4 CPUs")
    assert log.count(" done on ") == 4  # one line per finished run, with its node
    assert len(distributed["classifiers"]) == 2
    provenance = (tmp_path / "ray" / "report.md").read_text().split("## Provenance")[1]
    assert "| executor | ray (local" in provenance and "| ray |" in provenance


def test_a_ray_study_trains_on_with_extend_as_the_local_executor_does(cluster, one_thread, data_dir, tmp_path, capsys):
    """A study asked for more epochs, --extend under Ray: the run is trained on from its kept
    state in a task, and comes out as a local study of that many epochs from the start."""
    kw = dict(data_dir=str(data_dir), verify=False, **QUIET)
    run_study(tiny_study(tmp_path, epochs=1, keep_state=True), tmp_path / "ray", **kw)
    run_study(tiny_study(tmp_path, epochs=2, keep_state=True), tmp_path / "ray", data_dir=str(data_dir), verify=False,
              executor=RayExecutor(), extend=True, log=print)
    assert ", trained on from its kept state (1/1 runs)" in capsys.readouterr().out
    run_study(tiny_study(tmp_path, epochs=2), tmp_path / "local", **kw)
    model = Path("runs", "ae-a-seed0", "model.safetensors")
    assert (tmp_path / "ray" / model).read_bytes() == (tmp_path / "local" / model).read_bytes()


def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(cluster, one_thread, data_dir, tmp_path):
    study = tiny_study(tmp_path)
    record, killed = tmp_path / "epochs.txt", tmp_path / "killed"

    def kill_once(run, row):  # in the task, after the epoch's checkpoint is written
        import os, signal  # noqa: E401 (runs in the Ray worker)
        with open(record, "a") as f:
            f.write(f"{row['epoch']} {os.getpid()}\n")
        if not os.path.exists(killed):
            open(killed, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)

    lines = []
    run_study(study, tmp_path / "ray", str(data_dir), False, log=lines.append,
              executor=RayExecutor(on_epoch=kill_once))
    epochs = [line.split() for line in record.read_text().splitlines()]
    assert [e for e, _ in epochs] == ["1", "2", "3"]  # epoch 1 is not trained again
    assert epochs[0][1] != epochs[1][1] == epochs[2][1]  # by a new worker
    assert any("resumed from its checkpoint" in line for line in lines)
    # what the worker said of the run reaches the driver (Ray keeps the workers' output apart),
    # but not twice that it resumed
    assert "ae-a seed 0: resuming from its last finished epoch" not in lines
    run_study(study, tmp_path / "local", str(data_dir), False, **QUIET)
    a, b = (tmp_path / d / "runs" / "ae-a-seed0" for d in ("ray", "local"))
    assert read_metrics(a) == read_metrics(b)  # the interruption changed nothing
    assert same_weights(a / "model.safetensors", b / "model.safetensors")


def test_four_runs_share_one_gpu_at_a_quarter_each(cluster, data_dir, tmp_path):
    """Ray must run the four at once: each waits in its first epoch until all four are there."""
    study = tiny_study(tmp_path, seeds=4, epochs=1)
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()

    def meet(run, row):
        import json, time  # noqa: E401 (runs in the Ray worker)
        import ray as worker_ray
        ctx = worker_ray.get_runtime_context()
        (rendezvous / run.name).write_text(json.dumps({"resources": ctx.get_assigned_resources(),
                                                       "gpus": worker_ray.get_gpu_ids()}))
        deadline = time.monotonic() + 120
        while len(list(rendezvous.iterdir())) < 4:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(list(rendezvous.iterdir()))} of 4 runs were scheduled at once")
            time.sleep(0.2)

    run_study(study, tmp_path / "ray", str(data_dir), False,
              executor=RayExecutor(cpus_per_run=1, gpus_per_run=0.25, on_epoch=meet), **QUIET)
    seen = [json.loads(p.read_text()) for p in sorted(rendezvous.iterdir())]
    assert len(seen) == 4
    assert all(s == {"resources": {"CPU": 1.0, "GPU": 0.25}, "gpus": [0]} for s in seen)


def test_ctrl_c_cancels_what_is_left_and_keeps_what_is_finished(cluster, data_dir, tmp_path, monkeypatch):
    study = tiny_study(tmp_path, seeds=3, epochs=1)
    ray = cluster
    real_wait, real_cancel, waits, cancelled = ray.wait, ray.cancel, [], []

    def interrupted_after_one_run(pending, **kw):
        waits.append(len(pending))
        if len(waits) == 2:  # Ctrl-C once the first run is done
            raise KeyboardInterrupt
        return real_wait(pending, **kw)

    monkeypatch.setattr(ray, "wait", interrupted_after_one_run)
    monkeypatch.setattr(ray, "cancel", lambda ref, force: cancelled.append(real_cancel(ref, force=force)))
    with pytest.raises(KeyboardInterrupt):
        run_study(study, tmp_path / "ray", str(data_dir), False, executor=RayExecutor(), **QUIET)
    assert waits == [3, 2] and len(cancelled) == 2  # the two runs not finished then
    finished = [p for p in (tmp_path / "ray" / "runs").iterdir() if (p / "summary.json").exists()]
    assert finished and all((p / "model.safetensors").is_file() for p in finished)


def test_a_run_out_of_memory_is_one_line_naming_it(cluster, data_dir, tmp_path):
    """Out of memory (expected where --gpus-per-run packs runs on a GPU) is one line, as under the
    local executor, with the run it struck, not Ray's remote traceback."""
    def out_of_memory(run, row):
        if row["epoch"] >= 2:  # its checkpoint written: each time, one epoch further
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    study = tiny_study(tmp_path, epochs=3)
    for cpus in (1, 2):  # the second time it resumes on 2 threads, and says so before it fails again
        lines = []
        with pytest.raises(UserError, match=r"^ae-a seed 0: out of memory \(CUDA out of memory. Tried to allocate 2.00 "
                                            r"GiB\); use a smaller latent, .* \(under Ray: fewer runs per GPU, a larger "
                                            r"--gpus-per-run\)$"):
            run_study(study, tmp_path / "ray", str(data_dir), False, log=lines.append,
                      executor=RayExecutor(cpus_per_run=cpus, on_epoch=out_of_memory))
    # what the run said before it failed reaches the driver too
    assert any(line.startswith("ae-a seed 0: it started on 1 thread and resumes on 2") for line in lines), lines


def test_sigterm_stops_a_ray_study_in_one_line_and_keeps_its_runs(data_dir, tmp_path):
    """Ray's driver installs its own SIGTERM handler, which aborted with a crash report (a
    cluster's scancel, a time limit): fashionae's is put back. The stop comes while a run trains
    (its 5,000 epochs take minutes), not once it ends."""
    extra_or_skip("ray", "ray")
    tiny_study(tmp_path, seeds=1, epochs=5000)
    src = str(Path(__file__).parent.parent / "src")
    proc = subprocess.Popen([sys.executable, "-m", "fashionae", "study", str(tmp_path / "tiny.toml"), "--out",
                             str(tmp_path / "out"), "--data-dir", str(data_dir), "--no-verify", "--executor", "ray"],
                            env={**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"},
                            stderr=subprocess.PIPE, text=True)
    before = []
    for line in proc.stderr:
        if "as Ray tasks" in line:
            break
        before.append(line)
    # Ray's note that the local cluster it starts has token authentication (its default) is not shown
    assert not [line for line in before if "WARNING" in line], before
    proc.send_signal(subprocess.signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, rest[-2000:]
    assert rest.strip().splitlines()[-1] == ("fashionae: terminated; finished epochs are kept, run the same "
                                             "command to resume")
    assert not list((tmp_path / "out" / "runs").glob("*/summary.json"))


def test_a_node_that_cannot_see_the_study_folder_is_refused(cluster, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_executor, "atomic_write", lambda path, data: None)  # no token to read
    with pytest.raises(UserError, match=r"node\(s\) .* cannot see the study folder"):
        run_study(tiny_study(tmp_path), tmp_path / "ray", str(data_dir), False,
                  executor=RayExecutor(), **QUIET)
    assert not (tmp_path / "ray" / "runs").exists()  # nothing ran


def test_bad_executor_settings(cluster, monkeypatch):
    with pytest.raises(UserError, match="--cpus-per-run must be at least 1"):
        RayExecutor(cpus_per_run=0)
    for bad in (1.5, float("inf"), float("nan"), 0.00001):
        with pytest.raises(UserError, match="--gpus-per-run must be a fraction"):
            RayExecutor(gpus_per_run=bad)
    with pytest.raises(UserError, match="no node of the Ray cluster has 1 CPU\\(s\\) and 2 GPU"):
        RayExecutor(gpus_per_run=2).usable_nodes(cluster)
    monkeypatch.setitem(sys.modules, "ray", None)  # not installed
    with pytest.raises(UserError, match=r"--executor ray needs ray.*pip install 'fashionae\[ray\]'"):
        RayExecutor()([], {}, None, Path("."), None, print)


def joining_head(monkeypatch, init):
    """A stand-in for ray whose ``init`` is given, and an executor that joins "head:6379" (which
    answers on its port), no RAY_AUTH_MODE set."""
    from types import SimpleNamespace
    monkeypatch.setattr(ray_executor, "_reachable", lambda address: None)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    executor = RayExecutor.__new__(RayExecutor)
    executor.address = "head:6379"
    return SimpleNamespace(is_initialized=lambda: False, init=init), executor


def test_a_cluster_that_refuses_us_names_token_authentication(monkeypatch):
    """A running cluster that wants a token answers on its port, then refuses: the line says
    what to set, unless it is set already."""
    def refuse(**kwargs):
        raise ConnectionError("Failed to connect to GCS")
    ray, executor = joining_head(monkeypatch, refuse)
    with pytest.raises(UserError, match=r"^cannot join the Ray cluster at head:6379 \(Failed to connect to GCS\); "
                                        r".*check --address; a cluster with token authentication .* needs "
                                        r"RAY_AUTH_MODE=token and its token here too \(docs/scale-out.md\)$"):
        executor.connect(ray)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(UserError, match=r"check --address$"):
        executor.connect(ray)


def test_a_refused_token_is_said_in_one_line_for_rays_twenty(monkeypatch, capfd):
    """Ray's C++ says each of its 20 tries to join a cluster that refuses the token on the
    process's stderr (file descriptor 2): held while it tries, the refusal is said once, by its
    cause; joined, whatever Ray said is shown."""
    refusal = b"[W gcs_client.cc:210] Failed to get cluster ID from GCS server: Unauthenticated: InvalidAuthToken\n"

    def refuse(**kwargs):
        for _ in range(20):
            os.write(2, refusal)
        raise ConnectionError("Failed to connect to Ray cluster")
    ray, executor = joining_head(monkeypatch, refuse)
    with pytest.raises(UserError) as refused:
        executor._init(ray, {})
    assert str(refused.value) == ("cannot join the Ray cluster at head:6379: it asks for a token (Ray's token "
                                  "authentication), and none was given: set RAY_AUTH_MODE=token and give its token "
                                  "here (docs/scale-out.md)")
    assert capfd.readouterr().err == ""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(UserError, match="and this one is not its: set RAY_AUTH_MODE=token"):
        executor._init(ray, {})
    ray.init = lambda **kwargs: os.write(2, b"a note of Ray's\n")  # joined: its words shown
    executor._init(ray, {})
    assert capfd.readouterr().err == "a note of Ray's\n"


def test_a_stop_as_ray_starts_is_said_as_ours_and_takes_its_processes_with_it():
    """A SIGTERM while ray.init runs meets the handler Ray sets (sys.exit(15): no line, status 15),
    and a stop there left Ray's processes running after the driver: it is fashionae's SIGTERM,
    and Ray is shut down."""
    import signal
    from types import SimpleNamespace
    from fashionae.errors import Terminated
    for stop, raised in ((SystemExit(signal.SIGTERM), Terminated), (KeyboardInterrupt(), KeyboardInterrupt)):
        shut = []

        def stopped(**kwargs):
            raise stop
        ray = SimpleNamespace(is_initialized=lambda: False, init=stopped, shutdown=lambda: shut.append(1))
        executor = RayExecutor.__new__(RayExecutor)
        executor.address = None
        with pytest.raises(raised):
            executor.connect(ray)
        assert shut == [1]


# ------------------------------------------------------------------ torchrun

def torchrun(*args: str) -> subprocess.CompletedProcess:
    src = str(Path(__file__).parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "fashionae", *args], env=env, capture_output=True, text=True, timeout=180)


def test_the_wait_for_torchruns_others_leaves_a_scripts_signals_and_descriptors_as_they_were(monkeypatch):
    """fashionae used as a library (a script with its own SIGTERM handler, asyncio's wakeup
    descriptor): the wait neither takes the script's signals nor ends its process; under the
    program's own handlers, a stop raised as the wait ends leaves no descriptor or watcher behind."""
    import signal
    import socket
    import threading
    from datetime import timedelta

    from fashionae import distributed, errors
    theirs, ours = socket.socketpair()
    ours.setblocking(False)
    before = signal.set_wakeup_fd(ours.fileno())
    try:
        with distributed._stoppable_wait(0, 2, timedelta(seconds=1)):  # (SIGTERM is not errors._terminate)
            during = signal.set_wakeup_fd(ours.fileno())
        assert during == ours.fileno()
        monkeypatch.setattr(distributed, "stops_are_ours", lambda: True)
        fds = set(os.listdir("/proc/self/fd"))
        restore = signal.set_wakeup_fd

        def interrupted(fd, **kw):  # a Ctrl-C that lands as the wakeup descriptor is put back
            previous = restore(fd, **kw)
            if fd == ours.fileno():
                raise KeyboardInterrupt
            return previous
        monkeypatch.setattr(distributed.signal, "set_wakeup_fd", interrupted)
        with pytest.raises(KeyboardInterrupt):
            with distributed._stoppable_wait(0, 2, timedelta(seconds=1)):
                pass
        monkeypatch.undo()
        assert set(os.listdir("/proc/self/fd")) == fds and signal.set_wakeup_fd(ours.fileno()) == ours.fileno()
        assert not [t for t in threading.enumerate() if getattr(t, "_target", None) is distributed._watch]
    finally:
        signal.set_wakeup_fd(before)
        theirs.close(), ours.close()
    assert errors.stops_are_ours() is False


def test_a_process_waiting_for_torchruns_others_stops_at_a_ctrl_c_or_sigterm(data_dir, tmp_path):
    """torch waits for the group's other processes in C++, where Python's signal handlers cannot
    run: with torchrun's variables left over (no other process will come), a Ctrl-C or SIGTERM did
    nothing for 30 minutes. Process 0 (waiting for the others to call) and process 1 (calling
    one that does not answer) each stop in their one line, and write nothing: process 1 says its
    Ctrl-C too where torchrun did not start it (under torchrun, process 0 says it for all)."""
    import signal
    import socket
    import time
    src = str(Path(__file__).parent.parent / "src")
    for rank, sig, agent in ((0, signal.SIGINT, False), (1, signal.SIGTERM, False), (1, signal.SIGINT, False),
                             (1, signal.SIGINT, True)):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            port = listener.getsockname()[1]
            if rank == 1:  # process 0's address, where nothing answers once called
                listener.listen()
            else:
                listener.close()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
                   "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            env.pop("TORCHELASTIC_RUN_ID", None)
            if agent:  # torchrun's own process: its Ctrl-C reached every process, and process 0 says it
                env["TORCHELASTIC_RUN_ID"] = "j"
            proc = subprocess.Popen([sys.executable, "-m", "fashionae", "train-ae", "--epochs", "1", "--data-dir",
                                     str(data_dir), "--no-verify", "--out", str(tmp_path / "ae")],
                                    env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            try:
                if rank == 1:
                    listener.settimeout(60)
                    listener.accept()[0].close()  # it called: it waits in torch now
                else:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:  # until it listens for the others
                        with socket.socket() as probe:
                            if probe.connect_ex(("127.0.0.1", port)) == 0:
                                break
                        time.sleep(0.1)
                time.sleep(0.3)
                proc.send_signal(sig)
                _, err = proc.communicate(timeout=30)
            finally:
                proc.kill()
        said = ("" if rank == 0 else "process 1 of 2: ") + ("interrupted" if sig == signal.SIGINT else "terminated")
        said = [] if agent else [f"fashionae: {said}"]  # (torch's C++ notes of the closed call aside)
        assert (proc.returncode, [line for line in err.splitlines() if "fashionae:" in line]) == (128 + sig, said), err
        assert "Traceback" not in err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given, said", [
    ((["--latent", "16"], ["--latent", "32"]), "model.latent 16 on process 0, 32 on process 1"),
    ((["--batch-size", "100"], ["--batch-size", "101"]), "train.batch_size 100 on process 0, 101 on process 1"),
    ((["--extend"], []), "--extend True on process 0, False on process 1"),
    ((["--keep-state"], []), None)])  # not a setting of its numbers: process 0 alone writes the folder
def test_processes_started_by_hand_with_different_settings_are_refused_before_anything_is_written(
        given, said, data_dir, tmp_path):
    """Two processes a batch script started by hand (torchrun's variables, no torchrun), given
    different settings: each stops in one line naming what differs, before the folder is made
    (process 1 met DDP's "internal error" of tensor sizes before, or its own batch-size error while
    process 0 said a process was lost). A setting that does not change the numbers may differ."""
    import socket
    src = str(Path(__file__).parent.parent / "src")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    procs = []
    for rank, options in enumerate(given):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        env.pop("TORCHELASTIC_RUN_ID", None)
        procs.append(subprocess.Popen([sys.executable, "-m", "fashionae", "train-ae", *COMMON, "--epochs", "1",
                                       "--latent", "16", *options, "--data-dir", str(data_dir),
                                       "--out", str(tmp_path / "ae")],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      cwd=tmp_path))
    try:
        errs = [proc.communicate(timeout=60)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    if said is None:
        assert [proc.returncode for proc in procs] == [0, 0], errs
        assert (tmp_path / "ae" / "summary.json").is_file()
        return
    said = (f"fashionae: error: the 2 processes were given different runs ({said}); start every process with the "
            "same command, on machines alike (or with --device and --precision given)")
    assert [proc.returncode for proc in procs] == [2, 2], errs
    # (torchrun did not start process 1: it says its own; process 0 may have said it waits for it)
    assert [err.strip().splitlines()[-1] for err in errs] == [said, said]
    assert all(err.count("error:") == 1 and "Traceback" not in err for err in errs), errs
    assert list(tmp_path.iterdir()) == []


def test_what_differs_between_processes_is_named_three_at_most():
    """``refuse_other_settings``: the first process that differs from process 0, by up to three
    settings and how many more; the same settings everywhere pass."""
    from types import SimpleNamespace
    from fashionae.runs import refuse_other_settings
    same = {"model.latent": 16, "train.lr": 0.001, "train.seed": 0, "train.epochs": 2, "--extend": False}
    everyone = lambda *given: SimpleNamespace(world=len(given), gather_object=lambda mine: list(given))  # noqa: E731
    refuse_other_settings(everyone(same, same, same), same)
    other = {k: (v + 1 if k != "--extend" else True) for k, v in same.items()}
    with pytest.raises(UserError, match=r"^the 3 processes were given different runs \(model.latent 16 on process 0, "
                                        r"17 on process 2; train.lr 0.001 on process 0, 1.001 on process 2; "
                                        r"train.seed 0 on process 0, 1 on process 2; and 2 more\); start every"):
        refuse_other_settings(everyone(same, same, other), same)


# 1,001 training images: the last batch has one image, which one process trains and the other
# stands in for (counted for nothing); 200 evaluation images: one batch, so one process has none
# (the classifier below evaluates 1,005: five batches, gathered back in order).
COMMON = ["--epochs", "2", "--train-subset", "1001", "--eval-subset", "200", "--batch-size", "100",
          "--device", "cpu", "--precision", "fp32", "--dropout", "0", "--no-verify"]


@pytest.mark.parametrize("command", [["train-ae", "--latent", "32"],  # the classifier's test set: 5 batches
                                     ["train-clf", "--strategy", "scratch", "--eval-subset", "1005"]])
def test_two_processes_follow_the_single_process_curve(tmp_path, command):
    data_dir = write_dataset(tmp_path / "data", n_train=1_300, n_test=1_005)
    args = [command[0], *COMMON, *command[1:], "--data-dir", str(data_dir)]
    done = torchrun(*args, "--out", str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(str(tmp_path / "two")) == 1  # process 0 alone reports
    assert "Grad strides do not match bucket view strides" not in done.stderr  # DDP's buckets fit every gradient
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    two, one = read_metrics(tmp_path / "two"), read_metrics(tmp_path / "one")
    assert [r.keys() for r in two] == [r.keys() for r in one] and len(two) == 2
    for a, b in zip(two, one):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["environment"]["processes"] == 2
    summary = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("two", "one")]
    if "confusion_matrix" in summary[1]:  # the test predictions, gathered in the labels' order
        assert summary[0]["confusion_matrix"] == summary[1]["confusion_matrix"]


def test_batch_norm_on_the_cpu_evaluates_the_model_it_saves(tmp_path):
    """Each process normalises its own slices in training; its figures must still be those of
    process 0's model, the one saved (its running statistics), as `eval` gives them."""
    data_dir = write_dataset(tmp_path / "data", n_train=1_300, n_test=1_005)
    # a last batch of two halves, so the processes' statistics differ after it; a test set of 5
    # evaluation batches, 2 of them process 1's
    args = ["train-ae", *COMMON, "--encoder-type", "strong", "--latent", "16", "--epochs", "1",
            "--train-subset", "1000", "--eval-subset", "1005", "--data-dir", str(data_dir), "--out", str(tmp_path / "two")]
    done = torchrun(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    figures = {name: r["loss"] for name, r, _ in evaluate_run(tmp_path / "two", "cpu", str(data_dir), False)}
    assert figures["validation"] == pytest.approx(summary["val_loss"], rel=1e-6)
    assert figures["test"] == pytest.approx(summary["test_loss"], rel=1e-6)  # 3e-4 apart without the sync


# ------------------------------------------------------------------ what the tests above do not reach

def test_ray_started_by_the_study_is_shut_down_even_when_it_refuses_and_a_joined_one_is_left(monkeypatch):
    """The Ray a study starts on this machine goes with it, however it ends (here: no node has
    room); one this process had joined already is left running. It starts with this machine's CPUs."""
    from types import SimpleNamespace
    for joined in (False, True):
        shut, inits = [], []
        fake = SimpleNamespace(is_initialized=lambda: joined, init=lambda **kw: inits.append(kw),
                               shutdown=lambda: shut.append(1), cluster_resources=lambda: {"CPU": 0.5},
                               nodes=lambda: [{"NodeID": "n0", "Alive": True, "Resources": {"CPU": 0.5}}])
        monkeypatch.setitem(sys.modules, "ray", fake)
        with pytest.raises(UserError, match="no node of the Ray cluster has 1 CPU"):
            RayExecutor()([], {}, None, Path("."), None, print)
        assert shut == ([] if joined else [1])
        if not joined:
            assert inits[0]["address"] == "local" and inits[0]["num_cpus"] == len(os.sched_getaffinity(0))


def test_a_run_goes_only_to_alive_nodes_with_room_for_it():
    from types import SimpleNamespace
    extra_or_skip("ray", "ray")
    nodes = [{"NodeID": "dead", "Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0}},
             {"NodeID": "just", "Alive": True, "Resources": {"CPU": 2.0, "GPU": 0.5}},
             {"NodeID": "small", "Alive": True, "Resources": {"CPU": 1.0, "GPU": 1.0}}]
    usable = RayExecutor(cpus_per_run=2, gpus_per_run=0.5).usable_nodes(SimpleNamespace(nodes=lambda: nodes))
    assert [n["NodeID"] for n in usable] == ["just"]


def test_a_negative_share_of_a_gpu_is_refused():
    extra_or_skip("ray", "ray")
    with pytest.raises(UserError, match="--gpus-per-run must be a fraction"):
        RayExecutor(gpus_per_run=-0.5)


def test_an_address_nobody_answers_at_is_one_line_without_waiting_on_ray(monkeypatch):
    """ray.init retries an address nobody answers for minutes: a closed port, a host that does
    not resolve, are one line at once; "auto" is Ray's to find."""
    import socket
    from types import SimpleNamespace
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    for address in (closed, "nonexistent.invalid:6379"):
        ray = SimpleNamespace(is_initialized=lambda: False,
                              init=lambda **kw: pytest.fail("ray.init was called for an address nobody answers at"))
        executor = RayExecutor.__new__(RayExecutor)
        executor.address = address
        with pytest.raises(UserError, match=rf"^cannot join the Ray cluster at {address} \(.*\); .*check --address$"):
            executor.connect(ray)
    ray_executor._reachable("auto")  # (no error)


def test_a_ray_task_runs_on_the_threads_and_gpus_it_was_given(tmp_path, monkeypatch, one_thread):
    from types import SimpleNamespace
    from fashionae.lock import FolderLock
    from fashionae.runs import EXECUTOR_ENV
    seen = []

    def planned(run, study, out, data, log, on_epoch, extend):
        seen.append((os.environ["CUDA_VISIBLE_DEVICES"], os.environ[EXECUTOR_ENV], torch.get_num_threads(), extend))
    monkeypatch.setattr(ray_executor, "run_planned", planned)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv(EXECUTOR_ENV, "local")
    run = SimpleNamespace(name="ae-a-seed0", label="ae-a seed 0")
    for gpus, extend in ((0.25, False), (0.0, True)):
        r = ray_executor.run_task(run, None, str(tmp_path), None, 2, gpus, extend, None)
        assert r["resumed"] is False and r["notes"] == []
    assert seen == [("0", "ray", 2, False), ("", "ray", 2, True)]  # a run given no GPU stays off them
    # a retry waits for the run folder's lock (a lost node's, on a shared filesystem) and gives up
    monkeypatch.setattr(ray_executor, "LOCK_WAIT", 0.2)
    held = FolderLock(tmp_path / "runs" / "ae-a-seed0").acquire()
    try:
        with pytest.raises(UserError):
            ray_executor.run_task(run, None, str(tmp_path), None, 1, 0.0, False, None)
    finally:
        held.release()
    assert len(seen) == 2


def test_a_ray_study_trains_only_the_runs_not_finished(cluster, data_dir, tmp_path):
    run_study(tiny_study(tmp_path, seeds=1, epochs=1), tmp_path / "ray", str(data_dir), False, **QUIET)
    kept = (tmp_path / "ray" / "runs" / "ae-a-seed0" / "summary.json").read_bytes()
    lines = []
    run_study(tiny_study(tmp_path, seeds=2, epochs=1), tmp_path / "ray", str(data_dir), False, log=lines.append,
              executor=RayExecutor())
    assert any(line.startswith("1 run(s) to train as Ray tasks") and line.endswith("; 1 finished already")
               for line in lines), lines
    assert any(line.startswith("ae-a seed 1: done on ") and line.endswith(" (2/2 runs)") for line in lines), lines
    assert (tmp_path / "ray" / "runs" / "ae-a-seed0" / "summary.json").read_bytes() == kept


def test_a_user_error_in_a_ray_run_is_one_line_naming_it(cluster, data_dir, tmp_path):
    def refuse(run, row):
        raise UserError("the hook refuses")

    with pytest.raises(UserError, match=r"^ae-a seed 0: the hook refuses$"):
        run_study(tiny_study(tmp_path, epochs=1), tmp_path / "ray", str(data_dir), False,
                  executor=RayExecutor(on_epoch=refuse), **QUIET)


def test_what_a_ray_run_says_of_its_result_reaches_the_driver(cluster, data_dir, tmp_path):
    """Not only before an error: a run resumed on other threads says so, and it finishes."""
    def out_of_memory(run, row):
        if row["epoch"] >= 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    study = tiny_study(tmp_path, epochs=2)
    with pytest.raises(UserError, match="out of memory"):
        run_study(study, tmp_path / "ray", str(data_dir), False, executor=RayExecutor(on_epoch=out_of_memory), **QUIET)
    lines = []
    run_study(study, tmp_path / "ray", str(data_dir), False, log=lines.append, executor=RayExecutor(cpus_per_run=2))
    assert any(line.startswith("ae-a seed 0: it started on 1 thread and resumes on 2") for line in lines), lines
    assert any(line.endswith("resumed from its checkpoint (1/1 runs)") for line in lines), lines


def test_a_run_that_loses_its_worker_more_often_than_ray_retries_is_one_line(cluster, data_dir, tmp_path, monkeypatch):
    def killed(run, row):
        import os, signal  # noqa: E401 (runs in the Ray worker)
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(ray_executor, "RETRIES", 0)
    with pytest.raises(UserError, match=r"^ae-a seed 0: lost its Ray worker 1 times \(\w+\); finished runs are kept"):
        run_study(tiny_study(tmp_path, epochs=1), tmp_path / "ray", str(data_dir), False,
                  executor=RayExecutor(on_epoch=killed), **QUIET)


def test_the_storage_check_leaves_nothing_behind_and_refuses_another_version_or_no_fashionae(cluster, tmp_path,
                                                                                              monkeypatch):
    from fashionae.studyfolder import StudyFolder
    folder = StudyFolder(tmp_path)
    nodes = RayExecutor().usable_nodes(cluster)
    ray_executor.check_nodes(cluster, folder, nodes)
    assert list(tmp_path.iterdir()) == []  # the token it wrote is gone
    monkeypatch.setattr(ray_executor, "__version__", "0.0.1")
    with pytest.raises(UserError, match=r"^Ray node .* runs fashionae \S+, this driver 0.0.1; install the same"):
        ray_executor.check_nodes(cluster, folder, nodes)

    def no_fashionae(path, token):
        raise ImportError("No module named 'fashionae'")
    monkeypatch.setattr(ray_executor, "node_check", no_fashionae)
    with pytest.raises(UserError, match=r"^Ray node .* cannot run fashionae \(.*No module named 'fashionae'.*\); "
                                        r"install fashionae 0.0.1 on every node$"):
        ray_executor.check_nodes(cluster, folder, nodes)
    assert list(tmp_path.iterdir()) == []


def test_joining_torchruns_group_takes_each_variable_for_what_it_means(monkeypatch):
    """Process 3 of 4 on two nodes of two GPUs: RANK is its place in the group, LOCAL_RANK its
    GPU on this node; the group is joined once, with nccl on CUDA and gloo on the CPU, and left at exit."""
    import torch.distributed as td
    from fashionae import distributed
    from fashionae.distributed import Dist
    joined, devices, at_exit = [], [], []
    monkeypatch.setattr(td, "is_initialized", lambda: bool(joined))
    monkeypatch.setattr(td, "init_process_group", lambda backend, timeout: joined.append(backend))
    monkeypatch.setattr(distributed.atexit, "register", at_exit.append)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", devices.append)
    for k, v in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(k, v)
    assert distributed.from_environment("cpu") == Dist(3, 4)
    assert (joined, devices, at_exit) == (["gloo"], [], [distributed._leave_process_group])
    assert distributed.from_environment("cpu") == Dist(3, 4) and joined == ["gloo"]  # not joined twice
    joined.clear()
    assert distributed.from_environment("cuda") == Dist(3, 4)
    assert (joined, devices) == (["nccl"], [1])
    monkeypatch.setenv("LOCAL_RANK", "2")  # three processes on a node of two GPUs
    with pytest.raises(UserError, match=r"^torchrun started 4 processes but this node has 2 GPU\(s\); "
                                        r"use --nproc-per-node 2$"):
        distributed.from_environment("cuda")
    assert devices == [1]


def test_leaving_the_process_group_at_exit(tmp_path):
    import torch.distributed as td
    from fashionae.distributed import _leave_process_group
    _leave_process_group()  # never joined (a process stopped before the group formed): nothing to leave
    td.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        _leave_process_group()
        assert not td.is_initialized()
    finally:
        if td.is_initialized():
            td.destroy_process_group()


def test_batch_norm_is_synchronised_under_torchrun_on_cuda_alone():
    from types import SimpleNamespace
    from fashionae.distributed import Dist, sync_batchnorm

    class OnCuda(torch.nn.Sequential):  # what sync_batchnorm sees of a model on a GPU
        def parameters(self, recurse=True):
            yield SimpleNamespace(device=torch.device("cuda"))

    for model, dist, synced in ((OnCuda(torch.nn.BatchNorm2d(2)), Dist(0, 2), True),
                                (OnCuda(torch.nn.BatchNorm2d(2)), Dist(), False),
                                (torch.nn.Sequential(torch.nn.BatchNorm2d(2)), Dist(0, 2), False)):
        assert isinstance(sync_batchnorm(model, dist)[0], torch.nn.SyncBatchNorm) == synced


def test_the_local_executor_runs_what_is_left_in_order_and_draws_its_progress(data_dir, tmp_path, monkeypatch):
    """run_local, its runs' training stood in for: the runs not finished, in plan order, each
    under its label and its state's extend, the subsets not said again; on a terminal the status
    line counts the epochs a run to train on has already and shows the step reached, and is
    cleared when a run stops the study (a Ctrl-C here); the runs finished are said in the log."""
    import io
    import shutil
    from fashionae import executors
    from fashionae.datasets import load_dataset
    from fashionae.plan import make_plan
    from fashionae.progress import ERASE_LINE
    from fashionae.runfolder import RunFolder

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    study = tiny_study(tmp_path, seeds=3, epochs=2)
    plan, data = make_plan(study), load_dataset(study.dataset, str(data_dir), False)
    calls, lines = [], []

    def execute(resolved, path, *, data, label, log, on_epoch, on_step, say_subsets, extend):
        calls.append((label, say_subsets, extend))
        on_step(4, 4)  # the last step of an epoch: always drawn
        on_epoch({"epoch": 1, "seconds": 1.0})
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"seconds_total": 1.0}

    monkeypatch.setattr(executors, "execute", execute)
    monkeypatch.setattr(sys, "stderr", screen := Terminal())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(shutil, "get_terminal_size", lambda: os.terminal_size((400, 20)))  # (not $COLUMNS's width)
    monkeypatch.setattr(RunFolder, "epochs_trained", lambda folder: 1)  # the run to train on: 1 epoch of its 2
    states = {plan[0].name: "complete", plan[1].name: "extend", plan[2].name: "new"}
    with pytest.raises(KeyboardInterrupt):
        executors.run_local(plan, states, study, tmp_path / "out", data, lines.append)
    assert calls == [(plan[1].label, False, True), (plan[2].label, False, False)]
    assert lines == [f"{plan[1].label}: done (2/3 runs, 1 s)"]
    assert screen.getvalue().startswith(f"{ERASE_LINE}1/3 runs,  50% done, time left unknown yet · {plan[1].label}")
    assert f"{plan[2].label}, epoch 1/2, evaluating" in screen.getvalue()
    assert screen.getvalue().endswith(ERASE_LINE)


def test_the_storage_check_runs_on_each_node_and_nowhere_else(tmp_path):
    """Each node's probe is pinned to that node (not a soft affinity, which Ray may place on
    another node where the one asked for is busy or gone: the check would read another node's disk)."""
    from types import SimpleNamespace
    from fashionae.studyfolder import StudyFolder
    extra_or_skip("ray", "ray")
    pinned = []

    def remote(function):
        def options(num_cpus, scheduling_strategy):
            pinned.append((num_cpus, scheduling_strategy.node_id, scheduling_strategy.soft))
            return SimpleNamespace(remote=function)
        return SimpleNamespace(options=options)

    nodes = [{"NodeID": c * 56, "NodeManagerAddress": f"10.0.0.{i}"} for i, c in enumerate("ab")]
    ray_executor.check_nodes(SimpleNamespace(remote=remote, get=lambda answer: answer), StudyFolder(tmp_path), nodes)
    assert pinned == [(0, "a" * 56, False), (0, "b" * 56, False)]
    assert list(tmp_path.iterdir()) == []


def test_a_lost_peer_is_told_from_troubles_of_this_process_own():
    """torch.distributed's network error is a lost peer whatever it says; an error of the
    operating system's that reads the same (a download's connection reset) is not torchrun's."""
    import torch.distributed as td
    from fashionae.distributed import lost_process
    assert lost_process(td.DistNetworkError("Connection to 10.0.0.2:29500 failed. Retrying")) == \
        "Connection to 10.0.0.2:29500 failed"
    assert lost_process(ConnectionResetError(104, "Connection reset by peer")) is None


def test_a_run_of_two_processes_is_trained_on_under_torchrun_as_it_was_trained(tmp_path):
    """Process 0 alone reads the run folder (its state: here, a finished run to train on with
    --extend); every process takes its answer, and the run goes on on its two processes."""
    data_dir = write_dataset(tmp_path / "data", n_train=1_300, n_test=1_005)
    args = ["train-ae", *COMMON, "--latent", "8", "--keep-state", "--data-dir", str(data_dir),
            "--out", str(tmp_path / "two")]
    first = torchrun(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    again = torchrun(*args, "--epochs", "2", "--extend")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(read_metrics(tmp_path / "two")) == 2


def test_a_ray_task_brings_back_its_notes_but_not_its_epochs_nor_that_it_resumed(tmp_path, monkeypatch, one_thread):
    """The driver says each run's notes once it is done; its epochs and its resuming stay in
    the worker's log (the driver's own line says that it resumed)."""
    from types import SimpleNamespace
    from fashionae.runs import EXECUTOR_ENV, RESUMING, epoch_prefix
    run = SimpleNamespace(name="ae-a-seed0", label="ae-a seed 0")
    for name in (EXECUTOR_ENV, "CUDA_VISIBLE_DEVICES"):  # (a task sets them, for its process: put back after)
        monkeypatch.setenv(name, "")

    def planned(run, study, out, data, log, on_epoch, extend):
        for message in (f"{epoch_prefix(run.label)}1/3 loss 0.1", f"{run.label}: {RESUMING}", f"{run.label}: a note"):
            log(message)
    monkeypatch.setattr(ray_executor, "run_planned", planned)
    assert ray_executor.run_task(run, None, str(tmp_path), None, 1, 0.0, False, None)["notes"] == ["ae-a seed 0: a note"]


def test_a_stopped_ray_study_kills_the_tasks_left(tmp_path):
    """A Ctrl-C (or a failed run) cancels every task not finished by force: a running one's
    worker is killed, not asked to stop (which a task that catches KeyboardInterrupt outlives)."""
    from types import SimpleNamespace
    from fashionae.plan import make_plan
    from fashionae.studyfolder import StudyFolder
    extra_or_skip("ray", "ray")
    study = tiny_study(tmp_path, seeds=2)
    plan, cancelled = make_plan(study), []

    def wait(refs, num_returns):
        raise KeyboardInterrupt

    ray = SimpleNamespace(remote=lambda f: SimpleNamespace(options=lambda **kw: SimpleNamespace(
                              remote=lambda run, *args: run.name)),
                          put=lambda data: "data", wait=wait, cancel=lambda ref, force: cancelled.append((ref, force)))
    with pytest.raises(KeyboardInterrupt):
        RayExecutor().run(ray, plan, {r.name: "new" for r in plan}, study, StudyFolder(tmp_path / "out"), None, print)
    assert cancelled == [(r.name, True) for r in plan]
