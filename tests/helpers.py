"""Shared test helpers: small synthetic Fashion-MNIST-like data, written as real IDX files."""

import gzip
import json
import os
import struct
from pathlib import Path

import torch

QUIET = dict(log=lambda m: None)
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


def read_metrics(folder) -> list[dict]:
    """metrics.jsonl without its timings (which differ from run to run)."""
    rows = [json.loads(l) for l in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "second" not in k} for r in rows]


def same_weights(a, b) -> bool:
    """safetensors writes its metadata in hash order, so compare contents, not bytes."""
    from safetensors import safe_open
    fa, fb = safe_open(str(a), "pt"), safe_open(str(b), "pt")
    return (fa.metadata() == fb.metadata() and set(fa.keys()) == set(fb.keys())
            and all(torch.equal(fa.get_tensor(k), fb.get_tensor(k)) for k in fa.keys()))
