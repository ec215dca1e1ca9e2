"""Which dataset: Fashion-MNIST or a folder of your own, read, checked and written.

``load_dataset(dataset, data_dir, verify)`` is what every command calls:

- ``dataset="fashion-mnist"`` (the default): ``data.load_fashion_mnist``, from the folder
  ``data_dir`` names or the places it looks in.
- ``dataset=FOLDER``: your own data, either the four IDX files (MNIST, KMNIST, ... under
  their standard names) or one ``.npz`` with ``x_train, y_train, x_test, y_test`` (the
  Keras layout), and optionally ``dataset.toml`` (``name``, ``classes``, ``[pictures]`` and
  ``[sha256]`` with a digest per file as stored, what ``sha256sum`` prints, checked when
  present). Grayscale images whose height and width are multiples of 4 (at least 8); labels
  0..K-1. ``write_npz_dataset`` writes such a folder from arrays. docs/datasets.md has the details.

Both end as one ``data.Dataset``, checked by the same rules (``data.check_arrays``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import tomllib
import unicodedata
from pathlib import Path

import numpy as np
import torch

from .data import (FASHION_MNIST, FILES, IDX_SPLITS, Dataset, check_arrays, gunzip, idx_rank, in_the_way,
                   load_fashion_mnist, locate, parse_idx, read_bytes)
from .errors import UserError
from .files import UMASK, is_utf16, write_failure
from .images import pictures_or_default, pictures_problem

DATASET_TOML = "dataset.toml"  # your own dataset's name, classes and checksums
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ = "data.npz"  # the arrays, as write_npz_dataset names them (a folder's one .npz is read by any name)


def load_dataset(dataset: str = FASHION_MNIST, data_dir: str | os.PathLike | None = None,
                 verify: bool = True, download: bool = True) -> Dataset:
    """The dataset a command trains or evaluates on: ``fashion-mnist`` (found as
    ``data.load_fashion_mnist`` says; ``data_dir`` is where its files are) or a folder of your own."""
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


def odd_class_name(classes: list[str]) -> str | None:
    """The first class name with a space at an end or a control character (a newline, a tab), which
    answers and tables would show garbled; None if there is none."""
    return next((c for c in classes if c != c.strip() or garbles_a_line(c)), None)


def description_problem(meta: dict, said: str = "") -> str | None:
    """What is wrong with a dataset's name and classes (as its dataset.toml or
    ``write_npz_dataset`` gives them), or None; their keys said with ``said`` after them ("=":
    as the arguments they are)."""
    classes, name = meta.get("classes", []), meta.get("name", "")
    if not isinstance(classes, list) or "classes" in meta and len(classes) < 2 \
            or not all(isinstance(c, str) and c.strip() for c in classes):
        return f"classes{said} must be a list of at least two names, none of them empty"
    if odd := odd_class_name(classes):
        return (f"class {odd!r} has a space at an end or a control character (a newline, a tab), which answers "
                "and tables would show garbled; name it in one plain line")
    if twice := next((c for c in classes if classes.count(c) > 1), None):
        return f"class {twice!r} is named twice; give every class its own name"
    if not isinstance(name, str):
        return f"name{said} must be a string"
    if garbles_a_line(name):
        return f"name{said} {name!r} has a control character (a newline, a tab); give it in one plain line"
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
        if y.dtype.kind in "US" and y.size:  # class names as text: numbered by np.unique, as a user would
            decode = ".astype(str)" if y.dtype.kind == "S" else ""  # (bytes: names as text first)
            first = bytes(y.flat[0]).decode(errors="replace") if decode else str(y.flat[0])
            raise UserError(f"{path}: {k} holds {'bytes' if decode else 'text'} ({first!r}, …), not class "
                            f"numbers; number them: classes, y = np.unique(np.concatenate([y_train, y_test]){decode}, "
                            "return_inverse=True), then y_train, y_test = np.split(y, [len(y_train)]), and name the "
                            "classes: write_npz_dataset(..., classes=list(classes)), or dataset.toml's classes")
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
    paths = {n: locate(folder, n) for n in FILES}
    # which files are the data must never be a guess
    if npz and any(paths.values()):
        raise UserError(f"{folder} holds both {npz[0].name} and IDX files; keep one layout")
    digest = hashlib.sha256()
    raws: dict[str, bytes] = {}  # the files as stored: dataset.toml's digests are sha256sum's
    if npz:
        if len(npz) > 1:
            raise UserError(f"{folder} holds several .npz files; keep one")
        raws[npz[0].name] = read_bytes(npz[0])
    elif all(paths.values()):
        raws = {p.name: read_bytes(p) for p in paths.values()}
    else:
        found = [n for n, p in paths.items() if p]
        raise UserError(f"{folder} has neither one .npz file nor the four IDX files "
                        f"({', '.join(FILES)}, .gz or not)"
                        + (f"; it lacks {', '.join(n for n in FILES if not paths[n])}" if found else "")
                        + "".join(in_the_way(folder, n) for n in FILES)
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
        a = {n: parse_idx(gunzip(raws[p.name], p), str(p), idx_rank(n)) for n, p in paths.items()}
        images = {s: a[x] for s, (x, _) in IDX_SPLITS.items()}
        labels = {s: a[y].long() for s, (_, y) in IDX_SPLITS.items()}
        what = IDX_SPLITS
    classes = meta.get("classes")
    n = check_arrays(folder, images, labels, len(classes) if classes else None, what, DATASET_TOML)
    pictures = meta.get("pictures")
    return Dataset(meta.get("name") or folder.resolve().name, tuple(classes or map(str, range(n))),
                   images["train"], labels["train"], images["test"], labels["test"], folder,
                   verified=verify and set(listed) == set(raws), sha256=digest.hexdigest(),
                   pictures=None if pictures is None else pictures_or_default(pictures),
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
    x_test, y_test, as fashionae reads them: pixels as bytes [N, H, W], labels int64) and
    ``dataset.toml`` (name, classes, how its pictures were prepared, the SHA-256 of data.npz).
    ``pictures`` ({"invert": "auto", "fill": 0.7}, say: see ``images.prepare_image``) is how
    pictures given to its runs are prepared by default. Returns the dataset loaded back. What
    would be refused later is refused now, and leaves nothing (not the folders above ``folder``
    made for it); a folder that already holds a dataset is refused too, since runs trained on it
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
              for k, a in zip(NPZ_KEYS, (x_train, y_train, x_test, y_test))}
    given = io.BytesIO()
    np.savez(given, **arrays)
    # kept as the folder is read (pixels as bytes [N, H, W], labels int64): not floats of 0-1, four
    # times the size, converted again at every load; arrays that cannot be stored so are refused now
    images, labels = _npz_arrays(folder / NPZ, given.getvalue())
    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"{k}_{s}": a[s].numpy() for k, a in (("x", images), ("y", labels))
                                for s in ("train", "test")})
    lines = [f"name = {_toml_string(name)}"] if name else []
    if classes:
        lines.append(f"classes = [{', '.join(_toml_string(c) for c in classes)}]")
    if pictures is not None:
        pictures = pictures_or_default(pictures)
        lines += ["", "[pictures]  # how its pictures were prepared: pictures given to its runs are prepared so",
                  f"invert = {_toml_string(pictures['invert'])}", f"fill = {pictures['fill']!r}"]
    lines += ["", "[sha256]", f'"{NPZ}" = "{hashlib.sha256(buf.getvalue()).hexdigest()}"']
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
        for name, data in ((NPZ, buf.getvalue()), (DATASET_TOML, ("\n".join(lines) + "\n").encode())):
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
