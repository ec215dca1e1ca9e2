import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import fashionae
from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.images import prepare_image, read_picture, read_pictures
from fashionae.models import ModelConfig
from fashionae.runs import RunConfig, execute
from fashionae.training import TrainConfig
from helpers import ON_DEVICE, QUIET



def photo(path, size=(300, 400), mode="RGB"):
    """A dark 'trouser' shape on a white background, like a product photo."""
    im = Image.new(mode, size, "white")
    d = ImageDraw.Draw(im)
    w, h = size
    d.rectangle((w * 0.3, h * 0.1, w * 0.45, h * 0.9), fill=(40, 40, 90) if mode == "RGB" else 40)
    d.rectangle((w * 0.55, h * 0.1, w * 0.7, h * 0.9), fill=(40, 40, 90) if mode == "RGB" else 40)
    d.rectangle((w * 0.3, h * 0.1, w * 0.7, h * 0.25), fill=(40, 40, 90) if mode == "RGB" else 40)
    im.save(path)
    return path


def test_prepare_image_looks_like_fashion_mnist(tmp_path):
    x = prepare_image(photo(tmp_path / "p.png"))
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x[0, 0, 0] < 0.1 and x[0, 14, 14 - 4:14 + 4].max() > 0.5  # dark background, light garment
    assert x[0, :, 0].max() < 0.2 and x[0, :, 27].max() < 0.2  # centred: side columns are background
    assert x[0, 0].max() > 0.5  # trimmed: the longest edge spans the canvas
    jpg = prepare_image(photo(tmp_path / "p.jpg", size=(120, 90)))
    assert jpg.shape == (1, 28, 28)
    # auto negates a light-background photo and leaves a dark-background picture as it is
    assert torch.equal(x, prepare_image(tmp_path / "p.png", invert="yes"))
    dark = Image.eval(Image.open(tmp_path / "p.png"), lambda v: 255 - v)
    dark.save(tmp_path / "dark.png")
    assert torch.equal(prepare_image(tmp_path / "dark.png"), prepare_image(tmp_path / "dark.png", invert="no"))
    assert prepare_image(tmp_path / "dark.png")[0, 0, 0] == 0


def test_a_clean_photo_is_prepared_by_the_steps_the_docs_give(tmp_path):
    """On a plain white background, the prepared picture is, bit for bit, the steps written out:
    the object's box cropped, its longer side resized to 28 by Lanczos (a side of under a pixel
    kept as one), sharpened by an unsharp mask of radius 1, 100 %, threshold 0, centred on
    white, negated, and its light end stretched to white."""
    from PIL import ImageFilter, ImageOps

    def by_hand(a, top, bottom, left, right):
        im = Image.fromarray(a).convert("RGB").crop((left, top, right, bottom))
        scale = min(28 / im.width, 28 / im.height)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        im = im.filter(ImageFilter.UnsharpMask(radius=1, percent=100, threshold=0))
        canvas = Image.new("RGB", (28, 28), (255, 255, 255))
        canvas.paste(im, ((28 - im.width) // 2, (28 - im.height) // 2))
        g = np.asarray(ImageOps.invert(canvas.convert("L")), dtype=np.float32) / 255
        light = float(np.percentile(g[g > 0.05], 99))
        return torch.from_numpy(np.clip(g / light, 0, 1) if 0 < light < 1 else g).unsqueeze(0)
    shirt = np.full((140, 100), 255, np.uint8)
    shirt[20:120, 30:70] = 90
    shirt[20:60, 45:55] = 30
    shirt[90:120, 40:60] = 160
    line = np.full((300, 60), 255, np.uint8)
    line[10:290, 28:31] = 40  # 3 pixels wide: 0.28 once resized, kept as 1
    for name, a, box in (("shirt.png", shirt, (20, 120, 30, 70)), ("line.png", line, (10, 290, 28, 31)),
                         ("rule.png", line.T.copy(), (28, 31, 10, 290))):  # the line lying down
        Image.fromarray(a).save(tmp_path / name)
        picture = read_picture(tmp_path / name)
        assert picture.caveats == () and torch.equal(picture.pixels, by_hand(a, *box)), name


def test_bad_images(tmp_path):
    (tmp_path / "t.png").write_text("hello")
    (tmp_path / "e.png").write_bytes(b"")
    Image.new("1", (10_000, 5_000)).save(tmp_path / "huge.png")
    for name, message in (("t.png", "not an image fashionae can read .UnidentifiedImageError: it is damaged"),
                          ("e.png", "empty"), ("huge.png", r"too large \(10000x5000\); .*: resize it \(the model sees 28x28\)"),
                          ("absent.png", "does not exist")):
        with pytest.raises(UserError, match=message):
            prepare_image(tmp_path / name)
    # each message whole, on a model of 16 x 24 images; a picture over Pillow's own limit (89
    # million pixels) says so as one over ours does
    Image.new("1", (10_000, 9_000)).save(tmp_path / "bomb.png")
    for name, message in (
            ("t.png", f"{tmp_path / 't.png'} is not an image fashionae can read (UnidentifiedImageError: it is damaged, "
                      "truncated or of another kind); give a PNG or JPEG file"),
            ("huge.png", f"image {tmp_path / 'huge.png'} is too large (10000x5000); the limit is 40,000,000 pixels: "
                         "resize it (the model sees 24x16)"),
            ("bomb.png", f"image {tmp_path / 'bomb.png'} is too large (over 40,000,000 pixels): resize it (the model "
                         "sees 24x16)")):
        with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
            read_picture(tmp_path / name, size=(16, 24))


def test_a_damaged_tiff_says_what_libtiff_saw_in_its_one_line(tmp_path, capfd):
    """libtiff writes its complaint to the process's stderr, past Python: it went out before
    fashionae's error, a second line; now the error says it, and stderr is left as it was."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(tmp_path / "a.tif", compression="tiff_deflate")
    raw = bytearray((tmp_path / "a.tif").read_bytes())
    raw[20:200] = bytes(b ^ 0x55 for b in raw[20:200])  # the compressed pixels, after the 8-byte header
    (tmp_path / "bad.tif").write_bytes(bytes(raw))
    capfd.readouterr()
    with pytest.raises(UserError, match=r"bad.tif is not an image fashionae can read \(libtiff: [^\n]*Decod[^\n]*\); "
                                        r"give a PNG or JPEG file$"):
        prepare_image(tmp_path / "bad.tif")
    assert capfd.readouterr().err == ""
    assert prepare_image(tmp_path / "a.tif").shape == (1, 28, 28)  # a sound one is read
    print("stderr is back", file=sys.stderr)
    os.write(2, b"fd 2 too\n")
    assert capfd.readouterr().err == "stderr is back\nfd 2 too\n"


def test_a_damaged_exif_block_is_a_note_or_the_errors_reason_never_a_printed_warning(tmp_path, capfd):
    """Pillow warns of a damaged EXIF block (two lines of its own on stderr, before the answer):
    on a picture that loads it is a note (its rotation may be lost), on one that does not the
    error's reason. The warnings' filters are the process's: changed by the main thread alone,
    and left as they were; Pillow's other warnings (an APNG's) are not taken for a damaged EXIF."""
    import struct
    import warnings
    rng = np.random.default_rng(0)
    pixels = Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8))
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 3) + b"\x12\x01\x03\x00"  # 3 entries, 4 bytes of one
    pixels.save(tmp_path / "exif.jpg", exif=exif)
    pixels.save(tmp_path / "a.tif")
    (tmp_path / "cut.tif").write_bytes((tmp_path / "a.tif").read_bytes()[:100])  # its directory cut short
    capfd.readouterr()
    filters, shown = list(warnings.filters), warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none escapes
        caveats = read_picture(tmp_path / "exif.jpg").caveats
        with pytest.raises(UserError, match=r"cut.tif is not an image fashionae can read \(Pillow: Corrupt EXIF data\. "
                                            r"Expecting to read 12 bytes but only got \d+\); give a PNG or JPEG file$"):
            read_picture(tmp_path / "cut.tif")
    assert caveats[0] == ("its EXIF metadata is damaged, so a rotation it records may not be applied; Pillow says: "
                          "Corrupt EXIF data. Expecting to read 12 bytes but only got 4")
    assert capfd.readouterr().err == ""
    assert not any("EXIF" in c for c in read_picture(tmp_path / "a.tif").caveats)
    assert warnings.filters == filters and warnings.showwarning is shown
    # in a thread: Pillow's own warning, the picture as Pillow reads it, the filters untouched
    assert len(in_threads(lambda: read_picture(tmp_path / "exif.jpg"), 3, 10)) == 30
    assert warnings.filters == filters and warnings.showwarning is shown
    with pytest.warns(UserWarning, match="still said"):
        warnings.warn("still said")
    with pytest.warns(UserWarning, match="APNG"):  # not a damaged EXIF, nor refused: Pillow's warning as it is
        apng = tmp_path / "a.png"
        pixels.save(apng)
        raw = apng.read_bytes()
        import zlib
        body = b"acTL" + struct.pack(">II", 0, 0)
        chunk = struct.pack(">I", 8) + body + struct.pack(">I", zlib.crc32(body))
        apng.write_bytes(raw[:33] + chunk + raw[33:])  # after IHDR: an animation of no frames
        assert not any("EXIF" in c for c in read_picture(apng).caveats)


def in_threads(read, threads: int, each: int) -> list:
    """What ``read()`` gives, called ``each`` times in each of ``threads`` threads at once."""
    import threading
    got = []
    running = [threading.Thread(target=lambda: got.extend(read() for _ in range(each))) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return got


def test_tiffs_read_from_threads_or_without_a_stderr_are_read_and_leave_stderr_as_it_was(tmp_path, capfd,
                                                                                         monkeypatch):
    """fd 2 is the process's: two threads swapping it at once left it on a deleted file (every
    later line of the process lost), so it is swapped by the main thread alone; and with no
    stderr (sys.stderr None, as Python starts with fd 2 closed) a TIFF was an internal error, where
    a PNG is read."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1500, 1500), dtype=np.uint8)).save(tmp_path / "a.tif",
                                                                           compression="tiff_deflate")
    expected = prepare_image(tmp_path / "a.tif")
    got = in_threads(lambda: prepare_image(tmp_path / "a.tif"), 2, 6)
    assert len(got) == 12 and all(torch.equal(g, expected) for g in got)
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"
    monkeypatch.setattr(sys, "stderr", None)
    assert torch.equal(prepare_image(tmp_path / "a.tif"), expected)


def test_a_datasets_border_is_the_level_99_percent_of_its_images_borders_are_within():
    """Each image's border: the median of its edge pixels (as a picture's is read); the dataset's:
    their 99th percentile, to a tenth, but no further above their median than FAINT (12.75 of
    255), so that images whose object fills the frame do not count, however many; where the median
    is light (dark garments on white), the same from white: the level down to which."""
    from fashionae.images import dataset_background, dataset_border
    images = np.zeros((200, 10, 12), np.uint8)
    assert dataset_border(images) == dataset_background(images) == 0.0
    assert dataset_border(images[:0]) == dataset_background(images[:0]) == 0.0
    images[:, 0, :] = images[:, -1, :] = 30  # the top and bottom rows: 24 of the ring's 44 pixels, so its median
    assert dataset_border(images) == dataset_background(images) == 30.0
    images[:, :, 0] = images[:, :, -1] = 10  # the columns and the corners: 24 of the 44
    assert dataset_border(images) == 10.0
    noisy = np.arange(200, dtype=np.uint8)[:, None, None] // 10 + np.zeros((1, 10, 12), np.uint8)  # borders 0 to 19
    assert dataset_background(noisy) == 9.5 and dataset_border(noisy) == round(float(np.percentile(
        np.arange(200) // 10, 99)), 1) == 19.0
    assert dataset_border(torch.from_numpy(noisy[::-1].copy())) == 19.0  # a tensor as the splits hold it; any order
    filled = np.zeros((200, 10, 12), np.uint8)
    filled[:4] = 200  # 2 % of black images whose object fills the frame: the 99th percentile is theirs
    assert float(np.percentile(np.median(filled.reshape(200, -1), axis=1), 99)) == 200
    assert dataset_border(filled) == 12.8  # (FAINT above the median: no picture up to 200 taken as it is)
    assert dataset_background(255 - filled) == 255.0 and dataset_border(255 - filled) == 242.2  # (255 - 12.8)
    assert dataset_background(255 - noisy) == 245.5 and dataset_border(255 - noisy) == 236.0  # (255 - 19)


def test_a_picture_in_the_datasets_form_is_taken_as_it_is(tmp_path):
    """A dataset image saved as a PNG comes back as the dataset holds it (preparing it again,
    trimmed and sharpened, raised an autoencoder's MSE from 0.018 to 0.031)."""
    from helpers import synthetic_images
    pixels = synthetic_images(3, seed=0)[0]
    pixels[pixels < 40] = 0  # a black background, as Fashion-MNIST's
    for i, p in enumerate(pixels):
        Image.fromarray(p.numpy(), "L").save(tmp_path / f"{i}.png")
        assert torch.equal(prepare_image(tmp_path / f"{i}.png"), p.float().div(255).unsqueeze(0))
    from fashionae.images import read_picture
    assert read_picture(tmp_path / "0.png").caveats == ()
    told = read_picture(tmp_path / "0.png", fill=0.5)  # an option given that does nothing here is said
    assert torch.equal(told.pixels, prepare_image(tmp_path / "0.png")) and told.caveats == (
        "it is already in the dataset's form (28x28, dark background), so it is taken as it is: --fill 0.5 is not "
        "applied",)
    assert not torch.equal(prepare_image(tmp_path / "0.png", invert="yes"), prepare_image(tmp_path / "0.png"))  # told
    full = np.zeros((16, 24), np.uint8)  # a garment up to a pixel from each edge: the edge is the border
    full[1:-1, 1:-1] = 200
    Image.fromarray(full).save(tmp_path / "full.png")
    told = read_picture(tmp_path / "full.png", size=(16, 24), fill=0.5)
    assert torch.equal(told.pixels, torch.from_numpy(full).float().div(255).unsqueeze(0)) and told.caveats == (
        "it is already in the dataset's form (24x16, dark background), so it is taken as it is: --fill 0.5 is not "
        "applied",)
    for background, as_it_is in ((12, True), (13, False)):  # a dark background: up to FAINT (12.75 of 255)
        lifted = pixels[0].clone()
        lifted[lifted < 40] = background
        Image.fromarray(lifted.numpy(), "L").save(tmp_path / "lifted.png")
        assert torch.equal(prepare_image(tmp_path / "lifted.png"), lifted.float().div(255).unsqueeze(0)) == as_it_is
        # prepared as a photo, never silently: it may be one of a dataset whose background is not black
        assert read_picture(tmp_path / "lifted.png").caveats == (() if as_it_is else (
            "it has the model's size (28x28) and is grey, but its border (13 of 255) is lighter than the dataset's "
            "images' (12.75 at most), so it is prepared as a photo (trimmed, centred); if it is one of the run's "
            "dataset's own images, its pixels given as an array from Python are taken as they are",))
    for background, noted in ((127, True), (128, False)):  # a dark border: at most 127 (128 and up: negated)
        grey = np.full((28, 28), background, np.uint8)
        grey[6:22, 10:18] = 255 if noted else 0
        Image.fromarray(grey).save(tmp_path / "grey.png")
        assert any("the model's size" in c for c in read_picture(tmp_path / "grey.png").caveats) == noted
    rng = np.random.default_rng(0)  # a faint noisy background, and an object from the top edge to the bottom
    bar = rng.integers(0, 26, (20, 36)).astype(np.uint8)
    bar[:, 9:18] = 200
    Image.fromarray(bar).save(tmp_path / "bar.png")
    told = read_picture(tmp_path / "bar.png", size=(20, 36))
    assert told.caveats[0].startswith("it has the model's size (36x20) and is grey, but its border (")
    Image.fromarray(bar).convert("RGB").resize((72, 40)).save(tmp_path / "bar-big.png")  # a photo's size: no such note
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(tmp_path / "light.png")  # light: a photo's, negated
    for other in ("bar-big.png", "light.png"):
        assert not any("the model's size" in c for c in read_picture(tmp_path / other, size=(20, 36) if other ==
                                                                     "bar-big.png" else (28, 28)).caveats)
    assert not any("the model's size" in c for c in read_picture(tmp_path / "bar.png", "yes", (20, 36)).caveats)
    # of a dataset whose images' borders are as light (its run records their level): taken as it is
    level = float(np.median(np.concatenate([bar[0], bar[-1], bar[:, 0], bar[:, -1]])))
    for border, as_it_is in ((level, True), (level - 0.5, False)):
        told = read_picture(tmp_path / "bar.png", size=(20, 36), dataset_border=border)
        assert torch.equal(told.pixels, torch.from_numpy(bar).float().div(255).unsqueeze(0)) == as_it_is
        assert (told.caveats == ()) == as_it_is
    assert read_picture(tmp_path / "bar.png", size=(20, 36), dataset_border=level - 0.5).caveats[0].startswith(
        f"it has the model's size (36x20) and is grey, but its border ({level:g} of 255) is lighter than the "
        f"dataset's images' ({level - 0.5:g} at most)")
    light = np.array(Image.open(tmp_path / "light.png"))  # a light border is a photo's, whatever the dataset's
    assert not torch.equal(read_picture(tmp_path / "light.png", dataset_border=255).pixels,
                           torch.from_numpy(light).float().div(255).unsqueeze(0))
    Image.fromarray(pixels[0].numpy(), "L").resize((56, 56)).save(tmp_path / "big.png")  # another size: prepared
    assert not torch.equal(prepare_image(tmp_path / "big.png"), pixels[0].float().div(255).unsqueeze(0))


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    upright = Image.open(photo(tmp_path / "upright.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: stored turned 90 degrees, shown upright
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright.save(tmp_path / "upright.jpg", quality=95)
    a, b = prepare_image(tmp_path / "upright.jpg"), prepare_image(tmp_path / "phone.jpg")
    assert (a - b).abs().mean() < 0.02  # the same picture, up to JPEG's losses
    assert (a - prepare_image(tmp_path / "upright.png").rot90(1, (1, 2))).abs().mean() > 0.1  # which sideways is not


def test_a_16_bit_picture_is_scaled_not_clipped(tmp_path):
    """Pillow clips 16-bit grey levels to 255 when it converts: the picture would come out blank."""
    import numpy as np
    Image.open(photo(tmp_path / "p.png")).convert("L").save(tmp_path / "p8.png")
    levels = np.asarray(Image.open(tmp_path / "p8.png"), dtype=np.uint16) * 257  # 0-255 -> 0-65535
    Image.fromarray(levels).save(tmp_path / "p16.png")
    assert Image.open(tmp_path / "p16.png").mode.startswith("I")
    x = prepare_image(tmp_path / "p16.png")
    assert x.max() > 0.5 and torch.equal(x, prepare_image(tmp_path / "p8.png"))
    assert read_picture(tmp_path / "p16.png").caveats == read_picture(tmp_path / "p8.png").caveats
    # 8-bit levels in a 16-bit file come out faint (here as a dataset image, not blank): the answer says so
    square = np.zeros((28, 28), np.uint16)
    square[8:20, 8:20] = 255 * 16
    Image.fromarray(square).save(tmp_path / "p12.png")
    picture = read_picture(tmp_path / "p12.png")
    assert 0.05 < picture.pixels.max() < 0.07 and picture.caveats == (
        "its levels reach only 4080 of the 16-bit range's 65535, so it comes out faint or coarse; if it holds "
        "12-bit (or fewer) levels, save it as an 8-bit picture",)
    # 12 bits are levels under 4096
    for top, said in ((4095, True), (4096, False)):
        square[8:20, 8:20] = top
        Image.fromarray(square).save(tmp_path / "top.png")
        assert any("16-bit range" in c for c in read_picture(tmp_path / "top.png").caveats) == said, top
    # each 16-bit level rounds to the nearest 8-bit one (65535 is 255 x 257): 257 x 200 + 129 is 200.502
    square[8:20, 8:20] = 257 * 200 + 129
    Image.fromarray(square).save(tmp_path / "half.png")
    assert read_picture(tmp_path / "half.png").pixels[0, 10, 10] == torch.tensor(201 / 255, dtype=torch.float32)
    # a photo in 12-bit levels: its light background comes out dark, and kept as it is the object
    # would be lost; "auto" negates it after all (the object must end lighter), and the note stays
    Image.fromarray((levels // 257 * 16).astype(np.uint16)).save(tmp_path / "photo12.png")
    assert read_picture(tmp_path / "photo12.png").caveats == (
        "its levels reach only 4080 of the 16-bit range's 65535, so it comes out faint or coarse; if it holds "
        "12-bit (or fewer) levels, save it as an 8-bit picture",)
    # told to keep it as it is, it is lost, and the note that says so keeps the one that says why
    assert read_picture(tmp_path / "photo12.png", invert="no").caveats == (
        "its levels reach only 4080 of the 16-bit range's 65535, so it comes out faint or coarse; if it holds "
        "12-bit (or fewer) levels, save it as an 8-bit picture",
        "most of the object is darker than its background once kept as it is, so it is lost; try --invert yes")


def test_a_floating_point_picture_is_read_by_its_range(tmp_path):
    """Mode "F" (a float TIFF): levels 0-1 are scaled, as 0-255 are read, not clipped to black."""
    import numpy as np
    Image.open(photo(tmp_path / "p.png")).convert("L").save(tmp_path / "p8.png")
    levels = np.asarray(Image.open(tmp_path / "p8.png"), dtype=np.float32)
    for name, scale in (("unit.tiff", 1 / 255), ("byte.tiff", 1.0)):
        Image.fromarray(levels * scale, "F").save(tmp_path / name)
        assert Image.open(tmp_path / name).mode == "F"
        assert torch.equal(prepare_image(tmp_path / name), prepare_image(tmp_path / "p8.png")), name
        assert read_picture(tmp_path / name).caveats == (), name  # (no 16-bit range to fall short of)
    Image.fromarray(levels / 255 * 2, "F").save(tmp_path / "dark.tiff")  # levels to 2: 0-255, not 0-1
    assert read_picture(tmp_path / "dark.tiff").caveats == ("blank or nearly so once prepared: the answer says nothing",)
    Image.fromarray(levels * 1000, "F").save(tmp_path / "wide.tiff")
    with pytest.raises(UserError, match=r"wide.tiff has grey levels outside 0-255; save it as an 8- or 16-bit"):
        prepare_image(tmp_path / "wide.tiff")


def test_a_device_is_no_picture(tmp_path):
    with pytest.raises(UserError, match=r"^image /dev/null is not a regular file \(a device or a pipe\); give a "
                                        "picture file$"):
        prepare_image("/dev/null")


@pytest.fixture
def runs(tiny, tmp_path):
    t = TrainConfig(epochs=1, batch_size=50, train_subset=400, eval_subset=200, **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(latent=16), train=t), tmp_path / "ae", data=tiny, **QUIET)
    execute(RunConfig(model=ModelConfig(task="classifier", latent=16), train=t, strategy="finetune",
                      encoder_run=str(tmp_path / "ae")), tmp_path / "clf", data=tiny, **QUIET)
    return tmp_path / "ae", tmp_path / "clf"


def test_reconstruct_and_classify_commands_match_the_python_api(runs, tmp_path, capsys):
    ae, clf = runs
    img = photo(tmp_path / "mine.png")
    assert main(["reconstruct", str(ae), str(img), "-o", str(tmp_path / "out")]) == 0
    printed = float(re.search(r"MSE ([0-9.]+)", capsys.readouterr().out).group(1))
    assert Image.open(tmp_path / "out" / "mine_reconstruction.png").size == (58 * 8, 28 * 8)
    run = fashionae.load(ae)
    x = run.read_pictures([str(img)])[str(img)].pixels  # (on its dataset's background: the noise's median)
    assert 0 < x[0, 0, 0] < 0.1 and torch.equal(x, prepare_image(img) * (1 - x[0, 0, 0]) + x[0, 0, 0])
    assert abs(torch.mean((run.reconstruct(x) - x) ** 2).item() - printed) < 1e-5
    assert run.embed(x).shape == (1, 16)
    # another reconstruction over it is refused, and nothing written, unless --force
    before = (tmp_path / "out" / "mine_reconstruction.png").read_bytes()
    assert main(["reconstruct", str(ae), str(img), "-o", str(tmp_path / "out"), "--fill", "0.6"]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: {tmp_path / 'out' / 'mine_reconstruction.png'} already "
                                       "exists with other contents; nothing was written: choose another output, or "
                                       "pass --force to replace it\n")
    assert (tmp_path / "out" / "mine_reconstruction.png").read_bytes() == before
    assert main(["reconstruct", str(ae), str(img), "-o", str(tmp_path / "out"), "--fill", "0.6", "--force"]) == 0
    printed = float(re.search(r"MSE ([0-9.]+)", capsys.readouterr().out).group(1))
    run.fill = 0.6
    x = run.read_pictures([str(img)])[str(img)].pixels
    assert abs(torch.mean((run.reconstruct(x) - x) ** 2).item() - printed) < 1e-5
    # a bad value is refused where it is set, in Python's words, and the run keeps its own
    for name, bad in (("fill", 0), ("fill", None), ("invert", "yes!")):
        with pytest.raises(UserError, match=rf"^run\.{name} must be "):
            setattr(run, name, bad)
    assert (run.fill, run.invert) == (0.6, "auto")
    assert main(["classify", str(clf), str(img), "--fill", "1.2"]) == 2
    assert capsys.readouterr().err.startswith("fashionae: error: --fill must be above 0 and at most 1")

    assert main(["classify", str(clf), str(img)]) == 0
    line = capsys.readouterr().out
    ranked = re.findall(r"([A-Za-z/ -]+?) ([0-9.]+)%", line.split(": ", 1)[1])
    assert len(ranked) == 3
    probs = [float(p) for _, p in ranked]
    assert probs == sorted(probs, reverse=True)
    api = fashionae.load(clf)
    assert api.predict(img)[0] == ranked[0][0].strip(", ")
    assert abs(api.predict_proba(img)[0].max().item() * 100 - probs[0]) < 0.06

    assert "blank" not in line
    Image.new("RGB", (50, 60), (200, 30, 30)).save(tmp_path / "red.png")
    noise = np.random.default_rng(0).normal(250, 2, (60, 60)).clip(0, 255).astype(np.uint8)  # a scanned blank page
    Image.fromarray(noise, "L").save(tmp_path / "page.png")
    assert main(["classify", str(clf), str(tmp_path / "red.png"), str(tmp_path / "page.png")]) == 0
    notes = capsys.readouterr().out.splitlines()
    assert len(notes) == 2 and all(n.endswith("% (blank or nearly so once prepared: the answer says nothing)")
                                   for n in notes)  # and nothing else: a blank picture's background is moot
    tiny = photo(tmp_path / "tiny.png", size=(9, 12))  # trousers of 5x10 pixels
    assert main(["reconstruct", str(ae), str(tiny), "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        "tiny_reconstruction.png (the object is only 5x10 pixels, enlarged 2.8x: blurred; give a larger picture)")

    # a folder stands for the pictures in it, by name; one without pictures is refused
    album = tmp_path / "album"
    album.mkdir()
    for name in ("b.PNG", "a.jpg", "C.png"):
        photo(album / name)
    (album / "notes.txt").write_text("not a picture")
    assert main(["classify", str(clf), str(album), str(img)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(album / n) for n in ("a.jpg", "b.PNG", "C.png")] + [str(img)]
    assert main(["classify", str(clf), str(album / "b.PNG"), str(album)]) == 0  # b.PNG named twice: answered once
    out, err = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.splitlines()] == [str(album / n) for n in ("b.PNG", "a.jpg", "C.png")]
    assert err == (f"note: {album / 'b.PNG'} (2 times) named more than once (by its folder, a link or another "
                   "spelling): each picture is answered once, under the name given first\n")
    spelled = str(album / ".." / album.name / "b.PNG")  # named after its folder: where the folder has it, as spelled
    assert main(["classify", str(clf), str(album), spelled]) == 0
    assert [line.split(": ")[0] for line in capsys.readouterr().out.splitlines()] == [
        str(album / "a.jpg"), spelled, str(album / "C.png")]
    (album / "d.png").write_text("not a picture either")
    (album / "e.png").write_bytes(b"")
    assert main(["classify", str(clf), str(album)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # every picture is read before a line is printed
    # and those that cannot be are named together, in one line: one try to clear a folder, not one per file
    assert err.startswith(f"fashionae: error: 2 of the 5 pictures cannot be used, so none is answered: {album / 'd.png'} "
                          "is not an image fashionae can read (UnidentifiedImageError: ")
    assert err.endswith(f"; image {album / 'e.png'} is empty. Fix or remove them, or name only the others\n")
    assert err.count("\n") == 1
    (album / "d.png").unlink(), (album / "e.png").unlink()

    # reconstructions written into the folder they come from are not read again as pictures, by
    # either command; one picture named twice is reconstructed once
    for _ in range(2):
        assert main(["reconstruct", str(ae), str(album), str(album / "a.jpg"), "-o", str(album)]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 3
    assert sorted(p.name for p in album.glob("*_reconstruction.png")) == [
        "C_reconstruction.png", "a_reconstruction.png", "b_reconstruction.png"]
    assert main(["classify", str(clf), str(album)]) == 0
    assert [line.split(": ")[0] for line in capsys.readouterr().out.splitlines()] == [
        str(album / n) for n in ("a.jpg", "b.PNG", "C.png")]
    assert main(["classify", str(clf), str(album / "a_reconstruction.png")]) == 0  # named: read
    assert capsys.readouterr().out.startswith(f"{album / 'a_reconstruction.png'}: ")
    # a folder of nothing but such reconstructions: nothing to do, and said so
    only = tmp_path / "only"
    only.mkdir()
    (only / "a_reconstruction.png").write_bytes((album / "a_reconstruction.png").read_bytes())
    (tmp_path / "kept.png").write_bytes(img.read_bytes())  # a folder of them beside a picture: left out
    assert main(["classify", str(clf), str(only), str(tmp_path / "kept.png")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'kept.png'}: ")
    for command, run in (("reconstruct", ae), ("classify", clf)):
        assert main([command, str(run), str(only), "-o", str(only)][:None if command == "reconstruct" else 3]) == 2
        assert capsys.readouterr().err == (f"fashionae: error: {only} holds only reconstructions written by fashionae "
                                           "reconstruct (*_reconstruction.png), no pictures to read; name the "
                                           "pictures, or name those files to read them anyway\n")
    # a folder where a reconstruction would be written: refused before anything is written
    blocked = tmp_path / "blocked"
    (blocked / "b_reconstruction.png").mkdir(parents=True)
    assert main(["reconstruct", str(ae), str(album / "a.jpg"), str(album / "b.PNG"), "-o", str(blocked)]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: {blocked / 'b_reconstruction.png'} is a folder (or not a "
                                       "file), where a file would be written; nothing was written: move it, or "
                                       "choose another output\n")
    assert [p.name for p in blocked.iterdir()] == ["b_reconstruction.png"]
    spelled_otherwise = str(album / ".." / album.name)  # the same folder, another path to it
    assert main(["reconstruct", str(ae), str(album), "-o", spelled_otherwise]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert len(list(album.glob("*_reconstruction.png"))) == 3
    (tmp_path / "empty").mkdir()
    assert main(["reconstruct", str(ae), str(tmp_path / "empty")]) == 2
    assert f"{tmp_path / 'empty'} is a folder without pictures (.png, " in capsys.readouterr().err
    # hidden files (a Mac's ._ files beside a copy) are not pictures of the folder; subfolders are not searched
    mac = tmp_path / "from-a-mac"
    (mac / "sub").mkdir(parents=True)
    shutil.copy(album / "a.jpg", mac / "sub" / "a.jpg")
    (mac / "._a.jpg").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    assert main(["classify", str(clf), str(mac)]) == 2
    assert capsys.readouterr().err.endswith(" (its subfolders are not searched and its hidden files are skipped: name "
                                            "them); give picture files, or a folder of them\n")
    shutil.copy(album / "a.jpg", mac / "a.jpg")
    assert main(["classify", str(clf), str(mac)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{mac / 'a.jpg'}: ") and len(out.splitlines()) == 1
    (mac / "two\nlines.jpg").write_bytes((album / "a.jpg").read_bytes())  # a newline in a name: its answer in one line
    assert main(["classify", str(clf), str(mac / "two\nlines.jpg")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(repr(str(mac / "two\nlines.jpg")) + ": ") and len(out.splitlines()) == 1
    assert main(["reconstruct", str(ae), str(mac / "two\nlines.jpg"), "-o", str(tmp_path / "two")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(repr(str(mac / "two\nlines.jpg")) + ": MSE ") and len(out.splitlines()) == 1
    (mac / "two\nlines.jpg").unlink()
    (mac / "gone.jpg").symlink_to(tmp_path / "moved-away.jpg")  # a link to a picture moved away: said, not skipped
    assert main(["classify", str(clf), str(mac)]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: 1 of the 2 pictures cannot be used, so none is answered: "
                                       f"image {mac / 'gone.jpg'} is a link to {tmp_path / 'moved-away.jpg'}, which "
                                       "does not exist. Fix or remove them, or name only the others\n")
    (mac / "loop-a.png").symlink_to(mac / "loop-b.png")  # links in a loop: said with the others (a stop alone before)
    (mac / "loop-b.png").symlink_to(mac / "loop-a.png")
    assert main(["classify", str(clf), str(mac)]) == 2
    assert capsys.readouterr().err == (
        f"fashionae: error: 3 of the 4 pictures cannot be used, so none is answered: image {mac / 'gone.jpg'} is a link "
        f"to {tmp_path / 'moved-away.jpg'}, which does not exist; image {mac / 'loop-a.png'} is a link to "
        f"{mac / 'loop-b.png'}, which leads round a loop of links to no file; link it to the picture file; image "
        f"{mac / 'loop-b.png'} is a link to {mac / 'loop-a.png'}, which leads round a loop of links to no file; link "
        "it to the picture file. Fix or remove them, or name only the others\n")

    # the wrong kind of run, or a non-image: one line, exit 2
    assert main(["classify", str(ae), str(img)]) == 2
    assert "is an autoencoder run; predicting classes needs a classifier run" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not a picture")
    assert main(["reconstruct", str(ae), str(tmp_path / "notes.txt")]) == 2
    assert "not an image" in capsys.readouterr().err


def test_a_reconstruction_of_a_picture_with_a_long_name_gets_a_name_a_file_system_takes(tmp_path):
    """NAME_reconstruction.png up to 255 bytes as it is; past them, NAME cut (whole characters)
    with a hash of the whole NAME, so two long names that begin alike stay two files."""
    from fashionae.picturefiles import reconstruction_files
    names = ["a" * 236 + ".png", "a" * 237 + ".png", "a" * 243 + "é1.png", "a" * 243 + "é2.png", "b" * 242 + ".jpg"]
    for name in names:
        Image.new("L", (28, 28), 128).save(tmp_path / name)
    targets = {Path(source).name: target.name for target, source in reconstruction_files([str(tmp_path)],
                                                                                        tmp_path / "out").items()}
    assert targets["a" * 236 + ".png"] == "a" * 236 + "_reconstruction.png"  # 255 bytes: as it is
    cut = [targets[n] for n in names[1:]]
    assert all(len(os.fsencode(t)) <= 255 and t.endswith("_reconstruction.png") for t in cut)
    assert len(set(cut)) == 4 and cut[1].startswith("a" * 220) and re.fullmatch(r"a+~[0-9a-f]{8}_reconstruction.png",
                                                                                cut[1])
    assert len(os.fsencode(cut[0])) == len(os.fsencode(cut[3])) == 255  # as much of each name as fits
    for target in cut:  # each one a file that can be written
        (tmp_path / target).write_bytes(b"")


def test_a_picture_says_what_makes_its_answer_doubtful(tmp_path):
    """A product photo on a plain background gives no caveat; a garment of a few pixels, a
    background lit unevenly, or one of mid-grey each give theirs, and only when they apply."""
    assert read_picture(photo(tmp_path / "p.png")).caveats == ()
    assert read_picture(photo(tmp_path / "small.png", size=(12, 16))).caveats == ()  # 6x14: enlarged 2x, at the limit
    assert read_picture(photo(tmp_path / "tiny.png", size=(9, 12))).caveats == (
        "the object is only 5x10 pixels, enlarged 2.8x: blurred; give a larger picture",)

    trousers = np.asarray(Image.open(tmp_path / "p.png")).astype(np.float32)
    lamp = np.linspace(0.55, 1.0, trousers.shape[1])[None, :, None]  # light falling off to the left
    Image.fromarray((trousers * lamp).astype(np.uint8)).save(tmp_path / "lamp.png")
    lit = read_picture(tmp_path / "lamp.png")  # the light evened out before the trim; its corners said as taken
    (caveat,) = lit.caveats
    assert caveat.startswith("its corners range from 142 to 252 of 255: an uneven background")
    assert (lit.pixels - read_picture(tmp_path / "p.png").pixels).abs().mean() < 0.01
    Image.fromarray((trousers * 0.97).astype(np.uint8)).save(tmp_path / "dim.png")  # even, only dimmer
    assert read_picture(tmp_path / "dim.png").caveats == ()
    h, w = trousers.shape[:2]
    for rows in (slice(0, h // 5), slice(h - h // 5, h)):  # each corner in its turn, in shadow
        for cols in (slice(0, w // 5), slice(w - w // 5, w)):
            shadowed = trousers.copy()
            shadowed[rows, cols] = 120
            Image.fromarray(shadowed.astype(np.uint8)).save(tmp_path / "corner.png")
            assert read_picture(tmp_path / "corner.png").caveats[0].startswith("its corners range from 120 to 255")

    grey = trousers.copy()
    grey[(trousers == 255).all(2)] = 128
    Image.fromarray(grey.astype(np.uint8)).save(tmp_path / "grey.png")
    # mid-grey: the border cannot say whether to negate, the object can (it must end lighter)
    assert read_picture(tmp_path / "grey.png").caveats == () and read_picture(tmp_path / "grey.png").pixels.max() > 0.5
    assert read_picture(tmp_path / "grey.png", invert="yes").caveats == ()  # the user has said
    assert read_picture(tmp_path / "corner.png", invert="auto").caveats[0].startswith("its corners range")
    grey[(trousers == 255).all(2)] = 200  # light enough to say
    Image.fromarray(grey.astype(np.uint8)).save(tmp_path / "light.png")
    assert read_picture(tmp_path / "light.png").caveats == ()


def test_an_uneven_mid_grey_background_says_the_negation_is_a_guess_under_auto_only(tmp_path):
    """On an uneven background the object cannot settle the negation, so a mid-grey border
    (between 30 % and 70 % of the range, both ends excluded) says it is a guess, under auto; not
    under yes or no, and not on a dark or a light background."""
    from fashionae.images import _mid_grey
    trousers = np.asarray(Image.open(photo(tmp_path / "p.png"))).astype(np.float32)
    h, w = trousers.shape[:2]
    uneven = "its corners range from {} to {} of 255: an uneven background, or an object touching them; crop it " \
             "with a plain margin around the object"
    for background, corner in ((128, 30), (40, 120), (200, 60)):
        grey = trousers.copy()
        grey[(trousers == 255).all(2)] = background
        grey[:h // 5, :w // 5] = corner  # a corner in shadow (or lit)
        Image.fromarray(grey.astype(np.uint8)).save(tmp_path / "uneven.png")
        said = (uneven.format(*sorted((background, corner))),)
        guess = ("its background is mid-grey (128 of 255), so whether to negate it is a guess; say --invert yes or no",)
        assert read_picture(tmp_path / "uneven.png").caveats == said + guess * (background == 128)
        assert read_picture(tmp_path / "uneven.png", invert="yes").caveats == said
        assert read_picture(tmp_path / "uneven.png", invert="no").caveats == said
    # the bounds (a border's level is a median of bytes: a whole or a half)
    assert [_mid_grey(level, "auto") is not None for level in (76.5, 77, 178, 178.5, 179)] == [False, True, True,
                                                                                                 False, False]


def test_garments_apart_from_one_another_are_said_to_be_several(tmp_path):
    """Two or three garments side by side are boxed as one: the note says how many and to crop.
    Parts close together (a sandal's straps), or a small part apart (a tag), are one object."""
    def caveats(name, boxes, size=(400, 300)):
        return read_picture(drawn(tmp_path / name, boxes, size)).caveats
    assert caveats("two.png", [(40, 60, 170, 240), (230, 60, 360, 240)]) == (
        "the picture holds 2 objects apart from one another, which are boxed and shrunk together; the models know "
        "one garment a picture: crop to one",)
    assert caveats("three.png", [(20, 60, 120, 240), (150, 60, 250, 240), (280, 60, 380, 240)])[0].startswith(
        "the picture holds 3 objects apart")
    assert caveats("large.png", [(400, 600, 1700, 2400), (2300, 600, 3600, 2400)], size=(4000, 3000))[0].startswith(
        "the picture holds 2 objects apart")  # judged on a coarser grid, alike
    assert caveats("straps.png", [(40 + 30 * i, 60, 64 + 30 * i, 240) for i in range(10)]) == ()  # 2 % apart
    assert caveats("tag.png", [(40, 60, 300, 240), (330, 60, 350, 100)]) == ()  # 1.4 % of the box
    assert caveats("small second.png", [(40, 60, 300, 240), (330, 60, 360, 240)]) == ()  # 9.6 % of it
    # the tag, 1.8 % of the content, is no speck: it stays in the box
    assert not torch.equal(read_picture(tmp_path / "tag.png").pixels,
                           read_picture(drawn(tmp_path / "untagged.png", [(40, 60, 300, 240)])).pixels)


def test_parts_a_few_hundredths_apart_are_one_object_on_a_long_box_too(tmp_path):
    """Two large parts (each over a tenth of the box) a few hundredths of its longer side apart
    (a slide's two straps, a belt's buckle) are one object: each part is grown by OBJECTS_APART of
    the longer side, on a long box as on a square one; a tenth apart, they are two."""
    def caveats(name, boxes, size=(400, 300)):
        return read_picture(drawn(tmp_path / name, boxes, size)).caveats
    assert caveats("straps.png", [(50, 60, 230, 240), (245, 60, 449, 240)], size=(500, 300)) == ()  # 4 % apart
    assert caveats("belt.png", [(50, 40, 339, 140), (360, 40, 649, 140)], size=(700, 180)) == ()  # 3.5 %
    assert caveats("apart.png", [(50, 40, 319, 140), (380, 40, 649, 140)], size=(700, 180))[0].startswith(
        "the picture holds 2 objects apart")  # 10 %


def test_on_a_noisy_background_a_tag_stays_and_a_pair_is_judged_on_its_own_box(tmp_path):
    """On a noisy background only specks (under SPECK of the content) leave the box: a tag of
    1.8 % of it stays, as on a plain one. And two garments are judged on their box without the
    specks: specks in the corners stretched it, and each garment then covered under a tenth."""
    rng = np.random.default_rng(0)

    def noisy(name, boxes, size=(400, 300), specks=()):
        a = np.asarray(Image.open(drawn(tmp_path / name, boxes, size))).astype(np.float64) - 20  # 235: room for noise
        for y, x in specks:
            a[y:y + 4, x:x + 4] = 90
        Image.fromarray(np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)).save(tmp_path / name)
        return read_picture(tmp_path / name)
    tagged = noisy("tag.png", [(40, 60, 300, 240), (330, 60, 350, 100)])
    untagged = noisy("untagged.png", [(40, 60, 300, 240)])
    assert tagged.caveats == untagged.caveats == ()
    assert (tagged.pixels - untagged.pixels).abs().mean() > 0.05  # the tag kept: the garment boxed with it
    corners = [(8, 8), (8, 588), (588, 8), (588, 588)]
    pair = noisy("pair.png", [(200, 240, 280, 360), (320, 240, 400, 360)], size=(600, 600), specks=corners)
    assert pair.caveats[0].startswith("the picture holds 2 objects apart")


def drawn(path, boxes, size=(400, 300)):
    """Dark rectangles on a white picture."""
    im = Image.new("RGB", size, "white")
    for box in boxes:
        ImageDraw.Draw(im).rectangle(box, fill=(40, 40, 90))
    im.save(path)
    return path


def test_specks_apart_from_the_garment_are_left_out_of_its_box_on_a_noisy_background(tmp_path):
    """A textured background, or heavy noise, leaves specks that the 3x3 filter keeps (blobs of a
    few pixels): apart from the garment, each under 1 % of the content, they are left out of its
    box, which was stretched to reach them (the garment then came out smaller). On a plain
    background such a part is the object's (a faint garment's mask falls apart in pieces): kept."""
    clean = np.asarray(Image.open(photo(tmp_path / "clean.png"))).astype(np.float64)
    noise = np.random.default_rng(0).normal(0, 8, clean.shape)
    for name, picture in (("plain", clean), ("noisy", clean + noise)):
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
        specked = picture.copy()
        for y, x in ((10, 10), (30, 250), (200, 20), (370, 260), (380, 40), (150, 270)):  # 5x5 blobs, apart from it
            specked[y:y + 5, x:x + 5] = 90
        Image.fromarray(np.clip(specked, 0, 255).astype(np.uint8)).save(tmp_path / f"{name} specked.png")
    assert torch.equal(read_picture(tmp_path / "noisy specked.png").pixels, read_picture(tmp_path / "noisy.png").pixels)
    # specks alone (a textured cloth with no garment on it), near enough to join into one part: kept
    # whole (a grid of dots), never an empty picture
    grains = np.full((300, 400), 235.0) + np.random.default_rng(1).normal(0, 8, (300, 400))
    for y in range(12, 290, 30):  # 10 x 13
        for x in range(12, 390, 30):
            grains[y:y + 5, x:x + 5] = 90
    Image.fromarray(np.clip(grains, 0, 255).astype(np.uint8)).save(tmp_path / "grains.png")
    grain = read_picture(tmp_path / "grains.png").pixels
    assert grain.shape == (1, 28, 28) and 0.05 < (grain > 0.5).float().mean() < 0.5  # dots, not one speck enlarged
    assert not torch.equal(read_picture(tmp_path / "plain specked.png").pixels, read_picture(tmp_path / "plain.png").pixels)


def test_fill_sets_the_part_of_the_frame_the_object_spans(tmp_path):
    """By default the object's longer side spans the frame, as in Fashion-MNIST; with fill 0.5,
    half of it, centred (a dataset whose objects fill only part of each image)."""
    def rows_spanned(x):
        rows = (x[0] > 0.2).any(1).nonzero()
        return int(rows.max() - rows.min() + 1), float(rows.float().mean())
    path = photo(tmp_path / "p.png")  # 300x400: its trousers are 60% wide, 80% tall
    assert rows_spanned(prepare_image(path))[0] >= 27
    span, centre = rows_spanned(prepare_image(path, fill=0.5))
    assert 13 <= span <= 15 and 12.5 <= centre <= 14.5
    assert read_picture(path, fill=0.5).caveats == ()
    # a fill that leaves a blob of a few pixels says so: the answer cannot say much
    assert read_picture(path, fill=0.1).caveats == ("the object spans only 3 of the frame's 28 pixels (--fill 0.1): "
                                                    "too small to say much; give a larger --fill",)
    assert read_picture(path, fill=0.15).caveats == ()  # 4 pixels
    for bad in (0, -0.5, 1.5, float("nan")):
        with pytest.raises(UserError, match=r"--fill must be above 0 and at most 1 \(the part of the frame"):
            prepare_image(path, fill=bad)


def test_an_object_negated_the_wrong_way_says_which_way_to_try(tmp_path):
    """An object left darker than its background once prepared goes black with it: a light
    garment on mid-grey told to be negated, a product photo told to be kept as it is; the caveat
    names the other way, which gives the garment back ("auto" takes it by itself). A grey page is
    blank, whichever way."""
    trousers = np.asarray(Image.open(photo(tmp_path / "p.png"))).astype(np.float32)
    light = np.where((trousers == 255).all(2, keepdims=True), 128, 255 - trousers)  # light on grey 128
    Image.fromarray(light.astype(np.uint8)).save(tmp_path / "light-on-grey.png")
    assert read_picture(tmp_path / "light-on-grey.png", invert="yes").caveats == (
        "most of the object is darker than its background once negated, so it is lost; try --invert no",)
    # under "auto" the border's guess (grey 128: negate) gives way to the object's sign
    assert read_picture(tmp_path / "light-on-grey.png").caveats == ()
    lost = read_picture(tmp_path / "p.png", invert="no")
    assert lost.caveats == (
        "most of the object is darker than its background once kept as it is, so it is lost; try --invert yes",)
    # black with it, on pure white too (whose level, 255, was capped at 254: the page came out white)
    assert np.asarray(Image.open(tmp_path / "p.png").convert("L"))[0, 0] == 255 and lost.pixels.max() == 0
    for right_way in (read_picture(tmp_path / "light-on-grey.png", invert="no"), read_picture(tmp_path / "p.png")):
        assert right_way.caveats == () and right_way.pixels.max() > 0.5
    Image.new("L", (40, 40), 128).save(tmp_path / "grey-page.png")
    assert read_picture(tmp_path / "grey-page.png").caveats == ("blank or nearly so once prepared: the answer says nothing",)


@pytest.mark.parametrize("background, square", [(0, 220), (250, 30)], ids=["light-on-black", "dark-on-white"])
def test_an_object_that_fills_the_frame_once_trimmed_keeps_its_background(tmp_path, background, square):
    """A square object fills the whole frame once trimmed, so the frame's border is the object:
    the background's level and whether to negate are the picture's own border's, read before."""
    a = np.full((600, 600), background, dtype=np.uint8)
    a[100:500, 100:500] = square
    Image.fromarray(a).save(tmp_path / "box.png")
    picture = read_picture(tmp_path / "box.png")
    assert picture.caveats == () and picture.pixels[0, 4:24, 4:24].min() > 0.7  # a light square, kept
    assert torch.equal(picture.pixels, prepare_image(tmp_path / "box.png", invert="yes" if background else "no"))


@pytest.mark.parametrize("flaw", ["noise", "gradient", "speck", "frame", "noise on white", "noise near white",
                                  "noise on black"])
def test_a_photo_s_noise_light_dust_or_frame_does_not_stop_the_trim(tmp_path, flaw):
    """A phone photo's background is never one level: sensor noise, light falling off across
    it, a speck of dust in a corner, a thin dark frame from a scan. Each prepares as the clean
    photo does (the background read from the border's median, a few pixels in; isolated pixels
    and frame lines not taken for the object), where trimming against one corner pixel left the
    object small and off-centre. Noise of 8 levels on pure white (or 253, or black) is clipped on
    one side: its other side sets the tolerance (with half of it read as noiseless, the trim spanned
    the whole picture)."""
    level = {"noise on white": 1.0, "noise on black": 1.0, "noise near white": 253 / 255}.get(flaw, 0.92)
    clean = np.asarray(Image.open(photo(tmp_path / "p.png", size=(360, 400)))).astype(np.float64) * level
    if flaw == "noise on black":
        clean = 255 - clean
    flawed = clean.copy()
    if flaw.startswith("noise"):
        flawed += np.random.default_rng(0).normal(0, 4 if flaw == "noise" else 8, clean.shape)
    elif flaw == "gradient":
        flawed += np.linspace(-12, 12, clean.shape[1])[None, :, None]  # 24 levels across
    elif flaw == "speck":
        flawed[0, 0] = 200
    else:
        flawed[:2], flawed[-2:], flawed[:, :2], flawed[:, -2:] = 0, 0, 0, 0
    for name, a in (("clean.png", clean), ("flawed.png", flawed)):
        Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / name)
    want, got = read_picture(tmp_path / "clean.png"), read_picture(tmp_path / "flawed.png")
    assert want.caveats == got.caveats == ()
    assert (got.pixels - want.pixels).abs().mean() < 0.02  # off by the noise, not by the object's place



def test_a_frame_as_thick_as_the_inset_on_a_small_photo_is_not_its_background(tmp_path):
    """The border is read 2 % of the shorter side in (2 pixels on a 100-pixel picture): a frame
    of 2 pixels there is passed, and the photo prepares as it does without the frame."""
    clean = np.asarray(Image.open(photo(tmp_path / "p.png", size=(100, 120)))).copy()
    clean[:2], clean[-2:], clean[:, :2], clean[:, -2:] = 0, 0, 0, 0
    Image.fromarray(clean).save(tmp_path / "framed.png")
    want, got = read_picture(tmp_path / "p.png"), read_picture(tmp_path / "framed.png")
    assert got.caveats == () and torch.equal(got.pixels, want.pixels)


def test_the_border_is_read_on_the_rectangle_inset_pixels_in():
    """The ring the background is read from: the four sides of the rectangle ``inset`` pixels in
    from each edge, on a tall and a wide picture, nothing of the rest."""
    from fashionae.images import _ring
    for shape in ((9, 6), (6, 9)):
        a = np.arange(54).reshape(shape)
        for inset in (0, 1, 2):
            b = a[inset:shape[0] - inset, inset:shape[1] - inset]
            sides = np.concatenate([b[0], b[-1], b[:, 0], b[:, -1]])  # (each corner on two sides)
            assert sorted(_ring(a, inset)) == sorted(sides)
            assert set(_ring(a, inset)) == set(b.ravel()) - set(b[1:-1, 1:-1].ravel())


def test_corners_apart_by_more_than_uneven_are_an_uneven_background():
    """The corner patches (5 % of the shorter side: 2 pixels at 40, 3 at 60) are uneven when
    their means lie more than UNEVEN (38.25 of 255) apart, not at exactly that."""
    from fashionae.images import _uneven_corners

    def picture(side, patch):  # white, its top left corner patch given
        a = np.full((side, side + 10), 255, np.uint8)
        k = int(len(patch) ** 0.5)
        a[:k, :k] = np.reshape(patch, (k, k))
        return Image.fromarray(a)
    for side, patch, uneven in ((40, [216, 217, 217, 217], False),  # 38.25 apart
                                (40, [216, 216, 217, 217], True),  # 38.5
                                (60, [216] * 6 + [218] * 3, True),  # 38.33
                                (60, [216] * 5 + [218] * 4, False)):  # 38.11
        assert (_uneven_corners(picture(side, patch)) is not None) == uneven, (side, patch)


def test_a_coloured_background_is_read_by_its_grey_level(tmp_path):
    """A garment on yellow: the background's level is its grey (224 of 255), which ends black
    as white does, the garment prepared as on white."""
    a = np.asarray(Image.open(photo(tmp_path / "p.png"))).copy()
    a[(a == 255).all(2)] = (250, 250, 20)
    Image.fromarray(a).save(tmp_path / "yellow.png")
    yellow, white = read_picture(tmp_path / "yellow.png"), read_picture(tmp_path / "p.png")
    assert yellow.caveats == () and yellow.pixels[0, 0, 0] == 0 and (yellow.pixels - white.pixels).abs().max() < 0.02


def test_a_corner_of_a_small_picture_is_its_own_pixel(tmp_path):
    """Under 40 pixels a side the corner patch is one pixel (5 % of the side, at least 1): one
    shadowed corner pixel of a 30 x 40 photo is an uneven background."""
    small = np.asarray(Image.open(photo(tmp_path / "p.png", size=(30, 40)))).copy()
    small[0, 0] = 120
    Image.fromarray(small).save(tmp_path / "corner.png")
    assert read_picture(tmp_path / "corner.png").caveats == (
        "its corners range from 120 to 255 of 255: an uneven background, or an object touching them; crop it with a "
        "plain margin around the object",)


def test_a_garments_levels_keep_their_place_between_its_background_and_white(tmp_path):
    """A black and mid-grey (128) garment on white is negated so that the background is 0 and
    black is 1: the grey ends at exactly 127/255, as the same garment drawn light on black does
    (kept as it is); the levels are not moved by a level or rescaled."""
    a = np.full((120, 90), 255, np.uint8)
    a[10:110, 20:70] = 0
    a[60:110, 20:70] = 128
    Image.fromarray(a).save(tmp_path / "white.png")
    Image.fromarray(255 - a).save(tmp_path / "black.png")
    for name in ("white.png", "black.png"):
        picture = read_picture(tmp_path / name)
        assert picture.caveats == () and picture.pixels.max() == 1 and picture.pixels[0, 0, 0] == 0
        assert torch.all(picture.pixels[0, 18:24, 8:20] == torch.tensor(127 / 255, dtype=torch.float32))


def test_a_line_one_pixel_wide_is_the_object_not_noise(tmp_path):
    """A sketch's thin line is kept by the trim (a speck alone would not be): the prepared
    object spans the line's whole length, not only the filled square on it; and the answer
    says that an outline is not what the models know. A speck alone is a blank page."""
    im = Image.new("L", (300, 300), 255)
    draw = ImageDraw.Draw(im)
    draw.line((50, 40, 250, 260), fill=0, width=1)
    draw.rectangle((120, 120, 160, 160), fill=0)
    im.save(tmp_path / "sketch.png")
    picture = read_picture(tmp_path / "sketch.png")
    rows = np.where(picture.pixels[0].max(1).values > 0.1)[0]
    assert (rows[0], rows[-1]) == (0, 27) and picture.caveats == (
        "the object fills only 4% of its box, as an outline or a sketch does; the models know filled garments "
        "(a photo of one)",)
    noisy = np.asarray(Image.open(tmp_path / "sketch.png")).astype(np.float64)
    noisy = noisy + np.random.default_rng(0).normal(0, 5, noisy.shape)  # a scan's noise, clipped at white
    Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)).save(tmp_path / "scan.png")
    assert read_picture(tmp_path / "scan.png").caveats[0].startswith("the object fills only")  # noise or not
    Image.new("L", (100, 100), 255).save(tmp_path / "dot.png")
    dot = Image.open(tmp_path / "dot.png")
    dot.putpixel((0, 0), 0)
    dot.save(tmp_path / "dot.png")  # a white page with one dark speck in a corner: blank
    assert read_picture(tmp_path / "dot.png").caveats == ("blank or nearly so once prepared: the answer says nothing",)
    tiny = np.full((5, 6), 255, np.uint8)
    tiny[2, 3] = 0
    Image.fromarray(tiny).save(tmp_path / "tiny-dot.png")  # blank too, and no object's size to note (it was, 4.7x)
    assert read_picture(tmp_path / "tiny-dot.png").caveats == (
        "blank or nearly so once prepared: the answer says nothing",)


@pytest.mark.parametrize("falloff, noise", [(0.1, 0), (0.2, 0), (0.1, 8)])
def test_light_falling_off_towards_every_edge_is_divided_out(tmp_path, falloff, noise):
    """A lamp's light, or vignetting, falling off towards every edge (the corners 10 or 20 %
    darker, garment and all, as the benchmark makes it): the lit middle was taken for the object
    (the trousers prepared smaller, on a grey patch); the light, fitted to the border, is divided
    out before the trim, and the photo prepares as the evenly lit one (the old preparation: off by
    0.006 to 0.11 a pixel on average, 0.07 to 1.0 at most)."""
    clean = np.full((400, 360, 3), 235.0)  # small trousers in the middle of a light grey photo
    clean[125:275, 120:240] = np.asarray(Image.open(photo(tmp_path / "p.png", size=(120, 150)))) * 0.92
    h, w = clean.shape[:2]
    y, x = np.ogrid[:h, :w]
    r2 = ((y - (h - 1) / 2) ** 2 + (x - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    lit = clean * (1 - falloff * r2)[..., None] + np.random.default_rng(0).normal(0, noise, clean.shape)
    for name, a in (("clean.png", clean), ("lit.png", lit)):
        Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / name)
    want, got = read_picture(tmp_path / "clean.png"), read_picture(tmp_path / "lit.png")
    assert got.caveats == want.caveats == ()
    assert (got.pixels - want.pixels).abs().mean() < 0.004 and (got.pixels - want.pixels).abs().max() < 0.05
    on = (want.pixels > 0.5)[0]  # the trim box: the garment spans the frame as on the clean photo
    assert torch.equal((got.pixels > 0.5)[0].any(0), on.any(0)) and torch.equal((got.pixels > 0.5)[0].any(1), on.any(1))


@pytest.mark.parametrize("picture", ["clean", "noise, sd 8", "noise on white", "small, noise sd 16", "shirt on an edge",
                                     "corner in shadow", "gradient of 5"])
def test_a_photo_lit_evenly_is_prepared_as_before_the_light_was_fitted(tmp_path, monkeypatch, picture):
    """The light's fit changes nothing where the light is even: a clean or noisy photo (noise
    fits no surface: on a small picture its fit varies by 20 levels and more, many standard
    errors under a lamp's), an object on part of the border, a corner in shadow (left to the
    uneven-corners note), a gradient under UNEVEN_LIGHT: bit for bit what the preparation without
    it gives."""
    import fashionae.images as images
    size = (120, 90) if picture.startswith("small") else (360, 400)
    a = np.asarray(Image.open(photo(tmp_path / "p.png", size=size))).astype(np.float64) * (
        1.0 if picture == "noise on white" else 0.92)
    if picture.startswith("noise") or picture.startswith("small"):
        a += np.random.default_rng(0).normal(0, 16 if picture.startswith("small") else 8, a.shape)
    elif picture == "shirt on an edge":
        a[-150:, 100:300] = 200
    elif picture == "corner in shadow":
        a[:80, :80] = 120
    elif picture == "gradient of 5":
        a += np.linspace(-2.5, 2.5, a.shape[1])[None, :, None]
    Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / "q.png")
    fitted = read_picture(tmp_path / "q.png")
    monkeypatch.setattr(images, "_flat_field", lambda rgb, inset: rgb)
    plain = read_picture(tmp_path / "q.png")
    assert torch.equal(fitted.pixels, plain.pixels) and fitted.caveats == plain.caveats


@pytest.mark.parametrize("background, shirt, noise, wide", [(250, 222, 0, False), (255, 235, 0, True), (255, 222, 4, True)])
def test_a_light_garment_touching_an_edge_is_not_taken_for_background(tmp_path, background, shirt, noise, wide):
    """A light shirt on a lighter background, cut by the picture's bottom edge: its pixels on the
    border do not raise the tolerance for background (a median, not a percentile, of how far the
    border strays), so the trim keeps the shirt, not only the dark logo on it. So too on pure
    white, clean or a little noisy, with the shirt on 44 % of the border (three edges): on a clean
    picture the shirt, at its one level (20 off white), is not taken for the noise of a clipped
    background. (With noise of 8 levels as well, the border's median and spread are the shirt's
    and the noise's together, and the shirt is lost: not handled.)"""
    im = Image.new("RGB", (400, 400), (background,) * 3)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 260, 399, 399) if wide else (100, 150, 300, 399), fill=(shirt,) * 3)
    draw.rectangle((180, 300, 220, 340) if wide else (180, 200, 220, 240), fill=(30, 30, 30))
    a = np.asarray(im).astype(np.float64) + np.random.default_rng(0).normal(0, noise, (400, 400, 3))
    Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / "shirt.png")
    picture = read_picture(tmp_path / "shirt.png")
    logo = (picture.pixels > 0.5).float().mean()  # negated, the logo is the light part
    assert picture.caveats == () and 0 < logo < 0.1  # not the logo alone, blown up to fill the frame


@pytest.mark.parametrize("sigma", [2, 4])
def test_a_faint_garment_on_a_noisy_photo_is_what_the_trim_keeps(tmp_path, sigma):
    """A garment only 15 levels darker than a noisy background (the noise's standard deviation 2
    or 4 levels): the tolerance for background follows the noise (4 times its robust estimate,
    at least FAINT), so the garment is still what the trim keeps, and no blank note is given."""
    a = np.full((300, 300, 3), 200.0)
    a[40:260, 100:200] -= 15  # 220 x 100: 28 x 13 once prepared
    a += np.random.default_rng(1).normal(0, sigma, a.shape)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(tmp_path / "faint.png")
    picture = read_picture(tmp_path / "faint.png")
    g = picture.pixels[0].numpy()
    rows, cols = np.where((g > 0.5 * g.max()).any(1))[0], np.where((g > 0.5 * g.max()).any(0))[0]
    assert picture.caveats == () and (rows[0], rows[-1], cols[0], cols[-1]) == (0, 27, 7, 19)


def test_a_light_garment_on_white_is_stretched_to_the_datasets_range(tmp_path):
    """Grey 215 on 250: once negated and the background mapped to black, the garment would stay
    at about 0.15, where every Fashion-MNIST object reaches 0.8 and above; its light end is made
    white, and a picture with nothing but faint marks is not stretched (noise stays noise)."""
    a = np.full((300, 300, 3), 250, np.uint8)
    a[40:260, 100:200] = 215
    Image.fromarray(a).save(tmp_path / "light.png")
    picture = read_picture(tmp_path / "light.png")
    assert picture.caveats == () and picture.pixels.max() > 0.95
    b = np.full((300, 300, 3), 250, np.uint8)
    b[40:260, 100:200] = 240  # 10 levels: below FAINT, nothing to stretch
    Image.fromarray(b).save(tmp_path / "faint.png")
    assert read_picture(tmp_path / "faint.png").pixels.max() < 0.1


def test_the_white_point_is_the_garment_s_not_a_speck_s(tmp_path):
    """A light garment (215 on 250) with a black speck on it: the light end made white is the
    garment's own (its 99th percentile), not the speck's, which would leave the garment dim."""
    a = np.full((300, 300, 3), 250, np.uint8)
    a[40:260, 100:200] = 215
    a[148:152, 148:152] = 0
    Image.fromarray(a).save(tmp_path / "speck.png")
    g = read_picture(tmp_path / "speck.png").pixels[0]
    assert float(g[4:24, 12:16].median()) > 0.8


def test_one_bad_picture_among_several_is_named_as_one_of_them(tmp_path):
    """Of three pictures one is empty: the error says that one of the three cannot be used, so
    that none is answered (and names it), not only what is wrong with it."""
    good = photo(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(good.read_bytes())
    (tmp_path / "c.png").write_bytes(b"")
    with pytest.raises(UserError, match=re.escape(f"1 of the 3 pictures cannot be used, so none is answered: image "
                                                  f"{tmp_path / 'c.png'} is empty")):
        read_pictures([str(good), str(tmp_path / "b.png"), str(tmp_path / "c.png")])


def test_a_lone_bad_picture_is_its_own_error_and_many_are_named_three_at_a_time(tmp_path):
    """One picture given that cannot be used: its own error, alone. Of several, the first three
    faults are named and the rest counted, with what is ``refused`` and the ``remedy``; and
    ``progress`` is told how many are read after each, the ones that fail too."""
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(UserError, match="^" + re.escape(f"image {tmp_path / 'e.png'} is empty") + "$"):
        read_pictures([str(tmp_path / "e.png")])
    good = str(photo(tmp_path / "good.png"))
    absent = [str(tmp_path / f"absent{i}.png") for i in range(4)]
    named = "; ".join(f"image {p} does not exist" for p in absent[:3])
    told = []
    with pytest.raises(UserError, match="^" + re.escape(f"3 of the 4 pictures cannot be used, so none is answered: "
                                                        f"{named}. Fix or remove them, or name only the others") + "$"):
        read_pictures([good] + absent[:3], progress=told.append)
    assert told == [1, 2, 3, 4]
    told.clear()
    with pytest.raises(UserError, match="^" + re.escape(f"4 of the 5 pictures cannot be used, so nothing is done: "
                                                        f"{named}; and 1 more. Remove them") + "$"):
        read_pictures(absent[:2] + [good] + absent[2:], refused="nothing is done", remedy="Remove them",
                      progress=told.append)
    assert told == [1, 2, 3, 4, 5]
    with pytest.raises(UserError, match=re.escape("; and 2 more. ")):
        read_pictures(absent + [str(tmp_path / "e.png")])
    with pytest.raises(UserError, match=r"^--invert must be auto, yes or no, got 'maybe'$"):
        read_pictures([good], invert="maybe")


def test_a_garment_only_20_levels_off_white_is_stretched_and_no_outline(tmp_path):
    """A light-grey sweater on white, 8 levels darker, its seams 20 (under STRETCH_FROM once
    mapped): the trim finds it, so it is stretched to white like any object it finds (it stayed
    at 0.08, a near-blank picture, with no note); and its body, fainter than the tolerance but
    more than a quarter of its own contrast, is not taken for an outline's gaps (it said "fills
    only 8%")."""
    a = np.full((300, 300, 3), 245.0)
    a[40:260, 100:200] = 225
    a[43:257, 103:197] = 237
    Image.fromarray(a.round().astype(np.uint8)).save(tmp_path / "sweater.png")
    picture = read_picture(tmp_path / "sweater.png")
    assert picture.caveats == () and picture.pixels.max() > 0.95


def test_a_light_cut_out_on_transparency_is_not_lost_on_white(tmp_path):
    """A white garment cut out of its photo (opaque where it is, transparent around it) shows on
    black, where a product photo's transparency shows on white: it is prepared as the same garment
    on black is, not as a blank page; a dark cut-out still shows on white. A photo whose opaque
    part is a rectangle (rounded corners, padding to a square) has its own background: its
    transparency shows white, and it is prepared as the opaque photo is."""
    shape = Image.open(photo(tmp_path / "shape.png")).convert("L").point(lambda v: 255 if v < 128 else 0)
    alpha = np.asarray(shape)  # the trousers, opaque
    for level, behind in ((245, 0), (35, 255)):
        Image.fromarray(np.dstack([np.full(alpha.shape + (3,), level, np.uint8), alpha]), "RGBA").save(tmp_path / "c.png")
        flat = np.where(alpha[..., None] > 0, level, behind).astype(np.uint8).repeat(3, axis=2)
        Image.fromarray(flat).save(tmp_path / "flat.png")
        cut, want = read_picture(tmp_path / "c.png"), read_picture(tmp_path / "flat.png")
        assert cut.caveats == want.caveats == () and torch.equal(cut.pixels, want.pixels)
        assert cut.pixels.max() > 0.95
    opaque = np.asarray(Image.open(photo(tmp_path / "p.png")).convert("RGB"))
    rounded = Image.new("L", (opaque.shape[1], opaque.shape[0]), 0)
    ImageDraw.Draw(rounded).rounded_rectangle((0, 0, opaque.shape[1] - 1, opaque.shape[0] - 1), radius=40, fill=255)
    padded = np.zeros((opaque.shape[0], opaque.shape[1] + 100, 4), np.uint8)
    padded[:, 50:-50] = np.dstack([opaque, np.full(opaque.shape[:2], 255, np.uint8)])
    Image.fromarray(np.dstack([opaque, np.asarray(rounded)]), "RGBA").save(tmp_path / "rounded.png")
    Image.fromarray(padded, "RGBA").save(tmp_path / "padded.png")
    want = read_picture(tmp_path / "p.png")
    for name in ("rounded.png", "padded.png"):
        got = read_picture(tmp_path / name)
        assert got.caveats == () and (got.pixels - want.pixels).abs().max() < 0.05, name


@pytest.mark.parametrize("level, inside, outside, behind", [
    (245, 128, 0, 0),  # half opaque, just (alpha over 127): a light cut-out, on black
    (245, 255, 127, 0),  # around it half transparent, just (127 and under): a cut-out still
    (245, 127, 0, 255),  # nothing opaque: white, as behind a photo
    (128, 255, 0, 0),  # the cut-out light, just (its mean grey over 127)
    (127, 255, 0, 255),  # not light: white
    (245, "hole", 0, 0),  # opaque over 97 % of its box, no more: a cut-out, not a photo's rectangle
], ids=["inside-128", "outside-127", "all-127", "grey-128", "grey-127", "97-percent"])
def test_what_shows_through_transparency_is_decided_at_its_bounds(tmp_path, level, inside, outside, behind):
    """The bounds of ``_behind``: opaque is an alpha over 127; a cut-out is light where its mean
    grey is over 127; an opaque part filling 97 % of its box or less is a cut-out. The picture
    prepares as the same one laid by hand over what should show through."""
    if inside == "hole":
        alpha = np.zeros((200, 160), np.uint8)
        alpha[50:150, 30:130] = 255
        alpha[85:95, 65:95] = 0  # 300 of the box's 10,000 pixels
    else:
        shape = np.asarray(Image.open(photo(tmp_path / "shape.png")).convert("L")) < 128  # the trousers
        alpha = np.where(shape, inside, outside).astype(np.uint8)
    cut = Image.fromarray(np.dstack([np.full(alpha.shape + (3,), level, np.uint8), alpha]), "RGBA")
    cut.save(tmp_path / "cut.png")
    laid = Image.alpha_composite(Image.new("RGBA", cut.size, (behind, behind, behind, 255)), cut).convert("RGB")
    laid.save(tmp_path / "laid.png")
    got, want = read_picture(tmp_path / "cut.png"), read_picture(tmp_path / "laid.png")
    assert got.caveats == want.caveats and torch.equal(got.pixels, want.pixels)


def test_a_two_tone_garment_says_one_side_is_lost(tmp_path):
    """A dark shirt with a large white print on mid-grey: whichever way it is negated, one of its
    parts ends darker than the background and goes black; "auto" says so. A plain one does not."""
    a = np.full((300, 300, 3), 150, np.uint8)
    a[40:260, 80:220] = 60
    Image.fromarray(a).save(tmp_path / "plain.png")
    assert read_picture(tmp_path / "plain.png").caveats == ()
    a[80:200, 100:200] = 250  # the print: 40 % of the shirt, and a brighter contrast
    Image.fromarray(a).save(tmp_path / "print.png")
    assert read_picture(tmp_path / "print.png").caveats == (
        "parts of the object are lighter and parts darker than its background, so one of them is lost whichever "
        "way it is negated; compare --invert yes and --invert no",)
    assert read_picture(tmp_path / "print.png", invert="yes").caveats == ()  # the user has chosen
    from fashionae.images import _two_sided  # the lesser side at least TWO_SIDED (30 %) of the whole: exactly 30 % is
    at = np.full((10, 10), 100, np.uint8)
    at[0, :3], at[1, :7] = 200, 0  # 3 pixels 100 lighter, 7 pixels 100 darker
    assert _two_sided(Image.fromarray(at), 100.0) and not _two_sided(Image.fromarray(np.minimum(at, 199)), 100.0)


@pytest.mark.parametrize("light", ["lamp at the top left", "lamp at the bottom", "garment on the bottom edge"])
def test_light_from_one_side_or_over_a_garment_on_an_edge_is_divided_out(tmp_path, light):
    """Light not symmetric about the centre (a lamp off to a corner: a cross term x*y; off to one
    side: the sign of y), and light over a border a garment partly covers (the robust refit): the
    photo prepares as the evenly lit one (its corners, far apart as taken, still noted)."""
    clean = np.full((400, 360, 3), 235.0)
    box = (slice(100, 400), slice(120, 240)) if light == "garment on the bottom edge" else (slice(125, 275), slice(120, 240))
    clean[box] = np.asarray(Image.open(photo(tmp_path / "p.png", size=(120, box[0].stop - box[0].start)))) * 0.92
    y, x = np.ogrid[-1:1:400j, -1:1:360j]
    lamp = {"lamp at the top left": 1 - 0.2 * ((x + y + 2) / 4) ** 2, "lamp at the bottom": 1 - 0.25 * ((1 - y) / 2) ** 2,
            "garment on the bottom edge": 1 - 0.25 * (x * x + y * y) / 2}[light]
    for name, a in (("clean.png", clean), ("lit.png", clean * lamp[..., None])):
        Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / name)
    want, got = read_picture(tmp_path / "clean.png"), read_picture(tmp_path / "lit.png")
    assert want.caveats == () and all(c.startswith("its corners range from ") for c in got.caveats)
    assert (got.pixels - want.pixels).abs().mean() < 0.004 and (got.pixels - want.pixels).abs().max() < 0.1


@pytest.mark.parametrize("seed", range(4))
def test_heavy_noise_on_a_small_photo_is_not_taken_for_light(tmp_path, monkeypatch, seed):
    """Noise of sd 30 on a small photo fits a surface that varies by tens of levels, within its
    standard errors: not divided out."""
    import fashionae.images as images
    a = np.asarray(Image.open(photo(tmp_path / "p.png", size=(90, 120)))).astype(np.float64) * 0.92
    a += np.random.default_rng(seed).normal(0, 30, a.shape)
    Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / "q.png")
    fitted = read_picture(tmp_path / "q.png")
    monkeypatch.setattr(images, "_flat_field", lambda rgb, inset: rgb)
    assert torch.equal(fitted.pixels, read_picture(tmp_path / "q.png").pixels)


def test_a_garment_shaded_smoothly_over_most_of_the_picture_keeps_its_note(tmp_path):
    """A garment over all but the top sixth of the picture, shaded smoothly (150 to 200 on white):
    the light's fit may take its shading for light, but the corners, far apart as taken, are
    still said."""
    y, x = np.mgrid[:360, :400]
    a = np.where((y >= 60)[..., None], (150 + 50 * (0.6 * x / 400 + 0.4 * y / 360))[..., None], 250.0)
    a = a + np.random.default_rng(0).normal(0, 2, (360, 400, 3))
    Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8)).save(tmp_path / "shaded.png")
    (caveat,) = read_picture(tmp_path / "shaded.png").caveats
    assert caveat.startswith("its corners range from 170 to 250 of 255: an uneven background")


def test_a_garment_over_most_of_the_border_keeps_its_note(tmp_path, monkeypatch):
    """A dark garment, lit unevenly, over three sides of the border: the fit takes the garment for
    the light; the picture is to be left as it was, with the uneven-corners note."""
    import fashionae.images as images
    y, x = np.ogrid[:400, :360]
    a = np.full((400, 360, 3), 250.0)
    on = np.broadcast_to(y >= 120, (400, 360))
    a[on] = np.broadcast_to(40 + 50 * x / 360 + 20 * y / 400, (400, 360))[on][:, None]
    Image.fromarray(a.round().astype(np.uint8)).save(tmp_path / "q.png")
    fitted = read_picture(tmp_path / "q.png")
    monkeypatch.setattr(images, "_flat_field", lambda rgb, inset: rgb)
    assert torch.equal(fitted.pixels, read_picture(tmp_path / "q.png").pixels)


def grey_rgb(a):
    """An RGB picture whose three channels are the grey levels ``a``, rounded and clipped to bytes."""
    return Image.fromarray(np.dstack([np.clip(a, 0, 255).round().astype(np.uint8)] * 3))


@pytest.mark.parametrize("lamp", ["radial", "top left, x*y", "skewed along x", "from the bottom", "clipped white"])
def test_the_light_fitted_to_the_border_is_divided_out_to_the_borders_median(lamp):
    """``_flat_field`` on a background lit by a quadratic lamp alone (no object, no noise): each
    pixel is brought to the border's median grey, to a level either way (the bytes' rounding),
    whatever the lamp's place or tilt (a white label where it was dim stays 255, a black one 0); where the lamp's light was over 255 (clipped white), the
    surface is capped at 255, and the white comes out at the median exactly, not darker."""
    from fashionae.images import _flat_field, _ring
    h, w = 200, 240
    y, x = np.ogrid[-1:1:200j, -1:1:240j]
    a = np.broadcast_to({"radial": 230 * (1 - 0.1 * (x * x + y * y)), "top left, x*y": 230 * (1 - 0.2 * ((x + y + 2) / 4) ** 2),
                         "skewed along x": 230 * (1 - 0.1 * x - 0.05 * y + 0.08 * x * y - 0.1 * x * x),
                         "from the bottom": 230 * (1 - 0.25 * ((1 - y) / 2) ** 2),
                         "clipped white": 230 + 40 * (1 - (x * x + y * y) / 2)}[lamp], (h, w))  # (270 in the middle)
    picture = grey_rgb(a)
    median = float(np.median(_ring(np.asarray(picture), 4).astype(np.float64).mean(axis=1)))
    out = np.asarray(_flat_field(picture, 4)).astype(np.float64)
    assert np.abs(out - median).max() <= 1
    if lamp == "radial":  # a white label in the dim corner stays white (brightened past 255: clipped, not wrapped)
        a = a.copy()  # and a black one in the middle black
        a[6:16, 6:16], a[90:110, 110:130] = 255, 0
        out = np.asarray(_flat_field(grey_rgb(a), 4)).astype(np.float64)
        assert (out[6:16, 6:16] == 255).all() and (out[90:110, 110:130] == 0).all()
        out[6:16, 6:16], out[90:110, 110:130] = median, median
        assert np.abs(out - median).max() <= 1
    if lamp == "clipped white":
        assert (a > 256).sum() > 20_000 and (out[a > 256] == median).all()


def test_a_picture_three_lines_thin_has_its_light_fitted_and_two_lines_not():
    """A strip lit unevenly along its length: a ring of three lines or more is fitted and evened
    out; of one or two, whose rows cannot tell the quadratic's terms apart, it is left as it is."""
    from fashionae.images import _flat_field
    for rows in (1, 2, 3):
        strip = grey_rgb(np.broadcast_to(230 * (1 - 0.3 * np.linspace(-1, 1, 60) ** 2), (rows, 60)))
        out = _flat_field(strip, 0)
        assert (out is strip) == (rows < 3), rows
        assert rows < 3 or np.ptp(np.asarray(out)) <= 2


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
@pytest.mark.parametrize("at", ["start", "end"])
def test_an_object_over_half_of_one_side_of_the_border_keeps_the_light_as_it_is(side, at):
    """A lamp's light with a dark object on one side of the border's ring (200 x 240, the ring 4
    pixels in: sides of 232 and 192 pixels): where the object covers exactly half of that side,
    the fit keeps half of it (LIGHT_ON_EVERY_SIDE, at least) and the light is divided out; one
    pixel more, and the picture is left as it is, whichever side and whichever end of it (each
    side counted as ``_ring`` lays it out, no pixel of its neighbours counted with it)."""
    from fashionae.images import _flat_field
    h, w, inset = 200, 240, 4
    y, x = np.ogrid[-1:1:200j, -1:1:240j]
    lit = np.broadcast_to(230 * (1 - 0.1 * (x * x + y * y)), (h, w)).copy()
    length = (w if side in ("top", "bottom") else h) - 2 * inset
    for covered in (length // 2, length // 2 + 1):
        a = lit.copy()
        along = slice(inset, inset + covered) if at == "start" else slice(inset + length - covered, inset + length)
        # the object from the ring's line out to the picture's edge
        {"top": lambda: a.__setitem__((slice(0, inset + 1), along), 40),
         "bottom": lambda: a.__setitem__((slice(h - inset - 1, h), along), 40),
         "left": lambda: a.__setitem__((along, slice(0, inset + 1)), 40),
         "right": lambda: a.__setitem__((along, slice(w - inset - 1, w)), 40)}[side]()
        picture = grey_rgb(a)
        assert (_flat_field(picture, inset) is picture) == (covered > length // 2), covered


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_a_mottled_backdrop_is_not_taken_for_light(seed):
    """A backdrop mottled evenly (cloth or paper whose level swings by sd 6 over some 40 pixels):
    the fitted surface follows its slow swings, by more than the standard errors of independent
    pixels allow, but not more than the ring's runs (LIGHT_RUN) say its noise is, their means'
    spread times the root of their length: left as it is."""
    from scipy import ndimage
    from fashionae.images import _flat_field
    t = ndimage.uniform_filter(np.random.default_rng(seed).normal(0, 1, (200, 240)), 41)
    picture = grey_rgb(200 + 6 * t / t.std())
    assert _flat_field(picture, 4) is picture


def test_objects_are_counted_on_the_grid_as_their_constants_say():
    """``_objects`` on masks of under 200 pixels a side (one cell a pixel): a part is an object of
    its own where it covers SECOND_OBJECT (10 %) of the box, exactly 10 % included; parts join
    where their growth by OBJECTS_APART of the box's longer side (3 pixels on 86 to 100, 1 pixel
    under 50) makes them touch, a diagonal step included (8-connected); and on a noisy background a
    speck under SPECK of the content is left out of the box, wherever it lies."""
    from fashionae.images import _objects
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True
    mask[:, 90:] = True  # 1,000 pixels of the box's 10,000: a second object, just
    assert _objects(mask, drop_specks=False)[1] == 2
    mask[0, 90] = False
    assert _objects(mask, drop_specks=False)[1] == 1
    for gap, objects in ((6, 1), (7, 2)):  # two squares corner to corner, `gap` pixels apart diagonally
        mask = np.zeros((80 + gap, 80 + gap), bool)
        mask[:40, :40] = mask[40 + gap:, 40 + gap:] = True  # (grown by 3, at 6 they touch at a corner only)
        assert _objects(mask, drop_specks=False)[1] == objects, gap
    for gap, objects in ((2, 1), (3, 2)):  # a box of 40: grown by 1 pixel
        mask = np.zeros((40, 40), bool)
        mask[:, :15] = mask[:, 15 + gap:] = True
        assert _objects(mask, drop_specks=False)[1] == objects, gap
    mask = np.zeros((97, 97), bool)
    mask[:60, :60] = True  # the garment, first in the scan
    mask[95:, 95:] = True  # a speck of 4 pixels after it
    assert _objects(mask, drop_specks=True) == ((slice(0, 60), slice(0, 60)), 1)
    assert _objects(mask, drop_specks=False)[0] == (slice(0, 97), slice(0, 97))


def test_a_pictures_size_and_fill_given_in_python_are_checked_before_it_is_read(tmp_path):
    """prepare_image(size=28) (the command line takes a bare N): one line, as for a bad fill (None, a
    string, True), not an error from deep inside PIL or numpy, nor a 1x1 image no encoder takes."""
    from PIL import Image
    from fashionae.images import prepare_image
    Image.fromarray(np.full((32, 48), 200, np.uint8)).save(tmp_path / "p.png")
    for size, said in ((28, "must be [height, width], got 28"), ((28.0, 28.0), "must be [height, width]"),
                       ((0, 0), "must be multiples of 4 of at least 8 (the encoder halves them twice), got 0x0"),
                       ((1, 1), "must be multiples of 4 of at least 8")):
        with pytest.raises(UserError, match=re.escape(f"the image size {said}")):
            prepare_image(tmp_path / "p.png", size=size)
    for fill in (None, "0.5", True, 0, 1.5):
        with pytest.raises(UserError, match=f"^--fill must be above 0 and at most 1 .*, got {re.escape(repr(fill))}$"):
            prepare_image(tmp_path / "p.png", fill=fill)
    assert prepare_image(tmp_path / "p.png", size=[16, 24]).shape == (1, 16, 24)
    assert prepare_image(tmp_path / "p.png", size=(np.int64(16), np.int64(24))).shape == (1, 16, 24)  # numpy's too



def test_two_pictures_that_would_make_one_reconstruction_are_refused_before_either_is_written(tmp_path):
    """a.png and a.jpg (or two a.png of two folders) would both be a_reconstruction.png, the second
    over the first: refused, naming both, rather than one reconstruction silently lost."""
    from fashionae.picturefiles import reconstruction_files
    for path in (tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "sub" / "b.png", tmp_path / "b.png"):
        path.parent.mkdir(exist_ok=True)
        Image.new("L", (28, 28), 128).save(path)
    said = (f"{tmp_path / 'a.jpg'} and {tmp_path / 'a.png'} would both be written to "
            f"{tmp_path / 'out' / 'a_reconstruction.png'}")
    with pytest.raises(UserError, match=f"^{re.escape(said)}; rename one"):
        reconstruction_files([str(tmp_path)], tmp_path / "out")
    with pytest.raises(UserError, match="would both be written to .*b_reconstruction.png"):
        reconstruction_files([str(tmp_path / "b.png"), str(tmp_path / "sub" / "b.png")], tmp_path / "out")


def test_a_reconstructions_name_is_cut_by_its_bytes_not_its_characters():
    """The 255 a file name may hold are bytes: 120 é's are 139 characters with _reconstruction.png but
    259 bytes in UTF-8, too long to be written, so the name is cut as a long one is."""
    from fashionae.picturefiles import _reconstruction_name
    name = _reconstruction_name("\u00e9" * 120)
    assert len(os.fsencode(name)) <= 255 and re.fullmatch("\u00e9+~[0-9a-f]{8}_reconstruction.png", name)


def test_a_folder_named_twice_gives_its_pictures_as_first_spelled(tmp_path):
    """One folder named by two paths: each picture once, in the order and spelling of the first, so
    the answers come as the first name of the folder said (and a link to a folder named x.png is
    no picture of it)."""
    from fashionae.picturefiles import picture_files
    album = tmp_path / "album"
    (album / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.new("L", (28, 28), 128).save(album / name)
    (album / "old.png").symlink_to(album / "sub")
    other = str(album / ".." / "album")
    assert picture_files([str(album), other]) == [str(album / "a.png"), str(album / "b.png")]
    assert picture_files([other, str(album)]) == [os.path.join(other, "a.png"), os.path.join(other, "b.png")]


def test_a_picture_and_its_reconstruction_side_by_side_are_enlarged_pixel_for_pixel():
    """Each pixel an 8x8 block of its level (no smoothing, which would blur the very differences the
    picture is there to show), the two apart by a white band two pixels wide (black on white ones)."""
    import io

    from fashionae.picturefiles import side_by_side
    original = torch.zeros(1, 4, 4)
    original[0, ::2, ::2] = 1.0
    reconstruction = torch.full((1, 4, 4), 0.2)
    got = np.asarray(Image.open(io.BytesIO(side_by_side(original, reconstruction))))
    row = np.concatenate([original[0].numpy(), np.ones((4, 2)), reconstruction[0].numpy()], axis=1)
    want = np.kron((row * 255).astype(np.uint8), np.ones((8, 8), np.uint8))
    assert got.shape == (32, 80) and np.array_equal(got, want)
    light = 1 - original  # a run on dark garments on white: a black band, which white would hide
    got = np.asarray(Image.open(io.BytesIO(side_by_side(light, 1 - reconstruction, light=True))))
    assert np.array_equal(got[:, 32:48], np.zeros((32, 16), np.uint8)) and np.array_equal(got, 255 - want)


def test_a_floating_point_picture_with_negative_levels_is_refused(tmp_path):
    """Levels below 0 (a float TIFF of differences) are no grey a picture holds: refused, not clipped
    to black."""
    Image.fromarray(np.full((8, 8), -0.5, dtype=np.float32), "F").save(tmp_path / "negative.tiff")
    with pytest.raises(UserError, match=r"negative.tiff has grey levels outside 0-255; save it as an 8- or 16-bit"):
        prepare_image(tmp_path / "negative.tiff")
