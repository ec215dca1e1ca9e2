"""A whole study, from its file to its report: ``run_study`` carries out the runs that are not
finished (``executors.run_local``, or another executor), then the latent-space section, the
baselines, ``results.json`` and the report, holding the study folder's lock throughout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .baselines import mean_image_mse, write_baselines
from .data import Dataset, make_splits
from .datasets import load_dataset
from .explore import explore as explore_run
from .explore import refuse_unexplorable
from .lock import FolderLock
from .executors import run_local
from .plan import PlannedRun, explored_run, make_plan
from .preflight import check_plan, plan_states, refuse_changed, said_before_training
from .progress import count, duration
from .report import write_report
from .results import collect_results
from .runs import LOCAL, Log, stderr
from .study import Study
from .studyfolder import StudyFolder
from .tracking import log_finished_run


def log_finished_runs(plan: list[PlannedRun], states: dict[str, str], folder: StudyFolder, data: Dataset,
                      log: Log) -> None:
    """With --tensorboard, the events of the runs that finished without it (or were stopped
    while writing them), from their metrics: a study run again with --tensorboard shows every
    run in TensorBoard, not only those it trains now."""
    finished = [run for run in plan if states[run.name] == "complete" and run.config.train.tensorboard]
    if not finished:
        return
    logged = 0
    for run in finished:
        with folder.run(run.name).lock():
            logged += log_finished_run(folder.run(run.name), data)
    if logged:
        log(f"tensorboard: the events of {count(logged, 'finished run')} written from "
            "metrics.jsonl")


def run_study(study: Study, out: str | Path, data_dir: str | None = None, verify: bool = True,
              log: Log = stderr, command: str | None = None,
              executor: Callable | None = None, extend: bool = False, resume: str | None = None) -> dict:
    """Run every unfinished run of the study (``executor``: ``run_local`` by default), its
    latent-space section and baselines, then write results.json and the report. ``extend``:
    train on the finished runs the study now asks for with more epochs (``preflight.plan_states``).
    ``resume``: the shell line that runs it again (``cli.resuming_command``), kept in study.json to
    say how to finish it where it stops (``command``: its words alone, for the report's record)."""
    folder = StudyFolder(out)
    folder.check_holds(study)
    with FolderLock(folder.path, tidy=True):
        t_start = time.perf_counter()
        data = load_dataset(study.dataset, data_dir, verify)
        plan = make_plan(study)
        states = check_plan(plan, study, folder, data, extend)
        refuse_unexplorable(study, data)
        finished = sum(s == "complete" for s in states.values())
        extended = sum(s == "extend" for s in states.values())
        log(f"study {study.name} ({study.profile}) in {folder.path}: {len(plan)} runs on {data.name}"
            + (f", {finished} finished already" if finished else "")
            + (f", {extended} to train on from their training state" if extended else ""))
        for note in said_before_training(plan, states, study, folder, data):
            log(note)
        folder.write_study(study, resume)
        save_samples(folder, data, study.val)
        log_finished_runs(plan, states, folder, data, log)
        stage_seconds = {}
        t0 = time.perf_counter()
        if finished < len(plan):  # (a Ray is not started for nothing: about 20 s)
            (executor or run_local)(plan, states, study, folder.path, data, log)
        stage_seconds["runs"] = time.perf_counter() - t0
        # judged now that every encoder is trained: the finished classifiers kept while an encoder
        # they need (for "best", one it compares) was not: its choice, and the digest of an encoder
        # trained again (``plan_states``); what else check_plan refuses was refused before the
        # runs, and the runs did not change it
        waited = [r for r in plan if r.awaits_encoder(states)]
        refuse_changed(plan_states(waited, study, folder, data)[1], folder)

        if study.explore.autoencoders:
            t0 = time.perf_counter()
            for name in study.explore.autoencoders:
                run = folder.run(explored_run(study, name))
                if not run.explored(study.explore.tsne):
                    log(f"explore: latent space of {run.path.name} (maps, k-NN, linear probe)")
                    with run.lock():
                        explore_run(run.path, data=data, tsne=study.explore.tsne, log=log)
            stage_seconds["explore"] = time.perf_counter() - t0

        if study.baselines.enabled:
            t0 = time.perf_counter()
            write_baselines(folder / folder.BASELINES, data, study.val, study.baselines.train_subset,
                            study.baselines.eval_subset, study.baselines.logreg_max_iter, log)
            stage_seconds["baselines"] = time.perf_counter() - t0

        wall = time.perf_counter() - t_start
        if finished < len(plan):  # (one that trained nothing keeps the record of the last one that did)
            folder.write_timing(wall, stage_seconds, command, getattr(executor, "description", LOCAL))
        log("report: results.json, the figures and report.html")
        results = collect_results(folder.path, check_files=False)  # checked before its runs
        report = write_report(folder.path, results)
    stages = ", ".join(f"{k} {duration(v)}" for k, v in stage_seconds.items())
    log(f"study {study.name} ({study.profile}) finished in {duration(wall)} ({stages}); report: {report}")
    return results


def save_samples(folder: StudyFolder, data: Dataset, val: str) -> None:
    """What the report needs of the dataset, so ``fashionae report`` needs none: the validation
    images of its reconstruction figure, the first of each class (at most 8), and the mean
    image's MSE (``StudyFolder.mean_image``), by which it names a seed that learned nothing,
    whether or not the study computes its baselines."""
    splits = make_splits(data, val)
    picks = [int((splits.val_y == c).nonzero()[0]) for c in range(len(data.classes))
             if (splits.val_y == c).any()][:8]
    folder.write_samples(splits.val_x[picks], splits.val_y[picks], mean_image_mse(splits))
