"""How well are users' photos prepared? A classifier's accuracy on test images made to look
like photos, beside its accuracy on the raw test images, in one process.

Each test image becomes a "product photo": the garment drawn dark (its negative) and enlarged
10 times on a 400x360 light background, then given one flaw of a real photo: sensor noise, a
gradient of light, light falling off towards every edge (vignetting: the corners 10 or 20 %
darker), a textured background (a fine weave's, or a coarse blotchy one's), a speck of dust in a
corner, a thin dark frame, JPEG compression, a light garment on white, a white garment on blue, a
white shirt on light grey; or, where every answer should carry a note, an outline instead of a
filled garment, or two garments side by side (the image and the next, each half as wide, 6 pixels
apart; the accuracy is the left one's). Printed per condition: accuracy, the change from the raw
images, and how many answers carry a note (``Picture.caveats``).

The run may be one of Fashion-MNIST's images on another background (negated, dark garments on
white: ``255 - x``; on mid-grey: ``128 * (1 - x / 255)``): its raw images are its own test images,
its garments drawn from them, and its pictures are prepared as it prepares them
(``LoadedRun.read_pictures``: on its dataset's background level).

    .venv/bin/python benchmarks/pictures.py runs/.../clf-finetune-seed0 [--images 200] [--out DIR]
"""
import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

import fashionae
from fashionae.images import is_light


def photo(img: np.ndarray, flaw: str, rng: np.random.Generator) -> Image.Image:
    """A 28x28 test image as a photo of 400x360 with one flaw (two garments: drawn as one image
    by ``two_garments`` first)."""
    background, garment = (235.0,) * 3, 35.0
    if flaw == "light garment on white":
        background, garment = (250.0,) * 3, 215.0
    elif flaw == "white shirt on light grey":
        background, garment = (200.0,) * 3, 250.0
    elif flaw == "noise (sd 8) on pure white":
        background = (255.0,) * 3
    elif flaw == "light grey on white, 20 levels":
        background, garment = (245.0,) * 3, 225.0
    elif flaw == "blue background":
        background, garment = (40.0, 90.0, 200.0), 245.0
    alpha = np.asarray(Image.fromarray(img).resize((280, 280), Image.LANCZOS), dtype=np.float64) / 255
    if flaw == "outline":  # the garment's edge alone, 2 pixels wide
        mask = Image.fromarray((alpha > 0.2).astype(np.uint8) * 255)
        alpha = (np.asarray(mask.filter(ImageFilter.MaxFilter(5)), dtype=np.float64)
                 - np.asarray(mask, dtype=np.float64)) / 255
    a = np.empty((360, 400, 3))
    a[:] = background
    a[40:320, 60:340] = a[40:320, 60:340] * (1 - alpha[..., None]) + garment * alpha[..., None]
    if flaw == "noise (sd 4)":
        a += rng.normal(0, 4, a.shape)
    elif flaw in ("noise (sd 8)", "noise (sd 8) on pure white"):  # (on white: clipped at 255)
        a += rng.normal(0, 8, a.shape)
    elif flaw == "gradient of 30 levels":
        a += np.linspace(-15, 15, a.shape[1])[None, :, None]
    elif flaw == "speck in a corner":
        a[0, 0] = 200
    elif flaw == "dark frame, 2 px":
        a[:2], a[-2:], a[:, :2], a[:, -2:] = 0, 0, 0, 0
    elif flaw.startswith("vignetting"):  # a lamp's light on the whole photo: corners 10 % (20 %) darker
        a *= vignette(a.shape[:2], float(flaw.split()[1]) / 100)[..., None]
    elif flaw.startswith("textured background"):  # on the background alone, where the garment is not
        behind = np.ones(a.shape[:2])
        behind[40:320, 60:340] -= alpha
        a += (texture(a.shape[:2], *((1.2, 50) if flaw.endswith("fine") else (6, 120)), rng) * behind)[..., None]
    im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    if flaw == "white cut-out on transparent":  # a garment cut out of its photo: white, opaque where it is
        im = Image.fromarray(np.dstack([np.full((360, 400, 3), 245, np.uint8),
                                        (np.pad(alpha, ((40, 40), (60, 60))) * 255).round().astype(np.uint8)]), "RGBA")
    if flaw == "JPEG quality 50":
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=50)
        im = Image.open(io.BytesIO(buffer.getvalue()))
    return im


def texture(shape: tuple[int, int], grain: float, gain: float, rng: np.random.Generator) -> np.ndarray:
    """A fabric's or a board's texture: noise of sd 25 blurred over ``grain`` pixels (a Gaussian's
    radius: linen's fine weave at 1.2, a coarse blotchy one at 6), times ``gain`` / 25, about 0."""
    noise = np.clip(rng.normal(128, 25, shape), 0, 255).astype(np.uint8)
    return (np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(grain)), dtype=np.float64) - 128) * gain / 25


def vignette(shape: tuple[int, int], falloff: float) -> np.ndarray:
    """Light falling off from the centre: 1 - falloff * r^2, r the distance from the centre,
    1 at the corners."""
    y, x = np.ogrid[:shape[0], :shape[1]]
    r2 = (((y - (shape[0] - 1) / 2) ** 2 + (x - (shape[1] - 1) / 2) ** 2)
          / (((shape[0] - 1) / 2) ** 2 + ((shape[1] - 1) / 2) ** 2))
    return 1 - falloff * r2


FLAWS = ["none", "noise (sd 4)", "noise (sd 8)", "noise (sd 8) on pure white", "gradient of 30 levels",
         "vignetting 10 %", "vignetting 20 %", "textured background, fine", "textured background, coarse",
         "speck in a corner", "dark frame, 2 px", "JPEG quality 50", "light garment on white",
         "light grey on white, 20 levels", "white cut-out on transparent", "blue background", "white shirt on light grey",
         "outline", "two garments side by side"]


def two_garments(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two 28x28 images as one, side by side, 6 pixels apart, shrunk together to 28 wide (not
    ``images.side_by_side``, reconstruct's original | reconstruction picture)."""
    pair = np.concatenate([left, np.zeros((28, 6), np.uint8), right], axis=1)
    shrunk = np.asarray(Image.fromarray(pair).resize((28, 28 * 28 // pair.shape[1]), Image.LANCZOS))
    out = np.zeros((28, 28), np.uint8)
    top = (28 - shrunk.shape[0]) // 2
    out[top:top + shrunk.shape[0]] = shrunk
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a classifier run folder trained on Fashion-MNIST (or its images negated)")
    p.add_argument("--images", type=int, default=200, help="test images per condition (default 200)")
    p.add_argument("--out", help="keep the pictures here (default: a temporary folder)")
    a = p.parse_args()
    run = fashionae.load(a.run)
    ds = run.folder.load_data(verify=False)
    x, y = ds.test_images[:a.images].numpy(), ds.test_labels[:a.images].numpy()
    level = run.dataset_levels["background"]  # the dataset's background: 0 for Fashion-MNIST, 255 negated
    # each garment light on black (its alpha, drawn into the photos below), from its own background
    off = (level - x.astype(np.float64)) / level if is_light(level) else (x - level) / (255 - level)
    garments = np.clip(off * 255, 0, 255).round().astype(np.uint8)
    truth = [run.classes[i] for i in y]

    def accuracy(predicted: list[str]) -> float:
        return 100 * float(np.mean([p == t for p, t in zip(predicted, truth)]))
    raw = accuracy(run.predict(torch.from_numpy(x)))
    print(f"{a.run}: raw test images {raw:.1f} % ({a.images} images)")
    print(f"{'flaw':32} {'accuracy':>9} {'change':>8} {'notes':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.out or tmp)
        for flaw in FLAWS:
            rng = np.random.default_rng(0)
            folder = root / flaw.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
            folder.mkdir(parents=True, exist_ok=True)
            pictures = []
            for i, img in enumerate(garments):
                if flaw == "two garments side by side":
                    img = two_garments(img, garments[(i + 1) % len(x)])
                path = folder / f"{i}.png"
                photo(img, flaw, rng).save(path)
                pictures.append(path)
            pictures = list(run.read_pictures([str(path) for path in pictures]).values())
            acc = accuracy(run.predict(torch.stack([q.pixels for q in pictures])))
            notes = sum(bool(q.caveats) for q in pictures)
            print(f"{flaw:32} {acc:8.1f} % {acc - raw:+7.1f} {notes:6d}")


if __name__ == "__main__":
    main()
