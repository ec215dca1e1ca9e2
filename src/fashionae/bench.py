"""``fashionae bench``: training throughput of fashionae's trainer against a loop written
the way the author wrote it, measured in one process, in alternating windows.

(a) reference: a per-sample ``Dataset`` (uint8 -> float per image, like ToTensor),
    ``DataLoader(shuffle=True)``, stock ``nn.ReLU``/``nn.Dropout``, fp32, NCHW, default Adam;
(b) fashionae: ``training.fit`` itself, with its default settings (in-memory batches,
    channels-last, cheap fused ReLU+dropout masks, fused Adam, bf16 where native).
Both train the paper autoencoder (l_size 512) at batch 100 on real images when the
dataset is found (random images otherwise; the speed does not depend on them).
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from .models import Dropout, ModelConfig, build_model
from .training import TrainConfig, fit, native_bf16

BATCH = 100
WINDOW_IMAGES = 2_000  # 20 steps per window


def _images() -> torch.Tensor:
    from .data import load_fashion_mnist
    from .errors import UserError
    try:
        return load_fashion_mnist(download=False).train_images[:WINDOW_IMAGES]
    except UserError:
        return torch.randint(0, 256, (WINDOW_IMAGES, 28, 28), dtype=torch.uint8)


def reference_window(images: torch.Tensor) -> float:
    """One window of the author-style loop; images per second."""
    from torch.utils.data import DataLoader, Dataset

    class PerSample(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            x = images[i].unsqueeze(0).float() / 255
            return x, x

    if not hasattr(reference_window, "state"):
        torch.manual_seed(0)
        model = build_model(ModelConfig())
        for m in model.modules():
            if isinstance(m, Dropout):
                m.fast = False  # stock torch.nn.functional.relu + dropout
        reference_window.state = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    model, opt = reference_window.state
    model.train()
    loader = DataLoader(PerSample(), batch_size=BATCH, shuffle=True)
    t0 = time.perf_counter()
    for x, target in loader:
        out = model(x)
        loss = torch.nn.functional.mse_loss(out.output, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return len(images) / (time.perf_counter() - t0)


def fashionae_window(images: torch.Tensor, cfg: TrainConfig) -> float:
    """One window of fashionae's own trainer (one epoch of ``fit`` over the window's
    images); its training-pass images per second, evaluation passes excluded."""
    if not hasattr(fashionae_window, "model"):
        torch.manual_seed(0)
        fashionae_window.model = build_model(ModelConfig())
    labels = torch.zeros(len(images), dtype=torch.long)
    history = fit(fashionae_window.model, (images, labels), (images[:100], labels[:100]), cfg)
    return history[-1]["train_images_per_second"]


def flops_per_image() -> float:
    """FLOPs of one training step (forward + backward) per image, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode
    model = build_model(ModelConfig())
    x = torch.rand(BATCH, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(x).loss.backward()
    return counter.get_total_flops() / BATCH


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Achieved GFLOP/s of a square matmul: this machine's practical peak."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - t0) / 1e9


def probe_speed(model_config: ModelConfig, t: TrainConfig, steps: int = 4) -> tuple[float, float]:
    """(training, evaluation) images per second of a model at its batch size and precision,
    from a few steps after a warm-up: the estimate behind ``fashionae study --plan``."""
    from .training import EVAL_BATCH, autocast
    torch.manual_seed(0)
    model = build_model(model_config).to(t.device)
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    h, w = model_config.image_size
    x = torch.rand(t.batch_size, 1, h, w, device=t.device)
    y = torch.zeros(t.batch_size, dtype=torch.long, device=t.device)

    def step():
        with autocast(t):
            out = model(x, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    def timed(fn, n: int) -> float:
        fn()
        if t.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if t.device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / n

    train = t.batch_size / timed(step, steps)
    xe = torch.rand(EVAL_BATCH, 1, h, w, device=t.device)
    ye = torch.zeros(EVAL_BATCH, dtype=torch.long, device=t.device)
    model.eval()

    @torch.inference_mode()
    def forward():
        with autocast(t):
            model(xe, ye)
    return train, EVAL_BATCH / timed(forward, steps)


def profile_step(cfg: TrainConfig, rows: int = 12) -> str:
    """The operators that take the time in fashionae's training step."""
    from torch.profiler import ProfilerActivity, profile
    images = torch.randint(0, 256, (500, 28, 28), dtype=torch.uint8)
    labels = torch.zeros(500, dtype=torch.long)
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    fit(model, (images, labels), (images[:100], labels[:100]), cfg)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(model, (images, labels), (images[:100], labels[:100]), cfg)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def run_bench(windows: int = 5, as_json: bool = False, show_profile: bool = False,
              device: str = "cpu") -> dict:
    cfg = TrainConfig(epochs=1, batch_size=BATCH, device=device).resolved()
    images = _images()
    say = (lambda *a: None) if as_json else print
    say(f"fashionae bench: paper autoencoder, l_size 512, batch {BATCH}, {torch.get_num_threads()} "
        f"threads, fashionae precision {cfg.precision} (native bf16: {native_bf16('cpu')})")
    reference_window(images)  # warm-up, both
    fashionae_window(images, cfg)
    ref, ours = [], []
    for i in range(windows):  # alternate, so drifts in machine speed hit both alike
        ref.append(reference_window(images))
        ours.append(fashionae_window(images, cfg))
        say(f"  window {i + 1}/{windows}: reference {ref[-1]:7.0f} img/s   fashionae {ours[-1]:7.0f} img/s")
    r, f = statistics.median(ref), statistics.median(ours)
    flops = flops_per_image()
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    gflops = f * flops / 1e9
    native = native_bf16("cpu")
    result = {"reference_img_s": r, "fashionae_img_s": f, "ratio": f / r, "gflops": gflops,
              "mflop_per_image": flops / 1e6, "peak_gflops_fp32": peak32, "peak_gflops_bf16": peak16,
              "peak_fraction_fp32": gflops / peak32,
              # without native bf16 the bf16 "peak" is an emulation, not a ceiling: no fraction
              "peak_fraction_bf16": gflops / peak16 if native else None,
              "native_bf16": native, "precision": cfg.precision,
              "threads": torch.get_num_threads(), "windows": windows}
    say(f"reference (author-style loop): {r:,.0f} images/s (median of {windows} windows)")
    say(f"fashionae trainer:             {f:,.0f} images/s")
    say(f"ratio: {f / r:.2f}x")
    say(f"achieved: {gflops:.1f} GFLOP/s ({flops / 1e6:.1f} MFLOP per image per training step)")
    bf16 = (f"{100 * gflops / peak16:.1f}% of bf16" if native else
            "no native bf16 on this CPU (bf16 is emulated, so fp32 is the ceiling)")
    say(f"matmul peak measured now: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s -> "
        f"{100 * gflops / peak32:.1f}% of fp32; {bf16}")
    if show_profile:
        say(profile_step(cfg))
    if as_json:
        print(json.dumps(result))
    return result
