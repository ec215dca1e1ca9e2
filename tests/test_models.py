import dataclasses
import itertools
import json
import pickle
import re

import numpy as np
import pytest
import torch

from fashionae.errors import UserError
from fashionae.modelfile import load_model, model_file_bytes
from fashionae.models import ARCHS, DECODERS, ENCODER_TYPES, Dropout, ModelConfig, build_model


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


def test_fast_dropout_matches_nn_dropout_statistics():
    torch.manual_seed(0)
    d = Dropout(0.2)
    x = torch.ones(1_000_000)
    y = d(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.8) < 0.002
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.8))
    d.eval()
    assert torch.equal(d(x), x)
    # different draws each call; the same draws after re-seeding
    torch.manual_seed(1); a = d.train()(x)
    torch.manual_seed(1); b = d(x)
    assert torch.equal(a, b) and not torch.equal(a, d(x))


def test_relu_dropout_is_relu_then_dropout():
    """Same values and gradients as nn.ReLU + nn.Dropout given the same keep mask."""
    from fashionae.models import ReLUDropout
    torch.manual_seed(0)
    x = torch.randn(64, 32, 14, 14, requires_grad=True)
    y = ReLUDropout(0.2)(x)
    g = torch.randn_like(y)
    y.backward(g)
    kept = (y != 0) | (x <= 0)  # where dropout kept the value (unknowable where ReLU zeroed it)
    expected = torch.where(kept, torch.relu(x) / 0.8, 0.0)
    assert torch.allclose(y, expected)
    assert torch.allclose(x.grad, torch.where((y != 0), g / 0.8, 0.0))
    keep_rate = ((y != 0).sum() / (x > 0).sum()).item()
    assert abs(keep_rate - 0.8) < 0.01
    layer = ReLUDropout(0.2).eval()
    assert torch.equal(layer(x), torch.relu(x))


def _reference_mask(layer, x, relu, seed):
    """The mask written with comparisons and a float conversion, from the same bits."""
    from fashionae.models import random_int16, splitmix_int15
    torch.manual_seed(seed)
    if layer.masks == "mersenne":
        keep = random_int16(x.numel()).as_strided(x.shape, x.stride()) >= layer._threshold
    else:
        keep = splitmix_int15(x.numel()).as_strided(x.shape, x.stride()) > layer._threshold15
    if relu:
        keep &= x > 0
    return keep.to(x.dtype) * torch.tensor(1 / (1 - layer.p), dtype=x.dtype)


@pytest.mark.parametrize("masks", ["counter", "mersenne"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.01, 0.2, 0.5, 0.7, 0.99])
@pytest.mark.parametrize("relu", [False, True])
def test_integer_mask_equals_comparisons(masks, dtype, p, relu):
    """The integer arithmetic of ``scaled_mask`` is the same mask as plain comparisons, for
    thresholds on both sides of 0, for signed zeros, infinities and NaN, in channels-last layout."""
    torch.manual_seed(1)
    x = torch.randn(6, 8, 10, 10).to(dtype).contiguous(memory_format=torch.channels_last)
    special = [0.0, -0.0, float("inf"), -float("inf"), 1e-30, -1e-30, float("nan")]
    x[:, 0, 0, :7] = torch.tensor(special).to(dtype)  # in every image, so some are kept
    layer = Dropout(p)
    layer.masks = masks
    expected = _reference_mask(layer, x, relu, seed=7)
    torch.manual_seed(7)
    mask = layer.scaled_mask(x, relu=relu)
    assert mask.dtype == dtype and mask.stride() == x.stride()
    number = ~x.isnan()  # where x is NaN, x * mask is NaN whatever the mask
    assert torch.equal(mask[number], expected[number])
    if relu:  # no gradient through ReLU's zero, signed or not, nor below it
        assert not mask[:, 0, 0, [0, 1, 3, 5]].any()
    assert (x * mask)[:, 0, 0, 6].isnan().all()  # NaN stays NaN, kept or dropped, as through ReLU


def splitmix64_reference(n_words: int, state: int) -> np.ndarray:
    """SplitMix64's first outputs from a state, in numpy's wrapping uint64 arithmetic."""
    with np.errstate(over="ignore"):
        z = np.arange(1, n_words + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(state % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def test_counter_bits_are_splitmix64_started_from_torchs_generator():
    """The counter masks' bits are SplitMix64's outputs, each 16-bit quarter's top bit cleared,
    from a state drawn from torch's generator. The numpy reference gives the published first
    outputs for state 0; torch's int64 passes (whatever ISA they run) give the reference's."""
    from fashionae.models import splitmix_int15
    assert [hex(v) for v in splitmix64_reference(3, 0)] == [
        "0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4", "0x6c45d188009454f"]
    for seed, n in ((0, 7), (1, 8), (2, 1001), (3, 300_001)):
        torch.manual_seed(seed)
        state = int(torch.empty((), dtype=torch.int64).random_(-2**63, None))
        torch.manual_seed(seed)
        bits = splitmix_int15(n)
        expected = (splitmix64_reference((n + 3) // 4, state) & np.uint64(0x7FFF7FFF7FFF7FFF)).view(np.int16)[:n]
        assert bits.dtype == torch.int16 and np.array_equal(bits.numpy(), expected), (seed, n)
    torch.manual_seed(3); a = splitmix_int15(1001)
    torch.manual_seed(3); b = splitmix_int15(1001)
    assert torch.equal(a, b) and not torch.equal(a, splitmix_int15(1001))  # each draw its own state


def test_counter_masks_are_uniform_and_independent_of_their_neighbours():
    """Keep rates of 1 - p, and no correlation between an element's fate and its neighbours' (in
    the same 64-bit word, the next ones, a channel and a row away), nor between two draws."""
    from fashionae.models import splitmix_int15
    torch.manual_seed(0)
    u = splitmix_int15(2_000_000).long()
    assert u.min() == 0 and u.max() == 32767 and abs(u.float().mean().item() - 16383.5) < 30
    for p in (0.2, 0.5):
        keep = u > round(p * 32768) - 1
        assert abs(keep.float().mean().item() - (1 - p)) < 0.002
        for offset in (1, 2, 3, 4, 5, 32, 64, 28 * 32):
            a, b = keep[:-offset], keep[offset:]
            rate = a.float().mean().item() * b.float().mean().item()
            z = (((a & b).float().mean().item() - rate) / (rate * (1 - rate) / len(a)) ** 0.5)
            assert abs(z) < 5, (p, offset, z)
    other = splitmix_int15(2_000_000).long() > 6553
    keep = u > 6553
    z = ((keep & other).float().mean().item() - 0.64) / (0.64 * 0.36 / len(u)) ** 0.5
    assert abs(z) < 5


def test_mersenne_bits_follow_torch_seed():
    from fashionae.models import random_int16
    torch.manual_seed(3); a = random_int16(1001)
    torch.manual_seed(3); b = random_int16(1001)
    assert a.dtype == torch.int16 and a.shape == (1001,) and torch.equal(a, b)
    assert not torch.equal(a, random_int16(1001))
    values = random_int16(400_000).float()
    assert abs(values.mean().item()) < 200 and values.min() == -32768 and values.max() == 32767


def test_save_load_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv", decoder="k3")).eval()
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_file_bytes(model))
    loaded = load_model(path)
    x = torch.rand(3, 1, 28, 28)
    assert loaded.config == model.config
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))


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


def test_dropout_paths_counter_mersenne_stock_and_off():
    """On the CPU with counter (the default) or mersenne masks: x times that integer mask; stock:
    exactly ``F.dropout``; p = 0 or eval mode: x itself. Each path draws otherwise, so each is taken."""
    import torch.nn.functional as F

    from fashionae.models import use_dropout_masks
    x = torch.randn(4, 8, 6, 6)
    layer = Dropout(0.3)
    assert layer.masks == "counter"
    outputs = []
    for masks in ("counter", "mersenne"):
        use_dropout_masks(layer, masks)
        torch.manual_seed(2); outputs.append(layer(x))
        torch.manual_seed(2); assert torch.equal(outputs[-1], x * layer.scaled_mask(x))  # no ReLU by default
    use_dropout_masks(layer, "stock")
    torch.manual_seed(2); outputs.append(layer(x))
    torch.manual_seed(2); assert torch.equal(outputs[-1], F.dropout(x, 0.3, True))
    assert all(not torch.equal(a, b) for i, a in enumerate(outputs) for b in outputs[i + 1:])
    assert Dropout(0.0)(x) is x and layer.eval()(x) is x
    with pytest.raises(ValueError, match="dropout masks 'auto'"):
        use_dropout_masks(layer, "auto")  # resolved by TrainConfig.resolved, never a layer's


def test_dropout_bits_are_the_earlier_versions_bits():
    """The bits earlier versions drew, value for value, with four 16-bit values to a 64-bit draw
    and no more: the generator moves as it always did, so runs started by earlier versions
    resume to the same masks."""
    from fashionae.models import random_int16
    for seed, n in ((0, 7), (0, 8), (1, 9), (2, 300_001)):
        torch.manual_seed(seed)
        bits = random_int16(n)
        after = torch.get_rng_state()
        torch.manual_seed(seed)
        earlier = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, 2**63 - 1)
        assert torch.equal(bits, earlier.view(torch.int16)[:n]), n
        assert torch.equal(after, torch.get_rng_state()), n


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


def graph(y: torch.Tensor) -> list[str]:
    """The autograd nodes behind y, first to last (a chain)."""
    names, node = [], y.grad_fn
    while node is not None:
        names.append(type(node).__name__.rstrip("0123456789"))
        node = node.next_functions[0][0] if node.next_functions else None
    return names


def test_relu_dropout_paths_counter_mersenne_stock():
    """On the CPU with counter or mersenne masks: x times the fused ReLU + dropout mask; stock:
    exactly ``F.dropout(F.relu(x))``; eval mode: ReLU only."""
    import torch.nn.functional as F

    from fashionae.models import ReLUDropout, use_dropout_masks
    x = torch.randn(4, 8, 6, 6)
    layer = ReLUDropout(0.3)
    outputs = []
    for masks in ("counter", "mersenne"):
        use_dropout_masks(layer, masks)
        torch.manual_seed(2); outputs.append(layer(x))
        torch.manual_seed(2); assert torch.equal(outputs[-1], x * layer.scaled_mask(x, relu=True))
        # the point of the layer: one product forward and one backward, no separate ReLU pass
        leaf = x.clone().requires_grad_()
        assert graph(layer(leaf)) == ["_MaskedScaleBackward", "AccumulateGrad"]
    use_dropout_masks(layer, "stock")
    torch.manual_seed(2); outputs.append(layer(x))
    torch.manual_seed(2); assert torch.equal(outputs[-1], F.dropout(F.relu(x), 0.3, True))
    assert all(not torch.equal(a, b) for i, a in enumerate(outputs) for b in outputs[i + 1:])
    assert torch.equal(layer.eval()(x), F.relu(x))


def test_a_model_file_whose_weights_do_not_fit_its_settings_names_the_file(tmp_path):
    """Checksums that agree with the file's own contents, but a tensor too few for its settings:
    refused, and the message names the file."""
    from safetensors.torch import save

    from fashionae.modelfile import (
        MODEL_FORMAT,
        _text_sha256,
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
                                             "settings_sha256": _text_sha256(settings)}))
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
    with pytest.raises(UserError, match=r"^image-size " + problem):
        ModelConfig(image_size=size).validate()
    assert ModelConfig(image_size=(8, 12)).validate().image_size == (8, 12)


def count_fused(monkeypatch) -> list:
    """The convolutions run fused from now on, in order."""
    from fashionae import models
    fused = []
    for kind, plain_fused in list(models.FUSED_CONV_RELU.items()):
        monkeypatch.setitem(models.FUSED_CONV_RELU, kind,
                            lambda conv, x, f=plain_fused: fused.append(conv) or f(conv, x))
    return fused


@pytest.mark.parametrize("encoder_type,decoder,arch,pairs", [("paper", "k2", "linear", 3), ("strided", "k3", "conv", 5),
                                                              ("paper", "k4", "linear", 3), ("strong", "resize", "conv", 0)])
@pytest.mark.parametrize("precision,channels_last", [("fp32", True), ("fp32", False), ("bf16", True)])
def test_inference_fuses_convolution_and_relu_bit_for_bit(encoder_type, decoder, arch, pairs, precision, channels_last,
                                                          monkeypatch):
    fused = count_fused(monkeypatch)
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_type=encoder_type, decoder=decoder, arch=arch)).eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    for images in (5, 1, 0):  # one image: PyTorch's own convolutions, not fused
        x = torch.rand(images, 1, 28, 28)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            with torch.no_grad():  # the layers one by one
                plain = model.reconstruct(x)
            with torch.inference_mode():  # a convolution and its ReLU as one call
                fused_out = model.reconstruct(x)
        assert fused_out.dtype == plain.dtype
        assert torch.equal(fused_out, plain)
    # the strong encoder's ReLU follows a batch norm, the resize decoder's convolution is nested
    assert len(fused) == (pairs if precision == "fp32" else 0)


def test_inference_keeps_nan_where_relu_keeps_it(monkeypatch):
    """oneDNN's ReLU turns NaN into 0: a diverged model must still evaluate as NaN."""
    fused = count_fused(monkeypatch)
    torch.manual_seed(0)
    model = build_model(ModelConfig()).eval()
    x = torch.rand(4, 1, 28, 28)
    for damage in ("weight", "pixel"):
        broken, images = build_model(ModelConfig()).eval(), x.clone()
        broken.load_state_dict(model.state_dict())
        if damage == "weight":
            broken.encoder.features[0].weight.data[3] = float("nan")
        else:
            images[0, 0, 5, 5] = float("nan")
        with torch.no_grad():
            plain = broken.reconstruct(images)
        with torch.inference_mode():
            out = broken.reconstruct(images)
        assert torch.isnan(plain).any() and torch.equal(torch.isnan(out), torch.isnan(plain))
    assert fused == []


def test_inference_fuses_only_a_convolution_then_relu_in_eval_mode(monkeypatch):
    from fashionae import models
    fused = count_fused(monkeypatch)
    first, second = torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Conv2d(2, 2, 3, padding=1)
    layers = models.Layers(first, torch.nn.ReLU(), second, torch.nn.Sigmoid())
    x = torch.randn(2, 1, 6, 6)
    with torch.inference_mode():
        layers.train()(x)
        assert fused == []  # training mode: every layer by itself
        out = layers.eval()(x)
    assert fused == [first]  # the second convolution has no ReLU after it
    with torch.no_grad():
        assert torch.equal(out, torch.sigmoid(second(torch.relu(first(x)))))
        layers(x)
    assert fused == [first]  # outside inference mode (autograd, ONNX export): the plain layers

    dropout = models.Layers(first, models.ReLUDropout(0.5)).eval()
    dropout[1].train()  # dropout left on in an evaluated stack: not a ReLU
    with torch.inference_mode():
        dropout(x)
        for tracer in (torch.compiler, torch.jit):  # torch.compile and torch.jit.trace see the plain layers
            with monkeypatch.context() as m:
                m.setattr(tracer, "is_compiling" if tracer is torch.compiler else "is_tracing", lambda: True)
                layers(x)
    assert fused == [first]

    double = models.Layers(torch.nn.Conv2d(1, 2, 3).double(), torch.nn.ReLU()).eval()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="should be the same"):
        double(x)  # PyTorch's own message for a model and input of different types
