"""Scale out: the quick profile's wall time under the local executor (one run at a time, all
the machine's threads) and under Ray (one run per core, one thread each), in one script run;
then a model of the paper protocol's wall time on 1, 4 and 16 workers, from the per-run
speeds measured here and the plan's dependencies (autoencoders are independent; a classifier
waits for its encoder's autoencoder).

    .venv/bin/python benchmarks/scale_out.py [--profile quick] [--out DIR] [--data-dir D] [--no-verify]

The model: a run's time is epochs x (training images / its training speed + re-measured and
validation images / its evaluation speed) + test images / evaluation speed, the speeds being
the medians over the measured runs of the same autoencoder (or classifier strategy) under the
local executor. A worker is one run at a time on a machine like this one. Runs start in plan
order as soon as a worker is free and their encoder is done (what Ray does with the tasks the
executor submits); start-up, data transfer and contention are not modelled. The critical path
(the longest autoencoder plus the longest classifier on it) bounds any number of workers.
"""
import argparse
import heapq
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fashionae.data import make_splits
from fashionae.datasets import load_dataset
from fashionae.pipeline import run_study
from fashionae.plan import make_plan
from fashionae.ray_executor import RayExecutor
from fashionae.machine import cpu_info, describe_cpu
from fashionae.study import load_study
from fashionae.studyfolder import StudyFolder

PAPER = Path(__file__).parent.parent / "studies" / "paper.toml"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def execute(name, study, out, data_dir, verify, executor=None):
    print(f"\n== {name}: load average {load()} before", flush=True)
    t0 = time.perf_counter()
    run_study(study, out, data_dir, verify, log=lambda m: print(f"  {m}", flush=True), executor=executor)
    wall = time.perf_counter() - t0
    timing = json.loads((Path(out) / StudyFolder.TIMING).read_text())
    print(f"== {name}: {wall:.0f} s wall (runs {timing['stages']['runs']:.0f} s, baselines "
          f"{timing['stages'].get('baselines', 0):.0f} s); load average {load()} after", flush=True)
    return wall, timing["stages"]["runs"]


def speeds(out: Path, study) -> dict:
    """Per autoencoder name / classifier strategy: (training images/s, evaluation images/s),
    medians over the study's runs, from each epoch's row of metrics.jsonl."""
    folder, found = StudyFolder(out), {}
    for run in make_plan(study):
        rf = folder.run(run.name)
        data, t = rf.data_record(), rf.config().train
        n_train = data["train_size"]
        n_eval = min(n_train, t.train_eval_subset or n_train) + data["val_size"]
        for row in rf.metrics():
            train_s = n_train / row["train_images_per_second"]
            found.setdefault(key(run), []).append((row["train_images_per_second"],
                                                   n_eval / (row["seconds"] - train_s)))
    return {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in found.items()}


def key(run) -> str:
    return run.group if run.kind == "autoencoder" else run.config.strategy


def durations(study, data, measured: dict) -> dict:
    out = {}
    for run in make_plan(study):
        t = run.config.train
        s = make_splits(data, t.val, t.train_subset, t.eval_subset)
        n_train = len(s.train_x)
        train_speed, eval_speed = measured[key(run)]
        per_epoch = n_train / train_speed + (min(n_train, t.train_eval_subset or n_train) + len(s.val_x)) / eval_speed
        out[run.name] = t.epochs * per_epoch + len(s.test_x) / eval_speed
    return out


def makespan(plan, seconds: dict, workers: int) -> float:
    """Whenever a worker is free, it takes the first run in plan order whose needs are done."""
    free, done, waiting = [0.0] * workers, {}, list(plan)
    while waiting:
        t = heapq.heappop(free)
        ready = [r for r in waiting if all(done.get(n, float("inf")) <= t for n in r.needs)]
        if not ready:  # idle until the next running run finishes
            heapq.heappush(free, min(v for v in done.values() if v > t))
            continue
        waiting.remove(ready[0])
        done[ready[0].name] = t + seconds[ready[0].name]
        heapq.heappush(free, done[ready[0].name])
    return max(done.values())


def critical_path(plan, seconds: dict) -> float:
    return max(seconds[r.name] + max((seconds[n] for n in r.needs), default=0) for r in plan)


def hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--profile", default="quick")
    p.add_argument("--out", help="folder for the two study folders (default: a temporary one)")
    p.add_argument("--data-dir")
    p.add_argument("--no-verify", action="store_true", help="for a try on synthetic data")
    a = p.parse_args()
    cpu, threads = cpu_info(), len(os.sched_getaffinity(0))
    print(f"machine: {describe_cpu(cpu)}; {threads} cores available; host {platform.node()}; "
          f"torch {torch.__version__}")
    base = Path(a.out or tempfile.mkdtemp(prefix="scale-out-"))
    study = load_study(PAPER, a.profile)

    torch.set_num_threads(threads)
    local_wall, local_runs = execute(f"local executor, one run at a time, {threads} threads", study,
                                     base / "local", a.data_dir, not a.no_verify)
    ray_wall, ray_runs = execute(f"Ray, {threads} runs at a time, 1 thread each", study, base / "ray",
                                 a.data_dir, not a.no_verify, RayExecutor(cpus_per_run=1))
    print(f"\n{a.profile} profile, {len(make_plan(study))} runs: local {local_wall:.0f} s (runs {local_runs:.0f} s), "
          f"Ray {ray_wall:.0f} s (runs {ray_runs:.0f} s): {local_wall / ray_wall:.2f}x the wall time, "
          f"{local_runs / ray_runs:.2f}x on the runs")

    data = load_dataset(study.dataset, a.data_dir, not a.no_verify)
    local_speeds, ray_speeds = speeds(base / "local", study), speeds(base / "ray", study)
    print("\nmeasured speeds (training images/s, evaluation images/s):")
    for k in local_speeds:
        print(f"  {k:14s} local {local_speeds[k][0]:6.0f} {local_speeds[k][1]:6.0f}   "
              f"ray (1 thread) {ray_speeds[k][0]:6.0f} {ray_speeds[k][1]:6.0f}")
    plan = make_plan(study)
    print(f"\nthe model on the measured profile: local, 1 worker: "
          f"{makespan(plan, durations(study, data, local_speeds), 1):.0f} s (measured runs {local_runs:.0f} s); "
          f"Ray, {threads} workers at 1 thread: {makespan(plan, durations(study, data, ray_speeds), threads):.0f} s "
          f"(measured runs {ray_runs:.0f} s)")

    precision = {StudyFolder(base / "local").run(r.name).environment()["precision"] for r in plan}
    print(f"\nthe paper protocol (its epochs, images and dependencies), modelled from the local executor's "
          f"speeds at {'/'.join(sorted(precision))} (a worker = this machine; the paper profile asks fp32):")
    print("profile       runs  1 worker  4 workers  16 workers  critical path")
    for profile in ("paper", "paper-seeds"):
        s = load_study(PAPER, profile)
        plan = make_plan(s)
        seconds = durations(s, data, local_speeds)
        cells = [hours(makespan(plan, seconds, w)) for w in (1, 4, 16)]
        print(f"{profile:12s} {len(plan):5d}  {cells[0]:>8s}  {cells[1]:>9s}  {cells[2]:>10s}  "
              f"{hours(critical_path(plan, seconds)):>13s}")


if __name__ == "__main__":
    main()
