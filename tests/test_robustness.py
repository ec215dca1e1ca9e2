"""Fuzzing and crash tests: bad bytes only ever give fashionae's own error, and a run
killed with SIGKILL resumes to the same result as a run never stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from fashionae.data import parse_idx
from fashionae.errors import UserError
from fashionae.models import ModelConfig, build_model, load_model, model_file_bytes
from fashionae.study import load_study
from helpers import idx_bytes

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
VALID_IDX = idx_bytes(torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8))


def mutate(data: bytes, positions: list[int], values: list[int], cut: int | None) -> bytes:
    b = bytearray(data)
    for p, v in zip(positions, values):
        if b:
            b[p % len(b)] = v
    return bytes(b[:cut] if cut is not None else b)


@FUZZ
@given(st.binary(max_size=200))
def test_idx_parser_random_bytes(raw):
    try:
        parse_idx(raw)
    except UserError:
        pass


@FUZZ
@given(st.lists(st.integers(0, 10_000), max_size=6), st.lists(st.integers(0, 255), max_size=6),
       st.one_of(st.none(), st.integers(0, len(VALID_IDX))))
def test_idx_parser_mutated_files(positions, values, cut):
    try:
        out = parse_idx(mutate(VALID_IDX, positions, values, cut))
        assert out.dtype == torch.uint8
    except UserError:
        pass


STUDY_TEXT = """name = "fuzz"
seeds = 1
[train]
epochs = 2
[[autoencoders]]
name = "a"
arch = "linear"
latent = 8
[classifiers]
encoder = "a"
strategies = ["frozen"]
[profiles.quick]
train = { epochs = 1 }
"""


@FUZZ
@given(st.lists(st.integers(0, 10_000), max_size=4), st.lists(st.integers(32, 126), max_size=4),
       st.one_of(st.none(), st.integers(0, len(STUDY_TEXT))))
def test_study_loader_mutated_files(tmp_path_factory, positions, values, cut):
    path = tmp_path_factory.mktemp("s") / "s.toml"
    path.write_bytes(mutate(STUDY_TEXT.encode(), positions, values, cut))
    try:
        load_study(path)
    except UserError:
        pass


@FUZZ
@given(st.text(max_size=120))
def test_study_loader_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("s") / "s.toml"
    path.write_text(text)
    try:
        load_study(path)
    except UserError:
        pass


MODEL_BYTES = model_file_bytes(build_model(ModelConfig(arch="linear", latent=4)))


@FUZZ
@given(st.lists(st.integers(0, len(MODEL_BYTES) - 1), max_size=4), st.lists(st.integers(0, 255), max_size=4),
       st.one_of(st.none(), st.integers(0, len(MODEL_BYTES))))
def test_model_loader_mutated_files(tmp_path_factory, positions, values, cut):
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    data = mutate(MODEL_BYTES, positions, values, cut)
    path.write_bytes(data)
    try:
        model = load_model(path)
    except UserError:
        return
    # whatever loads must be exactly the original model: the checksum guards the weights
    original = build_model(ModelConfig(arch="linear", latent=4))
    assert set(model.state_dict()) == set(original.state_dict())


SMALL = ["--latent", "16", "--epochs", "4", "--batch-size", "20", "--train-subset", "1000",
         "--eval-subset", "300", "--no-verify", "--device", "cpu"]


def strip_times(rows):
    return [{k: v for k, v in r.items() if "second" not in k} for r in rows]


def read(folder):
    rows = [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((folder / "summary.json").read_text())
    return strip_times(rows), strip_times([summary])


def train(data_dir, out, wait=True):
    cmd = [sys.executable, "-m", "fashionae", "train-ae", *SMALL, "--data-dir", str(data_dir), "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True) if wait else subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_and_resume_gives_identical_files(data_dir, tmp_path):
    assert train(data_dir, tmp_path / "straight").returncode == 0
    victim = tmp_path / "killed"
    proc = train(data_dir, victim, wait=False)
    deadline = time.time() + 120
    while not (victim / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next epoch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (victim / "summary.json").exists(), "the run finished before it could be killed"
    done = train(data_dir, victim)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert read(tmp_path / "straight") == read(victim)
