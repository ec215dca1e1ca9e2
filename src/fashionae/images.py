"""Your own pictures, made to look like Fashion-MNIST (``LoadedRun`` applies a run to them).

Fashion-MNIST was made from product photos on a light background by: trimming the edges
that are close to the background colour, resizing the longest edge to 28 pixels, sharpening,
centring on a 28x28 canvas, negating, and converting to 8-bit grayscale. ``prepare_image``
follows the same steps (with a Lanczos resize in place of plain subsampling), then maps the
background level to black, since a photo's background is rarely pure white, and the object's
light end to white, as the dataset's are (a light garment on white would stay dim). Light that
falls off smoothly across the picture (a lamp's, vignetting) is first divided out. Negation
("invert") is automatic: a picture whose border is light is negated, so the garment ends
light on a dark background as in the dataset, unless the garment would then end darker than
its background (a white shirt on light grey), and the other way round; ``invert="yes"`` /
``"no"`` forces it. The picture so made is then put on the background level of the run's
dataset (``dataset_background``: black for Fashion-MNIST), and for a dataset of light backgrounds
(dark garments on white, or on light grey: above ``DARK``) negated into its form (``invert`` keeps
its meaning: whether the photo is negated on the way to light on black). A picture already in
the dataset's form (the run's size, grey, a border as close to black, or white, as the dataset's
images' are: ``dataset_border``) is taken as it is. Opening
the file (upright by its EXIF orientation, in 8 bits, each failure one line) is ``imagefile``'s.

``read_picture`` also says what makes an answer for a picture say little (``Picture.caveats``):
a blank picture, an object of a few pixels, an outline, several objects apart from one another, a
background that is uneven (or, on one, mid-grey), an object
left darker than its background by the ``invert`` given (negated the wrong way), a picture of the
model's size on a border of the dataset's side but further from black (or white) than the dataset's
(prepared as a photo: it may be a dataset's image).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import IMAGE_SIZE, image_size_problem
from .errors import UserError
from .imagefile import open_picture

# how a picture is made an image of a dataset (``read_picture``): negated by its border
# (auto, the default), always or never, and the part of the frame its object's longer side spans
# (all of it, as in Fashion-MNIST). A dataset made of pictures records them ([pictures] in its
# dataset.toml), its runs too, and pictures given to a run are prepared so by default.
INVERT = ("auto", "yes", "no")
FILL = 1.0
PICTURES = {"invert": INVERT[0], "fill": FILL}  # as Fashion-MNIST's: where a dataset records none

FAINT = 0.05  # of the intensity range: a difference this small from the background is background
UNEVEN = 0.15  # of the intensity range: corners further apart than this are not one background
MID_GREY = (0.3, 0.7)  # of the intensity range: a background level between these may be either side
BLANK = "blank or nearly so once prepared: the answer says nothing"
BLANK_IMAGE = "blank or nearly so once prepared: an image of nothing, which teaches its class nothing"  # (a dataset's)
TWO_SIDED = 0.3  # the lesser of an object's lighter and darker sides, as a share, above which one is lost
OUTLINE = 0.15  # an object filling less of its box than this is an outline (99 % of the dataset's sandals fill 0.24+)
STRETCH_FROM = 0.1  # marks this faint or fainter are not stretched to white (noise), unless the trim found an object
MAX_ENLARGEMENT = 2.0  # an object enlarged more than this to fill the canvas comes out blurred
# Objects apart: each part of the content is grown by OBJECTS_APART of its box's longer side, so
# parts closer than twice that (up to 7 % with the grid's rounding) are one object (a sandal's
# straps, a pair of shoes almost touching), and a part is an object of its own where it covers
# SECOND_OBJECT of the box (not a tag, a hanger's hook or a print's letters). Of the 10,000 test
# images drawn as photos (benchmarks/pictures.py), none holds two so; of 200 pairs of them side by
# side, 191 do (the others: a sandal's sparse straps, under a tenth of the pair's box). A garment
# whose middle is as light as the background (a white-soled slide's two straps, a white shirt's
# dark sleeves) is two parts to the trim, and is said to be two objects.
OBJECTS_APART, SECOND_OBJECT = 0.03, 0.1
SPECK = 0.01  # of the content: on a noisy background, a part apart from the object holding less is a speck
SD_PER_MAD = 1.4826  # a normal's standard deviation over its median absolute deviation
# of the intensity range: light over the border that the fitted surface says varies by more than this
# (a lamp's falloff, vignetting) is divided out before the trim. Half of FAINT: light varying less
# keeps the lit middle within FAINT of the border's median, background for the trim, as before
UNEVEN_LIGHT = FAINT / 2
# standard errors of the fitted surface (the border's noise over the root of its pixels per term):
# its range must pass this many too, so that noise is not taken for light. Noise alone spans under
# 17 (3,000 noisy pictures of 28 to 400 pixels a side, sd 4 to 40); 10 % vignetting 40 or more
LIGHT_OVER_NOISE = 25
# of each side of the border's ring: the share the fitted surface must keep (within 3 robust
# standard deviations of it) on all four sides. An object over most of one side (a garment
# across three, the fit following its shading) is then no light; an object on part of a side is
LIGHT_ON_EVERY_SIDE = 0.5
# a fiftieth of the picture's shorter side (at least 1 pixel): runs this long along the ring,
# whose mean residuals give its noise where neighbouring pixels are alike (a texture, linen or
# wood; a shadow's sharp edge the surface does not follow), which the standard errors of
# independent pixels understate: independent noise's means of a run are its own over the run's
# root, a texture's and an edge's are not
LIGHT_RUN = 50
# the fitted surface's darkest over its brightest (capped at 255) at least this: a lamp's falloff
# or vignetting (the benchmark's 20 %: 0.8; a lamp on black cloth, its corners at 40 % of the
# middle) is light; a surface falling further is an object's shading (a dark garment over three
# sides of the border, the white fourth taken for the light's bright end: 0.14 to 0.22)
LIGHT_FALL = 1 / 3


MIN_SPAN = 4  # pixels: an object prepared smaller than this (a tiny --fill) is a blob
DARK = 127  # of 255: a border up to this is dark (the dataset's form, as far as a picture's border can say)
AS_IS_SHARE = 99  # percent of a dataset's images whose border a picture's may match to be taken as it is


@dataclass(frozen=True)
class Picture:
    """A picture made to look like Fashion-MNIST, and why an answer for it may say little."""
    pixels: torch.Tensor  # [1, H, W] in [0, 1], on the run's dataset's background (black, as Fashion-MNIST's)
    caveats: tuple[str, ...] = ()  # e.g. "blank or nearly so once prepared: the answer says nothing"


def prepare_image(path: str | Path, invert: str = INVERT[0], size: tuple[int, int] = IMAGE_SIZE,
                  fill: float = FILL) -> torch.Tensor:
    """A picture file -> float tensor [1, H, W] in [0, 1], dark background (H x W: the size
    of the images the run was trained on, 28 x 28 for Fashion-MNIST). The object's longer side
    spans ``fill`` of the frame: all of it, as in Fashion-MNIST; less for a dataset whose
    objects fill only part of each image (MNIST's digits: 20 of 28 pixels, 0.7)."""
    return read_picture(path, invert, size, fill).pixels


def pictures_problem(pictures) -> str | None:
    """What is wrong with how a dataset's pictures were prepared ({"invert", "fill"}), or None."""
    if not isinstance(pictures, dict):
        return "must be a table (a dict) of invert and fill"
    if unknown := sorted(set(pictures) - {"invert", "fill"}):
        return f"has an unknown key {unknown[0]!r}; known: invert, fill"
    return preparation_problem(**(PICTURES | pictures))


def preparation_problem(invert, fill) -> str | None:
    """What is wrong with how a picture is to be prepared, or None."""
    if invert not in INVERT:
        return f"invert must be {', '.join(INVERT[:-1])} or {INVERT[-1]}, got {invert!r}"
    if not isinstance(fill, numbers.Real) or isinstance(fill, bool) or not 0 < fill <= 1:  # (numpy's floats too)
        return f"fill must be above 0 and at most 1 (the part of the frame the object spans), got {fill!r}"
    return None


def pictures_or_default(pictures: dict) -> dict:
    """How pictures are prepared, ``pictures`` (checked by ``pictures_problem``) with what it leaves
    out as Fashion-MNIST's (``PICTURES``), its fill a Python float."""
    full = PICTURES | pictures
    return {"invert": full["invert"], "fill": float(full["fill"])}


def read_pictures(paths: list[str], invert: str = INVERT[0], size: tuple[int, int] = IMAGE_SIZE,
                  fill: float = FILL, refused: str = "none is answered",
                  remedy: str = "Fix or remove them, or name only the others",
                  progress: Callable[[int], None] = lambda read: None, dataset_fill: float = FILL,
                  dataset_border: float = 0.0, dataset_background: float = 0.0) -> dict[str, Picture]:
    """Every picture (``read_picture``), read before any is used; those that cannot be, all
    named in one error (saying what is ``refused`` for them and the ``remedy``), so that a
    folder with a stray file costs one try, not one per file. ``progress``: told how many are
    read, after each."""
    _check_options(invert, fill, size)
    pictures, faults = {}, []
    for read, path in enumerate(paths, 1):
        try:
            pictures[path] = read_picture(path, invert, size, fill, dataset_fill, dataset_border, dataset_background)
        except UserError as e:
            faults.append(str(e))
        progress(read)
    if len(faults) == 1 and len(paths) == 1:
        raise UserError(faults[0])
    if faults:
        shown = "; ".join(faults[:3]) + (f"; and {len(faults) - 3} more" if len(faults) > 3 else "")
        raise UserError(f"{len(faults)} of the {len(paths)} pictures cannot be used, so {refused}: "
                        f"{shown}. {remedy}")
    return pictures


def _check_options(invert: str, fill: float, size: tuple[int, int]) -> None:
    """How a picture is to be prepared, checked before any is read (given in Python or as options)."""
    if problem := preparation_problem(invert, fill):
        raise UserError(f"--{problem}")
    if problem := image_size_problem(size):  # (the run's own, where a command reads it; a caller's in Python)
        raise UserError(f"the image size {problem}")


def read_picture(path: str | Path, invert: str = INVERT[0], size: tuple[int, int] = IMAGE_SIZE,
                 fill: float = FILL, dataset_fill: float = FILL, dataset_border: float = 0.0,
                 dataset_background: float = 0.0) -> Picture:
    """``prepare_image``'s pixels, with the caveats the picture gives (see ``Picture``).
    ``dataset_fill``: the fill of the run's dataset, whose images a picture in their form is
    (taken as it is, its caveat says so where another ``fill`` was asked for); ``dataset_border``:
    their borders' level (``dataset_border``; 0, black, for Fashion-MNIST's), up to which (down
    to which, on light backgrounds) a grey picture of the model's size is in their form;
    ``dataset_background``: their median border (``dataset_background``), the level a picture
    prepared as a photo ends on; light above ``DARK``: then negated, dark on light as they are."""
    from PIL import Image
    _check_options(invert, fill, size)
    rgba, opened = open_picture(path, size)  # (the notes of the file itself)
    rgb = Image.alpha_composite(Image.new("RGBA", rgba.size, _behind(rgba)), rgba).convert("RGB")
    # already what the steps below make (the model's size, grey, on a background as close to the
    # dataset's end as its images': black (white on light backgrounds), give or take FAINT; a noisy
    # scan's, where the dataset is of those): as it is. Levels are read from the dataset's end
    light = is_light(dataset_background)
    side, ends = ("light", ("darker", "at least")) if light else ("dark", ("lighter", "at most"))
    model_sized = (rgb.height, rgb.width) == tuple(size) and _grey(rgb) and invert != "yes"
    # (a border past the middle is of the other side, whatever the dataset's)
    reach = max(FAINT * 255, min(_from_end(dataset_border, light), DARK))
    if model_sized and _from_end(level := _border_level(rgb.convert("L")), light) <= reach:  # (a test image as a PNG)
        asis = [] if fill == dataset_fill else [f"it is already in the dataset's form ({size[1]}x{size[0]}, {side} "
                                        f"background), so it is taken as it is: --fill {fill:g} is not applied"]
        return _picture(np.asarray(rgb.convert("L"), dtype=np.float32) / 255, opened + asis, light)
    if model_sized and _from_end(level, light) <= DARK:  # (a dataset's image whose object fills the frame, say)
        opened = opened + [f"it has the model's size ({size[1]}x{size[0]}) and is grey, but its border ({level:g} of "
                           f"255) is {ends[0]} than the dataset's images' ({_from_end(reach, light):g} {ends[1]}), so "
                           "it is prepared as a photo (trimmed, centred); if it is one of the run's dataset's own "
                           "images, its pixels given as an array from Python are taken as they are"]
    picture = _as_photo(rgb, invert, size, fill, opened)
    # on the dataset's background level (black for Fashion-MNIST: as prepared), its object to the
    # far end: dark garments on white (or on grey) as a light dataset's are, Fashion-MNIST's form negated
    ground = dataset_background / 255
    if ground:
        return replace(picture, pixels=ground * (1 - picture.pixels) if light else ground + (1 - ground) * picture.pixels)
    return picture


def is_light(level: float) -> bool:
    """Whether a background's level (of 255) is light: above ``DARK`` (a dataset's, its images'
    median border: dark garments on white)."""
    return level > DARK


def _from_end(level: float, light: bool) -> float:
    """A grey level (of 255) as its distance from the dataset's end: black, or white where the
    dataset's backgrounds are light (and back: the map is its own inverse)."""
    return 255 - level if light else level


def _as_photo(rgb, invert: str, size: tuple[int, int], fill: float, opened: list[str]) -> Picture:
    """A picture prepared as Fashion-MNIST's images were made from photos (the module's steps),
    light on black, with its caveats after ``opened``'s."""
    from PIL import Image, ImageFilter

    # corners far apart: said of the picture as taken (the light's fit may even them out, or follow
    # an object it should not: the note is never lost)
    uneven = _uneven_corners(rgb.convert("L"))
    # the border is read a few pixels in, past a thin frame
    inset = _inset(rgb.size)
    rgb = _flat_field(rgb, inset)  # light falling off towards the edges, divided out
    original = rgb.convert("L")
    # the background's level, from the picture's own border: once trimmed, an object may fill the
    # frame (a square one does), and the frame's border is then the object's
    border = _border_level(original, inset)
    # (a mid-grey background leaves the negation to a guess where the object's sign cannot settle it)
    caveats = opened + [c for c in (uneven, _mid_grey(border, invert) if uneven else None) if c]
    # 1. trim the edges that are background: close to the border's colour
    content, body, fill_colour, noisy, faint_in_noise = _content(np.asarray(rgb), inset)
    found = bool(content.any())
    if not found:  # nothing but background, noise and specks
        caveats.append(BLANK)
    else:
        rows, cols = _box(content)
        (inner_rows, inner_cols), objects = _objects(content[rows, cols], drop_specks=noisy)
        rows = slice(rows.start + inner_rows.start, rows.start + inner_rows.stop)
        cols = slice(cols.start + inner_cols.start, cols.start + inner_cols.stop)
        rgb = rgb.crop((cols.start, rows.start, cols.stop, rows.stop))
        filled = float(body[rows, cols].mean())
        if filled < OUTLINE and not faint_in_noise:
            caveats.append(f"the object fills only {int(filled * 100)}% of its box, as an outline or a sketch does; the "
                           "models know filled garments (a photo of one)")
        if objects > 1:
            caveats.append(f"the picture holds {objects} objects apart from one another, which are boxed and shrunk "
                           "together; the models know one garment a picture: crop to one")
    # 2. longest edge to the canvas (28 pixels for Fashion-MNIST), or to ``fill`` of it (a blank
    #    picture has no object whose size to note)
    height, width = size
    scale = min(width / rgb.width, height / rgb.height) * fill
    if scale > MAX_ENLARGEMENT and found:
        caveats.append(f"the object is only {rgb.width}x{rgb.height} pixels, enlarged {scale:.1f}x: blurred; "
                       "give a larger picture")
    rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.LANCZOS)
    if max(rgb.size) < MIN_SPAN and found:
        caveats.append(f"the object spans only {max(rgb.size)} of the frame's {max(size)} pixels (--fill {fill:g}): "
                       "too small to say much; give a larger --fill")
    # 3. sharpen
    rgb = rgb.filter(ImageFilter.UnsharpMask(radius=1, percent=100, threshold=0))
    # 4. centre on the canvas, filled with the background's colour
    canvas = Image.new("RGB", (width, height), fill_colour)
    canvas.paste(rgb, ((width - rgb.width) // 2, (height - rgb.height) // 2))
    gray = canvas.convert("L")
    # 5. negate: light background -> dark background; under "auto" the border's level guesses, and
    #    the object settles it: it must end lighter than its background (a white shirt on light
    #    grey is kept as it is, a dark one on mid-grey negated)
    # 6. the background level becomes black, as in the dataset (an off-white photo
    #    background would otherwise stay a dim grey)
    negated = invert == "yes" or (invert == "auto" and is_light(border))
    g, lost = _negated(gray, border, negated, uneven)
    if lost and invert == "auto":
        other, still_lost = _negated(gray, border, not negated, uneven)
        if not still_lost:
            g, lost, negated = other, False, not negated
    if invert == "auto" and not uneven and _two_sided(gray, border):
        caveats.append("parts of the object are lighter and parts darker than its background, so one of them is "
                       "lost whichever way it is negated; compare --invert yes and --invert no")
    if lost:
        return Picture(torch.from_numpy(g).unsqueeze(0), (
            *opened,  # (a faint 12-bit picture may be why)
            f"most of the object is darker than its background once {'negated' if negated else 'kept as it is'}, "
            f"so it is lost; try --invert {'no' if negated else 'yes'}"))
    # 7. the object's light end becomes white, as in the dataset (whose objects reach 0.8 and
    #    above): a light garment on white (grey on 250) would otherwise stay dim; not a picture
    #    whose marks are too faint to tell from noise (the trim found no object, and they are
    #    under STRETCH_FROM)
    lit = g[g > FAINT]
    top = float(np.percentile(lit, 99)) if lit.size else 0.0
    if (STRETCH_FROM < top or found) and 0 < top < 1:  # (an object the trim found is more than noise)
        g = np.clip(g / top, 0.0, 1.0)
    return _picture(g, caveats)


def _negated(gray, border: float, negated: bool, uneven: str | None) -> tuple[np.ndarray, bool]:
    """The grey levels negated or not, the background level (``border``'s) mapped to black, in
    [0, 1]; and whether the object is lost: mostly darker than its background, so black with it
    (not judged on an uneven background, whose level the border does not give)."""
    from PIL import ImageOps
    g = np.asarray(ImageOps.invert(gray) if negated else gray, dtype=np.float32)
    background = 255.0 - border if negated else border
    lost = not uneven and _mostly_darker(g, background)
    # a white background kept (or a black one negated) is 255: black too, as every other (a lost
    # object's picture was a white page then), its scale kept finite
    return np.clip((g - background) / max(255.0 - background, 1.0), 0.0, 1.0), lost


def _inset(size: tuple[int, int]) -> int:
    """How far in from the edges the background is read: 2 % of the shorter side, past a thin
    frame (a scan's, a screenshot's)."""
    return min(size) // 50


def _ring(a: np.ndarray, inset: int = 0) -> np.ndarray:
    """The pixels of the rectangle ``inset`` pixels in from the edges of ``a`` [H, W, ...]."""
    b = a[inset:a.shape[0] - inset, inset:a.shape[1] - inset]
    return np.concatenate([b[0], b[-1], b[:, 0], b[:, -1]])


def _content(a: np.ndarray, inset: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], bool, bool]:
    """Which pixels of an RGB picture [H, W, 3] are not background, and the background's colour:
    the median of the border's pixels (``inset`` in). A pixel is content where it differs from
    that colour by more than FAINT of the intensity range, or more than 4 times the border's
    noise (a photo's, or a soft gradient of light: its standard deviation from the median absolute
    deviation, which a garment on less than half the border does not move; up to UNEVEN, beyond
    which ``_uneven_corners`` speaks); the outer lines (up to ``inset``) that are nearly all content
    are a frame, not the object; then isolated pixels (noise, a speck of dust) are dropped, so
    that they do not stop the trim. Then the object's body, for the share of its box it fills:
    where it differs by more than FAINT or a quarter of its own contrast, if less (a faint
    garment's lighter parts, or a garment's on a picture whose noise or gradient of light raised
    the tolerance, are not an outline's gaps). Last, whether the noise set the tolerance (above
    FAINT: a noisy or textured background), and whether the object is faint in it: it differs by
    3 tolerances or less (its mask is then dots, whatever its shape)."""
    border = _ring(a, inset).astype(np.float32)
    colour = np.median(border, axis=0)
    sigma = SD_PER_MAD * float(np.median(np.abs(border - colour)))  # the noise's, robust to an object on the border
    # a clipped background's noise, its tolerance at most twice FAINT: with the 3x3 filter below that
    # leaves out noise of up to about 10 levels on white, and keeps a light garment 33 levels off white
    # on 44 % of the border (tests/test_images.py)
    clipped = min(4 * _clipped_noise(border, colour), 2 * FAINT * 255)
    tolerance = min(max(FAINT * 255, 4 * sigma, clipped), UNEVEN * 255)
    colour = colour.round().astype(np.int16)
    difference = np.abs(a.astype(np.int16) - colour).max(axis=2)  # (int16: a large photo's copies stay small)
    d, strong = difference > tolerance, difference > 3 * tolerance
    for lines in zip((d, d[::-1], d.T, d.T[::-1]), (strong, strong[::-1], strong.T, strong.T[::-1])):
        for i in range(inset):  # the views top, bottom, left, right, into both masks
            if lines[0][i].mean() < 0.9:
                break
            lines[0][i] = lines[1][i] = False
    # noise and specks: a pixel is content where most of its 3x3 neighbourhood is (a median
    # filter), or where it differs strongly and two of its eight neighbours do too (a line one
    # pixel wide, a sketch's, keeps two, but for its ends)
    content = (_count_3x3(d) >= 5) | (strong & (_count_3x3(strong) >= 3))
    contrast = float(np.percentile(difference[content], 99)) if content.any() else 0.0
    body = difference > min(FAINT * 255, contrast / 4)
    noisy = tolerance > FAINT * 255
    return content, body, tuple(int(round(c)) for c in colour), noisy, noisy and contrast <= 3 * tolerance


def _flat_field(rgb, inset: int):
    """The picture with the background's light made even where it is clearly not (a lamp's
    falloff, vignetting): the light as a quadratic surface in x and y, fitted by least squares to
    the grey levels of the border's ring (``inset`` in) that lie within 3 robust standard
    deviations of their median, then twice more of the fit (an object on part of the border does
    not bend it), and each pixel multiplied by the border's median level over the surface's
    (capped at 255: a clipped white stays white). Returned as it is: a picture whose surface
    varies by UNEVEN_LIGHT or less, or by less than LIGHT_OVER_NOISE of its standard errors (of
    the pixels' noise, or of a texture's or a sharp shadow's, from runs of LIGHT_RUN); one where
    the fit leaves out most of a side of the ring (LIGHT_ON_EVERY_SIDE), or falls below
    LIGHT_FALL of its brightest (an object's shading); one too thin to fit."""
    a = np.asarray(rgb)
    h, w = a.shape[:2]
    if min(h, w) - 2 * inset < 3:  # (a ring of 1 or 2 lines: the quadratic's terms are not independent)
        return rgb
    ys = _ring(np.broadcast_to(np.linspace(-1, 1, h)[:, None], (h, w)), inset)
    xs = _ring(np.broadcast_to(np.linspace(-1, 1, w)[None, :], (h, w)), inset)
    level = _ring(a, inset).astype(np.float64).mean(axis=1)  # grey, the channels alike
    terms = np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)
    kept, residual = np.ones(len(level), bool), np.abs(level - np.median(level))
    for _ in range(3):  # from the median, which an object on under half the border does not move
        kept = residual <= max(3 * SD_PER_MAD * float(np.median(residual[kept])), 1.0)
        c = np.linalg.lstsq(terms[kept], level[kept], rcond=None)[0]
        residual = np.abs(level - terms @ c)
    sigma = SD_PER_MAD * float(np.median(residual[kept]))  # the border's noise about the surface
    run = max(1, min(h, w) // LIGHT_RUN)
    sides = np.cumsum([0, w - 2 * inset, w - 2 * inset, h - 2 * inset])  # where _ring's sides start
    means = np.concatenate([d[:len(d) // run * run].reshape(-1, run).mean(axis=1)
                            for d in np.split(level - terms @ c, sides[1:])])
    sigma = max(sigma, SD_PER_MAD * float(np.median(np.abs(means))) * run ** 0.5)  # (a texture's, an edge's)
    every_side = min(k.mean() for k in np.split(kept, sides[1:])) >= LIGHT_ON_EVERY_SIDE

    def surface(rows: int, cols: int) -> np.ndarray:  # (float32: a large photo's copies stay small)
        y = np.linspace(-1, 1, rows, dtype=np.float32)[:, None]
        x = np.linspace(-1, 1, cols, dtype=np.float32)[None, :]
        k = c.astype(np.float32)
        return k[0] + k[1] * x + k[2] * y + k[3] * x * x + k[4] * x * y + k[5] * y * y
    coarse = surface(33, 33)  # its range over the picture, on a grid
    noise = LIGHT_OVER_NOISE * sigma * (len(c) / kept.sum()) ** 0.5
    if (coarse.max() - coarse.min() <= max(UNEVEN_LIGHT * 255, noise) or not every_side  # (or an object's)
            or coarse.min() < LIGHT_FALL * min(float(coarse.max()), 255)):
        return rgb
    lit = a.astype(np.float32)  # (in place from here; over 255, the light was clipped: white stays white)
    lit *= (np.float32(np.median(level)) / np.clip(surface(h, w), np.float32(1), np.float32(255)))[..., None]
    from PIL import Image
    return Image.fromarray(np.rint(np.clip(lit, 0, 255, out=lit), out=lit).astype(np.uint8), "RGB")


def _clipped_noise(border: np.ndarray, colour: np.ndarray) -> float:
    """The noise of a background at an end of the intensity range (white paper, black cloth),
    whose pixels the picture clipped on one side: there the median absolute deviation sees the
    clipped half as noiseless (on pure white with noise of 8 levels it reads about 0, and the noise
    left over spread the trim over the whole picture). Read from the side not clipped, as the
    median of the distances there (half of a normal's: 0.6745 standard deviations), where a quarter
    of the border sits at the end, over a third on the other side of the median, and a tenth of
    those within 3 levels of it (noise is spread from the end on; an object on a clean background,
    at its own level, is not taken for noise). 0 elsewhere."""
    sigmas = [0.0]
    for values, c in zip(border.T, colour):
        for at_end, other_side in ((values >= 255, values < c), (values <= 0, values > c)):
            distances = np.abs(values[other_side] - c)
            if at_end.mean() >= 0.25 and other_side.mean() > 1 / 3 and (distances <= 3).mean() >= 0.1:
                sigmas.append(float(np.median(distances)) / 0.6745)
    return max(sigmas)


def _box(mask: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the smallest rectangle that holds a mask's pixels (it has one)."""
    rows, cols = np.where(mask.any(1))[0], np.where(mask.any(0))[0]
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _objects(mask: np.ndarray, drop_specks: bool) -> tuple[tuple[slice, slice], int]:
    """The box, within the content ``mask`` (cropped to its box), of the content kept: with
    ``drop_specks`` (a noisy or textured background) not the specks apart from the object (parts
    holding under SPECK of the content; on a plain background such a part is the object's: a
    faint garment's mask falls apart in pieces); and how many objects it holds apart from one
    another (see OBJECTS_APART, SECOND_OBJECT). Judged on a grid of about 200 cells a side, each
    the share of its pixels the mask holds, so that a large photo costs no more than a small one."""
    from scipy import ndimage
    step = -(-max(mask.shape) // 200)
    padded = np.pad(mask, [(0, -n % step) for n in mask.shape])
    cells = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).mean(axis=(1, 3))
    near = np.ones((3, 3), bool)  # (8-connected: a diagonal step joins)
    joined = ndimage.binary_dilation(cells > 0, near, iterations=max(1, round(OBJECTS_APART * max(cells.shape))))
    labels, _ = ndimage.label(joined, near)
    covered = np.bincount(labels.ravel(), weights=cells.ravel())  # of each part, in cells (0: none)
    if drop_specks:
        # (the largest part at least; label 0, outside every part, covers nothing and is never kept)
        kept = covered >= min(SPECK * covered[1:].sum(), covered[1:].max())
        mask = mask & np.repeat(np.repeat(kept[labels], step, 0), step, 1)[:mask.shape[0], :mask.shape[1]]
    rows, cols = _box(mask)
    box = (rows.stop - rows.start) * (cols.stop - cols.start) / step ** 2
    return (rows, cols), int((covered[1:] >= SECOND_OBJECT * box).sum())


def _count_3x3(mask: np.ndarray) -> np.ndarray:
    """How many pixels of each pixel's 3x3 neighbourhood (itself included) ``mask`` holds."""
    padded = np.pad(mask, 1).astype(np.uint8)
    return sum(padded[1 + i:padded.shape[0] - 1 + i, 1 + j:padded.shape[1] - 1 + j]
               for i in (-1, 0, 1) for j in (-1, 0, 1))


def _picture(g: np.ndarray, caveats: list[str] | tuple = (), light: bool = False) -> Picture:
    """The prepared grey levels [H, W] in [0, 1] as a Picture; one with nothing fainter than
    background (black, or white if ``light``) left in it (a blank page, or one whose only marks
    are noise) says only that."""
    if (1 - g.min() if light else g.max()) < FAINT:
        caveats = [BLANK]
    return Picture(torch.from_numpy(g).unsqueeze(0), tuple(caveats))


def _sides(g: np.ndarray, background: float) -> tuple[float, float]:
    """How much of the object is lighter than the background, and how much darker: the summed
    differences of the pixels that differ by more than FAINT. (Sharpening leaves a faint halo of
    the other sign around any object: the sums outweigh it.)"""
    d = np.asarray(g, dtype=np.float32) - background
    d = d[np.abs(d) > FAINT * 255]
    return float(d[d > 0].sum()), float(-d[d < 0].sum())


def _two_sided(gray, border: float) -> bool:
    """Whether the object's lighter and darker parts both weigh (the lesser side at least
    TWO_SIDED of the whole): a dark shirt with a white print, one side lost either way."""
    light, dark = _sides(gray, border)
    return light + dark > 0 and min(light, dark) / (light + dark) >= TWO_SIDED


def _mostly_darker(g: np.ndarray, background: float) -> bool:
    """Whether the object is mostly darker than the background: on a dark background, as the
    dataset's, an object must be lighter. (Only on an even background, whose level the border
    gives.)"""
    light, dark = _sides(g, background)
    return light < dark


def _uneven_corners(gray) -> str | None:
    """Corners far apart (uneven light, or an object touching them) defeat the trim and the
    background level: the caveat that says so, if they are (measured before trimming)."""
    g = np.asarray(gray, dtype=np.float32)
    k = max(1, min(g.shape) // 20)  # a corner patch, 5 % of the shorter side
    corners = [float(p.mean()) for p in (g[:k, :k], g[:k, -k:], g[-k:, :k], g[-k:, -k:])]
    if max(corners) - min(corners) > UNEVEN * 255:
        return (f"its corners range from {min(corners):.0f} to {max(corners):.0f} of 255: an uneven background, "
                "or an object touching them; crop it with a plain margin around the object")
    return None


def _mid_grey(level: float, invert: str) -> str | None:
    """A mid-grey background leaves the negation to a guess, under ``invert="auto"``."""
    if invert == "auto" and MID_GREY[0] * 255 < level < MID_GREY[1] * 255:
        return f"its background is mid-grey ({level:.0f} of 255), so whether to negate it is a guess; say --invert yes or no"
    return None


def _grey(rgb) -> bool:
    """Whether an RGB picture is grey: its three channels alike."""
    a = np.asarray(rgb)
    return bool((a == a[..., :1]).all())


def _behind(rgba) -> tuple[int, int, int, int]:
    """What shows through a picture's transparency: white, as behind a product photo (one whose
    opaque part is a rectangle, its corners rounded or its sides padded, has its own background),
    but black behind a light cut-out, an opaque part of another shape (a white garment cut out of
    its photo would vanish on white)."""
    low, high = rgba.getextrema()[3]
    if low > 127 or high <= 127:  # (most pictures: opaque; no copy of a large photo)
        return (255, 255, 255, 255)
    opaque = np.asarray(rgba.getchannel("A")) > 127
    if opaque[_box(opaque)].mean() > 0.97:  # a photo's rectangle
        return (255, 255, 255, 255)
    light = is_light(float(np.asarray(rgba.convert("L"))[opaque].mean()))
    return (0, 0, 0, 255) if light else (255, 255, 255, 255)


def dataset_border(images) -> float:
    """The border level (of 255) of a dataset's images [N, H, W] of 0-255 up to which a grey
    picture of their size is in their form (``read_picture``'s ``dataset_border``): the
    AS_IS_SHARE-th percentile of their borders' levels, but no further above their median
    (``dataset_background``) than FAINT, so that images whose object fills the frame do not count,
    however many; on light backgrounds (above DARK) the same from white: the level down to which.
    Fashion-MNIST's training images': 0 (black: 55 of the 60,000 have a border of their object,
    filling the frame); a dataset of scans on a noisy background: the noise's median."""
    levels = _border_levels(images)
    if not levels.size:
        return 0.0
    light = is_light(float(np.median(levels)))
    off = _from_end(levels, light)  # (each image's distance from the dataset's end)
    reach = min(float(np.percentile(off, AS_IS_SHARE)), float(np.median(off)) + FAINT * 255)
    return round(float(_from_end(reach, light)), 1)


def dataset_background(images) -> float:
    """The background's level (of 255) of a dataset's images [N, H, W] of 0-255: the median of
    their borders' levels (light above DARK: dark garments on white)."""
    levels = _border_levels(images)
    return round(float(np.median(levels)), 1) if levels.size else 0.0


def light_background_line(images) -> str | None:
    """What ``fashionae data`` says of a dataset of light backgrounds (dark garments on white):
    pictures given to its runs end so too (``read_picture``), not light on black."""
    if not is_light(background := dataset_background(images)):
        return None
    return (f"light backgrounds (its images' borders' median {background:g} of 255): pictures given to its runs are "
            "prepared dark on light, as its images are")


def _border_levels(images) -> np.ndarray:
    """Each image's border level, as ``_border_level`` reads a picture's: its edge pixels' median."""
    ring = _ring(np.asarray(images).transpose(1, 2, 0))  # [edge pixels, N]
    return np.median(ring, axis=0) if ring.size else np.zeros(0)


def _border_level(gray, inset: int = 0) -> float:
    """The background's grey level: the median of the edge pixels, ``inset`` in (robust to a
    garment that touches the edges)."""
    return float(np.median(_ring(np.asarray(gray, dtype=np.float32), inset)))
