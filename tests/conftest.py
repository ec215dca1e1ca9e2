"""Shared fixtures: small synthetic data written as real IDX files, and the real dataset."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py

from fashionae.cli import main  # noqa: E402
from fashionae.data import Dataset, load_fashion_mnist  # noqa: E402
from helpers import shapes, write_dataset  # noqa: E402

# The real dataset: FASHIONAE_DATA where it is set (a GPU machine without the Debian package),
# else the Debian package's folder.
REAL_DIR = Path(os.environ.get("FASHIONAE_DATA") or "/usr/share/datasets/fashion-mnist")

# torchrun's variables left over in the shell would make every run of the tests wait for a group
# of processes that never forms: the tests that need them set them for themselves
for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
             "TORCHELASTIC_RUN_ID"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session", autouse=True)
def kernels_built():
    """The compiled CPU kernels built before any test (once per machine, about 10 s), so that no
    test's output holds the one-time "building the CPU kernels" line, whichever test runs first."""
    from fashionae import kernels
    kernels.available()  # (as the first run would: FASHIONAE_KERNELS=0 builds nothing; no compiler, a note)


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
        if os.environ.get("CI"):  # which installs it: there a missing dataset fails
            pytest.fail(f"the real dataset is not in {REAL_DIR}: apt-get install -y dataset-fashion-mnist")
        pytest.skip("the dataset-fashion-mnist package is not installed")
    return load_fashion_mnist(REAL_DIR)


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A finished autoencoder run on a dataset of your own (16 x 24 images, 5 classes), trained
    once for each test module that uses it."""
    root = tmp_path_factory.mktemp("own")
    data = shapes(root / "data")
    run = root / "run"
    assert main(["train-ae", "--dataset", str(data), "--latent", "4", "--epochs", "1",
                 "--batch-size", "40", "--out", str(run)]) == 0
    return data, run


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """Every test sees the fast paths' checks afresh (``layers.one_call_where_same`` keeps them
    for the process), so what a test shows does not hang on the tests that ran before it."""
    from fashionae import layers
    monkeypatch.setattr(layers, "_SAME_BITS", {})
