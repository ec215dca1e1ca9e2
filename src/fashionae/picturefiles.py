"""The files of ``fashionae classify`` and ``reconstruct``: which pictures the command line names
(a folder standing for the pictures in it), and where ``reconstruct`` writes each picture beside
its reconstruction; and a folder of pictures in class folders made a dataset
(``fashionae data --from-pictures``). Opening a picture is ``imagefile``'s, preparing it ``images``';
writing a dataset folder, ``data``'s."""

from __future__ import annotations

import hashlib
import os
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import UserError
from .files import refuse_unwritable_folder
from .machine import memory_bytes
from .progress import count

SPLITS = ("train", "test")  # a folder of pictures made a dataset: SPLIT/CLASS/pictures
PROGRESS_SECONDS = 10  # how often reading them says how far it is
RECONSTRUCTION = "_reconstruction.png"  # reconstruct's output for picture NAME.EXT: NAME_reconstruction.png
NAME_MAX = 255  # the bytes of one file name on nearly every file system
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".gif", ".bmp", ".webp", ".tif", ".tiff",  # taken from a folder
                    ".pgm", ".ppm", ".pnm")


def _is_picture(p: Path) -> bool:
    # (a link to a picture moved away is one, not left out unsaid: read_picture says what became of it)
    return p.suffix.lower() in PICTURE_SUFFIXES and (p.is_file() or p.is_symlink() and not p.exists())


PICTURE_ORDER_SEED = 0  # the order a dataset of pictures is written in (``picture_dataset``)


def picture_files(paths: list[str], log: Callable[[str], None] = lambda m: None) -> list[str]:
    """The pictures named, a folder standing for the picture files in it (by name; not its
    subfolders' nor its hidden files, such as the ``._`` files a Mac leaves on a copy) but for
    the reconstructions ``fashionae reconstruct`` wrote there (an image and its reconstruction side
    by side, no garment's photo; named, they are read); a picture named twice (by itself and in its
    folder, say) is taken once, as the user spelled it, and ``log`` says so."""
    files, only_reconstructions = [], []
    for path in paths:
        if not Path(path).is_dir():
            files.append(path)  # read_picture says what is wrong with it, if anything
            continue
        pictures_here = [p for p in Path(path).iterdir() if _is_picture(p)]
        found = [p for p in pictures_here if not p.name.startswith(".")]
        if not found:
            subfolders = any(p.is_dir() for p in Path(path).iterdir())
            skipped = [what for what, there in (("subfolders are not searched", subfolders),
                                                ("hidden files are skipped", pictures_here)) if there]
            said = f" (its {' and its '.join(skipped)}: name them)" if skipped else ""
            raise UserError(f"{path} is a folder without pictures ({', '.join(PICTURE_SUFFIXES)}){said}; give picture "
                            "files, or a folder of them")
        pictures = sorted((str(p) for p in found if not p.name.endswith(RECONSTRUCTION)), key=str.lower)
        if not pictures:
            only_reconstructions.append(path)
        files += pictures
    if not files:  # (only folders of reconstructions were named)
        raise UserError(f"{', '.join(only_reconstructions)} hold{'s' if len(only_reconstructions) == 1 else ''} only "
                        f"reconstructions written by fashionae reconstruct (*{RECONSTRUCTION}), no pictures to read; "
                        "name the pictures, or name those files to read them anyway")
    named: dict = {}  # each picture named by itself, as first spelt
    for p in paths:
        if not Path(p).is_dir():
            named.setdefault(_resolved(p), p)
    first, times = {}, Counter()  # each picture where it first comes, and how often it is named
    for f in files:
        first.setdefault(r := _resolved(f), f)
        times[r] += 1
    if again := [f"{named.get(r, first[r])} ({n} times)" for r, n in times.items() if n > 1]:
        log(f"note: {', '.join(again[:3])}{', …' if len(again) > 3 else ''} named more than once (by "
            f"{'its' if len(again) == 1 else 'their'} folder, a link or another spelling): each picture is "
            "answered once, under the name given first")
    return [named.get(r, f) for r, f in first.items()]


def _resolved(path: str) -> Path:
    """The file a path leads to, by which a picture named twice is known; a link in a loop of
    links leads nowhere, and stands for itself (``read_picture`` says what it is, with the others)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):  # (Python 3.11's RuntimeError for a loop; 3.13's OSError)
        return Path(path).absolute()


def reconstruction_files(paths: list[str], out: Path, log: Callable[[str], None] = lambda m: None) -> dict[Path, str]:
    """Where ``fashionae reconstruct`` writes each picture's reconstruction, {output file: picture}."""
    sources: dict[Path, str] = {}
    for path in picture_files(paths, log):
        target = out / _reconstruction_name(Path(path).stem)
        if target in sources:
            raise UserError(f"{sources[target]} and {path} would both be written to {target}; rename one, "
                            "or reconstruct them one at a time into different folders (-o)")
        sources[target] = path
    return sources


def _reconstruction_name(stem: str) -> str:
    """NAME_reconstruction.png; where that is longer than a file name may be, NAME cut, and a hash of
    the whole NAME put after it (two long names that begin alike stay two files)."""
    if len(os.fsencode(stem + RECONSTRUCTION)) <= NAME_MAX:
        return stem + RECONSTRUCTION
    tag = "~" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:8]
    while len(os.fsencode(stem + tag + RECONSTRUCTION)) > NAME_MAX:
        stem = stem[:-1]
    return stem + tag + RECONSTRUCTION


def side_by_side(original: torch.Tensor, reconstruction: torch.Tensor, light: bool = False) -> bytes:
    """PNG bytes: original | reconstruction, enlarged 8 times for viewing, apart by a line of the
    end other than their background's: white, black for a run on dark garments on white (``light``)."""
    zoom = 8
    import io
    from PIL import Image
    line = torch.full((original.shape[1], 2), 0.0 if light else 1.0)
    pair = torch.cat([original[0], line, reconstruction[0]], dim=1)
    im = Image.fromarray((pair.clamp(0, 1).numpy() * 255).astype(np.uint8), "L")
    im = im.resize((im.width * zoom, im.height * zoom), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


SYSTEM_FILES = ("thumbs.db", "desktop.ini")  # Windows' own (in any case), beside pictures: passed over as hidden files are


def _entries(folder: Path) -> list[Path]:
    """A folder's files and folders, by name, but for hidden ones (a Mac's ._ files, .DS_Store) and
    Windows' ``SYSTEM_FILES``."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".") and p.name.lower() not in SYSTEM_FILES),
                  key=lambda p: p.name)


def picture_dataset(pictures: str | Path, out: str | Path, size: tuple[int, int], invert: str, fill: float,
                    log: Callable[[str], None] = lambda message: None):
    """A new dataset folder ``out`` (``datasets.write_npz_dataset``) of the pictures in ``pictures``,
    laid out as ``train/CLASS/`` and ``test/CLASS/`` (torchvision's ImageFolder, once per split):
    the classes are train's folders, in the order of their names; each picture is prepared as
    ``classify`` prepares one (``images.read_pictures``), at ``size``. What can be refused is
    refused before any picture is read; a picture that cannot be read is named with every
    other, and nothing is written. Returns the dataset loaded back and notes: what was not taken,
    and the pictures that may say little."""
    from .data import MIN_TRAINING_IMAGES, NEEDS_TRAINING_IMAGES
    from .datasets import odd_class_name, refuse_a_taken_folder, write_npz_dataset
    from .images import BLANK, BLANK_IMAGE, read_pictures
    layout = "pictures in train/CLASS/ and test/CLASS/ folders (a test set put aside: a fifth of each class, say)"
    if not str(pictures):
        raise UserError(f"--from-pictures is empty (an unset shell variable?); give a folder of {layout}")
    folder, out = Path(pictures), Path(out)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of {layout}")
    if missing := [s for s in SPLITS if not (folder / s).is_dir()]:
        raise UserError(f"{folder} has no {' or '.join(m + '/' for m in missing)} folder; give a folder of {layout}")
    if folder.resolve() in (out.resolve(), *out.resolve().parents):
        raise UserError(f"--dataset {out} is in the pictures' folder {folder}; write the dataset outside it")
    refuse_a_taken_folder(out)
    refuse_unwritable_folder(out, "--dataset")

    # the classes: train's folders by name, as one spelling (NFC: a folder copied from a Mac
    # spells "é" as two characters, which print as one)
    folders: dict[str, dict[str, Path]] = {split: {} for split in SPLITS}  # split -> NFC name -> its folder
    for split in SPLITS:
        if gone := next((p for p in _entries(folder / split) if p.is_symlink() and not p.exists()
                         and p.suffix.lower() not in PICTURE_SUFFIXES), None):  # (a picture's: not taken, noted)
            raise UserError(f"{gone} is a link to {gone.readlink()}, which does not exist: a class folder moved "
                            "away? put it back, or remove the link")
        for p in (p for p in _entries(folder / split) if p.is_dir()):
            if (twice := folders[split].setdefault(unicodedata.normalize("NFC", p.name), p)) != p:
                raise UserError(f"{folder / split} has two class folders named {twice.name}, spelt in two ways of "
                                "Unicode (one copied from a Mac, say); merge them into one")
    classes = sorted(folders["train"])
    if len(classes) < 2:
        raise UserError(f"{folder / 'train'} has {'no class folders' if not classes else 'one class folder, ' + classes[0]}"
                        f"; a dataset needs two classes at least: give a folder of {layout}")
    if odd := odd_class_name(classes):
        raise UserError(f"class folder {odd!r} of {folder / 'train'}: its name has a space at an end or a control "
                        "character (a newline, a tab), which answers and tables would show garbled; rename it (in "
                        "train/ and test/)")
    if unknown := [c for c in folders["test"] if c not in classes]:
        raise UserError(f"{folders['test'][unknown[0]]} is a class {folder / 'train'} lacks; the classes are train's "
                        f"folders ({', '.join(classes)}): rename it, or add its training pictures")
    files, labels, not_taken = {s: [] for s in SPLITS}, {s: [] for s in SPLITS}, []
    for split in SPLITS:
        not_taken += [p for p in _entries(folder / split) if not p.is_dir()]  # loose beside the class folders
        for label, name in enumerate(classes):
            if name not in folders[split]:
                continue  # a class without test pictures: `data` notes it
            here = _entries(folders[split][name])
            taken = [str(p) for p in here if _is_picture(p)]
            if not taken and split == "train":
                raise UserError(f"{folders[split][name]} has no pictures ({', '.join(PICTURE_SUFFIXES)}); add its "
                                "training pictures, or remove the class")
            files[split] += taken
            labels[split] += [label] * len(taken)
            not_taken += [p for p in here if not _is_picture(p)]
    if len(files["train"]) < MIN_TRAINING_IMAGES:
        raise UserError(f"{folder / 'train'}: {len(files['train'])} training pictures are too few; "
                        f"{NEEDS_TRAINING_IMAGES}")
    if not files["test"]:
        raise UserError(f"{folder / 'test'} has no pictures; give a folder of {layout}")

    everything = files["train"] + files["test"]
    # each picture is held prepared (4 bytes a pixel) until the dataset (1 byte a pixel) is written
    need, have = len(everything) * size[0] * size[1] * 5, memory_bytes("cpu")
    if have is not None and need > have:
        raise UserError(f"{len(everything):,} pictures at {size[0]}x{size[1]} take {need / 2**30:,.1f} GiB of memory "
                        f"as they are prepared, more than this machine's {have / 2**30:,.1f} GiB; choose a smaller "
                        "--image-size")
    # each picture's file, where it is first met: a link to it elsewhere (symbolic, or a hard link:
    # another name of the same file) is the same picture
    first: dict = {}
    where = {f: (split, label) for split in SPLITS for f, label in zip(files[split], labels[split])}
    for f in everything:
        try:
            file = os.stat(f)
        except OSError:  # (a link to nothing: said as a picture that cannot be read)
            continue
        # (a file system without file numbers gives 0 for every file: the resolved path there)
        if (same := first.setdefault((file.st_dev, file.st_ino) if file.st_ino else Path(f).resolve(), f)) != f:
            twice = ("taken twice in one class" if where[f] == where[same] else
                     "in two classes, or in both sets, it would teach one answer and test another")
            raise UserError(f"{f} and {same} are one picture, by a link (of the file or of its folder, or a hard "
                            f"link): {twice}; remove the link")
    log(f"reading {len(everything):,} pictures of {len(classes)} classes ({len(files['train']):,} to train on, "
        f"{len(files['test']):,} to test on)")
    said = [time.monotonic()]

    def progress(read: int) -> None:
        if time.monotonic() - said[0] >= PROGRESS_SECONDS and read < len(everything):
            log(f"  {read:,} of {len(everything):,} read")
            said[0] = time.monotonic()
    read = read_pictures(everything, invert, size, fill, refused="no dataset is written", remedy="Fix or remove them",
                         progress=progress)
    arrays = []
    for split in SPLITS:  # in a fixed shuffle, not class by class: a subset (--val test's first N) holds every class
        order = np.random.default_rng(PICTURE_ORDER_SEED).permutation(len(files[split]))
        arrays += [np.stack([(read[files[split][i]].pixels[0] * 255).round().to(torch.uint8).numpy() for i in order]),
                   np.array(labels[split], dtype=np.int64)[order]]
    dataset = write_npz_dataset(out, *arrays, classes=classes, pictures={"invert": invert, "fill": fill})
    notes = []
    if not_taken:
        plural = "s" if len(not_taken) > 1 else ""
        notes.append(f"{len(not_taken):,} file{plural} or folder{plural} not taken, e.g. {not_taken[0]}: only "
                     f"pictures ({', '.join(PICTURE_SUFFIXES)}) in a class folder are; move pictures into their class "
                     "folder, convert others to PNG")
    doubtful: dict[str, list[tuple[str, str]]] = {}  # a kind of caveat (its words, without its figures) -> pictures
    for f in everything:
        for caveat in (BLANK_IMAGE if c == BLANK else c for c in read[f].caveats):  # (no answer here: an image)
            doubtful.setdefault(re.sub(r"\d[\d.,]*", "#", caveat), []).append((f, caveat))
    for which in list(doubtful.values())[:3]:
        notes.append(f"{count(len(which), 'picture')} (e.g. {which[0][0]}): {which[0][1]}")
    if doubtful:
        more = f" ({len(doubtful) - 3:,} other kinds of caveat too)" if len(doubtful) > 3 else ""
        notes.append(f"look at the pictures above{more}: to leave some out, delete {out} and write it again without them")
    return dataset, notes
