"""Progress on a terminal: a run's in-epoch bar, and a study's status line (runs done, the time
left) kept under its log and redrawn in place; in a log file, plain lines."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any, Callable

ERASE_LINE = "\r\033[K"  # a terminal's line redrawn in place: back to its start, and cleared


def bar(step: int, steps: int, width: int = 30) -> str:
    """"[######......] 40/100": how far through an epoch's steps."""
    return f"[{'#' * (width * step // steps):.<{width}}] {step}/{steps}"


def redraws(stream) -> bool:
    """Whether ``stream`` is a terminal that can redraw a line in place: not a file, not a dumb
    terminal (TERM=dumb: an editor's shell, which shows the escape codes)."""
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def progress_bar(label: str) -> Callable[[int, int], None] | None:
    """A one-line in-epoch progress bar on a terminal; nothing when stderr is a file."""
    if not redraws(sys.stderr):
        return None

    def show(step: int, total: int) -> None:
        if step == total or step % 20 == 0:
            print(f"\r{label} {bar(step, total)}{ERASE_LINE if step == total else ''}",
                  end="", file=sys.stderr, flush=True)
    return show


class Progress:
    """Runs done out of the total, and the time left, estimated from the images processed so
    far. On a terminal: one status line kept under the log and redrawn in place (messages are
    printed above it; it is cut to the terminal's width, since a wrapped line cannot be
    redrawn), with the current run's epoch and step. In a log: plain lines, the status
    appended to each epoch's line."""

    def __init__(self, plan: list, states: dict[str, str], n_train: int,
                 log: Callable[[str], None], stream=None, trained: dict[str, int] | None = None):
        """``plan``: the study's runs in order (``plan.PlannedRun``s: name, label, config);
        ``trained``: the epochs each run to resume or train on has already (``executors.epochs_done``)."""
        self.units = {r.name: _units(r.config, n_train) for r in plan}
        self.total_runs, self.done_runs = len(plan), sum(s == "complete" for s in states.values())
        self.total = sum(self.units.values())
        self.done = sum(self.units[r.name] * (1 if states[r.name] == "complete" else
                                              (trained or {}).get(r.name, 0) / r.config.train.epochs) for r in plan)
        self.measured_units = self.measured_seconds = 0.0
        # sys.stderr read now, not at import: it may have been replaced since (captured, redirected)
        self.log, self.stream = log, stream or sys.stderr
        self.tty = redraws(self.stream)
        self.run: Any = None  # the PlannedRun in training
        self.epoch_now, self.steps, self.drawn_at = 1, (0, 0), 0.0

    def status(self, partial: float = 0.0) -> str:
        left = "time left unknown yet" if not self.measured_units else \
            f"about {duration((self.total - self.done - partial) * self.measured_seconds / self.measured_units)} left"
        return (f"{self.done_runs}/{self.total_runs} runs, "
                f"{100 * (self.done + partial) / max(self.total, 1):3.0f}% done, {left}")

    def say(self, message: str) -> None:
        """A log message; on a terminal, printed above the status line."""
        if self.tty:
            print(ERASE_LINE, end="", file=self.stream)
        self.log(message)
        self.draw()

    def draw(self) -> None:
        if not (self.tty and self.run):
            return
        epochs = self.run.config.train.epochs
        step, steps = self.steps
        partial = self.units[self.run.name] / epochs * step / steps if steps else 0.0
        where = f"{self.run.label}, epoch {min(self.epoch_now, epochs)}/{epochs}"
        if steps:
            where += f" {bar(step, steps, 20)}" if step < steps else ", evaluating"
        line = f"{self.status(partial)} · {where}"
        print(ERASE_LINE + line[:shutil.get_terminal_size().columns - 1], end="", file=self.stream, flush=True)
        self.drawn_at = time.monotonic()

    def start(self, run: Any) -> None:
        self.run, self.epoch_now, self.steps = run, 1, (0, 0)
        self.draw()

    def step(self, step: int, steps: int) -> None:
        self.steps = (step, steps)
        if step == steps or time.monotonic() - self.drawn_at > 0.25:  # cheap for fast steps
            self.draw()

    def epoch(self, run: Any, row: dict) -> str | None:
        """After each epoch: the status, as a note for the epoch's log line (not on a terminal,
        where the status line says it)."""
        units = self.units[run.name] / run.config.train.epochs
        self.done += units
        self.measured_units += units
        self.measured_seconds += row["seconds"]
        self.epoch_now, self.steps = row["epoch"] + 1, (0, 0)
        return None if self.tty else self.status()

    def finished(self, run: Any, summary: dict) -> None:
        self.done_runs += 1
        self.run = None
        self.say(f"{run.label}: done ({self.done_runs}/{self.total_runs} runs, {summary['seconds_total']:.0f} s)")

    def close(self) -> None:
        if self.tty:
            print(ERASE_LINE, end="", file=self.stream, flush=True)


def _units(cfg: Any, n_train: int) -> float:
    return cfg.train.epochs * min(n_train, cfg.train.train_subset or n_train)


def seconds_text(x: float) -> str:
    """A time in seconds as tables and a run's last line give it: whole seconds, and under one
    a tenth (not "0")."""
    return f"{x:.1f}" if x < 0.95 else f"{x:.0f}"


def count(n: int, what: str) -> str:
    """A count with its noun, as every message says one: "1 seed", "2 seeds", "1,200 images"."""
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """"6h55m", "4m05s", "42s": a wall time as the progress lines and --plan print it."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
