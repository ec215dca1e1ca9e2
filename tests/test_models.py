import dataclasses
import itertools
import json
import math
import os
import pickle
import re

import numpy as np
import pytest
import torch

from fashionae.errors import UserError
from fashionae.modelfile import load_model
from fashionae.models import ARCHS, DECODERS, ENCODER_TYPES, Dropout, ModelConfig, build_model, parameter_counts
from fashionae.settings import CLASSIFIER
from helpers import model_file_bytes


@pytest.mark.parametrize("arch, decoder, encoder_type",
                         list(itertools.product(ARCHS, DECODERS, ENCODER_TYPES)))
def test_autoencoder_shapes_and_one_step(arch, decoder, encoder_type):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, latent=16, decoder=decoder, encoder_type=encoder_type)
    model = build_model(cfg)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert out.output.shape == x.shape and out.loss.ndim == 0
    assert 0 <= out.output.min().item() and out.output.max().item() <= 1
    channels = 128 if encoder_type == "strong" else 64
    assert model.embed(x).shape == (4, 16 if arch == "linear" else channels * 49)
    assert model.reconstruct(x).shape == x.shape
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    out.loss.backward()
    opt.step()


@pytest.mark.parametrize("arch", ARCHS)
def test_the_encoder_refuses_images_it_was_not_made_for_in_one_line(arch):
    # a user's own network: torch's error names a weight, or there is none (a conv encoder took
    # 32x32 images and gave 8x8 maps, no longer its ``latent`` values)
    cfg = ModelConfig(arch=arch, latent=16, image_size=(16, 24))
    for model in (build_model(cfg), build_model(dataclasses.replace(cfg, task=CLASSIFIER))):
        assert model.encoder(torch.rand(2, 1, 16, 24)).flatten(1).shape == (2, model.encoder.latent)
        for x, said in ((torch.rand(2, 1, 24, 16), "float32 of shape [2, 1, 24, 16]"),
                        (torch.rand(2, 1, 32, 28), "float32 of shape [2, 1, 32, 28]"),
                        (torch.rand(2, 3, 16, 24), "float32 of shape [2, 3, 16, 24]"),
                        (torch.rand(1, 16, 24), "float32 of shape [1, 16, 24]"),
                        (torch.zeros(2, 1, 16, 24, dtype=torch.uint8), "uint8 of shape [2, 1, 16, 24]"),
                        (["shirt.png"], "Python's list, not a tensor"),  # (a picture's path: the hint is for it)
                        (np.zeros((2, 1, 16, 24), np.float32), "numpy's ndarray, not a tensor")):
            expected = (f"the encoder takes float images of shape [N, 1, 16, 24] (uint8 pixels / 255), got {said}; "
                        "resize or convert them, or give pictures' paths to fashionae.load(run).embed, which "
                        "prepares them")
            for call in (model.encoder, model.embed, model):
                with pytest.raises(UserError) as refused:
                    call(x)
                assert str(refused.value) == expected
    # torch.func's transforms: vmap sees one image at a time, [1, H, W] (per-image gradients, say)
    encoder = model.encoder.eval()
    x = torch.rand(3, 1, 16, 24)
    assert torch.allclose(torch.func.vmap(encoder)(x), encoder(x), atol=1e-6)
    with pytest.raises(UserError, match=r"^the encoder takes float images of shape \[N, 1, 16, 24\] \(uint8 pixels / "
                                        r"255\), got float32 of shape \[1, 24, 16\]"):
        torch.func.vmap(encoder)(torch.rand(3, 1, 24, 16))


@pytest.mark.parametrize("arch", ARCHS)
def test_the_encoders_gradients_by_torch_func_are_autograds(arch):
    """torch.func.grad and vmap(grad) (per-image gradients) through the encoder, in both modes'
    layers: fashionae's own (autograd.Functions a transform cannot take) give way to plain ones."""
    encoder = build_model(ModelConfig(arch=arch, latent=16)).encoder.eval()
    x = torch.rand(3, 1, 28, 28, requires_grad=True)
    encoder(x).square().sum().backward()
    assert torch.allclose(torch.func.grad(lambda v: encoder(v).square().sum())(x.detach()), x.grad, atol=1e-5)
    per_image = torch.func.vmap(torch.func.grad(lambda v: encoder(v[None]).square().sum()))(x.detach())
    assert torch.allclose(per_image, x.grad, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_encoder_traces_and_exports_in_training_and_in_eval_mode(arch):
    """torch.jit.trace and torch.export of the encoder: in training mode its dropout is torch's own
    (the masks' draw is no op a recorded graph holds: an internal error of torch's, a
    data-dependent error of export's), fresh at each call; in eval mode it computes what the
    encoder does."""
    import warnings
    torch.manual_seed(0)
    encoder, x = build_model(ModelConfig(arch=arch, latent=16)).encoder, torch.rand(4, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.jit's own deprecation)
        traced = torch.jit.trace(encoder.train(), x, check_trace=False)
        assert traced(x).shape == encoder(x).shape and not torch.equal(traced(x), traced(x))
        traced = torch.jit.trace(encoder.eval(), x)
    assert torch.equal(traced(x), encoder(x))
    exported = torch.export.export(encoder.train(), (x,)).module()
    assert not torch.equal(exported(x), exported(x))
    exported = torch.export.export(encoder.eval(), (x,)).module()
    assert torch.equal(exported(x), encoder(x))


@pytest.mark.filterwarnings("ignore:torch.ao.quantization:DeprecationWarning")  # torch's own
def test_a_classifier_converted_whole_runs_its_head_in_its_own_type():
    """The head runs in fp32 whatever the autocast, but in a classifier a user converted (float64,
    bf16) in its type: its input was made fp32 against the converted weights (torch's error)."""
    model = build_model(ModelConfig(task=CLASSIFIER, latent=16)).eval()
    x = torch.rand(4, 1, 28, 28)
    logits = model.logits(x)
    for dtype, within in ((torch.float64, 1e-5), (torch.bfloat16, 0.1)):
        converted = build_model(ModelConfig(task=CLASSIFIER, latent=16)).eval()
        converted.load_state_dict(model.state_dict())
        converted.to(dtype)
        got = converted.logits(x.to(dtype))
        assert got.dtype == dtype and (got.float() - logits).abs().max() <= within
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # (its
    assert (quantized.logits(x) - logits).abs().max() <= 0.1  # head's weight is a method: it runs in fp32)


@pytest.mark.parametrize("arch, encoder_type", list(itertools.product(ARCHS, ENCODER_TYPES)))
def test_classifier_shapes(arch, encoder_type):
    model = build_model(ModelConfig(task="classifier", arch=arch, latent=32, encoder_type=encoder_type))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 9])
    out = model(x, y)
    assert out.output.shape == (4, 10) and out.loss.item() > 0
    assert model.predict(x).shape == (4,)


def test_paper_layout_matches_the_authors_code():
    model = build_model(ModelConfig(arch="linear", latent=512))
    names = [type(m).__name__ for m in model.encoder.features]
    assert names == ["Conv2d", "ReLUDropout", "MaxPool2d"] * 2
    n_params = sum(p.numel() for p in model.parameters())
    # conv 320 + 18,496; Linear 3136x512 + 512; Linear 512x3136 + 3136; convT 8,224 + 129
    assert n_params == 320 + 18_496 + 3136 * 512 + 512 + 512 * 3136 + 3136 + 8_224 + 129


def test_paper_head_bounds_outputs():
    model = build_model(ModelConfig(task="classifier", paper_head=True))
    out = model(torch.rand(8, 1, 28, 28) * 5, torch.zeros(8, dtype=torch.long))
    assert out.output.min().item() >= 0 and out.output.max().item() <= 1
    assert out.loss.item() > 1.46  # the defect: cross-entropy of logits bounded to [0, 1]


def test_bad_settings():
    for bad in (dict(arch="mlp"), dict(decoder="k5"), dict(latent=0), dict(dropout=1.0),
                dict(encoder_type="resnet"), dict(latent=-3)):
        with pytest.raises(UserError):
            ModelConfig(**bad).validate()


def test_save_load_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv", decoder="k3")).eval()
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_file_bytes(model))
    loaded = load_model(path)
    x = torch.rand(3, 1, 28, 28)
    assert loaded.config == model.config
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))
    # the same model gives the same bytes, so the same checksum (a classifier records its encoder's);
    # safetensors alone writes its metadata in an order that changes from call to call
    assert len({model_file_bytes(model) for _ in range(8)}) == 1
    header = path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")]
    assert len(header) % 8 == 0 and list(json.loads(header)) == sorted(json.loads(header))


def test_tampered_truncated_and_pickled_model_files(tmp_path):
    model = build_model(ModelConfig(arch="linear", latent=8))
    raw = bytearray(model_file_bytes(model))
    path = tmp_path / "model.safetensors"
    raw[-5] ^= 0xFF  # flip bits in the last weight
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"model.safetensors fails its weights checksum: the file was "
                                        r"modified or damaged; train it again$"):
        load_model(path)
    path.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(UserError, match=r"^model file .* is not a valid safetensors file .*truncated or tampered"):
        load_model(path)
    with pytest.raises(UserError, match=r"^model file .*absent.safetensors is missing"):
        load_model(tmp_path / "absent.safetensors")
    # torch.save's files renamed .safetensors (its zip archive, a bare pickle) are said as pickles, never read as one
    for zipped in (True, False):
        torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zipped)
        kind = r"a zip archive \(torch.save's format\)" if zipped else r"a pickle \(torch.save's\)"
        with pytest.raises(UserError, match=rf"^model file .*model.safetensors is {kind}, not a safetensors file; "
                                            r"fashionae never loads pickles"):
            load_model(path)
    from fashionae.modelfile import is_pickle
    header = b'{"w":' + b" " * 635  # a safetensors header of 640 bytes: its length begins as a pickle does
    assert not is_pickle((640).to_bytes(8, "little") + header) and (640).to_bytes(8, "little")[:2] == b"\x80\x02"


def _raw_safetensors(header, body: bytes = b"") -> bytes:
    """A safetensors file by hand: the 8-byte little-endian length, the JSON header, the data."""
    head = json.dumps(header).encode()
    return len(head).to_bytes(8, "little") + head + body


W = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


def test_a_damaged_model_file_says_what_is_wrong_with_its_header(tmp_path):
    """Each way a file's header can fail is named in the refusal, with the file's size and the one
    its header gives where they differ: a copy cut short is told from a file grown or edited."""
    from safetensors.torch import save
    good = save({"w": torch.zeros(300)})  # 1,200 bytes of data
    n = int.from_bytes(good[:8], "little")
    path = tmp_path / "model.safetensors"
    for data, reason in [
            (good[:5], "its header is cut short"),
            (good[:8 + n - 1], "its header is cut short"),
            (_raw_safetensors([1, 2]), "its header is not a table"),
            (_raw_safetensors({"__metadata__": {"epoch": 3}, **W}, bytes(8)), "its metadata is not a table of text"),
            (_raw_safetensors({"__metadata__": ["a"], **W}, bytes(8)), "its metadata is not a table of text"),
            (_raw_safetensors({"w": {"dtype": "F32", "shape": [2]}}, bytes(8)), "its header does not place its tensors"),
            (_raw_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, math.inf]}}, bytes(8)),
             "its header does not place its tensors"),  # (an offset of 1e400: not an internal error)
            (len(deep := b"[" * 100_000 + b"]" * 100_000).to_bytes(8, "little") + deep, "its header is nested too deeply"),
            (good + bytes(3), f"{len(good) + 3:,} bytes where its header gives {len(good):,}"),
            (good[:-1], f"{len(good) - 1:,} bytes where its header gives {len(good):,}")]:
        path.write_bytes(data)
        with pytest.raises(UserError, match=rf"^model file {re.escape(str(path))} is not a valid safetensors file "
                                            rf"\({re.escape(reason)}\); it is truncated or tampered: train it again$"):
            load_model(path)


def test_a_header_the_library_refuses_is_named_with_the_librarys_reason(tmp_path):
    """A header whose places fit the file's size but not its tensors (3 floats in 8 bytes)."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(_raw_safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)))
    with pytest.raises(UserError, match=rf"^model file {re.escape(str(path))} is not a valid safetensors file "
                                        r"\(.*invalid shape, data type, or offset.*\); it is truncated or "
                                        r"tampered: train it again$"):
        load_model(path)


def test_a_safetensors_file_of_metadata_alone_is_read_whole(tmp_path):
    """No tensors (a header of exactly its length, no data): read, not taken for one cut short."""
    from safetensors.torch import save
    from fashionae.modelfile import read_safetensors
    path = tmp_path / "empty.safetensors"
    path.write_bytes(save({}, metadata={"format": "x"}))
    assert read_safetensors(path, "file") == ({}, {"format": "x"})


def test_safetensors_that_are_not_model_files_are_refused(tmp_path):
    from safetensors.torch import save
    path = tmp_path / "other.safetensors"
    path.write_bytes(save({"w": torch.zeros(2)}))
    with pytest.raises(UserError, match=r"other.safetensors is not a fashionae model file \(no "
                                        r"fashionae-model-1 metadata\)$"):
        load_model(path)
    path.write_bytes(save({"w": torch.zeros(2)}, metadata={"format": "fashionae-model-1",
                                                           "model_config": "{not json"}))
    with pytest.raises(UserError, match=r"other.safetensors has damaged model settings in its metadata$"):
        load_model(path)
    path.write_bytes(save({"w": torch.zeros(2)}, metadata={"format": "fashionae-model-1",
                                                           "model_config": '{"bogus": 1}'}))
    with pytest.raises(UserError, match=r"other.safetensors holds model settings this fashionae cannot use "
                                        r"\(unknown model setting 'bogus'; known: .*\); it was written by "
                                        r"another version, or edited$"):
        load_model(path)


def test_a_safetensors_file_of_another_format_is_not_a_model_file(tmp_path):
    """A safetensors file whose metadata names another format (another tool's, or a later
    fashionae's) is said to be no fashionae model file, not a model file with damaged settings."""
    from safetensors.torch import save
    path = tmp_path / "other.safetensors"
    path.write_bytes(save({"w": torch.zeros(2)}, metadata={"format": "pt"}))
    with pytest.raises(UserError, match=r"other.safetensors is not a fashionae model file \(no "
                                        r"fashionae-model-1 metadata\)$"):
        load_model(path)


def test_a_folder_where_the_model_file_should_be_is_missing_not_damaged(tmp_path):
    """A folder named model.safetensors is no model file: the user is told to train the model or
    check the path, not that a file is truncated or tampered."""
    (tmp_path / "model.safetensors").mkdir()
    with pytest.raises(UserError, match=r"^model file .*model.safetensors is missing; train the model "
                                        r"first or check the path$"):
        load_model(tmp_path / "model.safetensors")


def test_the_strong_encoder_drops_after_each_pool_and_keeps_seven_by_seven():
    enc = build_model(ModelConfig(encoder_type="strong", dropout=0.3, latent=16)).encoder
    kinds = [type(m).__name__ for m in enc.features]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d", "Dropout"] + \
        ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d", "Dropout"] + ["Conv2d", "BatchNorm2d", "ReLU"]
    assert all(m.p == 0.3 for m in enc.features if isinstance(m, Dropout))
    assert enc.features(torch.rand(2, 1, 28, 28)).shape == (2, 128, 7, 7)


def test_a_frozen_classifier_encoder_takes_no_gradient_and_unlabelled_input_costs_nothing():
    model = build_model(ModelConfig(task="classifier", latent=16))
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    out = model(torch.rand(3, 1, 28, 28))  # no labels: predictions only
    assert out.loss.shape == () and out.loss.item() == 0 and out.prediction.shape == (3,)


def test_edited_model_settings_are_refused(tmp_path):
    """The settings in the metadata decide how the weights are used (dropout rate, the paper's
    Sigmoid head): an edit that leaves the weights alone is refused like a weight edit."""
    from safetensors import safe_open
    from safetensors.torch import save
    model = build_model(ModelConfig(arch="linear", latent=8))
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_file_bytes(model))
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    settings = json.loads(meta["model_config"])
    settings["dropout"] = 0.5
    path.write_bytes(save(tensors, metadata={**meta, "model_config": json.dumps(settings)}))
    with pytest.raises(UserError, match=r"fails its settings checksum: the model settings in its metadata "
                                        r"were modified; train it again$"):
        load_model(path)
    # the untouched file loads
    path.write_bytes(save(tensors, metadata=meta))
    assert load_model(path).config == model.config


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickles_are_never_unpickled(tmp_path):
    target = tmp_path / "pwned"
    for name in ("model.pt", "model.pth", "model.pkl", "model.safetensors"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(_Exploit(str(target))))
        with pytest.raises(UserError):
            load_model(path)
        assert not target.exists()


@pytest.mark.parametrize("encoder_type", ENCODER_TYPES)
def test_every_encoder_type_saves_and_loads(tmp_path, encoder_type):
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_type=encoder_type, latent=8)).eval()
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_file_bytes(model))
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(load_model(path).reconstruct(x), model.reconstruct(x))


def test_paper_head_predictions_cannot_tie_in_bf16():
    """Two large logits saturate the Sigmoid to exactly 1.0 in bf16 (argmax would pick the lower
    class); the head runs in fp32 and predictions come from its logits, so the larger one wins."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(task="classifier", latent=8, paper_head=True)).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 0, 8.0, 0, 0, 0, 0, 9.0, 0, 0]))
    assert torch.sigmoid(torch.tensor([8.0, 9.0]).bfloat16()).tolist() == [1.0, 1.0]  # the tie
    x, y = torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, y)
        predicted = model.predict(x)
    assert out.output.dtype == torch.float32 and out.output[0, 7] > out.output[0, 2]
    assert out.prediction.tolist() == [7] * 4 and predicted.tolist() == [7] * 4


def test_load_weights_names_what_does_not_fit():
    from fashionae.modelfile import load_weights
    model = build_model(ModelConfig(latent=8))
    good = {k: v.clone() for k, v in model.state_dict().items()}
    first = next(iter(good))
    with pytest.raises(UserError, match=rf"^src does not match the model's architecture \(missing: "
                                        rf"\['{re.escape(first)}'\], unexpected: \[\]\)$"):
        load_weights(model, {k: v for k, v in good.items() if k != first}, "src")
    with pytest.raises(UserError, match=r"\(missing: \[\], unexpected: \['extra.weight'\]\)$"):
        load_weights(model, {**good, "extra.weight": torch.zeros(1)}, "src")
    key = "encoder.bottleneck.1.weight"
    with pytest.raises(UserError, match=rf"^src: tensor {re.escape(key)} is torch.float32\[3, 3\], the "
                                        r"architecture needs torch.float32\[8, 3136\]$"):
        load_weights(model, {**good, key: torch.zeros(3, 3)}, "src")
    names = sorted(good)[:4]  # at most three named of each
    with pytest.raises(UserError, match=rf"\(missing: {re.escape(str(names[:3]))}, unexpected: \[\]\)$"):
        load_weights(model, {k: v for k, v in good.items() if k not in names}, "src")
    load_weights(model, {"ae." + k: v for k, v in good.items()}, "src", prefix="ae.")


def test_a_pickle_is_refused_by_its_name_whatever_its_case(tmp_path):
    for name in ("model.pt", "MODEL.PT", "weights.Ckpt"):
        (tmp_path / name).write_bytes(b"not read")
        with pytest.raises(UserError, match=r"looks like a PyTorch pickle; fashionae never loads pickles, "
                                            r"since unpickling runs code from the file: use a fashionae run "
                                            r"folder \(model.safetensors\)$"):
            load_model(tmp_path / name)


def test_model_settings_errors_say_model_setting():
    with pytest.raises(UserError, match=r"^unknown model setting 'bogus'; known: arch, "):
        ModelConfig.from_dict({"bogus": 1})


def test_the_ablation_drops_after_each_pool():
    """``dropout_after_pool``: Conv -> ReLU -> MaxPool 2 -> Dropout, twice, still 64 x 7 x 7."""
    enc = build_model(ModelConfig(dropout_after_pool=True, dropout=0.3, latent=16)).encoder
    assert [type(m).__name__ for m in enc.features] == ["Conv2d", "ReLU", "MaxPool2d", "Dropout"] * 2
    assert all(m.p == 0.3 for m in enc.features if isinstance(m, Dropout))
    assert enc.features(torch.rand(2, 1, 28, 28)).shape == (2, 64, 7, 7)


def test_the_linear_bottleneck_is_relu_then_dropout():
    enc = build_model(ModelConfig(arch="linear", latent=16, dropout=0.3)).encoder
    assert [type(m).__name__ for m in enc.bottleneck] == ["Flatten", "Linear", "ReLUDropout"]
    assert enc.bottleneck[2].p == 0.3
    assert enc.eval()(torch.randn(4, 1, 28, 28)).min() >= 0  # ReLU'd codes, as the author's


@pytest.mark.parametrize("decoder, kernel, padding, output_padding",
                         [("k2", 2, 0, 0), ("k3", 3, 1, 1), ("k4", 4, 1, 0)])
def test_each_decoder_kind_builds_its_own_kernel(decoder, kernel, padding, output_padding):
    dec = build_model(ModelConfig(arch="conv", decoder=decoder)).decoder
    ups = [m for m in dec.layers if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(ups) == 2
    for m in ups:
        assert (m.kernel_size, m.stride, m.padding, m.output_padding) == \
            ((kernel,) * 2, (2, 2), (padding,) * 2, (output_padding,) * 2)
    assert dec(torch.rand(2, 64, 7, 7)).shape == (2, 1, 28, 28)


def test_a_model_file_whose_weights_do_not_fit_its_settings_names_the_file(tmp_path):
    """Checksums that agree with the file's own contents, but a tensor too few for its settings:
    refused, and the message names the file."""
    from safetensors.torch import save

    from fashionae.modelfile import (
        MODEL_FORMAT,
        text_sha256,
        model_tensors,
        tensors_sha256,
    )
    model = build_model(ModelConfig(latent=8))
    tensors = model_tensors(model)
    tensors.pop(sorted(tensors)[0])
    settings = json.dumps(dataclasses.asdict(model.config))
    path = tmp_path / "model.safetensors"
    path.write_bytes(save(tensors, metadata={"format": MODEL_FORMAT, "model_config": settings,
                                             "weights_sha256": tensors_sha256(tensors),
                                             "settings_sha256": text_sha256(settings)}))
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))} does not match the model's architecture"):
        load_model(path)


def test_a_truncated_model_file_says_to_train_it_again(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_file_bytes(build_model(ModelConfig(latent=8)))[:100])
    with pytest.raises(UserError, match=r"^model file .* is not a valid safetensors file \(.*\); it is "
                                        r"truncated or tampered: train it again$"):
        load_model(path)


def test_load_weights_names_at_most_three_unexpected_tensors():
    from fashionae.modelfile import load_weights
    model = build_model(ModelConfig(latent=8))
    extra = {f"extra{i}": torch.zeros(1) for i in range(4)}
    with pytest.raises(UserError, match=r"unexpected: \['extra0', 'extra1', 'extra2'\]\)$"):
        load_weights(model, {**model.state_dict(), **extra}, "src")


@pytest.mark.parametrize("size, problem", [((30, 28), r"must be multiples of 4 of at least 8 \(the encoder halves them "
                                                       r"twice\), got 30x28"),
                                           ((4, 8), "must be multiples of 4 of at least 8"),
                                           ((28,), r"must be \[height, width\], got \(28,\)"),
                                           ((28.0, 28), r"must be \[height, width\]")])
def test_an_image_size_the_encoder_cannot_halve_twice_is_refused(size, problem):
    with pytest.raises(UserError, match=r"^image_size " + problem):
        ModelConfig(image_size=size).validate()
    assert ModelConfig(image_size=(8, 12)).validate().image_size == (8, 12)


def test_parameter_counts_allocate_nothing_and_count_what_build_model_builds():
    for cfg in (ModelConfig(), ModelConfig(arch="conv", encoder_type="strong"), ModelConfig(task=CLASSIFIER, latent=64)):
        model = build_model(cfg)
        assert parameter_counts(cfg) == (sum(p.numel() for p in model.parameters()),
                                         sum(p.numel() for p in model.encoder.parameters()))
    assert parameter_counts(ModelConfig(latent=2**31 - 1))[0] > 10**13  # 50 TB of fp32 weights: counted, not built


def test_a_model_file_that_cannot_be_read_says_why(tmp_path, monkeypatch):
    import errno
    from fashionae import modelfile
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_file_bytes(build_model(ModelConfig(latent=8))))

    def failing(f):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(modelfile, "safetensors_header", failing)
    with pytest.raises(UserError, match=rf"^cannot read model file {re.escape(str(path))}: Input/output error$"):
        load_model(path)


def test_a_model_file_and_a_checkpoint_are_written_from_the_tensors_without_a_copy_in_memory(tmp_path):
    """safetensors' ``save`` builds the whole file as bytes (and a sorted header copied it again):
    beside the weights, gradients and Adam's moments that made a large model's saving its peak, and
    a model that trained in memory was killed at its first checkpoint. Written from the tensors in
    place, saving allocates next to nothing (tracemalloc sees every bytes object Python makes)."""
    import tracemalloc
    from safetensors.torch import load_file
    from fashionae.checkpoint import save_checkpoint
    from fashionae.modelfile import write_model_file
    model = build_model(ModelConfig(arch="linear", latent=512))  # 3.3 M parameters, 13 MB of weights
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 28, 28)).loss.backward()
    opt.step()
    weights = sum(p.numel() * 4 for p in model.parameters())
    tracemalloc.start()
    try:
        write_model_file(str(tmp_path / "model.safetensors"), model)
        save_checkpoint(tmp_path / "checkpoint.safetensors", model, opt, 1, [], [{}], {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < weights / 20, f"saving allocated {peak:,} bytes for {weights:,} bytes of weights"
    assert torch.equal(load_file(tmp_path / "model.safetensors")["encoder.bottleneck.1.weight"], model.encoder.bottleneck[1].weight)
    assert load_model(tmp_path / "model.safetensors").config == model.config


def test_a_full_disk_while_a_checkpoint_is_written_is_one_line_and_keeps_the_last_one(tmp_path, monkeypatch):
    """safetensors says a full disk in an error of its own ("... (os error 28)"): taken as Python's,
    it is the one line of any full disk, and the checkpoint before stays whole, no temporary beside it."""
    import safetensors.torch
    from safetensors import SafetensorError
    from fashionae.checkpoint import save_checkpoint
    model = build_model(ModelConfig(arch="linear", latent=8))
    opt = torch.optim.Adam(model.parameters())
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, opt, 1, [], [{}], {})
    before = path.read_bytes()

    def full(*a, **k):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(UserError, match=r"^no space left to write .*checkpoint.safetensors; free some disk space"):
        save_checkpoint(path, model, opt, 2, [], [{}], {})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_model_file_written_in_place_has_the_users_mode_and_its_librarys_temporary_is_a_leftover(tmp_path):
    """safetensors' save_file puts a temporary of its own in the path it is given (a rename): the
    file then written is the one made readable by the umask and synced, not the one mkstemp made
    (0600); and a writer killed inside it leaves a ".tmpXXXXXX" that a run folder knows as its own."""
    from fashionae.files import atomic_write, is_leftover
    from fashionae.modelfile import write_model_file
    model = build_model(ModelConfig(arch="linear", latent=8))
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "model.safetensors", lambda staged: write_model_file(staged, model))
    finally:
        os.umask(old)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert load_model(tmp_path / "model.safetensors").config == model.config
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert is_leftover(tmp_path / ".tmpQcBlMy") and not is_leftover(tmp_path / ".tmpQcBlMy.png")
