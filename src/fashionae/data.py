"""Fashion-MNIST: find the files, verify them, parse them, split them.

The whole dataset is held in memory as uint8 tensors (55 MB); batches are later sliced
out of it, so nothing here sits in the training hot path.

Where the four IDX files come from, in order:
1. a folder the user names (``--data-dir`` or ``FASHIONAE_DATA``), used alone;
2. the user cache, ``~/.cache/fashionae`` (``$XDG_CACHE_HOME/fashionae``);
3. Debian/Ubuntu's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
4. a download from the official mirrors into the cache.
Each file may be gzipped or not. Debian recompresses the ``.gz`` files, so the SHA-256 is
checked on the decompressed bytes, which are the same everywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import UserError
from .files import atomic_write

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# name -> (decompressed size in bytes, SHA-256 of the decompressed bytes)
FILES = {
    "train-images-idx3-ubyte": (47_040_016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60_008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7_840_016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10_008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
VAL_SIZE = 10_000
SPLIT_SEED = 20_241_128  # fixes the held-out validation images for every run and seed


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fashionae"


@dataclass
class FashionMNIST:
    train_images: torch.Tensor  # uint8 [60000, 28, 28]
    train_labels: torch.Tensor  # int64 [60000]
    test_images: torch.Tensor   # uint8 [10000, 28, 28]
    test_labels: torch.Tensor   # int64 [10000]
    folder: Path
    verified: bool


@dataclass
class Splits:
    """The three sets a run sees; images uint8 [N, 28, 28], labels int64 [N]."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


# ---------------------------------------------------------------- parsing

def parse_idx(raw: bytes, name: str = "file") -> torch.Tensor:
    """Parse an IDX file of unsigned bytes strictly: magic, rank, dimensions, length."""
    if len(raw) < 4:
        raise UserError(f"{name} is too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, rank = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype != 0x08 or rank not in (1, 3):
        raise UserError(f"{name} has a bad IDX header (magic {raw[:4].hex()}, expected 00000801 "
                        "or 00000803); it is not a Fashion-MNIST file")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise UserError(f"{name} is truncated inside its IDX header")
    dims = struct.unpack(f">{rank}I", raw[4:header])
    if rank == 3 and dims[1:] != (28, 28):
        raise UserError(f"{name} holds {dims[1]}x{dims[2]} images, expected 28x28")
    count = 1
    for d in dims:
        count *= d
    if len(raw) != header + count:
        raise UserError(f"{name} is truncated or padded: {len(raw)} bytes, the header promises "
                        f"{header + count}; get a fresh copy of the file")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


def _read_file(path: Path) -> bytes:
    """The decompressed bytes of a file that may or may not be gzipped."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path} is a damaged gzip file ({e}); get a fresh copy") from e
    if path.suffix == ".gz":
        raise UserError(f"{path} is not a gzip file; get a fresh copy")
    return raw


def _locate(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def load_folder(folder: str | os.PathLike, verify: bool = True) -> FashionMNIST:
    """Load and check the four files in one folder; raise UserError on any problem."""
    folder = Path(folder)
    arrays = {}
    for name, (size, sha) in FILES.items():
        path = _locate(folder, name)
        if path is None:
            raise UserError(f"{folder} has no {name}.gz (nor {name})")
        raw = _read_file(path)
        if verify and hashlib.sha256(raw).hexdigest() != sha:
            raise UserError(f"{path} fails its SHA-256 check (got {len(raw)} bytes); it is damaged "
                            "or not Fashion-MNIST: get a fresh copy, or pass --no-verify for "
                            "your own IDX files")
        arrays[name] = parse_idx(raw, str(path))
    pairs = [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    for images, labels in pairs:
        if arrays[images].ndim != 3 or arrays[labels].ndim != 1:
            raise UserError(f"{folder}: {images} must hold images and {labels} labels")
        if len(arrays[images]) != len(arrays[labels]):
            raise UserError(f"{folder}: {images} has {len(arrays[images])} images but {labels} "
                            f"has {len(arrays[labels])} labels")
        if len(arrays[labels]) and int(arrays[labels].max()) > 9:
            raise UserError(f"{folder}: {labels} holds labels above 9; Fashion-MNIST has 10 classes")
    return FashionMNIST(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"].long(),
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"].long(),
        folder=folder, verified=verify)


# ---------------------------------------------------------------- finding

def _download(folder: Path, progress: bool = True) -> None:
    """Download the four files into ``folder``, resuming partial downloads, atomically."""
    for name in FILES:
        target = folder / f"{name}.gz"
        if target.is_file():
            continue
        part = folder / f".{name}.gz.part"
        last_error = None
        for mirror in MIRRORS:
            try:
                _fetch(mirror + name + ".gz", part, progress)
                atomic_write(target, part.read_bytes())
                part.unlink()
                last_error = None
                break
            except OSError as e:  # URLError is an OSError
                last_error = e
        if last_error is not None:
            raise OSError(f"{name}.gz: {last_error}")


def _fetch(url: str, part: Path, progress: bool) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        total = have + int(response.headers.get("Content-Length") or 0)
        with open(part, "ab" if have else "wb") as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)
                have += len(chunk)
                if progress and total:
                    print(f"\r  {url.rsplit('/', 1)[-1]}: {100 * have // total:3d}% "
                          f"of {total / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)
            f.flush()
            os.fsync(f.fileno())
    if progress:
        print(file=sys.stderr)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, verify: bool = True,
                       download: bool = True) -> FashionMNIST:
    """Find, verify and load Fashion-MNIST (see the module docstring for the order)."""
    named = data_dir or os.environ.get("FASHIONAE_DATA")
    if named:
        folder = Path(named)
        if not folder.is_dir():
            raise UserError(f"data folder {folder} does not exist; point --data-dir (or "
                            "FASHIONAE_DATA) at the folder that holds the four IDX files")
        return load_folder(folder, verify)

    tried = []
    for folder in (cache_dir(), SYSTEM_DIR):
        if not folder.is_dir() or not any(_locate(folder, n) for n in FILES):
            tried.append(f"{folder} (no files)")
            continue
        try:
            return load_folder(folder, verify)
        except UserError as e:
            tried.append(f"{folder} ({e})")
    if download:
        try:
            print(f"fashionae: downloading Fashion-MNIST into {cache_dir()}", file=sys.stderr)
            _download(cache_dir())
            return load_folder(cache_dir(), verify)
        except OSError as e:
            tried.append(f"download from {MIRRORS[0]} ({e})")
    raise UserError("Fashion-MNIST not found; tried " + "; ".join(tried) +
                    f". Fix: `apt-get install {DEBIAN_PACKAGE}`, or download the four files from "
                    f"{MIRRORS[0]} and pass --data-dir")


# ---------------------------------------------------------------- splitting

def make_splits(ds: FashionMNIST, val: str = "holdout", train_subset: int | None = None,
                eval_subset: int | None = None) -> Splits:
    """The train / validation / test sets of a run.

    ``holdout``: a fixed 10,000 training images (the same for every run and seed) are the
    validation set; the model trains on the other 50,000. ``test``: the author's protocol,
    validation is the official test set and training uses all 60,000.
    ``train_subset`` / ``eval_subset`` keep the first N images of each set (quick profiles).
    """
    if val == "holdout":
        order = torch.randperm(len(ds.train_images), generator=torch.Generator().manual_seed(SPLIT_SEED))
        train_idx, val_idx = order[VAL_SIZE:], order[:VAL_SIZE]
        s = Splits(ds.train_images[train_idx], ds.train_labels[train_idx],
                   ds.train_images[val_idx], ds.train_labels[val_idx],
                   ds.test_images, ds.test_labels)
    elif val == "test":
        s = Splits(ds.train_images, ds.train_labels, ds.test_images, ds.test_labels,
                   ds.test_images, ds.test_labels)
    else:
        raise UserError(f"unknown validation split {val!r}; use holdout or test")
    if train_subset:
        s.train_x, s.train_y = s.train_x[:train_subset], s.train_y[:train_subset]
    if eval_subset:
        s.val_x, s.val_y = s.val_x[:eval_subset], s.val_y[:eval_subset]
        s.test_x, s.test_y = s.test_x[:eval_subset], s.test_y[:eval_subset]
    return s
