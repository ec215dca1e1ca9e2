"""Where the data comes from: Fashion-MNIST or your own dataset, verified, parsed, split.

This module is the one owner of data. ``load_dataset(dataset, data_dir, verify)`` is
what every command calls:

- ``dataset="fashion-mnist"`` (the default): the four IDX files, found in this order:
  1. a folder the user names (``--data-dir`` or ``FASHIONAE_DATA``), used alone;
  2. the user cache, ``~/.cache/fashionae`` (``$XDG_CACHE_HOME/fashionae``);
  3. Debian/Ubuntu's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
  4. a download from the official mirrors into the cache.
  Each file may be gzipped or not. Debian recompresses the ``.gz`` files, so the SHA-256 is
  checked on the decompressed bytes, which are the same everywhere.
- ``dataset=FOLDER``: your own data, either the four IDX files (MNIST, KMNIST, ... under
  their standard names) or one ``.npz`` with ``x_train, y_train, x_test, y_test`` (the
  Keras layout), and optionally ``dataset.toml`` (``name``, ``classes``, and ``[sha256]``
  with a digest per file as stored, what ``sha256sum`` prints, checked when present).
  Grayscale images whose height and width are multiples of 4 (at least 8); labels 0..K-1.
  ``write_npz_dataset`` writes such a folder from arrays. docs/datasets.md has the details.

The whole dataset is held in memory as uint8 tensors; batches are later sliced out of it, so
nothing here sits in the training hot path.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import numbers
import os
import re
import shutil
import struct
import sys
import tempfile
import tomllib
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .download import MIRRORS, download_files
from .errors import UserError
from .files import UMASK, cache_dir, is_there, is_utf16, kind_of, write_failure

FASHION_MNIST = "fashion-mnist"
DATASET_TOML = "dataset.toml"  # your own dataset's name, classes and checksums
DATA_ENV = "FASHIONAE_DATA"  # the environment variable naming Fashion-MNIST's folder, as --data-dir does
MIN_TRAINING_IMAGES = 12  # a sixth held out for validation (held_out_size), the rest in batches
NEEDS_TRAINING_IMAGES = (f"a dataset needs at least {MIN_TRAINING_IMAGES} (a sixth of them is held out for "
                         "validation): add training images")
IMAGE_SIZE = (28, 28)  # Fashion-MNIST's images (height, width); a dataset of your own has its own
# how a picture is made an image of a dataset (``images.read_picture``): negated by its border
# (auto, the default), always or never, and the part of the frame its object's longer side spans
# (all of it, as in Fashion-MNIST). A dataset made of pictures records them ([pictures] in its
# dataset.toml), its runs too, and pictures given to a run are prepared so by default.
INVERT = ("auto", "yes", "no")
FILL = 1.0
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# name -> (decompressed size in bytes, SHA-256 of the decompressed bytes)
FILES = {
    "train-images-idx3-ubyte": (47_040_016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60_008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7_840_016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10_008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
IDX_SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),  # (images, labels)
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
VAL_SPLITS = ("holdout", "test")  # the validation set: held-out training images, or the test set
SPLIT_SEED = 20_241_128   # fixes the held-out validation images for every run and seed


@dataclass
class Dataset:
    name: str
    classes: tuple[str, ...]
    train_images: torch.Tensor  # uint8 [N, H, W]
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor   # uint8 [M, H, W]
    test_labels: torch.Tensor   # int64 [M]
    folder: Path
    verified: bool
    sha256: str | None = None   # a digest of the files, for your own datasets (None: Fashion-MNIST)
    pictures: dict | None = None  # how its pictures were prepared ({"invert", "fill"}), where dataset.toml says
    unverified_because: str | None = "--no-verify"  # why, when not verified (None when verified)

    def __post_init__(self):
        if self.verified:
            self.unverified_because = None

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    def __repr__(self) -> str:  # (the dataclass's would print every image)
        h, w = self.image_size
        return (f"Dataset({self.name!r}: {len(self.classes)} classes, {len(self.train_images):,} training and "
                f"{len(self.test_images):,} test images of {h}x{w}, from {str(self.folder)!r}, "
                + ("SHA-256 verified)" if self.verified else f"not verified: {self.unverified_because})"))


@dataclass
class Splits:
    """The three sets a run sees; images uint8 [N, H, W], labels int64 [N]."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_indices_sha256: str  # which training images were held out (or "test")


# ---------------------------------------------------------------- parsing

def parse_idx(raw: bytes, name: str = "file", expected_rank: int | None = None) -> torch.Tensor:
    """Parse an IDX file of unsigned bytes strictly: magic, rank (1: labels, 3: images; the
    one expected, when given), dimensions, length."""
    if len(raw) < 4:
        raise UserError(f"{name} is too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, rank = raw[0:2], raw[2], raw[3]
    idx_types = {0x09: "signed bytes", 0x0B: "16-bit integers", 0x0C: "32-bit integers", 0x0D: "floats",
                 0x0E: "doubles"}
    if zero == b"\x00\x00" and rank in (1, 3) and dtype in idx_types:
        raise UserError(f"{name} is an IDX file of {idx_types[dtype]}; fashionae reads IDX files of unsigned "
                        "bytes (type 0x08), as Fashion-MNIST's: save it as uint8 (labels from 0, pixels 0-255)")
    if zero != b"\x00\x00" or dtype != 0x08 or rank not in (1, 3):
        raise UserError(f"{name} has a bad IDX header (magic {raw[:4].hex()}, expected 00000801 "
                        "or 00000803); it is not an IDX file of images or labels")
    if expected_rank is not None and rank != expected_rank:
        kinds = {1: "labels", 3: "images"}
        raise UserError(f"{name} holds {kinds[rank]} (magic {raw[:4].hex()}) where its name says "
                        f"{kinds[expected_rank]}; the files are swapped or misnamed: give each file its own name")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise UserError(f"{name} is truncated inside its IDX header")
    dims = struct.unpack(f">{rank}I", raw[4:header])
    count = math.prod(dims)
    if len(raw) != header + count:
        raise UserError(f"{name} is truncated or padded: {len(raw)} bytes, the header promises "
                        f"{header + count}; get a fresh copy of the file")
    body = bytearray(raw[header:])  # frombuffer refuses an empty buffer: an empty set is legal
    return (torch.frombuffer(body, dtype=torch.uint8) if body else torch.empty(0, dtype=torch.uint8)).reshape(dims)


def idx_rank(name: str) -> int:
    """The rank an IDX file's name promises: train-labels-idx1-ubyte 1, *-idx3-ubyte 3."""
    return 1 if "-idx1-" in name else 3


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from e


def _gunzip(raw: bytes, path: Path) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path} is a damaged gzip file ({e}); get a fresh copy") from e
    if path.suffix == ".gz":
        raise UserError(f"{path} is not a gzip file; get a fresh copy")
    return raw


def _locate(folder: Path, name: str) -> Path | None:
    """The file ``name`` or ``name.gz`` of ``folder``; None if neither is a file. Which file is
    the data must never be a guess: both, or one beside something else by the other name (a
    folder, a broken link), is refused."""
    try:
        entries = [p for p in (folder / f"{name}.gz", folder / name) if is_there(p)]
        files = [p for p in entries if p.is_file()]
    except OSError as e:  # a folder we may not enter
        raise UserError(f"cannot read {folder}: {e.strerror}") from None
    if len(entries) == 2 and files:
        other = next(p for p in entries if p != files[0])
        raise UserError(f"{folder} holds both {name} and {name}.gz" + ("" if len(files) == 2 else
                        f" ({other.name} is {kind_of(other)})") + "; keep one")
    return files[0] if files else None


def _in_the_way(folder: Path, name: str) -> str:
    """Why a data file reads as missing when an entry by its name is there: "; X is a folder"."""
    odd = [p for p in (folder / f"{name}.gz", folder / name) if is_there(p) and not p.is_file()]
    return "".join(f"; {p} is {kind_of(p)}, not the file" for p in odd)


def _check_arrays(folder: Path, images: dict, labels: dict, n_classes: int | None,
                  what: dict[str, tuple[str, str]]) -> int:
    """Shapes, counts and labels of the train and test arrays; the number of classes."""
    for split in ("train", "test"):
        x, y = images[split], labels[split]
        if x.ndim != 3 or y.ndim != 1:
            rgb = x.ndim == 4 and x.shape[-1] in (3, 4)
            raise UserError(f"{folder}: the {split} images must be [N, height, width] and the "
                            f"labels [N] (got {list(x.shape)} and {list(y.shape)})"
                            + ("; convert colour images to one grey channel first" if rgb else ""))
        if len(x) != len(y):
            raise UserError(f"{folder}: {what[split][0]} has {len(x)} images but {what[split][1]} "
                            f"has {len(y)} labels")
    if images["train"].shape[1:] != images["test"].shape[1:]:
        raise UserError(f"{folder}: train images are {tuple(images['train'].shape[1:])} but test "
                        f"images are {tuple(images['test'].shape[1:])}")
    h, w = images["train"].shape[1:]
    if problem := image_size_problem((h, w)):
        raise UserError(f"{folder}: images {problem}: pad or resize them")
    if len(images["train"]) < MIN_TRAINING_IMAGES:
        raise UserError(f"{folder}: {len(images['train'])} training images are too few; {NEEDS_TRAINING_IMAGES}")
    if not len(images["test"]):
        raise UserError(f"{folder}: {what['test'][0]} holds no images; a dataset needs test images to "
                        "measure its runs on")
    tops = {s: int(labels[s].max()) for s in ("train", "test")}
    if n_classes is None:
        top = max(tops.values())
        if top >= len(images["train"]):  # not class numbers: a table of that many names would not fit
            raise UserError(f"{folder}: labels go up to {top}, more classes than the {len(images['train'])} "
                            f"training images; number the classes from 0, or name them in {DATASET_TOML}")
        return max(top + 1, 2)
    for split, top in tops.items():
        if top >= n_classes:
            from_one = min(int(labels[s].min()) for s in ("train", "test") if len(labels[s])) == 1
            named = (folder / DATASET_TOML).is_file()
            raise UserError(f"{folder}: {what[split][1]} holds labels up to {top}, but "
                            + (f"{DATASET_TOML} names {n_classes} classes" if named else
                               f"the dataset has {n_classes} classes")
                            + ", numbered from 0" + ("; labels from 1: subtract 1" if from_one and top == n_classes
                                                     else f"; name every class there ({top + 1})" if named else ""))
    return n_classes


# ---------------------------------------------------------------- Fashion-MNIST

def load_folder(folder: str | os.PathLike, verify: bool = True, named_by: str = "--data-dir") -> Dataset:
    """Fashion-MNIST's four files in one folder, checked; UserError on any problem (``named_by``:
    what named the folder, for the fix)."""
    folder = Path(folder)
    arrays = {}
    for name, (size, sha) in FILES.items():
        path = _locate(folder, name)
        if path is None:
            raise UserError(f"{folder} has no {name}.gz (nor {name}){_in_the_way(folder, name)}; put Fashion-MNIST's "
                            f"four IDX files there, or point {named_by} at the folder that holds them")
        raw = _gunzip(_read_bytes(path), path)  # gzipped or not
        if verify and hashlib.sha256(raw).hexdigest() != sha:
            raise UserError(f"{path} fails its SHA-256 check (got {len(raw)} bytes); it is damaged "
                            "or not Fashion-MNIST: get a fresh copy, or pass --no-verify for "
                            "your own IDX files")
        arrays[name] = parse_idx(raw, str(path), idx_rank(name))
        if arrays[name].ndim == 3 and arrays[name].shape[1:] != IMAGE_SIZE:
            raise UserError(f"{path} holds {arrays[name].shape[1]}x{arrays[name].shape[2]} images, "
                            f"expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}; for other data use --dataset FOLDER")
    images = {s: arrays[x] for s, (x, _) in IDX_SPLITS.items()}
    labels = {s: arrays[y].long() for s, (_, y) in IDX_SPLITS.items()}
    _check_arrays(folder, images, labels, len(CLASSES), IDX_SPLITS)
    return Dataset(FASHION_MNIST, CLASSES, images["train"], labels["train"], images["test"],
                   labels["test"], folder, verify)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, verify: bool = True,
                       download: bool = True) -> Dataset:
    """Find, verify and load Fashion-MNIST (see the module docstring for the order)."""
    named = data_dir or os.environ.get(DATA_ENV)
    if named:
        folder = Path(named)
        named_by = "--data-dir" if data_dir else DATA_ENV
        if not folder.is_dir():
            raise UserError(f"data folder {folder} {'is a file' if folder.exists() else 'does not exist'}; point "
                            f"{named_by} at the folder that holds the four IDX files")
        return load_folder(folder, verify, named_by)

    tried = []
    for folder in (cache_dir(), SYSTEM_DIR):
        try:
            if not folder.is_dir() or not any(_locate(folder, n) for n in FILES):
                tried.append(f"{folder} (no files)")
                continue
            return load_folder(folder, verify)
        except UserError as e:
            tried.append(f"{folder} ({e})")
        except OSError as e:  # a folder we may not read (EACCES): the next place
            tried.append(f"{folder} (cannot read: {e.strerror})")
    if download:
        try:
            print(f"fashionae: downloading Fashion-MNIST into {cache_dir()}", file=sys.stderr)
            download_files(cache_dir(), FILES)
            return load_folder(cache_dir(), verify)
        except OSError as e:
            tried.append(f"download from {MIRRORS[0]} ({e})")
    raise UserError("Fashion-MNIST not found; tried " + "; ".join(tried) +
                    f". Fix: `apt-get install {DEBIAN_PACKAGE}`, or download the four files from "
                    f"{MIRRORS[0]} and pass --data-dir")


# ---------------------------------------------------------------- your own dataset

def _dataset_toml(folder: Path) -> dict:
    path = folder / DATASET_TOML
    if not path.exists():
        return {}
    if not path.is_file():
        raise UserError(f"{path} is a folder, not a file; remove it, or write the dataset's description there")
    try:
        meta = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # UTF-8, whatever the locale; a BOM (Notepad's) is skipped
    except UnicodeDecodeError:
        raise UserError(f"{path} is {'UTF-16' if is_utf16(path) else 'not UTF-8'} text; TOML is UTF-8: save it as "
                        "UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"{path} is not valid TOML ({e}); mend it, or delete it to name the classes by number") from None
    unknown = set(meta) - {"name", "classes", "sha256", "pictures"}
    if unknown:
        raise UserError(f"{path}: unknown key {sorted(unknown)[0]!r}; known: name, classes, sha256, pictures")
    if "pictures" in meta and (problem := pictures_problem(meta["pictures"])):
        raise UserError(f"{path}: [pictures] {problem}; mend it as `fashionae data --from-pictures` writes it "
                        "(or delete the table: pictures are then prepared as Fashion-MNIST's were)")
    if problem := description_problem(meta):
        raise UserError(f"{path}: {problem}")
    if not isinstance(meta.get("sha256", {}), dict):
        raise UserError(f"{path}: [sha256] must be a table of file digests")
    return meta


def description_problem(meta: dict, said: str = "") -> str | None:
    """What is wrong with a dataset's name and classes (as its dataset.toml or
    ``write_npz_dataset`` gives them), or None; their keys said with ``said`` after them ("=":
    as the arguments they are)."""
    classes, name = meta.get("classes", []), meta.get("name", "")
    if not isinstance(classes, list) or "classes" in meta and len(classes) < 2 \
            or not all(isinstance(c, str) and c.strip() for c in classes):
        return f"classes{said} must be a list of at least two names, none of them empty"
    if odd := next((c for c in classes if c != c.strip() or garbles_a_line(c)), None):
        return (f"class {odd!r} has a space at an end or a control character (a newline, a tab), which answers "
                "and tables would show garbled; name it in one plain line")
    if twice := next((c for c in classes if classes.count(c) > 1), None):
        return f"class {twice!r} is named twice; give every class its own name"
    if not isinstance(name, str):
        return f"name{said} must be a string"
    if garbles_a_line(name):
        return f"name{said} {name!r} has a control character (a newline, a tab); give it in one plain line"
    return None


def pictures_problem(pictures) -> str | None:
    """What is wrong with how a dataset's pictures were prepared ({"invert", "fill"}), or None."""
    if not isinstance(pictures, dict):
        return "must be a table (a dict) of invert and fill"
    if unknown := sorted(set(pictures) - {"invert", "fill"}):
        return f"has an unknown key {unknown[0]!r}; known: invert, fill"
    return preparation_problem(pictures.get("invert", INVERT[0]), pictures.get("fill", FILL))


def preparation_problem(invert, fill) -> str | None:
    """What is wrong with how a picture is to be prepared, or None."""
    if invert not in INVERT:
        return f"invert must be {', '.join(INVERT[:-1])} or {INVERT[-1]}, got {invert!r}"
    if not isinstance(fill, numbers.Real) or isinstance(fill, bool) or not 0 < fill <= 1:  # (numpy's floats too)
        return f"fill must be above 0 and at most 1 (the part of the frame the object spans), got {fill!r}"
    return None


BIDI_CONTROLS = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}  # they reorder the text after them


def garbles_a_line(name: str) -> bool:
    """Whether a name holds a control character (a newline, a tab), a line or paragraph separator
    or a character that reorders the line after it (a bidi override); the joiners and spaces of
    names in any script do not count."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") or unicodedata.bidirectional(ch) in BIDI_CONTROLS
               for ch in name)


def _npz_arrays(path: Path, raw: bytes) -> tuple[dict, dict]:
    """A .npz's images and labels per split ("train", "test"): pixels as uint8 (0-1 floats and
    booleans scaled to 0-255), labels as int64; one clear error for what cannot be either."""
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise UserError(f"{path} lacks {', '.join(missing)}; it must hold "
                                f"{', '.join(NPZ_KEYS)}")
            arr = {k: z[k] for k in NPZ_KEYS}
    except UserError:
        raise
    except Exception as e:  # zipfile, numpy and pickle refusals all mean the same here
        raise UserError(f"{path} is not a readable .npz file ({type(e).__name__}: damaged, or holding "
                        "object arrays, which fashionae never unpickles); save plain numeric arrays with "
                        "numpy.savez") from None
    for k in ("x_train", "x_test"):
        if arr[k].dtype.kind == "b":  # black and white: pixels 0-1
            arr[k] = arr[k].astype(np.float32)
    unit = {k: arr[k].dtype.kind == "f" and arr[k].size and arr[k].max() <= 1 for k in ("x_train", "x_test")}
    if all(arr[k].dtype.kind == "f" and arr[k].size and np.isfinite(arr[k]).all() for k in unit) \
            and len(set(unit.values())) > 1:
        one, other = ("x_train", "x_test") if unit["x_train"] else ("x_test", "x_train")
        raise UserError(f"{path}: {one} holds pixels in 0-1 and {other} in 0-255; give both the same range")
    for k in ("x_train", "x_test"):
        a = arr[k]
        if a.ndim == 4 and 1 in (a.shape[1], a.shape[-1]):  # [N, H, W, 1] (Keras) or [N, 1, H, W] (PyTorch)
            a = a[..., 0] if a.shape[-1] == 1 else a[:, 0]
        if a.dtype.kind == "f":
            if a.size and not np.isfinite(a).all():
                raise UserError(f"{path}: {k} holds NaN or infinite values; give every pixel a number, 0-255 or 0-1")
            if a.size and not (a.min() >= 0 and a.max() <= 255):
                raise UserError(f"{path}: {k} holds values outside [0, 255]")
            a = np.round(a * 255 if a.size and a.max() <= 1 else a)
        elif a.dtype.kind not in "ui" or (a.size and (a.min() < 0 or a.max() > 255)):
            raise UserError(f"{path}: {k} must hold grayscale pixels, 0-255 or 0-1")
        arr[k] = a.astype(np.uint8)
    for k in ("y_train", "y_test"):
        if arr[k].ndim == 2 and arr[k].shape[1] == 1:  # Keras keeps some labels as [N, 1]
            arr[k] = arr[k][:, 0]
        y = arr[k]
        if y.ndim == 2 and y.shape[1] > 1:
            raise UserError(f"{path}: {k} is {list(y.shape)}, one-hot or scores per class; give one class number "
                            f"per image: {k}.argmax(1)")
        if y.dtype.kind == "f" and y.size and np.isfinite(y).all() and (y == np.round(y)).all() and y.min() >= 0:
            raise UserError(f"{path}: {k} holds whole numbers as {y.dtype}; give them as integers: {k}.astype(int)")
        if y.dtype.kind not in "ui" or (y.size and (y.min() < 0 or y.max() > np.iinfo(np.int64).max)):
            raise UserError(f"{path}: {k} must hold non-negative integer labels (class numbers from 0)")
    images = {s: torch.from_numpy(np.ascontiguousarray(arr[f"x_{s}"])) for s in ("train", "test")}
    labels = {s: torch.from_numpy(arr[f"y_{s}"].astype(np.int64)) for s in ("train", "test")}
    return images, labels


def load_dataset_folder(folder: str | os.PathLike, verify: bool = True) -> Dataset:
    """Your own dataset: four IDX files or one .npz, plus an optional dataset.toml."""
    folder = Path(folder).expanduser()  # a study file may name "~/data/digits"
    if not folder.is_dir():
        raise UserError(f"dataset {folder.absolute()} is neither fashion-mnist nor a folder; give "
                        "a folder with four IDX files or one .npz (x_train, y_train, x_test, y_test), "
                        "see docs/datasets.md")
    meta = _dataset_toml(folder)
    npz = sorted(folder.glob("*.npz"))
    paths = {n: _locate(folder, n) for n in FILES}
    # which files are the data must never be a guess
    if npz and any(paths.values()):
        raise UserError(f"{folder} holds both {npz[0].name} and IDX files; keep one layout")
    digest = hashlib.sha256()
    raws: dict[str, bytes] = {}  # the files as stored: dataset.toml's digests are sha256sum's
    if npz:
        if len(npz) > 1:
            raise UserError(f"{folder} holds several .npz files; keep one")
        raws[npz[0].name] = _read_bytes(npz[0])
    elif all(paths.values()):
        raws = {p.name: _read_bytes(p) for p in paths.values()}
    else:
        found = [n for n, p in paths.items() if p]
        raise UserError(f"{folder} has neither one .npz file nor the four IDX files "
                        f"({', '.join(FILES)}, .gz or not)"
                        + (f"; it lacks {', '.join(n for n in FILES if not paths[n])}" if found else "")
                        + "".join(_in_the_way(folder, n) for n in FILES)
                        + ("; pictures in train/CLASS/ and test/CLASS/ folders become a dataset with `fashionae data "
                           f"--from-pictures {folder} --dataset NEW_FOLDER`" if (folder / "train").is_dir() else ""))
    listed = meta.get("sha256", {})
    strays = sorted(set(listed) - set(raws))
    if strays:
        raise UserError(f"{folder / DATASET_TOML}: [sha256] names {strays[0]!r}, which is not a data "
                        f"file of this folder (they are {', '.join(raws)})")
    for name, value in listed.items() if verify else ():  # as sha256sum prints it, or Windows' tools (capitals)
        if not (isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value)):
            raise UserError(f"{folder / DATASET_TOML}: [sha256] {name!r} is {value!r}, not a SHA-256 digest "
                            "(64 hexadecimal digits, as sha256sum prints them)")
    listed = {name: str(value).lower() for name, value in listed.items()}
    for name, raw in raws.items():
        sha = hashlib.sha256(raw).hexdigest()
        digest.update(f"{name}:{sha}|".encode())
        if verify and name in listed and listed[name] != sha:
            raise UserError(f"{folder / name} fails the SHA-256 check of {DATASET_TOML}; it is damaged "
                            f"or not the file {DATASET_TOML} describes: get a fresh copy (if you changed the file on "
                            f"purpose, put its new digest in {DATASET_TOML}: sha256sum prints it)")
    if npz:
        images, labels = _npz_arrays(npz[0], raws[npz[0].name])
        what = {s: (f"x_{s}", f"y_{s}") for s in ("train", "test")}
    else:
        a = {n: parse_idx(_gunzip(raws[p.name], p), str(p), idx_rank(n)) for n, p in paths.items()}
        images = {s: a[x] for s, (x, _) in IDX_SPLITS.items()}
        labels = {s: a[y].long() for s, (_, y) in IDX_SPLITS.items()}
        what = IDX_SPLITS
    classes = meta.get("classes")
    n = _check_arrays(folder, images, labels, len(classes) if classes else None, what)
    pictures = meta.get("pictures")
    return Dataset(meta.get("name") or folder.resolve().name, tuple(classes or map(str, range(n))),
                   images["train"], labels["train"], images["test"], labels["test"], folder,
                   verified=verify and set(listed) == set(raws), sha256=digest.hexdigest(),
                   pictures=None if pictures is None else {"invert": pictures.get("invert", INVERT[0]),
                                                           "fill": float(pictures.get("fill", FILL))},
                   unverified_because="--no-verify" if not verify else f"{DATASET_TOML} has no [sha256] for every file"
                   if meta else f"no {DATASET_TOML} with [sha256]")


def _toml_string(text: str) -> str:
    """A TOML basic string, in ASCII (the file reads the same in any locale): JSON's, but for a
    character beyond U+FFFF, which JSON escapes as a surrogate pair and TOML refuses: \\UXXXXXXXX."""
    def scalar(m: re.Match) -> str:
        return f"\\U{0x10000 + (int(m[1], 16) - 0xD800 << 10) + int(m[2], 16) - 0xDC00:08X}"
    return re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", scalar, json.dumps(text))


def refuse_a_taken_folder(folder: Path) -> None:
    """A new dataset is written only into a new or empty folder: runs trained on what a folder
    holds would no longer match it."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; write the dataset to a new folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"{folder} is not empty; write the dataset to a new folder (runs trained on "
                        "what is there would no longer match it)")


def write_npz_dataset(folder: str | os.PathLike, x_train, y_train, x_test, y_test,
                      classes: list[str] | None = None, name: str | None = None,
                      pictures: dict | None = None) -> Dataset:
    """Write arrays as a new dataset folder fashionae reads: ``data.npz`` (x_train, y_train,
    x_test, y_test) and ``dataset.toml`` (name, classes, how its pictures were prepared,
    the SHA-256 of data.npz). ``pictures`` ({"invert": "auto", "fill": 0.7}, say: see
    ``images.prepare_image``) is how pictures given to its runs are prepared by default. Returns
    the dataset loaded back. What would be refused later is refused now, and leaves nothing (not
    the folders above ``folder`` made for it); a folder that already holds a dataset is refused too, since runs trained on it
    would no longer match it."""
    folder = Path(folder)
    if classes is not None:  # (a string's letters would be its classes; a generator is read once)
        try:
            names = classes if isinstance(classes, str) else list(classes)
        except TypeError:  # a number, say
            names = classes
        if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
            raise UserError(f"classes= must be a list of names, such as ['circle', 'square'], got {classes!r}")
        classes = [str(c) for c in names]
    if problem := description_problem({"name": "" if name is None else name}
                                      | ({} if classes is None else {"classes": classes}), said="="):
        raise UserError(f"write_npz_dataset: {problem}")  # (said as the arguments, not as dataset.toml's keys)
    if pictures is not None and (problem := pictures_problem(pictures)):
        raise UserError(f"write_npz_dataset: pictures= {problem}")
    refuse_a_taken_folder(folder)
    arrays = {k: a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a  # (one that requires grad too)
              for k, a in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test))}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    lines = [f"name = {_toml_string(name)}"] if name else []
    if classes:
        lines.append(f"classes = [{', '.join(_toml_string(c) for c in classes)}]")
    if pictures is not None:
        lines += ["", "[pictures]  # how its pictures were prepared: pictures given to its runs are prepared so",
                  f"invert = {_toml_string(pictures.get('invert', INVERT[0]))}",
                  f"fill = {float(pictures.get('fill', FILL))!r}"]
    lines += ["", "[sha256]", f'"data.npz" = "{hashlib.sha256(buf.getvalue()).hexdigest()}"']
    made: list[Path] = []  # the folders above it this call made, removed if the dataset is refused

    def unmake() -> None:
        for p in reversed(made):  # (the deepest first)
            with contextlib.suppress(OSError):
                p.rmdir()
    try:
        missing, p = [], folder.parent
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        for p in reversed(missing):  # each made on its own: "build/.." or a folder a racing writer made is not ours
            with contextlib.suppress(FileExistsError):
                os.mkdir(p)
                made.append(p)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    except OSError as e:  # (said of the folder asked for, not of the temporary one beside it)
        unmake()
        raise UserError(f"cannot write {folder}: {e.strerror}; write the dataset to another folder") from None
    try:
        for name, data in (("data.npz", buf.getvalue()), (DATASET_TOML, ("\n".join(lines) + "\n").encode())):
            try:
                (tmp / name).write_bytes(data)
            except OSError as e:  # a full disk: said of the folder asked for, nothing left behind
                raise write_failure(folder / name, e, "write the dataset to another folder", kept=False) from None
        try:
            load_dataset_folder(tmp)  # refused here, and nothing is left behind
        except UserError as e:  # said of the folder asked for, not of the temporary one, and of classes= given
            raise UserError(str(e).replace(str(tmp), str(folder)).replace(f"but {DATASET_TOML} names",
                                                                          "but classes= names")) from None
        tmp.chmod(0o777 & ~UMASK)  # mkdtemp's folder is the owner's alone
        os.replace(tmp, folder)  # one rename (over an empty folder too): the dataset appears whole
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        unmake()  # nothing written is left: not the folders made for it either
        raise
    return load_dataset_folder(folder)


def load_dataset(dataset: str = FASHION_MNIST, data_dir: str | os.PathLike | None = None,
                 verify: bool = True, download: bool = True) -> Dataset:
    """The dataset a command trains or evaluates on: ``fashion-mnist`` (found as the module
    docstring says; ``data_dir`` is where its files are) or a folder of your own."""
    # an unset shell variable, never "the folder I am in"
    if not str(dataset).strip():
        raise UserError("--dataset is empty; give fashion-mnist or your dataset's folder")
    if data_dir is not None and not str(data_dir).strip():
        raise UserError("--data-dir is empty; give the folder of Fashion-MNIST's files, or leave it out")
    if dataset == FASHION_MNIST:
        return load_fashion_mnist(data_dir, verify, download)
    if data_dir is not None:  # not taken silently for what it does not do
        raise UserError(f"--data-dir says where Fashion-MNIST's files are, and the dataset is your own, {dataset}, "
                        "read from its folder: leave --data-dir out")
    return load_dataset_folder(dataset, verify)


# ---------------------------------------------------------------- splitting

def held_out_size(n: int) -> int:
    """How many of n training images ``--val holdout`` keeps for validation: a sixth."""
    return round(n / 6)


def image_size_problem(size) -> str | None:
    """What is wrong with an image size (height, width) for the encoders, which halve it twice,
    or None."""
    if (not isinstance(size, list | tuple) or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)):  # (numpy's too)
        return f"must be [height, width], got {size!r}"
    h, w = map(int, size)
    if h % 4 or w % 4 or h < 8 or w < 8:
        return f"must be multiples of 4 of at least 8 (the encoder halves them twice), got {h}x{w}"
    return None


def split_sizes(ds: Dataset, val: str = "holdout", train_subset: int | None = None,
                eval_subset: int | None = None) -> tuple[int, int, int]:
    """How many training, validation and test images ``make_splits`` gives, without making them:
    the one owner of the splits' sizes (``make_splits`` takes them from here)."""
    if val not in VAL_SPLITS:
        raise UserError(f"unknown validation split {val!r}; use {' or '.join(VAL_SPLITS)}")
    n_train, n_test = len(ds.train_images), len(ds.test_images)
    n_val = held_out_size(n_train) if val == "holdout" else n_test
    n_train -= n_val if val == "holdout" else 0
    return min(n_train, train_subset or n_train), min(n_val, eval_subset or n_val), min(n_test, eval_subset or n_test)


def make_splits(ds: Dataset, val: str = "holdout", train_subset: int | None = None,
                eval_subset: int | None = None) -> Splits:
    """The train / validation / test sets of a run.

    ``holdout``: a fixed sixth of the training images (10,000 of Fashion-MNIST's 60,000, the
    same for every run and seed) is the validation set; the model trains on the rest.
    ``test``: the author's protocol, validation is the official test set and training uses
    every training image. ``train_subset`` / ``eval_subset`` keep the first N images of each
    set (quick profiles).
    """
    n_train, n_val, n_test = split_sizes(ds, val, train_subset, eval_subset)
    test = ds.test_images[:n_test], ds.test_labels[:n_test]
    if val == "test":
        return Splits(ds.train_images[:n_train], ds.train_labels[:n_train], ds.test_images[:n_val],
                      ds.test_labels[:n_val], *test, "test")
    order = torch.randperm(len(ds.train_images), generator=torch.Generator().manual_seed(SPLIT_SEED))
    held_out = order[:held_out_size(len(order))]
    train_idx, val_idx = order[len(held_out):][:n_train], held_out[:n_val]
    return Splits(ds.train_images[train_idx], ds.train_labels[train_idx], ds.train_images[val_idx],
                  ds.train_labels[val_idx], *test, hashlib.sha256(held_out.numpy().astype("<i8").tobytes()).hexdigest())
