"""Do the speed-ups change the numbers? Trains the paper autoencoder (l_size 512) on the
real data, on a subset, under paired settings and seeds, and prints the validation MSE per
epoch of each, with the spread over seeds:

- dropout: fashionae's fused ReLU+dropout masks vs torch's stock ReLU + nn.Dropout;
- precision: bf16 autocast vs fp32 (bf16 is slow where the CPU has no native bf16, so the
  subset is small there).

    .venv/bin/python benchmarks/numerics.py [--seeds 2] [--subset 10000] [--epochs 3]
"""
import argparse
import statistics
import time

import torch

from fashionae.data import load_fashion_mnist, make_splits
from fashionae.models import Dropout, ModelConfig, build_model
from fashionae.training import TrainConfig, fit, native_bf16

p = argparse.ArgumentParser()
p.add_argument("--seeds", type=int, default=2)
p.add_argument("--subset", type=int, default=10_000)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--only", choices=["dropout", "precision"])
a = p.parse_args()

data = load_fashion_mnist()
splits = make_splits(data, "holdout", a.subset, 5_000)


def train(seed: int, stock_dropout: bool = False, precision: str = "fp32", subset: int | None = None) -> list[float]:
    cfg = TrainConfig(epochs=a.epochs, seed=seed, device="cpu", precision=precision)
    torch.manual_seed(seed)
    model = build_model(ModelConfig())
    for m in model.modules():
        if isinstance(m, Dropout):
            m.fast = not stock_dropout
    n = subset or len(splits.train_x)
    history = fit(model, (splits.train_x[:n], splits.train_y[:n]), (splits.val_x, splits.val_y), cfg)
    return [r["val_loss"] for r in history]


def compare(name: str, variants: dict) -> None:
    print(f"\n{name}: validation MSE per epoch (mean ± std over {a.seeds} seeds)")
    for label, kwargs in variants.items():
        t0 = time.perf_counter()
        curves = [train(seed, **kwargs) for seed in range(a.seeds)]
        cells = []
        for epoch in zip(*curves):
            sd = statistics.stdev(epoch) if len(epoch) > 1 else 0.0
            cells.append(f"{statistics.mean(epoch):.5f} ± {sd:.5f}")
        print(f"  {label:28s} " + "  ".join(cells) + f"   ({time.perf_counter() - t0:.0f} s)")


if a.only in (None, "dropout"):
    compare("dropout", {"fashionae fused masks": {}, "stock nn.ReLU + nn.Dropout": {"stock_dropout": True}})
if a.only in (None, "precision"):
    # without native bf16 every bf16 step is emulated (~10x slower): train on a fifth of the subset
    n = None if native_bf16("cpu") else max(1000, a.subset // 5)
    note = "" if n is None else f" (no native bf16 here: {n:,} training images)"
    compare("precision" + note, {"fp32": {"subset": n}, "bf16 autocast": {"precision": "bf16", "subset": n}})
