"""``fashionae study --executor ray``: a study's runs as Ray tasks, on one machine or a cluster.

Every unfinished run becomes one Ray task asking for ``cpus_per_run`` CPUs and
``gpus_per_run`` GPUs (a fraction packs several runs on one GPU). A classifier's task is
given its encoders' tasks as arguments, so Ray starts it once they are done. Each task
calls ``executors.run_planned``, the local executor's function, with ``cpus_per_run`` torch
threads: on the CPU a run's numbers are the same as under the local executor with as
many threads.

The dataset goes into Ray's object store once, from the driver; the run folders must be
on a filesystem every node sees at the same path (checked before anything runs). A task
whose worker dies is retried by Ray and resumes from the run's last finished epoch;
an error in a run (a Python exception) is not retried and stops the study, as Ctrl-C
does: unfinished tasks are cancelled, finished runs are kept.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from . import __version__
from .data import Dataset
from .errors import Terminated, UserError, out_of_memory, require
from .files import atomic_write
from .executors import run_planned
from .plan import PlannedRun
from .runs import EXECUTOR_ENV, RAY, RESUMING, Log, epoch_prefix
from .study import Study
from .studyfolder import StudyFolder

RETRIES = 3         # a run whose worker or node dies is started again (from its checkpoint) this often
LOCK_WAIT = 180.0   # seconds a retry waits for the run folder's lock: on NFSv4 a dead node's
                    # lock lasts until the server's lease on it expires (90 s by default)


def _not_the_default_auth_note(record: logging.LogRecord) -> bool:
    """Ray (2.59 and later) notes, as a warning before every study, that the cluster it starts
    has token authentication, its default: nothing the user has to act on, so it is not shown."""
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


class RayExecutor:
    """Called by ``pipeline.run_study`` as ``executor(plan, states, study, out, data, log)``, like
    ``executors.run_local``. ``on_epoch(run, row)``, when given, is called in the
    task after every epoch of a run (a hook: monitoring, or faults injected by the tests)."""

    def __init__(self, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0.0,
                 on_epoch: Callable[[PlannedRun, dict], None] | None = None):
        if cpus_per_run < 1:
            raise UserError(f"--cpus-per-run must be at least 1, got {cpus_per_run}")
        if not math.isfinite(gpus_per_run) or gpus_per_run < 0 \
                or (gpus_per_run > 1 and gpus_per_run != int(gpus_per_run)) \
                or gpus_per_run != round(gpus_per_run, 4):  # Ray's step
            raise UserError(f"--gpus-per-run must be a fraction of one GPU (in steps of 0.0001) or a whole "
                            f"number of GPUs, got {gpus_per_run:g}")
        require("ray", "ray", "--executor ray")  # said now, under --plan too
        self.address, self.cpus, self.gpus, self.on_epoch = address, cpus_per_run, gpus_per_run, on_epoch
        self.description = RAY

    def __call__(self, plan: list[PlannedRun], states: dict[str, str], study: Study, out: Path,
                 data: Dataset, log: Log) -> None:
        ray = require("ray", "ray", "--executor ray")
        started = self.connect(ray)
        try:
            folder = StudyFolder(Path(out).resolve())  # a path that means the same on every node
            nodes = self.usable_nodes(ray)
            check_nodes(ray, folder, nodes)
            self.run(ray, plan, states, study, folder, data, log)
        finally:
            if started:
                ray.shutdown()

    # ---------------------------------------------------------- the cluster

    def connect(self, ray) -> bool:
        """Join the cluster at ``address``, or start a Ray on this machine; True when this
        call started it (and so shuts it down). A Ray already joined by this process is used."""
        started = False
        if not ray.is_initialized():
            on_term = signal.getsignal(signal.SIGTERM)
            quiet = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
            try:
                self._init(ray, quiet)
            except UserError:  # (no Ray joined)
                raise
            except SystemExit as e:  # a SIGTERM as Ray starts, to the handler it sets (sys.exit(15)): ours,
                ray.shutdown()       # and the processes it started go with it (they outlived the driver)
                if e.code == signal.SIGTERM:
                    raise Terminated from None
                raise
            except BaseException:  # a Ctrl-C as it starts
                ray.shutdown()
                raise
            if on_term is not None and threading.current_thread() is threading.main_thread():
                # ours again (errors.run_command's: one line, finished runs kept; the default in a
                # script of the user's); Ray's own aborts the driver with a crash report, on every
                # scancel or time limit of a cluster job
                signal.signal(signal.SIGTERM, on_term)
            started = True
        alive = [n for n in ray.nodes() if n["Alive"]]
        total = ray.cluster_resources()
        where = (f"cluster {ray.get_runtime_context().gcs_address}, {len(alive)} node(s)" if self.address
                 else "local")
        gpus = f", {total['GPU']:g} GPUs" if total.get("GPU") else ""
        self.description = (f"ray ({where}, {total.get('CPU', 0):g} CPUs{gpus}; {self.cpus} CPU(s)"
                            + (f" and {self.gpus:g} GPU" if self.gpus else "") + " per run)")
        return started

    def _init(self, ray, quiet: dict) -> None:
        """ray.init: join the cluster at ``address``, or start a Ray on this machine."""
        if self.address:
            said: list[str] = []
            try:
                _reachable(self.address)  # else ray.init retries an address nobody answers for minutes
                with _stderr_into(said):  # (Ray's C++ says each of its tries there: 20 lines for a refused token)
                    ray.init(address=self.address, **quiet)
            except (ConnectionError, ValueError, RuntimeError, OSError) as e:
                if any(word in "".join(said) for word in ("InvalidAuthToken", "Unauthenticated")):
                    raise UserError(f"cannot join the Ray cluster at {self.address}: it asks for a token (Ray's token "
                                    "authentication), and " + ("this one is not its" if os.environ.get(
                                        "RAY_AUTH_MODE") == "token" else "none was given") + ": set "
                                    "RAY_AUTH_MODE=token and give its token here (docs/scale-out.md)") from None
                auth = ("" if os.environ.get("RAY_AUTH_MODE") == "token" else
                        "; a cluster with token authentication (Ray 2.59 and later) needs RAY_AUTH_MODE=token "
                        "and its token here too (docs/scale-out.md)")
                raise UserError(f"cannot join the Ray cluster at {self.address} ({e}); start it with "
                                f"`ray start --head` or check --address{auth}") from None
            sys.stderr.write("".join(said))  # (joined: whatever Ray said is shown, as it would have been)
        else:
            import torch
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(
                _not_the_default_auth_note)
            ray.init(address="local", num_cpus=cpus, num_gpus=torch.cuda.device_count(), **quiet)

    def usable_nodes(self, ray) -> list[dict]:
        """The alive nodes that have room for one run; refuse a cluster without any."""
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= self.cpus
                 and n["Resources"].get("GPU", 0) >= self.gpus]
        if not nodes:
            raise UserError(f"no node of the Ray cluster has {self.cpus} CPU(s)"
                            + (f" and {self.gpus:g} GPU" if self.gpus else "")
                            + " for one run; lower --cpus-per-run / --gpus-per-run")
        return nodes

    # ---------------------------------------------------------- the runs

    def run(self, ray, plan: list[PlannedRun], states: dict[str, str], study: Study,
            folder: StudyFolder, data: Dataset, log: Log) -> None:
        from ray.exceptions import RayError, RayTaskError
        task = ray.remote(run_task).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=RETRIES)
        data_ref = ray.put(data)  # once: each node fetches it from the object store
        refs: dict[str, object] = {}
        labels = {}
        for run in plan:
            if states[run.name] == "complete":
                continue
            needs = [refs[n] for n in run.needs if n in refs]  # Ray starts the task once they are done
            refs[run.name] = task.remote(run, study, str(folder.path), data_ref, self.cpus, self.gpus,
                                         states[run.name] == "extend", self.on_epoch, *needs)
            labels[refs[run.name]] = run
        done, total = len(plan) - len(refs), len(plan)
        log(f"{len(refs)} run(s) to train as Ray tasks ({self.description}); {done} finished already")
        pending = list(refs.values())
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                run = labels[ready[0]]
                try:
                    r = ray.get(ready[0])
                except RayTaskError as e:  # the run raised: a UserError, or out of memory, is one line
                    for note in getattr(e.cause, "run_notes", []):  # what it said before it failed
                        log(note)
                    if isinstance(e.cause, UserError):
                        raise UserError(f"{run.label}: {e.cause}") from None
                    if said := out_of_memory(e.cause):  # where --gpus-per-run packs runs on a GPU
                        raise UserError(f"{run.label}: {said} (under Ray: fewer runs per GPU, a larger "
                                        "--gpus-per-run)") from None
                    raise  # a bug: Ray's error holds the worker's traceback
                except RayError as e:  # its worker or node was lost once more than Ray retries
                    raise UserError(f"{run.label}: lost its Ray worker {RETRIES + 1} times ({type(e).__name__}); "
                                    "finished runs are kept, run the command again to resume") from None
                done += 1
                for note in r["notes"]:  # what the run said of its result, beyond its epochs
                    log(note)
                resumed = ((", trained on from its kept state" if states[run.name] == "extend"
                            else ", resumed from its checkpoint") if r["resumed"] else "")
                log(f"{run.label}: done on {r['host']} in {r['seconds']:.0f} s{resumed} ({done}/{total} runs)")
        except BaseException:  # Ctrl-C or a failed run: stop the rest; finished runs stay as they are
            for ref in pending:
                ray.cancel(ref, force=True)
            raise


@contextmanager
def _stderr_into(said: list[str]):
    """The process's stderr (file descriptor 2, where Ray's C++ writes, not only Python's sys.stderr)
    held in a temporary file while the block runs; its text then added to ``said``."""
    sys.stderr.flush()
    kept = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(kept, 2)
            os.close(kept)
            held.seek(0)
            said.append(held.read().decode(errors="replace"))


def _reachable(address: str) -> None:
    """Raise OSError when nothing listens at a HOST:PORT address ("auto" is left to Ray)."""
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        socket.create_connection((host, int(port)), timeout=10).close()


def run_task(run: PlannedRun, study: Study, out: str, data: Dataset, threads: int, gpus: float, extend: bool,
             on_epoch: Callable[[PlannedRun, dict], None] | None, *needs) -> dict:
    """One run in a Ray worker (``extend``: its state is 'extend'; ``needs``: the finished runs it
    waited for)."""
    import torch
    os.environ[EXECUTOR_ENV] = RAY  # recorded in the run's environment
    if not gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a run given no GPU stays off them
    torch.set_num_threads(threads)
    folder = StudyFolder(out).run(run.name)
    resumed = folder.has_checkpoint()
    # A retry after a lost node may find the node's lock still held on a shared filesystem.
    folder.lock().acquire(wait=LOCK_WAIT).release()
    t0 = time.perf_counter()
    notes = []  # the worker's output stays in Ray's logs (log_to_driver=False): the driver says what matters

    def log(message: str) -> None:
        print(message, flush=True)
        # its notes and warnings; not its epochs, nor that it resumed (the driver's own line says so)
        if not message.startswith(epoch_prefix(run.label)) and message != f"{run.label}: {RESUMING}":
            notes.append(message)
    try:
        run_planned(run, study, out, data, log=log,
                    on_epoch=(lambda row: on_epoch(run, row) or "") if on_epoch else None, extend=extend)
    except Exception as e:  # the driver says them before the error (an exception pickles its attributes)
        try:
            e.run_notes = notes
        except Exception:  # one that takes none: they stay in the worker's log
            pass
        raise
    return {"host": platform.node(), "seconds": time.perf_counter() - t0, "resumed": resumed, "notes": notes}


def check_nodes(ray, folder: StudyFolder, nodes: list[dict]) -> None:
    """Refuse to start unless every node runs this fashionae and reads the token the driver
    writes in the study folder (so it sees the same folder at the same path)."""
    from ray.exceptions import RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    probe = ray.remote(node_check)
    token, path = secrets.token_hex(16), folder / folder.STORAGE_CHECK
    atomic_write(path, token)
    try:
        refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(path), token) for n in nodes]
        answers = []
        for n, ref in zip(nodes, refs):
            try:
                answers.append(ray.get(ref))
            except RayTaskError as e:  # the node could not even import fashionae
                raise UserError(f"Ray node {_name(n)} cannot run fashionae ({str(e).strip().splitlines()[-1]}); "
                                f"install fashionae {__version__} on every node") from None
    finally:
        path.unlink(missing_ok=True)
    for n, (_, version) in zip(nodes, answers):
        if version != __version__:
            raise UserError(f"Ray node {_name(n)} runs fashionae {version}, this driver {__version__}; "
                            "install the same version on every node")
    blind = [_name(n) for n, (sees, _) in zip(nodes, answers) if not sees]
    if blind:
        raise UserError(f"Ray node(s) {', '.join(blind)} cannot see the study folder {folder.path}; "
                        "put --out on a filesystem every node mounts at the same path (NFS, Lustre...)")


def node_check(path: str, token: str) -> tuple[bool, str]:
    """On one node: whether it reads the driver's token, and its fashionae version."""
    try:
        sees = Path(path).read_text() == token
    except OSError:
        sees = False
    return sees, __version__


def _name(node: dict) -> str:
    return f"{node.get('NodeManagerHostname', '?')} ({node['NodeManagerAddress']}, node {node['NodeID'][:8]})"
