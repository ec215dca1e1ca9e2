"""The compiled CPU kernels (kernels.py, kernels.cpp) compute what dropout.py's PyTorch ops compute,
bit for bit: outputs, gradients and whole training steps; and where they cannot be built,
PyTorch's ops run after one note."""
import os
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fashionae import kernels
from fashionae import layers as fashionae_layers
from fashionae.dropout import ReLUDropout, halving_pool, relu_dropout_pool, use_dropout_masks
from fashionae.dropout import _laid_out_like as kernels_laid_out_like
from fashionae.layers import BlockConvTranspose2d, Layers
from fashionae.models import ModelConfig, build_model
from fashionae.training import TrainConfig, train_step

LAYOUTS = {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}


@pytest.fixture
def built():
    if not kernels.available():
        if os.environ.get("CI"):  # CI has a C++ compiler: the kernels must build there
            pytest.fail("the compiled CPU kernels did not build")
        pytest.skip("the compiled CPU kernels are not available here")


def torch_ops(monkeypatch):
    monkeypatch.setattr(kernels, "_loaded", False)


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view({2: torch.int16, 4: torch.int32}[t.element_size()])


def graph(y: torch.Tensor) -> list[str]:
    names, node = [], y.grad_fn
    while node is not None:
        names.append(type(node).__name__)
        node = node.next_functions[0][0] if node.next_functions else None
    return names


def inputs(shape, dtype, layout, seed=0, nans=False):
    """Values with exact zeros of both signs and ties within pooling windows (and NaNs of both signs)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).mul_(4).round_().div_(4)  # ties: a few values repeat
    x.view(-1)[::7] = 0.0
    x.view(-1)[3::11] = -0.0
    if nans:
        x.view(-1)[5::13] = float("nan")
        x.view(-1)[9::17] = -float("nan")
    return x.to(dtype).contiguous(memory_format=LAYOUTS[layout] if x.dim() == 4 else torch.contiguous_format)


def run(fn, x, grad_seed=1):
    """fn(x) and the gradient of x under a random upstream gradient with zeros of both signs
    (laid out NCHW, as autograd may hand it over)."""
    leaf = x.clone().requires_grad_()
    torch.manual_seed(7)
    y = fn(leaf)
    upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed))
    upstream.view(-1)[1::5] = -0.0
    upstream.view(-1)[2::9] = 0.0
    y.backward(upstream.to(y.dtype))
    return y, leaf.grad


def both(monkeypatch, fn, x):
    """(kernels, PyTorch's ops) results of ``run``; the first did run a kernel, the second not."""
    with_kernels = run(fn, x)
    assert graph(with_kernels[0])[0].startswith("_Kernel")
    torch_ops(monkeypatch)
    without = run(fn, x)
    assert not graph(without[0])[0].startswith("_Kernel")
    return with_kernels, without


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("shape", [(5, 3, 6, 10), (4, 32, 28, 28), (2, 64, 14, 14), (7, 13), (3, 5)])
def test_relu_dropout_is_bit_for_bit_pytorchs(built, monkeypatch, dtype, layout, shape):
    layer = ReLUDropout(0.2)
    (y, dx), (y0, dx0) = both(monkeypatch, layer, inputs(shape, dtype, layout))
    assert torch.equal(bits(y), bits(y0)) and torch.equal(bits(dx), bits(dx0))
    assert y.stride() == y0.stride() and dx.stride() == dx0.stride()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("shape", [(5, 3, 6, 10), (4, 32, 28, 28), (2, 64, 14, 14), (1, 1, 2, 2)])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.0, "relu"])
def test_relu_dropout_pool_is_bit_for_bit_pytorchs(built, monkeypatch, dtype, layout, shape, p):
    """The same output (the first maximum of each window, zeros' signs included) and the same
    gradient, routed to the same element; with dropout, without (p = 0), and after a plain ReLU."""
    layer, pool = nn.ReLU() if p == "relu" else ReLUDropout(p), nn.MaxPool2d(2, 2)
    (y, dx), (y0, dx0) = both(monkeypatch, lambda x: relu_dropout_pool(layer, pool, x), inputs(shape, dtype, layout))
    assert torch.equal(bits(y), bits(y0)) and torch.equal(bits(dx), bits(dx0))
    assert y.stride() == y0.stride() and dx.stride() == dx0.stride()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_inference_relu_pool_is_bit_for_bit_pytorchs(built, monkeypatch, dtype, layout):
    """ReLU + pooling in inference; NaN wherever a window holds one (its bits are not pinned:
    PyTorch's own ReLU gives different NaNs on different paths)."""
    x = inputs((3, 5, 6, 8), dtype, layout, nans=True)
    layer, pool = ReLUDropout(0.2).eval(), nn.MaxPool2d(2, 2)
    with torch.inference_mode():
        y, y0 = relu_dropout_pool(layer, pool, x), pool(F.relu(x))
    assert y.isnan().any() and torch.equal(y.isnan(), y0.isnan()) and y.stride() == y0.stride()
    assert torch.equal(bits(y.nan_to_num(7.0)), bits(y0.nan_to_num(7.0)))


@pytest.mark.parametrize("encoder_type,decoder,arch", [("paper", "k2", "linear"), ("paper", "k4", "conv"),
                                                       ("strided", "k3", "linear")])
@pytest.mark.parametrize("precision,channels_last", [("fp32", True), ("fp32", False), ("bf16", True)])
def test_inference_is_the_same_with_and_without_the_kernels(built, monkeypatch, encoder_type, decoder, arch,
                                                            precision, channels_last):
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_type=encoder_type, decoder=decoder, arch=arch)).eval()
    x = torch.rand(6, 1, 28, 28)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    def reconstruct() -> tuple[torch.Tensor, set[str]]:
        with torch.profiler.profile() as profile, torch.inference_mode():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                checked, out = model.reconstruct(x), model.reconstruct(x)  # layers.conv_relu's check, then its choice
        assert torch.equal(checked, out)
        return out, {e.key for e in profile.key_averages()}

    # the first stage's kernel and k2's kernel sum in their own orders (oneDNN's where measured):
    # test_the_first_stage_kernel_..., test_the_fp32_kernels_...
    monkeypatch.setattr("fashionae.layers.first_stage", lambda *layers: False)
    monkeypatch.setattr(BlockConvTranspose2d, "kernel_takes", lambda layer, x: False)
    out, ops = reconstruct()
    torch_ops(monkeypatch)
    out0, ops0 = reconstruct()
    assert torch.equal(out, out0)
    assert ("fashionae::relu_pool" in ops) == (encoder_type == "paper") and "fashionae::relu_pool" not in ops0


TAPS = [(1, 0), (0, 0), (0, 1), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (2, 2)]  # kernels.cpp's, as (ky, kx)


def first_stage_by_torch(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """What conv3x3_relu_pool is said to compute, in PyTorch's ops: the image, weights and bias
    rounded to bf16, the nine products (exact in fp32) summed in fp32 in TAPS' order from +0,
    the bias last, ReLU, 2x2 max-pooling, rounded to bf16."""
    def bf16(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(torch.bfloat16).float()
    padded, w, h, width = F.pad(bf16(x), (1, 1, 1, 1)), bf16(conv.weight), x.shape[2], x.shape[3]
    total = torch.zeros(len(x), conv.out_channels, h, width)
    for ky, kx in TAPS:
        total = total + padded[:, :, ky:ky + h, kx:kx + width] * w[:, 0, ky, kx][None, :, None, None]
    return F.max_pool2d(F.relu(total + bf16(conv.bias)[None, :, None, None]), 2).to(torch.bfloat16)


def first_stage_layers(channels: int = 32, seed: int = 0, order_sensitive: bool = False):
    """The paper encoder's first stage; with ``order_sensitive``, weights and a bias that are
    signed powers of two 2^-20 ... 2^0, so that fp32 sums drop low bits, as an order decides."""
    torch.manual_seed(seed)
    layers = Layers(nn.Conv2d(1, channels, 3, padding=1), ReLUDropout(0.2), nn.MaxPool2d(2, 2)).eval()
    if order_sensitive:
        for p in layers[0].parameters():
            signs = torch.randint(0, 2, p.shape).mul(2).sub(1)
            p.data = torch.ldexp(signs.float(), torch.randint(-20, 1, p.shape).float())
    return layers


@pytest.mark.parametrize("channels,shape", [(32, (5, 1, 28, 28)), (16, (3, 1, 6, 10)), (48, (2, 1, 8, 4)),
                                            (32, (1, 1, 28, 28)), (64, (2, 1, 4, 34))])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_first_stage_kernel_sums_as_its_comment_says(built, channels, shape, layout):
    """conv3x3_relu_pool is the computation its comment states, bit for bit on any CPU (NaN where
    a window holds one); and laid out as the layers lay it out."""
    layers = first_stage_layers(channels, order_sensitive=True)
    if layout == "channels-last":
        layers.to(memory_format=torch.channels_last)
    x = torch.rand(shape).contiguous(memory_format=LAYOUTS[layout])
    x.view(-1)[7::97] = 0.0
    x.view(-1)[::53] = float("nan")
    x.view(torch.int32).view(-1)[26::59] = 0x7F800001  # a NaN whose bf16 rounding, unchecked, is inf
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.ops.fashionae.conv3x3_relu_pool(x, layers[0].weight, layers[0].bias, True)
        y16 = torch.ops.fashionae.conv3x3_relu_pool(x.bfloat16(), layers[0].weight, layers[0].bias, True)
    assert torch.equal(bits(y16), bits(y)) and y16.stride() == y.stride()  # a bf16 image: the same
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        stock = layers(x)
    expected = first_stage_by_torch(x, layers[0])
    assert y.dtype == torch.bfloat16 and y.shape == stock.shape and y.stride() == stock.stride()
    assert torch.equal(y.isnan(), expected.isnan()) and y.isnan().any()
    assert torch.equal(bits(y.nan_to_num(7.0)), bits(expected.nan_to_num(7.0)))


def test_the_first_stage_kernel_adds_the_taps_in_onednns_order_then_the_bias(built):
    """Sums whose fp32 rounding tells the orders apart, on an image of ones (away from the border
    every product is its weight). Channel 0: 1 + 2^-24 + (2^-24 + 2^-30) - 1 is 2^-23, with the
    last two swapped 2^-22 (the pair's second tap first). Channel 1: 1 + 2^-24 + 2^-24 - 1 is 0,
    in raster order (2^-24 + 2^-24 + 1 - 1) 2^-23 (column by column, not row by row). Channel 2:
    2^-24 + 2^-24 + 2^-8 + 1 rounds up to bf16's 1 + 2^-7; from the bias first, to 1."""
    layers = first_stage_layers(16)
    weight, bias = torch.zeros(16, 1, 3, 3), torch.zeros(16)
    for channel, taps in enumerate([{(1, 0): 1.0, (0, 1): 2 ** -24, (2, 0): 2 ** -24 + 2 ** -30, (2, 2): -1.0},
                                    {(1, 0): 1.0, (0, 1): 2 ** -24, (0, 2): 2 ** -24, (2, 2): -1.0},
                                    {(1, 0): 2 ** -24, (0, 0): 2 ** -24, (0, 1): 2 ** -8}]):
        for (ky, kx), value in taps.items():
            weight[channel, 0, ky, kx] = value
    bias[2] = 1.0
    layers[0].weight.data, layers[0].bias.data = weight, bias
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = layers(torch.ones(1, 1, 8, 8))
    inner = y[0, :3, 1:3, 1:3].float()  # the windows away from the padding
    assert inner.tolist() == [[[2 ** -23] * 2] * 2, [[0.0] * 2] * 2, [[1 + 2 ** -7] * 2] * 2]


def native_bf16_uncapped() -> bool:
    """A CPU with AVX-512-BF16, the kernels built for it: where the first stage's bf16 kernel, like
    oneDNN's convolution, sums by the dot-product instruction."""
    from fashionae.machine import cpu_info
    cpu = cpu_info()
    return "AVX-512-BF16" in cpu["isa"] and not cpu["isa_caps"]


@pytest.mark.skipif(not native_bf16_uncapped(), reason="the dot-product instruction needs AVX-512-BF16")
def test_the_first_stage_kernel_flushes_subnormals_as_onednn_does(built):
    """AVX-512-BF16's dot product flushes subnormal pixels and sums to zero: the kernel's outputs
    are oneDNN's there (a sum from a subnormal pixel is 0, where summing in fp32 would keep it)."""
    layers = first_stage_layers(16).to(memory_format=torch.channels_last)
    x = torch.full((4, 1, 8, 8), 2.0 ** -130)  # subnormal in fp32 and bf16
    x.view(-1)[::5] = torch.rand(52)
    x.view(-1)[1::7] = 2.0 ** -120
    layers[0].weight.data[:8] = 0.0
    layers[0].weight.data[:8, 0, 1, 1] = 1.0  # channels 0-7: the pixel itself
    layers[0].bias.data[:8] = 0.0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = layers(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock = layers(x).detach()  # autograd on: the layers one by one, the convolution by oneDNN
    assert torch.equal(bits(y), bits(stock))
    assert (y[:, :8] == 0).any() and not torch.equal(bits(y), bits(first_stage_by_torch(x, layers[0])))


def test_the_first_stage_kernel_makes_nan_where_adding_the_bias_does(built):
    """The kernel adds the bias after pooling: a NaN bias, or one infinite in bf16 (3.4e38 is finite
    in fp32) against a sum infinite the other way anywhere in the window, still makes the output
    NaN, as the layers make it."""
    layers = first_stage_layers(16)
    w, b = layers[0].weight.data, layers[0].bias.data
    w[0, 0, 1, 1], b[0] = -3.4e38, 3.4e38  # sums -inf (bf16's weight), bias +inf
    w[1, 0, 1, 1], b[1] = 3.4e38, -3.4e38  # sums +inf, bias -inf
    w[2, 0, 1, 1], b[2] = -2e38, 3.4e38  # -inf only where the pixel is 2: a window's largest sum may be finite
    x = torch.ones(2, 1, 8, 8)
    x[:, :, ::4] = 2.0  # pooled rows 0 and 2: a -inf sum in every window of channel 2; rows 1 and 3: none
    expected = first_stage_by_torch(x, layers[0])
    assert expected[:, :2].isnan().all() and expected[:, 2, ::2].isnan().all() and not expected[:, 2, 1::2].isnan().any()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.profiler.profile() as profile:
            y = layers(x)  # the layers run the kernel: their fp32 parameters are finite
        nan_bias = torch.ops.fashionae.conv3x3_relu_pool(x, w, torch.full_like(b, float("nan")), True)
    assert "fashionae::conv3x3_relu_pool" in {e.key for e in profile.key_averages()}
    assert torch.equal(y.isnan(), expected.isnan()) and nan_bias.isnan().all()


@pytest.mark.skipif(not native_bf16_uncapped(), reason="the dot-product instruction needs AVX-512-BF16")
def test_the_first_stage_kernel_flushes_products_sums_and_outputs_as_onednn_does(built):
    """vdpbf16ps flushes each of its two additions' results, so the order of even the first pair
    shows: tap 3 then tap 0 (8 + 0.75 keeps a subnormal product; 0.75 first is flushed, then 8).
    oneDNN flushes a subnormal output (sum + bias) to zero too. And on random values whose
    products and sums are subnormal, oneDNN's bits (channels-last, a +0 bias: no -0 to tell)."""
    tiny, v = 2.0 ** -126, 2.0 ** -60  # v: the image; products v * w
    layers = first_stage_layers(16).to(memory_format=torch.channels_last)
    w, b = torch.zeros(16, 1, 3, 3), torch.zeros(16)
    w[0, 0, 1, 0], w[0, 0, 0, 0] = 8 * tiny / v, 0.75 * tiny / v  # tap 3: 8, tap 0: 0.75 -> 8.75
    w[1, 0, 0, 0], w[1, 0, 1, 0] = 8 * tiny / v, 0.75 * tiny / v  # tap 3: 0.75 (flushed), tap 0: 8 -> 8
    w[2, 0, 1, 1], b[2] = 1.5 * tiny / v, -tiny  # 1.5 - 1: subnormal -> 0
    layers[0].weight.data.copy_(w), layers[0].bias.data.copy_(b)
    x = torch.full((1, 1, 8, 8), v)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.inference_mode():
            y = layers(x)
        stock = layers(x).detach()
    assert y[0, :3, 1:3, 1:3].float().div(tiny).tolist() == [[[8.75] * 2] * 2, [[8.0] * 2] * 2, [[0.0] * 2] * 2]
    assert torch.equal(bits(y), bits(stock))
    g = torch.Generator().manual_seed(1)
    layers[0].weight.data.copy_(torch.randn(16, 1, 3, 3, generator=g) * 2.0 ** -64)
    layers[0].bias.data.zero_()
    x = torch.rand(4, 1, 10, 12, generator=g) * 2.0 ** -62
    x[torch.rand(x.shape, generator=g) < 0.1] = 1.0
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.inference_mode():
            y = layers(x)
        stock = layers(x).detach()
    assert torch.equal(bits(y), bits(stock)) and not torch.equal(bits(y), bits(first_stage_by_torch(x, layers[0])))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_first_stage_kernel_is_onednns_convolution_to_its_last_bit(built, layout):
    """In inference under bf16 autocast the paper encoder's first stage is one kernel, whose
    sums run in oneDNN's order on AVX-512-BF16, where every value is the same (a Zen 5). Where
    oneDNN runs other code (capped to AVX2, AMX), a value near a rounding tie may move by its
    last bit, rarely."""
    torch.manual_seed(0)
    model = build_model(ModelConfig()).eval()
    x = torch.rand(64, 1, 28, 28)
    if layout == "channels-last":
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.profiler.profile() as profile, torch.inference_mode():
            y = model.encoder.features(x)
        stock = model.encoder.features(x).detach()  # autograd on: the layers one by one, the convolution by oneDNN
    assert "fashionae::conv3x3_relu_pool" in {e.key for e in profile.key_averages()}
    assert y.stride() == stock.stride()
    assert (y != stock).float().mean() < 1e-3  # the second convolution carries a first-stage difference on
    assert torch.allclose(y.float(), stock.float(), rtol=2 ** -7, atol=2 ** -7)


def test_the_first_stage_kernel_runs_only_where_it_computes_the_layers(built, monkeypatch):
    """In eval mode, under torch.inference_mode and bf16 autocast, on an fp32 image of even sizes,
    for a one-channel 3x3 convolution (stride 1, padding 1, bias) into a multiple of 16 channels,
    ReLU and a halving pooling, with finite weights; the layers otherwise."""
    x = torch.rand(3, 1, 8, 8)

    def ops(layers: nn.Module, images: torch.Tensor = x, inference: bool = True, precision: str = "bf16") -> set:
        with torch.profiler.profile() as profile, torch.autocast("cpu", dtype=torch.bfloat16,
                                                                enabled=precision == "bf16"):
            with torch.inference_mode() if inference else torch.enable_grad():
                out = layers(images)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            assert torch.equal(out.isnan(), layers(images).isnan())  # autograd on: the layers one by one
        return {e.key for e in profile.key_averages()}

    def runs(*args, **kwargs) -> bool:
        return "fashionae::conv3x3_relu_pool" in ops(*args, **kwargs)

    assert runs(first_stage_layers())
    assert runs(Layers(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Sigmoid()).eval())
    assert not runs(first_stage_layers(), inference=False)
    # in fp32 where oneDNN would run the convolution, after the first batch's check, where the
    # kernel gives the layers' bits (not oneDNN's conv + ReLU: the pooling goes with them)
    fp32 = first_stage_layers()
    ops(fp32, precision="fp32")
    same = fashionae_layers._SAME_BITS[("conv3x3_relu_pool", *fashionae_layers._signature(fp32[0], x))]
    assert same or not onednn_measured()
    assert ops(fp32, precision="fp32") & {"fashionae::conv3x3_relu_pool", "mkldnn::_convolution_pointwise",
                                          "fashionae::relu_pool"} == {"fashionae::conv3x3_relu_pool" if same else "fashionae::relu_pool"}
    assert not runs(first_stage_layers(), x[:1], precision="fp32")  # one image: PyTorch's own convolution
    with monkeypatch.context() as m:
        m.setattr(torch.backends.mkldnn, "enabled", False)
        assert not runs(first_stage_layers(), precision="fp32")
    assert not runs(first_stage_layers().train())
    for images in (torch.rand(3, 1, 7, 8), x.bfloat16(), x[:0]):
        assert not runs(first_stage_layers(), images)
    assert not runs(first_stage_layers(), x.repeat(1, 2, 1, 1)[:, :1])  # not dense: a copy would be needed
    for conv in (nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(1, 32, 3, padding=1, stride=2), nn.Conv2d(1, 32, 3),
                 nn.Conv2d(1, 32, 5, padding=2), nn.Conv2d(1, 32, 3, padding=1, bias=False),
                 nn.Conv2d(1, 32, 3, padding=1, dilation=1, padding_mode="reflect"), nn.Conv2d(2, 32, 3, padding=1),
                 type("MyConv", (nn.Conv2d,), {})(1, 32, 3, padding=1)):
        layers = Layers(conv, nn.ReLU(), nn.MaxPool2d(2, 2)).eval()
        assert not runs(layers, x.repeat(1, conv.in_channels, 1, 1)), conv
    assert not runs(Layers(nn.Conv2d(1, 32, 3, padding=1), nn.Sigmoid(), nn.MaxPool2d(2, 2)).eval())
    assert not runs(Layers(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 1)).eval())
    broken = first_stage_layers()
    broken[0].weight.data[3, 0, 0, 0] = float("nan")  # at a border, oneDNN skips the padding's product
    assert not runs(broken)
    with monkeypatch.context() as m:
        m.setattr(torch.compiler, "is_compiling", lambda: True)
        assert not runs(first_stage_layers())
    torch_ops(monkeypatch)
    assert not runs(first_stage_layers())


def fma_sums(terms, start: torch.Tensor) -> torch.Tensor:
    """start + a1 * b1 + a2 * b2 + ..., each step a fused multiply-add rounded to fp32 (exact in
    fp64 but for a double rounding, which these tests' values do not meet)."""
    total = start.double()
    for a, b in terms:
        total = (total + a.double() * b.double()).float().double()
    return total.float()


def first_stage_fp32_by_torch(x: torch.Tensor, conv: nn.Conv2d, bias_first: bool) -> torch.Tensor:
    """What conv3x3_relu_pool is said to compute in fp32: the nine taps in raster order by fused
    multiply-adds, from the bias or from +0 with the bias last; ReLU, 2x2 max-pooling."""
    padded, w, h, width = F.pad(x.detach(), (1, 1, 1, 1)), conv.weight.detach(), x.shape[2], x.shape[3]
    b = conv.bias.detach()[None, :, None, None].expand(len(x), -1, h, width)
    taps = [(padded[:, :, ky:ky + h, kx:kx + width], w[:, 0, ky, kx][None, :, None, None])
            for ky in range(3) for kx in range(3)]
    total = fma_sums(taps, b) if bias_first else fma_sums(taps + [(b, torch.ones(()))], torch.zeros(()))
    return F.max_pool2d(F.relu(total), 2)


def conv_transpose_2x2_by_torch(x: torch.Tensor, layer: nn.ConvTranspose2d, relu: bool = False,
                                fused: bool = True) -> torch.Tensor:
    """What conv_transpose_2x2 is said to compute: each input pixel's 2x2 block of outputs, the
    channels' products added in order by fused multiply-adds from +0, the bias last; ReLU."""
    n, c, h, w = x.shape
    o = layer.out_channels
    rows, taps = x.detach().permute(0, 2, 3, 1), layer.weight.detach().permute(0, 2, 3, 1)  # taps: [c][ky][kx][o]
    terms = [(rows[..., i, None, None, None], taps[i]) for i in range(c)]
    if fused:
        total = fma_sums(terms, torch.zeros(()))
    else:  # each product rounded first: what a kernel without fused multiply-adds would give
        total = torch.zeros(n, h, w, 2, 2, o)
        for a, b in terms:
            total = total + a * b
    total = total + layer.bias.detach()  # [n, h, w, ky, kx, o]
    total = F.relu(total) if relu else total
    return total.permute(0, 5, 1, 3, 2, 4).reshape(n, o, 2 * h, 2 * w)


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (3, 1, 6, 10), (2, 1, 8, 4)])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_fp32_first_stage_kernel_sums_as_its_comment_says(built, shape, layout):
    """conv3x3_relu_pool in fp32, bit for bit on any CPU (NaN where a window holds one), laid out
    as the layers lay it out: from +0 with the bias last in channels-last memory, from the bias
    in NCHW; each sum by fused multiply-adds (the other order, or rounded products, would differ)."""
    layers = first_stage_layers(32, seed=1)
    torch.nn.init.normal_(layers[0].weight)
    torch.nn.init.normal_(layers[0].bias)
    cl = layout == "channels-last"
    if cl:
        layers.to(memory_format=torch.channels_last)
    x = torch.randn(shape).contiguous(memory_format=LAYOUTS[layout])
    x.view(-1)[::53] = float("nan")
    with torch.no_grad():
        y = torch.ops.fashionae.conv3x3_relu_pool(x, layers[0].weight, layers[0].bias, False)
        stock = F.max_pool2d(F.relu(layers[0](x)), 2)
    expected = first_stage_fp32_by_torch(x, layers[0], bias_first=not cl)
    assert y.dtype == torch.float32 and y.shape == stock.shape and y.stride() == stock.stride()
    assert torch.equal(y.isnan(), expected.isnan()) and y.isnan().any()
    assert torch.equal(bits(y.nan_to_num(7.0)), bits(expected.nan_to_num(7.0)))
    assert not torch.equal(y.nan_to_num(7.0), first_stage_fp32_by_torch(x, layers[0], bias_first=cl).nan_to_num(7.0))


@pytest.mark.parametrize("shape,out_channels", [((4, 32, 14, 14), 1), ((3, 5, 3, 7), 1), ((2, 8, 1, 1), 1),
                                                ((4, 64, 7, 7), 32), ((3, 5, 3, 7), 8), ((1, 3, 2, 1), 16)])
@pytest.mark.parametrize("x_layout", [*LAYOUTS, "strided"])
@pytest.mark.parametrize("w_layout", list(LAYOUTS))
@pytest.mark.parametrize("relu", [False, True])
def test_the_2x2_kernel_sums_as_its_comment_says(built, shape, out_channels, x_layout, w_layout, relu):
    """conv_transpose_2x2, bit for bit on any CPU (NaN kept by ReLU, as torch's), laid out as the
    stock layer lays it; the input read where it lies (channels-last or NCHW; another view is
    copied); into one channel, pixels in pairs; into more, six pixels at a time and the rest one
    by one (3 x 7 x 3 = 63 pixels: 48 in a chunk, then 15)."""
    torch.manual_seed(2)
    layer = BlockConvTranspose2d(shape[1], out_channels, 2)
    torch.nn.init.normal_(layer.weight)
    torch.nn.init.normal_(layer.bias)
    layer.to(memory_format=LAYOUTS[w_layout])
    n, c, h, w = shape
    x = torch.randn(n, c, h, w + 1 if x_layout == "strided" else w)
    x.view(-1)[::7 * c + 3] = float("nan")  # in some pixels' channels, not in all pixels
    x = x[..., :w] if x_layout == "strided" else x.contiguous(memory_format=LAYOUTS[x_layout])
    with torch.no_grad():
        y = torch.ops.fashionae.conv_transpose_2x2(x, layer.weight, layer.bias, relu)
        stock = nn.ConvTranspose2d.forward(layer, x)
    expected = conv_transpose_2x2_by_torch(x, layer, relu)
    assert y.shape == stock.shape and y.stride() == stock.stride()
    assert torch.equal(y.isnan(), expected.isnan()) and y.isnan().any()
    assert torch.equal(bits(y.nan_to_num(7.0)), bits(expected.nan_to_num(7.0)))
    if relu:
        assert (y == 0).any() and not (bits(y) == -2 ** 31).any()  # ReLU's zeros are +0
    if c > 2:  # enough channels for a rounding to tell
        assert not torch.equal(y.nan_to_num(7.0), conv_transpose_2x2_by_torch(x, layer, relu, fused=False).nan_to_num(7.0))


def k2_last_layer_inputs(n, c, h, w, seed=0):
    """bf16 rows (ReLU'd, so with zeros of both signs), weight [C, 4], bias, output gradient."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(n * h * w, c, generator=g).relu_()
    rows.view(-1)[3::11] = -0.0
    grad = torch.randn(n, 1, 2 * h, 2 * w, generator=g)
    grad.view(-1)[1::5] = -0.0
    return (rows.bfloat16(), torch.randn(c, 4, generator=g).bfloat16(), torch.randn(1, generator=g).bfloat16(),
            grad.bfloat16())


@pytest.mark.parametrize("n,c,h,w", [(4, 32, 14, 14), (3, 8, 5, 7), (70, 16, 3, 3), (1, 64, 1, 1), (2, 24, 3, 9)])
def test_k2s_last_layer_kernels_are_their_pytorch_version_bit_for_bit(built, n, c, h, w):
    """k2's last layer under bf16 autocast (into one channel): the compiled forward pass and
    gradients give layers.py's PyTorch version's bits (70 x 3 image rows: summed in blocks of 64,
    then the blocks pairwise), and within bf16's rounding the float64 layer's."""
    rows, weight, bias, grad = k2_last_layer_inputs(n, c, h, w)
    y = torch.ops.fashionae.one_channel_forward(rows, weight, bias, n, h, w, False)
    assert torch.equal(bits(y), bits(fashionae_layers.one_channel_forward(rows, weight, bias, (n, h, w))))
    kernel = torch.ops.fashionae.one_channel_backward(rows, weight, grad)
    pytorch = fashionae_layers.one_channel_backward(rows, weight, grad)
    assert [t.shape for t in kernel] == [t.shape for t in pytorch] == [rows.shape, weight.shape, bias.shape]
    assert all(torch.equal(bits(a), bits(b)) for a, b in zip(kernel, pytorch))
    x = rows.double().view(n, h, w, c).permute(0, 3, 1, 2).requires_grad_()
    w4, b = weight.double().view(c, 1, 2, 2).requires_grad_(), bias.double().requires_grad_()
    want = F.conv_transpose2d(x, w4, b, stride=2)
    want.backward(grad.double())
    for got, ref in ((y, want), (kernel[0], x.grad.permute(0, 2, 3, 1).reshape(-1, c)), (kernel[1], w4.grad.view(c, 4)),
                     (kernel[2], b.grad)):
        torch.testing.assert_close(got.double(), ref.detach(), rtol=2 ** -7, atol=2 ** -7 * ref.abs().max().item())


@pytest.mark.parametrize("n,c,h,w", [(4, 32, 7, 7), (3, 8, 5, 3), (1, 64, 1, 1), (2, 24, 3, 9)])
def test_k2s_two_layers_kernel_is_its_pytorch_version_and_the_layers_bit_for_bit(built, n, c, h, w):
    """k2's two layers in bf16 inference (``layers.k2_twice``): the kernel of ``blocks``, reading the
    first layer's 2x2 blocks ReLU'd (-0 and NaN kept) and writing 4x4 tiles, gives the PyTorch
    version's bits, and both give the layers' own: the first layer's output laid out as an
    image, ReLU'd, then the last layer."""
    _, weight, bias, _ = k2_last_layer_inputs(n, c, h, w)
    rows = inputs((n * h * w * 4, c), torch.bfloat16, "nchw")  # each input pixel's 2x2 block, in turn
    rows[1, 3], rows[-1, 0] = float("nan"), -float("nan")  # a NaN's pixel is NaN (its payload may differ)
    y = torch.ops.fashionae.one_channel_forward(rows, weight, bias, n, h, w, True)
    assert y.shape == (n, 1, 4 * h, 4 * w) and y.isnan().sum() == 8 and (y == 0).sum() < y.numel() // 2
    image = rows.view(n, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(n * 2 * h * 2 * w, c)  # the layer's output
    layers = torch.ops.fashionae.one_channel_forward(image.relu().contiguous(), weight, bias, n, 2 * h, 2 * w, False)
    for other in (fashionae_layers.one_channel_forward(rows, weight, bias, (n, h, w), blocks=True), layers):
        assert torch.equal(y.isnan(), other.isnan()) and torch.equal(bits(y.nan_to_num(7.0)), bits(other.nan_to_num(7.0)))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_k2s_last_layer_trains_the_same_with_and_without_the_kernels(built, monkeypatch, layout):
    """The layer itself under bf16 autocast, from either layout: output and gradients to the last
    bit, by the kernels and by PyTorch's ops."""
    torch.manual_seed(0)
    layer = BlockConvTranspose2d(32, 1, 2)
    x = inputs((3, 32, 5, 6), torch.float32, layout).relu()

    def run_layer():
        layer.zero_grad()
        leaf = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(leaf)
        assert graph(y)[0] == "_IntoOneChannelBackward"
        y.float().pow(2).sum().backward()
        return [bits(t) for t in (y, leaf.grad, layer.weight.grad, layer.bias.grad)]

    with_kernels = run_layer()
    torch_ops(monkeypatch)
    assert all(torch.equal(a, b) for a, b in zip(with_kernels, run_layer()))


def test_k2s_last_layer_sums_as_its_comment_says():
    """The PyTorch version of k2's last layer adds in the order kernels.cpp documents: its fp32
    sums against the same sums written out one float32 addition at a time (numpy scalars), on
    values whose magnitudes lie far apart, so that another order would give other bits."""
    n, c, h, w = 1, 16, 7, 4
    gen = torch.Generator().manual_seed(3)
    rows, weight, bias, grad = (  # each value times 2 ** -12 ... 2 ** 12
        (torch.randn(shape, generator=gen) * torch.randint(-12, 13, shape, generator=gen).exp2()).bfloat16()
        for shape in ((n * h * w, c), (c, 4), (1,), (n, 1, 2 * h, 2 * w)))
    x, wt, b, g = (t.float().numpy() for t in (rows, weight, bias, grad))
    y = fashionae_layers.one_channel_sums(rows, weight, bias).numpy()
    grows, gw, gb = (t.numpy() for t in fashionae_layers.one_channel_gradient_sums(rows, weight, grad))

    def g_of(r, t):  # the gradient of pixel r's output tap t
        i, j = divmod(r, w)
        return g[0, 0, 2 * i + t // 2, 2 * j + t % 2]

    for r in range(n * h * w):
        for t in range(4):
            lanes = [x[r, lane] * wt[lane, t] for lane in range(8)]
            for k in range(1, c // 8):
                lanes = [lanes[lane] + x[r, 8 * k + lane] * wt[8 * k + lane, t] for lane in range(8)]
            halves = [lanes[lane] + lanes[lane + 4] for lane in range(4)]
            assert y[r, t] == ((halves[0] + halves[2]) + (halves[1] + halves[3])) + b[0]
        for ch in range(c):
            v = g_of(r, 0) * wt[ch, 0]
            for t in range(1, 4):
                v = v + g_of(r, t) * wt[ch, t]
            assert grows[r, ch] == v

    def along_row(i, product):  # the row's sum, in order from its first pixel's
        s = product(i * w)
        for j in range(1, w):
            s = s + product(i * w + j)
        return s

    totals = []
    for ch in range(c + 1):  # ch = c: the bias's
        for t in range(4):
            def product(r):
                return g_of(r, t) if ch == c else x[r, ch] * g_of(r, t)
            r = [along_row(i, product) for i in range(h)]
            total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + r[6])  # seven rows pairwise
            if ch < c:
                assert gw[ch, t] == total
            else:
                totals.append(total)
    assert gb[0] == ((totals[0] + totals[1]) + totals[2]) + totals[3]


def test_pairwise_sum_adds_adjacent_pairs_level_by_level():
    """((v0 + v1) + (v2 + v3)) + ((v4 + v5) + v6): v0 + v1 rounds to v0 and v2 + v3 is 1 - v0, so
    the first half is 1 (one after another, v0 + v1 + v2 rounds to v0 and the 1s are lost)."""
    v = torch.tensor([2.0 ** 24, 1.0, 1.0, -(2.0 ** 24), 1.0, 3.0, 2.0 ** -10])
    assert fashionae_layers.pairwise_sum(v).item() == 1.0 + (4.0 + 2.0 ** -10)
    assert fashionae_layers.pairwise_sum(torch.ones(1, 3)).tolist() == [1.0, 1.0, 1.0]


def onednn_measured() -> bool:
    """The CPU kind where the fp32 kernels' orders were found to be oneDNN's: AVX2 only, uncapped."""
    from fashionae.machine import cpu_info
    cpu = cpu_info()
    return cpu["isa"] == ["AVX2"] and not cpu["isa_caps"]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_fp32_kernels_are_onednns_convolutions_to_their_last_bit(built, layout):
    """In fp32 inference the paper autoencoder's first stage and its decoder's two layers (the
    first with its ReLU) are kernels whose sums run in oneDNN's orders on an AVX2 EPYC, where every
    value is the same and the kernels run. On other CPUs (AVX-512, AMX: there the decoder's are
    still the same, 16-25 % of the first stage's outputs are not) the check of the first batch
    keeps a kernel that differs out: every value is the same everywhere."""
    torch.manual_seed(0)
    model = build_model(ModelConfig()).eval()
    x = torch.rand(64, 1, 28, 28)
    if layout == "channels-last":
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    decoder = model.decoder.layers
    z = torch.rand(64, 64, 7, 7).contiguous(memory_format=LAYOUTS[layout])
    with torch.no_grad():
        model.encoder.features(x), decoder(z)  # the checks of layers.one_call_where_same
    with torch.profiler.profile() as profile, torch.no_grad():
        y, out = model.encoder.features(x), decoder(z)
    stock, stock_out = model.encoder.features(x).detach(), decoder(z).detach()  # autograd on: the layers one by one
    calls = {e.key: e.count for e in profile.key_averages()}
    if onednn_measured():
        assert calls.get("fashionae::conv3x3_relu_pool") == 1 and calls.get("fashionae::conv_transpose_2x2") == 2
    for mine, theirs in ((y, stock), (out, stock_out)):
        assert mine.stride() == theirs.stride()
        assert torch.equal(bits(mine), bits(theirs))


def test_the_fp32_kernels_run_only_where_their_check_found_the_layers_bits(built, monkeypatch):
    """The first stage and the 2x2 layer in fp32 inference, each checked by its computation and
    shape (layers.one_call_where_same): a check that found other bits keeps the kernel out, one
    that found the same lets it run."""
    stage, x = first_stage_layers(), torch.rand(3, 1, 8, 8)
    up, z = BlockConvTranspose2d(32, 8, 2).eval(), torch.rand(3, 32, 7, 7)
    keys = {"fashionae::conv3x3_relu_pool": ("conv3x3_relu_pool", *fashionae_layers._signature(stage[0], x)),
            "fashionae::conv_transpose_2x2": ("conv_transpose_2x2", *fashionae_layers._signature(up, z))}
    for same in (False, True):
        monkeypatch.setattr(fashionae_layers, "_SAME_BITS", {key: same for key in keys.values()})
        with torch.profiler.profile() as profile, torch.no_grad():
            stage(x), up(z)
        assert {e.key for e in profile.key_averages()} & set(keys) == (set(keys) if same else set())
        assert len(fashionae_layers._SAME_BITS) == 2  # no check ran again


def test_the_2x2_kernel_runs_only_where_it_computes_the_layer(built, monkeypatch):
    """In fp32 with autograd off, for more than one image where oneDNN would run the layer, into
    one channel or a multiple of 8, with the ReLU after it in a Layers; the stock layer (or, under
    bf16 autocast, its matrix product; or oneDNN's call with the ReLU) otherwise."""
    x = torch.rand(3, 32, 7, 7)

    def ops(layer: nn.Module, images: torch.Tensor = x, grad: bool = False, bf16: bool = False) -> set[str]:
        with torch.profiler.profile() as profile, torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.set_grad_enabled(grad):
                layer(images)
        return {e.key for e in profile.key_averages()}

    def runs(layer: nn.Module, images: torch.Tensor = x, **kw) -> bool:
        return "fashionae::conv_transpose_2x2" in ops(layer, images, **kw)

    layer, wide = BlockConvTranspose2d(32, 1, 2), BlockConvTranspose2d(32, 16, 2)
    assert runs(layer) and runs(layer.train()) and runs(wide) and runs(BlockConvTranspose2d(32, 8, 2))
    assert not runs(layer, grad=True) and not runs(layer, bf16=True) and not runs(layer, x[:1])
    assert not runs(wide, grad=True) and not runs(wide, bf16=True) and not runs(wide, x[:1])
    assert not any(runs(BlockConvTranspose2d(32, o, 2)) for o in (2, 4, 12))
    assert not runs(BlockConvTranspose2d(32, 1, 4)) and not runs(BlockConvTranspose2d(32, 8, 4))
    assert not runs(BlockConvTranspose2d(32, 1, 2).bfloat16(), x.bfloat16())
    with_relu = Layers(wide, ReLUDropout(0.2)).eval()
    ops(with_relu)  # layers.conv_relu's check
    assert ops(with_relu) & {"fashionae::conv_transpose_2x2", "mkldnn::_convolution_transpose_pointwise",
                             "aten::relu", "fashionae::relu_dropout"} == {"fashionae::conv_transpose_2x2"}
    with monkeypatch.context() as m:
        m.setattr(torch.backends.mkldnn, "enabled", False)
        assert not runs(layer) and not runs(wide)
    with monkeypatch.context() as m:
        m.setattr(torch.compiler, "is_compiling", lambda: True)
        assert not runs(layer) and not runs(wide)
    torch_ops(monkeypatch)
    assert not runs(layer) and not runs(wide)
    assert "mkldnn::_convolution_transpose_pointwise" in ops(with_relu)


@pytest.mark.parametrize("run", ["relu-pool", "first-stage"])
def test_a_convolution_and_relu_join_in_one_call_before_a_kernels_run(built, run):
    """fp32 inference: the first convolution + ReLU as one oneDNN call, then the second ReLU with
    its pooling in a kernel, or the second convolution (into one channel's image) with them; the
    same output as the layers one by one (the first stage's kernel where it gives their bits)."""
    torch.manual_seed(0)
    middle = 8 if run == "relu-pool" else 1
    layers = Layers(nn.Conv2d(2, middle, 3, padding=1), nn.ReLU(), nn.Conv2d(middle, 32, 3, padding=1),
                           nn.ReLU(), nn.MaxPool2d(2, 2)).eval()
    x = torch.rand(3, 2, 8, 8)
    with torch.no_grad():
        layers(x)  # the checks of layers.one_call_where_same
        with torch.profiler.profile() as profile:
            y = layers(x)
    ops = [e.key for e in profile.key_averages()]
    kernel = "fashionae::relu_pool" if run == "relu-pool" else "fashionae::conv3x3_relu_pool"
    assert "mkldnn::_convolution_pointwise" in ops and (kernel in ops or not onednn_measured())
    assert torch.equal(y, layers(x))  # autograd on: the layers one by one


def test_the_kernels_run_where_they_can_and_the_layers_elsewhere(built):
    """Counter masks in training: the kernels' nodes; mersenne masks, odd sizes or another
    pooling: PyTorch's ops; eval mode: ReLU and pooling."""
    layer, pool = ReLUDropout(0.2), nn.MaxPool2d(2, 2)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    assert graph(layer(x))[0] == "_KernelReLUDropoutBackward"
    assert graph(relu_dropout_pool(layer, pool, x))[0] == "_KernelReLUDropoutPoolBackward"
    # odd sizes, one unbatched image, a transposed (dense, neither layout) view
    for odd in (x[:, :, :7, :7].contiguous(), x[:, :, :7, :].contiguous(), x[:, :, :, :7].contiguous(),
                x[0].contiguous(), x.transpose(2, 3)):
        torch.manual_seed(4)
        y = relu_dropout_pool(layer, pool, odd)
        torch.manual_seed(4)
        assert graph(y)[0].startswith("MaxPool2D") and torch.equal(y, pool(layer(odd)))
    assert kernels_laid_out_like(y, y) is y  # no copy of a gradient already laid out right
    y = layer(x)
    (dx,) = torch.autograd.grad(y, x, torch.ones_like(y, requires_grad=True), create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):  # no second derivative, said so
        dx.sum().backward()
    use_dropout_masks(layer, "mersenne")
    assert graph(layer(x))[0] == "_MaskedScaleBackward"
    torch.manual_seed(5)
    y = relu_dropout_pool(layer, pool, x)
    torch.manual_seed(5)
    assert graph(y)[0].startswith("MaxPool2D") and torch.equal(y, pool(layer(x)))
    layer.eval()
    assert torch.equal(relu_dropout_pool(layer, pool, x), F.max_pool2d(F.relu(x), 2))


def test_a_model_drawing_mersenne_masks_trains_as_with_pytorchs_ops(built, monkeypatch):
    """The masks of 0.2's run folders are PyTorch's ops' alone: the layers run as before."""
    x = torch.rand(20, 1, 28, 28).contiguous(memory_format=torch.channels_last)

    def step() -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        model = build_model(ModelConfig(latent=16)).to(memory_format=torch.channels_last)
        use_dropout_masks(model, "mersenne")
        loss = model(x).loss
        loss.backward()
        return loss.item(), model.encoder.features[0].weight.grad

    loss, grad = step()
    torch_ops(monkeypatch)
    loss0, grad0 = step()
    assert loss == loss0 and torch.equal(grad, grad0)


def test_only_a_2x2_stride_2_max_pooling_is_run_by_the_kernels():
    assert halving_pool(nn.MaxPool2d(2, 2)) and halving_pool(nn.MaxPool2d(2)) and halving_pool(nn.MaxPool2d((2, 2)))
    for other in (nn.MaxPool2d(2, 1), nn.MaxPool2d(3, 2), nn.MaxPool2d((2, 3)), nn.MaxPool2d(2, padding=1),
                  nn.MaxPool2d(2, dilation=2), nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(2, return_indices=True),
                  nn.AvgPool2d(2)):
        assert not halving_pool(other), other


@pytest.mark.parametrize("precision,dropout", [("bf16", 0.2), ("fp32", 0.2), ("bf16", 0.0)])
def test_training_steps_are_the_same_with_and_without_the_kernels(built, monkeypatch, precision, dropout):
    """Three steps of the paper autoencoder from the same seed: the same loss and weights to the
    last bit, and the kernels did run (their nodes are in the graph)."""
    if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no bf16 on this CPU")
    cfg = TrainConfig(precision=precision, device="cpu").resolved()
    x = torch.rand(300, 1, 28, 28).contiguous(memory_format=torch.channels_last)

    def train() -> tuple[list[float], dict[str, torch.Tensor], list[str]]:
        torch.manual_seed(0)
        model = build_model(ModelConfig(latent=32, dropout=dropout)).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        losses = [train_step(model, opt, x[i:i + 100], None, cfg).loss.item() for i in range(0, 300, 100)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            nodes = graph(model.encoder.features(x[:2]))
        return losses, model.state_dict(), nodes

    node = "_KernelReLUDropoutPoolBackward" if dropout else "_KernelReLUPoolBackward"
    losses, weights, nodes = train()
    assert node in nodes
    torch_ops(monkeypatch)
    losses0, weights0, nodes0 = train()
    assert node not in nodes0
    assert losses == losses0
    assert all(torch.equal(weights[k], weights0[k]) for k in weights)


def test_the_kernels_are_built_once_per_machine_and_cpu(built, monkeypatch, tmp_path_factory):
    """The library is found again without the compiler; another CPU (or flags) gets its own,
    a clock speed does not, nor where the source is."""
    library = kernels.build()
    monkeypatch.setattr(kernels, "compile_library", lambda command: pytest.fail("built again"))
    assert kernels.build() == library
    fields = kernels.cpu_fields()
    monkeypatch.setattr(kernels, "cpu_fields", lambda: {**fields, "cpu MHz": "1234.5", "bogomips": "1.0"})
    assert kernels.library_path() == library
    # another copy of the same source (a checkout elsewhere) takes the same build; other source, its own
    elsewhere = tmp_path_factory.mktemp("checkout") / kernels.SOURCE.name
    elsewhere.write_bytes(kernels.SOURCE.read_bytes())
    monkeypatch.setattr(kernels, "SOURCE", elsewhere)
    assert kernels.library_path() == library
    elsewhere.write_text(elsewhere.read_text() + "\n// changed\n")
    assert kernels.library_path() != library
    monkeypatch.undo()
    monkeypatch.setattr(kernels, "compile_library", lambda command: pytest.fail("built again"))
    for field, value in (("flags", "sse2"), ("model name", "another CPU"), ("Features", "fp asimd sve")):
        monkeypatch.setattr(kernels, "cpu_fields", lambda: {**fields, field: value})
        assert kernels.library_path() != library, field


def test_a_damaged_library_in_the_cache_is_built_again(built, tmp_path, monkeypatch):
    """A cut library would crash the process that maps it: it is built again instead."""
    import shutil
    whole = kernels.build()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    damaged = kernels.library_path()
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(whole.read_bytes()[:1000])
    assert not kernels.whole_elf(damaged) and kernels.whole_elf(whole)
    compiled = []
    monkeypatch.setattr(kernels, "compile_library",  # the compiler's work, without the wait
                        lambda command: compiled.append(command) or shutil.copy(whole, command[command.index("-o") + 1]))
    assert kernels.build() == damaged and compiled
    assert damaged.read_bytes() == whole.read_bytes() and not list(tmp_path.rglob("*.partial"))


def test_a_run_records_whether_the_kernels_were_there(built, monkeypatch):
    from fashionae.runs import environment
    cfg = TrainConfig(device="cpu").resolved()
    assert environment(cfg)["cpu_kernels"] is True
    torch_ops(monkeypatch)
    assert environment(cfg)["cpu_kernels"] is False


def test_an_isa_cap_builds_for_the_capped_isa(monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2 (an AVX2 machine emulated on a larger CPU) gets AVX2 code."""
    from pathlib import Path
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert "-march=x86-64-v3" in kernels.compile_command(Path("k.cpp"), Path("k.so"))
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    assert "-march=native" in kernels.compile_command(Path("k.cpp"), Path("k.so"))


@pytest.mark.parametrize("compiler, reason", [("/bin/false", "/bin/false failed"),
                                              ("no-such-c++", "no C++ compiler: 'no-such-c++' is not on the PATH"),
                                              ('"', "CXX='\"' is no command line: no closing quotation")])
def test_without_a_working_compiler_pytorchs_ops_run_after_one_note(tmp_path, monkeypatch, capsys, compiler, reason):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CXX", compiler)
    assert kernels._load() is False
    err = capsys.readouterr().err
    assert f"fashionae: note: the compiled CPU kernels are not available ({reason}" in err
    assert "PyTorch's ops run instead: the same numbers" in err
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.partial"))
    monkeypatch.setenv("RANK", "1")  # under torchrun, process 0 alone says so
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert kernels._load() is False and capsys.readouterr().err == ""
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setattr(kernels, "_loaded", False)
    layer, x = ReLUDropout(0.2), torch.randn(4, 8)
    torch.manual_seed(3)
    y = layer(x)
    torch.manual_seed(3)
    assert torch.equal(y, x * layer.scaled_mask(x, relu=True))


def test_a_failed_build_is_said_by_the_line_that_says_why(tmp_path):
    """The linker's own line (a full disk's) comes before collect2's, which says only that it
    failed; a compiler's error is its own line; with no such line, the last one."""
    import stat
    for said, expected in ((["/usr/bin/ld: final link failed: No space left on device",
                             "collect2: error: ld returned 1 exit status"], "final link failed: No space left"),
                           (["k.cpp: In function 'f':", "k.cpp:3:1: error: expected ';'"], "k.cpp:3:1: error"),
                           (["something odd", "and its last word"], "and its last word")):
        fake = tmp_path / "c++"
        fake.write_text("#!/bin/sh\n" + "".join(f"echo \"{line}\" >&2\n" for line in said) + "exit 1\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        with pytest.raises(OSError, match=f"^{re.escape(str(fake))} failed: .*{re.escape(expected)}"):
            kernels.compile_library([str(fake)])


def test_fashionae_kernels_0_turns_them_off_without_a_word(monkeypatch, capsys):
    monkeypatch.setenv("FASHIONAE_KERNELS", "0")
    assert kernels._load() is False
    assert capsys.readouterr().err == ""


def test_a_build_killed_midway_leaves_no_partial_library_for_good(tmp_path, monkeypatch, capsys):
    """SIGKILL during the first build leaves its .partial file; the next build removes those old
    enough to be dead, not a racing builder's fresh one."""
    import shutil
    from fashionae import kernels
    monkeypatch.setattr(kernels, "library_path", lambda: tmp_path / "fashionae_kernels_x.so")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    old, fresh = tmp_path / "fashionae_kernels_x.dead1234.partial", tmp_path / "fashionae_kernels_x.live1234.partial"
    old.write_bytes(b""), fresh.write_bytes(b"")
    os.utime(old, (0, 0))

    def fails(command):
        raise OSError("no compiler here")
    monkeypatch.setattr(kernels, "compile_library", fails)
    with pytest.raises(OSError, match="no compiler here"):
        kernels.build()
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name]  # and its own partial removed
    # the build after a killed one made the library: the killed one's partial goes once it is old
    # (it stayed for good: no build came after)
    library = tmp_path / "fashionae_kernels_x.so"
    monkeypatch.setattr(kernels, "whole_elf", lambda path: True)
    library.write_bytes(b"a library")
    assert kernels.build() == library and fresh.exists()  # young: a build that may be racing
    os.utime(fresh, (0, 0))
    assert kernels.build() == library and sorted(p.name for p in tmp_path.iterdir()) == [library.name]


# --- kernels.py's Python side: what a hand mutation of it found untested ---

def test_the_kernels_are_loaded_once_however_many_threads_ask_at_once(monkeypatch):
    """Threads that ask together wait for the one load (a build), then share its answer."""
    import threading
    import time
    loads, start = [], threading.Barrier(4)

    def slow_load():
        loads.append(threading.get_ident())
        time.sleep(0.2)  # a build: the others ask meanwhile
        return True
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setattr(kernels, "_load", slow_load)
    answers = []

    def ask():
        start.wait()
        answers.append(kernels.available())
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and answers == [True] * 4


def test_a_library_that_will_not_load_or_a_build_that_hangs_leaves_pytorchs_ops(tmp_path, monkeypatch, capsys):
    """torch.ops.load_library's RuntimeError (an operator registered twice, say) and a compiler
    stopped by the timeout are notes too, after which PyTorch's ops run; the hung build leaves
    no partial library."""
    import shutil
    import subprocess
    monkeypatch.delenv("FASHIONAE_KERNELS", raising=False)  # (never set by the code: nothing to put back)
    library = tmp_path / "fashionae_kernels_x.so"
    monkeypatch.setattr(kernels, "build", lambda: library)

    def registered_twice(path):
        raise RuntimeError("Tried to register an operator (fashionae::x) with the same name twice")
    monkeypatch.setattr(torch.ops, "load_library", registered_twice)
    assert kernels._load() is False
    assert "not available (Tried to register an operator" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.delenv("FASHIONAE_KERNELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)  # a compiler there, which hangs

    def hangs(command):
        raise subprocess.TimeoutExpired(command, 600)
    monkeypatch.setattr(kernels, "compile_library", hangs)
    assert kernels._load() is False
    err = capsys.readouterr().err
    assert "the compiled CPU kernels are not available (Command" in err and "timed out after 600 seconds" in err
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.partial"))


def test_openmp_is_used_only_where_torch_runs_gccs_libgomp(tmp_path, monkeypatch):
    """libgomp.so.1 among the libraries mapped (not another runtime, not a missing /proc): the
    library is built with -fopenmp, to share torch's thread pool."""
    from pathlib import Path
    maps = tmp_path / "maps"
    monkeypatch.setattr(kernels, "Path", lambda name: maps if name == "/proc/self/maps" else Path(name))
    lines = ["7f00-7f01 r-xp 00000000 08:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6",
             "7f02-7f03 r-xp 00000000 08:01 13 /venv/lib/python3.11/site-packages/torch/lib/libgomp.so.1",
             "7ffd-7ffe rw-p 00000000 00:00 0 [stack]"]
    maps.write_text("\n".join(lines) + "\n")
    assert kernels.torch_uses_libgomp() is True
    maps.write_text("\n".join(lines).replace("libgomp.so.1", "libiomp5.so") + "\n")
    assert kernels.torch_uses_libgomp() is False
    maps.unlink()
    assert kernels.torch_uses_libgomp() is False
    monkeypatch.undo()
    for libgomp in (True, False):
        monkeypatch.setattr(kernels, "torch_uses_libgomp", lambda: libgomp)
        assert ("-fopenmp" in kernels.compile_command(Path("k.cpp"), Path("k.so"))) is libgomp


def test_the_compile_command_by_isa_cap_architecture_and_compiler(monkeypatch):
    """ATEN_CPU_CAPABILITY=default builds for x86-64-v2, avx512 (no cap the kernels need) natively,
    and a value torch ignores (AVX2 in capitals) caps nothing; elsewhere than x86 a cap is not
    x86's and gcc's 512-bit preference is not asked; $CXX is split as a command line, the default
    (unset or empty) is c++."""
    from pathlib import Path

    def command():
        return kernels.compile_command(Path("k.cpp"), Path("k.so"))
    monkeypatch.setattr(kernels.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("CXX", raising=False)
    for cap, march in (("default", "x86-64-v2"), ("avx512", "native"), ("avx2", "x86-64-v3"), ("AVX2", "native")):
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", cap)
        assert f"-march={march}" in command() and "-mprefer-vector-width=512" in command(), cap
    assert command()[0] == "c++"
    monkeypatch.setattr(kernels.platform, "machine", lambda: "aarch64")
    assert "-march=native" in command() and not any("vector-width" in flag for flag in command())
    monkeypatch.setenv("CXX", "")
    assert command()[0] == "c++"
    monkeypatch.setenv("CXX", "ccache 'g++-12'")
    assert command()[:2] == ["ccache", "g++-12"] and command()[2] == "-O3"


def test_each_thing_the_build_depends_on_names_its_own_library(monkeypatch, tmp_path):
    """The library is $XDG_CACHE_HOME/fashionae/kernels/fashionae_kernels_<16 hex digits>.so, and
    another torch, architecture or any field of the CPU's identity names another."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    library = kernels.library_path()
    assert library.parent == tmp_path / "fashionae" / "kernels"
    assert re.fullmatch(r"fashionae_kernels_[0-9a-f]{16}\.so", library.name)
    with monkeypatch.context() as m:
        m.setattr(torch, "__version__", torch.__version__ + "+another")
        assert kernels.library_path() != library
    with monkeypatch.context() as m:  # two architectures (the same command: neither is x86) apart
        m.setattr(kernels.platform, "machine", lambda: "aarch64")
        arm = kernels.library_path()
        m.setattr(kernels.platform, "machine", lambda: "riscv64")
        assert kernels.library_path() != arm
    fields = kernels.cpu_fields()
    for field in ("vendor_id", "cpu family", "model", "model name", "stepping", "flags", "CPU implementer",
                  "CPU architecture", "CPU variant", "CPU part", "CPU revision", "Features"):
        monkeypatch.setattr(kernels, "cpu_fields", lambda: {**fields, field: fields.get(field, "") + " another"})
        assert kernels.library_path() != library, field


def test_only_a_whole_64_bit_elf_file_is_taken_for_a_library(built, tmp_path):
    """A library cut anywhere (in its section headers too: by one byte), a header cut short,
    another format or no file at all is not whole."""
    whole = kernels.build().read_bytes()
    path = tmp_path / "lib.so"
    path.write_bytes(whole)
    assert kernels.whole_elf(path)
    for cut in (1, 64, len(whole) // 2):
        path.write_bytes(whole[:-cut])
        assert not kernels.whole_elf(path), cut
    path.write_bytes(b"\x7fELF\x02\x01" + bytes(57))  # 63 bytes: the header cut short
    assert not kernels.whole_elf(path)
    path.write_bytes(b"\x7fELG\x02\x01" + bytes(100))  # no ELF magic, though its numbers would fit
    assert not kernels.whole_elf(path)
    assert not kernels.whole_elf(tmp_path / "missing.so")


def test_a_build_says_so_and_writes_its_partial_library_where_a_killed_one_is_found(tmp_path, monkeypatch, capsys):
    """The partial library is next to the library, named as the stale builds build() removes are
    found; the build leaves no file descriptor open, and says it is building once."""
    import fnmatch
    import shutil
    from pathlib import Path
    library = tmp_path / "fashionae_kernels_x.so"
    monkeypatch.setattr(kernels, "library_path", lambda: library)
    elf = b"\x7fELF\x02\x01" + bytes(58)  # 64 bytes, no sections: whole
    partials = []

    def compiles(command):
        partial = Path(command[command.index("-o") + 1])
        partials.append(partial)
        partial.write_bytes(elf)
    monkeypatch.setattr(kernels, "compile_library", compiles)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    fds = len(os.listdir("/proc/self/fd"))
    assert kernels.build() == library and library.read_bytes() == elf
    assert len(os.listdir("/proc/self/fd")) == fds
    [partial] = partials
    assert partial.parent == library.parent and fnmatch.fnmatch(partial.name, f"{library.stem}.*.partial")
    assert capsys.readouterr().err.count("fashionae: building the CPU kernels for this machine") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [library.name]


def test_a_compiler_that_writes_a_cut_library_is_a_failed_build(tmp_path, monkeypatch):
    import shutil
    library = tmp_path / "fashionae_kernels_x.so"
    monkeypatch.setattr(kernels, "library_path", lambda: library)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(kernels, "compile_library",
                        lambda command: open(command[command.index("-o") + 1], "wb").write(b"\x7fELF\x02\x01" + bytes(20)))
    with pytest.raises(OSError, match="wrote no whole library"):
        kernels.build()
    assert not list(tmp_path.iterdir())


def test_a_build_killed_midway_is_old_only_after_the_compilers_timeout(tmp_path, monkeypatch):
    """A partial library 5 minutes old may be a build still running (one is given up to
    STALE_BUILD_SECONDS): kept; one 20 minutes old is a dead build's: removed."""
    import subprocess
    import time
    library = tmp_path / "fashionae_kernels_x.so"
    library.write_bytes(b"a library")
    monkeypatch.setattr(kernels, "library_path", lambda: library)
    monkeypatch.setattr(kernels, "whole_elf", lambda path: True)
    young, old = tmp_path / "fashionae_kernels_x.young.partial", tmp_path / "fashionae_kernels_x.old.partial"
    young.write_bytes(b""), old.write_bytes(b"")
    now = time.time()
    os.utime(young, (now - 300, now - 300))
    os.utime(old, (now - 1200, now - 1200))
    assert kernels.build() == library
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([library.name, young.name])
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: ran.append(kw) or subprocess.CompletedProcess(command, 0))
    kernels.compile_library(["c++"])
    assert ran[0].get("timeout") is not None and 0 < ran[0]["timeout"] <= kernels.STALE_BUILD_SECONDS


def test_a_failed_build_says_exactly_why(tmp_path):
    """A compiler that says nothing: its exit status; killed by a signal (the OOM killer): a failure
    too; the line that says why, without the blanks around it."""
    import stat
    with pytest.raises(OSError) as e:
        kernels.compile_library(["/bin/false"])
    assert str(e.value) == "/bin/false failed: exit status 1"
    fake = tmp_path / "c++"
    for script, said in (("kill -9 $$\n", "exit status -9"),
                         ('echo "   k.cpp:3:1: error: expected \';\'   " >&2\nexit 1\n', "k.cpp:3:1: error: expected ';'")):
        fake.write_text("#!/bin/sh\n" + script)
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        with pytest.raises(OSError) as e:
            kernels.compile_library([str(fake)])
        assert str(e.value) == f"{fake} failed: {said}"
