"""Do the speed-ups change the numbers?

precision: runs a study profile (default: paper.toml's fast-seeds, 3 seeds) twice, in bf16
    autocast and in fp32, and prints for every model the per-seed difference bf16 - fp32 of its
    validation MSE or accuracy, with the 95 % t-interval over seeds, beside the spread between
    seeds; "within seed noise" when the interval holds 0. Meant for a CPU with native bf16 (it
    runs there at full speed; elsewhere bf16 is emulated and slow).
dropout: trains the paper autoencoder (l_size 512) on a subset with each kind of dropout
    masks (fashionae's counter and mersenne masks, fused with ReLU, and torch's stock ReLU +
    nn.Dropout), and prints the validation MSE per epoch of each, mean ± std over seeds.

    .venv/bin/python benchmarks/numerics.py precision [--profile fast-seeds] [--out runs/numerics]
    .venv/bin/python benchmarks/numerics.py dropout [--seeds 2] [--subset 10000] [--epochs 3]
"""
import argparse
import statistics
import time
from pathlib import Path

import torch

from fashionae.claims import interval
from fashionae.data import load_fashion_mnist, make_splits
from fashionae.dropout import DROPOUT_MASKS
from fashionae.models import ModelConfig, build_model
from fashionae.pipeline import run_study
from fashionae.machine import cpu_info, describe_cpu
from fashionae.study import load_study
from fashionae.training import TrainConfig, fit

p = argparse.ArgumentParser()
p.add_argument("compare", choices=["precision", "dropout"])
p.add_argument("--profile", default="fast-seeds")
p.add_argument("--out", default="runs/numerics")
p.add_argument("--seeds", type=int, default=2)
p.add_argument("--subset", type=int, default=10_000)
p.add_argument("--epochs", type=int, default=3)
a = p.parse_args()
cpu = cpu_info()
print(f"machine: {describe_cpu(cpu)}; torch {torch.__version__}")


def precision() -> None:
    results, seconds = {}, {}
    for precision in ("bf16", "fp32"):
        study = load_study(Path(__file__).parent.parent / "studies" / "paper.toml", a.profile,
                           train_overrides={"precision": precision})
        t0 = time.perf_counter()
        results[precision] = run_study(study, Path(a.out) / f"{a.profile}-{precision}")
        seconds[precision] = time.perf_counter() - t0
        print(f"{precision}: study finished in {seconds[precision]:.0f} s (this invocation)")
    print(f"\n{a.profile}: bf16 - fp32, per seed, 95 % t-interval over seeds (n = {len(results['bf16']['autoencoders'][0]['seeds'])})")
    print(f"{'model':28s} {'figure':10s} {'bf16':>22s} {'fp32':>22s} {'difference [95 % CI]':>36s}  verdict")
    for kind, figure, scale in (("autoencoders", "val_mse", 1), ("autoencoders", "test_mse", 1),
                                ("classifiers", "val_acc", 100), ("classifiers", "test_acc", 100)):
        for b, f in zip(results["bf16"][kind], results["fp32"][kind]):
            vb, vf = b[figure]["values"], f[figure]["values"]
            diffs = [scale * (x - y) for x, y in zip(vb, vf)]
            ci, reason = interval(diffs)
            noise = statistics.mean([scale * b[figure]["std"], scale * f[figure]["std"]])
            inside = (ci is not None and ci[0] <= 0 <= ci[1]) or all(d == 0 for d in diffs)
            digits = 5 if scale == 1 else 2
            cell = lambda s: f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f}"  # noqa: E731
            ci_text = f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else reason
            print(f"{b['name']:28s} {figure:10s} {cell(b[figure]):>22s} {cell(f[figure]):>22s} "
                  f"{statistics.mean(diffs):+.{digits}f} {ci_text:>26s}  "
                  f"{'within seed noise' if inside else 'differs'} (seed std {noise:.{digits}f})")


def dropout() -> None:
    data = load_fashion_mnist()
    splits = make_splits(data, "holdout", a.subset, 5_000)

    def train(seed: int, masks: str) -> list[float]:
        cfg = TrainConfig(epochs=a.epochs, seed=seed, device="cpu", precision="fp32", dropout_masks=masks)
        torch.manual_seed(seed)
        model = build_model(ModelConfig())
        history = fit(model, (splits.train_x, splits.train_y), (splits.val_x, splits.val_y), cfg)
        return [r["val_loss"] for r in history]

    print(f"dropout: validation MSE per epoch (mean ± std over {a.seeds} seeds, {a.subset:,} images, fp32)")
    for masks in DROPOUT_MASKS:
        label = f"{masks} masks" + (" (nn.ReLU + nn.Dropout)" if masks == "stock" else "")
        curves = [train(seed, masks) for seed in range(a.seeds)]
        cells = [f"{statistics.mean(e):.5f} ± {statistics.stdev(e) if len(e) > 1 else 0:.5f}" for e in zip(*curves)]
        print(f"  {label:36s} " + "  ".join(cells))


precision() if a.compare == "precision" else dropout()
