"""``layers.py``: the layers computed as one (``Layers``) and the author's k2 upsampling
(``BlockConvTranspose2d``) give the plain layers' numbers, and run only where they should. With
the compiled kernels: tests/test_kernels.py."""
import pytest
import torch

from fashionae import kernels, layers
from fashionae.dropout import ReLUDropout
from fashionae.layers import BlockConvTranspose2d, Layers
from fashionae.models import ModelConfig, build_model


def kernels_for(monkeypatch, on: bool) -> None:
    """The compiled kernels on (the test skipped where they are not built) or off."""
    if on and not kernels.available():
        pytest.skip("the compiled CPU kernels are not available here")
    if not on:
        monkeypatch.setattr(kernels, "_loaded", False)


def count_fused(monkeypatch) -> list:
    """The convolutions given to ``conv_relu`` with their ReLU from now on, in order (whether it
    then runs them as one call is its check's: test_a_convolution_and_relu_run_as_one_call_...).
    ReLU + pooling by PyTorch's ops: with the compiled kernels, tests/test_kernels.py."""
    monkeypatch.setattr(kernels, "_loaded", False)
    fused, conv_relu = [], layers.conv_relu
    monkeypatch.setattr(layers, "conv_relu", lambda conv, relu, x: fused.append(conv) or conv_relu(conv, relu, x))
    return fused


def one_calls(monkeypatch, differ: str) -> list:
    """The one calls of a stock convolution with its ReLU from now on, checked afresh, made to
    give the layers' bits ("no"), or to differ from them by the last bit ("bits") or in layout."""
    monkeypatch.setattr(layers, "_SAME_BITS", {})
    calls = []

    def counted(conv, x):
        calls.append(tuple(x.shape))
        y = torch.relu(conv(x))
        if differ == "bits":
            return torch.nextafter(y, torch.tensor(float("inf")))
        return y.contiguous(memory_format=torch.channels_last) if differ == "layout" else y
    monkeypatch.setitem(layers.FUSED_CONV_RELU, torch.nn.Conv2d, counted)
    return calls


@pytest.mark.parametrize("differ", ["no", "bits", "layout"])
def test_a_convolution_and_relu_run_as_one_call_only_where_it_gives_the_layers_bits(monkeypatch, differ):
    """The first batch of each shape runs both ways and answers with the layers; later ones take
    the one call only if the two were the same, laid out alike (torch 2.11's oneDNN differs in
    NCHW, 2.13's not)."""
    calls = one_calls(monkeypatch, differ)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    pair = Layers(conv, torch.nn.ReLU()).eval()
    batches = [torch.randn(4, 3, 6, 6), torch.randn(4, 3, 6, 6), torch.randn(4, 3, 6, 6), torch.randn(2, 3, 6, 6),
               torch.randn(2, 3, 6, 6)]
    for x in batches:
        with torch.inference_mode():
            out = pair(x)
        assert torch.equal(out, torch.relu(conv(x))) and out.is_contiguous()
    if differ == "no":  # each shape checked once, then one call
        assert calls == [(4, 3, 6, 6)] * 3 + [(2, 3, 6, 6)] * 2
    else:  # each shape checked once, then the layers
        assert calls == [(4, 3, 6, 6), (2, 3, 6, 6)]
    assert list(layers._SAME_BITS.values()) == [differ == "no"] * 2
    with torch.inference_mode():
        pair(batches[0].contiguous(memory_format=torch.channels_last))  # another layout: checked
    assert len(layers._SAME_BITS) == 3


def test_a_check_holds_for_what_chooses_a_convolutions_sums_and_no_more(monkeypatch):
    """Another layer type, bias, stride, padding, dilation, groups or output padding, another
    shape, layout, type or thread count of the input, or the kernels off: checked again. Other
    weights of the same layer: not."""
    torch.manual_seed(0)
    x, conv = torch.rand(2, 4, 6, 6), torch.nn.Conv2d(4, 4, 3)
    cases = [(conv, x), (torch.nn.ConvTranspose2d(4, 4, 3), x), (torch.nn.Conv2d(4, 4, 3, bias=False), x),
             (torch.nn.Conv2d(4, 4, 3, stride=2), x), (torch.nn.Conv2d(4, 4, 3, padding=1), x),
             (torch.nn.Conv2d(4, 4, 3, dilation=2), x), (torch.nn.Conv2d(4, 4, 3, groups=2), x),
             (torch.nn.ConvTranspose2d(4, 4, 3, stride=2), x), (torch.nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=1), x),
             (conv, torch.rand(3, 4, 6, 6)), (conv, x.contiguous(memory_format=torch.channels_last)),
             (torch.nn.Conv2d(4, 4, 3).double(), x.double())]
    signatures = [layers._signature(c, images) for c, images in cases]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        signatures.append(layers._signature(torch.nn.Conv2d(4, 4, 3), x))
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(kernels, "_loaded", not kernels.available())
    signatures.append(layers._signature(torch.nn.Conv2d(4, 4, 3), x))
    assert len(set(signatures)) == len(signatures)
    monkeypatch.undo()
    assert layers._signature(torch.nn.Conv2d(4, 4, 3), x) == layers._signature(torch.nn.Conv2d(4, 4, 3), x)


@pytest.mark.parametrize("encoder_type,decoder,arch,pairs", [("paper", "k2", "linear", 3), ("strided", "k3", "conv", 5),
                                                              ("paper", "k4", "linear", 3), ("strong", "resize", "conv", 0)])
@pytest.mark.parametrize("precision,channels_last", [("fp32", True), ("fp32", False), ("bf16", True)])
def test_inference_fuses_convolution_and_relu_bit_for_bit(encoder_type, decoder, arch, pairs, precision, channels_last,
                                                          monkeypatch):
    fused = count_fused(monkeypatch)
    monkeypatch.setattr(layers, "_SAME_BITS", {})
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_type=encoder_type, decoder=decoder, arch=arch)).eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    for images in (5, 1, 0):  # one image: PyTorch's own convolutions, not fused
        x = torch.rand(images, 1, 28, 28)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            plain = model.reconstruct(x).detach()  # autograd on: the layers one by one
            with torch.inference_mode():  # checked, then a convolution and its ReLU as one call
                checked, fused_out = model.reconstruct(x), model.reconstruct(x)
        assert fused_out.dtype == plain.dtype
        assert torch.equal(checked, plain) and torch.equal(fused_out, plain)
    # the strong encoder's ReLU follows a batch norm, the resize decoder's convolution is nested
    assert len(fused) == (2 * pairs if precision == "fp32" else 0)
    if torch.__version__.startswith("2.13."):  # the pinned PyTorch: every one call gives the layers' bits
        assert all(layers._SAME_BITS.values())


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
        plain = broken.reconstruct(images).detach()  # autograd on: the layers one by one
        with torch.no_grad():
            out = broken.reconstruct(images)
        assert torch.isnan(plain).any() and torch.equal(torch.isnan(out), torch.isnan(plain))
    assert fused == []


def test_inference_fuses_only_a_convolution_then_relu_in_eval_mode(monkeypatch):
    fused = count_fused(monkeypatch)
    first, second = torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Conv2d(2, 2, 3, padding=1)
    layers = Layers(first, torch.nn.ReLU(), second, torch.nn.Sigmoid())
    x = torch.randn(2, 1, 6, 6)
    with torch.inference_mode():
        layers.train()(x)
        assert fused == []  # training mode: every layer by itself
        out = layers.eval()(x)
    assert fused == [first]  # the second convolution has no ReLU after it
    assert torch.equal(out, torch.sigmoid(second(torch.relu(first(x)))))
    layers(x)
    assert fused == [first]  # autograd on: the plain layers
    with torch.no_grad():
        layers(x)
    assert fused == [first, first]  # autograd off, as in evaluation: fused too

    dropout = Layers(first, ReLUDropout(0.5)).eval()
    dropout[1].train()  # dropout left on in an evaluated stack: not a ReLU
    with torch.inference_mode():
        dropout(x)
        for tracer in (torch.compiler, torch.jit):  # torch.compile and torch.jit.trace see the plain layers
            with monkeypatch.context() as m:
                m.setattr(tracer, "is_compiling" if tracer is torch.compiler else "is_tracing", lambda: True)
                layers(x)
    assert fused == [first, first]

    double = Layers(torch.nn.Conv2d(1, 2, 3).double(), torch.nn.ReLU()).eval()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="should be the same"):
        double(x)  # PyTorch's own message for a model and input of different types


def block_and_stock(cin: int, cout: int):
    """k2's layer and the stock transposed convolution, with the same weights."""
    layer, stock = BlockConvTranspose2d(cin, cout, 2), torch.nn.ConvTranspose2d(cin, cout, 2, stride=2)
    stock.load_state_dict(layer.state_dict())
    return layer, stock


@pytest.mark.parametrize("cin,cout", [(64, 32), (32, 1)])
@pytest.mark.parametrize("input_layout,weight_layout", [("nchw", "nchw"), ("cl", "cl"), ("nchw", "cl"), ("cl", "nchw")])
def test_k2_upsampling_is_one_matrix_product_under_bf16_and_the_stock_layer_elsewhere(cin, cout, input_layout,
                                                                                       weight_layout, monkeypatch):
    """The author's k2 decoder: under bf16 autocast on the CPU each transposed convolution is one
    matrix product (into one channel, ``into_one_channel``'s sums, by the kernels where they run):
    the stock layer's function (outputs and gradients to bf16's rounding) laid out in memory as
    the stock layer lays it (the dropout after it draws its mask in memory order); in fp32, and
    while compiling or tracing, the stock layer, bit for bit."""
    decoder = build_model(ModelConfig(decoder="k2")).decoder.layers
    assert [type(m) for m in decoder[::2]] == [BlockConvTranspose2d] * 2
    products, addmm = [], torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *a, **k: products.append(a[1].shape) or addmm(*a, **k))
    torch.manual_seed(0)
    layer, stock = block_and_stock(cin, cout)
    if weight_layout == "cl":
        layer.to(memory_format=torch.channels_last), stock.to(memory_format=torch.channels_last)
    x = torch.randn(6, cin, 7, 7)
    if input_layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    upstream = torch.randn(6, cout, 14, 14)
    got, want = {}, {}
    for module, grads in ((layer, got), (stock, want)):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = module(xi)
        y.backward(upstream)
        grads.update(y=y.float(), x=xi.grad, weight=module.weight.grad, bias=module.bias.grad)
        grads["layout"] = y.is_contiguous(), y.is_contiguous(memory_format=torch.channels_last)
    assert products == ([] if cout == 1 else [(6 * 7 * 7, cin)])  # one product, one row per input pixel
    assert got.pop("layout") == want.pop("layout")
    for name in got:
        scale = want[name].abs().max().item()
        torch.testing.assert_close(got[name], want[name], rtol=2e-2, atol=1e-2 * scale, msg=name)
    products.clear()
    with torch.no_grad():
        assert torch.equal(layer(x), stock(x))  # fp32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            for tracer, name in ((torch.compiler, "is_compiling"), (torch.jit, "is_tracing")):
                with monkeypatch.context() as m:
                    m.setattr(tracer, name, lambda: True)
                    assert torch.equal(layer(x), stock(x))
    assert products == []


def test_k2_upsampling_leaves_to_the_stock_layer_what_one_product_does_not_cover():
    """An unbatched image, an ``output_size`` (which may add a row and a column), a layer whose
    bias was removed: the stock layer's own answer, under bf16 autocast too."""
    torch.manual_seed(0)
    layer, stock = block_and_stock(4, 3)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(layer(x[0]), stock(x[0]))
        grown = layer(x, output_size=[11, 11])
        assert grown.shape == (2, 3, 11, 11) and torch.equal(grown, stock(x, output_size=[11, 11]))
        layer.bias = stock.bias = None
        assert torch.equal(layer(x), stock(x))


@pytest.mark.parametrize("channels_last", [True, False])
def test_a_bf16_training_pass_with_k2_as_products_is_the_stock_layers_to_bf16s_rounding(channels_last, monkeypatch):
    """The paper autoencoder's training forward in bf16, in either layout: the same dropout masks
    (drawn in memory order after each upsampling), so the reconstruction is the stock layers' but
    for bf16's last bits."""
    torch.manual_seed(0)
    model = build_model(ModelConfig()).train()
    x = torch.rand(8, 1, 28, 28)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    outputs = []
    for forward in (BlockConvTranspose2d.forward, torch.nn.ConvTranspose2d.forward):
        monkeypatch.setattr(BlockConvTranspose2d, "forward", forward)
        torch.manual_seed(3)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            outputs.append(model.reconstruct(x).float())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("channels_last", [True, False])
def test_every_gradient_has_its_weights_strides(channels_last):
    """What DistributedDataParallel's buckets need (it warns of every mismatch under torchrun):
    k2's last layer, one channel wide, computes its weight gradient as [C, 4] taps and hands it
    back in the weight's own strides."""
    from fashionae.training import TrainConfig, prepare, train_step
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent=32))
    cfg = TrainConfig(device="cpu", precision="bf16", channels_last=channels_last).resolved()
    opt = prepare(model, cfg)
    x = torch.rand(10, 1, 28, 28)
    train_step(model, opt, x.contiguous(memory_format=torch.channels_last) if channels_last else x,
               torch.zeros(10, dtype=torch.long), cfg)
    assert [n for n, p in model.named_parameters() if p.grad.stride() != p.stride()] == []


@pytest.mark.parametrize("kernels_on", [True, False])
def test_k2s_two_layers_run_as_one_in_bf16_inference_to_the_layers_bits(monkeypatch, kernels_on):
    """The paper decoder's two k2 layers with the ReLU between them (``k2_twice``): in bf16
    inference on the CPU one run, by the kernel where it runs and by PyTorch's ops elsewhere, to
    the bits of the layers one by one, NaN kept; in training mode, with autograd on, in fp32, and
    where the layers differ (a ReLU in training mode, a last layer into two channels, a first one
    into 72 or a stock layer), the layers alone."""
    kernels_for(monkeypatch, kernels_on)
    runs, k2_twice = [], layers.k2_twice
    monkeypatch.setattr(layers, "k2_twice", lambda *a: runs.append(a[-1].shape) or k2_twice(*a))
    torch.manual_seed(0)
    decoder = build_model(ModelConfig()).decoder.layers.eval()
    z = torch.randn(6, 64, 7, 7)
    z[2, 5, 3, 3] = float("nan")
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    with bf16:
        plain = decoder(z).detach()  # autograd on: the layers one by one
        last, middle = decoder[2], torch.relu(decoder[0](z)).float()  # one NCHW image: its sums as in a batch
        assert torch.equal(last(middle[2:3]).view(torch.int16), last(middle)[2:3].view(torch.int16))  # NaN's bits too
        with torch.no_grad():
            for x in (z, z.contiguous(memory_format=torch.channels_last), z[:1], z[:0]):
                out = decoder(x)
                assert out.dtype == torch.bfloat16 and out.shape == (len(x), 1, 28, 28) and out.is_contiguous()
                assert torch.equal(out.isnan(), plain[:len(x)].isnan())
                assert torch.equal(out.nan_to_num(7.0), plain[:len(x)].nan_to_num(7.0))
    assert plain.isnan().sum() == 16 and runs == [(6, 64, 7, 7)] * 2 + [(1, 64, 7, 7), (0, 64, 7, 7)]
    with torch.no_grad():
        decoder(z)  # fp32
        with bf16:
            decoder.train()(z)
            decoder.eval()[1].train()  # dropout left on in an evaluated stack: not a ReLU
            decoder(z)
            decoder[1].eval()
            for first, last in (((64, 32), (32, 2)), ((64, 72), (72, 1))):
                Layers(BlockConvTranspose2d(*first, 2), torch.nn.ReLU(), BlockConvTranspose2d(*last, 2)).eval()(z)
            Layers(torch.nn.ConvTranspose2d(64, 32, 2, stride=2), torch.nn.ReLU(), BlockConvTranspose2d(32, 1, 2)).eval()(z)
    assert len(runs) == 4


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace's
@pytest.mark.parametrize("kernels_on", [True, False])
def test_k2s_two_layers_run_as_one_after_other_runs_and_never_while_tracing_or_compiling(monkeypatch, kernels_on):
    """k2_twice found after a ReLU + pooling run (not at index 0), from an image not square and of
    odd sides, to the layers' bits, by the kernel and by PyTorch's ops; ``torch.jit.trace`` and
    ``torch.compile`` under bf16 autocast see the plain layers, as ``Layers`` promises."""
    kernels_for(monkeypatch, kernels_on)
    runs, k2_twice = [], layers.k2_twice
    monkeypatch.setattr(layers, "k2_twice", lambda *a: runs.append(a[-1].shape) or k2_twice(*a))
    torch.manual_seed(0)
    stack = Layers(torch.nn.ReLU(), torch.nn.MaxPool2d(2), BlockConvTranspose2d(16, 24, 2), torch.nn.ReLU(),
                   BlockConvTranspose2d(24, 1, 2), torch.nn.Sigmoid()).eval()
    x = torch.randn(3, 16, 10, 7)[..., :6]  # 5 x 3 after pooling: odd sides, not square; not contiguous
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out, plain = stack(x), x
        for layer in stack:
            plain = layer(plain)
        assert runs == [(3, 16, 5, 3)] and torch.equal(out.view(torch.int16), plain.view(torch.int16))
        torch.jit.trace(stack, x, check_trace=False)
        torch.compile(stack, backend="eager")(x)
    assert len(runs) == 1


# ---- the fast paths at their edges: where a condition of theirs does not hold, the plain layers' numbers

def test_the_first_stage_with_dropout_left_on_is_not_the_inference_kernel(monkeypatch):
    """A one-channel 3x3 convolution, a ``ReLUDropout`` left in training mode in an evaluated
    stack and a 2x2 pooling, in bf16 inference: dropout still drops (``first_stage`` asks for a
    ReLU in eval mode), drawing the masks of the layers one by one."""
    kernels_for(monkeypatch, True)
    torch.manual_seed(0)
    stack = Layers(torch.nn.Conv2d(1, 16, 3, padding=1), ReLUDropout(0.5), torch.nn.MaxPool2d(2)).eval()
    stack[1].train()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(3)
        out = stack(x)
        torch.manual_seed(3)
        plain = x
        for layer in stack:
            plain = layer(plain)
        stack[1].eval()
        no_dropout = stack(x)
    assert torch.equal(out, plain) and not torch.equal(out, no_dropout)


def test_fp16_autocast_on_the_cpu_runs_the_stock_layers():
    """Only bf16 autocast takes the k2 paths (one matrix product, ``into_one_channel``,
    ``k2_twice``); under fp16 autocast the stock layers run, to their bits and type."""
    torch.manual_seed(0)
    up, relu, last = BlockConvTranspose2d(64, 32, 2), torch.nn.ReLU(), BlockConvTranspose2d(32, 1, 2)
    stack = Layers(up, relu, last).eval()
    z = torch.randn(3, 64, 5, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        for layer in (up, last):
            stock = torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels, 2, stride=2)
            stock.load_state_dict(layer.state_dict())
            x = torch.randn(3, layer.in_channels, 5, 5)
            got, want = layer(x), stock(x)
            assert got.dtype == want.dtype == torch.float16 and torch.equal(got, want)
        out = stack(z)
        plain = torch.nn.ConvTranspose2d.forward(last, torch.relu(torch.nn.ConvTranspose2d.forward(up, z)))
    assert out.dtype == torch.float16 and torch.equal(out, plain)


def test_an_infinite_input_after_a_checked_batch_runs_the_layers():
    """After a first batch found the one call to give the layers' bits, an input holding an
    infinity (whose sum is +inf, not NaN) still runs the layers: where +inf and -inf products
    meet, the convolution gives NaN, which oneDNN's ReLU would turn into 0 and ``torch.relu`` keeps."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    pair = Layers(conv, torch.nn.ReLU()).eval()
    x = torch.randn(3, 2, 6, 6)
    with torch.no_grad():
        pair(x)
        if list(layers._SAME_BITS.values()) != [True]:  # (oneDNN's sums for this shape differ here)
            pytest.skip("the one call does not give the layers' bits on this CPU: never used")
        x[1, :, 2, 2] = float("inf")
        out, plain = pair(x), torch.relu(conv(x))
    assert plain.isnan().any() and torch.equal(out.isnan(), plain.isnan())


def test_a_weight_in_another_layout_is_checked_again():
    """The weight's layout chooses oneDNN's sums as the input's does: another check."""
    x, conv = torch.rand(2, 4, 6, 6), torch.nn.Conv2d(4, 4, 3)
    other = torch.nn.Conv2d(4, 4, 3).to(memory_format=torch.channels_last)
    assert layers._signature(conv, x) != layers._signature(other, x)


def test_into_one_channel_from_8_to_64_channels_and_no_more(monkeypatch):
    """Into one channel under bf16 autocast: from 8, 16, ... or 64 channels (64 included) by
    ``into_one_channel``'s sums, no matrix product; from 72, or 12, one matrix product."""
    products, addmm = [], torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *a, **k: products.append(a[1].shape[1]) or addmm(*a, **k))
    torch.manual_seed(0)
    for cin in (8, 64, 72, 12):
        layer = BlockConvTranspose2d(cin, 1, 2)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert layer(torch.randn(2, cin, 3, 3)).shape == (2, 1, 6, 6)
    assert products == [72, 12]


def test_into_one_channel_takes_a_gradient_in_any_layout(monkeypatch):
    """Autograd may hand ``into_one_channel``'s backward a gradient that is not contiguous (here a
    transpose's): the kernels read dense rows, so it is made contiguous first; the same gradients."""
    kernels_for(monkeypatch, True)
    torch.manual_seed(0)
    layer = BlockConvTranspose2d(16, 1, 2)
    x, upstream = torch.randn(2, 16, 3, 3), torch.randn(2, 1, 6, 6)
    grads = []
    for g in (upstream, upstream.transpose(2, 3).contiguous().transpose(2, 3)):
        xi = x.clone().requires_grad_()
        layer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(xi)
        y.backward(g)
        grads.append((xi.grad, layer.weight.grad, layer.bias.grad))
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_k2_upsampling_of_an_input_of_either_layout_is_laid_out_as_the_stock_layers():
    """An input that is channels-last and contiguous at once (1 x 1 images, one channel) is not
    channels-last for ``block_matmul``: its output is laid out as the stock layer's (contiguous)."""
    torch.manual_seed(0)
    for cin, hw in ((64, 1), (1, 4)):
        layer = BlockConvTranspose2d(cin, 32, 2)
        stock = torch.nn.ConvTranspose2d(cin, 32, 2, stride=2)
        stock.load_state_dict(layer.state_dict())
        x = torch.randn(3, cin, hw, hw)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            got, want = layer(x), stock(x)
        assert got.stride() == want.stride() and got.is_contiguous()


def test_k2s_last_layer_adds_the_bias_gradients_taps_one_after_another():
    """The bias's gradient: its four taps' sums added in turn, ((t0 + t1) + t2) + t3, on values
    where any other order gives other bits (1 + 2**-24 rounds to 1; 1 + 2**-23 does not)."""
    rows, weight = torch.zeros(1, 8, dtype=torch.bfloat16), torch.ones(8, 4, dtype=torch.bfloat16)
    grad = torch.tensor([[[[1.0, 0.0], [2 ** -24, 2 ** -24]]]], dtype=torch.bfloat16)
    *_, gb = layers.one_channel_gradient_sums(rows, weight, grad)
    assert gb.dtype == torch.float32 and gb.item() == 1.0


def test_into_one_channel_without_the_kernels_takes_its_gradient_by_pytorchs_ops(monkeypatch):
    """Where the kernels do not run (here: turned off in a process that has loaded them), the
    backward pass too is PyTorch's ops, as the forward pass decided, not the kernels' op."""
    monkeypatch.setattr(kernels, "_loaded", False)
    calls, backward = [], layers.one_channel_backward
    monkeypatch.setattr(layers, "one_channel_backward", lambda *a: calls.append(1) or backward(*a))
    torch.manual_seed(0)
    layer = BlockConvTranspose2d(16, 1, 2)
    x = torch.randn(2, 16, 3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.sum().backward()
    assert calls == [1] and x.grad is not None
