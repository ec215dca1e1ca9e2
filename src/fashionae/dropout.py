"""Dropout on the CPU, with masks cheaper than torch's: the layers ``Dropout`` and
``ReLUDropout`` (ReLU and dropout as one layer), ``relu_dropout_pool`` (ReLU, dropout and a 2x2
max-pooling as one pass), and how they draw their masks (``DROPOUT_MASKS``: counter, the default
since 0.3; mersenne, the masks of 0.2 and earlier, which their runs resume with; stock, torch's
own). ``models.py`` builds its networks from these layers; ``training.fit`` sets the masks a run
draws (``use_dropout_masks``). The compiled kernels of ``kernels.py`` compute ``ReLUDropout``
(training, counter masks) and ``relu_dropout_pool`` where they are available: the same numbers as
PyTorch's ops, bit for bit, in fewer passes over memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from . import kernels

INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64}  # to read a float's bits
# How a CPU dropout layer draws its masks (``Dropout.masks``; the ``dropout_masks`` setting):
# counter: SplitMix64 (``splitmix_int15``), since 0.3 | mersenne: torch's Mersenne Twister
# (``random_int16``), as 0.2 and earlier drew | stock: torch's own ``F.dropout``
DROPOUT_MASKS = ("counter", "mersenne", "stock")


def random_int16(n: int) -> torch.Tensor:
    """n uniform int16s from torch's default generator (four to a 64-bit draw): the bits of the
    ``mersenne`` masks, which runs started by fashionae 0.2 and earlier resume with.

    Earlier versions drew ``random_(-2**63, 2**63 - 1)``, which torch computes as the word
    modulo 2**64 - 1, minus 2**63: a 64-bit division per word. The full range is the word
    itself, about twice as fast; flipping its sign bit gives the earlier bits again, except
    when the generator gives the word 2**64 - 1 (probability 2**-64 a word)."""
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None)
    return bits.bitwise_xor_(-2**63).view(torch.int16)[:n]


def _int64(u: int) -> int:
    """A uint64 constant as the int64 with the same bits (torch's integer arithmetic wraps)."""
    return u - 2**64 if u >= 2**63 else u


def draw_key() -> int:
    """The 64-bit start of a draw of counter bits, from torch's default generator."""
    return int(torch.empty((), dtype=torch.int64).random_(-2**63, None))


GAMMA, MIX1, MIX2 = _int64(0x9E3779B97F4A7C15), _int64(0xBF58476D1CE4E5B9), _int64(0x94D049BB133111EB)
_counters = torch.empty(0, dtype=torch.int64)  # 1, 2, 3, ... times GAMMA, grown to the largest draw


def splitmix_int15(n: int) -> torch.Tensor:
    """n uniform 15-bit ints (int16 in [0, 32768)), four to a 64-bit output of SplitMix64
    (Steele, Lea and Flood, 2014) started from a state drawn from torch's default generator, so
    seeding and a checkpoint's RNG state decide every mask, as with ``random_int16``.

    SplitMix64's i-th output is a fixed mix of state + i * GAMMA, so a whole draw is a dozen
    elementwise integer passes that torch runs on every core, where torch's Mersenne Twister
    runs on one: 1.5-2x faster bits, a 1.05-1.16x faster training step on a Zen 5 in bf16
    (``benchmarks/dropout_speed.py``). A 32-bit hash of each element's index was a little
    faster, but a 60-epoch paper run draws 3.6-4.3e10 words, more than 2**32, so its masks would
    repeat within a run; with 64-bit random starts, any two draws of such a run overlap with
    probability about 3-4e-4."""
    global _counters
    words, counters = (n + 3) // 4, _counters  # one read: another thread may grow it meanwhile
    if len(counters) < words:
        counters = _counters = torch.arange(1, words + 1, dtype=torch.int64).mul_(GAMMA)
    z = counters[:words].add(draw_key())
    # >> is arithmetic on int64; the masks make each shift logical, as SplitMix64's
    z ^= (z >> 30).bitwise_and_((1 << 34) - 1)
    z *= MIX1
    z ^= (z >> 27).bitwise_and_((1 << 37) - 1)
    z *= MIX2
    z ^= (z >> 31).bitwise_and_((1 << 33) - 1)
    z &= 0x7FFF7FFF7FFF7FFF  # each 16-bit quarter's sign bit cleared
    return z.view(torch.int16)[:n]


class Dropout(nn.Module):
    """``nn.Dropout`` with cheaper masks on the CPU.

    PyTorch's CPU dropout draws one Bernoulli sample per element, which costs more than
    the convolutions of this small network. Here the mask is built from 16-bit uniforms with
    integer operations (``masks``: counter, the default, or mersenne; see DROPOUT_MASKS): the
    keep probability is 1 - p to within 1/32768 and kept values are scaled by 1 / (1 - p)
    (rounded to the input's dtype: exact for the study's p = 0.2). The bits come from torch's
    default generator, or start from it, so seeding and resuming work as usual. With ``masks``
    stock, and on other devices, where the stock fused kernel is already fast, ``F.dropout`` is used.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.masks = "counter"  # training.fit sets the run's (use_dropout_masks)
        self._threshold = -32768 + round(self.p * 65536)  # mersenne: kept where bits >= it
        self._threshold15 = max(0, round(self.p * 32768) - 1)  # counter: kept where bits > it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.masks == "stock" or x.device.type != "cpu" or recorded(x):
            return F.dropout(x, self.p, True)
        return _MaskedScale.apply(x, self.scaled_mask(x))

    @torch.compiler.disable
    def scaled_mask(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        """1 / (1 - p) where an element is kept (and, with ``relu``, positive), 0 elsewhere;
        shaped and laid out like ``x`` (channels-last stays channels-last, so the product that
        follows takes the fast same-layout path).

        Built from the bits with integer operations only, since on the CPU a bf16 comparison
        into a bool tensor, or a bool -> bf16 conversion, costs several integer passes. Under
        ``torch.compile`` it runs eagerly, outside the graph: the graph takes the mask as an input,
        so a compiled model draws the very masks of an eager one (traced, the reinterpreting views
        of integer bits as floats made torch 2.13's compiled graphs fail)."""
        if self.masks == "mersenne":
            return self._mersenne_mask(x, relu)
        ints = INT_OF_SIZE[x.element_size()]
        # u - threshold > 0 exactly where kept (no overflow: both are 15 bits); its minimum with x's
        # bits is > 0 exactly where x > 0 too (positive floats are positive integers, -0.0 the
        # most negative one; x * mask is NaN where x is, whatever the mask)
        t = splitmix_int15(x.numel()).as_strided(x.shape, dense_strides(x)).sub_(self._threshold15).to(ints)
        if relu:
            torch.minimum(t, x.view(ints), out=t)
        return t.clamp_(0, 1).mul_(self._scale_bits(x)).view(x.dtype)

    def _mersenne_mask(self, x: torch.Tensor, relu: bool) -> torch.Tensor:
        """The masks of fashionae 0.2 and earlier, bit for bit. Every step below keeps the
        answer in the sign bit."""
        u = random_int16(x.numel()).as_strided(x.shape, dense_strides(x))  # laid out like x
        # u < threshold, without the overflow of u - threshold: for a negative threshold
        # both are negative; otherwise either is
        t = u - self._threshold
        t.bitwise_and_(u) if self._threshold < 0 else t.bitwise_or_(u)  # sign: dropped
        ints = INT_OF_SIZE[x.element_size()]
        t = t.to(ints)  # sign-extends: the sign bit still says "dropped"
        if relu:
            xi = x.view(ints)
            t |= xi  # dropped, or x's sign bit set (negative, -0.0)
            t.bitwise_not_()
            t &= xi.neg()  # kept and x > 0 (x's sign bit clear and x != 0)
        else:
            t.bitwise_not_()  # kept
        t >>= 8 * x.element_size() - 1  # all ones where kept, 0 elsewhere
        t &= self._scale_bits(x)
        return t.view(x.dtype)

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        """1 / (1 - p), rounded to x's dtype."""
        return torch.ones((), dtype=x.dtype).mul_(1.0 / (1.0 - self.p))

    def _scale_bits(self, x: torch.Tensor) -> int:
        """1 / (1 - p) in x's dtype, as the integer with its bits."""
        return self._scale(x).view(INT_OF_SIZE[x.element_size()]).item()

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_dropout_masks(model: nn.Module, masks: str) -> None:
    """Every dropout layer of ``model`` draws its masks so (one of DROPOUT_MASKS)."""
    if masks not in DROPOUT_MASKS:
        raise ValueError(f"dropout masks {masks!r}: expected one of {DROPOUT_MASKS}")
    for m in model.modules():
        if isinstance(m, Dropout):
            m.masks = masks


class _MaskedScale(torch.autograd.Function):
    """y = x * m and dx = dy * m, for a mask m holding 0 or 1 / (1 - p)."""

    @staticmethod
    def forward(ctx, x, m):
        ctx.save_for_backward(m)
        return x * m

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        return grad * m, None


class ReLUDropout(Dropout):
    """ReLU followed by Dropout(p), as one layer: the same function as ``nn.ReLU(),
    nn.Dropout(p)``, with one mask for both. On the CPU the elementwise passes of these
    two layers cost as much as the convolutions; folding ReLU's sign test and dropout's
    keep mask into one scaled mask leaves one product forward and one backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or self.masks == "stock" or x.device.type != "cpu" or recorded(x):
            return super().forward(F.relu(x))
        if self.masks == "counter" and kernels_take(x):
            return _KernelReLUDropout.apply(x, draw_key(), self._threshold15, self._scale(x).item())
        return _MaskedScale.apply(x, self.scaled_mask(x, relu=True))


def halving_pool(m: nn.Module) -> bool:
    """A max-pooling that ``relu_dropout_pool``'s kernel computes: 2x2 windows, stride 2, no padding."""
    def pair(v):
        return v if isinstance(v, tuple) else (v, v)
    return (type(m) is nn.MaxPool2d and pair(m.kernel_size) == (2, 2) and pair(m.stride) == (2, 2)
            and pair(m.padding) == (0, 0) and pair(m.dilation) == (1, 1) and not m.ceil_mode and not m.return_indices)


def dense_strides(x: torch.Tensor) -> tuple[int, ...]:
    """The layout a mask for ``x`` is drawn in, one value per element in memory order: that of
    ``x.clone()``. That is ``x``'s own where it covers its memory densely (any order of
    dimensions: channels-last, a transpose); for a strided slice or an expanded tensor, the
    memory format ``x`` suggests (contiguous, or channels-last for a slice of a channels-last
    tensor), where ``x``'s own strides would reach past the mask or repeat its values."""
    return torch.empty_like(x).stride()


def recorded(x: torch.Tensor) -> bool:
    """Whether the model is recorded as a graph to run elsewhere (``torch.jit.trace``,
    ``torch.export``) or seen through a ``torch.func`` transform (``vmap``, ``grad``): its
    dropout is then torch's own, since the masks' draw (a random integer read back, integer views
    of floats) is no op a recorded graph can hold, nor one a transform can batch."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting() or transformed(x)


def transformed(x: torch.Tensor) -> bool:
    """Whether ``x`` is seen through a ``torch.func`` transform (``vmap`` shows one image, [1, H, W];
    its autograd.Functions, fashionae's own layers, are none it can take)."""
    return torch._C._functorch.is_functorch_wrapped_tensor(x)


def eager_on_cpu(x: torch.Tensor) -> bool:
    """``x`` is on the CPU, in eager mode: where fashionae's own forms of some layers run (the
    compiled kernels, the fused oneDNN calls, k2's matrix product). ``torch.compile``,
    ``torch.jit.trace``, ONNX export and ``torch.func``'s transforms see the plain layers."""
    return (x.device.type == "cpu" and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
            and not transformed(x))


def kernels_take(x: torch.Tensor) -> bool:
    """Whether the compiled kernels can take ``x``: on the CPU, bf16 or fp32, dense (NCHW or
    channels-last), in eager mode, and the kernels built."""
    return (eager_on_cpu(x) and x.dtype in (torch.bfloat16, torch.float32)
            and (x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)))
            and kernels.available())


def relu_dropout_pool(layer: nn.Module, pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``pool(layer(x))`` for a ``ReLUDropout`` or ``nn.ReLU`` and a ``halving_pool``, as one pass
    of a compiled kernel where one runs (even height and width; dropout with counter masks), and
    without pooling indices where no gradient is asked for. The two layers otherwise."""
    if x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2 or not kernels_take(x):
        return pool(layer(x))
    if isinstance(layer, ReLUDropout) and layer.training and layer.p > 0:
        if layer.masks != "counter":
            return pool(layer(x))
        return _KernelReLUDropoutPool.apply(x, draw_key(), layer._threshold15, layer._scale(x).item())
    if torch.is_grad_enabled() and x.requires_grad:
        return _KernelReLUPool.apply(x)
    return torch.ops.fashionae.relu_pool(x, False)[0]


def _laid_out_like(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``grad`` in ``like``'s memory layout, as the kernels read them (autograd may hand over any)."""
    return grad if grad.stride() == like.stride() else torch.empty_like(like).copy_(grad)


class _KernelReLUDropout(torch.autograd.Function):
    """``ReLUDropout``'s training pass by the compiled kernel. The gradient needs no saved mask:
    the mask is 1 / (1 - p) exactly where the output is > 0 (a kept positive value, scaled up)
    and 0 elsewhere. (Not so where x is NaN, but then the loss and every gradient are NaN; nor for
    a kept subnormal x under ``torch.set_flush_denormal(True)``, which fashionae never sets.) As
    with ``torch.relu``, the output is kept for the backward pass, so changing it in place
    before then is an error; and there is no second derivative."""

    @staticmethod
    def forward(ctx, x, key, threshold, scale):
        y = torch.ops.fashionae.relu_dropout(x, key, threshold, scale)
        ctx.save_for_backward(y)
        ctx.scale = scale
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.fashionae.relu_dropout_backward(_laid_out_like(grad, y), y, ctx.scale), None, None, None


class _KernelReLUDropoutPool(torch.autograd.Function):
    """``relu_dropout_pool`` by the compiled kernel: it keeps for the backward pass the pooled
    output and each window's position of its maximum (a byte), where the two layers keep the
    mask and int64 indices as large as the input. The mask at the maximum is 1 / (1 - p) exactly
    where the pooled output is > 0, with the same exceptions as above."""

    @staticmethod
    def forward(ctx, x, key, threshold, scale):
        out, where = torch.ops.fashionae.relu_dropout_pool(x, key, threshold, scale)
        ctx.save_for_backward(out, where)
        ctx.scale = scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        out, where = ctx.saved_tensors
        return (torch.ops.fashionae.relu_dropout_pool_backward(_laid_out_like(grad, out), out, where, ctx.scale),
                None, None, None)


class _KernelReLUPool(torch.autograd.Function):
    """``relu_dropout_pool`` without dropout (eval mode, p = 0, ``nn.ReLU``), with a gradient: ReLU's
    gradient at each window's maximum is the pooled output's gradient where that output is > 0."""

    @staticmethod
    def forward(ctx, x):
        out, where = torch.ops.fashionae.relu_pool(x, True)
        ctx.save_for_backward(out, where)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        out, where = ctx.saved_tensors
        return torch.ops.fashionae.relu_pool_backward(_laid_out_like(grad, out), out, where)
