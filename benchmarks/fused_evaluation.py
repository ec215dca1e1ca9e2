"""What ``layers.k2_twice`` (k2's two upsampling layers with the ReLU between them as one run,
under bf16 autocast) saves in a whole evaluation, alternating in one process (ratios only: the
machine's speed drifts): ``training.evaluate`` of the paper autoencoder (l_size 512,
channels-last, the trainer's precision) on ``bench``'s 2,333 images (its window of 2,000
training images and their validation sixth), with the run on and off.

Each round evaluates off, on, off; its ratio is on / the mean of the two offs. Prints the median
ratio and its quartiles, and checks that the loss is the same to the last bit.

    .venv/bin/python benchmarks/fused_evaluation.py [--rounds N]
"""
import argparse
import statistics
import time

import torch

from fashionae import bench, layers
from fashionae.data import held_out_size
from fashionae.machine import cpu_info, describe_cpu
from fashionae.models import ModelConfig, build_model
from fashionae.training import TrainConfig, evaluate, prepare, to_inputs

p = argparse.ArgumentParser()
p.add_argument("--rounds", type=int, default=60, help="timings of each side, alternating (at least 2: a median "
               "and a spread; default 60)")
a = p.parse_args()
if a.rounds < 2:
    p.error("--rounds must be at least 2")
cfg = TrainConfig(batch_size=bench.BATCH).validate().resolved()
print(f"machine: {describe_cpu(cpu_info())}; torch {torch.__version__}; precision {cfg.precision}")
if cfg.precision != "bf16":
    print(f"k2_twice runs under bf16 autocast only; this machine evaluates in {cfg.precision}: nothing to compare")
    raise SystemExit(0)
torch.manual_seed(0)
model = build_model(ModelConfig())
prepare(model, cfg)
x = to_inputs(bench._images(bench.IMAGES + held_out_size(bench.IMAGES)), cfg.device)
y = torch.zeros(len(x), dtype=torch.long)
rule = layers.k2_last_two  # the rule that picks k2_twice's layers


def timed(on: bool) -> tuple[float, float]:
    layers.k2_last_two = rule if on else (lambda *modules: False)
    t0 = time.perf_counter()
    loss = evaluate(model, x, y, cfg)["loss"]
    return time.perf_counter() - t0, loss


timed(True), timed(False)  # warm-up
ratios, on_ms, off_ms = [], [], []
for _ in range(a.rounds):
    (off1, loss_off), (on, loss_on), (off2, _) = timed(False), timed(True), timed(False)
    assert loss_on == loss_off, (loss_on, loss_off)
    ratios.append(2 * on / (off1 + off2))
    on_ms.append(on * 1e3)
    off_ms.append((off1 + off2) / 2 * 1e3)
q1, _, q3 = statistics.quantiles(ratios, n=4)
print(f"evaluation of {len(x):,} images, {a.rounds} rounds: without k2_twice {statistics.median(off_ms):.1f} ms, "
      f"with {statistics.median(on_ms):.1f} ms (medians); time with / without: median {statistics.median(ratios):.3f} "
      f"(quartiles {q1:.3f}-{q3:.3f}), {1 / statistics.median(ratios):.3f}x faster; the same loss to the last bit")
