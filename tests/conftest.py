"""Shared fixtures: small synthetic data written as real IDX files, and the real dataset."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py

from fashionae.data import Dataset, load_fashion_mnist  # noqa: E402
from helpers import write_dataset  # noqa: E402

# The real dataset: FASHIONAE_DATA where it is set (a GPU machine without the Debian package),
# else the Debian package's folder.
REAL_DIR = Path(os.environ.get("FASHIONAE_DATA") or "/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Written once for the whole session: no test writes into it (those that damage data files
    make their own)."""
    return write_dataset(tmp_path_factory.mktemp("data"), n_train=11_000, n_test=300)


@pytest.fixture
def tiny(data_dir) -> Dataset:
    return load_fashion_mnist(data_dir, verify=False)


@pytest.fixture(scope="session")
def real() -> Dataset:
    if not REAL_DIR.is_dir():
        pytest.skip("the dataset-fashion-mnist package is not installed")
    return load_fashion_mnist(REAL_DIR)


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """Every test sees the fast paths' checks afresh (``layers.one_call_where_same`` keeps them
    for the process), so what a test shows does not hang on the tests that ran before it."""
    from fashionae import layers
    monkeypatch.setattr(layers, "_SAME_BITS", {})
