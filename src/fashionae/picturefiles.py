"""The files of ``fashionae classify`` and ``reconstruct``: which pictures the command line names
(a folder standing for the pictures in it), and where ``reconstruct`` writes each picture beside
its reconstruction; and a folder of pictures in class folders made a dataset
(``fashionae data --from-pictures``). Reading a picture and preparing it is ``images``'s;
writing a dataset folder, ``data``'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import UserError

SPLITS = ("train", "test")  # a folder of pictures made a dataset: SPLIT/CLASS/pictures
RECONSTRUCTION = "_reconstruction.png"  # reconstruct's output for picture NAME.EXT: NAME_reconstruction.png
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")  # taken from a folder


def picture_files(paths: list[str]) -> list[str]:
    """The pictures named, a folder standing for the picture files in it (by name; not its
    subfolders' nor its hidden files, such as the ``._`` files a Mac leaves on a copy) but for
    the reconstructions ``fashionae reconstruct`` wrote there (an image and its reconstruction side
    by side, no garment's photo; named, they are read); a picture named twice (by itself and in its
    folder, say) is taken once, as the user spelled it."""
    files, only_reconstructions = [], []
    for path in paths:
        if not Path(path).is_dir():
            files.append(path)  # read_picture says what is wrong with it, if anything
            continue
        # (a link to a picture gone is named, and read_picture says so: not left out unsaid)
        pictures_here = [p for p in Path(path).iterdir()
                         if (p.is_file() or p.is_symlink() and not p.exists()) and p.suffix.lower() in PICTURE_SUFFIXES]
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
    named = {Path(p).resolve(): p for p in paths if not Path(p).is_dir()}
    first = {}  # each picture where it first comes
    for f in files:
        first.setdefault(Path(f).resolve(), f)
    return [named.get(r, f) for r, f in first.items()]


def reconstruction_files(paths: list[str], out: Path) -> dict[Path, str]:
    """Where ``fashionae reconstruct`` writes each picture's reconstruction, {output file: picture}."""
    sources: dict[Path, str] = {}
    for path in picture_files(paths):
        target = out / f"{Path(path).stem}{RECONSTRUCTION}"
        if target in sources:
            raise UserError(f"{sources[target]} and {path} would both be written to {target}; rename one, "
                            "or reconstruct them one at a time into different folders (-o)")
        sources[target] = path
    return sources


def side_by_side(original: torch.Tensor, reconstruction: torch.Tensor) -> bytes:
    """PNG bytes: original | reconstruction, enlarged 8 times for viewing."""
    zoom = 8
    import io
    from PIL import Image
    pair = torch.cat([original[0], torch.ones(original.shape[1], 2), reconstruction[0]], dim=1)
    im = Image.fromarray((pair.clamp(0, 1).numpy() * 255).astype(np.uint8), "L")
    im = im.resize((im.width * zoom, im.height * zoom), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def picture_dataset(pictures: str | Path, out: str | Path, size: tuple[int, int], invert: str, fill: float):
    """A new dataset folder ``out`` (``data.write_npz_dataset``) of the pictures in ``pictures``,
    laid out as ``train/CLASS/`` and ``test/CLASS/`` (torchvision's ImageFolder, once per split):
    the classes are train's folders, in the order of their names; each picture is prepared as
    ``classify`` prepares one (``images.read_pictures``), at ``size``. Nothing is written where
    a picture cannot be read. Returns the dataset loaded back and the pictures with caveats,
    {path: caveats}."""
    from .data import write_npz_dataset
    from .images import read_pictures
    folder = Path(pictures)
    layout = "pictures in train/CLASS/ and test/CLASS/ folders (a test set put aside: a fifth of each class, say)"
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of {layout}")
    if missing := [s for s in SPLITS if not (folder / s).is_dir()]:
        raise UserError(f"{folder} has no {' or '.join(m + '/' for m in missing)} folder; give a folder of {layout}")
    classes = _subfolders(folder / SPLITS[0])
    if not classes:
        raise UserError(f"{folder / SPLITS[0]} has no class folders; give a folder of {layout}")
    if unknown := [c for c in _subfolders(folder / SPLITS[1]) if c not in classes]:
        raise UserError(f"{folder / SPLITS[1] / unknown[0]} is a class {folder / SPLITS[0]} lacks; the classes are "
                        f"train's folders ({', '.join(classes)}): rename it, or add its training pictures")
    arrays, caveats = [], {}
    for split in SPLITS:
        files, labels = [], []
        for label, name in enumerate(classes):
            if (folder / split / name).is_dir():  # (a class with no test pictures: `data` notes it)
                found = picture_files([str(folder / split / name)])
                files += found
                labels += [label] * len(found)
        if not files:
            raise UserError(f"{folder / split} has no pictures; give a folder of {layout}")
        read = read_pictures(files, invert, size, fill, refused="no dataset is written",
                             remedy="Fix or remove them")
        arrays += [np.stack([(read[f].pixels[0] * 255).round().to(torch.uint8).numpy() for f in files]),
                   np.array(labels, dtype=np.int64)]
        caveats.update({f: read[f].caveats for f in files if read[f].caveats})
    return write_npz_dataset(out, *arrays, classes=classes), caveats
