"""Shared fixtures: small synthetic Fashion-MNIST-like data, written as real IDX files."""

import gzip
import struct
from pathlib import Path

import pytest
import torch

from fashionae.data import FashionMNIST, load_fashion_mnist

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: torch.Tensor) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def synthetic_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class decides a bright bar's position, plus noise: learnable, tiny."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randint(0, 40, (n, 28, 28), generator=g)
    for c in range(10):
        images[labels == c, 2 + 2 * c:4 + 2 * c, 4:24] = 220
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


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", n_train=11_000, n_test=300)


@pytest.fixture
def tiny(data_dir) -> FashionMNIST:
    return load_fashion_mnist(data_dir, verify=False)


@pytest.fixture(scope="session")
def real() -> FashionMNIST:
    if not REAL_DIR.is_dir():
        pytest.skip("the dataset-fashion-mnist package is not installed")
    return load_fashion_mnist(REAL_DIR)
