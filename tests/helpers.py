"""Shared test helpers: small synthetic Fashion-MNIST-like data, written as real IDX files."""

import gzip
import hashlib
import importlib
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

QUIET = dict(log=lambda m: None)
STUDIES = Path(__file__).parent.parent / "studies"
PAPER = STUDIES / "paper.toml"


def model_file_bytes(model) -> bytes:
    """The bytes of the model.safetensors that ``RunFolder`` writes of ``model`` (``write_model_file``)."""
    import tempfile
    from fashionae.modelfile import write_model_file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        write_model_file(str(path), model)
        return path.read_bytes()


def run_python(code: str, prefix: tuple = (), **kwargs) -> subprocess.CompletedProcess:
    """``code`` run by a Python of its own (signals, exit, permissions: a process's) on this tree's
    fashionae, its output as text; ``prefix``: what runs it (setpriv)."""
    src = str(Path(__file__).parent.parent / "src")
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": src}, **kwargs)


def extra_or_skip(extra: str, *modules: str) -> list:
    """The modules of an optional extra, imported. Without them the test (or, called at module
    level, the file) is skipped, except in CI, which installs every extra the tests use: there
    it fails."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the {extra} extra is not installed (pip install 'fashionae[{extra}]'); CI installs it",
                    allow_module_level=True)
# The device of the tests' training runs: the CPU, or CUDA in benchmarks/gpu_check.sh (with
# deterministic kernels there, for the tests that compare runs bit for bit).
DEVICE = os.environ.get("FASHIONAE_TEST_DEVICE", "cpu")
ON_DEVICE = dict(device=DEVICE, deterministic=DEVICE == "cuda")


def idx_bytes(array: torch.Tensor) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def synthetic_images(n: int, seed: int, size: int | tuple[int, int] = 28,
                     classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class decides a bright bar's position, plus noise: learnable, tiny.
    ``size``: the side of square images, or (height, width)."""
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    images = torch.randint(0, 40, (n, h, w), generator=g)
    for c in range(classes):
        row = 2 + (h - 6) * c // max(classes - 1, 1)
        images[labels == c, row:row + 2, 4:w - 4] = 220
    return images.to(torch.uint8), labels


def write_dataset(folder: Path, n_train: int = 600, n_test: int = 200, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = synthetic_images(n_train, 0)
    te_x, te_y = synthetic_images(n_test, 1)
    for name, arr in (("train-images-idx3-ubyte", tr_x), ("train-labels-idx1-ubyte", tr_y),
                      ("t10k-images-idx3-ubyte", te_x), ("t10k-labels-idx1-ubyte", te_y)):
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def without_timings(value):
    """A results/summary/metrics value without what legitimately differs between two runs of
    the same thing: wall times and speeds, the study's own record of its invocations, and a
    summary's, baselines' and explore's digests of content that holds wall times."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if "second" not in k and k not in (
            "timing", "metrics_sha256", "summary_sha256", "baselines_sha256", "explore_sha256")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    if isinstance(value, str):  # a claim's evidence quotes each model's seconds per epoch
        return re.sub(r"[\d.]+ s per epoch", "… s per epoch", value)
    return value


def read_metrics(folder) -> list[dict]:
    """metrics.jsonl without its timings (which differ from run to run)."""
    return without_timings([json.loads(l) for l in (Path(folder) / "metrics.jsonl").read_text().splitlines()])


def same_weights(a, b) -> bool:
    """Two model files hold the same model: the same header, compared parsed (safetensors writes
    its metadata keys in a per-process hash order), and byte-equal tensors (the whole data
    region after the header; -0.0 and 0.0 differ here, unlike torch.equal)."""
    ra, rb = Path(a).read_bytes(), Path(b).read_bytes()
    na, nb = (struct.unpack("<Q", r[:8])[0] for r in (ra, rb))
    return json.loads(ra[8:8 + na]) == json.loads(rb[8:8 + nb]) and ra[8 + na:] == rb[8 + nb:]


def cli(capsys, *argv):
    """A command through ``main`` as a user types it: (exit status, stdout, stderr)."""
    from fashionae.cli import main
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ your own dataset

SHAPES = ["Circle", "Square", "Star", "Moon", "Heart"]
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(folder: Path, size=(16, 24), classes=5, n_train=240, n_test=60, toml: str | None = "") -> Path:
    """Four gzipped IDX files and, unless ``toml`` is None, a dataset.toml holding ``toml``
    and the files' SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = synthetic_images(n_train, 0, size, classes)
    te_x, te_y = synthetic_images(n_test, 1, size, classes)
    digests = []
    for name, array in zip(IDX_NAMES, (tr_x, tr_y, te_x, te_y)):
        raw = gzip.compress(idx_bytes(array))
        (folder / f"{name}.gz").write_bytes(raw)
        digests.append(f'"{name}.gz" = "{hashlib.sha256(raw).hexdigest()}"')
    if toml is not None:
        (folder / "dataset.toml").write_text(toml + "\n[sha256]\n" + "\n".join(digests) + "\n")
    return folder


def shapes(folder: Path, **kw) -> Path:
    return write_idx(folder, toml=f'name = "shapes"\nclasses = {json.dumps(SHAPES)}', **kw)


def unsealed(run_dir) -> None:
    """A finished run's summary.json without the digests fashionae 0.3.2 seals it with, and its
    config.json recording an earlier version, as those wrote them: for tests that edit a run's
    files to make one of those."""
    path = Path(run_dir) / "summary.json"
    summary = json.loads(path.read_text())
    for key in ("config_sha256", "metrics_sha256", "summary_sha256"):
        summary.pop(key, None)
    path.write_text(json.dumps(summary))
    config = json.loads((Path(run_dir) / "config.json").read_text())
    config["environment"]["fashionae"] = "0.3.1"
    (Path(run_dir) / "config.json").write_text(json.dumps(config))
