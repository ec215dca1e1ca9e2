"""``fashionae study FILE --plan``: what a study would train, and how long it would take here.

Every run of the plan with its state (new, resume, restart, damaged, complete, extend, changed), its settings as far as
they are known, and a wall-time estimate from a short speed probe of its model on this machine;
nothing trains. Then, as ``run_study`` would, the run folders that hold runs the study no
longer asks for are refused.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from . import bench
from .baselines import computed_baselines, study_settings
from .data import Dataset, split_sizes
from .datasets import load_dataset
from .explore import refuse_unexplorable
from .lock import in_use, lock_holder
from .models import ModelConfig
from .pages import EMPTY, text_table
from .executors import epochs_done
from .plan import PlannedRun, explored_run, make_plan
from .preflight import plan_states, refuse_before_training, refuse_too_large_models, said_before_training
from .progress import count, duration
from .runconfig import RunConfig
from .settings import CLASSIFIER
from .study import Study
from .studyfolder import StudyFolder
from .training import TrainConfig, slow_precision


def show_plan(study: Study, out: str | Path, data_dir: str | None = None, verify: bool = True,
              as_json: bool = False, extend: bool = False) -> None:
    """``study --plan``: every run with its state and estimated time, training nothing; then what
    ``run_study`` would refuse before training is refused (``preflight.refuse_before_training``), and
    what it would say is said (``preflight.said_before_training``)."""
    folder = StudyFolder(out)
    folder.check_holds(study)
    data = load_dataset(study.dataset, data_dir, verify)
    plan = make_plan(study)
    states, changed, known = plan_states(plan, study, folder, data, extend)
    refuse_too_large_models(plan, states, known)  # named, before its speed probe would try to build it
    print_plan(describe(plan, states, known, data, folder), as_json)
    if holder := lock_holder(folder.path):  # (read, not locked: the plan never stands in a study's way)
        print(f"note: {in_use(folder.path, holder)}: the states above are as they are now, and change as it trains",
              file=sys.stderr)
    if not as_json and (after := after_the_runs(study, folder, states, data)):
        print(f"Not in the estimate, after the runs: {after}.")
    slow = [(run.name, warning) for run in plan
            if states[run.name] != "complete" and (warning := slow_precision(known[run.name][0].train))]
    if slow:  # said once here, where a study says it of each run as it starts
        first, warning = slow[0]
        who = f"{first} asks" if len(slow) == 1 else f"{len(slow)} runs ({first} first) ask"
        print(f"warning: {who} for bf16, and {warning}; --precision auto chooses fp32 here", file=sys.stderr)
    refuse_before_training(plan, states, changed, known, study, folder, data)  # after the listing, which shows them
    refuse_unexplorable(study, data)
    for note in said_before_training(plan, states, study, folder, data):
        print(note, file=sys.stderr)


def after_the_runs(study: Study, folder: StudyFolder, states: dict[str, str], data: Dataset) -> str | None:
    """What the study computes once its runs are trained, and the estimate leaves out: the
    latent-space sections not yet drawn of the models they will have, and the baselines."""
    left = [name for name in study.explore.autoencoders if states[(run := explored_run(study, name))] != "complete"
            or not folder.run(run).explored(study.explore.tsne)]
    baselines = (study.baselines.enabled
                 and not computed_baselines(folder / folder.BASELINES, study_settings(study, data)))
    said = ([f"the latent-space section of {', '.join(left)} (maps, k-NN, linear probe)"] if left else []) + (
        ["the baselines (PCA, mean image, logistic regression on pixels)"] if baselines else [])
    return " and ".join(said) or None


def describe(plan: list[PlannedRun], states: dict[str, str], known: dict[str, tuple[RunConfig, bool]],
             data: Dataset, folder: StudyFolder) -> list[dict]:
    """One JSON-able row per run: its settings as far as they are known (``plan_states``;
    ``settings_final`` says whether they are), the images of each split it uses, its state and an
    estimated wall time from a timing probe of its model on this machine (for a run to resume
    or train on, of the epochs it has left; a changed one counts whole: once its folder is deleted it trains
    from the start)."""
    rows, probes = [], {}
    for run in plan:
        cfg, final = known[run.name]
        done = states[run.name] == "complete"  # no probe of a model that will not train
        trained = epochs_done(folder, run, states[run.name])
        state = states[run.name]
        if state == "resume" and not folder.run(run.name).has_checkpoint():  # (as it says when it starts)
            state = "restart"  # unfinished, with no training state: stopped in its first epoch, or deleted
        elif state == "resume" and not trained:  # a checkpoint whose epoch cannot be read: refused when it starts
            state = "damaged"
        rows.append({"run": run.name, "kind": run.kind, "seed": run.seed, "state": state,
                     "awaits_encoder": run.awaits_encoder(states),
                     "needs": list(run.needs), "encoder": run.encoder, "strategy": cfg.strategy,
                     "model": {k: v for k, v in cfg.model.__dict__.items()}, "settings_final": final,
                     "train": dict(cfg.train.__dict__), "dataset": cfg.dataset,
                     "images": dict(zip(("train", "train_eval", "val", "test"), image_counts(cfg.train, data))),
                     "estimated_seconds": 0.0 if done else estimate_seconds(cfg, data, probes, trained)})
    return rows


def estimate_seconds(cfg: RunConfig, data: Dataset, probes: dict, trained: int = 0) -> float:
    """Wall time of a run with ``trained`` epochs done: the epochs left x (training images /
    training speed + evaluated images / evaluation speed), the speeds measured by a short probe
    of its model (a few steps at its batch size, after a warm-up), one per ``probe_key``."""
    n_train, n_train_eval, n_val, n_test = image_counts(cfg.train, data)
    t = replace(cfg.train, batch_size=min(cfg.train.batch_size, n_train))  # a batch holds what there is
    key = probe_key(replace(cfg, train=t))
    if key not in probes:
        probes[key] = bench.probe_speed(cfg.model, t)
    train_speed, eval_speed = probes[key]
    per_epoch = n_train / train_speed + (n_train_eval + n_val) / eval_speed
    return max(t.epochs - trained, 0) * per_epoch + n_test / eval_speed


def image_counts(t: TrainConfig, data: Dataset) -> tuple[int, int, int, int]:
    """The images a run trains on, re-measures the training loss on each epoch, validates on and
    tests on."""
    n_train, n_val, n_test = split_sizes(data, t.val, t.train_subset, t.eval_subset)
    return n_train, min(n_train, t.train_eval_subset or n_train), n_val, n_test


def probe_key(cfg: RunConfig) -> tuple:
    """What a speed probe's figures depend on: runs alike in these share one probe."""
    t = cfg.train
    return cfg.model, t.batch_size, t.precision, t.device, t.channels_last, t.dropout_masks


def _model_text(model: dict) -> str:
    """"linear 512", "conv", with the encoder type where it is not the paper's: what tells a
    study's models apart (the rest of each row's model is in --json)."""
    text = ModelConfig(**model).shape_text()
    return text + ("" if model["encoder_type"] == "paper" else f" {model['encoder_type']}")


def print_plan(rows: list[dict], as_json: bool, out=None) -> None:
    import json
    out = out or sys.stdout
    if as_json:
        for row in rows:
            print(json.dumps(row), file=out)
        return
    header = ["run", "state", "model", "images", "epochs", "batch", "lr", "schedule", "val", "precision", "dropout",
              "head", "estimate"]
    table = [[r["run"] + ("*" if not r["settings_final"] else "") + ("†" if r["awaits_encoder"] else ""),
              r["state"], _model_text(r["model"]),
              f"{r['images']['train']:,}/{r['images']['val']:,}", str(r["train"]["epochs"]), str(r["train"]["batch_size"]),
              f"{r['train']['lr']:g}", r["train"]["schedule"], r["train"]["val"], r["train"]["precision"],
              f"{r['model']['dropout']:g}", ("paper" if r["model"]["paper_head"] else "logits")
              if r["kind"] == CLASSIFIER else EMPTY, duration(r["estimated_seconds"])] for r in rows]
    print(text_table(header, table), file=out)
    total = sum(r["estimated_seconds"] for r in rows)
    print(f"\n{count(len(rows), 'run')}, {sum(r['state'] == 'complete' for r in rows)} finished; estimated wall "
          f"time of the rest on this machine, one run at a time: {duration(total)} (from a probe of "
          "each model: training and evaluation speed over a few batches after a warm-up; each run's start "
          "and the writing of its files are not in it, which tiny runs feel). Images: training/validation.",
          file=out)
    if any(r["state"] == "damaged" for r in rows):
        print("damaged: an unfinished run whose training state cannot be read, which the study refuses when it "
              "starts (it says why): delete its checkpoint.safetensors to train it from epoch 1", file=out)
    if any(r["state"] == "restart" for r in rows):
        print("restart: an unfinished run with no training state to resume from (stopped in its first epoch, or its "
              "checkpoint deleted): trained from epoch 1", file=out)
    if not all(r["settings_final"] for r in rows):
        print('* encoder = "best": chosen once the autoencoders are trained; until then the first '
              "autoencoder's settings stand in for its model and its estimate", file=out)
    if any(r["awaits_encoder"] for r in rows):
        print("† finished, and kept while an encoder it needs trains again or on: the study keeps it if that encoder "
              "comes out as the one it was trained on (its digest), and refuses it otherwise, before the report",
              file=out)
