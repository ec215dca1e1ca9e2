"""What fashionae's dropout masks cost, alternating in one process (ratios only: the machine's
speed drifts).

1. the bits: torch's Mersenne Twister drawn as earlier 0.2 versions did (``random_`` over
   [-2**63, 2**63 - 1), a 64-bit division per word) vs over the full range with the sign bit
   flipped (``dropout.random_int16``: the same bits, the ``mersenne`` masks) vs SplitMix64 in
   torch's integer passes (``dropout.splitmix_int15``, the ``counter`` masks) vs numpy's
   PCG64DXSM (for scale, not used);
2. the ReLU + dropout mask on the paper's largest activation (100 x 32 x 28 x 28), bf16 and
   fp32: comparisons into bool tensors and a bool -> float conversion vs the integer
   arithmetic of ``Dropout.scaled_mask`` (mersenne, counter), each with its own bits; and the
   compiled kernel's whole ReLU + dropout (bits, mask and product: ``kernels.py``);
3. a whole training step of the paper autoencoder (l_size 512, batch 100, channels-last, fused
   Adam, the trainer's precision): stock ReLU + nn.Dropout vs each kind of fashionae masks vs no
   dropout, the counter masks and no dropout each with PyTorch's ops and with the compiled
   kernels (the same numbers).

    .venv/bin/python benchmarks/dropout_speed.py [--threads N]
"""
import argparse
import statistics
import time

import numpy as np
import torch

from fashionae import kernels
from fashionae.dropout import Dropout, draw_key, random_int16, splitmix_int15, use_dropout_masks
from fashionae.models import ModelConfig, build_model
from fashionae.machine import cpu_info, describe_cpu
from fashionae.training import TrainConfig, keep_freed_memory, train_step

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=torch.get_num_threads())
a = p.parse_args()
torch.set_num_threads(a.threads)
keep_freed_memory()  # as the trainer does
cfg = TrainConfig().resolved()
compiled = kernels.available()
print(f"machine: {describe_cpu(cpu_info())}; torch {torch.__version__}; trainer precision "
      f"{cfg.precision}; compiled kernels {'built' if compiled else 'not available: their lines are skipped'}")


def compare(title: str, variants: dict, repeats: int = 7, calls: int = 10) -> None:
    for f in variants.values():
        f()
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for k, f in variants.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            times[k].append((time.perf_counter() - t0) / calls * 1e3)
    base = statistics.median(next(iter(times.values())))
    print(f"\n{title}")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"  {k:38s} {m:7.3f} ms   {base / m:5.2f}x")


n = 100 * 32 * 28 * 28
compare(f"1. {n:,} random 16-bit values", {
    "torch MT, from-to (early 0.2)": lambda: torch.empty(n // 4, dtype=torch.int64).random_(-2**63, 2**63 - 1),
    "torch MT, full range (mersenne)": lambda: random_int16(n),
    "SplitMix64, 15 bits (counter)": lambda: splitmix_int15(n),
    "numpy PCG64DXSM (not used)": lambda: np.random.PCG64DXSM(1).random_raw(n // 4)})

mersenne, counter = Dropout(0.2), Dropout(0.2)
use_dropout_masks(mersenne, "mersenne")
for dtype in (torch.bfloat16, torch.float32):
    x = torch.randn(100, 32, 28, 28).to(dtype).contiguous(memory_format=torch.channels_last)

    def comparisons():
        u = random_int16(x.numel()).as_strided(x.shape, x.stride())
        return ((u >= mersenne._threshold) & (x > 0)).to(x.dtype).mul_(1.25)
    variants = {"comparisons + conversion": comparisons,
                "integer sign bits (mersenne)": lambda: mersenne.scaled_mask(x, relu=True),
                "integer min and clamp (counter)": lambda: counter.scaled_mask(x, relu=True)}
    if compiled:  # the bits, the mask and the product
        variants["whole ReLU + dropout (kernel)"] = lambda: torch.ops.fashionae.relu_dropout(
            x, draw_key(), counter._threshold15, 1.25)
    compare(f"2. ReLU + dropout mask, {tuple(x.shape)} {str(dtype)[6:]}", variants)


def step_of(masks: str, p: float, with_kernels: bool = False):
    torch.manual_seed(0)
    model = build_model(ModelConfig(dropout=p)).to(memory_format=torch.channels_last)
    use_dropout_masks(model, masks)
    opt = torch.optim.Adam(model.parameters(), 1e-3, fused=True)
    x = torch.rand(100, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(100, dtype=torch.long)
    def step():
        kernels._loaded = with_kernels  # PyTorch's ops, or the kernels: the same numbers
        train_step(model, opt, x, y, cfg)  # the trainer's own step
    return step


steps = {"stock nn.ReLU + nn.Dropout": step_of("stock", 0.2),
         "mersenne masks (0.2)": step_of("mersenne", 0.2),
         "counter masks (0.3), PyTorch's ops": step_of("counter", 0.2),
         "no dropout (p = 0), PyTorch's ops": step_of("counter", 0.0)}
if compiled:
    steps["counter masks, compiled kernels"] = step_of("counter", 0.2, True)
    steps["no dropout, compiled kernels"] = step_of("counter", 0.0, True)
compare(f"3. training step, paper autoencoder, batch 100, {cfg.precision}", steps, repeats=15, calls=5)
