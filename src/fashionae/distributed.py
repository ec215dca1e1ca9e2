"""One run on several processes: ``torchrun --nproc-per-node N -m fashionae train-ae ...``.

Data parallelism with DistributedDataParallel, ``nccl`` on CUDA and ``gloo`` on the CPU.
The configured batch size stays the global batch: every process draws the same seeded
permutation and takes its slice of each batch, and its loss is weighted by its share, so
the averaged gradient is that of the whole batch and the hyper-parameters mean the same
thing at any N. Dropout masks differ per process (seeded by seed and rank); on CUDA
batch-norm layers become SyncBatchNorm (torch has no CPU SyncBatchNorm: on the CPU each
process normalises its own slice, and evaluation takes process 0's running statistics, those of
the model it saves: ``sync_buffers``). Sums (losses, correct counts) are added across processes;
process 0 alone writes the run folder.

Without torchrun, ``Dist()`` is the single process and every method is the identity.
"""

from __future__ import annotations

import atexit
import os
import re
import select
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn

from .errors import UserError, say_stopped, started_by_torchrun, stops_are_ours


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step calls: DDP around the model under torchrun."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel
        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This process's slice of a global batch, and the weight of its mean loss: its share
        of the batch times the number of processes (DDP averages the gradients, so the sum
        over processes of weight x gradient is the whole batch's mean gradient)."""
        if not self.active:
            return x, y, 1.0
        bounds = torch.linspace(0, len(x), self.world + 1).round().long().tolist()
        lo, hi = bounds[self.rank], bounds[self.rank + 1]
        if hi == lo:  # a last batch smaller than the number of processes: take part, weigh nothing
            return x[:1], y[:1], 0.0
        return x[lo:hi], y[lo:hi], (hi - lo) * self.world / len(x)

    def sum(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add per-process sums across processes (one all-reduce for all of them)."""
        if not self.active or not values:
            return values
        import torch.distributed as td
        names = list(values)
        flat = torch.stack([values[k].reshape(()).double() for k in names])
        td.all_reduce(flat)
        return dict(zip(names, flat.unbind()))

    def gather_object(self, obj) -> list:
        if not self.active:
            return [obj]
        import torch.distributed as td
        out = [None] * self.world
        td.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj):
        """Process 0's ``obj`` on every process."""
        if not self.active:
            return obj
        import torch.distributed as td
        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, model: nn.Module) -> None:
        """Process 0's buffers (batch norm's running statistics) on every process. DDP copies
        them only as a training step starts, so after an epoch's last step each process on
        the CPU holds statistics of its own slices, and an evaluation split across processes
        would not be that of the model process 0 saves."""
        if self.active:
            import torch.distributed as td
            for buffer in model.buffers():
                td.broadcast(buffer, src=0)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as td
            td.barrier()


def lost_process(e: BaseException) -> str | None:
    """What torch.distributed said, when ``e`` says another process of the group is gone
    (crashed, killed, its node lost: its connection closed or reset; gloo's errors are plain
    RuntimeErrors); else None (a rendezvous timeout, a misconfigured interface: this process's own)."""
    if not isinstance(e, RuntimeError) or not (isinstance(e, torch.distributed.DistNetworkError)
                                               or any(s in str(e) for s in ("closed by peer", "reset by peer"))):
        return None
    first = (str(e).splitlines() or [""])[0]
    return re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0][:160]  # without gloo's source line


def processes(n: int) -> str:
    """``n`` processes, in words."""
    return f"{n} process{'es' * (n != 1)}"


def on_processes(n: int) -> str:
    """How to run a command on ``n`` processes, to resume a run trained on that many."""
    if n == 1:
        return "in one process, without torchrun"
    return f"under torchrun with {processes(n)} in all (--nproc-per-node {n} on one machine)"


# what to do where torchrun's variables are in the environment but make no sense (a shell's
# leftovers from another job, a SLURM script's): they are torchrun's to set
NAMES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
VARIABLES = f"{', '.join(NAMES[:-1])} and {NAMES[-1]}"
UNSET = f"start the command with torchrun, or unset {VARIABLES} if they are left over from another job"
LEFT_OVER = f"torchrun sets it: {UNSET}"


def torchrun_variable(name: str, default: int | None = None, least: int = 0) -> int:
    """One of torchrun's whole-number variables, ``default`` where it is unset (None: it must be set)."""
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    if text is None:
        raise UserError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} is set in the environment and {name} is not; "
                        + LEFT_OVER)
    try:
        value = int(text)
    except ValueError:  # (not a number, or one int() takes not: "²")
        value = least - 1
    if value < least:
        raise UserError(f"the environment's {name}={text!r} is not a whole number"
                        + (f" of at least {least}" if least else "") + f"; {LEFT_OVER}")
    return value


def world_size() -> int:
    """How many processes torchrun started (1 without torchrun)."""
    return torchrun_variable("WORLD_SIZE", 1, least=1)


def from_environment(device: str) -> Dist:
    """Join the process group torchrun describes in the environment; ``Dist()`` outside it."""
    world = world_size()
    if world == 1:
        return Dist()
    import torch.distributed as td
    rank, local = torchrun_variable("RANK"), torchrun_variable("LOCAL_RANK", 0)
    if rank >= world:
        raise UserError(f"the environment's RANK={rank} is not below its WORLD_SIZE={world}; {LEFT_OVER}")
    if device == "cuda":
        if torch.cuda.device_count() <= local:
            raise UserError(f"torchrun started {world} processes but this node has "
                            f"{torch.cuda.device_count()} GPU(s); use --nproc-per-node "
                            f"{torch.cuda.device_count()}")
        torch.cuda.set_device(local)
    if not td.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        timeout = rendezvous_timeout(backend)
        try:
            with _stoppable_wait(rank, world, timeout):
                td.init_process_group(backend, timeout=timeout)
        except ValueError as e:  # (MASTER_ADDR or MASTER_PORT unset: not started by torchrun)
            raise UserError(f"cannot join torchrun's processes ({e}); {LEFT_OVER}") from None
        except td.DistError as e:  # (no other process came, or none answered)
            said = (str(e).splitlines() or [""])[0]
            raise UserError(f"cannot join torchrun's processes ({said}): the others did not come; {UNSET}") from None
        atexit.register(_leave_process_group)
    return Dist(rank, world)


# how long a process waits for the others as the group forms (None: torch's default, which is also
# the group's timeout for each collective: 30 minutes for gloo, 10 for NCCL), and after how long it
# says what it waits for
RENDEZVOUS_TIMEOUT: timedelta | None = None
WAIT_NOTE_SECONDS = 10.0


def rendezvous_timeout(backend: str) -> timedelta:
    from torch.distributed import constants
    if RENDEZVOUS_TIMEOUT is not None:
        return RENDEZVOUS_TIMEOUT
    return (constants.default_pg_nccl_timeout if backend == "nccl" else None) or constants.default_pg_timeout


@contextmanager
def _stoppable_wait(rank: int, world: int, timeout: timedelta):
    """The group's forming, stoppable. torch waits for the other processes in C++, holding the
    main thread, where Python runs signal handlers: a Ctrl-C or SIGTERM there (variables left
    over from another job: no other process will come) did nothing for up to RENDEZVOUS_TIMEOUT.
    Meanwhile a thread reads the signals' wakeup descriptor: a stop ends the process in its one
    line (nothing is written yet), and after WAIT_NOTE_SECONDS it says what the process waits for.
    Only where the stops are the command's own (``errors.run_command``'s, in the main thread): a
    script that uses fashionae keeps its handlers, and its wakeup descriptor (asyncio's) its signals."""
    if threading.current_thread() is not threading.main_thread() or not stops_are_ours():
        yield
        return
    read, write = os.pipe()
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read, rank, world, timeout), daemon=True)
    watcher.start()
    try:
        yield
    finally:  # (nested: a stop raised between the steps leaves neither descriptor nor watcher behind)
        try:
            signal.set_wakeup_fd(previous)
        finally:
            try:
                os.write(write, b"\0")  # (no signal's number: the watcher's end; it closes its own end)
            finally:
                os.close(write)
            watcher.join()


def _watch(fd: int, rank: int, world: int, timeout: timedelta) -> None:
    said = False
    agent = started_by_torchrun()  # (the others are slow to start)
    try:
        while True:
            if not select.select([fd], [], [], None if said else WAIT_NOTE_SECONDS)[0]:
                said = True
                if agent and rank != 0:  # (there, process 0 speaks for all)
                    continue
                address = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
                print(f"fashionae: process {rank} of {world}{' of this torchrun' * agent} waits for the others at {address} "
                      f"(for up to {timeout.total_seconds() / 60:g} minutes; Ctrl-C stops it)"
                      + ("" if agent else f"; without torchrun, unset {VARIABLES}"), file=sys.stderr)
                continue
            for signum in os.read(fd, 64):
                if signum == 0:
                    return
                if signum in (signal.SIGINT, signal.SIGTERM):
                    code = say_stopped(signum == signal.SIGTERM)
                    sys.stderr.flush()
                    os._exit(code)
    finally:
        os.close(fd)


def _leave_process_group() -> None:
    """Before the process exits (NCCL asks for it): first free what still holds the group (a
    DistributedDataParallel wrapper left in a reference cycle), so that gloo's threads are joined
    while Python is whole, not during its teardown (once, in CI, a process aborted there with
    "terminate called without an active exception", as in pytorch/pytorch#65231)."""
    import gc

    import torch.distributed as td
    gc.collect()
    if td.is_initialized():
        td.destroy_process_group()


def sync_batchnorm(model: nn.Module, dist: Dist) -> nn.Module:
    device = next(model.parameters()).device
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if dist.active and device.type == "cuda" else model
