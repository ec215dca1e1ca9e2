import gzip

import pytest
import torch

from fashionae import data
from fashionae.data import load_fashion_mnist, load_folder, make_splits, parse_idx
from fashionae.errors import UserError
from helpers import idx_bytes, write_dataset


def test_parse_idx_roundtrip():
    a = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    assert torch.equal(parse_idx(idx_bytes(a)), a)
    labels = torch.tensor([0, 9, 3], dtype=torch.uint8)
    assert torch.equal(parse_idx(idx_bytes(labels)), labels)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "truncated or padded"),
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "bad IDX header"),
    (lambda b: b[:2], "too short"),
    (lambda b: b[:10], "truncated inside its IDX header"),
])
def test_parse_idx_rejects_broken_files(mutate, message):
    raw = idx_bytes(torch.zeros(3, 28, 28, dtype=torch.uint8))
    with pytest.raises(UserError, match=message):
        parse_idx(mutate(raw))


def test_fashion_mnist_must_be_28x28(tmp_path):
    """Any size parses, but a folder given as Fashion-MNIST must hold 28x28 images."""
    assert parse_idx(idx_bytes(torch.zeros(3, 32, 32, dtype=torch.uint8))).shape == (3, 32, 32)
    folder = write_dataset(tmp_path / "d", 50, 20)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(torch.zeros(20, 32, 32, dtype=torch.uint8))))
    with pytest.raises(UserError, match="expected 28x28.*--dataset FOLDER"):
        load_folder(folder, verify=False)


def test_load_folder_gz_and_raw(tmp_path):
    for gz in (True, False):
        ds = load_folder(write_dataset(tmp_path / str(gz), 50, 20, gz=gz), verify=False)
        assert ds.train_images.shape == (50, 28, 28) and ds.test_labels.shape == (20,)
        assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64


def test_checksum_mismatch_is_reported(tmp_path):
    folder = write_dataset(tmp_path / "d", 50, 20)
    with pytest.raises(UserError, match="SHA-256.*--no-verify"):
        load_folder(folder, verify=True)


def test_count_mismatch_and_bad_labels(tmp_path):
    folder = write_dataset(tmp_path / "d", 50, 20)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(torch.zeros(49, dtype=torch.uint8))))
    with pytest.raises(UserError, match="50 images but .* 49 labels"):
        load_folder(folder, verify=False)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(torch.full((50,), 10, dtype=torch.uint8))))
    with pytest.raises(UserError, match="labels above 9"):
        load_folder(folder, verify=False)


def test_not_gzip_and_missing(tmp_path):
    folder = write_dataset(tmp_path / "d", 50, 20)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UserError, match="damaged gzip"):
        load_folder(folder, verify=False)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"plain text")
    with pytest.raises(UserError, match="not a gzip file"):
        load_folder(folder, verify=False)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserError, match="has no t10k-images"):
        load_folder(folder, verify=False)


def test_named_folder_is_used_alone(tmp_path, monkeypatch):
    """A broken folder the user names fails; it never falls back to another copy."""
    folder = write_dataset(tmp_path / "d", 50, 20)
    (folder / "train-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(UserError, match="has no train-images"):
        load_fashion_mnist(folder)
    monkeypatch.setenv("FASHIONAE_DATA", str(folder))
    with pytest.raises(UserError, match="has no train-images"):
        load_fashion_mnist()
    with pytest.raises(UserError, match="does not exist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_search_order_says_what_it_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("FASHIONAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(UserError) as e:
        load_fashion_mnist(download=False)
    msg = str(e.value)
    assert "cache" in msg and "system" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "--data-dir" in msg
    write_dataset(tmp_path / "system", 50, 20)
    ds = load_fashion_mnist(verify=False, download=False)
    assert ds.folder == tmp_path / "system"


def test_download_is_resumable_and_atomic(tmp_path, monkeypatch):
    """The downloader writes into the cache only complete files, resuming .part files."""
    served = write_dataset(tmp_path / "served", 50, 20)
    monkeypatch.setattr(data, "MIRRORS", (served.as_uri() + "/",))
    cache = tmp_path / "cache"
    part = cache / ".train-labels-idx1-ubyte.gz.part"
    cache.mkdir()
    full = (served / "train-labels-idx1-ubyte.gz").read_bytes()
    part.write_bytes(full[:10])  # a download cut short earlier
    data._download(cache, progress=False)
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == full
    assert not part.exists()
    assert load_folder(cache, verify=False).train_images.shape == (50, 28, 28)


def test_splits(tiny):
    s = make_splits(tiny, "holdout")  # a sixth of the training images: 10,000 of Fashion-MNIST's 60,000
    assert len(s.val_x) == round(11_000 / 6) and len(s.train_x) == len(tiny.train_images) - len(s.val_x)
    again = make_splits(tiny, "holdout")
    assert torch.equal(s.val_x, again.val_x)
    t = make_splits(tiny, "test", train_subset=100, eval_subset=50)
    assert len(t.train_x) == 100 and torch.equal(t.val_x, t.test_x) and len(t.val_x) == 50
    with pytest.raises(UserError):
        make_splits(tiny, "nope")


def test_real_dataset_verifies(real):
    assert real.verified and real.train_images.shape == (60_000, 28, 28)
    assert real.test_images.shape == (10_000, 28, 28)
    assert torch.bincount(real.train_labels).tolist() == [6000] * 10
