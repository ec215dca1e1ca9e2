"""How the models' layers run fast on the CPU, to the same bits as the plain layers.

``Layers`` is an ``nn.Sequential`` that computes some consecutive layers as one (the rules in
``Layers.fused_runs``); ``BlockConvTranspose2d`` is the author's 2x2 transposed convolution,
computed as one matrix product under bf16 autocast (2x2 into one channel, by compiled kernels
with sums in a fixed order, which PyTorch's ops also compute where they do not run) and by a
compiled kernel in fp32 inference.
Where each fast path applies is decided here and only here; the kernels themselves are
``kernels.py``'s, the dropout layers ``dropout.py``'s. ``models.py`` builds its networks from
these layers. Where no fast path applies (CUDA, compiling, tracing, ONNX export, a machine
without the kernels) the plain layers run.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .dropout import ReLUDropout, eager_on_cpu, halving_pool, kernels_take, relu_dropout_pool


class Layers(nn.Sequential):
    """``nn.Sequential`` (same modules, same state-dict keys) that computes some consecutive layers
    in one pass over memory, to the same bits as the layers one by one (``tests/test_layers.py``,
    ``tests/test_kernels.py``; the last below: where oneDNN sums in its kernel's order):

    - a ReLU (or ``ReLUDropout``) and the 2x2 max-pooling after it, by a compiled kernel
      (``dropout.relu_dropout_pool``; with the rest of the kernels the paper autoencoder's
      training step runs 1.4x faster on a Zen 5, its evaluation 1.3x);
    - in inference on the CPU, in fp32, a convolution and the ReLU right after it, as one oneDNN
      call: the ReLU is applied to the convolution's output before it is written (evaluating the
      paper autoencoder runs 1.1x faster on an AVX2 EPYC; ``benchmarks/README.md``), or as one
      call of a compiled kernel for the paper decoder's (``BlockConvTranspose2d.forward_relu``);
      where the one call gives the layers' bits, checked on the first batch of each shape
      (``conv_relu``);
    - in inference on the CPU, under bf16 autocast or in fp32, a one-channel 3x3 convolution, ReLU
      and 2x2 max-pooling (the paper encoder's first stage) by a compiled kernel (``conv_relu_pool``;
      in fp32 where it gives the layers' bits, checked as for the one call above; in bf16 it may
      differ from oneDNN at a rounding tie, rarely);
    - in inference on the CPU under bf16 autocast, k2's two upsampling layers with the ReLU between
      them (``k2_twice``: the first one's output is never laid out as an image).

    The last three only in eval mode with autograd off (``torch.no_grad`` or
    ``torch.inference_mode``), never while compiling or tracing, so autograd, ONNX export and
    ``torch.compile`` see the plain layers. The fused layers' own forward hooks do not run
    (fashionae registers none)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        fused = self.fused_runs(layers, x)
        if not fused:
            return super().forward(x)
        i = 0
        while i < len(layers):
            if i in fused:
                span, run = fused[i]
                x = run(x)
                i += span
            else:
                x = layers[i](x)
                i += 1
        return x

    def fused_runs(self, layers: list[nn.Module], x: torch.Tensor) -> dict[int, tuple[int, Callable]]:
        """The layers to compute as one: the first one's index -> (how many, their forward pass)."""
        pairs = list(zip(layers, layers[1:]))
        fused = {i: (2, partial(relu_dropout_pool, a, b)) for i, (a, b) in enumerate(pairs)
                 if isinstance(a, (nn.ReLU, ReLUDropout)) and halving_pool(b)} if kernels_take(x) else {}
        if self.training or torch.is_grad_enabled():
            return fused
        onednn_fp32, bf16 = onednn_fp32_convolution(x), bf16_autocast_on_cpu()
        trios = list(enumerate(zip(layers, layers[1:], layers[2:])))
        if fused and (bf16 or onednn_fp32):  # (fused: the kernels are there)
            for i, (conv, relu, pool) in trios:
                if first_stage(conv, relu, pool) and i + 1 in fused:
                    del fused[i + 1]
                    fused[i] = (3, partial(conv_relu_pool, conv, relu, pool))
        if bf16 and eager_on_cpu(x):  # (k2's layers are in no other run)
            for i, (up, relu, last) in trios:
                if k2_last_two(up, relu, last):
                    fused[i] = (3, partial(k2_twice, up, relu, last))
        if not onednn_fp32:
            return fused
        # the layers already in a run (a ReLU before a pooling goes with the pooling)
        taken = {j for i, (span, _) in fused.items() for j in range(i, i + span)}
        pairs_in_one_call = {i: (2, partial(conv_relu, a, b)) for i, (a, b) in enumerate(pairs)
                             if fusable(a, b, x) and {i, i + 1}.isdisjoint(taken)}
        if pairs_in_one_call and finite(x) and all(finite(p) for p in self.parameters()):
            fused.update(pairs_in_one_call)
        return fused


def first_stage(conv: nn.Module, relu: nn.Module, pool: nn.Module) -> bool:
    """Layers ``conv_relu_pool``'s kernel computes: a one-channel 3x3 convolution (stride 1,
    padding 1, with bias) into a multiple of 16 channels, ReLU in eval mode, a ``halving_pool``."""
    return (type(conv) is nn.Conv2d and conv.in_channels == 1 and conv.out_channels % 16 == 0
            and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.bias is not None and isinstance(relu, (nn.ReLU, ReLUDropout)) and not relu.training
            and halving_pool(pool))


def conv_relu_pool(conv: nn.Conv2d, relu: nn.Module, pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``pool(relu(conv(x)))`` for ``first_stage`` layers in inference on the CPU, under bf16
    autocast or in fp32 where oneDNN would run the convolution: one pass of a compiled kernel that
    never writes the convolution's output (the paper autoencoder's evaluation runs 1.04-1.07x
    faster in bf16 on a Zen 5, 1.03-1.06x in fp32 on an AVX2 EPYC, where interleaving the fp32
    sums made the stage 1.5x faster again; in bf16 with AVX-512-BF16's dot product, as oneDNN
    sums, the stage runs 1.8x faster again on a Zen 4, its evaluation 1.04x; ``benchmarks/README.md``).
    Its sums run in oneDNN's order where ``kernels.cpp`` says. In fp32 that is checked, not assumed
    (``one_call_where_same``): on an AVX2 EPYC the kernel gives oneDNN's bits, on an AMX Xeon 16-25 %
    of its outputs differ in their last bits, so there the layers run. In bf16 a value at a rounding
    tie may differ where oneDNN runs other code (5 to 18 in 63 million), too rarely for a check of
    one batch to see. Elsewhere (no image, one not fp32 or of a size that does not halve, weights
    that are not finite), the layers."""
    def the_layers() -> torch.Tensor:
        return relu_dropout_pool(relu, pool, conv(x))

    if not (x.dim() == 4 and len(x) and x.shape[1] == 1 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and x.dtype == torch.float32 and conv.weight.dtype == torch.float32 and kernels_take(x)
            and finite(conv.weight) and finite(conv.bias)):
        return the_layers()
    bf16 = bf16_autocast_on_cpu()

    def kernel() -> torch.Tensor:
        return torch.ops.fashionae.conv3x3_relu_pool(x, conv.weight, conv.bias, bf16)
    return kernel() if bf16 else one_call_where_same(("conv3x3_relu_pool", *_signature(conv, x)), kernel, the_layers)


def bf16_autocast_on_cpu() -> bool:
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def onednn_fp32_convolution(x: torch.Tensor) -> bool:
    """Whether PyTorch would run the model's convolutions of ``x`` with oneDNN in fp32, in eager
    mode: where the fused conv + ReLU calls and k2's fp32 kernel compute oneDNN's result (for a
    single small image PyTorch runs its own convolution, whose sums differ in the last bits)."""
    return (eager_on_cpu(x) and x.dtype == torch.float32 and len(x) > 1 and not torch.is_autocast_enabled("cpu")
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


def fusable(conv: nn.Module, relu: nn.Module, x: torch.Tensor) -> bool:
    return (type(conv) in FUSED_CONV_RELU and isinstance(relu, (nn.ReLU, ReLUDropout)) and not relu.training
            and conv.weight.dtype == x.dtype)


def conv_relu(conv: nn.Module, relu: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x))`` in fp32 inference, as one call (``FUSED_CONV_RELU``) where that call gives
    the layers' own bits. Whether it does depends on the oneDNN inside PyTorch, not only on the CPU
    (torch 2.13's fused and plain convolutions agree in every layout measured; torch 2.11's differ
    in their last bits in NCHW), so it is checked, not assumed (``one_call_where_same``)."""
    return one_call_where_same(("conv_relu", *_signature(conv, x)), lambda: FUSED_CONV_RELU[type(conv)](conv, x),
                               lambda: relu(conv(x)))


def one_call_where_same(key: tuple, one_call: Callable[[], torch.Tensor],
                        the_layers: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``one_call()`` where it gives ``the_layers()``'s bits and layout, else the layers: the first
    batch of each computation, shape, layout and setting (``key``: a name and ``_signature``) in a
    process runs both ways and answers with the layers; later ones take the one call only if the
    two were the same."""
    same = _SAME_BITS.get(key)
    if same is None:
        plain, fast = the_layers(), one_call()
        _SAME_BITS[key] = torch.equal(fast, plain) and fast.stride() == plain.stride()
        return plain
    return one_call() if same else the_layers()


_SAME_BITS: dict[tuple, bool] = {}  # one_call_where_same's checks in this process: key -> same bits


def _signature(conv: nn.Module, x: torch.Tensor) -> tuple:
    """What chooses the sums of a convolution of ``x``: shapes, layouts, type, the layer's
    geometry, the thread count and whether the compiled kernels run (not the values)."""
    return (type(conv), x.shape, x.stride(), x.dtype, conv.weight.shape, conv.weight.stride(), conv.bias is None,
            conv.stride, conv.padding, conv.dilation, conv.groups, getattr(conv, "output_padding", None),
            torch.get_num_threads(), kernels_take(x))


def finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in ``t``, by one sum (a sum that overflows says no too). The fused
    calls need it of their input and weights: oneDNN's ReLU turns NaN into 0 where ``torch.relu``
    keeps it, and a diverged model must not evaluate as a finite one. (From finite inputs and
    weights a NaN needs sums beyond 3e38.)"""
    return bool(torch.isfinite(t.sum()))


def onednn_conv_transpose_relu(c: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._convolution_transpose_pointwise(
        x, c.weight, c.bias, c.padding, c.output_padding, c.stride, c.dilation, c.groups, "relu", [], "")


class BlockConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution whose kernel is its stride (k x k, no padding): each input pixel
    makes a k x k block of output pixels of its own, so the layer is one matrix product,
    [N*H*W, C_in] x [C_in, k*k*C_out], and a reshuffle of its rows into blocks. On the CPU under
    bf16 autocast it is computed so: oneDNN's transposed convolution is slow for the decoder's
    shapes (the paper autoencoder's training step 1.1x faster, its evaluation 1.1x;
    ``benchmarks/README.md``). The same function, laid out in memory as the stock layer lays it
    (channels-last when the input or the weight is, so the dropout after it draws the same
    masks): only its fp32 sums run in another order, which may move a bf16 output by its last
    bit (2x2 into one channel from a multiple of 8, k2's last layer: ``into_one_channel``). In
    fp32 inference the paper decoder's two layers run as a compiled kernel (``kernel_takes``)
    where it gives the stock layer's bits (checked: ``one_call_where_same``).
    Everywhere else (fp32 otherwise, CUDA, compiling, tracing and ONNX export) it is the stock
    layer, to the same bits as before."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(cin, cout, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or self.bias is None or x.dim() != 4 or self.weight.dtype != torch.float32:
            return super().forward(x, output_size)
        if eager_on_cpu(x) and bf16_autocast_on_cpu():
            return self.into_one_channel(x) if self.goes_into_one_channel() and x.numel() else self.block_matmul(x)
        if self.kernel_takes(x):
            return one_call_where_same(("conv_transpose_2x2", *_signature(self, x)),
                                       lambda: torch.ops.fashionae.conv_transpose_2x2(x, self.weight, self.bias, False),
                                       lambda: nn.ConvTranspose2d.forward(self, x))
        return super().forward(x)

    def forward_relu(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(self(x))`` as one call, in fp32 inference (``Layers.fused_runs``, which checks it
        against the layers): the compiled kernel where it takes ``x``, oneDNN's transposed
        convolution with its ReLU elsewhere."""
        if self.kernel_takes(x):
            return torch.ops.fashionae.conv_transpose_2x2(x, self.weight, self.bias, True)
        return onednn_conv_transpose_relu(self, x)

    def kernel_takes(self, x: torch.Tensor) -> bool:
        """Whether ``conv_transpose_2x2``'s kernel computes this layer (with a bias) of ``x`` (4-D):
        2x2 of stride 2 into one channel or a multiple of 8 (the paper decoder's two layers), in
        fp32 inference where oneDNN would run it. The same bits as oneDNN's where it sums in the
        kernel's order (``kernels.cpp`` says where; an AVX2 EPYC and an AMX Xeon), faster:
        oneDNN pads one channel to 8, and runs the 64 -> 32 layer at about half the fp32 peak (the
        paper autoencoder's evaluation runs 1.08x faster on an AVX2 EPYC with the last layer's
        kernel, 1.02x more with the first's; ``benchmarks/README.md``)."""
        return (self.stride == (2, 2) and (self.out_channels == 1 or self.out_channels % 8 == 0)
                and self.bias is not None and x.dim() == 4
                and self.weight.dtype == torch.float32 and not torch.is_grad_enabled()
                and onednn_fp32_convolution(x) and kernels_take(x))

    def goes_into_one_channel(self) -> bool:
        """Whether bf16 autocast computes this layer by ``into_one_channel``: 2x2 into one channel
        from 8, 16, ... or 64 (k2's last layer)."""
        return self.out_channels == 1 and self.stride == (2, 2) and self.in_channels in range(8, 65, 8)

    def block_products(self, x: torch.Tensor) -> torch.Tensor:
        """[N*H*W, k*k*C_out]: each input pixel's k x k block of outputs, (ky, kx, c) in a row."""
        (n, cin, h, w), k, cout = x.shape, self.stride[0], self.out_channels
        rows = x.permute(0, 2, 3, 1).reshape(n * h * w, cin)  # a view when x is channels-last
        return torch.addmm(self.bias.repeat(k * k), rows, self.weight.permute(0, 2, 3, 1).reshape(cin, k * k * cout))

    def block_matmul(self, x: torch.Tensor) -> torch.Tensor:
        (n, _, h, w), k, cout = x.shape, self.stride[0], self.out_channels
        y = self.block_products(x).view(n, h, w, k, k, cout).permute(0, 1, 3, 2, 4, 5).reshape(n, h * k, w * k, cout)
        y = y.permute(0, 3, 1, 2)  # channels-last
        return y if channels_last(x) or channels_last(self.weight) else y.contiguous()

    def into_one_channel(self, x: torch.Tensor) -> torch.Tensor:
        """The layer into one channel (k2's last) under bf16 autocast on the CPU, from 8, 16, ...
        or 64 channels: its input, weight and bias rounded to bf16 as autocast rounds them, the
        sums in fp32 in a fixed order (``kernels.cpp``'s ``one_channel_forward`` says which), by
        the compiled kernels or, where they do not run, by PyTorch's ops in the same order
        (``one_channel_forward``, ``one_channel_backward``): the same bits either way. As one
        matrix product its output is 4 wide, which oneDNN computes slowly (its weight gradient
        alone took 0.9 ms of an AMX Xeon's 17 ms training step; ``benchmarks/README.md``)."""
        (n, c, h, w), bf16 = x.shape, torch.bfloat16
        # a view when x is channels-last (a copy of a single NCHW image too: the kernels read dense rows)
        rows = x.to(bf16).permute(0, 2, 3, 1).reshape(n * h * w, c).contiguous()
        # [N, 1, 2H, 2W]: one channel, the same memory in either layout
        return _IntoOneChannel.apply(rows, self.weight.to(bf16), self.bias.to(bf16), (n, h, w))


def k2_last_two(up: nn.Module, relu: nn.Module, last: nn.Module) -> bool:
    """Layers ``k2_twice`` computes: a 2x2 ``BlockConvTranspose2d``, a ReLU in eval mode, and a
    ``BlockConvTranspose2d`` from its channels into one (``goes_into_one_channel``; the paper
    decoder's last two upsamplings), both with a bias and fp32 weights (as ``forward`` asks)."""
    return (type(up) is BlockConvTranspose2d and type(last) is BlockConvTranspose2d and up.stride == (2, 2)
            and last.goes_into_one_channel() and last.in_channels == up.out_channels
            and all(m.bias is not None and m.weight.dtype == torch.float32 for m in (up, last))
            and isinstance(relu, (nn.ReLU, ReLUDropout)) and not relu.training)


def k2_twice(up: BlockConvTranspose2d, relu: nn.Module, last: BlockConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """``last(relu(up(x)))`` for ``k2_last_two`` layers in inference under bf16 autocast
    on the CPU, to the layers' bits, without laying out ``up``'s output as an image: the rows of
    ``up.block_products`` are ``last``'s input rows in block order (each pixel's 2x2 block in
    turn), ReLU'd as they are read, and ``last`` computes each row on its own
    (``one_channel_forward`` of ``blocks``), writing each block's 4x4 tile of outputs in its place.
    The paper autoencoder's evaluation runs 1.03-1.06x faster so on a Zen 4 EPYC, the decoder
    alone 1.4-1.55x (``benchmarks/fused_evaluation.py``, ``benchmarks/README.md``).
    Where the layers would not take those paths (an input not a batch of images, an empty batch),
    the layers."""
    if not (x.dim() == 4 and x.numel()):
        return last(relu(up(x)))
    (n, _, h, w), bf16 = x.shape, torch.bfloat16
    rows = up.block_products(x).view(-1, up.out_channels)
    taps = last.weight.to(bf16).reshape(len(last.weight), 4)
    return one_channel_forward_by(kernels_take(rows), rows, taps, last.bias.to(bf16), (n, h, w), blocks=True)


class _IntoOneChannel(torch.autograd.Function):
    """``BlockConvTranspose2d.into_one_channel``'s forward pass and gradients, from bf16 rows
    (one per input pixel), the layer's weight [C, 1, 2, 2] (used as [C, 4]) and bias; the output
    [N, 1, 2H, 2W]. Whether the kernels run is decided once, in the forward pass, for both."""

    @staticmethod
    def forward(ctx, rows, weight, bias, nhw):
        taps = weight.reshape(len(weight), 4)
        ctx.save_for_backward(rows, taps)
        ctx.weight_layout = weight.shape, weight.stride()  # its gradient's
        ctx.kernels = kernels_take(rows)
        return one_channel_forward_by(ctx.kernels, rows, taps, bias, nhw)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        rows, taps = ctx.saved_tensors
        grad = grad.contiguous()
        grad_rows, grad_taps, grad_bias = (torch.ops.fashionae.one_channel_backward(rows, taps, grad) if ctx.kernels
                                           else one_channel_backward(rows, taps, grad))
        # in the weight's own strides (channels-last; with one channel the same memory), which
        # DistributedDataParallel compares to its buckets', warning of every mismatch
        shape, stride = ctx.weight_layout
        grad_weight = torch.empty_strided(shape, stride, dtype=grad_taps.dtype, device=grad_taps.device)
        grad_weight.copy_(grad_taps.view(shape))
        return grad_rows, grad_weight, grad_bias, None


def one_channel_forward_by(kernels: bool, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                           nhw: tuple[int, int, int], blocks: bool = False) -> torch.Tensor:
    """k2's last layer into one channel, by the compiled kernel or by PyTorch's ops: the same bits."""
    if kernels:
        return torch.ops.fashionae.one_channel_forward(rows, weight, bias, *nhw, blocks)
    return one_channel_forward(rows, weight, bias, nhw, blocks)


def one_channel_forward(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, nhw: tuple[int, int, int],
                        blocks: bool = False) -> torch.Tensor:
    """``kernels.cpp``'s ``one_channel_forward`` by PyTorch's ops, to its bits: ``one_channel_sums``
    rounded to bf16 and laid out as the image [N, 1, 2H, 2W]; of ``blocks`` (``k2_twice``), the
    rows are the 2x2 blocks of the layer before's [N, C, H, W] input pixels in turn, not yet
    ReLU'd, and the image [N, 1, 4H, 4W]."""
    n, h, w = nhw
    taps = one_channel_sums(rows.relu() if blocks else rows, weight, bias).bfloat16()  # [pixel, t], t = ky * 2 + kx
    if blocks:  # [n, h, w, ky, kx, t] -> [n, h, ky, ty, w, kx, tx]
        return taps.view(n, h, w, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6).reshape(n, 1, 4 * h, 4 * w)
    return taps.view(n, h, w, 2, 2).permute(0, 1, 3, 2, 4).reshape(n, 1, 2 * h, 2 * w)


def one_channel_sums(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Each pixel's four outputs in fp32: its products x_c w_ct (exact in fp32) in 8 lanes, the
    lanes added by halves, then the bias."""
    c = rows.shape[1]
    products = (rows.float()[:, None, :] * weight.float().t()).view(len(rows), 4, c // 8, 8)
    lanes = products[:, :, 0]
    for k in range(1, c // 8):
        lanes = lanes + products[:, :, k]
    lanes = lanes[..., :4] + lanes[..., 4:]
    lanes = lanes[..., :2] + lanes[..., 2:]
    return lanes[..., 0] + lanes[..., 1] + bias.float()


def one_channel_backward(rows: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``kernels.cpp``'s ``one_channel_backward`` by PyTorch's ops, to its bits:
    ``one_channel_gradient_sums`` rounded to bf16."""
    return tuple(t.bfloat16() for t in one_channel_gradient_sums(rows, weight, grad))


def one_channel_gradient_sums(rows: torch.Tensor, weight: torch.Tensor,
                              grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of the rows (tap after tap), the weight and the bias (the products summed
    along each input row, then over the rows pairwise: ``pairwise_sum``), in fp32."""
    n, _, h2, w2 = grad.shape
    (h, w), c = (h2 // 2, w2 // 2), rows.shape[1]
    taps = weight.float()
    g = grad.view(n, h, 2, w, 2).permute(0, 1, 3, 2, 4).reshape(n * h * w, 4).float()  # g[:, t], t = ky * 2 + kx
    grows = g[:, 0:1] * taps[:, 0]
    for t in range(1, 4):
        grows = grows + g[:, t:t + 1] * taps[:, t]
    products = torch.cat([(g[:, :, None] * rows.float()[:, None, :]).flatten(1), g], dim=1).view(n * h, w, 4 * c + 4)
    along_rows = products[:, 0]
    for j in range(1, w):
        along_rows = along_rows + products[:, j]
    sums = pairwise_sum(along_rows)
    gb = sums[4 * c] + sums[4 * c + 1]
    gb = gb + sums[4 * c + 2]
    gb = gb + sums[4 * c + 3]
    return grows, sums[:4 * c].view(4, c).t(), gb.reshape(1)


def pairwise_sum(v: torch.Tensor) -> torch.Tensor:
    """The sum over the first dimension of adjacent pairs, level by level, an odd last one moved
    up as it is (``kernels.cpp``'s ``Pairwise``: the same bits)."""
    while len(v) > 1:
        pairs = v[0:len(v) - 1:2] + v[1::2]
        v = torch.cat([pairs, v[-1:]]) if len(v) % 2 else pairs
    return v[0]


def channels_last(t: torch.Tensor) -> bool:
    """Laid out channels-last, and not also contiguous (as a tensor of one channel is)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


FUSED_CONV_RELU = {  # layer type -> its forward pass with ReLU, as one call (oneDNN's for the stock layers)
    nn.Conv2d: lambda c, x: torch.ops.mkldnn._convolution_pointwise(
        x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "relu", [], ""),
    nn.ConvTranspose2d: onednn_conv_transpose_relu,
    BlockConvTranspose2d: BlockConvTranspose2d.forward_relu,
}
