"""LoadedRun (``fashionae.load``): a finished run applied to tensors, arrays and pictures."""
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fashionae.errors import UserError
from fashionae.inference import LoadedRun


def test_a_loaded_run_takes_a_batch_a_stack_a_list_and_refuses_other_shapes(own_run):
    _, run = own_run
    loaded = LoadedRun(run)
    torch.manual_seed(0)
    batch = torch.rand(3, 1, 16, 24)
    expected = loaded.embed(batch)
    assert expected.shape == (3, 4)
    assert torch.equal(loaded.embed(batch[:, 0]), expected)  # [N, H, W]
    assert torch.equal(loaded.embed(list(batch)), expected)  # a list of [1, H, W] tensors
    assert torch.allclose(loaded.embed(batch[0]), expected[:1], atol=1e-6)  # one image (batch of 1)
    assert torch.equal(loaded.embed(batch.permute(0, 2, 3, 1).numpy()), expected)  # [N, H, W, 1], channels last
    with pytest.raises(UserError, match=r"must be \[N, 1, 16, 24\] \(or \[N, 16, 24\]\), got \[3, 1, 24, 16\]"):
        loaded.embed(batch.transpose(2, 3))
    with pytest.raises(UserError, match=r"^images must be \[N, 1, 16, 24\] \(or \[N, 16, 24\]\), got \[16, 24\]$"):
        loaded.embed(batch[0, 0])  # one image without its channel: in a list only, not alone


def test_a_loaded_run_reads_every_picture_of_a_list_before_it_answers_and_names_all_it_cannot(own_run, tmp_path):
    """Pictures in a list, tensors among them: the ones that cannot be read are named together, in
    one error, as `classify` names them (not the first alone, one try per bad file)."""
    import numpy as np
    from PIL import Image
    _, run = own_run
    loaded = LoadedRun(run)
    Image.fromarray(np.full((32, 48), 200, np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(UserError) as e:
        loaded.embed([tmp_path / "ok.png", tmp_path / "absent.png", torch.rand(16, 24), str(tmp_path / "notes.png")])
    said = str(e.value)
    assert said.startswith("2 of the 3 pictures cannot be used, so none is answered: ") and "\n" not in said
    assert f"{tmp_path / 'absent.png'} does not exist" in said and str(tmp_path / "notes.png") in said
    with pytest.raises(UserError, match="does not exist$"):  # one picture named twice: one picture, said once
        loaded.embed([tmp_path / "absent.png", str(tmp_path / "absent.png")])
    image = torch.rand(16, 24)  # the pictures read, each in its place among the tensors
    both = loaded.embed([tmp_path / "ok.png", image, str(tmp_path / "ok.png")])
    assert torch.equal(both[0], both[2]) and torch.allclose(both[1], loaded.embed(image[None])[0], atol=1e-6)


def test_a_loaded_run_answers_in_eval_mode_while_its_encoder_trains_in_a_network_of_yours(own_run):
    """The README's fine-tuning: the encoder, the run's own object, goes into a network put in
    training mode (dropout on). The run still answers as evaluated, the same every time, and
    leaves each module in the mode it found it."""
    _, run = own_run
    loaded = LoadedRun(run)
    images = torch.rand(20, 1, 16, 24)
    expected = loaded.embed(images)
    net = torch.nn.Sequential(loaded.model.encoder, torch.nn.Flatten(), torch.nn.Linear(loaded.model.encoder.latent, 5))
    net.train()
    assert torch.equal(loaded.embed(images), expected) and torch.equal(loaded.embed(images), expected)
    assert all(m.training for m in net.modules()) and not loaded.model.training  # as they were


def test_a_loaded_run_answers_with_its_model_converted_in_a_network_of_yours(own_run):
    """A network of the user's turned to float64 or bf16 (its encoder, the run's own object, with
    it): the run answers in the model's type, fp32 tensors as always (the input was cast to bf16
    by the run's autocast, against float64 weights: torch's error). An encoder in bf16 before an
    fp32 decoder runs under bf16 autocast; one in float64 before it is refused in one line."""
    _, run = own_run
    loaded = LoadedRun(run, precision="fp32")
    images = torch.rand(5, 1, 16, 24)
    codes, pictures = loaded.embed(images), loaded.reconstruct(images)
    net = torch.nn.Sequential(loaded.model.encoder, torch.nn.Flatten(), torch.nn.Linear(loaded.model.encoder.latent, 5))
    for dtype, within in ((torch.float64, 1e-5), (torch.float32, 0)):
        net.to(dtype)  # (float64 and back is exact)
        got = loaded.embed(images)
        assert got.dtype == torch.float32 and got.device.type == "cpu"
        assert (got - codes).abs().max() <= within * codes.abs().max()
    net.to(torch.float64)
    with pytest.raises(UserError, match=rf"^{re.escape(str(run))}'s model is now in parts of float32 and float64 \(a "
                                        r"network of yours converted its encoder\): convert all of run\.model alike, "
                                        r"or put copy\.deepcopy\(run\.model\.encoder\) in your network$"):
        loaded.reconstruct(images)
    loaded.model.to(torch.float64)  # all of it
    assert (loaded.reconstruct(images) - pictures).abs().max() <= 1e-5
    loaded.model.float()
    net.to(torch.bfloat16)
    assert (loaded.embed(images) - codes).abs().max() <= 0.05 * codes.abs().max()
    assert (loaded.reconstruct(images) - pictures).abs().max() <= 0.05  # bf16 encoder, fp32 decoder: under autocast


def test_a_loaded_run_applies_its_model_a_batch_at_a_time(own_run, monkeypatch):
    """However many images are given, the model takes ``EVAL_BATCH`` at a time (memory stays flat),
    and the answers are those of the images one batch at a time, in order."""
    from fashionae import inference
    _, run = own_run
    loaded = LoadedRun(run)
    images = torch.rand(7, 1, 16, 24)
    whole = [loaded.embed(images[i:i + 3]) for i in range(0, 7, 3)]
    sizes = []
    embed = loaded.model.embed
    monkeypatch.setattr(inference, "EVAL_BATCH", 3)
    monkeypatch.setattr(loaded.model, "embed", lambda x: sizes.append(len(x)) or embed(x))
    assert torch.equal(loaded.embed(images), torch.cat(whole)) and sizes == [3, 3, 1]
    assert loaded.embed(images[:0]).shape == (0, 4) and loaded.reconstruct(images).shape == (7, 1, 16, 24)


def test_a_loaded_runs_outputs_are_ordinary_tensors_a_probe_can_train_on(own_run):
    _, run = own_run
    codes = LoadedRun(run).embed(torch.rand(5, 1, 16, 24))
    assert not codes.is_inference() and not codes.requires_grad
    probe = torch.nn.Linear(codes.shape[1], 3)
    torch.nn.functional.cross_entropy(probe(codes), torch.tensor([0, 1, 2, 0, 1])).backward()
    assert probe.weight.grad is not None
    codes += 1  # in place, too


def test_a_loaded_run_takes_pixels_as_the_dataset_holds_them_and_refuses_other_scales(own_run):
    """uint8 pixels (the dataset's form) are divided by 255; numpy arrays are taken as tensors;
    floats outside [0, 1] (0-255 values as floats, NaN) are refused, not silently misread."""
    _, run = own_run
    loaded = LoadedRun(run)
    torch.manual_seed(0)
    pixels = torch.randint(0, 256, (3, 1, 16, 24), dtype=torch.uint8)
    pixels[0, 0, 0, :2] = torch.tensor([0, 255], dtype=torch.uint8)  # both ends of the range
    expected = loaded.embed(pixels.float() / 255)
    assert torch.equal(loaded.embed(pixels), expected)
    assert torch.equal(loaded.embed(pixels.numpy()), expected)
    assert torch.equal(loaded.embed(list(pixels.numpy())), expected)  # a list of arrays
    assert torch.equal(loaded.embed((pixels.float() / 255).double()), expected)  # float64 is fine
    flipped = pixels.numpy()[:, :, ::-1]  # numpy's own layouts and byte orders
    assert torch.equal(loaded.embed(flipped), loaded.embed(torch.from_numpy(flipped.copy())))
    assert torch.equal(loaded.embed((pixels.numpy() / 255).astype(">f4")), expected)
    mixed = [pixels[0].numpy(), pixels[1].float() / 255, pixels[2]]  # each item by its own kind
    assert torch.allclose(loaded.embed(mixed), expected, atol=1e-6)
    # arrays of one image each, [H, W] or [H, W, 1], beside a picture's path: each item one image
    items = [pixels[0, 0].numpy(), pixels[1, 0, :, :, None].numpy(), pixels[2]]
    assert torch.allclose(loaded.embed(items), expected, atol=1e-6)
    picture = run.parent / "picture.png"
    Image.fromarray(np.zeros((16, 24), np.uint8)).save(picture)
    assert torch.allclose(loaded.embed([picture, pixels[0, 0].numpy()])[1:], loaded.embed(pixels[:1]), atol=1e-4)
    with pytest.raises(UserError, match=r"^each image of a list must be \[16, 24\] \(or \[1, 16, 24\]\), got \[2, 16, 24\]$"):
        loaded.embed([pixels[0], pixels[:2, 0]])
    with pytest.raises(UserError, match=r"^images must be pictures, tensors or numpy arrays of numbers \("):
        loaded.embed(np.full((1, 16, 24), "white"))
    with pytest.raises(UserError, match=r"^images must be \[N, 1, 16, 24\] \(or \[N, 16, 24\]\), got \[2, 28, 28\]$"):
        loaded.embed(np.zeros((2, 28, 28), np.uint8))  # the shape as given, not as reshaped
    assert loaded.embed([]).shape == (0, expected.shape[1])  # nothing in, nothing out
    assert repr(loaded) == f"LoadedRun({str(run)!r}: autoencoder, paper encoder, linear 4, 16x24 images, " \
                           f"{loaded.precision})"
    with pytest.raises(UserError, match=r"^image pixels must be floats in \[0, 1\] or uint8, got values from -1 to "
                                        r"\S+; map images normalised to \[-1, 1\] back with \(x \+ 1\) / 2$"):
        loaded.embed(pixels.float() / 255 * 2 - 1)  # (torchvision's Normalize(0.5, 0.5))
    for bad, shown in ((pixels.float(), "from 0 to 255"), (pixels.long() - 1, "from -1 to 254")):
        with pytest.raises(UserError, match=rf"^image pixels must be floats in \[0, 1\] or uint8, got values "
                                            rf"{shown}; divide 0-255 pixels by 255$"):
            loaded.embed(bad)
    for bad, shown in ((pixels.float() / 255 - 0.5, "from -0.5 to 0.5"), (pixels.float() / 255 + 0.5, "from 0.5 to 1.5"),
                       ((pixels.float() / 255 - 0.286) / 0.353, r"from -0.81\S* to 2.02\S*")):  # (mean and std)
        with pytest.raises(UserError, match=rf"^image pixels must be floats in \[0, 1\] or uint8, got values "
                                            rf"{shown}; undo their normalisation \(x \* std \+ mean\), back to "
                                            r"\[0, 1\] as the dataset's pixels are$"):
            loaded.embed(bad)
    over, under = pixels.float() / 255, pixels.float() / 255  # a hair outside: a resize's overshoot, say
    over.view(-1)[0], under.view(-1)[0] = 1.0000001, -1e-7
    for bad, shown in ((over, r"from \S+ to 1.0000001"), (under, r"from -1e-07 to \S+")):
        with pytest.raises(UserError, match=rf"^image pixels must be floats in \[0, 1\] or uint8, got values {shown}; "
                                            r"clamp them to \[0, 1\] \(x\.clamp\(0, 1\)\): arithmetic's rounding, "
                                            r"a resize's overshoot$"):
            loaded.embed(bad)
    for bad, shown in ((pixels.long() + 1, "from 1 to 256"), (pixels.numpy().astype(np.uint16) * 257, "from 0 to 65535")):
        with pytest.raises(UserError, match=rf"^image pixels must be floats in \[0, 1\] or uint8, got values {shown}; "
                                            r"divide them by their full scale \(65535 for 16-bit pixels, 255 for 8-bit "
                                            r"ones\)$"):
            loaded.embed(bad)  # integers beyond 255: 16-bit pixels, likely
    with pytest.raises(UserError, match=r"^image pixels must be floats in \[0, 1\] or uint8, got values from 0 to 255; "
                                        r"give them as uint8 \(\.astype\(np\.uint8\), or \.to\(torch\.uint8\)\)$"):
        loaded.embed(pixels.numpy().astype(np.int64))  # 0-255 integers of another type
    for odd in (math.nan, math.inf, -math.inf):  # (an infinity is not told to divide by 255)
        with pytest.raises(UserError, match=r"^image pixels must be floats in \[0, 1\] or uint8, got values that are "
                                            r"not a number \(NaN\) or infinite$"):
            loaded.embed(torch.full((1, 1, 16, 24), odd))


def test_a_loaded_run_answers_as_the_run_measured_itself_in_its_precision(tiny, tmp_path):
    """A bf16 run applied in bf16 gives the test accuracy its summary records (``fashionae eval``'s
    precision); "auto" is its own precision where this CPU runs bf16 natively, fp32 elsewhere."""
    import fashionae
    from fashionae.data import make_splits
    from fashionae.models import ModelConfig
    from fashionae.runs import RunConfig, execute
    from dataclasses import replace

    from fashionae.training import TrainConfig, native_bf16
    from helpers import QUIET
    t = TrainConfig(epochs=1, batch_size=50, train_subset=300, eval_subset=200, device="cpu", precision="bf16")
    summary = execute(RunConfig(model=ModelConfig(task="classifier", latent=8), train=t, strategy="scratch"),
                      tmp_path / "clf", data=tiny, **QUIET)
    test = make_splits(tiny, t.val, t.train_subset, t.eval_subset)
    run = fashionae.load(tmp_path / "clf", "bf16")
    probabilities = run.predict_proba(test.test_x)
    assert (probabilities.argmax(1) == test.test_y).float().mean().item() == pytest.approx(summary["test_acc"], abs=1e-7)
    fp32 = fashionae.load(tmp_path / "clf", "fp32").predict_proba(test.test_x)
    assert not torch.equal(probabilities, fp32) and torch.allclose(probabilities, fp32, atol=0.02)  # computed in bf16
    from fashionae.runfolder import RunFolder
    config = RunFolder.config
    with pytest.MonkeyPatch.context() as m:  # trained on a GPU, applied here: in bf16 on the CPU, not as on the GPU
        m.setattr(RunFolder, "config", lambda self: replace(c := config(self), train=replace(c.train, device="cuda")))
        assert torch.equal(fashionae.load(tmp_path / "clf", "bf16").predict_proba(test.test_x), probabilities)
    with pytest.raises(UserError, match="is a classifier run; reconstruct needs an autoencoder run"):
        run.reconstruct(test.test_x[:2])  # a classifier has no decoder: said in one line, not a traceback
    assert fashionae.load(tmp_path / "clf").precision == ("bf16" if native_bf16("cpu") else "fp32")
    from fashionae import inference
    execute(RunConfig(model=ModelConfig(latent=8), train=replace(t, precision="fp32")), tmp_path / "ae32",
            data=tiny, **QUIET)
    for native, bf16_run, fp32_run in ((True, "bf16", "fp32"), (False, "fp32", "fp32")):  # bf16 emulated: fp32
        with pytest.MonkeyPatch.context() as m:
            m.setattr(inference, "native_bf16", lambda device: native)
            assert fashionae.load(tmp_path / "clf").precision == bf16_run
            assert fashionae.load(tmp_path / "ae32").precision == fp32_run
    assert repr(fashionae.load(tmp_path / "clf", "fp32")) == \
        f"LoadedRun({str(tmp_path / 'clf')!r}: classifier, paper encoder, linear 8, 28x28 images, 10 classes, fp32)"
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path / 'ae32'))} is an autoencoder run; predicting "
                                        r"classes needs a classifier run \(fashionae train-clf\)$"):
        fashionae.load(tmp_path / "ae32").predict(test.test_x[:2])
    with pytest.raises(UserError, match=r"^precision must be auto, fp32 or bf16, got 'fp16'$"):
        fashionae.load(tmp_path / "clf", "fp16")
    # asked for fp32, it answers in fp32 inside a loop of yours that runs under autocast, the
    # same bits as outside it; bf16 is its own precision there too
    x = test.test_x[:64]
    for precision in ("fp32", "bf16"):
        loaded = fashionae.load(tmp_path / "clf", precision)
        alone = loaded.predict_proba(x), loaded.embed(x)
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cpu", dtype=dtype):
                inside = loaded.predict_proba(x), loaded.embed(x)
            assert all(torch.equal(a, b) for a, b in zip(alone, inside)), (precision, dtype)


def test_a_loaded_runs_encoder_trains_on_inside_a_network_of_your_own(own_run):
    """The README's recipe: ``run.model.encoder`` inside your own torch network, trained by a
    plain loop, learns (the encoder's own weights too), and the run on disk stays as it was."""
    from fashionae import load
    _, run = own_run
    torch.manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.rand(40, 1, 16, 24) * (0.3 + 0.7 * y[:, None, None, None])  # dim or bright: learnable
    codes = load(run).embed(x)
    encoder = load(run).model.encoder
    net = torch.nn.Sequential(encoder, torch.nn.Flatten(), torch.nn.Linear(encoder.latent, 2))
    first = [p.detach().clone() for p in encoder.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    losses = []
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
    assert all(not torch.equal(a, b) for a, b in zip(first, encoder.parameters()))
    assert torch.equal(load(run).embed(x), codes)


def test_an_empty_run_folder_is_refused_not_taken_for_the_folder_it_runs_in(own_run, monkeypatch):
    """fashionae.load(os.environ.get("RUN", "")) with RUN unset: said, as UserError (the error the
    API raises on bad input, fashionae.UserError), not the run that happens to be in the folder."""
    import fashionae
    _, run = own_run
    monkeypatch.chdir(run)
    for empty in ("", "  "):
        with pytest.raises(fashionae.UserError, match=r"^the run folder is empty; give a run's folder"):
            fashionae.load(empty)
    assert fashionae.load(".").task == "autoencoder"  # the folder it runs in, when asked for


def test_a_pil_image_a_sparse_or_a_complex_tensor_is_said_as_such(own_run):
    """Not taken apart by torch (a sparse tensor's internal error, a complex one's imaginary part
    dropped with a warning) nor refused as "not numbers": each said, with what to give instead."""
    from PIL import Image
    _, run = own_run
    loaded = LoadedRun(run)
    with pytest.raises(UserError, match=r"got a PIL image: give its file's path \(prepared as classify prepares it\), "
                                        r"or np.asarray\(image\) if it is in the dataset's form$"):
        loaded.embed(Image.new("L", (24, 16)))
    with pytest.raises(UserError, match="^images must be real numbers in a dense tensor, got a sparse_coo tensor"):
        loaded.embed(torch.rand(2, 16, 24).to_sparse())
    with pytest.raises(UserError, match="^images must be real numbers in a dense tensor, got a strided tensor of "
                                        "complex64$"):
        loaded.embed(torch.rand(2, 16, 24, dtype=torch.complex64))



def test_a_loaded_run_takes_its_datasets_images_saved_as_pictures_as_they_are_on_a_background_not_black(
        own_run, tmp_path):
    """A dataset whose background is not black (noise of 0 to 39 levels here): its run records its
    training images' border level, up to which a picture of their size is in their form, so its
    test images saved as PNGs come back as the dataset holds them; all but the few whose border is
    lighter than 99 % of the training images', which are prepared as photos, with a note. Judged by
    Fashion-MNIST's black (a run from before 0.3.29), almost none would be."""
    import json
    from fashionae.datasets import load_dataset
    data, run = own_run
    loaded = LoadedRun(run)
    from fashionae.data import make_splits
    from fashionae.images import dataset_background, dataset_border
    recorded = json.loads((run / "config.json").read_text())["data"]
    assert loaded.dataset_levels == {"border": recorded["border"], "background": recorded["background"]}
    trained_on = make_splits(load_dataset(data)).train_x  # the training split's images, not the held-out ones
    assert loaded.dataset_levels == {"border": dataset_border(trained_on), "background": dataset_background(trained_on)}
    assert 12.75 < loaded.dataset_levels["background"] < loaded.dataset_levels["border"] == 24.5
    images = load_dataset(data).test_images  # 60
    paths = []
    for i, image in enumerate(images):
        Image.fromarray(image.numpy()).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    for border, taken in ((loaded.dataset_levels["border"], 59), (0.0, 0)):  # (the 60th: a lighter border)
        loaded.dataset_levels["border"] = border
        read = loaded.read_pictures(paths)
        as_they_are = [torch.equal(read[p].pixels, image.float().div(255).unsqueeze(0)) for p, image in zip(paths, images)]
        noted = ["is lighter than the dataset's images'" in " ".join(read[p].caveats) for p in paths]
        assert as_they_are == [not n for n in noted]
        assert sum(as_they_are) == taken
    assert torch.equal(LoadedRun(run).embed(paths[:3]), LoadedRun(run).embed(images[:3]))


def test_a_run_on_a_dataset_of_light_backgrounds_prepares_pictures_dark_on_light_as_its_images(tmp_path, own_run):
    """Garments dark on white (a dataset's images negated): a photo is prepared as for
    Fashion-MNIST, then negated, into the run's form (it was left light on black, which such a run
    never saw: 18 % of Fashion-MNIST's negated test images right as PNGs against 81 % as arrays);
    its own images saved as PNGs are taken as they are, judged from white; a run on dark
    backgrounds prepares the same photo light on black."""
    from fashionae.cli import main
    from fashionae.datasets import write_npz_dataset
    from fashionae.images import dataset_border
    from helpers import synthetic_images
    x, y = synthetic_images(240, 0, size=(16, 24), classes=3)  # (the size of own_run's images)
    xt, yt = synthetic_images(60, 1, size=(16, 24), classes=3)
    x[x < 40], xt[xt < 40] = 0, 0  # black backgrounds, negated below: white
    write_npz_dataset(tmp_path / "light", 255 - x, y, 255 - xt, yt)
    assert main(["train-ae", "--dataset", str(tmp_path / "light"), "--latent", "4", "--epochs", "1",
                 "--batch-size", "40", "--out", str(tmp_path / "ae")]) == 0
    light = LoadedRun(tmp_path / "ae")
    assert light.dataset_levels == {"border": 255.0, "background": 255.0} == {
        "border": dataset_border(255 - x[:216]), "background": 255.0}
    paths = []
    for i, image in enumerate(255 - xt[:5]):  # its own images: dark on white, as PNGs
        Image.fromarray(image.numpy()).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    read = light.read_pictures(paths)
    for p, image in zip(paths, 255 - xt[:5]):
        assert torch.equal(read[p].pixels, image.float().div(255).unsqueeze(0)) and read[p].caveats == ()
    photo = np.full((64, 48), 255, np.uint8)  # a photo: a dark garment on white, larger than the model's size
    photo[8:56, 14:34] = 40
    Image.fromarray(photo).save(tmp_path / "photo.png")
    from fashionae.images import read_picture
    fashion = read_picture(tmp_path / "photo.png", size=(16, 24))  # light on black, in Fashion-MNIST's form
    assert fashion.pixels[0, 0, 0] == 0 and fashion.pixels[0, 8, 12] > 0.9 and fashion.caveats == ()
    on_light = light.read_pictures([str(tmp_path / "photo.png")])[str(tmp_path / "photo.png")]
    assert torch.equal(on_light.pixels, 1 - fashion.pixels) and on_light.caveats == ()
    # on a dataset's background level (own_run's noise: about 19 of 255), its object white as prepared
    dark = LoadedRun(own_run[1])
    on_dark = dark.read_pictures([str(tmp_path / "photo.png")])[str(tmp_path / "photo.png")]
    level = dark.dataset_levels["background"] / 255
    assert 0.05 < level and torch.equal(on_dark.pixels, level + (1 - level) * fashion.pixels)
    for shape in ((16, 24), (64, 48)):  # a white page, as it is or as a photo: blank, on a light dataset too
        Image.fromarray(np.full(shape, 255, np.uint8)).save(tmp_path / "white.png")
        blank = light.read_pictures([str(tmp_path / "white.png")])[str(tmp_path / "white.png")]
        assert blank.caveats == ("blank or nearly so once prepared: the answer says nothing",)
        assert torch.equal(blank.pixels, torch.ones(1, 16, 24))
    # reconstruct's picture: the two apart by a black band on white ones (a white one vanished there)
    assert main(["reconstruct", str(tmp_path / "ae"), str(tmp_path / "photo.png"), "-o", str(tmp_path / "pair")]) == 0
    pair = np.asarray(Image.open(tmp_path / "pair" / "photo_reconstruction.png"))[::8, ::8]
    assert pair.shape == (16, 50) and (pair[:, 24:26] == 0).all() and (pair[:, 0] == 255).all()
    grey = dict(light.dataset_levels, background=128.0)  # dark garments on mid-grey: ending on it
    light.dataset_levels = grey
    on_grey = light.read_pictures([str(tmp_path / "photo.png")])[str(tmp_path / "photo.png")]
    assert torch.equal(on_grey.pixels, 128 / 255 * (1 - fashion.pixels)) and on_grey.pixels[0, 0, 0] == 128 / 255
