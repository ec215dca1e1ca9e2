"""Training throughput: fashionae's trainer vs an author-style loop (same as `fashionae bench`).

    .venv/bin/python benchmarks/train_throughput.py [--windows 5] [--profile]
"""
import argparse

from fashionae.bench import run_bench

p = argparse.ArgumentParser()
p.add_argument("--windows", type=int, default=5)
p.add_argument("--profile", action="store_true")
a = p.parse_args()
run_bench(windows=a.windows, show_profile=a.profile)
