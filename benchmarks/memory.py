"""What training a large autoencoder holds in memory, per parameter, against the bound that
refuses a model too large before it is built (``training.TRAINED_BYTES``: weights, gradients and
Adam's two moments, 16 bytes a parameter).

Each latent size trains one short epoch in a process of its own (``fashionae train-ae``, its
checkpoint and model file written as in any run); the peak resident memory of each, and the slope
between them: the bytes each added parameter takes, the process's fixed cost (torch, the data)
apart. Two linear latents suffice: the parameters grow with the latent, the rest does not.

    .venv/bin/python benchmarks/memory.py [--latents 5000 20000] [--threads 2]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile

from fashionae.machine import cpu_info, describe_cpu
from fashionae.models import ModelConfig, parameter_counts
from fashionae.training import TRAINED_BYTES

p = argparse.ArgumentParser()
p.add_argument("--latents", type=int, nargs=2, default=(5000, 20000))
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
print(f"machine: {describe_cpu(cpu_info())}; the runs: OMP_NUM_THREADS={a.threads}")

peaks = []
for latent in a.latents:
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-m", "fashionae", "train-ae", "--latent", str(latent), "--epochs", "1",
                        "--train-subset", "2000", "--eval-subset", "500", "--out", f"{out}/run"],
                       check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(a.threads)})
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # (the largest child's so far)
        if peak <= before * 1024:
            sys.exit("run the smaller latent first: a child's peak is the largest so far")
    params = parameter_counts(ModelConfig(arch="linear", latent=latent))[0]
    peaks.append((params, peak))
    print(f"latent {latent:>6}: {params / 1e6:7.1f} M parameters, peak {peak / 2**30:6.2f} GiB")
(p0, m0), (p1, m1) = peaks
slope = (m1 - m0) / (p1 - p0)
print(f"per parameter: {slope:.1f} bytes (the bound: {TRAINED_BYTES}); fixed: {(m0 - slope * p0) / 2**30:.2f} GiB")
