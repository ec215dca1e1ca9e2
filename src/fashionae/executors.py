"""Carrying out a study's planned runs. ``run_planned`` carries out one run, the same function for
every executor, so that a run's numbers do not depend on where it ran; ``run_local`` runs them one
after the other in this process (``ray_executor.RayExecutor``: as Ray tasks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .data import Dataset, split_sizes
from .plan import PlannedRun, resolve
from .preflight import plan_states, refuse_changed
from .progress import Progress
from .runs import Log, execute
from .settings import CLASSIFIER
from .study import Study
from .studyfolder import StudyFolder


def run_planned(run: PlannedRun, study: Study, out: str | Path, data: Dataset, log: Log,
                on_epoch: Callable[[dict], str | None] | None = None,
                on_step: Callable[[int, int], None] | None = None, extend: bool = False) -> dict:
    """Carry out one planned run (the same function for every executor); ``extend``: its state
    is 'extend'. A classifier kept to resume or train on while its encoders trained is judged
    again first, now that they are (``plan_states``): one that no longer holds the run asked for
    (a "best" encoder chosen otherwise, an encoder that came out otherwise) is refused as the
    study refuses it before anything trains."""
    folder = StudyFolder(out)
    if run.kind == CLASSIFIER and folder.run(run.name).is_run():
        refuse_changed(plan_states([run], study, folder, data, extend)[1], folder)
    return execute(resolve(run, study, folder), folder.run(run.name).path, data=data,
                   label=run.label, log=log, on_epoch=on_epoch, on_step=on_step, say_subsets=False, extend=extend)


# ------------------------------------------------------------------ the local executor

def epochs_done(folder: StudyFolder, run: PlannedRun, state: str) -> int:
    """The epochs a run to resume or train on has already: its checkpoint's."""
    return folder.run(run.name).epochs_trained() if state in ("resume", "extend") else 0


def run_local(plan: list[PlannedRun], states: dict[str, str], study: Study, out: Path, data: Dataset,
              log: Log) -> None:
    """One run after the other, in plan order, in this process."""
    progress = Progress(plan, states, split_sizes(data, study.val)[0], log,
                        trained={r.name: epochs_done(StudyFolder(out), r, states[r.name]) for r in plan})
    try:
        for run in plan:
            if states[run.name] == "complete":
                continue
            progress.start(run)
            summary = run_planned(run, study, out, data, progress.say,
                                  on_epoch=lambda row, r=run: progress.epoch(r, row),
                                  on_step=progress.step if progress.tty else None,
                                  extend=states[run.name] == "extend")
            progress.finished(run, summary)
    finally:
        progress.close()
