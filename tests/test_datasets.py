"""Your own dataset: IDX and .npz folders of any image size and class count, checked, then
trained on end to end (train-ae, train-clf, classify, reconstruct, load, explore, eval, a
study); and a real small dataset, scikit-learn's bundled handwritten digits."""

import errno
import gzip
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fashionae
from fashionae.datasets import load_dataset, write_npz_dataset
from fashionae.errors import UserError
from fashionae.study import load_study
from helpers import IDX_NAMES, SHAPES, cli, idx_bytes, shapes, synthetic_images, write_idx

ROOT = Path(__file__).parent.parent
def write_npz(folder: Path, size=(16, 16), classes=3, n_train=240, n_test=60, **arrays) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = synthetic_images(n_train, 0, size, classes)
    te_x, te_y = synthetic_images(n_test, 1, size, classes)
    a = {"x_train": tr_x.numpy(), "y_train": tr_y.numpy(), "x_test": te_x.numpy(), "y_test": te_y.numpy()}
    np.savez(folder / "data.npz", **{**a, **arrays})
    return folder


def written(files: list[int]) -> list[int]:
    """The pictures of one set, as read class by class (``files``), in the order a dataset of them is
    written (a fixed shuffle, ``PICTURE_ORDER_SEED``)."""
    from fashionae.picturefiles import PICTURE_ORDER_SEED
    return [files[i] for i in np.random.default_rng(PICTURE_ORDER_SEED).permutation(len(files))]


def refused(capsys, *args) -> str:
    """The command's one-line error (exit 2, no traceback)."""
    code, _, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fashionae: error: "), err
    return lines[0]


# ------------------------------------------------------------------ reading and checking

def test_idx_folder_of_any_size_with_dataset_toml(tmp_path, capsys):
    folder = shapes(tmp_path / "shapes")
    ds = load_dataset(str(folder))
    assert (ds.name, ds.classes, ds.image_size, ds.verified) == ("shapes", tuple(SHAPES), (16, 24), True)
    assert ds.train_images.shape == (240, 16, 24) and int(ds.train_labels.max()) == 4
    assert load_dataset(str(folder)).sha256 == ds.sha256  # stable: the run's identity uses it
    code, out, _ = cli(capsys, "data", "--dataset", folder)
    assert code == 0 and "shapes in" in out and "16x24, 5 classes, SHA-256 verified" in out
    assert "classes (training / test images): Circle (" in out and "Heart (" in out and "note:" not in out


def test_data_dir_with_a_dataset_of_your_own_is_refused(tmp_path, capsys):
    folder = shapes(tmp_path / "d")
    assert refused(capsys, "data", "--dataset", folder, "--data-dir", tmp_path / "elsewhere") == (
        f"fashionae: error: --data-dir says where Fashion-MNIST's files are, and the dataset is your own, {folder}, "
        "read from its folder: leave --data-dir out")


def test_an_empty_dataset_or_data_dir_is_refused_not_taken_as_here(tmp_path, capsys, monkeypatch):
    """An unset shell variable ("$DATASET") must not train on whatever dataset the current folder holds."""
    shapes(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here")
    assert refused(capsys, "data", "--dataset", "") == (
        "fashionae: error: --dataset is empty; give fashion-mnist or your dataset's folder")
    assert refused(capsys, "data", "--data-dir", " ") == (
        "fashionae: error: --data-dir is empty; give the folder of Fashion-MNIST's files, or leave it out")
    (tmp_path / "s.toml").write_text('dataset = ""\n[[autoencoders]]\nname = "a"\narch = "conv"\n')
    assert refused(capsys, "study", tmp_path / "s.toml", "--plan").startswith(
        "fashionae: error: study file s.toml: dataset '' is not a folder here")


def test_digests_in_capitals_are_digests(tmp_path):
    """As Windows' Get-FileHash and certutil print them."""
    folder = shapes(tmp_path / "d")
    toml = folder / "dataset.toml"
    toml.write_text(re.sub(r'= "([0-9a-f]{64})"', lambda m: f'= "{m[1].upper()}"', toml.read_text()))
    assert re.search(r'= "[0-9A-F]{64}"', toml.read_text()) and load_dataset(str(folder)).verified


def test_without_dataset_toml_classes_are_numbered(tmp_path, capsys):
    folder = write_idx(tmp_path / "plain", size=(32, 32), classes=3, toml=None)
    ds = load_dataset(str(folder))
    assert (ds.name, ds.classes, ds.image_size, ds.verified) == ("plain", ("0", "1", "2"), (32, 32), False)
    code, out, _ = cli(capsys, "data", "--dataset", folder)
    assert code == 0 and "checksums not verified (no dataset.toml with [sha256])" in out
    toml = folder / "dataset.toml"
    toml.write_text('name = "plain"\n')  # named, no checksums
    assert not load_dataset(str(folder)).verified
    code, out, _ = cli(capsys, "data", "--dataset", folder)
    assert code == 0 and "checksums not verified (dataset.toml has no [sha256] for every file)" in out


@pytest.mark.parametrize("kind", ["uint8", "float", "channels first"])
def test_npz_folder_with_a_channel_axis(tmp_path, kind):
    """The Keras layout: images [N, H, W, 1] as uint8 or as floats in 0-1, labels [N] or [N, 1];
    PyTorch's [N, 1, H, W] too."""
    tr_x, tr_y = synthetic_images(240, 0, (20, 12), 4)
    te_x, te_y = synthetic_images(60, 1, (20, 12), 4)
    scale = {"float": lambda x: x.numpy()[..., None] / 255.0, "uint8": lambda x: x.numpy()[..., None],
             "channels first": lambda x: x.numpy()[:, None]}[kind]
    np.savez(tmp_path / "keras.npz", x_train=scale(tr_x), y_train=tr_y.numpy()[:, None],
             x_test=scale(te_x), y_test=te_y.numpy())
    (tmp_path / "train-images-idx3-ubyte").mkdir()  # a folder of an IDX file's name (an unzipped archive's): no data
    ds = load_dataset(str(tmp_path))
    assert ds.image_size == (20, 12) and ds.classes == ("0", "1", "2", "3")
    assert torch.equal(ds.train_images, tr_x) and torch.equal(ds.test_labels, te_y)


def test_write_npz_dataset_writes_what_it_reads(tmp_path):
    x, y = synthetic_images(300, 0, 16, 3)
    ds = write_npz_dataset(tmp_path / "d", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                           classes=["cat", 'say "hi"', "Ähre \U0001F455", "back\\slash"], name="pets \U0001F43E")
    # a character beyond U+FFFF too (JSON would escape it as a surrogate pair, which TOML refuses), and
    # one TOML takes only escaped (a backslash); the file in ASCII, so that it reads the same in any locale
    assert (ds.name, ds.classes, ds.verified, ds.unverified_because) == \
        ("pets \U0001F43E", ("cat", 'say "hi"', "Ähre \U0001F455", "back\\slash"), True, None)
    assert (tmp_path / "d" / "dataset.toml").read_bytes().isascii()
    assert torch.equal(ds.test_images, x[240:])
    assert load_dataset(str(tmp_path / "d")).sha256 == ds.sha256
    # what Python prints of it: what the dataset is, not every image
    assert repr(ds) == (f"Dataset('pets \U0001F43E': 4 classes, 240 training and 60 test images of 16x16, from "
                        f"{str(tmp_path / 'd')!r}, SHA-256 verified)")
    assert repr(load_dataset(str(tmp_path / "d"), verify=False)).endswith("not verified: --no-verify)")
    # torch tensors too, one that requires grad (a model's output, say) among them
    floats = (x.float() / 255).requires_grad_()
    again = write_npz_dataset(tmp_path / "t", floats[:240], y[:240], floats[240:], y[240:])
    assert torch.equal(again.test_images, x[240:])
    assert again.pictures is None  # (its runs prepare pictures as Fashion-MNIST's were)
    # how its pictures were prepared, which its runs' pictures follow; one key alone takes the other's default
    for pictures, read in (({"invert": "no", "fill": 0.7}, {"invert": "no", "fill": 0.7}),
                           ({"fill": np.float32(0.5)}, {"invert": "auto", "fill": 0.5}),
                           ({"fill": 1}, {"invert": "auto", "fill": 1.0}), ({}, {"invert": "auto", "fill": 1.0})):
        shutil.rmtree(tmp_path / "t")
        assert write_npz_dataset(tmp_path / "t", x[:240], y[:240], x[240:], y[240:], pictures=pictures).pictures == read
        assert load_dataset(str(tmp_path / "t")).pictures == read


def test_write_npz_dataset_writes_only_a_valid_dataset_into_a_new_folder(tmp_path):
    x, y = synthetic_images(300, 0, 16, 3)
    with pytest.raises(UserError, match="got 10x10: pad or resize"):  # refused before anything is written
        write_npz_dataset(tmp_path / "bad", x[:240, :10, :10].numpy(), y[:240].numpy(), x[240:, :10, :10].numpy(),
                          y[240:].numpy())
    assert not (tmp_path / "bad").exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="got 10x10: pad or resize"):  # nor the folders made above it
        write_npz_dataset(tmp_path / "new1" / "new2" / "bad", x[:240, :10, :10].numpy(), y[:240].numpy(),
                          x[240:, :10, :10].numpy(), y[240:].numpy())
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "datasets" / "mine").mkdir(parents=True)  # the user's own, empty: reached through a folder made
    with pytest.raises(UserError, match="got 10x10: pad or resize"):
        write_npz_dataset(tmp_path / "build" / ".." / "datasets" / "mine" / "bad", x[:240, :10, :10].numpy(),
                          y[:240].numpy(), x[240:, :10, :10].numpy(), y[240:].numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["datasets"] and (tmp_path / "datasets" / "mine").is_dir()
    (tmp_path / "datasets" / "mine").rmdir()
    (tmp_path / "datasets").rmdir()
    if Path("/proc/self").is_dir():  # a place that takes no folder: said of the folder asked for, not its temporary one
        with pytest.raises(UserError, match=r"^cannot write /proc/new: No such file or directory; write the dataset to "
                                            r"another folder$"):
            write_npz_dataset("/proc/new", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy())
    def full(self, data):  # a disk that fills up while the dataset is written
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "write_bytes", full)
        with pytest.raises(UserError, match=f"^no space left to write {re.escape(str(tmp_path / 'full' / 'data.npz'))}; "
                                            r"free some disk space and run again \(nothing was written\), or write the "
                                            "dataset to another folder$"):
            write_npz_dataset(tmp_path / "full", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy())
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    with pytest.raises(UserError, match="y_train holds labels up to 2, but classes= names 2 classes, numbered from 0"):
        write_npz_dataset(tmp_path / "bad", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                          classes=["a", "b"])  # the classes given, not a dataset.toml the user never wrote
    with pytest.raises(UserError, match=r"^classes= must be a list of names, such as \['circle', 'square'\], got 'a,b,c'$"):
        write_npz_dataset(tmp_path / "bad", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                          classes="a,b,c")  # (a string's letters would be three classes named 'a', ',' and 'b'...)
    for odd in (5, [1, 2, 3], []):
        with pytest.raises(UserError, match=r"^classes= must be a list of names"):
            write_npz_dataset(tmp_path / "bad", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                              classes=odd)
    with pytest.raises(UserError, match=r"class 'x\\u202ey' has a space at an end or a control character"):
        write_npz_dataset(tmp_path / "bad", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                          classes=["x\u202ey", "b", "c"])  # a right-to-left override: the row after it reversed
    # said of the arguments given, not of a dataset.toml the caller never wrote
    for kw, said in ((dict(classes=["a\nb", "c", "d"]), "class 'a\\nb' has a space at an end or a control character "
                      "(a newline, a tab), which answers and tables would show garbled; name it in one plain line"),
                     (dict(classes=["a", "b", "a"]), "class 'a' is named twice; give every class its own name"),
                     (dict(classes=["a"]), "classes= must be a list of at least two names, none of them empty"),
                     (dict(name=5), "name= must be a string"), (dict(name=0), "name= must be a string"),
                     (dict(pictures={"fill": 0}), "pictures= fill must be above 0 and at most 1 (the part of the "
                      "frame the object spans), got 0"),
                     (dict(pictures="auto"), "pictures= must be a table (a dict) of invert and fill"),
                     (dict(pictures={"fill": True}), "pictures= fill must be above 0 and at most 1 (the part of the "
                      "frame the object spans), got True"),
                     (dict(name="a\tb"), "name= 'a\\tb' has a control character (a newline, a tab); give it in one "
                      "plain line")):
        with pytest.raises(UserError, match=r"^" + re.escape(f"write_npz_dataset: {said}") + "$"):
            write_npz_dataset(tmp_path / "bad", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                              **kw)
        assert not (tmp_path / "bad").exists()
    # names in any script, with their joiners and inner spaces, and classes given by any iterable
    names = ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001F469\u200d\U0001F52C", "T\xa0shirt"]
    ds = write_npz_dataset(tmp_path / "any", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy(),
                           classes=(n for n in names))
    assert ds.classes == tuple(names)
    with pytest.raises(UserError, match=f"^{tmp_path / 'bad'}: x_test holds no images"):  # named as asked
        write_npz_dataset(tmp_path / "bad", x[:240].numpy(), y[:240].numpy(), x[:0].numpy(), y[:0].numpy())
    first = write_npz_dataset(tmp_path / "d", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy())
    with pytest.raises(UserError, match=f"^{tmp_path / 'd'} is not empty; write the dataset to a new folder"):
        write_npz_dataset(tmp_path / "d", x[:200].numpy(), y[:200].numpy(), x[240:].numpy(), y[240:].numpy())
    assert load_dataset(str(tmp_path / "d")).sha256 == first.sha256  # what runs were trained on stays
    (tmp_path / "file").write_text("mine")
    with pytest.raises(UserError, match="file is a file; write the dataset to a new folder"):
        write_npz_dataset(tmp_path / "file", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    (tmp_path / "empty").mkdir()
    assert len(write_npz_dataset(tmp_path / "empty", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(),
                                 y[240:].numpy()).train_images) == 240


def replace_idx(folder: Path, name: str, array: torch.Tensor | None = None, raw: bytes | None = None) -> None:
    """Overwrite one gzipped IDX file of ``folder`` with ``array`` (or raw bytes, gzipped)."""
    (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array) if raw is None else raw))


def with_classes(folder: Path, *names: str) -> Path:
    (folder / "dataset.toml").write_text(f"classes = {json.dumps(list(names))}\n")
    return folder


IDX_LIST = ", ".join(IDX_NAMES)
IDX_GZ = ", ".join(f"{n}.gz" for n in IDX_NAMES)
NPZ = "{d}/data.npz"
# name -> (make the folder, the whole one-line error as a regex; {d} is the folder)
BAD = {
    "wrong sha256": (lambda d: (shapes(d), (d / "dataset.toml").write_text(re.sub(
        r'(\.gz" = ")(.)', lambda m: m[1] + ("1" if m[2] == "0" else "0"), (d / "dataset.toml").read_text(), count=1))),
        "{d}/train-images-idx3-ubyte.gz fails the SHA-256 check of dataset.toml; it is damaged or not "
        "the file dataset.toml describes: get a fresh copy \\(if you changed the file on purpose, put its new digest in "
        "dataset.toml: sha256sum prints it\\)"),
    "not a sha256": (lambda d: (shapes(d), (d / "dataset.toml").write_text(
        (d / "dataset.toml").read_text().replace('.gz" = "', '.gz" = "0'))),
        "{d}/dataset.toml: \\[sha256\\] 'train-images-idx3-ubyte.gz' is '0[0-9a-f]{64}', not a SHA-256 digest "
        "\\(64 hexadecimal digits, as sha256sum prints them\\)"),
    "labels above the classes": (lambda d: write_idx(d, classes=5, toml='classes = ["a", "b", "c"]'),
                                 "{d}: train-labels-idx1-ubyte holds labels up to 4, but dataset.toml names 3 classes, "
                                 "numbered from 0; name every class there \\(5\\)"),
    "npz test labels above the classes": (lambda d: with_classes(write_npz(d, y_test=np.full(60, 3)), "a", "b", "c"),
                                          "{d}: y_test holds labels up to 3, but dataset.toml names 3 classes, numbered "
                                          "from 0; name every class there \\(4\\)"),
    "labels from 1": (lambda d: with_classes(write_npz(d, y_train=np.arange(240) % 3 + 1, y_test=np.arange(60) % 3 + 1),
                                             "a", "b", "c"),
                      "{d}: y_train holds labels up to 3, but dataset.toml names 3 classes, numbered from 0; labels "
                      "from 1: subtract 1"),
    "npz train count": (lambda d: write_npz(d, y_train=np.zeros(239, np.int64)),
                        "{d}: x_train has 240 images but y_train has 239 labels"),
    "npz test count": (lambda d: write_npz(d, y_test=np.zeros(59, np.int64)),
                       "{d}: x_test has 60 images but y_test has 59 labels"),
    "idx train count": (lambda d: replace_idx(write_idx(d, toml=None), IDX_NAMES[1], torch.zeros(239)),
                        "{d}: train-images-idx3-ubyte has 240 images but train-labels-idx1-ubyte has 239 labels"),
    "idx test count": (lambda d: replace_idx(write_idx(d, toml=None), IDX_NAMES[3], torch.zeros(59)),
                       "{d}: t10k-images-idx3-ubyte has 60 images but t10k-labels-idx1-ubyte has 59 labels"),
    "idx labels as int32": (lambda d: replace_idx(write_idx(d, toml=None), IDX_NAMES[3],
                                                  raw=b"\x00\x00\x0c\x01" + (60).to_bytes(4, "big") + bytes(240)),
                            "{d}/t10k-labels-idx1-ubyte.gz is an IDX file of 32-bit integers; fashionae reads IDX "
                            "files of unsigned bytes \\(type 0x08\\), as Fashion-MNIST's: save it as uint8 "
                            "\\(labels from 0, pixels 0-255\\)"),
    "idx file that is not IDX": (lambda d: replace_idx(write_idx(d, toml=None), IDX_NAMES[3], raw=b"hello world"),
                                 "{d}/t10k-labels-idx1-ubyte.gz has a bad IDX header \\(magic 68656c6c, expected "
                                 "00000801 or 00000803\\); it is not an IDX file of images or labels"),
    "damaged gzip": (lambda d: (write_idx(d, toml=None), (d / f"{IDX_NAMES[0]}.gz").write_bytes(
        (d / f"{IDX_NAMES[0]}.gz").read_bytes()[:50])),
        "{d}/train-images-idx3-ubyte.gz is a damaged gzip file \\(.+\\); get a fresh copy"),
    # not a zip file: numpy takes any such .npz for a pickle, and refuses it as one (ValueError)
    "not an npz": (lambda d: (d.mkdir(), (d / "data.npz").write_bytes(b"not a zip file")),
                   NPZ + " is not a readable .npz file \\(ValueError: damaged, or holding object arrays, which fashionae "
                   "never unpickles\\); save plain numeric arrays with numpy.savez"),
    "pickled npz": (lambda d: write_npz(d, x_train=np.array([{"code": "runs on load"}] * 240, dtype=object)),
                    NPZ + " is not a readable .npz file \\(ValueError: damaged, or holding object arrays, which fashionae "
                   "never unpickles\\); save plain numeric arrays with numpy.savez"),
    "two npz files": (lambda d: (write_npz(d), (d / "more.npz").write_bytes((d / "data.npz").read_bytes())),
                      "{d} holds several .npz files; keep one"),
    "npz without y_test": (lambda d: (d.mkdir(), np.savez(d / "data.npz", x_train=np.zeros((20, 8, 8)))),
                           NPZ + " lacks y_train, x_test, y_test; it must hold x_train, y_train, x_test, y_test"),
    "npz of colour images": (lambda d: write_npz(d, x_train=np.zeros((240, 16, 16, 3), np.uint8)),
                             "{d}: the train images must be \\[N, height, width\\] and the labels \\[N\\] "
                             "\\(got \\[240, 16, 16, 3\\] and \\[240\\]\\); convert colour images to one grey "
                             "channel first"),
    "npz pixels out of range": (lambda d: write_npz(d, x_test=np.full((60, 16, 16), 300.0)),
                                NPZ + ": x_test holds values outside \\[0, 255\\]"),
    "npz pixels half a level too bright": (lambda d: write_npz(d, x_test=np.full((60, 16, 16), 255.5)),
                                           NPZ + ": x_test holds values outside \\[0, 255\\]"),
    "npz with NaN": (lambda d: write_npz(d, x_test=np.full((60, 16, 16), np.nan)),
                     NPZ + ": x_test holds NaN or infinite values; give every pixel a number, 0-255 or 0-1"),
    "npz splits in two ranges": (lambda d: write_npz(d, x_train=np.full((240, 16, 16), 0.5),
                                                 x_test=np.full((60, 16, 16), 100.0)),
                                 NPZ + ": x_train holds pixels in 0-1 and x_test in 0-255; give both the same range"),
    "npz one-hot labels": (lambda d: write_npz(d, y_train=np.eye(3)[np.arange(240) % 3]),
                           NPZ + ": y_train is \\[240, 3\\], one-hot or scores per class; give one class number "
                           "per image: y_train.argmax\\(1\\)"),
    "npz labels as class names": (lambda d: write_npz(d, y_train=np.resize(["cat", "dog", "eel"], 240)),
                                  NPZ + ": y_train holds text \\('cat', …\\), not class numbers; number them: classes, "
                                  "y = np.unique\\(np.concatenate\\(\\[y_train, y_test\\]\\), return_inverse=True\\), then "
                                  "y_train, y_test = np.split\\(y, \\[len\\(y_train\\)\\]\\), and name the classes: write_npz_dataset\\(..., "
                                  "classes=list\\(classes\\)\\), or dataset.toml's classes"),
    "npz labels as floats": (lambda d: write_npz(d, y_test=np.zeros(60)),
                             NPZ + ": y_test holds whole numbers as float64; give them as integers: y_test.astype\\(int\\)"),
    "npz labels beyond int64": (lambda d: write_npz(d, y_test=np.full(60, 2 ** 63, np.uint64)),
                                NPZ + ": y_test must hold non-negative integer labels \\(class numbers from 0\\)"),
    "npz integer pixels above 255": (lambda d: write_npz(d, x_test=np.full((60, 16, 16), 256, np.int16)),
                                     NPZ + ": x_test must hold grayscale pixels, 0-255 or 0-1"),
    "negative labels": (lambda d: write_npz(d, y_train=-np.ones(240, np.int64)),
                        NPZ + ": y_train must hold non-negative integer labels \\(class numbers from 0\\)"),
    "size not divisible by 4": (lambda d: write_idx(d, size=(30, 30)),
                                "{d}: images must be multiples of 4 of at least 8 \\(the encoder halves them "
                                "twice\\), got 30x30: pad or resize them"),
    "npz and idx files": (lambda d: (write_idx(d, toml=None), write_npz(d)),
                          "{d} holds both data.npz and IDX files; keep one layout"),
    "a file gzipped and not": (lambda d: (write_idx(d, toml=None), (d / "t10k-labels-idx1-ubyte").write_bytes(
        gzip.decompress((d / "t10k-labels-idx1-ubyte.gz").read_bytes()))),
        "{d} holds both t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz; keep one"),
    "a folder where an idx file should be": (lambda d: (write_idx(d, toml=None), (d / f"{IDX_NAMES[3]}.gz").unlink(),
                                                        (d / IDX_NAMES[3]).mkdir()),
                                             f"{{d}} has neither one .npz file nor the four IDX files \\({IDX_LIST}, .gz "
                                             f"or not\\); it lacks {IDX_NAMES[3]}; {{d}}/{IDX_NAMES[3]} is a folder, not "
                                             "the file"),
    "neither npz nor idx": (lambda d: (d.mkdir(), (d / "notes.txt").write_text("hi")),
                            f"{{d}} has neither one .npz file nor the four IDX files \\({IDX_LIST}, .gz or not\\)"),
    "not a folder": (lambda d: None, "dataset {d} is neither fashion-mnist nor a folder; give a folder with "
                     "four IDX files or one .npz \\(x_train, y_train, x_test, y_test\\), see docs/datasets.md"),
    "unknown toml key": (lambda d: write_idx(d, toml='klasses = ["a", "b"]'),
                         "{d}/dataset.toml: unknown key 'klasses'; known: name, classes, sha256, pictures"),
    "a fill beyond the frame": (lambda d: write_idx(d, toml='[pictures]\ninvert = "auto"\nfill = 2'),
                                "{d}/dataset.toml: \\[pictures\\] fill must be above 0 and at most 1 \\(the part of "
                                "the frame the object spans\\), got 2; mend it as `fashionae data --from-pictures` "
                                "writes it \\(or delete the table: pictures are then prepared as Fashion-MNIST's "
                                "were\\)"),
    "an invert of another word": (lambda d: write_idx(d, toml='[pictures]\ninvert = "maybe"'),
                                  "{d}/dataset.toml: \\[pictures\\] invert must be auto, yes or no, got 'maybe'; .*"),
    "pictures that are no table": (lambda d: write_idx(d, toml='pictures = "auto"'),
                                   "{d}/dataset.toml: \\[pictures\\] must be a table \\(a dict\\) of invert and fill; .*"),
    "a pictures key of another name": (lambda d: write_idx(d, toml='[pictures]\nfil = 0.7'),
                                       "{d}/dataset.toml: \\[pictures\\] has an unknown key 'fil'; known: invert, fill; .*"),
    "one class name": (lambda d: write_idx(d, toml='classes = ["a"]'),
                       "{d}/dataset.toml: classes must be a list of at least two names, none of them empty"),
    "an empty class name": (lambda d: write_idx(d, toml='classes = ["a", " "]'),
                            "{d}/dataset.toml: classes must be a list of at least two names, none of them empty"),
    "one idx file missing": (lambda d: (write_idx(d, toml=None), (d / f"{IDX_NAMES[3]}.gz").unlink()),
                             f"{{d}} has neither one .npz file nor the four IDX files \\({IDX_LIST}, .gz or not\\); "
                             f"it lacks {IDX_NAMES[3]}"),
    "a class name with a space at an end": (lambda d: write_idx(d, toml='classes = ["a", " b"]'),
                                            "{d}/dataset.toml: class ' b' has a space at an end or a control "
                                            "character \\(a newline, a tab\\), which answers and tables would show "
                                            "garbled; name it in one plain line"),
    "a class name with a tab": (lambda d: write_idx(d, toml='classes = ["a", "b\\tc"]'),
                                "{d}/dataset.toml: class 'b\\\\tc' has a space at an end or a control character .*"),
    "a class name twice": (lambda d: write_idx(d, toml='classes = ["a", "b", "a"]'),
                           "{d}/dataset.toml: class 'a' is named twice; give every class its own name"),
    "no test images": (lambda d: write_npz(d, n_test=0),
                       "{d}: x_test holds no images; a dataset needs test images to measure its runs on"),
    "a name that is not text": (lambda d: write_idx(d, toml="name = 3"),
                                "{d}/dataset.toml: name must be a string"),
    "digests that are not a table": (lambda d: (write_idx(d, toml=None), (d / "dataset.toml").write_text("sha256 = 3")),
                                     "{d}/dataset.toml: \\[sha256\\] must be a table of file digests"),
    "a name on two lines": (lambda d: write_idx(d, toml='name = "a\\nb"'),
                            "{d}/dataset.toml: name 'a\\\\nb' has a control character \\(a newline, a tab\\); give "
                            "it in one plain line"),
    "digest of a stray file": (lambda d: (write_idx(d), (d / "dataset.toml").open("a").write('"data.npz" = "00"\n')),
                               "{d}/dataset.toml: \\[sha256\\] names 'data.npz', which is not a data file of this "
                               f"folder \\(they are {IDX_GZ}\\)"),
    "bad toml": (lambda d: write_idx(d, toml="name = "), "{d}/dataset.toml is not valid TOML \\(.+\\); mend it, or delete it to name the classes by number"),
    "a folder named dataset.toml": (lambda d: (write_idx(d, toml=None), (d / "dataset.toml").mkdir()),
                                    "{d}/dataset.toml is a folder, not a file; remove it, or write the dataset's "
                                    "description there"),
    "train and test sizes differ": (lambda d: write_npz(d, size=(16, 24), x_test=np.zeros((60, 16, 20), np.uint8)),
                                    "{d}: train images are \\(16, 24\\) but test images are \\(16, 20\\)"),
    "eleven training images": (lambda d: write_npz(d, n_train=11),
                               "{d}: 11 training images are too few; a dataset needs at least 12 \\(a sixth of "
                               "them is held out for validation\\): add training images"),
    "labels that are not class numbers": (lambda d: write_npz(d, y_train=np.full(240, 10**12)),
                                          "{d}: labels go up to 1000000000000, more classes than the 240 "
                                          "training images; number the classes from 0, or name them in dataset.toml"),
    "a data file that cannot be read": (lambda d: (d / "data.npz").mkdir(parents=True),
                                        "cannot read {d}/data.npz: Is a directory"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_dataset_is_one_clear_line(tmp_path, capsys, case):
    """The whole line, word for word: which file, what is wrong with it, what to do."""
    make, message = BAD[case]
    folder = tmp_path / "bad"
    make(folder)
    line = refused(capsys, "data", "--dataset", folder)
    assert re.fullmatch("fashionae: error: " + message.replace("{d}", re.escape(str(folder))), line), line


@pytest.mark.parametrize("pixels, loaded", [
    (np.array([0.0, 0.5, 1.0]), [0, 128, 255]),      # floats up to 1 are 0-1 intensities
    (np.array([0.0, 1.5, 2.0]), [0, 2, 2]),          # above 1 they are 0-255 levels, rounded
    (np.array([0.0, 254.6, 255.0]), [0, 255, 255]),  # 255 itself is allowed
    (np.array([0, 17, 255], np.int16), [0, 17, 255]),
    (np.array([False, True, True]), [0, 255, 255]),  # black and white
], ids=["float 0-1", "dim float 0-255", "float 0-255", "int16", "bool"])
def test_npz_pixels_become_uint8_levels(tmp_path, pixels, loaded):
    x = np.broadcast_to(np.resize(pixels, (16, 16)), (240, 16, 16)).copy()
    ds = load_dataset(str(write_npz(tmp_path / "d", x_train=x)))
    assert ds.train_images.dtype == torch.uint8
    assert ds.train_images[0, 0, :3].tolist() == loaded


@pytest.mark.parametrize("size", [(30, 16), (16, 30), (4, 16), (16, 4)])
def test_images_must_halve_twice(tmp_path, size):
    with pytest.raises(UserError, match=rf"images must be multiples of 4 of at least 8 \(the encoder halves them "
                                        rf"twice\), got {size[0]}x{size[1]}: pad or resize them$"):
        load_dataset(str(write_npz(tmp_path / "d", size=size)))


def test_the_smallest_dataset_that_loads(tmp_path):
    """8 x 8 images, 12 training images, one test image, every label 0: two classes, as a
    classifier needs at least two outputs. Enough for an autoencoder, not for a classifier
    (test_a_classifier_needs_images_of_every_class); with no test image it is refused (BAD)."""
    d = write_npz(tmp_path / "d", size=(8, 8), n_train=12, y_train=np.zeros(12, np.int64), n_test=1,
                  y_test=np.zeros(1, np.int64))
    ds = load_dataset(str(d))
    assert ds.image_size == (8, 8) and len(ds.train_images) == 12 and len(ds.test_images) == 1
    assert ds.classes == ("0", "1")


def test_as_many_classes_as_training_images_at_most(tmp_path):
    labels = np.arange(12)
    assert len(load_dataset(str(write_npz(tmp_path / "a", n_train=12, y_train=labels))).classes) == 12
    labels[-1] = 12  # thirteen classes for twelve images: not class numbers
    with pytest.raises(UserError, match=r"labels go up to 12, more classes than the 12 training images"):
        load_dataset(str(write_npz(tmp_path / "b", n_train=12, y_train=labels)))


def test_two_classes_are_enough(tmp_path):
    folder = write_idx(tmp_path / "d", classes=2, toml='classes = ["no", "yes"]')
    assert load_dataset(str(folder)).classes == ("no", "yes")


def test_a_written_dataset_without_a_name_takes_its_folders(tmp_path):
    x, y = synthetic_images(300, 0, 16, 3)
    ds = write_npz_dataset(tmp_path / "pets", x[:240].numpy(), y[:240].numpy(), x[240:].numpy(), y[240:].numpy())
    assert (ds.name, ds.classes, ds.verified) == ("pets", ("0", "1", "2"), True)
    assert "name" not in (tmp_path / "pets" / "dataset.toml").read_text()


def test_no_verify_skips_the_dataset_toml_digests(tmp_path, capsys):
    folder = shapes(tmp_path / "d")
    (folder / "dataset.toml").write_text((folder / "dataset.toml").read_text().replace('.gz" = "', '.gz" = "0'))
    code, out, _ = cli(capsys, "data", "--dataset", folder, "--no-verify")
    assert code == 0 and "checksums not verified (--no-verify)" in out


# ------------------------------------------------------------------ training on it

def picture(path: Path, row: int) -> Path:
    """A dark bar on a light background, at one of the shapes' bar heights."""
    a = np.full((40, 60), 255, np.uint8)
    a[row:row + 3, 6:54] = 0
    Image.fromarray(a).save(path)
    return path


def test_train_classify_reconstruct_explore_on_own_data(tmp_path, capsys):
    data = shapes(tmp_path / "shapes")
    ae, clf = tmp_path / "ae", tmp_path / "clf"
    fast = ["--epochs", "2", "--batch-size", "40", "--lr", "3e-3", "--dropout", "0"]
    code, out, _ = cli(capsys, "train-ae", "--dataset", data, "--latent", "16", "--out", ae, *fast)
    assert code == 0 and "test MSE" in out
    config = json.loads((ae / "config.json").read_text())
    assert config["dataset"] == "shapes" and config["model"]["image_size"] == [16, 24]
    assert config["data"]["classes"] == SHAPES and config["data"]["val_size"] == 40  # a sixth of 240
    assert len(config["data"]["val_indices_sha256"]) == 64
    code, out, _ = cli(capsys, "train-ae", "--dataset", data, "--latent", "16", "--out", ae, *fast)
    assert code == 0 and json.loads((ae / "summary.json").read_text())["epochs"] == 2  # resumed: finished

    code, out, _ = cli(capsys, "train-clf", "--dataset", data, "--strategy", "finetune", "--encoder", ae,
                       "--out", clf, *fast)
    assert code == 0 and "most confused" in out
    s = json.loads((clf / "summary.json").read_text())
    assert len(s["confusion_matrix"]) == 5 and all(len(r) == 5 for r in s["confusion_matrix"])
    assert sum(map(sum, s["confusion_matrix"])) == 60 and len(s["per_class_acc"]) == 5
    assert {s["most_confused"]["true"], s["most_confused"]["predicted"]} <= set(SHAPES)
    assert s["test_acc"] > 0.4  # five bar heights, two epochs: far above chance (0.2)

    run = fashionae.load(clf)
    assert run.classes == tuple(SHAPES) and run.model.head.out_features == 5
    assert repr(run) == f"LoadedRun({str(clf)!r}: classifier, paper encoder, linear 16, 16x24 images, 5 classes, " \
                        f"{run.precision})"
    bar = picture(tmp_path / "bar.png", 2)
    assert run.predict(bar)[0] in SHAPES and run.predict_proba([bar, bar]).shape == (2, 5)
    assert run.embed(torch.rand(3, 1, 16, 24)).shape == (3, 16)
    with pytest.raises(UserError, match=r"\[N, 1, 16, 24\]"):
        run.embed(torch.rand(3, 1, 28, 28))
    code, out, _ = cli(capsys, "classify", clf, bar)
    assert code == 0 and sum(name in out for name in SHAPES) == 3  # the top 3, by the dataset's names
    code, out, _ = cli(capsys, "reconstruct", ae, bar, "-o", tmp_path / "rec")
    assert code == 0 and Image.open(tmp_path / "rec" / "bar_reconstruction.png").size == ((24 * 2 + 2) * 8, 16 * 8)
    (tmp_path / "other").mkdir()  # two pictures of one name: refused before anything is written
    twin = picture(tmp_path / "other" / "bar.png", 5)
    line = refused(capsys, "reconstruct", ae, bar, twin, "-o", tmp_path / "rec2")
    assert line == (f"fashionae: error: {bar} and {twin} would both be written to "
                    f"{tmp_path / 'rec2' / 'bar_reconstruction.png'}; rename one, or reconstruct them one at a time into "
                    "different folders (-o)")
    assert not (tmp_path / "rec2").exists()
    assert fashionae.load(ae).reconstruct(bar).shape == (1, 1, 16, 24)

    code, out, _ = cli(capsys, "explore", ae, "--no-tsne")
    e = json.loads((ae / "explore" / "explore.json").read_text())
    assert code == 0 and e["latent"] == 16 and e["test_images"] == 60 and "interpolation.png" in e["figures"]
    # what the command prints is what explore.json holds, a probe that did not converge said so
    said = "" if e["linear_probe_converged"] else "not converged in 300 iterations, "
    assert (f"k-NN (k=5) test accuracy {e['knn_acc']:.4f}, linear probe {e['linear_probe_acc']:.4f} "
            f"({said}fitted on {e['fit_images']:,} training images)") in out
    code, out, _ = cli(capsys, "eval", clf)
    assert code == 0 and f"accuracy {s['test_acc']:.4f}  (60 images)" in out

    # the dataset moved: --data-dir says where; other data is refused
    moved = data.rename(tmp_path / "moved")
    assert "is not there now; pass --data-dir" in refused(capsys, "eval", clf)
    assert cli(capsys, "eval", clf, "--data-dir", moved)[0] == 0
    other = write_idx(tmp_path / "other", classes=5, n_train=300)
    assert "are not the ones" in refused(capsys, "eval", clf, "--data-dir", other)

    # an encoder fits images of its own size only; another class count is fine
    square = write_idx(tmp_path / "square", size=(28, 28))
    assert refused(capsys, "train-clf", "--dataset", square, "--strategy", "frozen", "--encoder", ae, "--out",
                   tmp_path / "x").endswith(f"trained on 16x24 images (shapes), but square has 28x28; train the classifier "
                                            f"on data of the autoencoder's size, e.g. the data it was trained on: "
                                            f"--dataset {data}")  # (where it was then: it moved since)
    three = write_idx(tmp_path / "three", size=(16, 24), classes=3, n_train=60, n_test=30)
    code, _, _ = cli(capsys, "train-clf", "--dataset", three, "--strategy", "frozen", "--encoder", ae,
                     "--epochs", "1", "--out", tmp_path / "clf3")
    assert code == 0 and fashionae.load(tmp_path / "clf3").classes == ("0", "1", "2")


STUDY = """name = "toy"
dataset = "{dataset}"
[train]
epochs = 1
batch_size = 40
lr = 3e-3
[model]
dropout = 0.0
[[autoencoders]]
name = "linear-16"
arch = "linear"
latent = 16
[classifiers]
encoder = "linear-16"
strategies = ["finetune", "frozen"]
[baselines]
logreg_max_iter = 50
"""


def test_study_on_own_data_reports_its_classes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the study file names its dataset relative to where it runs
    shapes(tmp_path / "data" / "shapes")
    (tmp_path / "toy.toml").write_text(STUDY.format(dataset="data/shapes"))
    code, out, err = cli(capsys, "study", "toy.toml", "--out", "study")
    assert code == 0 and "Per-class" not in out, err
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    assert results["dataset"] == "shapes" and results["classes"] == SHAPES
    assert results["claims"] == [] and results["reference"] is None
    assert [k["k"] for k in results["baselines"]["pca"]] == [16, 32, 64, 128, 200]  # 200 = training images
    assert results["baselines"]["logistic_regression"]["test_acc"] > 0.2
    cm = results["classifiers"][0]["confusion_matrices"][0]
    assert len(cm) == 5 and results["classifiers"][0]["most_confused"]["true"] in SHAPES
    md = (tmp_path / "study" / "report.md").read_text()
    for name in SHAPES:
        assert f"| {name} |" in md  # the per-class table
    assert "5 classes (Circle, Square, Star, Moon, Heart)" in md and "16x24 images" in md
    for fashion_only in ("Table II", "author's code val", "reference test", "(#claims)", "“report” column"):
        assert fashion_only not in md
    html = (tmp_path / "study" / "report.html").read_text()
    assert "<td class='nw' data-label='class'>Heart</td>" in html and "fig5_confusion_finetune.png" in html
    assert "fig2_reconstructions.png" in html
    # names edited after training (not in the data's digest): the finished runs keep theirs, and say so
    toml = tmp_path / "data" / "shapes" / "dataset.toml"
    toml.write_text(toml.read_text().replace('"Circle"', '"Disc"').replace('"Heart"', '"Love"'))
    code, _, err = cli(capsys, "study", "toy.toml", "--out", "study", "--plan")
    assert code == 0 and ("ae-linear-16-seed0 and 2 more runs: trained when the data named its classes otherwise (it "
                          "names Circle as Disc, Heart as Love now): a finished run keeps the names it trained with (its numbers "
                          "stand), and the report names the classes as its runs do; delete the runs to train them "
                          "with the new names") in err
    code, _, _ = cli(capsys, "study", "toy.toml", "--out", "study")  # the report: the names the runs trained with
    html = (tmp_path / "study" / "report.html").read_text()
    assert code == 0 and "data-label='class'>Heart</td>" in html and "Love" not in html


# ------------------------------------------------------------------ a real small dataset

def write_digits(folder: Path):
    """scikit-learn's 1,797 handwritten digits (8x8, grey levels 0-16), enlarged 4 times to
    32x32 and scaled to 0-255: the first 1,500 train, the other 297 test (as docs/datasets.md)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (np.kron(d.images, np.ones((4, 4))) * 255 / 16).round().astype(np.uint8)
    return write_npz_dataset(folder, x[:1500], d.target[:1500], x[1500:], d.target[1500:],
                             classes=[str(i) for i in range(10)], name="digits")


def test_digits_folder_and_its_study_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the study file names data/digits, from where fashionae runs
    ds = write_digits(tmp_path / "data" / "digits")
    assert ds.image_size == (32, 32) and len(ds.train_images) == 1500 and len(ds.test_images) == 297
    assert ds.classes == tuple("0123456789") and ds.verified and int(ds.train_images.max()) == 255
    code, out, _ = cli(capsys, "data", "--dataset", tmp_path / "data" / "digits")
    assert code == 0 and "digits in" in out and "1,500 train + 297 test images of 32x32, 10 classes" in out
    for profile in ("quick", "smoke"):
        study = load_study(ROOT / "studies" / "digits.toml", profile)
        assert study.dataset == "data/digits" and study.classifiers.strategies


@pytest.mark.slow
def test_digits_study_learns_the_digits(tmp_path, capsys, monkeypatch):
    """A short study on real data: a linear autoencoder, then its encoder fine-tuned and frozen."""
    monkeypatch.chdir(tmp_path)
    write_digits(tmp_path / "data" / "digits")
    (tmp_path / "digits.toml").write_text(STUDY.replace('"toy"', '"digits"').format(dataset="data/digits")
                                          .replace("epochs = 1", "epochs = 2").replace("lr = 3e-3", "lr = 2e-3")
                                          .replace("linear-16", "linear-64").replace("latent = 16", "latent = 64")
                                          .replace("batch_size = 40", "batch_size = 50"))
    code, _, _ = cli(capsys, "study", "digits.toml", "--out", "study")
    assert code == 0
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    acc = {c["strategy"]: c["test_acc"]["mean"] for c in results["classifiers"]}
    assert acc["finetune"] > 0.6 and acc["frozen"] > 0.3  # chance is 0.1; seeds 0-2 gave 0.74-0.86, 0.53-0.65
    assert results["classes"] == list("0123456789") and results["claims"] == []
    md = (tmp_path / "study" / "report.md").read_text()
    assert "10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in md and "| 7 |" in md


def test_a_classifier_needs_images_of_every_class(tmp_path, capsys):
    """A dataset of one label (classes 0 and 1, only 0 used) trains an autoencoder; a classifier
    on it is refused before its folder is made, as is one whose test images miss a class."""
    x, y = synthetic_images(300, 0, 16, 3)
    one_label = write_npz(tmp_path / "d", y_train=np.zeros(240, np.int64), y_test=np.zeros(60, np.int64))
    fast = ["--epochs", "1", "--batch-size", "40", "--latent", "8"]
    assert cli(capsys, "train-ae", "--dataset", one_label, "--out", tmp_path / "ae", *fast)[0] == 0
    line = refused(capsys, "train-clf", "--dataset", one_label, "--strategy", "scratch", "--out", tmp_path / "c",
                   *fast)
    assert line == ("fashionae: error: d: class '1' has no training images among the 200 a classifier run "
                    "trains on, nor has the dataset; give it training images (a class without any image: number the "
                    "classes from 0 without gaps)")
    assert not (tmp_path / "c").exists()
    assert ("(give it images of both sets; a class without any: number the classes from 0 without gaps)\n"
            in cli(capsys, "data", "--dataset", one_label)[1])
    y_test = np.resize([0, 1], 60)  # class 2 never tested
    untested = with_classes(write_npz(tmp_path / "u", y_test=y_test), "a", "b", "c")
    line = refused(capsys, "train-clf", "--dataset", untested, "--strategy", "scratch", "--out", tmp_path / "c",
                   *fast, "--eval-subset", "30")
    assert line == ("fashionae: error: u: class 'c' has no test images among the 30 a classifier run is tested on, "
                    "nor has the dataset; give it test images")  # (it has training images: no gap in the numbers)
    # a class whose images the run's split or subset leaves out: where they went, and what brings them in
    y_train = np.resize([0, 1], 240)
    from fashionae.data import SPLIT_SEED
    held_out = torch.randperm(240, generator=torch.Generator().manual_seed(SPLIT_SEED))[0]  # (make_splits's first)
    y_train[int(held_out)] = 2  # its one training image is among those held out for validation
    rare = with_classes(write_npz(tmp_path / "r", y_train=y_train, y_test=np.resize([0, 1, 2], 60)), "a", "b", "c")
    assert ("note: c: every training image of this class is among those --val holdout (the default) keeps for "
            "validation, so a classifier would train without it: give it more images, or validate on the test set "
            "(--val test)") in cli(capsys, "data", "--dataset", rare)[1]  # said before a run, too
    assert "note:" not in cli(capsys, "data", "--dataset", write_npz(tmp_path / "p"))[1]  # every class kept
    line = refused(capsys, "train-clf", "--dataset", rare, "--strategy", "scratch", "--out", tmp_path / "c", *fast)
    assert line == ("fashionae: error: r: class 'c' has no training images among the 200 a classifier run trains on: "
                    "of its 1 training image, 1 is held out for validation (a sixth of the training images); give it "
                    "more images, or validate on the test set (--val test; in a study, val = \"test\")")
    assert refused(capsys, "train-clf", "--dataset", rare, "--strategy", "scratch", "--out", tmp_path / "c", *fast,
                   "--eval-subset", "1") == line  # (held out, whatever part of the held-out images validates)
    assert cli(capsys, "train-clf", "--dataset", rare, "--strategy", "scratch", "--out", tmp_path / "c", *fast,
               "--val", "test")[0] == 0  # (as it says)
    line = refused(capsys, "train-clf", "--dataset", rare, "--strategy", "scratch", "--out", tmp_path / "c2", *fast,
                   "--val", "test", "--eval-subset", "2")
    assert line == ("fashionae: error: r: class 'c' has no test images among the 2 a classifier run is tested on: of "
                    "its 20 test images, 20 lie beyond the subset; use a larger subset than 2 (--eval-subset; in a "
                    "study, eval_subset)")


def test_a_study_whose_classifiers_lack_a_class_is_refused_before_anything_trains(tmp_path, capsys):
    one_label = write_npz(tmp_path / "d", y_train=np.zeros(240, np.int64), y_test=np.zeros(60, np.int64))
    study = tmp_path / "s.toml"
    study.write_text(f'dataset = "{one_label}"\n[train]\nepochs = 1\nbatch_size = 40\n'
                     '[[autoencoders]]\nname = "a"\nlatent = 8\n[classifiers]\nencoder = "a"\nstrategies = ["frozen"]\n')
    assert refused(capsys, "study", study, "--out", tmp_path / "out", "--seeds", "1", "--plan").startswith(
        "fashionae: error: d: class '1' has no training images among the 200")  # --plan says so too
    line = refused(capsys, "study", study, "--out", tmp_path / "out", "--seeds", "1")
    assert line.startswith("fashionae: error: d: class '1' has no training images among the 200")
    assert not (tmp_path / "out" / "runs").exists()  # the autoencoder did not train first
    # autoencoders alone need no labels: the same data, without the classifiers, is planned
    study.write_text(f'dataset = "{one_label}"\n[train]\nepochs = 1\nbatch_size = 40\n'
                     '[[autoencoders]]\nname = "a"\nlatent = 8\n[baselines]\nenabled = false\n')
    code, out, err = cli(capsys, "study", study, "--out", tmp_path / "out", "--seeds", "1", "--plan")
    assert code == 0 and "ae-a-seed0" in out, err
    # but the baselines' logistic regression needs two classes: refused before the autoencoder trains
    study.write_text(study.read_text().replace("enabled = false", "enabled = true"))
    assert "logistic regression" in refused(capsys, "study", study, "--out", tmp_path / "out", "--seeds", "1")
    assert not (tmp_path / "out" / "runs").exists()


def test_data_notes_classes_a_classifier_could_not_use_and_pixels_of_0_and_1(tmp_path, capsys):
    """`fashionae data` says early what only train-clf or a study would refuse (a class without
    test images), what would train silently on black images (pixels of 0 and 1), and how pictures
    given to its runs are prepared where its backgrounds are light (dark on light, as its images)."""
    d = write_npz(tmp_path / "d", y_test=np.resize([0, 1], 60), x_train=np.resize([0, 1], (240, 16, 16)).astype(np.uint8))
    code, out, _ = cli(capsys, "data", "--dataset", d)
    assert code == 0 and "2 (" in out and " / 0)" in out
    assert ("note: 1 class (2) lacks training or test images: autoencoders train, but a classifier needs both for "
            "every class") in out
    assert "note: the pixels reach only 1 of 255: images of 0 and 1?" in out
    assert "light backgrounds" not in out
    light = write_npz(tmp_path / "light", x_train=np.full((240, 16, 16), 250, np.uint8))  # dark on white: said
    code, out, _ = cli(capsys, "data", "--dataset", light)
    assert code == 0 and ("\nlight backgrounds (its images' borders' median 250 of 255): pictures given to its runs "
                          "are prepared dark on light, as its images are\n") in out


# ------------------------------------------------------------------ a folder of pictures made a dataset

def photo(path: Path, label: int, size=(90, 120)) -> Path:
    """A product photo of class ``label``: a dark colour object on a white background, its width by class."""
    a = np.full((*size, 3), 250, np.uint8)
    a[20:70, 30:30 + 20 * (label + 1)] = (30 + 40 * label, 40, 120)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def pictures_folder(root: Path, classes=("circle", "square"), train=8, test=3) -> Path:
    for split, n in (("train", train), ("test", test)):
        for label, name in enumerate(classes):
            for i in range(n):
                photo(root / split / name / f"{i}.jpg", label)
    return root


def test_a_folder_of_pictures_becomes_a_dataset_prepared_as_classify_prepares_them(tmp_path, capsys):
    """train/CLASS/ and test/CLASS/ pictures: the classes are train's folders by name, each picture
    prepared as classify and fashionae.load prepare one; the folder is then a dataset as any."""
    pictures = pictures_folder(tmp_path / "photos", classes=("square", "circle"))  # by name: circle is 0
    (pictures / "train" / "circle" / "notes.txt").write_text("not a picture: a class folder's other files are not read")
    photo(pictures / "train" / "stray.jpg", 0)  # beside the class folders: not taken either, and said
    (pictures / "train" / ".DS_Store").write_text("a Mac's: hidden, not said")
    (pictures / "train" / "circle" / "Thumbs.db").write_text("Windows' thumbnails: passed over as hidden files are")
    (pictures / "train" / "square" / "Desktop.ini").write_text("[.ShellClassInfo]")  # (Windows' names, any case)
    (pictures / "train" / "moved.jpg").symlink_to(pictures / "nowhere.jpg")  # a picture's link loose: not taken
    (pictures / "train" / "README.txt").write_text("a file beside the class folders is no class")
    photo(pictures / "train" / ".thumbnails" / "0.jpg", 0)  # nor is a hidden folder (a photo manager's, say)
    Image.new("L", (50, 50), 255).save(pictures / "test" / "square" / "blank.png")
    code, out, _ = cli(capsys, "data", "--from-pictures", pictures, "--dataset", tmp_path / "ds", "--image-size", "32x24")
    assert code == 0 and out.startswith("reading 23 pictures of 2 classes (16 to train on, 7 to test on)\n")
    assert f"wrote {tmp_path / 'ds'}: the pictures of {pictures}, prepared at 32x24" in out
    assert "16 train + 7 test images of 32x24, 2 classes, SHA-256 verified" in out
    assert "classes (training / test images): circle (8 / 3), square (8 / 4)" in out
    assert (f"note: 4 files or folders not taken, e.g. {pictures / 'train' / 'README.txt'}: only pictures (.png, ") in out
    assert (f"note: 1 picture (e.g. {pictures / 'test' / 'square' / 'blank.png'}): blank or nearly so once prepared"
            in out)
    assert f"note: look at the pictures above: to leave some out, delete {tmp_path / 'ds'} and write it again" in out
    ds = load_dataset(tmp_path / "ds")
    # written in a fixed shuffle, not class by class (a subset's first N hold every class), each with its label
    order = written(list(range(16)))  # of the files, circle's 0-7 then square's
    assert list(ds.classes) == ["circle", "square"] and ds.train_labels.tolist() == [int(f >= 8) for f in order]
    assert set(ds.train_labels[:4].tolist()) == {0, 1}
    from fashionae.images import prepare_image
    for j, f in enumerate(order):
        want = (prepare_image(pictures / "train" / ("circle", "square")[f // 8] / f"{f % 8}.jpg", size=(32, 24)) * 255)
        assert torch.equal(ds.train_images[j], want.round()[0].to(torch.uint8))
    first = {int(ds.train_labels[j]): ds.train_images[j].float().mean() for j in range(16)}
    assert first[0] != first[1]  # the classes differ
    code, _, _ = cli(capsys, "train-ae", "--dataset", tmp_path / "ds", "--epochs", "1", "--out", tmp_path / "ae")
    assert code == 0


def test_a_folder_of_pictures_is_prepared_with_the_fill_given_and_kept_as_bytes(tmp_path, capsys):
    """--fill reaches each picture (as classify's does), and data.npz holds the pixels as bytes,
    as Fashion-MNIST's: not as floats of 0-255, four times the size."""
    pictures = pictures_folder(tmp_path / "photos", train=6, test=1)
    code, _, _ = cli(capsys, "data", "--from-pictures", pictures, "--dataset", tmp_path / "ds", "--fill", "0.5")
    assert code == 0
    from fashionae.images import prepare_image
    half, whole = (prepare_image(pictures / "test" / "square" / "0.jpg", fill=f)[0] for f in (0.5, 1.0))
    assert not torch.equal(half, whole)
    ds = load_dataset(tmp_path / "ds")
    square = ds.test_labels.tolist().index(ds.classes.index("square"))  # (in the dataset's shuffle)
    assert torch.equal(ds.test_images[square], (half * 255).round().to(torch.uint8))
    with np.load(tmp_path / "ds" / "data.npz") as z:
        assert z["x_train"].dtype == z["x_test"].dtype == np.uint8
    # recorded in the dataset and its runs: pictures given to them are prepared alike by default
    assert load_dataset(tmp_path / "ds").pictures == {"invert": "auto", "fill": 0.5}
    code, out, _ = cli(capsys, "data", "--dataset", tmp_path / "ds")
    assert "pictures prepared with --invert auto --fill 0.5, as classify and reconstruct prepare those" in out
    code, _, _ = cli(capsys, "train-clf", "--dataset", tmp_path / "ds", "--strategy", "scratch", "--epochs", "1",
                     "--out", tmp_path / "clf")
    assert code == 0
    run = fashionae.load(tmp_path / "clf")
    assert (run.invert, run.fill) == ("auto", 0.5)
    picture = pictures / "test" / "square" / "0.jpg"
    assert torch.equal(run.embed([picture]), run.embed(half[None]))  # as the dataset's own test image
    answers = {}
    for given in ([], ["--fill", "0.5"], ["--fill", "1"], ["--invert", "no"]):
        code, answers[tuple(given)], err = cli(capsys, "classify", tmp_path / "clf", picture, *given)
        assert code == 0
        assert (err == f"note: pictures prepared as {tmp_path / 'clf'}'s dataset's were (--fill 0.5; give the option "
                       "to change it)\n") == (given != ["--fill", "0.5"] and given != ["--fill", "1"])
    assert answers[()] == answers[("--fill", "0.5")] != answers[("--fill", "1")]
    # a run of its own dataset from before 0.3.29 recorded no background level: prepared for a dark one, said
    from helpers import unsealed
    kept = {name: (tmp_path / "clf" / name).read_text() for name in ("config.json", "summary.json")}
    unsealed(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    before = {**config, "data": {k: v for k, v in config["data"].items() if k not in ("border", "background")}}
    (tmp_path / "clf" / "config.json").write_text(json.dumps(before))
    code, _, err = cli(capsys, "classify", tmp_path / "clf", picture, "--fill", "0.5")
    assert (code, err) == (0, f"note: {tmp_path / 'clf'} was trained before 0.3.29 and records no background level of "
                              "its dataset: pictures are prepared for a dark background, Fashion-MNIST's (if its "
                              "images are dark on light, train it again)\n")
    for name, text in kept.items():
        (tmp_path / "clf" / name).write_text(text)
    # a picture in the dataset's form (one of its own images, saved) is taken as it is: no caveat,
    # unless another fill was asked for
    Image.fromarray(load_dataset(tmp_path / "ds").test_images[0].numpy()).save(tmp_path / "own.png")
    for given, caveat in (([], ""), (["--fill", "0.5"], ""), (["--fill", "1"], " (it is already in the dataset's form "
                                                                          "(28x28, dark background), so it is taken as "
                                                                          "it is: --fill 1 is not applied)")):
        code, out, _ = cli(capsys, "classify", tmp_path / "clf", tmp_path / "own.png", *given)
        assert code == 0 and out.endswith(f"%{caveat}\n")
    # the note comes once the pictures are read and the run can answer, not before a refusal
    cli(capsys, "train-ae", "--dataset", tmp_path / "ds", "--epochs", "1", "--latent", "8", "--out", tmp_path / "ae")
    code, _, err = cli(capsys, "classify", tmp_path / "ae", picture)
    assert (code, err) == (2, f"fashionae: error: {tmp_path / 'ae'} is an autoencoder run; predicting classes needs a "
                              "classifier run (fashionae train-clf)\n")
    code, _, err = cli(capsys, "reconstruct", tmp_path / "clf", picture, "-o", tmp_path / "out")
    assert (code, err) == (2, f"fashionae: error: {tmp_path / 'clf'} is a classifier run; reconstruct needs an "
                              "autoencoder run\n")
    code, _, err = cli(capsys, "classify", tmp_path / "clf", tmp_path / "nowhere.png")
    assert code == 2 and "note:" not in err


def test_pictures_on_a_file_system_without_file_numbers_are_not_all_one_picture(tmp_path, monkeypatch):
    """Where a file system numbers no file (st_ino 0: Python promises it unique only where it is
    not), every picture is its own, by its resolved path: not all taken for one."""
    from fashionae import picturefiles
    stat = os.stat

    def unnumbered(path, *args, **kwargs):
        s = stat(path, *args, **kwargs)
        return os.stat_result((s.st_mode, 0, *tuple(s)[2:10]))
    monkeypatch.setattr(picturefiles.os, "stat", unnumbered)
    pictures = pictures_folder(tmp_path / "photos", train=6, test=1)
    ds, _ = picturefiles.picture_dataset(pictures, tmp_path / "ds", (28, 28), "auto", 1.0)
    assert len(ds.train_images) == 12


def test_pictures_in_the_datasets_form_are_taken_as_they_are(tmp_path, capsys):
    x, y = synthetic_images(24, 0, (12, 12), 2)
    x[x < 40] //= 4  # a dark background: noise under 5 % of the range
    for i, (image, label) in enumerate(zip(x.numpy(), y.tolist())):
        for split in ("train", "test"):
            folder = tmp_path / "pics" / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:02d}.png")
    assert refused(capsys, "data", "--dataset", tmp_path / "pics").endswith(
        f"has neither one .npz file nor the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or not); pictures in train/CLASS/ and test/CLASS/ folders "
        f"become a dataset with `fashionae data --from-pictures {tmp_path / 'pics'} --dataset NEW_FOLDER`")
    cli(capsys, "data", "--from-pictures", tmp_path / "pics", "--dataset", tmp_path / "ds", "--image-size", "12")
    ds = load_dataset(tmp_path / "ds")
    order = written(sorted(range(24), key=lambda i: (y[i].item(), i)))
    assert torch.equal(ds.train_images, x[order]) and torch.equal(ds.test_images, x[order])


@pytest.mark.parametrize("case, args, says", [
    ("no test folder", ["--dataset", "{ds}"], "{pics} has no test/ folder; give a folder of pictures in "
                                              "train/CLASS/ and test/CLASS/ folders"),
    ("a class test has alone", ["--dataset", "{ds}"], "{pics}/test/triangle is a class {pics}/train lacks; the "
                                                     "classes are train's folders (circle, square): rename it"),
    ("damaged pictures", ["--dataset", "{ds}"], "2 of the 22 pictures cannot be used, so no dataset is written: "
                                                "{pics}/train/square/7.jpg is not an image fashionae can read"),  # both splits: one try
    ("one class", ["--dataset", "{ds}"], "{pics}/train has one class folder, circle; a dataset needs two classes at "
                                         "least"),
    ("a class without training pictures", ["--dataset", "{ds}"], "{pics}/train/square has no pictures (.png, "),
    ("a class name with a space at an end", ["--dataset", "{ds}"],
     "class folder 'square ' of {pics}/train: its name has a space at an end or a control character"),
    ("a class name of two lines", ["--dataset", "{ds}"],  # (said in one line)
     "class folder 'squ\\nare' of {pics}/train: its name has a space at an end or a control character"),
    ("a class folder moved away", ["--dataset", "{ds}"], "{pics}/train/triangle is a link to {pics}/gone, which does "
                                                         "not exist: a class folder moved away? put it back"),
    ("a picture in two classes", ["--dataset", "{ds}"], "{pics}/train/square/twin.jpg and {pics}/train/circle/0.jpg "
                                                        "are one picture, by a link (of the file or of its folder, or a hard link): "
                                                        "in two classes, or in both sets"),
    ("a picture twice in its class", ["--dataset", "{ds}"], "{pics}/train/circle/twin.jpg and {pics}/train/circle/0.jpg "
                                                            "are one picture, by a link (of the file or of its folder, or a hard link): "
                                                            "taken twice in one class; remove the link"),
    ("a linked test class", ["--dataset", "{ds}"], "{pics}/test/circle/0.jpg and {pics}/train/circle/0.jpg are one "
                                                   "picture, by a link (of the file or of its folder, or a hard link): in two classes, "
                                                   "or in both sets"),
    ("a hard link of a training picture in the test set", ["--dataset", "{ds}"],
     "{pics}/test/square/hard.jpg and {pics}/train/circle/0.jpg are one picture, by a link (of the file or of its "
     "folder, or a hard link): in two classes, or in both sets, it would teach one answer and test another; remove "
     "the link"),
    ("a picture moved away", ["--dataset", "{ds}"], "1 of the 23 pictures cannot be used, so no dataset is written: "
                                                    "image {pics}/train/circle/gone.jpg is a link to {pics}/gone.jpg, "
                                                    "which does not exist"),
    ("a class spelt two ways", ["--dataset", "{ds}"], "{pics}/train has two class folders named "),
    ("the dataset in the pictures", ["--dataset", "{pics}/train/new"],
     "--dataset {pics}/train/new is in the pictures' folder {pics}; write the dataset outside it"),
    ("an empty --from-pictures", ["--dataset", "{ds}"], "--from-pictures is empty (an unset shell variable?)"),
    ("a file in the dataset's way", ["--dataset", "{pics}.txt/ds"],
     "--dataset {pics}.txt/ds: {pics}.txt is a file, so the folder cannot be made; give another"),
    ("too few training pictures", ["--dataset", "{ds}"], "{pics}/train: 11 training pictures are too few; a dataset "
                                                         "needs at least 12"),
    ("--no-verify with it", ["--dataset", "{ds}", "--no-verify"],
     "--no-verify reads a dataset, and --from-pictures writes one: leave --no-verify out"),
    ("a file", ["--dataset", "{ds}"], "{pics} is not a folder; give a folder of pictures in train/CLASS/ and "
                                      "test/CLASS/ folders"),
    ("neither split", ["--dataset", "{ds}"], "{pics} has no train/ or test/ folder; give a folder of pictures in "),
    ("no class folders", ["--dataset", "{ds}"], "{pics}/train has no class folders; a dataset needs two classes at least: give a folder of pictures in "),
    ("a split without pictures", ["--dataset", "{ds}"], "{pics}/test has no pictures; give a folder of pictures in "),
    ("no --dataset", [], "--from-pictures writes a new dataset: name its folder with --dataset NEW_FOLDER"),
    ("a dataset there", ["--dataset", "{full}"], "{full} is not empty; write the dataset to a new folder"),  # before reading
    ("a size the encoder cannot halve twice", ["--dataset", "{ds}", "--image-size", "30"],
     "argument --image-size: must be multiples of 4 of at least 8 (the encoder halves them twice), got 30x30"),
    ("a size past the machine's memory", ["--dataset", "{ds}", "--image-size", "4000"],  # (before any is read)
     "22 pictures at 4000x4000 take 1.6 GiB of memory as they are prepared, more than this machine's 1.0 GiB; "
     "choose a smaller --image-size"),
    ("a size that is not one", ["--dataset", "{ds}", "--image-size", "big"],
     "argument --image-size: must be N or HxW (28, 32x24), got 'big'"),
    ("a picture option without it", ["--dataset", "{full}", "--fill", "0.7"], "--fill goes with --from-pictures"),
])
def test_a_folder_of_pictures_that_cannot_be_a_dataset_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                                                       case, args, says):
    pics = pictures_folder(tmp_path / "pics")
    if case == "a size past the machine's memory":  # (a machine of 1 GiB: the same on any machine)
        monkeypatch.setattr("fashionae.picturefiles.memory_bytes", lambda device: 2**30)
    full = write_npz(tmp_path / "full")
    if case == "no test folder":
        shutil.rmtree(pics / "test")
    elif case == "a file":
        shutil.rmtree(pics)
        pics.write_bytes(b"")
    elif case == "neither split":
        shutil.rmtree(pics / "train"), shutil.rmtree(pics / "test")
    elif case == "no class folders":  # pictures straight in train/ (a file, a hidden folder: no classes)
        shutil.rmtree(pics / "train")
        photo(pics / "train" / ".hidden" / "0.jpg", 0)
        photo(pics / "train" / "0.jpg", 0)
    elif case == "a split without pictures":  # test/ without class folders (an empty one is refused as such)
        shutil.rmtree(pics / "test")
        (pics / "test").mkdir()
    elif case == "a class test has alone":
        photo(pics / "test" / "triangle" / "0.jpg", 2)
    elif case in ("damaged pictures", "a dataset there"):  # (where it is there: refused before any is read)
        (pics / "train" / "square" / "7.jpg").write_bytes(b"\xff\xd8 truncated")
        (pics / "test" / "circle" / "0.jpg").write_bytes(b"")
    elif case == "one class":
        shutil.rmtree(pics / "train" / "square")
        shutil.rmtree(pics / "test" / "square")
    elif case == "a file in the dataset's way":
        (tmp_path / "pics.txt").write_text("notes")
    elif case == "too few training pictures":
        (pics / "train" / "square" / "0.jpg").write_bytes(b"")  # (refused before any is read)
        for i in range(3, 8):
            (pics / "train" / "square" / f"{i}.jpg").unlink()
    elif case == "a class without training pictures":
        shutil.rmtree(pics / "train" / "square")
        (pics / "train" / "square").mkdir()
    elif case == "a class name with a space at an end":
        (pics / "train" / "square").rename(pics / "train" / "square ")
    elif case == "a class name of two lines":
        (pics / "train" / "square").rename(pics / "train" / "squ\nare")
    elif case == "a class folder moved away":
        (pics / "train" / "triangle").symlink_to(pics / "gone")
    elif case == "a picture in two classes":
        (pics / "train" / "square" / "twin.jpg").symlink_to(pics / "train" / "circle" / "0.jpg")
    elif case == "a picture twice in its class":
        (pics / "train" / "circle" / "twin.jpg").symlink_to(pics / "train" / "circle" / "0.jpg")
    elif case == "a linked test class":  # (the test set would be training pictures)
        shutil.rmtree(pics / "test" / "circle")
        (pics / "test" / "circle").symlink_to(pics / "train" / "circle")
    elif case == "a hard link of a training picture in the test set":  # another name of the same file
        os.link(pics / "train" / "circle" / "0.jpg", pics / "test" / "square" / "hard.jpg")
    elif case == "a picture moved away":
        (pics / "train" / "circle" / "gone.jpg").symlink_to(pics / "gone.jpg")
    elif case == "a class spelt two ways":  # as a Mac spells é (NFD) beside the usual (NFC)
        photo(pics / "train" / "caf\u00e9" / "0.jpg", 0)
        photo(pics / "train" / "cafe\u0301" / "0.jpg", 1)
    before = sorted(full.rglob("*"))
    values = {"pics": pics, "ds": tmp_path / "ds", "full": full}
    source = {"a picture option without it": [], "an empty --from-pictures": ["--from-pictures", ""]}.get(
        case, ["--from-pictures", pics])
    line = refused(capsys, "data", *source, *[a.format(**values) for a in args])
    assert says.format(**values) in line
    if case == "damaged pictures":  # what to do, in this command's words
        assert line.endswith(". Fix or remove them")
    assert not (tmp_path / "ds").exists() and sorted(full.rglob("*")) == before
    assert {p.name for p in tmp_path.iterdir()} - {"pics.txt"} == {"pics", "full"}  # no temporary folder left either


def test_fashion_mnist_saved_as_pictures_comes_back_pixel_for_pixel(real, tmp_path, capsys):
    """The path a user with an image folder takes, on real images: Fashion-MNIST's first 300
    training and 100 test images saved as PNGs in class folders (as many share their data) are
    taken as they are, so the dataset written holds the very images, by class."""
    names = {c: c.replace("/", " or ") for c in real.classes}  # "T-shirt/top" is no folder name
    for split, images, labels, n in (("train", real.train_images, real.train_labels, 300),
                                     ("test", real.test_images, real.test_labels, 100)):
        for i in range(n):
            folder = tmp_path / "pics" / split / names[real.classes[int(labels[i])]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i].numpy()).save(folder / f"{i:05d}.png")
    code, out, _ = cli(capsys, "data", "--from-pictures", tmp_path / "pics", "--dataset", tmp_path / "ds")
    assert code == 0 and "300 train + 100 test images of 28x28, 10 classes" in out and "note:" not in out
    ds = load_dataset(tmp_path / "ds")
    order = sorted(names.values())
    assert list(ds.classes) == order
    for mine, images, labels, n in ((ds.train_images, real.train_images, real.train_labels, 300),
                                    (ds.test_images, real.test_images, real.test_labels, 100)):
        by_class = sorted(range(n), key=lambda i: (order.index(names[real.classes[int(labels[i])]]), i))
        assert torch.equal(mine, images[written(by_class)])


def test_class_folders_copied_from_a_mac_are_one_class_and_a_long_read_says_how_far_it_is(tmp_path, capsys,
                                                                                          monkeypatch):
    """test/'s "café" in two characters (NFD, as a Mac writes it) is train's "café" (NFC): one class,
    named in the usual spelling; reading says how far it is every PROGRESS_SECONDS."""
    from fashionae import picturefiles
    pics = pictures_folder(tmp_path / "pics", classes=("caf\u00e9", "tea"), train=6, test=1)
    (pics / "test" / "caf\u00e9").rename(pics / "test" / "cafe\u0301")
    monkeypatch.setattr(picturefiles, "PROGRESS_SECONDS", 0)
    code, out, _ = cli(capsys, "data", "--from-pictures", pics, "--dataset", tmp_path / "ds")
    assert code == 0 and "classes (training / test images): caf\u00e9 (6 / 1), tea (6 / 1)" in out
    assert [line for line in out.splitlines() if line.startswith("  ")] == [f"  {n} of 14 read" for n in range(1, 14)]
    assert load_dataset(tmp_path / "ds").classes == ("caf\u00e9", "tea")


def test_the_doubtful_pictures_of_a_dataset_are_counted_by_what_they_lack(tmp_path):
    """Outlines of squares of other sizes fill other shares of their box: one kind of caveat, counted
    once (its figures are the first picture's), not one note per share."""
    from fashionae.picturefiles import picture_dataset
    pics = pictures_folder(tmp_path / "pics")
    for i in range(3):
        a, side = np.full((100, 100), 255, np.uint8), 40 + 8 * i
        a[10:10 + side, [10, 9 + side]] = a[[10, 9 + side], 10:10 + side] = 0
        Image.fromarray(a).save(pics / "train" / "circle" / f"outline{i}.png")
    _, notes = picture_dataset(pics, tmp_path / "ds", (28, 28), "auto", 1.0)
    assert len(notes) == 2 and notes[0].startswith(f"3 pictures (e.g. {pics / 'train' / 'circle' / 'outline0.png'}): ")
    assert notes[1].startswith("look at the pictures above: to leave some out, delete ")
    Image.fromarray(np.full((60, 60), 255, np.uint8)).save(pics / "train" / "circle" / "page.png")  # a blank page
    _, notes = picture_dataset(pics, tmp_path / "ds2", (28, 28), "auto", 1.0)
    assert f"1 picture (e.g. {pics / 'train' / 'circle' / 'page.png'}): blank or nearly so once prepared: an image of " \
           "nothing, which teaches its class nothing" in notes  # (not "the answer": none is given here)


def test_a_class_whose_test_folder_is_empty_has_no_test_pictures_and_is_not_refused(tmp_path, capsys):
    """test/CLASS/ made but not filled yet is as test/CLASS/ missing: a class without test pictures,
    noted, not refused (only a class without training pictures cannot be learnt)."""
    pics = pictures_folder(tmp_path / "pics")
    shutil.rmtree(pics / "test" / "square")
    (pics / "test" / "square").mkdir()
    code, out, _ = cli(capsys, "data", "--from-pictures", pics, "--dataset", tmp_path / "ds")
    assert code == 0 and "circle (8 / 3), square (8 / 0)" in out


def test_reading_pictures_says_how_far_it_is_every_progress_seconds_not_at_every_picture_after(tmp_path, monkeypatch):
    """On a clock 4 seconds on at each look, PROGRESS_SECONDS of 10: every third picture is said (at
    12 s, 24 s, ...), each time counted from the last line, not every picture once 10 s have gone."""
    from types import SimpleNamespace

    from fashionae import picturefiles
    pics = pictures_folder(tmp_path / "pics", train=6, test=1)  # 14 pictures
    ticks = iter(range(0, 10_000, 4))
    monkeypatch.setattr(picturefiles, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    said = []
    picturefiles.picture_dataset(pics, tmp_path / "ds", (28, 28), "auto", 1.0, log=said.append)
    assert said[1:] == ["  3 of 14 read", "  6 of 14 read", "  9 of 14 read", "  12 of 14 read"]


def test_classes_are_in_the_order_of_their_names_as_one_spelling(tmp_path):
    """A class folder copied from a Mac ("café" as e and an accent) is ordered by its usual spelling,
    after "cafz" as "café" is: its label the same wherever the folder was copied from."""
    from fashionae.picturefiles import picture_dataset
    pics = pictures_folder(tmp_path / "pics", classes=("cafe\u0301", "cafz"), train=6, test=1)
    dataset, _ = picture_dataset(pics, tmp_path / "ds", (28, 28), "auto", 1.0)
    assert dataset.classes == ("cafz", "caf\u00e9")


def test_each_kind_of_caveat_is_a_note_of_its_own(tmp_path):
    """Blank pictures and outlines are two kinds of caveat: a note for each (three kinds at most,
    the rest counted), then the one that says what to do."""
    from fashionae.picturefiles import picture_dataset
    pics = pictures_folder(tmp_path / "pics")
    a = np.full((100, 100), 255, np.uint8)
    a[10:50, [10, 49]] = a[[10, 49], 10:50] = 0
    Image.fromarray(a).save(pics / "train" / "circle" / "outline.png")
    Image.new("L", (50, 50), 255).save(pics / "test" / "square" / "blank.png")
    _, notes = picture_dataset(pics, tmp_path / "ds", (28, 28), "auto", 1.0)
    assert len(notes) == 3 and notes[2].startswith("look at the pictures above: to leave some out")
    assert notes[0].startswith(f"1 picture (e.g. {pics / 'train' / 'circle' / 'outline.png'}): ")
    assert notes[1].startswith(f"1 picture (e.g. {pics / 'test' / 'square' / 'blank.png'}): blank or nearly so")


def test_a_dataset_of_pictures_is_named_as_a_shell_and_a_study_file_take_it(tmp_path, capsys):
    """The line that names the new dataset gives its folder quoted for a shell, and as a TOML
    string for a study file: other characters as they are, DEL escaped (as TOML requires)."""
    import shlex
    import tomllib
    pictures = pictures_folder(tmp_path / "photos", train=6, test=1)
    folder = tmp_path / "my données\x7f"
    code, out, _ = cli(capsys, "data", "--from-pictures", pictures, "--dataset", folder)
    assert code == 0
    as_toml = '"' + str(folder).replace("\x7f", "\\u007f") + '"'
    assert f"use it with --dataset {shlex.quote(str(folder))} (or dataset = {as_toml} in a study file)\n" in out
    assert tomllib.loads(f"dataset = {as_toml}")["dataset"] == str(folder)
    assert "pictures prepared with --invert auto --fill 1, as classify and reconstruct prepare" in out


@pytest.mark.parametrize("empty, split, said", [
    ([4], "y_train", "1 class (4) lacks"),  # the last class, without training images: still counted
    ([3, 4], "y_test", "2 classes (3, 4) lack"),
    ([2, 3, 4], "y_test", "3 classes (2, 3, 4) lack"),
    ([1, 2, 3, 4], "y_test", "4 classes (1, 2, 3, …) lack"),
])
def test_data_names_up_to_three_classes_without_images(tmp_path, capsys, empty, split, said):
    """The classes without training or test images: counted, the first three named, an ellipsis
    for more, and (a dataset not made of pictures) how to number them."""
    kept = [c for c in range(5) if c not in empty]
    d = write_npz(tmp_path / "d", classes=5, **{split: np.resize(kept, 240 if split == "y_train" else 60)})
    code, out, _ = cli(capsys, "data", "--dataset", d)
    assert code == 0 and f"note: {said} training or test images: autoencoders train, but a classifier needs both " \
        "for every class (give it images of both sets)\n" in out  # (each has images of the other set: no gap)
    assert ", 4 (0 / " in out if split == "y_train" else ", 4 (" in out


def test_arrays_are_written_as_they_are_read_bytes_of_pixels_and_whole_labels(tmp_path):
    """Floats of 0-1 in Keras's [N, H, W, 1] and small integer labels: data.npz holds what the
    folder is read as (pixels as bytes [N, H, W], labels int64), the dataset the same as the
    arrays given would be read as, and smaller than the floats."""
    tr_x, tr_y = synthetic_images(120, 0, (16, 16), 3)
    te_x, te_y = synthetic_images(30, 1, (16, 16), 3)
    given = {"x_train": tr_x.numpy()[..., None] / np.float32(255), "y_train": tr_y.numpy().astype(np.int8),
             "x_test": te_x.numpy()[..., None] / np.float32(255), "y_test": te_y.numpy().astype(np.int8)}
    (tmp_path / "as-given").mkdir()
    np.savez_compressed(tmp_path / "as-given" / "data.npz", **given)
    written = write_npz_dataset(tmp_path / "ds", *given.values())
    with np.load(tmp_path / "ds" / "data.npz") as z:
        assert {k: (z[k].dtype, z[k].shape) for k in z.files} == {
            "x_train": (np.uint8, (120, 16, 16)), "y_train": (np.int64, (120,)),
            "x_test": (np.uint8, (30, 16, 16)), "y_test": (np.int64, (30,))}
    read = load_dataset(tmp_path / "as-given")
    for split in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(written, split), getattr(read, split)), split
    assert torch.equal(written.train_images, tr_x)
    assert (tmp_path / "ds" / "data.npz").stat().st_size < (tmp_path / "as-given" / "data.npz").stat().st_size
    with pytest.raises(UserError, match=r"new/ds2/data.npz: x_train holds NaN or infinite values"):
        write_npz_dataset(tmp_path / "new" / "ds2", np.full((20, 8, 8), np.nan), tr_y[:20], te_x[:5, :8, :8], te_y[:5])
    assert not (tmp_path / "new").exists()  # (nor the folder above it, made for it)
