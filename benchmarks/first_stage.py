"""The first stage's bf16 kernel (``conv3x3_relu_pool``) against an earlier commit's, alternating
in one process (ratios only: the machine's speed drifts): the earlier commit's ``kernels.cpp`` is
built under another op namespace and loaded beside this tree's. Times the stage alone (one batch
of 250 images, channels-last as the trainer lays it) and ``training.evaluate`` of the paper
autoencoder on ``bench``'s 2,333 images with either kernel, and checks that both give the same
bits (the stage's outputs, the evaluated loss).

    .venv/bin/python benchmarks/first_stage.py [--against REV] [--rounds N]
"""
import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from fashionae import bench, kernels, layers
from fashionae.data import held_out_size
from fashionae.machine import cpu_info, describe_cpu
from fashionae.models import ModelConfig, build_model
from fashionae.training import TrainConfig, evaluate, prepare, to_inputs

p = argparse.ArgumentParser()
p.add_argument("--against", default="7e0ea95", help="the commit whose kernel to compare (default: the one before "
               "the stage's dot-product kernel)")
p.add_argument("--rounds", type=int, default=30, help="timings of each side, alternating (at least 2: a median "
               "and a spread; default 30)")
a = p.parse_args()
if a.rounds < 2:
    p.error("--rounds must be at least 2")
cfg = TrainConfig(batch_size=bench.BATCH).validate().resolved()
print(f"machine: {describe_cpu(cpu_info())}; torch {torch.__version__}; precision {cfg.precision}")
if cfg.precision != "bf16" or not kernels.available():
    print("the stage's bf16 kernel runs under bf16 autocast with the kernels built; nothing to compare here")
    raise SystemExit(0)

root = Path(__file__).resolve().parent.parent
source = subprocess.run(["git", "-C", str(root), "show", f"{a.against}:src/fashionae/kernels.cpp"],
                        check=True, capture_output=True, text=True).stdout
work = Path(tempfile.mkdtemp())
(work / "old.cpp").write_text(source.replace("TORCH_LIBRARY(fashionae,", "TORCH_LIBRARY(fashionae_old,"))
subprocess.run(kernels.compile_command(work / "old.cpp", work / "old.so"), check=True, capture_output=True)
torch.ops.load_library(str(work / "old.so"))
ops = {"new": torch.ops.fashionae.conv3x3_relu_pool, "old": torch.ops.fashionae_old.conv3x3_relu_pool}

torch.manual_seed(0)
model = build_model(ModelConfig())
prepare(model, cfg)
conv = model.encoder.features[0]
x = to_inputs(bench._images(bench.IMAGES + held_out_size(bench.IMAGES)), cfg.device)
y = torch.zeros(len(x), dtype=torch.long)
batch = x[:250]


def stage(which: str) -> float:
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(20):
            ops[which](batch, conv.weight, conv.bias, True)
    return (time.perf_counter() - t0) / 20


kernel = layers.conv_relu_pool  # this tree's


def evaluation(which: str) -> tuple[float, float]:
    layers.conv_relu_pool = kernel if which == "new" else (
        lambda conv, relu, pool, x: ops["old"](x, conv.weight, conv.bias, True))
    t0 = time.perf_counter()
    loss = evaluate(model, x, y, cfg)["loss"]
    return time.perf_counter() - t0, loss


with torch.inference_mode():
    same = ops["new"](batch, conv.weight, conv.bias, True), ops["old"](batch, conv.weight, conv.bias, True)
assert torch.equal(same[0].view(torch.int16), same[1].view(torch.int16)) and same[0].stride() == same[1].stride()
for which in ("new", "old", "new", "old"):  # warm-up
    stage(which), evaluation(which)


def alternate(timed) -> tuple[float, float, float, float]:
    ratios, new_s = [], []
    for _ in range(a.rounds):
        old1, new, old2 = timed("old"), timed("new"), timed("old")
        ratios.append(2 * new / (old1 + old2))
        new_s.append(new)
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(new_s), median, q1, q3


def evaluation_time(which: str) -> float:
    seconds, loss = evaluation(which)
    losses.add(loss)
    return seconds


losses: set[float] = set()
for name, timed in (("the stage, 250 images", stage), (f"evaluation, {len(x):,} images", evaluation_time)):
    new, median, q1, q3 = alternate(timed)
    print(f"{name}: {new * 1e3:.2f} ms with this tree's kernel; time against {a.against}'s: median {median:.3f} "
          f"(quartiles {q1:.3f}-{q3:.3f}), {1 / median:.2f}x as fast")
assert len(losses) == 1, losses
print("the same bits: the stage's outputs, and the evaluated loss")
