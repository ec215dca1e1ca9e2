"""Dropout on the CPU (``dropout.py``): the masks are dropout's, as torch's would be, and each
kind draws the bits it says it draws."""

import numpy as np
import pytest
import torch

from fashionae import dropout, kernels
from fashionae.dropout import Dropout, ReLUDropout, random_int16, splitmix_int15, use_dropout_masks
from fashionae.models import ModelConfig, build_model


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


def test_counter_bits_are_the_same_whatever_the_draws_before(monkeypatch):
    """The counters (1, 2, 3, ... times SplitMix64's increment) are kept between draws and grown
    for a larger one: a fresh process, a grown cache and a draw of exactly its size give the
    reference's bits alike. (Other tests leave the cache large, so this one empties it.)"""
    monkeypatch.setattr(dropout, "_counters", torch.empty(0, dtype=torch.int64))
    for seed, n in ((0, 5), (1, 4001), (2, 4004), (3, 40), (4, 4005)):  # grown, grown, its size, within, grown
        torch.manual_seed(seed)
        state = int(torch.empty((), dtype=torch.int64).random_(-2**63, None))
        torch.manual_seed(seed)
        expected = (splitmix64_reference((n + 3) // 4, state) & np.uint64(0x7FFF7FFF7FFF7FFF)).view(np.int16)[:n]
        assert np.array_equal(splitmix_int15(n).numpy(), expected), (seed, n)
    assert len(dropout._counters) == 1002  # grown to the largest draw, no further


def test_counter_masks_are_uniform_and_independent_of_their_neighbours():
    """Keep rates of 1 - p, and no correlation between an element's fate and its neighbours' (in
    the same 64-bit word, the next ones, a channel and a row away), nor between two draws."""
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

    torch.manual_seed(3); a = random_int16(1001)
    torch.manual_seed(3); b = random_int16(1001)
    assert a.dtype == torch.int16 and a.shape == (1001,) and torch.equal(a, b)
    assert not torch.equal(a, random_int16(1001))
    values = random_int16(400_000).float()
    assert abs(values.mean().item()) < 200 and values.min() == -32768 and values.max() == 32767


def test_dropout_paths_counter_mersenne_stock_and_off():
    """On the CPU with counter (the default) or mersenne masks: x times that integer mask; stock:
    exactly ``F.dropout``; p = 0 or eval mode: x itself. Each path draws otherwise, so each is taken."""
    import torch.nn.functional as F


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
    for seed, n in ((0, 7), (0, 8), (1, 9), (2, 300_001)):
        torch.manual_seed(seed)
        bits = random_int16(n)
        after = torch.get_rng_state()
        torch.manual_seed(seed)
        earlier = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, 2**63 - 1)
        assert torch.equal(bits, earlier.view(torch.int16)[:n]), n
        assert torch.equal(after, torch.get_rng_state()), n


def graph(y: torch.Tensor) -> list[str]:
    """The autograd nodes behind y, first to last (a chain)."""
    names, node = [], y.grad_fn
    while node is not None:
        names.append(type(node).__name__.rstrip("0123456789"))
        node = node.next_functions[0][0] if node.next_functions else None
    return names


def test_relu_dropout_paths_counter_mersenne_stock(monkeypatch):
    """On the CPU with counter or mersenne masks: x times the fused ReLU + dropout mask; stock:
    exactly ``F.dropout(F.relu(x))``; eval mode: ReLU only. (PyTorch's ops: the compiled kernels,
    which compute the same, are tests/test_kernels.py's.)"""
    import torch.nn.functional as F
    from fashionae import kernels
    monkeypatch.setattr(kernels, "_loaded", False)

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


@pytest.mark.parametrize("layer", [Dropout(0.3), ReLUDropout(0.3)], ids=["Dropout", "ReLUDropout"])
@pytest.mark.parametrize("masks", ["counter", "mersenne"])
def test_an_input_that_does_not_cover_its_memory_draws_the_mask_of_its_copy(layer, masks):
    """A strided slice or an expanded tensor (no memory order of its own to draw a mask in)
    gets the mask and the gradient its copy (``clone``: contiguous, or channels-last for a slice
    of a channels-last tensor) would; a transpose, which covers its memory, is drawn in that
    memory's order."""
    use_dropout_masks(layer.train(), masks)
    base = torch.randn(4, 8, 6, 6)
    for x in (base[:, :, ::2], torch.randn(1, 8, 6, 6).expand(4, 8, 6, 6),
              base.contiguous(memory_format=torch.channels_last)[:, :, ::2]):
        strided, copy = x.detach().requires_grad_(), x.clone().requires_grad_()
        torch.manual_seed(5); got = layer(strided)
        torch.manual_seed(5); want = layer(copy)
        assert torch.equal(got, want)
        upstream = torch.randn_like(want)
        got.backward(upstream); want.backward(upstream)
        assert torch.equal(strided.grad, copy.grad)
    torch.manual_seed(5); got = layer(base.transpose(2, 3))
    torch.manual_seed(5); assert torch.equal(got, layer(base).transpose(2, 3))


@pytest.mark.parametrize("masks", ["counter", "mersenne"])
def test_a_compiled_model_trains_with_the_masks_of_the_eager_one(masks):
    """``torch.compile`` of a training model (not a mock of it): the masks are drawn eagerly,
    outside the graph, so the compiled pass draws the same ones and gives the same output."""
    x = torch.rand(8, 1, 28, 28)
    passes = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(ModelConfig(latent=16))
        use_dropout_masks(model, masks)
        net = torch.compile(model) if compiled else model
        torch.manual_seed(1)
        out = net(x)
        out.loss.backward()
        passes.append((out.output.detach(), [p.grad for p in model.parameters()]))
    (eager, eager_grads), (comp, comp_grads) = passes
    assert torch.equal(comp, eager)
    for a, b in zip(comp_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.manual_seed(2)  # a second draw gives other masks, compiled as eager
    assert not torch.equal(net(x).output, comp)


# ---- the thresholds of the masks and the layers' paths at their edges

@pytest.mark.parametrize("p", [0.99, 0.3])
def test_mersenne_masks_keep_at_the_threshold_of_earlier_versions(p):
    """The masks of 0.2 and earlier: kept where the 16-bit value >= -32768 + round(p * 65536)
    (rounded, not truncated: for p = 0.99, 64880.64 -> 64881), written out here, not read
    from the layer."""
    layer = Dropout(p)
    use_dropout_masks(layer, "mersenne")
    x = torch.ones(400_000)  # some values at the threshold itself
    torch.manual_seed(4)
    kept = layer(x) != 0
    torch.manual_seed(4)
    assert torch.equal(kept, random_int16(len(x)) >= -32768 + round(p * 65536))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.99])
def test_counter_masks_keep_from_round_p_times_32768(p):
    """Counter masks: kept where the 15-bit value >= round(p * 32768), written out here, not read
    from the layer: each kept value has probability 1 - p to within 1/65536."""
    layer = Dropout(p)
    x = torch.ones(400_000)  # some values at the threshold itself
    torch.manual_seed(4)
    kept = layer(x) != 0
    torch.manual_seed(4)
    assert torch.equal(kept, splitmix_int15(len(x)) >= round(p * 32768))


@pytest.mark.parametrize("recorder,name", [(torch.jit, "is_tracing"), (torch.compiler, "is_exporting")],
                         ids=["trace", "export"])
@pytest.mark.parametrize("layer", [Dropout(0.3), ReLUDropout(0.3)], ids=["Dropout", "ReLUDropout"])
def test_a_recorded_model_drops_by_torchs_own_dropout(monkeypatch, layer, recorder, name):
    """While ``torch.jit.trace`` or ``torch.export`` records (here: said to), the masks are
    torch's own ``F.dropout``'s, whatever masks the layer draws otherwise."""
    import torch.nn.functional as F
    x = torch.randn(4, 8, 6, 6)
    relu = F.relu if isinstance(layer, ReLUDropout) else (lambda t: t)
    monkeypatch.setattr(recorder, name, lambda: True)
    for masks in ("counter", "mersenne"):
        use_dropout_masks(layer.train(), masks)
        torch.manual_seed(2)
        got = layer(x)
        torch.manual_seed(2)
        assert torch.equal(got, F.dropout(relu(x), 0.3, True)), masks


def test_a_float64_model_drops_by_pytorchs_ops():
    """The kernels take bf16 and fp32 only: ReLU + dropout, and ReLU + pooling, of float64
    values run by PyTorch's ops, with the masks they draw for every type."""
    from fashionae.dropout import relu_dropout_pool
    if not kernels.available():
        pytest.skip("the compiled CPU kernels are not available here")
    torch.manual_seed(0)
    layer, pool = ReLUDropout(0.3), torch.nn.MaxPool2d(2)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    torch.manual_seed(1)
    got = layer(x)
    torch.manual_seed(1)
    assert torch.equal(got, x * layer.scaled_mask(x, relu=True))
    torch.manual_seed(1)
    got = relu_dropout_pool(layer, pool, x)
    torch.manual_seed(1)
    assert torch.equal(got, pool(layer(x)))
    with torch.no_grad():
        assert torch.equal(relu_dropout_pool(layer.eval(), pool, x), pool(torch.relu(x)))


@pytest.mark.parametrize("layer", [Dropout(0.3), ReLUDropout(0.3)], ids=["Dropout", "ReLUDropout"])
def test_a_layer_seen_through_vmap_drops_by_torchs_own_dropout(layer):
    """Under ``torch.func.vmap`` the layer sees one image at a time, a tensor its masks' draw
    cannot batch: torch's own dropout runs, each image its own mask, the zeros and scale of it."""
    x = torch.rand(3, 4, 6, 6) + 0.5  # positive: ReLU keeps every value
    torch.manual_seed(0)
    out = torch.func.vmap(layer.train(), randomness="different")(x)
    assert out.shape == x.shape
    assert torch.allclose(out[out != 0], (x / 0.7)[out != 0])
    dropped = (out == 0).flatten(1)
    assert 0.2 < dropped.float().mean() < 0.4 and not torch.equal(dropped[0], dropped[1])  # each image its own
