import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionae import data, datasets
from fashionae import download as download_module
from fashionae.data import load_fashion_mnist, load_folder, make_splits, parse_idx, split_sizes
from fashionae.errors import UserError
from helpers import idx_bytes, write_dataset


def test_parse_idx_roundtrip():
    a = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    assert torch.equal(parse_idx(idx_bytes(a)), a)
    labels = torch.tensor([0, 9, 3], dtype=torch.uint8)
    assert torch.equal(parse_idx(idx_bytes(labels)), labels)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "file is truncated or padded: 2367 bytes, the header promises 2368; get a fresh "
                       "copy of the file"),
    (lambda b: b + b"\0", "file is truncated or padded: 2369 bytes, the header promises 2368; get a fresh "
                          "copy of the file"),
    (lambda b: b"\x00\x00\x07\x03" + b[4:], "file has a bad IDX header (magic 00000703, expected 00000801 or "
                                          "00000803); it is not an IDX file of images or labels"),
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "file is an IDX file of signed bytes; fashionae reads IDX files of "
                                          "unsigned bytes (type 0x08), as Fashion-MNIST's: save it as uint8 "
                                          "(labels from 0, pixels 0-255)"),
    (lambda b: b[:3], "file is too short to be an IDX file (3 bytes)"),
    (lambda b: b[:4], "file is truncated inside its IDX header"),
    (lambda b: b[:10], "file is truncated inside its IDX header"),
])
def test_parse_idx_rejects_broken_files(mutate, message):
    raw = idx_bytes(torch.zeros(3, 28, 28, dtype=torch.uint8))
    with pytest.raises(UserError) as e:
        parse_idx(mutate(raw))
    assert str(e.value) == message


def test_images_where_labels_are_named_say_so(tmp_path):
    """A labels file holding images (copied over it) is named as such, not as a length error."""
    images = idx_bytes(torch.zeros(3, 28, 28, dtype=torch.uint8))
    with pytest.raises(UserError, match=r"^t10k-labels-idx1-ubyte holds images \(magic 00000803\) where its name "
                                        r"says labels; the files are swapped or misnamed"):
        parse_idx(images, "t10k-labels-idx1-ubyte", expected_rank=1)
    data = write_dataset(tmp_path / "d", n_train=20, n_test=10)
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes((data / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte.gz holds images .* where its name says labels"):
        load_fashion_mnist(data, verify=False)


def test_an_empty_idx_file_parses():
    labels = parse_idx(b"\x00\x00\x08\x01" + bytes(4))
    assert labels.shape == (0,) and labels.dtype == torch.uint8
    assert parse_idx(b"\x00\x00\x08\x03" + bytes(4) + struct.pack(">II", 28, 28)).shape == (0, 28, 28)


def test_fashion_mnist_must_be_28x28(tmp_path):
    """Any size parses, but a folder given as Fashion-MNIST must hold 28x28 images."""
    assert parse_idx(idx_bytes(torch.zeros(3, 32, 24, dtype=torch.uint8))).shape == (3, 32, 24)
    folder = write_dataset(tmp_path / "d", 50, 20)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(torch.zeros(20, 32, 24, dtype=torch.uint8))))
    with pytest.raises(UserError) as e:
        load_folder(folder, verify=False)
    assert str(e.value) == (f"{folder}/t10k-images-idx3-ubyte.gz holds 32x24 images, expected 28x28; "
                            "for other data use --dataset FOLDER")


def test_load_folder_gz_and_raw(tmp_path):
    for gz in (True, False):
        ds = load_folder(write_dataset(tmp_path / str(gz), 50, 20, gz=gz), verify=False)
        assert ds.train_images.shape == (50, 28, 28) and ds.test_labels.shape == (20,)
        assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64


def test_checksum_mismatch_is_reported(tmp_path):
    folder = write_dataset(tmp_path / "d", 50, 20)
    size = len(gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes()))
    for load in (lambda: load_folder(folder, verify=True), lambda: load_folder(folder)):  # verified by default
        with pytest.raises(UserError) as e:
            load()
        assert str(e.value) == (f"{folder}/train-images-idx3-ubyte.gz fails its SHA-256 check (got {size} "
                                "bytes); it is damaged or not Fashion-MNIST: get a fresh copy, or pass "
                                "--no-verify for your own IDX files")


@pytest.mark.parametrize("name, array, message", [
    ("train-labels-idx1-ubyte", torch.zeros(49), "train-images-idx3-ubyte has 50 images but "
                                                 "train-labels-idx1-ubyte has 49 labels"),
    ("t10k-labels-idx1-ubyte", torch.zeros(19), "t10k-images-idx3-ubyte has 20 images but "
                                                "t10k-labels-idx1-ubyte has 19 labels"),
    ("train-labels-idx1-ubyte", torch.full((50,), 10), "train-labels-idx1-ubyte holds labels up to 10, but the "
                                                       "dataset has 10 classes, numbered from 0"),
    ("t10k-labels-idx1-ubyte", torch.arange(20) % 10 + 1, "t10k-labels-idx1-ubyte holds labels up to 10, but the "
                                                          "dataset has 10 classes, numbered from 0"),  # (train's from 0)
    ("train-labels-idx1-ubyte", bytes(12), None),  # not IDX: the message names the file
])
def test_count_mismatch_and_bad_labels(tmp_path, name, array, message):
    folder = write_dataset(tmp_path / "d", 50, 20)
    raw = array if isinstance(array, bytes) else idx_bytes(array.to(torch.uint8))
    (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(UserError) as e:
        load_folder(folder, verify=False)
    assert str(e.value) == (f"{folder}: {message}" if message else
                            f"{folder}/{name}.gz has a bad IDX header (magic 00000000, expected 00000801 "
                            "or 00000803); it is not an IDX file of images or labels")


def test_not_gzip_and_missing(tmp_path, monkeypatch):
    folder = write_dataset(tmp_path / "d", 50, 20)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UserError, match=rf"^{path} is a damaged gzip file \(.+\); get a fresh copy$"):
        load_folder(folder, verify=False)
    path.write_bytes(b"plain text")
    with pytest.raises(UserError, match=rf"^{path} is not a gzip file; get a fresh copy$"):
        load_folder(folder, verify=False)
    path.unlink()
    with pytest.raises(UserError) as e:
        load_folder(folder, verify=False)
    assert str(e.value) == (f"{folder} has no t10k-images-idx3-ubyte.gz (nor t10k-images-idx3-ubyte); put "
                            "Fashion-MNIST's four IDX files there, or point --data-dir at the folder that holds them")
    path.mkdir()  # a folder where a file should be is said
    with pytest.raises(UserError, match=rf"^{folder} has no t10k-images-idx3-ubyte.gz \(nor t10k-images-idx3-ubyte\); "
                                        rf"{path} is a folder, not the file; put Fashion-MNIST's four IDX files there"):
        load_folder(folder, verify=False)
    plain = folder / "t10k-images-idx3-ubyte"
    plain.symlink_to("/dev/null")  # and by the other name, something that is neither a file nor a folder
    with pytest.raises(UserError, match=rf"\(nor t10k-images-idx3-ubyte\); {path} is a folder, not the file; {plain} is "
                                        r"not a regular file, not the file; put"):
        load_folder(folder, verify=False)
    plain.unlink()
    monkeypatch.setattr(data, "is_there", lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(UserError, match=rf"^cannot read {folder}: Permission denied$"):  # (root may read anything)
        load_folder(folder, verify=False)
    monkeypatch.undo()
    path.rmdir()
    path.symlink_to(tmp_path / "gone")  # a broken link beside the plain file: which is the data is no guess
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(UserError, match=rf"^{folder} holds both t10k-images-idx3-ubyte and t10k-images-idx3-ubyte.gz "
                                        r"\(t10k-images-idx3-ubyte.gz is a broken link\); keep one$"):
        load_folder(folder, verify=False)
    folder = write_dataset(tmp_path / "e", 50, 20)
    plain = folder / "t10k-labels-idx1-ubyte"  # gunzip -k: which one is the data is never a guess
    plain.write_bytes(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    with pytest.raises(UserError, match=rf"^{folder} holds both t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz; keep one$"):
        load_folder(folder, verify=False)


def test_named_folder_is_used_alone(tmp_path, monkeypatch):
    """A broken folder the user names fails; it never falls back to another copy."""
    folder = write_dataset(tmp_path / "d", 50, 20)
    (folder / "train-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(data, "download_files", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(UserError, match="has no train-images"):
        load_fashion_mnist(folder)
    monkeypatch.setenv("FASHIONAE_DATA", str(folder))
    with pytest.raises(UserError, match="has no train-images.*point FASHIONAE_DATA at the folder"):
        load_fashion_mnist()  # the fix names what named the folder
    with pytest.raises(UserError, match="does not exist; point --data-dir"):
        load_fashion_mnist(tmp_path / "nowhere")
    monkeypatch.setenv("FASHIONAE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="does not exist; point FASHIONAE_DATA at"):
        load_fashion_mnist()


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
    monkeypatch.setattr(download_module, "MIRRORS", (served.as_uri() + "/",))
    cache = tmp_path / "cache"
    part = cache / ".train-labels-idx1-ubyte.gz.part"
    cache.mkdir()
    full = (served / "train-labels-idx1-ubyte.gz").read_bytes()
    part.write_bytes(full[:10])  # a download cut short earlier
    download_module.download_files(cache, data.FILES, progress=False)
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == full
    assert not part.exists()
    assert load_folder(cache, verify=False).train_images.shape == (50, 28, 28)
    # a name there gunzipped is not fetched again beside it (two copies would be refused)
    plain = cache / "t10k-labels-idx1-ubyte"
    plain.write_bytes(gzip.decompress((cache / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    (cache / "t10k-labels-idx1-ubyte.gz").unlink()
    download_module.download_files(cache, data.FILES, progress=False)
    assert not (cache / "t10k-labels-idx1-ubyte.gz").exists() and load_folder(cache, verify=False)
    plain.unlink()
    plain.mkdir()  # something else by its name: not fetched beside it, and said by the folder's check
    download_module.download_files(cache, data.FILES, progress=False)
    assert not (cache / "t10k-labels-idx1-ubyte.gz").exists()
    with pytest.raises(UserError, match=f"; {plain} is a folder, not the file; "):
        load_folder(cache, verify=False)
    plain.rmdir()
    (cache / "t10k-labels-idx1-ubyte.gz").symlink_to(tmp_path / "gone")  # the .gz name too
    download_module.download_files(cache, data.FILES, progress=False)
    assert (cache / "t10k-labels-idx1-ubyte.gz").is_symlink()


def test_a_whole_part_left_by_a_stop_is_taken_when_the_server_has_nothing_after_it(tmp_path, monkeypatch):
    """A download stopped after its last byte, before the file was renamed into place: servers
    answer a range past the end with 416, which would fail every mirror forever."""
    import urllib.error
    served = write_dataset(tmp_path / "served", 50, 20)
    full = (served / "train-labels-idx1-ubyte.gz").read_bytes()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".train-labels-idx1-ubyte.gz.part").write_bytes(full)

    def urlopen(request, timeout):
        assert request.get_header("Range") == f"bytes={len(full)}-"
        raise urllib.error.HTTPError(request.full_url, 416, "Range Not Satisfiable", {}, None)
    monkeypatch.setattr(download_module.urllib.request, "urlopen", urlopen)
    download_module.download_files(cache, ["train-labels-idx1-ubyte"], progress=False)
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == full
    assert not (cache / ".train-labels-idx1-ubyte.gz.part").exists()


def test_splits(tiny):
    s = make_splits(tiny)  # holdout by default: a sixth of the training images (10,000 of 60,000)
    assert len(s.val_x) == round(11_000 / 6) and len(s.train_x) == len(tiny.train_images) - len(s.val_x)
    # the held-out images are recorded as the SHA-256 of their indices, little-endian int64
    order = torch.randperm(11_000, generator=torch.Generator().manual_seed(data.SPLIT_SEED))
    held = order[:round(11_000 / 6)]
    assert s.val_indices_sha256 == hashlib.sha256(np.asarray(held, dtype="<i8").tobytes()).hexdigest()
    assert torch.equal(s.val_x, tiny.train_images[held]) and torch.equal(s.train_y, tiny.train_labels[order[len(held):]])
    again = make_splits(tiny, "holdout")
    assert torch.equal(s.val_x, again.val_x)
    t = make_splits(tiny, "test", train_subset=100, eval_subset=50)
    assert len(t.train_x) == 100 and torch.equal(t.val_x, t.test_x) and len(t.val_x) == 50
    assert t.val_indices_sha256 == "test"
    with pytest.raises(UserError) as e:
        make_splits(tiny, "nope")
    assert str(e.value) == "unknown validation split 'nope'; use holdout or test"


def test_every_split_keeps_each_image_with_its_label_under_subsets(tiny):
    """The first N of each set, images and labels alike: a label out of step with its image
    would train and measure on noise without a word."""
    order = torch.randperm(11_000, generator=torch.Generator().manual_seed(data.SPLIT_SEED))
    k = round(11_000 / 6)
    s = make_splits(tiny, "holdout", train_subset=100, eval_subset=50)
    for x, y, idx in ((s.train_x, s.train_y, order[k:][:100]), (s.val_x, s.val_y, order[:k][:50])):
        assert torch.equal(x, tiny.train_images[idx]) and torch.equal(y, tiny.train_labels[idx])
    assert torch.equal(s.test_x, tiny.test_images[:50]) and torch.equal(s.test_y, tiny.test_labels[:50])
    t = make_splits(tiny, "test", train_subset=100, eval_subset=50)
    assert torch.equal(t.train_x, tiny.train_images[:100]) and torch.equal(t.train_y, tiny.train_labels[:100])
    assert torch.equal(t.val_y, tiny.test_labels[:50]) and torch.equal(t.test_y, tiny.test_labels[:50])


@pytest.mark.parametrize("val", ["holdout", "test"])
@pytest.mark.parametrize("subsets", [(None, None), (100, 50), (20_000, 5_000)])
def test_split_sizes_are_those_of_the_splits(tiny, val, subsets):
    s = make_splits(tiny, val, *subsets)
    assert split_sizes(tiny, val, *subsets) == (len(s.train_x), len(s.val_x), len(s.test_x))
    assert split_sizes(tiny) == split_sizes(tiny, "holdout")  # as make_splits's default


def test_real_dataset_verifies(real):
    assert real.verified and real.train_images.shape == (60_000, 28, 28)
    assert real.test_images.shape == (10_000, 28, 28)
    assert torch.bincount(real.train_labels).tolist() == [6000] * 10


def test_the_cache_follows_xdg_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "fashionae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "fashionae"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as XDG says: not a cache per folder
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "fashionae"


def test_with_no_home_the_cache_is_this_users_alone_in_the_temporary_folder(tmp_path, monkeypatch):
    """HOME=/nonexistent (a service's user), or a home we may not write in: a home is never made
    (the kernels' build made /nonexistent, as root); the cache is a folder of this user's alone in
    the temporary folder, kept from one command to the next, or one of this process's."""
    from fashionae import files
    monkeypatch.setattr(files.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nonexistent"))
    shared = tmp_path / "tmp" / f"fashionae-cache-{os.getuid()}"
    files._temporary_cache.cache_clear()
    assert data.cache_dir() == shared and shared.is_dir() and shared.stat().st_mode & 0o777 == 0o700
    assert not (tmp_path / "nonexistent").exists()
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    access = os.access
    monkeypatch.setattr(files.os, "access", lambda path, mode: access(path, mode) and not (  # (root writes anywhere)
        Path(path) == tmp_path / "home" and mode & os.W_OK))
    assert data.cache_dir() == shared and not (tmp_path / "home" / ".cache").exists()  # (root may write anywhere)
    monkeypatch.setattr(files.os, "access", access)
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "fashionae"
    exists = Path.exists

    def locked(path, **kw):  # a home we may not enter (another user's, kept by sudo): not an error
        if tmp_path / "home" in Path(path).parents:
            raise PermissionError(13, "Permission denied", str(path))
        return exists(path, **kw)
    monkeypatch.setattr(Path, "exists", locked)
    assert data.cache_dir() == shared
    monkeypatch.setattr(Path, "exists", exists)
    monkeypatch.setenv("HOME", str(tmp_path / "nonexistent"))
    shared.chmod(0o777)  # one that others may write in (made by another user, say): not taken
    files._temporary_cache.cache_clear()
    own = data.cache_dir()
    assert own.parent == tmp_path / "tmp" and own.name.startswith("fashionae-cache-") and own != shared
    assert data.cache_dir() == own  # the same all through the process
    files._temporary_cache.cache_clear()


def test_a_download_in_a_log_is_a_line_per_file_not_a_redrawn_one(tmp_path, monkeypatch, capsys):
    served = write_dataset(tmp_path / "served", 50, 20)
    monkeypatch.setattr(download_module, "MIRRORS", (served.as_uri() + "/",))
    download_module.download_files(tmp_path / "cache", ["train-labels-idx1-ubyte"])
    size = (served / "train-labels-idx1-ubyte.gz").stat().st_size
    err = capsys.readouterr().err
    assert "\r" not in err and err.endswith(f"  train-labels-idx1-ubyte.gz: {size / 1e6:.1f} MB\n")


@pytest.mark.parametrize("entry", ["load_fashion_mnist", "load_dataset"])
def test_every_place_tried_is_named_with_what_went_wrong(tmp_path, monkeypatch, capsys, entry):
    """An empty cache, a system copy that fails its checksum, a download that fails: the
    error names each with its reason, in the order tried, and says how to fix it."""
    def offline(folder, names, progress=True):
        raise OSError("offline")
    load = getattr(datasets if entry == "load_dataset" else data, entry)
    monkeypatch.delenv("FASHIONAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "download_files", offline)
    (tmp_path / "cache" / "fashionae").mkdir(parents=True)
    system = write_dataset(tmp_path / "system", 50, 20)  # not the real files: fails the checksum
    size = len(gzip.decompress((system / "train-images-idx3-ubyte.gz").read_bytes()))
    with pytest.raises(UserError) as e:
        load()
    mirror = data.MIRRORS[0]
    assert str(e.value) == (
        f"Fashion-MNIST not found; tried {tmp_path}/cache/fashionae (no files); {system} ({system}/"
        f"train-images-idx3-ubyte.gz fails its SHA-256 check (got {size} bytes); it is damaged or not "
        "Fashion-MNIST: get a fresh copy, or pass --no-verify for your own IDX files); download from "
        f"{mirror} (offline). Fix: `apt-get install dataset-fashion-mnist`, or download the four files "
        f"from {mirror} and pass --data-dir")
    assert capsys.readouterr().err == f"fashionae: downloading Fashion-MNIST into {tmp_path}/cache/fashionae\n"
    with pytest.raises(UserError) as e:
        load(download=False)
    assert "download from" not in str(e.value) and capsys.readouterr().err == ""
    assert load(verify=False).folder == system


def test_a_named_folder_that_does_not_exist(tmp_path):
    with pytest.raises(UserError) as e:
        load_fashion_mnist(tmp_path / "nowhere")
    assert str(e.value) == (f"data folder {tmp_path}/nowhere does not exist; point --data-dir "
                            "at the folder that holds the four IDX files")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match=f"^data folder {tmp_path}/a-file is a file; point --data-dir"):
        load_fashion_mnist(tmp_path / "a-file")


def test_a_download_lands_in_the_cache_and_is_checked_there(tmp_path, monkeypatch):
    """Nothing found: the files are downloaded into the cache, then loaded (and verified) from it."""
    def download(folder, names, progress=True):
        write_dataset(folder, 50, 20)
    monkeypatch.delenv("FASHIONAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "download_files", download)
    with pytest.raises(UserError, match=r"^.*/cache/fashionae/train-images-idx3-ubyte.gz fails its SHA-256 check"):
        load_fashion_mnist()  # synthetic files: verified, and refused
    shutil.rmtree(tmp_path / "cache")  # downloaded again, and loaded unverified this time
    assert load_fashion_mnist(verify=False).folder == tmp_path / "cache" / "fashionae"


class _Served:
    """A fake HTTP answer for ``urlopen``: ``status``, ``headers`` and ``read``, as a context manager."""

    def __init__(self, body: bytes, status: int = 200, length: bool = True):
        import io
        self.status, self._body = status, io.BytesIO(body)
        self.headers = {"Content-Length": str(len(body))} if length else {}

    def read(self, n: int) -> bytes:
        return self._body.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_server_that_honours_the_range_appends_to_the_part(tmp_path, monkeypatch):
    """A 206 answer holds only the bytes after the part's: they are added to it, not written over it."""
    full = os.urandom(1000)
    (tmp_path / ".x.gz.part").write_bytes(full[:300])
    asked = []

    def urlopen(request, timeout):
        asked.append(request.get_header("Range"))
        return _Served(full[300:], status=206)
    monkeypatch.setattr(download_module.urllib.request, "urlopen", urlopen)
    download_module.download_files(tmp_path, ["x"], progress=False)
    assert asked == ["bytes=300-"] and (tmp_path / "x.gz").read_bytes() == full
    # a server that ignores the range sends the whole file (200): the part is started over
    (tmp_path / "x.gz").unlink()
    (tmp_path / ".x.gz.part").write_bytes(full[:300])
    monkeypatch.setattr(download_module.urllib.request, "urlopen", lambda request, timeout: _Served(full))
    download_module.download_files(tmp_path, ["x"], progress=False)
    assert (tmp_path / "x.gz").read_bytes() == full and not (tmp_path / ".x.gz.part").exists()


def test_a_mirror_that_fails_falls_to_the_next(tmp_path, monkeypatch):
    """The first mirror failing (an HTTP error, or the connection lost while reading: not a URLError)
    is no failure while another serves the file."""
    import urllib.error
    full = os.urandom(100)

    class Lost(_Served):
        def read(self, n):
            raise ConnectionResetError("connection reset by peer")
    for first in (urllib.error.HTTPError("a/x.gz", 404, "Not Found", {}, None), Lost(b"")):
        def urlopen(request, timeout, first=first):
            if request.full_url.startswith("http://a/"):
                if isinstance(first, Exception):
                    raise first
                return first
            assert request.full_url == "http://b/x.gz"
            return _Served(full)
        monkeypatch.setattr(download_module.urllib.request, "urlopen", urlopen)
        monkeypatch.setattr(download_module, "MIRRORS", ("http://a/", "http://b/"))
        download_module.download_files(tmp_path, ["x"], progress=False)
        assert (tmp_path / "x.gz").read_bytes() == full
        (tmp_path / "x.gz").unlink()


def test_a_file_no_mirror_serves_is_said_with_the_last_error(tmp_path, monkeypatch):
    import urllib.error

    def urlopen(request, timeout):
        raise urllib.error.URLError(f"no route to {request.full_url}")
    monkeypatch.setattr(download_module.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(download_module, "MIRRORS", ("http://a/", "http://b/"))
    with pytest.raises(OSError, match=r"^x\.gz: <urlopen error no route to http://b/x\.gz>$"):
        download_module.download_files(tmp_path, ["x"], progress=False)
    assert not (tmp_path / "x.gz").exists()


def test_the_mirrors_are_folders_the_names_are_added_to():
    assert download_module.MIRRORS and all(
        m.startswith(("http://", "https://")) and m.endswith("/") for m in download_module.MIRRORS)


def test_a_name_already_there_does_not_stop_the_others_being_fetched(tmp_path, monkeypatch):
    (tmp_path / "a.gz").write_bytes(b"kept")
    monkeypatch.setattr(download_module.urllib.request, "urlopen",
                        lambda request, timeout: _Served(request.full_url.encode()))
    monkeypatch.setattr(download_module, "MIRRORS", ("http://m/",))
    download_module.download_files(tmp_path, ["a", "b"], progress=False)
    assert (tmp_path / "a.gz").read_bytes() == b"kept" and (tmp_path / "b.gz").read_bytes() == b"http://m/b.gz"


def test_without_progress_a_download_says_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download_module.urllib.request, "urlopen", lambda request, timeout: _Served(b"x" * 10))
    download_module.download_files(tmp_path, ["a"], progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("length", [True, False])
@pytest.mark.parametrize("resumed", [True, False])
def test_a_download_on_a_terminal_is_redrawn_to_100_percent_of_the_whole_file(tmp_path, monkeypatch, capsys, length,
                                                                              resumed):
    """A resumed download counts the part it had: it ends at 100% of the whole file's size, then a
    newline; a server that gives no length gets no percentages (the part alone is no whole: they
    went past 100%)."""
    full = os.urandom(200_000)
    have = 50_000 if resumed else 0
    if resumed:
        (tmp_path / ".a.gz.part").write_bytes(full[:have])
    monkeypatch.setattr(download_module, "redraws", lambda stream: True)
    monkeypatch.setattr(download_module.urllib.request, "urlopen",
                        lambda request, timeout: _Served(full[have:], status=206 if resumed else 200, length=length))
    download_module.download_files(tmp_path, ["a"])
    err = capsys.readouterr().err
    assert (tmp_path / "a.gz").read_bytes() == full
    if length:
        assert err.endswith("\r  a.gz: 100% of 0.2 MB\n") and err.count("\n") == 1
    else:
        assert err == "  a.gz: 0.2 MB\n"


def test_a_length_that_is_no_number_is_no_length(tmp_path, monkeypatch, capsys):
    """A server's Content-Length that is no number is taken as none (as http.client takes it), not
    an internal error."""
    served = _Served(b"x" * 1000)
    served.headers = {"Content-Length": "abc"}
    monkeypatch.setattr(download_module, "redraws", lambda stream: True)
    monkeypatch.setattr(download_module.urllib.request, "urlopen", lambda request, timeout: served)
    download_module.download_files(tmp_path, ["a"])
    assert (tmp_path / "a.gz").read_bytes() == b"x" * 1000 and capsys.readouterr().err == "  a.gz: 0.0 MB\n"


def test_the_names_moved_to_datasets_are_still_found_here_with_a_warning():
    """``fashionae.data.write_npz_dataset`` and ``load_dataset``, as 0.3.27 and before named them:
    the same functions, with a warning naming where they are now; any other name is not there."""
    for name in data.MOVED_TO_DATASETS:
        with pytest.warns(DeprecationWarning, match=rf"^fashionae.data.{name} is fashionae.datasets.{name} since") as said:
            assert getattr(data, name) is getattr(datasets, name)
        assert said[0].filename == __file__  # (the caller's line, not the module's)
    with pytest.raises(AttributeError, match="has no attribute 'load_dataset_folder'"):
        data.load_dataset_folder
