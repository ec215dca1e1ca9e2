"""One trainer for every model.

The data sit in memory as one float tensor per set; each epoch draws a seeded random
permutation and slices batches out of it (no DataLoader in the hot path). The loop never
waits on the device inside an epoch: losses and per-model figures (accuracy) are summed on
the device and read once at the end. After every epoch the whole training state goes into
one checkpoint file (``checkpoint.py``), so a killed run resumes exactly where it stopped.

Under torchrun (``distributed.py``) every process runs this same loop on its slice of each
global batch; gradients are averaged by DistributedDataParallel and the epoch's sums are
added up across processes, so the figures mean the same at any number of processes.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import settings
from .checkpoint import load_checkpoint, rng_state, run_settings, save_checkpoint
from .data import VAL_SPLITS
from .distributed import Dist
from .dropout import DROPOUT_MASKS, use_dropout_masks
from .errors import UserError
from .machine import memory_bytes
from .models import ModelConfig, parameter_counts
from .settings import (CLASSIFIER, boolean, integer_in, number_in, optional_positive_int,
                       positive_int, setting)

SCHEDULES = ("constant", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
EVAL_BATCH = 250  # measured: 100-250 runs ~40 % faster than 1000 (cache-sized activations)


@dataclass
class TrainConfig:
    epochs: int = setting(60, "training epochs", check=positive_int)
    batch_size: int = setting(100, "images per step (under torchrun: the global batch, split "
                              "between the processes)", check=positive_int)
    lr: float = setting(1e-3, "Adam's learning rate (the peak, with onecycle), above 0 and at most 1",
                        check=number_in(0, 1, closed_low=False))
    schedule: str = setting("constant", "constant (the author's) | onecycle", choices=SCHEDULES)
    seed: int = setting(0, "seed of the weights, the shuffling and dropout", check=integer_in(0, 2**32 - 1))
    val: str = setting("holdout", "holdout: a fixed sixth of the training images | test: the test "
                       "set (the author's protocol)", choices=VAL_SPLITS)
    train_subset: int | None = setting(None, "train on N training images only: the first N of the training set "
                                       "(under holdout, the first of a fixed shuffle; else as the file orders them) "
                                       "(default: all)", check=optional_positive_int, metavar="N")
    eval_subset: int | None = setting(None, "validate and test on N images only: the first N of each set (the held-out "
                                      "images in a fixed shuffle; the test images as the file orders them) "
                                      "(default: all)", check=optional_positive_int, metavar="N")
    train_eval_subset: int | None = setting(None, "re-measure the train loss (eval mode) on N training images "
                                            "only: the first N of those the run trains on (default: all)",
                                            check=optional_positive_int, metavar="N")
    device: str = setting("auto", "auto (CUDA when present; a resumed run keeps its own) | cpu | cuda",
                          choices=DEVICES)
    precision: str = setting("auto", "auto (bf16 autocast where the hardware has native bf16; a resumed "
                             "run keeps its own) | fp32 | bf16", choices=PRECISIONS)
    dropout_masks: str = setting("auto", "how dropout draws its masks on the CPU: auto (counter for a new "
                                 "run; a resumed run keeps the masks it started with) | counter "
                                 "(SplitMix64, fastest) | mersenne (torch's generator, as fashionae 0.2 drew) | "
                                 "stock (torch's own dropout, slowest)", choices=("auto", *DROPOUT_MASKS),
                                 before="mersenne")
    channels_last: bool = setting(True, "keep the NCHW memory layout instead of channels-last",
                                  check=boolean)
    augment: bool = setting(False, "random 2-pixel shifts and horizontal flips", check=boolean,
                            only=CLASSIFIER)
    deterministic: bool = setting(False, "bit-reproducible CUDA runs (deterministic kernels, "
                                  "slower); CPU runs always are, on the same threads", check=boolean)
    tensorboard: bool = setting(False, "also log to RUN/tensorboard/ (pip install "
                                "'fashionae[tensorboard]')", check=boolean, identity=False)
    keep_state: bool = setting(False, "keep the training state (Adam's moments, the random generators) in "
                               "RUN/checkpoint.safetensors once the run finishes, so that --extend can train it "
                               "for more epochs (about three times the model file)", check=boolean,
                               identity=False)

    @property
    def fitted_to_epochs(self) -> bool:
        """Whether the learning rate's schedule is shaped by the number of epochs (one-cycle,
        ``lr_at``): then a run trained on for more epochs is not the longer run, and a checkpoint
        is tied to its epochs. A constant schedule's epochs change none of the epochs' numbers."""
        return self.schedule != "constant"

    def validate(self) -> "TrainConfig":
        settings.check(self)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("device cuda was asked for (--device cuda, or device = \"cuda\" in a study file) but no "
                            "CUDA device is available here; use cpu, or auto to take CUDA where there is one")
        return self

    def resolved(self, started: "TrainConfig | None" = None) -> "TrainConfig":
        """The same settings with every "auto" made concrete: ``started`` holds the settings of
        the run being resumed (None for a new run), which keeps the device, precision and masks
        it started with (its numbers go on as they began, wherever it resumes: on a machine that
        now has a GPU, or under a Ray worker kept off the driver's GPU). A new run takes CUDA
        when present, bf16 where it is native, and counter masks."""
        cfg = self
        if started is not None:
            cfg = replace(self, **{k: getattr(started, k) for k in ("device", "precision", "dropout_masks")
                                   if getattr(self, k) == "auto" and getattr(started, k) != "auto"})
            if cfg.device == "cuda" and self.device == "auto" and not torch.cuda.is_available():
                raise UserError("this run started on CUDA, which a resumed run keeps, and no CUDA device is "
                                "visible here; resume it where one is (under Ray: --gpus-per-run), or delete "
                                "its folder to start over")
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if native_bf16(device) else "fp32"
        masks = "counter" if cfg.dropout_masks == "auto" else cfg.dropout_masks
        return replace(cfg, device=device, precision=precision, dropout_masks=masks)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return settings.from_dict(cls, d, "training setting")


def native_bf16(device: str) -> bool:
    """Whether bf16 matrix work is native here (AMX/AVX-512-BF16 CPUs, Ampere+ GPUs)."""
    if device == "cuda":
        try:  # an older GPU emulates bf16, and torch counts that as support by default
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # a torch without the argument did not count emulation
            return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


TRAINED_BYTES, FROZEN_BYTES = 16, 4  # a trained parameter's fp32 weight, gradient and Adam's two
# moments; a frozen one's weight alone. A whole run measured 16.3 bytes a parameter, its checkpoints
# and model file written from the tensors in place (benchmarks/memory.py); 38 when they were built in memory


def refuse_too_large(model: ModelConfig, cfg: TrainConfig, who: str = "the model",
                     frozen_encoder: bool = False) -> None:
    """Refuse, before it is built, a model whose weights, gradients and Adam's moments alone
    (a lower bound of what training it takes) exceed the memory of the device it would train on
    (``cfg``, resolved): built, it would fail at a random step, or be killed by the system."""
    total, encoder = parameter_counts(model)
    frozen = encoder if frozen_encoder else 0
    need, have = (total - frozen) * TRAINED_BYTES + frozen * FROZEN_BYTES, memory_bytes(cfg.device)
    if have is not None and need > have:
        smaller = "smaller images" if "latent" in model.unused() else "a smaller latent or smaller images"
        raise UserError(f"{who} has {total:,} parameters: training it takes at least {need / 2**30:,.0f} GiB "
                        f"(its weights, and the gradients and Adam's moments of those it trains), more than this "
                        f"{'GPU' if cfg.device == 'cuda' else 'machine'}'s {have / 2**30:,.0f} GiB; use {smaller}")


def slow_precision(cfg: TrainConfig) -> str | None:
    """What to say of a resolved precision that this hardware only emulates, else None."""
    if cfg.precision != "bf16" or native_bf16(cfg.device):
        return None
    if cfg.device == "cuda":
        return "bf16 is emulated on this GPU (older than Ampere), so it runs slower than fp32"
    return ("bf16 is emulated on this CPU (it has neither AVX-512-BF16 nor AMX), so it runs many times "
            "slower than fp32 (training: 89 against about 1,500 images/s on a 2-core AVX2 EPYC)")


def tf32(cfg: TrainConfig) -> bool:
    """Whether CUDA's fp32 matrix products and convolutions run in TF32: unless ``deterministic``."""
    return not cfg.deterministic


def configure_device(cfg: TrainConfig) -> None:
    """CUDA's numerics: TF32 matrix products for fp32 (allowed by the protocol, recorded in each
    run's environment), unless ``deterministic`` asks for bit-reproducible runs: then
    deterministic kernels, no cuDNN autotuning, and a fixed cuBLAS workspace. On the CPU every
    run is bit-reproducible already; there the heap keeps freed memory (``keep_freed_memory``)."""
    if cfg.device != "cuda":
        keep_freed_memory()
        return
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32(cfg)


def keep_freed_memory() -> None:
    """Keep freed blocks of up to 32 MiB in the process's heap (glibc only; elsewhere nothing).

    By default glibc hands large freed blocks back to the OS and maps fresh pages for the next
    allocation, so every training step page-faults its activations in again: 2,400-3,500 faults
    a step on the paper autoencoder, several percent of the step. The heap then stays at the
    run's peak instead of shrinking between steps."""
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: allocate blocks below 32 MiB from the heap
    mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: never give the heap's top back


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """The learning rate of a step: constant, or one-cycle (25 % linear warm-up from
    lr/25 to lr, then cosine down to lr/10^4). A pure function of the step, so resuming
    needs no scheduler state."""
    if cfg.schedule == "constant":
        return cfg.lr
    warm = max(1, int(0.25 * total))
    if step < warm:
        return cfg.lr / 25 + (cfg.lr - cfg.lr / 25) * step / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    low = cfg.lr / 1e4
    return low + (cfg.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_inputs(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 [N, H, W] -> float [N, 1, H, W] in [0, 1], on the device, once per run."""
    return images.to(device).unsqueeze(1).float().div_(255)


def autocast(cfg: TrainConfig):
    """The precision ``cfg`` asks for, whatever the caller's: fp32 turns off an autocast a
    caller's own loop runs under (a loaded run's ``embed`` in a bf16 training loop)."""
    if cfg.precision == "bf16":
        return torch.autocast(cfg.device, dtype=torch.bfloat16)
    return torch.autocast(cfg.device, enabled=False)


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (pad + crop) and horizontal flips, per image."""
    n, _, h, w = x.shape
    dx, dy = (torch.randint(-2, 3, (2, n), generator=gen)).to(x.device)
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    rows = (torch.arange(h, device=x.device)[None, :] + 2 + dy[:, None])  # [n, h]
    cols = (torch.arange(w, device=x.device)[None, :] + 2 + dx[:, None])
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    return padded[idx_n, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
             predictions: bool = False, dist: Dist = Dist()) -> dict:
    """Mean loss and the model's own figures (accuracy, for a classifier) over a whole set,
    in eval mode. Under torchrun each process measures its share and the sums are added.

    One autocast region for the whole set, under ``no_grad`` rather than ``inference_mode``:
    there autocast casts each weight to bf16 once, not once a batch (PyTorch keeps no casts
    under ``inference_mode``), and ``layers.Layers`` fuses its layers all the same (autograd is
    off). Evaluation runs 1.02-1.10x faster so (``benchmarks/README.md``)."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {"loss": torch.zeros((), device=x.device, dtype=torch.float64)}
    preds = []
    batches = [slice(i, i + EVAL_BATCH) for i in range(0, len(x), EVAL_BATCH)]
    share = batches[dist.rank::dist.world]
    counted = bool(share)
    with torch.no_grad(), autocast(cfg):
        # A process left without a batch (a set of fewer batches than processes) still measures
        # one image, counted for nothing, so that every process adds up the same figures.
        for s in share or [slice(0, 1)]:
            xb, yb = x[s], y[s]
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            out = model(xb, yb)
            sums["loss"] += out.loss.double() * len(xb) * counted
            for k, v in model.metrics(out, yb).items():
                sums[k] = sums.get(k, 0) + v * counted
            if predictions:
                preds.append(out.prediction if counted or out.prediction is None else out.prediction[:0])
    model.train(was_training)
    result = {k: v.item() / len(x) for k, v in dist.sum({k: v.double() for k, v in sums.items()}).items()}
    if predictions and preds[0] is not None:  # batch i was process i % world's (i // world)-th
        shares = dist.gather_object([p.cpu() for p in preds])
        result["predictions"] = torch.cat([shares[i % dist.world][i // dist.world] for i in range(len(batches))])
    return result


# ------------------------------------------------------------------ the loop

Callback = Callable[[list[dict]], None]  # called after every epoch with the history so far


def train_step(net: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               cfg: TrainConfig, weight: torch.Tensor | None = None):
    """One optimisation step: the forward pass under autocast, backward, Adam; the model's
    output. ``weight`` scales the loss under torchrun (see ``Dist.shard``)."""
    with autocast(cfg):
        out = net(xb, yb)
    opt.zero_grad(set_to_none=True)
    (out.loss if weight is None else out.loss * weight).backward()
    opt.step()
    return out


def prepare(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Set up the device, the model and its optimiser as every training run does (``fit``, and
    ``bench.probe_speed``'s timing of a step): the device's numerics, the dropout masks, the memory
    layout, and Adam over the trainable parameters."""
    configure_device(cfg)
    use_dropout_masks(model, cfg.dropout_masks)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused Adam kernel updates every parameter in one pass (CPU and CUDA).
    return torch.optim.Adam(params, lr=cfg.lr, fused=True)


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig,
        checkpoint: Path | None = None, callbacks: list[Callback] = (),
        progress: Callable[[int, int], None] | None = None, dist: Dist = Dist(),
        checked: tuple[dict, dict] | None = None) -> list[dict]:
    """Train ``model`` for ``cfg.epochs`` epochs and return one metrics row per epoch.

    ``train`` and ``val`` are (images uint8 [N, H, W], labels) pairs; what ``cfg`` leaves to
    auto is decided as for a new run (``TrainConfig.resolved``; ``runs.execute`` resolves a
    resumed run's). The model is expected on the right device, seeded and built by the caller.
    With ``checkpoint``, a run that finds a checkpoint there resumes from it (``checked``: what
    ``read_checkpoint`` read of it already, so that it is not read twice), and every epoch
    writes one (rank 0 writes).
    Each row holds ``train_loss`` (averaged during the epoch, training mode),
    ``train_eval_loss`` (the train set re-measured in eval mode) and ``val_loss``, and the
    same for every figure of ``model.metrics`` (``train_acc``, ``train_eval_acc``, ``val_acc``).
    """
    cfg = cfg.resolved()
    device = torch.device(cfg.device)
    opt = prepare(model, cfg)
    train_x, train_y = to_inputs(train[0], device), train[1].to(device)
    val_x, val_y = to_inputs(val[0], device), val[1].to(device)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    net = dist.wrap(model)  # DistributedDataParallel under torchrun, the model itself otherwise
    n = len(train_x)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    start, history = 0, []
    settings_of_run = run_settings(model, cfg)  # what ties its checkpoint to it: once, not each epoch
    if checkpoint is not None and checkpoint.exists():
        start, history = load_checkpoint(checkpoint, model, opt, shuffle_gen, settings_of_run, dist.rank, dist.world,
                                         checked)
        checked = None  # (its tensors, copied into the model and the optimizer, freed for the epochs)

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=shuffle_gen).to(device)
        sums: dict[str, torch.Tensor] = {"loss": torch.zeros((), device=device, dtype=torch.float64)}
        for step in range(steps_per_epoch):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            xb = train_x[idx]
            if cfg.augment:  # drawn for the whole global batch, so every rank's generator agrees
                xb = augment_batch(xb, shuffle_gen)
            xb, yb, weight = dist.shard(xb, train_y[idx])
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            lr = lr_at(epoch * steps_per_epoch + step, total_steps, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            out = train_step(net, opt, xb, yb, cfg, weight if dist.active else None)
            counted = weight > 0  # a stand-in image (see Dist.shard) adds nothing to the figures
            sums["loss"] += out.loss.detach().double() * len(yb) * counted
            for k, v in model.metrics(out, yb).items():
                sums[k] = sums.get(k, 0) + v * counted
            if progress is not None:
                progress(step + 1, steps_per_epoch)
        if device.type == "cuda":
            torch.cuda.synchronize()  # once per epoch, so the timing covers the queued work
        train_seconds = time.perf_counter() - t0
        sums = dist.sum({k: v.double() for k, v in sums.items()})
        k = cfg.train_eval_subset or n
        dist.sync_buffers(model)  # every process evaluates the model process 0 saves
        train_eval = evaluate(model, train_x[:k], train_y[:k], cfg, dist=dist)
        val_eval = evaluate(model, val_x, val_y, cfg, dist=dist)
        row = {"epoch": epoch + 1}
        for name in train_eval:  # loss, then the model's figures: train_, train_eval_, val_
            stem = "loss" if name == "loss" else name
            row[f"train_{stem}"] = sums[name].item() / n
            row[f"train_eval_{stem}"] = train_eval[name]
            row[f"val_{stem}"] = val_eval[name]
        row["lr"] = lr
        row["seconds"] = time.perf_counter() - t0
        row["train_images_per_second"] = n / train_seconds
        history.append(row)
        if checkpoint is not None:
            states = dist.gather_object(rng_state(shuffle_gen))
            if dist.rank == 0:
                save_checkpoint(checkpoint, model, opt, epoch + 1, history, states, settings_of_run)
        for callback in callbacks:
            callback(history)
    return history
