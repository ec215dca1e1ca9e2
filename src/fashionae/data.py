"""Fashion-MNIST, the IDX format, and the splits a run sees.

``load_fashion_mnist(data_dir, verify)`` finds Fashion-MNIST's four IDX files in this order:
  1. a folder the user names (``--data-dir`` or ``FASHIONAE_DATA``), used alone;
  2. the user cache, ``~/.cache/fashionae`` (``$XDG_CACHE_HOME/fashionae``);
  3. Debian/Ubuntu's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
  4. a download from the official mirrors into the cache.
Each file may be gzipped or not. Debian recompresses the ``.gz`` files, so the SHA-256 is
checked on the decompressed bytes, which are the same everywhere.

The pieces a dataset of your own is read with too (``datasets.py``, which owns the choice
between the two: ``datasets.load_dataset``) live here: ``Dataset``, the IDX parser and the
checks of images and labels. ``make_splits`` then cuts any dataset into the train, validation
and test sets of a run.

The whole dataset is held in memory as uint8 tensors; batches are later sliced out of it, so
nothing here sits in the training hot path.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import numbers
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .download import MIRRORS, download_files
from .errors import UserError
from .files import cache_dir, is_there, kind_of

FASHION_MNIST = "fashion-mnist"
DATA_ENV = "FASHIONAE_DATA"  # the environment variable naming Fashion-MNIST's folder, as --data-dir does
MIN_TRAINING_IMAGES = 12  # a sixth held out for validation (held_out_size), the rest in batches
NEEDS_TRAINING_IMAGES = (f"a dataset needs at least {MIN_TRAINING_IMAGES} (a sixth of them is held out for "
                         "validation): add training images")
IMAGE_SIZE = (28, 28)  # Fashion-MNIST's images (height, width); a dataset of your own has its own
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
VAL_SPLITS = ("holdout", "test")  # the validation set: held-out training images, or the test set
SPLIT_SEED = 20_241_128   # fixes the held-out validation images for every run and seed
MOVED_TO_DATASETS = ("write_npz_dataset", "load_dataset")  # named here before 0.3.28 (``__getattr__``)


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


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from e


def gunzip(raw: bytes, path: Path) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path} is a damaged gzip file ({e}); get a fresh copy") from e
    if path.suffix == ".gz":
        raise UserError(f"{path} is not a gzip file; get a fresh copy")
    return raw


def locate(folder: Path, name: str) -> Path | None:
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


def in_the_way(folder: Path, name: str) -> str:
    """Why a data file reads as missing when an entry by its name is there: "; X is a folder"."""
    odd = [p for p in (folder / f"{name}.gz", folder / name) if is_there(p) and not p.is_file()]
    return "".join(f"; {p} is {kind_of(p)}, not the file" for p in odd)


def check_arrays(folder: Path, images: dict, labels: dict, n_classes: int | None,
                 what: dict[str, tuple[str, str]], named_in: str | None = None) -> int:
    """Shapes, counts and labels of the train and test arrays; the number of classes (``n_classes``
    when given, else counted from the labels). ``what``: each split's images and labels as the
    folder names them; ``named_in``: the file that names a dataset's classes (its dataset.toml),
    for a dataset of your own."""
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
                            "training images; number the classes from 0"
                            + (f", or name them in {named_in}" if named_in else ""))
        return max(top + 1, 2)
    for split, top in tops.items():
        if top >= n_classes:
            from_one = min(int(labels[s].min()) for s in ("train", "test") if len(labels[s])) == 1
            named = named_in is not None
            raise UserError(f"{folder}: {what[split][1]} holds labels up to {top}, but "
                            + (f"{named_in} names {n_classes} classes" if named else
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
        path = locate(folder, name)
        if path is None:
            raise UserError(f"{folder} has no {name}.gz (nor {name}){in_the_way(folder, name)}; put Fashion-MNIST's "
                            f"four IDX files there, or point {named_by} at the folder that holds them")
        raw = gunzip(read_bytes(path), path)  # gzipped or not
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
    check_arrays(folder, images, labels, len(CLASSES), IDX_SPLITS)
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
            if not folder.is_dir() or not any(locate(folder, n) for n in FILES):
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


# ---------------------------------------------------------------- splitting

def __getattr__(name: str):
    """``fashionae.data.write_npz_dataset`` and ``load_dataset``, as fashionae 0.3.27 and before
    named them: found in ``fashionae.datasets`` now, with a warning (to go in 0.4)."""
    if name in MOVED_TO_DATASETS:
        import importlib
        import warnings
        warnings.warn(f"fashionae.data.{name} is fashionae.datasets.{name} since fashionae 0.3.28; import it from "
                      "there", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__package__}.datasets"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def held_out_size(n: int) -> int:
    """How many of n training images ``--val holdout`` keeps for validation: a sixth."""
    return round(n / 6)


def holdout_order(n: int) -> tuple[torch.Tensor, int]:
    """The fixed shuffle of n training images, and how many of its first ``--val holdout`` keeps
    for validation (the rest, in that order, are trained on)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED)), held_out_size(n)


def held_out_classes(ds: Dataset) -> list[str]:
    """The classes that have training images, all of which ``--val holdout`` keeps for validation
    (``make_splits``): a classifier would train without them."""
    order, held = holdout_order(len(ds.train_labels))
    kept, out = (torch.bincount(ds.train_labels[i], minlength=len(ds.classes)) for i in (order[held:], order[:held]))
    return [c for c, k, h in zip(ds.classes, kept.tolist(), out.tolist()) if h and not k]


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


def split_sizes(ds: Dataset, val: str = VAL_SPLITS[0], train_subset: int | None = None,
                eval_subset: int | None = None) -> tuple[int, int, int]:
    """How many training, validation and test images ``make_splits`` gives, without making them:
    the one owner of the splits' sizes (``make_splits`` takes them from here)."""
    if val not in VAL_SPLITS:
        raise UserError(f"unknown validation split {val!r}; use {' or '.join(VAL_SPLITS)}")
    n_train, n_test = len(ds.train_images), len(ds.test_images)
    n_val = held_out_size(n_train) if val == "holdout" else n_test
    n_train -= n_val if val == "holdout" else 0
    return min(n_train, train_subset or n_train), min(n_val, eval_subset or n_val), min(n_test, eval_subset or n_test)


def make_splits(ds: Dataset, val: str = VAL_SPLITS[0], train_subset: int | None = None,
                eval_subset: int | None = None) -> Splits:
    """The train / validation / test sets of a run.

    ``holdout``: a fixed sixth of the training images (10,000 of Fashion-MNIST's 60,000, the
    same for every run and seed) is the validation set; the model trains on the rest.
    ``test``: the author's protocol, validation is the official test set and training uses
    every training image. ``train_subset`` / ``eval_subset`` keep the first N images of each
    set as it is ordered here (quick profiles): under holdout both in the fixed shuffle, the test
    set as its file orders it.
    """
    n_train, n_val, n_test = split_sizes(ds, val, train_subset, eval_subset)
    test = ds.test_images[:n_test], ds.test_labels[:n_test]
    if val == "test":
        return Splits(ds.train_images[:n_train], ds.train_labels[:n_train], ds.test_images[:n_val],
                      ds.test_labels[:n_val], *test, "test")
    order, held = holdout_order(len(ds.train_images))
    held_out = order[:held]
    train_idx, val_idx = order[len(held_out):][:n_train], held_out[:n_val]
    return Splits(ds.train_images[train_idx], ds.train_labels[train_idx], ds.train_images[val_idx],
                  ds.train_labels[val_idx], *test, hashlib.sha256(held_out.numpy().astype("<i8").tobytes()).hexdigest())
