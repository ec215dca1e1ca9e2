"""Carrying out one run: build its model, train it into its folder, summarise it.

``train-ae``, ``train-clf`` and every run of a study go through ``execute``; ``fashionae
eval`` is ``evaluate_run``. The folder's layout is ``RunFolder``'s business.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from . import __version__, kernels
from .checkpoint import FIX, read_checkpoint, run_settings
from .data import Dataset, holdout_order, make_splits, split_sizes
from .datasets import load_dataset
from .distributed import Dist, from_environment, on_processes, processes, sync_batchnorm
from .errors import UserError
from .machine import cpu_info
from .modelfile import load_weights
from .models import ModelConfig, build_model
from .progress import count, progress_bar
from .runconfig import FROM_TRAINED_ENCODER, FROZEN_ENCODER, STRATEGIES, RunConfig
from .runfolder import RunFolder, data_record, epoch_figures
from .settings import AUTOENCODER, CLASSIFIER
from .training import (TrainConfig, evaluate, fit, refuse_too_large, seed_everything, slow_precision, tf32,
                       to_inputs)

Log = Callable[[str], None]


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def git_commit() -> str | None:
    """The commit fashionae runs from, with "+dirty" when its files were changed since; None
    where it is not run from a git checkout of its own (an installed package inside another
    project's repository: that repository does not track fashionae's files)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
    try:
        if git("ls-files", "--error-unmatch", Path(__file__).name).returncode:
            return None
        head = git("rev-parse", "HEAD")
        if head.returncode:  # a repository without a commit yet
            return None
        commit = head.stdout.strip()
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".").stdout.strip()  # the package's files
        return (commit + "+dirty" * bool(dirty)) or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(cfg: TrainConfig, dist: Dist = Dist(), command: str | None = None) -> dict:
    """How and where a run is made: versions, hardware, threads, executor, and the command that
    runs it (train-ae's and train-clf's, which resumes it; a study's runs resume with the study)."""
    cpu = cpu_info()
    env = {"fashionae": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "device": cfg.device, "precision": cfg.precision, "threads": torch.get_num_threads(),
           "cpu": cpu["model_name"], "isa": cpu["isa"], "isa_caps": cpu["isa_caps"], "host": platform.node(),
           "platform": platform.platform(),
           "git_commit": git_commit(), "processes": dist.world,
           "executor": executor_name()}
    if command:
        env["command"] = command
    if cfg.device == "cpu":
        env["cpu_kernels"] = kernels.available()  # the speed; in bf16 inference, maybe a last bit (kernels.py)
    if cfg.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["tf32"] = tf32(cfg)
        env["deterministic"] = cfg.deterministic
    return env


# ------------------------------------------------------------------ building

def classifier_model(encoder: ModelConfig, paper_head: bool) -> ModelConfig:
    """A classifier's settings on an autoencoder's encoder: its layers, dropout and image size,
    no decoder, and the head asked for."""
    return replace(encoder, task=CLASSIFIER, decoder=ModelConfig().decoder, paper_head=paper_head)


def encoder_folder(encoder_run: str) -> RunFolder:
    """The finished autoencoder run a classifier's encoder comes from (``--encoder``)."""
    folder = RunFolder(encoder_run).require(what="--encoder")
    task = folder.config().model.task
    if task != AUTOENCODER:
        raise UserError(f"--encoder {folder.path} is a {task} run; give an autoencoder run folder")
    return folder


def named_as_given(path: Path) -> Path:
    """``path`` absolute, its folders' links followed (".." too, as the system does) but not a link
    that is its last part: a run folder that is a link (moved to another disk) keeps its study's
    run name, by which the study knows which encoder a classifier was trained on."""
    path = path.absolute()
    return path.resolve() if path.name in ("", ".", "..") else path.parent.resolve() / path.name


def classifier_from_encoder(cfg: RunConfig) -> tuple[RunConfig, dict[str, torch.Tensor] | None]:
    """Resolve a classifier run's model settings from its encoder's run and return the
    encoder's weights when the strategy starts from them."""
    if cfg.strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {cfg.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cfg.encoder_run is None:
        if cfg.strategy in FROM_TRAINED_ENCODER:
            raise UserError(f"strategy {cfg.strategy} starts from a trained encoder: pass "
                            "--encoder AE_RUN_DIR")
        return cfg, None
    folder = encoder_folder(cfg.encoder_run)
    ae = folder.load_model()
    resolved = replace(cfg, model=classifier_model(ae.config, cfg.model.paper_head),
                       encoder_run=str(named_as_given(folder.path)), encoder_sha256=folder.model_sha256())
    weights = ae.encoder.state_dict() if cfg.strategy in FROM_TRAINED_ENCODER else None
    return resolved, weights


def build(cfg: RunConfig, encoder_weights=None, dist: Dist = Dist()) -> torch.nn.Module:
    refuse_too_large(cfg.model, cfg.train, frozen_encoder=cfg.strategy in FROZEN_ENCODER)
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model)
    if encoder_weights is not None:
        load_weights(model.encoder, encoder_weights, cfg.encoder_run or "encoder")
    if cfg.strategy in FROZEN_ENCODER:
        model.freeze_encoder()
    model = sync_batchnorm(model.to(cfg.train.device), dist)
    if dist.active:  # the same weights everywhere, but each process its own dropout masks
        torch.manual_seed(cfg.train.seed * 1_000_003 + dist.rank)
    return model


RESUMING = "resuming from its last finished epoch"  # what a run resumed from its checkpoint says first
EXECUTOR_ENV = "FASHIONAE_EXECUTOR"  # set by an executor (RAY) in the processes that train its runs
LOCAL = "local"  # the executor of runs trained one after the other in the study's own process
RAY = "ray"  # the executor of runs trained as Ray tasks (ray_executor)


def executor_name() -> str:
    """The executor this process trains runs for (recorded in each run's environment)."""
    return os.environ.get(EXECUTOR_ENV, LOCAL)


def epoch_prefix(label: str) -> str:
    """How a run's line for each finished epoch begins."""
    return f"{label} epoch "
DATA_DECIDED = ("model.image_size", "model.num_classes", "dataset", "dataset_sha256")  # keys of RunConfig.identity


def refuse_other_settings(dist: Dist, settings: dict) -> None:
    """Every process trains the same run (``settings``: its identity, the settings that change its
    numbers), before anything is written: torchrun gives each the same command, but processes
    started by another launcher (a batch script's lines) may differ, and machines may resolve
    "auto" otherwise (bf16 native on one), which DDP met as a mismatch of tensor sizes, or not at
    all. Where the encoder's folder is, or whether TensorBoard logs, may differ."""
    given = dist.gather_object(settings)
    for rank, theirs in enumerate(given[1:], 1):
        if differ := [k for k in given[0] if theirs.get(k) != given[0][k]]:
            shown = "; ".join(f"{k} {given[0][k]!r} on process 0, {theirs.get(k)!r} on process {rank}"
                              for k in differ[:3]) + (f"; and {len(differ) - 3} more" if len(differ) > 3 else "")
            raise UserError(f"the {dist.world} processes were given different runs ({shown}); start every process "
                            "with the same command, on machines alike (or with --device and --precision given)")


def with_data(cfg: RunConfig, data: Dataset) -> RunConfig:
    """The run's settings with what the data decides (``DATA_DECIDED``): image size, classes,
    dataset identity."""
    model = replace(cfg.model, image_size=data.image_size, num_classes=len(data.classes))
    return replace(cfg, model=model, dataset=data.name, dataset_sha256=data.sha256)


def check_encoder_data(cfg: RunConfig, data: Dataset) -> None:
    """An encoder fits images of the size it was trained on (its bottleneck's input is sized
    for them); the classes may differ, since the classifier's head is new."""
    if tuple(cfg.model.image_size) != data.image_size:
        encoder = encoder_folder(cfg.encoder_run)
        theirs = encoder.config().dataset
        where = encoder.data_record().get("source") if encoder.config().dataset_sha256 else theirs
        raise UserError(f"the encoder of {cfg.encoder_run} was trained on {cfg.model.image_size[0]}x"
                        f"{cfg.model.image_size[1]} images ({theirs}), but {data.name} has {data.image_size[0]}x"
                        f"{data.image_size[1]}; train the classifier on data of the autoencoder's size, e.g. "
                        f"the data it was trained on: --dataset {where}")


def subset_note(t: TrainConfig, data: Dataset) -> str | None:
    """What a run says where a subset asks for more images than its set holds (its config.json
    records the number asked for): all of them are used."""
    n_train, n_val, _ = split_sizes(data, t.val)
    over = [(f"{key} {asked:,}", f"{there:,} {what}") for key, asked, there, what in (
        ("train_subset", t.train_subset, n_train, "training"), ("eval_subset", t.eval_subset, n_val, "validation"))
        if asked and asked > there]
    if not over:
        return None
    return (" and ".join(k for k, _ in over) + (" are" if len(over) > 1 else " is") + " more than the "
            + " and ".join(n for _, n in over) + " images; all of them are used")


def check_every_class(splits, data: Dataset, t: TrainConfig) -> None:
    """A classifier learns only the classes it sees, and a class it is never tested on would
    score a meaningless 0 %: each needs training and test images (a dataset of one label,
    enough for an autoencoder, is refused here)."""
    for split, labels, subset, whole in (("training", splits.train_y, "train_subset", data.train_labels),
                                         ("test", splits.test_y, "eval_subset", data.test_labels)):
        counts = torch.bincount(labels, minlength=len(data.classes))
        if not (counts == 0).any():
            continue
        k = int((counts == 0).nonzero()[0])
        there = int((whole == k).sum())  # in the dataset's set, before the run's split and subset
        said = f"{data.name}: class {data.classes[k]!r} has no {split} images among the {len(labels):,} a " \
               f"classifier run {'trains' if split == 'training' else 'is tested'} on"
        if not there:
            elsewhere = int((data.test_labels if split == "training" else data.train_labels).eq(k).sum())
            raise UserError(f"{said}, nor has the dataset; give it {split} images"
                            + ("" if elsewhere else " (a class without any image: number the classes from 0 without "
                                                    "gaps)"))
        held = 0  # (of the whole held-out sixth, whatever part of it --eval-subset validates on)
        if split == "training" and t.val == "holdout":
            order, n_held = holdout_order(len(data.train_labels))
            held = int((data.train_labels[order[:n_held]] == k).sum())
        fixes = (["give it more images, or validate on the test set (--val test; in a study, val = \"test\")"]
                 if held else []) + (
            [f"use a larger subset than {getattr(t, subset):,} (--{subset.replace('_', '-')}; in a study, {subset})"]
            if getattr(t, subset) and there > held else [])
        raise UserError(f"{said}: of its {count(there, split + ' image')}"
                        + (f", {held} {'is' if held == 1 else 'are'} held out for validation (a sixth of the "
                           "training images)" if held else "")
                        + (f"{' and' if held else ','} {there - held} {'lies' if there - held == 1 else 'lie'} beyond "
                           "the subset" if there > held else "")
                        + "; " + ", or ".join(fixes))


# ------------------------------------------------------------------ running

def execute(cfg: RunConfig, out: str | Path, data: Dataset | None = None,
            data_dir: str | None = None, verify: bool = True, label: str = "",
            log: Log = stderr, on_epoch: Callable[[dict], str | None] | None = None,
            on_step: Callable[[int, int], None] | None = None, say_subsets: bool = True,
            extend: bool = False, command: str | None = None) -> dict:
    """Train (or resume, or skip if finished) one run in ``out``; return its summary.
    ``extend``: train the run there on for more epochs than it was asked for (``RunFolder.extends``).
    ``command``: the command line that runs it, recorded to say how to resume it.
    ``on_epoch(row)`` may return a note appended to each epoch's log line; ``on_step(step,
    steps)`` replaces the in-epoch progress bar; ``say_subsets``: say the notes on its data
    (``subset_note``; a study says its runs' once, ``preflight.notes_on_runs``). Under torchrun
    every process calls this; process 0 alone writes the folder."""
    folder = RunFolder(out)
    label = label or str(folder.path)
    cfg = replace(cfg, train=cfg.train.validate().resolved(folder.started()), model=cfg.model.validate())
    if cfg.train.tensorboard:  # before anything is written, by every process
        from .tracking import need_tensorboard
        need_tensorboard()
    dist = from_environment(cfg.train.device)
    if dist.rank:
        log = lambda message: None  # noqa: E731 (process 0 speaks for all)
    if dist.active:  # before a process can stop on its own (a batch size, an encoder, data of its own)
        refuse_other_settings(dist, {**cfg.identity(), "--extend": extend})
    encoder_weights = None
    if cfg.model.task == CLASSIFIER:
        cfg, encoder_weights = classifier_from_encoder(cfg)
        if encoder_weights is not None and cfg.train.val == "holdout" \
                and encoder_folder(cfg.encoder_run).config().train.val == "test":
            log(f"{label}: note: the encoder of {cfg.encoder_run} was trained with --val test, on every training "
                "image, the held-out ones too; this classifier validates on those, so its validation figures may "
                "flatter it (its test figures do not): train both with the same --val")
    if data is None:
        data = load_dataset(cfg.dataset, data_dir, verify)
    if cfg.model.task == CLASSIFIER and cfg.encoder_run is not None:
        check_encoder_data(cfg, data)
    cfg = with_data(cfg, data)
    if dist.active:  # the data each process found, and the encoder's settings it took
        refuse_other_settings(dist, cfg.identity())
    if dist.active and cfg.train.batch_size % dist.world:
        raise UserError(f"batch size {cfg.train.batch_size} does not divide between {dist.world} "
                        f"processes; choose a multiple of {dist.world}")
    state = folder.state_for(cfg, extend)
    if extend and state == "new":  # a mistyped --out, or settings that name another default, train nothing anew
        raise UserError(f"--extend: {folder.path} holds no run to train on; give the folder of the run to train "
                        "on (and its settings), or leave --extend out to train a new run")
    if state == "complete":
        if dist.rank == 0:  # a checkpoint left by a stop before its removal
            try:
                folder.drop_training_state()
            except UserError:  # a read-only copy, or no training state by that name: the finished run
                pass           # stays as it is, as the study keeps it (--extend, which needs one, says so)
        logged = False
        if cfg.train.tensorboard and dist.rank == 0:
            from .tracking import log_finished_run
            with folder.lock():
                logged = log_finished_run(folder, data)
        log(f"{label}: already finished, kept as is"
            + ("; its TensorBoard events written from metrics.jsonl" if logged else ""))
        return folder.summary()

    t = cfg.train
    splits = make_splits(data, t.val, t.train_subset, t.eval_subset)
    if cfg.model.task == CLASSIFIER:
        check_every_class(splits, data, t)  # before the folder is made
    with folder.lock() if dist.rank == 0 else nullcontext():  # process 0 holds it for all
        # Again, now that no other fashionae can write here; process 0's answer for all, as
        # the others would read the folder while it writes.
        state = dist.broadcast_object(folder.state_for(cfg, extend) if dist.rank == 0 else None)
        if state == "complete":
            return folder.summary()
        if say_subsets and (note := subset_note(t, data)):
            log(f"{label}: {note}")
        model = build(cfg, encoder_weights, dist)  # first: a model too large leaves no folder behind
        checkpoint = folder / folder.CHECKPOINT
        env = environment(t, dist, command)
        before = folder.environment() if state in ("resume", "extend") else {}
        if before:  # a damaged record of its sessions: refused by every process alike, before anything changes
            folder.sessions()
        started_on = before.get("threads")
        kept = folder.has_checkpoint()  # its training state (the extension below keeps it)
        if kept and (trained := before.get("processes", 1)) != dist.world:  # before its record is rewritten
            go_on = "train it on, as it was trained," if state == "extend" else "resume it"
            raise UserError(f"{label} was trained on {processes(trained)}, and this command runs {dist.world}; "
                            f"{go_on} {on_processes(trained)}")
        checked: list = []  # the checkpoint as read and checked here, handed to fit (popped: not held as it trains)
        if state == "extend":  # unfinished again: its epochs so far stay in metrics.jsonl, and it resumes
            # its state checked first (damaged, another run's): refused, the finished run stays as it was
            fix = (f"delete it, and {label} stays the finished run it is; train a run of {t.epochs} epochs into "
                   "another --out") if folder.is_complete() else FIX
            checked.append(read_checkpoint(checkpoint, run_settings(model, t), dist.world, fix))
            trained = checked[0][1]["epoch"]
            if dist.rank == 0:
                folder.reopen()
            state, resuming = "resume", (f"training it on from epoch {trained} to {t.epochs}" if trained < t.epochs
                                         else f"finishing it at epoch {trained}, which it has trained")
            if not t.keep_state:
                resuming += ("; its training state is not kept (keep_state, --keep-state), so it cannot be trained "
                             "on again")
        else:
            resuming = RESUMING
            if kept:  # its state checked before anything is said or rewritten (damaged, another run's): refused,
                checked.append(read_checkpoint(checkpoint, run_settings(model, t), dist.world))  # config.json as it was
        if dist.rank == 0:  # the epochs a checkpoint keeps ran in earlier sessions: their record stays
            folder.write_config(cfg, data_record(data, splits), env, keep_sessions=kept and bool(before))
        dist.barrier()
        if state == "resume" and kept:
            log(f"{label}: {resuming}")
            if note := other_threads_note(started_on):
                log(f"{label}: {note}")
        elif state == "resume":
            log(f"{label}: no checkpoint to resume from, so it trains from epoch 1")
        if warning := slow_precision(t):
            log(f"{label}: {warning}; " + ("it started in bf16, which a resumed run keeps: resume it where bf16 "
                                          "is native, or delete it to start over in fp32"
                                          if state == "resume" and kept
                                          else "--precision auto chooses fp32 here"))
        callbacks, tensorboard = [], None
        if dist.rank == 0:
            callbacks.append(epoch_writer(folder, label, t.epochs, log, on_epoch))
            if t.tensorboard:
                from .tracking import TensorBoardLogger
                tensorboard = TensorBoardLogger(folder, cfg, model, splits.val_x)
                callbacks.append(tensorboard)
        history = fit(model, (splits.train_x, splits.train_y), (splits.val_x, splits.val_y), t,
                      checkpoint=checkpoint, callbacks=callbacks, dist=dist,
                      checked=checked.pop() if checked else None,
                      progress=(on_step or progress_bar(f"{label} training")) if dist.rank == 0 else None)
        summary = summarize(model, history, splits, t, data.classes, dist)
        if dist.rank == 0:
            if tensorboard is not None:
                tensorboard.close(summary, history)
            folder.write_metrics(history)
            folder.write_model(model)
            summary = folder.write_summary(summary)
            folder.drop_training_state()
        dist.barrier()
    return summary


def other_threads_note(started_on: int | None) -> str | None:
    """What to say of a run resumed on other threads than it started on (None: the same)."""
    now = torch.get_num_threads()
    if not started_on or started_on == now:
        return None
    same = f"--cpus-per-run {started_on}" if executor_name() == RAY else f"OMP_NUM_THREADS={started_on}"
    return (f"it started on {count(started_on, 'thread')} and resumes on {now}, which sum in another "
            "order: its result will differ from an uninterrupted run's about as much as another seed's "
            f"({same} resumes it exactly)")


def epoch_writer(folder: RunFolder, label: str, epochs: int, log: Log,
                 on_epoch: Callable[[dict], str | None] | None) -> Callable[[list[dict]], None]:
    """The callback that writes metrics.jsonl after each epoch and logs the epoch's line (with
    ``on_epoch``'s note)."""
    def write_and_log(history: list[dict]) -> None:
        folder.write_metrics(history)
        row = history[-1]
        acc = f"  val_acc {row['val_acc']:.4f}" if "val_acc" in row else ""
        note = on_epoch(row) if on_epoch else None
        note = f"  [{note}]" if note else ""
        log(f"{epoch_prefix(label)}{row['epoch']}/{epochs}: train {row['train_loss']:.5f}  "
            f"train(eval) {row['train_eval_loss']:.5f}  val {row['val_loss']:.5f}{acc}  "
            f"{row['seconds']:.1f}s  {row['train_images_per_second']:.0f} img/s{note}")
    return write_and_log


def confusion(true: torch.Tensor, predicted: torch.Tensor, classes: tuple[str, ...]) -> dict:
    """Confusion matrix (rows: true class, columns: predicted), per-class accuracy (recall)
    and the most frequent confusion."""
    k = len(classes)
    cm = torch.zeros(k, k, dtype=torch.int64)
    cm.index_put_((true, predicted), torch.ones_like(true), accumulate=True)
    per_class = (cm.diag().double() / cm.sum(1).clamp(min=1)).tolist()
    off = cm.clone().fill_diagonal_(0)
    i, j = divmod(int(off.argmax()), k)
    return {"per_class_acc": per_class, "confusion_matrix": cm.tolist(),
            "most_confused": {"true": classes[i], "predicted": classes[j], "count": int(off[i, j])}}


def no_confusion(k: int) -> dict:
    """``confusion``'s figures of a diverged classifier (its accuracy not a number): argmax's answers
    for logits that are not numbers confuse nothing, so none is said (the claims judge none)."""
    return {"per_class_acc": [math.nan] * k, "confusion_matrix": [[math.nan] * k for _ in range(k)],
            "most_confused": {"true": None, "predicted": None, "count": None}}


def summarize(model, history: list[dict], splits, t: TrainConfig, classes: tuple[str, ...],
              dist: Dist = Dist()) -> dict:
    device = torch.device(t.device)
    test = evaluate(model, to_inputs(splits.test_x, device), splits.test_y.to(device), t,
                    predictions=True, dist=dist)
    train_seconds = sum(len(splits.train_x) / r["train_images_per_second"] for r in history)
    summary = {
        **epoch_figures(history), "test_loss": test["loss"],
        "seconds_total": sum(r["seconds"] for r in history),
        "images_per_second": len(splits.train_x) * len(history) / train_seconds,
    }
    if "acc" in test:
        summary.update(test_acc=test["acc"], **(confusion(splits.test_y, test["predictions"], classes)
                                                if not math.isnan(test["acc"]) else no_confusion(len(classes))))
    return summary


def evaluate_run(run_dir: str | Path, device: str = "auto", data_dir: str | None = None,
                 verify: bool = True, log: Log = stderr) -> list[tuple[str, dict, int]]:
    """``fashionae eval``: reload a finished run's model and measure it again on its
    validation and test sets, in the precision it was trained in: [(set name, figures, images)]."""
    folder = RunFolder(run_dir).require()
    cfg = folder.config()
    t = replace(cfg.train, device=device).validate().resolved()
    if warning := slow_precision(t):
        log(f"{run_dir}: it was trained in bf16, measured again in bf16 here, and {warning}")
    model = folder.load_model(t.device)
    splits = make_splits(folder.load_data(data_dir, verify), t.val, t.train_subset, t.eval_subset)
    return [(name, evaluate(model, to_inputs(x, t.device), y.to(t.device), t), len(x))
            for name, x, y in (("validation", splits.val_x, splits.val_y),
                               ("test", splits.test_x, splits.test_y))]
