"""``fashionae bench``: the speed of fashionae's trainer against a loop written the way the
author wrote it, measured in one process, in alternating windows (the machine's speed drifts,
so only ratios measured side by side mean anything).

(a) reference: the paper autoencoder written as the author wrote it (``author_model``: one
    ``nn.Sequential`` of stock layers, none of fashionae's), a per-sample ``Dataset`` (uint8 ->
    float per image, like ToTensor), ``DataLoader(shuffle=True)`` at batch 100, fp32, NCHW,
    default Adam; its evaluation passes loop over DataLoaders the same way under ``no_grad``;
(b) fashionae: ``training.fit`` itself, with its default settings (in-memory batches,
    channels-last, ReLU + dropout (+ max-pooling) by the compiled kernels where they build, fused
    Adam, bf16 where the hardware has it).

Two figures each: the training pass alone, and the whole epoch of the author's protocol
(training pass + the training set re-measured in eval mode + the validation set, a sixth of
the training set's size). Both train the paper autoencoder (l_size 512) on real images when the
dataset is found (random images otherwise; the speed does not depend on them). The machine (CPU
model and ISA, or GPU) is printed and recorded with every result, with the target that applies.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
from torch import nn

from . import kernels
from .data import IMAGE_SIZE, held_out_size
from .errors import UserError
from .machine import cpu_info, describe_cpu
from .models import ModelConfig, build_model
from .settings import positive_int
from .training import TrainConfig, fit, native_bf16

BATCH = 100
WINDOWS, IMAGES = 5, 2_000  # `bench`'s defaults: alternating windows, training images a window

# what the trainer must reach against the author-style loop, by kind of machine
TARGETS = {"native-bf16": {"ratio": 4.0, "peak_fraction_bf16": 0.25},
           "avx2": {"ratio": 2.0, "peak_fraction_bf16": None}}


# ------------------------------------------------------------------ the machine

def machine_kind(device: str, isa: list[str]) -> str:
    if device == "cuda":
        return "gpu"
    if native_bf16("cpu") and ("AMX" in isa or "AVX-512-BF16" in isa):
        return "native-bf16"
    return "avx2" if "AVX2" in isa else "other"


# ------------------------------------------------------------------ the two loops

def _images(n: int) -> torch.Tensor:
    from .data import load_fashion_mnist
    try:
        return load_fashion_mnist(download=False).train_images[:n]
    except UserError:
        return torch.randint(0, 256, (n, *IMAGE_SIZE), dtype=torch.uint8)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def author_model(p: float = 0.2) -> nn.Sequential:
    """The paper autoencoder (l_size 512) in stock PyTorch layers, as the author's code builds it:
    the same function and parameters, in order, as ``build_model(ModelConfig())``
    (``tests/test_bench.py``), with nothing of fashionae's to speed it up."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Dropout(p), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Dropout(p), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Dropout(p),
        nn.Linear(512, 64 * 7 * 7), nn.ReLU(), nn.Dropout(p), nn.Unflatten(1, (64, 7, 7)),
        nn.ConvTranspose2d(64, 32, 2, stride=2), nn.ReLU(), nn.Dropout(p),
        nn.ConvTranspose2d(32, 1, 2, stride=2), nn.Sigmoid())


class Reference:
    """The author-style loop: model, optimizer and data loaders kept between windows."""

    def __init__(self, images: torch.Tensor, device: str):
        from torch.utils.data import DataLoader, Dataset

        class PerSample(Dataset):
            def __init__(self, x):
                self.x = x

            def __len__(self):
                return len(self.x)

            def __getitem__(self, i):
                x = self.x[i].unsqueeze(0).float() / 255
                return x, x

        torch.manual_seed(0)
        self.device = device
        self.model = author_model().to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.train_loader = DataLoader(PerSample(images), batch_size=BATCH, shuffle=True)
        self.eval_train = DataLoader(PerSample(images), batch_size=BATCH)
        self.eval_val = DataLoader(PerSample(images[:held_out_size(len(images))]), batch_size=BATCH)

    def train_pass(self) -> None:
        self.model.train()
        for x, target in self.train_loader:
            x, target = x.to(self.device), target.to(self.device)
            loss = torch.nn.functional.mse_loss(self.model(x), target)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        _sync(self.device)

    def eval_pass(self, loader) -> float:
        """The loader's summed MSE, read back batch by batch as the author's loop does."""
        self.model.eval()
        total = 0.0
        with torch.no_grad():
            for x, target in loader:
                x, target = x.to(self.device), target.to(self.device)
                total += torch.nn.functional.mse_loss(self.model(x), target).item() * len(x)
        return total

    def window(self) -> tuple[float, float]:
        """(training pass seconds, whole epoch seconds)."""
        t0 = time.perf_counter()
        self.train_pass()
        t1 = time.perf_counter()
        self.eval_pass(self.eval_train)
        self.eval_pass(self.eval_val)
        return t1 - t0, time.perf_counter() - t0


class Trainer:
    """fashionae's own trainer: one epoch of ``fit`` per window, on the same images."""

    def __init__(self, images: torch.Tensor, cfg: TrainConfig):
        torch.manual_seed(0)
        self.model = build_model(ModelConfig()).to(cfg.device)
        self.images, self.cfg = images, cfg
        self.labels = torch.zeros(len(images), dtype=torch.long)

    def window(self) -> tuple[float, float]:
        val = held_out_size(len(self.images))
        row = fit(self.model, (self.images, self.labels), (self.images[:val], self.labels[:val]), self.cfg)[-1]
        return len(self.images) / row["train_images_per_second"], row["seconds"]


# ------------------------------------------------------------------ peaks and profile

def flops_per_image() -> float:
    """FLOPs of one training step (forward + backward) per image, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode
    model = build_model(ModelConfig())
    x = torch.rand(BATCH, 1, *IMAGE_SIZE)
    with FlopCounterMode(display=False) as counter:
        model(x).loss.backward()
    return counter.get_total_flops() / BATCH


def matmul_peak(dtype: torch.dtype, device: str = "cpu", seconds: float = 0.5) -> float:
    """Achieved GFLOP/s of a square matmul over ``seconds``: this machine's practical peak (a GPU's
    takes larger matrices to reach it)."""
    n = 8192 if device == "cuda" else 1024
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    a @ b
    _sync(device)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
        _sync(device) if count % 8 == 0 else None
    _sync(device)
    return 2 * n ** 3 * count / (time.perf_counter() - t0) / 1e9


def probe_speed(model_config: ModelConfig, t: TrainConfig, steps: int = 3) -> tuple[float, float]:
    """(training, evaluation) images per second of a model at its batch size and precision:
    the best of three timings of a few steps each, after a warm-up (the best, since other work
    on the machine only ever slows a timing down). The estimate behind ``study --plan``."""
    from .training import EVAL_BATCH, evaluate, prepare, refuse_too_large, train_step
    refuse_too_large(model_config, t)
    torch.manual_seed(0)
    model = build_model(model_config).to(t.device)
    opt = prepare(model, t)
    h, w = model_config.image_size
    x = torch.rand(t.batch_size, 1, h, w, device=t.device)
    y = torch.zeros(t.batch_size, dtype=torch.long, device=t.device)

    def step():
        train_step(model, opt, x, y, t)

    def timed(fn, n: int) -> float:
        fn()
        best = float("inf")
        for _ in range(3):
            _sync(t.device)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            _sync(t.device)
            best = min(best, (time.perf_counter() - t0) / n)
        return best

    train = t.batch_size / timed(step, steps)
    xe = torch.rand(2 * EVAL_BATCH, 1, h, w, device=t.device)  # two batches: evaluation casts the weights once
    ye = torch.zeros(len(xe), dtype=torch.long, device=t.device)
    return train, len(xe) / timed(lambda: evaluate(model, xe, ye, t), steps)


def profile_step(cfg: TrainConfig) -> str:
    """The operators that take the time in fashionae's training epoch."""
    from torch.profiler import ProfilerActivity, profile
    images = torch.randint(0, 256, (600, *IMAGE_SIZE), dtype=torch.uint8)
    labels = torch.zeros(600, dtype=torch.long)
    torch.manual_seed(0)
    model = build_model(ModelConfig()).to(cfg.device)
    fit(model, (images, labels), (images[:100], labels[:100]), cfg)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cfg.device == "cuda" else [])
    with profile(activities=activities) as prof:
        fit(model, (images, labels), (images[:100], labels[:100]), cfg)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


# ------------------------------------------------------------------ the benchmark

def run_bench(windows: int = WINDOWS, as_json: bool = False, show_profile: bool = False,
              device: str = "auto", out: str | None = None, images: int = IMAGES) -> dict:
    if problem := positive_int(windows):
        raise UserError(f"--windows {problem}")
    if positive_int(images) or images < BATCH:
        raise UserError(f"--images must be at least {BATCH} (one batch), got {images!r}")
    cfg = TrainConfig(epochs=1, batch_size=BATCH, device=device).validate().resolved()
    device = cfg.device
    images = _images(images)
    say = (lambda *a: None) if as_json else print
    cpu = cpu_info()
    kind = machine_kind(device, cpu["isa"])
    target = TARGETS.get(kind, {"ratio": None, "peak_fraction_bf16": None})
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    say(f"machine: {describe_cpu(cpu)}" + (f"; GPU {gpu}" if gpu else "") + f"; torch {torch.__version__}")
    compiled = device == "cpu" and kernels.available()  # built here, if need be, not in a timed window
    say(f"paper autoencoder, l_size 512, batch {BATCH}, {len(images):,} images per window; fashionae "
        f"precision {cfg.precision}, compiled CPU kernels {'in use' if compiled else 'not in use'}, reference "
        f"fp32; machine kind {kind}, target ratio {target['ratio'] or 'none set'}")
    reference, ours = Reference(images, device), Trainer(images, cfg)
    reference.window(), ours.window()  # warm-up, both
    flops = flops_per_image()
    ref, mine, peaks = [], [], []
    for i in range(windows):  # alternate, so drifts in machine speed hit all three alike
        ref.append(reference.window())
        mine.append(ours.window())
        peaks.append({dtype: matmul_peak(dtype, device) for dtype in (torch.float32, torch.bfloat16)})
        say(f"  window {i + 1}/{windows}: training pass: reference {len(images) / ref[-1][0]:6.0f} img/s, "
            f"fashionae {len(images) / mine[-1][0]:6.0f} img/s; whole epoch: reference "
            f"{ref[-1][1]:5.2f} s, fashionae {mine[-1][1]:5.2f} s; matmul peak fp32 "
            f"{peaks[-1][torch.float32]:.0f}, bf16 {peaks[-1][torch.bfloat16]:.0f} GFLOP/s")
    r_train, f_train = (len(images) / statistics.median(w[0] for w in x) for x in (ref, mine))
    r_epoch, f_epoch = (statistics.median(w[1] for w in x) for x in (ref, mine))
    r_eval, f_eval = (statistics.median(w[1] - w[0] for w in x) for x in (ref, mine))  # the epoch's evaluation
    peak32, peak16 = (statistics.median(p[dtype] for p in peaks) for dtype in (torch.float32, torch.bfloat16))
    gflops = f_train * flops / 1e9

    def fraction(dtype: torch.dtype) -> float:
        """Of the peak measured in the same window, the median over windows."""
        return statistics.median(len(images) / w[0] * flops / 1e9 / p[dtype] for w, p in zip(mine, peaks))
    native = native_bf16(device)
    result = {
        "cpu": {k: cpu[k] for k in ("vendor", "model_name", "family", "model", "stepping")}, "isa": cpu["isa"],
        "isa_caps": cpu["isa_caps"], "threads": cpu["threads"], "gpu": gpu, "torch": torch.__version__, "device": device,
        "precision": cfg.precision, "cpu_kernels": compiled, "machine_kind": kind, "target_ratio": target["ratio"],
        "target_peak_fraction_bf16": target["peak_fraction_bf16"],
        "reference_img_s": r_train, "fashionae_img_s": f_train, "ratio": f_train / r_train,
        "reference_epoch_s": r_epoch, "fashionae_epoch_s": f_epoch, "epoch_ratio": r_epoch / f_epoch,
        "reference_eval_s": r_eval, "fashionae_eval_s": f_eval, "eval_ratio": r_eval / f_eval,
        "gflops": gflops, "mflop_per_image": flops / 1e6, "peak_gflops_fp32": peak32, "peak_gflops_bf16": peak16,
        "peak_fraction_fp32": fraction(torch.float32),
        # without native bf16 the bf16 "peak" is an emulation, not a ceiling: no fraction
        "peak_fraction_bf16": fraction(torch.bfloat16) if native else None,
        "native_bf16": native, "windows": windows,
    }
    result["reached"] = (None if target["ratio"] is None else
                         result["ratio"] >= target["ratio"] and result["epoch_ratio"] >= result["ratio"]
                         and (target["peak_fraction_bf16"] is None
                              or (result["peak_fraction_bf16"] or 0) >= target["peak_fraction_bf16"]))
    say(f"training pass: reference {r_train:,.0f} img/s, fashionae {f_train:,.0f} img/s -> ratio "
        f"{result['ratio']:.2f}x (median of {windows} windows)")
    say(f"whole epoch (train + re-measured train + validation): reference {r_epoch:.2f} s, fashionae "
        f"{f_epoch:.2f} s -> ratio {result['epoch_ratio']:.2f}x (its evaluation alone: reference {r_eval:.2f} s, "
        f"fashionae {f_eval:.2f} s -> {result['eval_ratio']:.2f}x)")
    say(f"achieved: {gflops:.1f} GFLOP/s ({flops / 1e6:.1f} MFLOP per image per training step); matmul "
        f"peak (median of the windows): fp32 {peak32:.0f}, bf16 {peak16:.0f} GFLOP/s -> of the peak of the "
        f"same window, {100 * result['peak_fraction_fp32']:.1f}% of fp32"
        + (f", {100 * result['peak_fraction_bf16']:.1f}% of bf16" if native else
           " (no native bf16 here: bf16 is emulated, fp32 is the ceiling)"))
    if target["ratio"] is not None:
        say(f"target for the {kind} kind: ratio >= {target['ratio']}x"
            + (f" and >= {100 * target['peak_fraction_bf16']:.0f}% of the bf16 peak" if target["peak_fraction_bf16"] else "")
            + f", whole-epoch ratio >= training ratio: {'reached' if result['reached'] else 'not reached'}")
    if show_profile:  # with --json, on stderr: stdout stays one JSON document
        print(profile_step(cfg), file=sys.stderr if as_json else sys.stdout)
    if out:
        from .files import write_json
        write_json(out, result)
    if as_json:
        print(json.dumps(result))
    return result
