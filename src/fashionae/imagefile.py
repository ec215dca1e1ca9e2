"""One picture file opened: decoded whole by Pillow (libtiff for a TIFF), upright by its EXIF
orientation, in 8 bits, RGBA; each way a file can fail said in one line, and each quirk of the
decoders kept from the terminal: libtiff's complaints (written past Python to fd 2), Pillow's
warnings (a damaged EXIF block, a picture over its pixel limit). Preparing it for a model is
``images``'s."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from .errors import UserError

MAX_PIXELS = 40_000_000  # larger images are refused (decompression bombs)


def _in_a_loop(link: Path) -> bool:
    try:
        link.stat()
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def open_picture(path: str | Path, size: tuple[int, int]) -> tuple:
    """The picture at ``path`` in RGBA, and the notes of the file itself (a faint 12-bit
    picture, a damaged EXIF block); UserError for a file that cannot be one (``size``: the
    model's, for the advice on a picture too large)."""
    from PIL import Image, UnidentifiedImageError
    path = Path(path)
    if not path.exists():
        if path.is_symlink() and _in_a_loop(path):
            raise UserError(f"image {path} is a link to {path.readlink()}, which leads round a loop of links to no "
                            "file; link it to the picture file")
        raise UserError(f"image {path} is a link to {path.readlink()}, which does not exist" if path.is_symlink() else
                        f"image {path} does not exist")
    if path.is_dir():
        raise UserError(f"image {path} is a folder, not a picture file")
    if not path.is_file():
        raise UserError(f"image {path} is not a regular file (a device or a pipe); give a picture file")
    if path.stat().st_size == 0:
        raise UserError(f"image {path} is empty")
    said: list[str] = []  # libtiff's first complaint, if any
    damaged = None  # Pillow's complaint of a damaged block of TIFF tags (a photo's EXIF), if any
    try:
        try:
            rgba, depth, unread = _load(path, size, said, "error")
        except UserWarning as e:  # (raised by _pillow_warnings) said, and the picture read again without them
            damaged = _one_line(e)
            rgba, depth, unread = _load(path, size, said, "ignore")
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"image {path} is too large (over {MAX_PIXELS:,} pixels): resize it (the model sees "
                        f"{size[1]}x{size[0]})") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        why = (f"libtiff: {said[0]}" if said else f"Pillow: {damaged}" if damaged
               else f"{type(e).__name__}: it is damaged, truncated or of another kind")
        raise UserError(f"{path} is not an image fashionae can read ({why}); give a PNG or JPEG file") from None
    unread = damaged or unread
    return rgba, [c for c in (depth, f"its EXIF metadata is damaged, so a rotation it records may not be applied; "
                                     f"Pillow says: {unread}" if unread else None) if c]


def _load(path: Path, size: tuple[int, int], said: list[str], damaged_tags: str) -> tuple:
    """The picture in RGBA, upright, with its notes: its depth's, and why its EXIF could not be
    read (``_upright``); ``damaged_tags``: what Pillow's warning of a damaged block of TIFF tags
    does (``_pillow_warnings``); ``said``: libtiff's complaints (``_libtiff_said``)."""
    from PIL import Image
    with _pillow_warnings(Image, damaged_tags):
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise UserError(f"image {path} is too large ({im.width}x{im.height}); the limit is "
                                f"{MAX_PIXELS:,} pixels: resize it (the model sees {size[1]}x{size[0]})")
            with _libtiff_said(im, said):
                im.load()
            upright, unread = _upright(im)
            eight_bit, depth = _eight_bit(upright, path)
            return eight_bit.convert("RGBA"), depth, unread


@contextlib.contextmanager
def _pillow_warnings(Image, damaged_tags: str):
    """Two of Pillow's warnings while a picture opens and loads, kept from being printed past the
    answer: a picture over its pixel limit, raised (the size is refused); a damaged block of TIFF
    tags (a TIFF's, or a photo's EXIF, which TiffImagePlugin reads) raised or ignored, as
    ``damaged_tags`` says (raised, it is said in the error's line or a note). The warnings'
    filters are the whole process's, and not safe to change from two threads at once (a thread's
    restore can undo another's, or keep its filters for good): changed by the main thread alone;
    in another thread Pillow prints them, as it does anywhere else."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings(damaged_tags, category=UserWarning, module=r"PIL\.TiffImagePlugin")
        yield


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()).rstrip(".")


def _upright(im) -> tuple:
    """The picture as a viewer shows it, and why not where its EXIF cannot be read (None where it
    can): a phone stores its photos sideways, with their orientation in EXIF. A damaged EXIF block
    leaves the picture as stored."""
    from PIL import ImageOps
    try:
        return ImageOps.exif_transpose(im), None
    except Exception as e:  # noqa: BLE001 (Pillow raises many kinds on malformed EXIF)
        return im, _one_line(e) or type(e).__name__


def _eight_bit(im, path: Path) -> tuple:
    """16- and 32-bit grayscale scaled to 8 bits: Pillow's conversion clips them instead (a
    16-bit picture, whose levels run to 65535, would come out blank). Floating-point grey
    (mode "F", a TIFF of a scientist's) runs 0-1, or 0-255 where its levels say so. With the
    picture, a caveat when its levels fill so little of the 16-bit range that it comes out
    faint: 12-bit levels (a camera's, a scanner's) in a 16-bit file."""
    if not (im.mode.startswith("I") or im.mode == "F"):
        return im, None
    from PIL import Image
    a = np.asarray(im, dtype=np.float64)  # 16-bit levels (Pillow opens some 16-bit files as 32-bit "I")
    top = 65535 if im.mode != "F" else 255
    if a.size and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= top):
        raise UserError(f"image {path} has grey levels outside 0-{top}; save it as an 8- or 16-bit picture")
    if im.mode == "F" and a.size and a.max() <= 1:
        top = 1
    faint = None
    if im.mode != "F" and a.size and 0 < a.max() < 4096:  # 12 bits or fewer
        faint = (f"its levels reach only {a.max():.0f} of the 16-bit range's 65535, so it comes out faint or coarse; "
                 "if it holds 12-bit (or fewer) levels, save it as an 8-bit picture")
    return Image.fromarray(np.round(a * (255 / top)).astype(np.uint8), "L"), faint


@contextlib.contextmanager
def _libtiff_said(im, said: list[str]):
    """Decoding a TIFF, libtiff writes its complaints straight to the process's stderr (file
    descriptor 2), past Python: they are caught here while ``im`` loads, so that a damaged TIFF's
    error stays one line, and, where the load fails, the first of them is added to ``said`` (the
    error then says what libtiff saw). fd 2 is the whole process's: it is swapped by the main
    thread alone (two threads swapping it left it on a deleted file; a line another thread writes
    while the picture loads goes with libtiff's), and where it can be (not none, closed, or the
    picture's own file); else the load goes on uncaught, as for any other picture."""
    if im.format != "TIFF" or threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        if getattr(im.fp, "fileno", lambda: -1)() == 2:
            raise OSError("fd 2 is the picture's file")
        sys.stderr.flush()
        caught = tempfile.TemporaryFile()
    except (OSError, ValueError, AttributeError):  # (sys.stderr None or closed)
        yield
        return
    failed = False
    with caught:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2
            yield
            return
        try:
            os.dup2(caught.fileno(), 2)
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                caught.seek(0)
                lines = caught.read().decode(errors="replace").splitlines()
                said += [line.strip().rstrip(".") for line in lines if line.strip()][:1]
