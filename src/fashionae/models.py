"""The study's models: one convolutional encoder, two autoencoders, one classifier.

Read top to bottom: ``Layers`` (a Sequential that computes some consecutive layers as one;
dropout is ``dropout.py``'s), the encoder types and the decoders' upsampling stages (each a
registry its setting's choices come from), the settings, the encoder and decoder, the two models
and their registry. A trained model's file (safetensors, never pickle) is ``modelfile.py``'s.

Every model returns a ``ModelOutput`` holding its own loss, so one trainer serves all
of them; every model has ``embed(x)``; autoencoders have ``reconstruct(x)`` and the
classifier has ``predict(x)``. Inputs are float images in [0, 1], shape [N, 1, H, W] (28 x 28
for Fashion-MNIST; any size divisible by 4: the models take theirs from ``ModelConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import settings
from .data import image_size_problem
from .dropout import Dropout, ReLUDropout, eager_on_cpu, halving_pool, kernels_take, relu_dropout_pool
from .settings import AUTOENCODER, CLASSIFIER, boolean, number_in, positive_int, setting


# ------------------------------------------------------------------ layers, some run as one

class Layers(nn.Sequential):
    """``nn.Sequential`` (same modules, same state-dict keys) that computes some consecutive layers
    in one pass over memory, to the same bits as the layers one by one (``tests/test_models.py``,
    ``tests/test_kernels.py``; the last below: where oneDNN sums in its kernel's order):

    - a ReLU (or ``ReLUDropout``) and the 2x2 max-pooling after it, by a compiled kernel
      (``dropout.relu_dropout_pool``; with the rest of the kernels the paper autoencoder's
      training step runs 1.4x faster on a Zen 5, its evaluation 1.3x);
    - in inference on the CPU, in fp32, a convolution and the ReLU right after it, as one oneDNN
      call: the ReLU is applied to the convolution's output before it is written (evaluating the
      paper autoencoder runs 1.1x faster on an AVX2 EPYC; ``benchmarks/README.md``), or as one
      call of a compiled kernel for the paper decoder's (``BlockConvTranspose2d.forward_relu``);
    - in inference on the CPU, under bf16 autocast or in fp32, a one-channel 3x3 convolution, ReLU
      and 2x2 max-pooling (the paper encoder's first stage) by a compiled kernel (``conv_relu_pool``).

    The last two only in eval mode with autograd off (``torch.no_grad`` or
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
        onednn_fp32 = onednn_fp32_convolution(x)
        if fused and (bf16_autocast_on_cpu() or onednn_fp32):  # (fused: the kernels are there)
            for i, (conv, relu, pool) in enumerate(zip(layers, layers[1:], layers[2:])):
                if first_stage(conv, relu, pool) and i + 1 in fused:
                    del fused[i + 1]
                    fused[i] = (3, partial(conv_relu_pool, conv, relu, pool))
        if not onednn_fp32:
            return fused
        # the layers already in a run (a ReLU before a pooling goes with the pooling)
        taken = {j for i, (span, _) in fused.items() for j in range(i, i + span)}
        conv_relu = {i: (2, partial(FUSED_CONV_RELU[type(a)], a)) for i, (a, b) in enumerate(pairs)
                     if fusable(a, b, x) and {i, i + 1}.isdisjoint(taken)}
        if conv_relu and finite(x) and all(finite(p) for p in self.parameters()):
            fused.update(conv_relu)
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
    sums made the stage 1.5x faster again; ``benchmarks/README.md``).
    The same bits as oneDNN's convolution where it sums in the kernel's order (``kernels.cpp``
    says where it does). Elsewhere (no image, one not fp32 or of a size that does not halve,
    weights that are not finite), the layers."""
    if (x.dim() == 4 and len(x) and x.shape[1] == 1 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and x.dtype == torch.float32 and conv.weight.dtype == torch.float32 and kernels_take(x)
            and finite(conv.weight) and finite(conv.bias)):
        return torch.ops.fashionae.conv3x3_relu_pool(x, conv.weight, conv.bias, bf16_autocast_on_cpu())
    return relu_dropout_pool(relu, pool, conv(x))


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


def finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in ``t``, by one sum (a sum that overflows says no too). The fused
    calls need it of their input and weights: oneDNN's ReLU turns NaN into 0 where ``torch.relu``
    keeps it, and a diverged model must not evaluate as a finite one. (From finite inputs and
    weights a NaN needs sums beyond 3e38.)"""
    return bool(torch.isfinite(t.sum()))


def onednn_conv_transpose_relu(c: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._convolution_transpose_pointwise(
        x, c.weight, c.bias, c.padding, c.output_padding, c.stride, c.dilation, c.groups, "relu", [], "")


FUSED_CONV_RELU = {  # layer type -> its forward pass with ReLU, as one call (oneDNN's for the stock layers)
    nn.Conv2d: lambda c, x: torch.ops.mkldnn._convolution_pointwise(
        x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "relu", [], ""),
    nn.ConvTranspose2d: onednn_conv_transpose_relu,
}


# ------------------------------------------------------------------ encoder types, upsampling stages

def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1)


def paper_features(cfg: ModelConfig) -> tuple[nn.Sequential, int]:
    """Table I: (Conv 3x3 -> ReLU -> Dropout -> MaxPool 2) twice, 1 -> 32 -> 64 channels
    (``ReLUDropout`` is ReLU -> Dropout as one layer).

    As in the author's code, Dropout comes before MaxPool, so pooling picks maxima of
    dropped-and-rescaled activations: they are larger in training than in eval mode.
    ``dropout_after_pool`` swaps the two for the ablation.
    """
    layers: list[nn.Module] = []
    for cin, cout in ((1, 32), (32, 64)):
        layers.append(conv3x3(cin, cout))
        if cfg.dropout_after_pool:
            layers += [nn.ReLU(), nn.MaxPool2d(2, 2), Dropout(cfg.dropout)]
        else:
            layers += [ReLUDropout(cfg.dropout), nn.MaxPool2d(2, 2)]
    return Layers(*layers), 64


def strided_features(cfg: ModelConfig) -> tuple[nn.Sequential, int]:
    """The study's future work: each MaxPool becomes a learned 3x3 stride-2 convolution."""
    layers: list[nn.Module] = []
    for cin, cout in ((1, 32), (32, 64)):
        layers += [conv3x3(cin, cout), ReLUDropout(cfg.dropout),
                   conv3x3(cout, cout, stride=2), nn.ReLU()]
    return Layers(*layers), 64


def strong_features(cfg: ModelConfig) -> tuple[nn.Sequential, int]:
    """Wider (64/128 channels), batch-normalised, one block deeper; still 28x28 -> 7x7.

    Blocks of Conv 3x3 -> BatchNorm -> ReLU: 1->64, 64->64, pool, 64->128, 128->128,
    pool, 128->128 (the extra block, at 7x7). 407,616 parameters in the features
    (the paper encoder has 18,816, the strided one 64,992).
    """
    def block(cin, cout):
        return [conv3x3(cin, cout), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        *block(1, 64), *block(64, 64), nn.MaxPool2d(2, 2), Dropout(cfg.dropout),
        *block(64, 128), *block(128, 128), nn.MaxPool2d(2, 2), Dropout(cfg.dropout),
        *block(128, 128)), 128


FEATURES = {"paper": paper_features, "strided": strided_features, "strong": strong_features}


class BlockConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution whose kernel is its stride (k x k, no padding): each input pixel
    makes a k x k block of output pixels of its own, so the layer is one matrix product,
    [N*H*W, C_in] x [C_in, k*k*C_out], and a reshuffle of its rows into blocks. On the CPU under
    bf16 autocast it is computed so: oneDNN's transposed convolution is slow for the decoder's
    shapes (the paper autoencoder's training step 1.1x faster, its evaluation 1.1x;
    ``benchmarks/README.md``). The same function, laid out in memory as the stock layer lays it
    (channels-last when the input or the weight is, so the dropout after it draws the same
    masks): only its fp32 sums run in another order, which may move a bf16 output by its last
    bit. In fp32 inference the paper decoder's two layers run as a compiled kernel (``kernel_takes``).
    Everywhere else (fp32 otherwise, CUDA, compiling, tracing and ONNX export) it is the stock
    layer, to the same bits as before."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(cin, cout, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or self.bias is None or x.dim() != 4 or self.weight.dtype != torch.float32:
            return super().forward(x, output_size)
        if eager_on_cpu(x) and bf16_autocast_on_cpu():
            return self.block_matmul(x)
        if self.kernel_takes(x):
            return torch.ops.fashionae.conv_transpose_2x2(x, self.weight, self.bias, False)
        return super().forward(x)

    def forward_relu(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(self(x))`` as one call, in fp32 inference (``Layers.fused_runs``): the compiled
        kernel where it takes ``x``, oneDNN's transposed convolution with its ReLU elsewhere."""
        if self.kernel_takes(x):
            return torch.ops.fashionae.conv_transpose_2x2(x, self.weight, self.bias, True)
        return onednn_conv_transpose_relu(self, x)

    def kernel_takes(self, x: torch.Tensor) -> bool:
        """Whether ``conv_transpose_2x2``'s kernel computes this layer (with a bias) of ``x`` (4-D):
        2x2 of stride 2 into one channel or a multiple of 8 (the paper decoder's two layers), in
        fp32 inference where oneDNN would run it. The same bits as oneDNN's (``kernels.cpp`` says
        where), faster:
        oneDNN pads one channel to 8, and runs the 64 -> 32 layer at about half the fp32 peak (the
        paper autoencoder's evaluation runs 1.08x faster on an AVX2 EPYC with the last layer's
        kernel, 1.02x more with the first's; ``benchmarks/README.md``)."""
        return (self.stride == (2, 2) and (self.out_channels == 1 or self.out_channels % 8 == 0)
                and self.bias is not None and x.dim() == 4
                and self.weight.dtype == torch.float32 and not torch.is_grad_enabled()
                and onednn_fp32_convolution(x) and kernels_take(x))

    def block_matmul(self, x: torch.Tensor) -> torch.Tensor:
        (n, cin, h, w), k, cout = x.shape, self.stride[0], self.out_channels
        rows = x.permute(0, 2, 3, 1).reshape(n * h * w, cin)  # a view when x is channels-last
        blocks = torch.addmm(self.bias.repeat(k * k), rows, self.weight.permute(0, 2, 3, 1).reshape(cin, k * k * cout))
        y = blocks.view(n, h, w, k, k, cout).permute(0, 1, 3, 2, 4, 5).reshape(n, h * k, w * k, cout)
        y = y.permute(0, 3, 1, 2)  # channels-last
        return y if channels_last(x) or channels_last(self.weight) else y.contiguous()


def channels_last(t: torch.Tensor) -> bool:
    """Laid out channels-last, and not also contiguous (as a tensor of one channel is)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


FUSED_CONV_RELU[BlockConvTranspose2d] = BlockConvTranspose2d.forward_relu


UPSAMPLE = {  # decoder kind -> one x2 upsampling stage, cin -> cout channels (7 -> 14 -> 28 pixels)
    "k2": lambda cin, cout: BlockConvTranspose2d(cin, cout, 2),  # the author's
    "k3": lambda cin, cout: nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1, output_padding=1),
    "k4": lambda cin, cout: nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1),
    "resize": lambda cin, cout: nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(cin, cout)),
}


# ------------------------------------------------------------------ settings

ARCHS = ("linear", "conv")
ENCODER_TYPES = tuple(FEATURES)
DECODERS = tuple(UPSAMPLE)
TASKS = (AUTOENCODER, CLASSIFIER)



@dataclass(frozen=True)
class ModelConfig:
    """A model's settings: the latent size is ``latent`` here (the study calls it l_size)."""
    task: str = setting(AUTOENCODER, choices=TASKS, option=False)  # set by the command
    arch: str = setting("linear", "linear: a bottleneck Linear(C*h*w, latent); conv: the latent is "
                        "the C x h x w feature map", choices=ARCHS)
    latent: int = setting(512, "the study's l_size (linear arch)", check=positive_int)
    encoder_type: str = setting("paper", "paper (Table I) | strided | strong", choices=ENCODER_TYPES)
    decoder: str = setting("k2", "k2 (the author's) | k3 | k4 | resize", choices=DECODERS,
                           only=AUTOENCODER)
    dropout: float = setting(0.2, "dropout rate of every dropout layer", check=number_in(0, 1))
    dropout_after_pool: bool = setting(False, "ablation: Dropout after MaxPool (the author puts it "
                                       "before)", check=boolean)
    paper_head: bool = setting(False, "the author's defect: Sigmoid before the cross-entropy, dropout "
                               "active in a frozen encoder", check=boolean, only=CLASSIFIER)
    image_size: tuple = setting((28, 28), option=False, check=image_size_problem)  # taken from the data
    num_classes: int = setting(10, option=False, check=positive_int)  # taken from the data

    def validate(self) -> "ModelConfig":
        settings.check(self)
        return self

    def unused(self) -> set[str]:
        """The settings this model does not use: the other kind of run's, and a conv model's
        latent size (its latent is the feature map)."""
        return settings.unused(self, self.task) | ({"latent"} if self.arch == "conv" else set())

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return settings.from_dict(cls, d, "model setting")


@dataclass
class ModelOutput:
    loss: torch.Tensor    # scalar, what the trainer minimises
    output: torch.Tensor  # reconstruction [N, 1, H, W] or class scores [N, K]
    prediction: torch.Tensor | None = None  # classifier: the predicted class [N]


# ------------------------------------------------------------------ encoder and decoder

class Encoder(nn.Module):
    """Convolutional features (C x H/4 x W/4: 64 x 7 x 7 for Fashion-MNIST), then, for the
    linear arch, the bottleneck Flatten -> Linear(C*h*w, latent) -> ReLU -> Dropout, as in the
    author's code. ``latent`` is the size of what it outputs, whatever the arch."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.features, self.channels = FEATURES[cfg.encoder_type](cfg)
        self.map_size = (cfg.image_size[0] // 4, cfg.image_size[1] // 4)
        flat = self.channels * self.map_size[0] * self.map_size[1]
        if cfg.arch == "linear":
            self.bottleneck = nn.Sequential(nn.Flatten(), nn.Linear(flat, cfg.latent),
                                            ReLUDropout(cfg.dropout))
            self.latent = cfg.latent
        else:
            self.bottleneck = nn.Identity()
            self.latent = flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.features(x))


class Decoder(nn.Module):
    """The mirror of the encoder (the study does not give it; this is the author's code):
    [Linear(latent, C*h*w) -> ReLU -> Dropout -> unflatten] for the linear arch, then
    up(C -> 32) -> ReLU -> Dropout -> up(32 -> 1) -> Sigmoid, 7 -> 14 -> 28 pixels."""

    def __init__(self, cfg: ModelConfig, channels: int, map_size: tuple[int, int]):
        super().__init__()
        if cfg.arch == "linear":
            self.unbottleneck = nn.Sequential(nn.Linear(cfg.latent, channels * map_size[0] * map_size[1]),
                                              ReLUDropout(cfg.dropout), nn.Unflatten(1, (channels, *map_size)))
        else:
            self.unbottleneck = nn.Identity()
        self.layers = Layers(UPSAMPLE[cfg.decoder](channels, 32), ReLUDropout(cfg.dropout),
                             UPSAMPLE[cfg.decoder](32, 1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.unbottleneck(z))


# ------------------------------------------------------------------ models

class Autoencoder(nn.Module):
    """Encoder -> decoder, trained with the per-pixel mean squared error."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, self.encoder.channels, self.encoder.map_size)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> ModelOutput:
        recon = self.decoder(self.encoder(x))
        return ModelOutput(F.mse_loss(recon.float(), x.float()), recon)

    def metrics(self, out: ModelOutput, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch sums of the figures besides the loss that the trainer reports: none."""
        return {}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Classifier(nn.Module):
    """An autoencoder's encoder (with its linear stage) + Linear(latent, classes), cross-entropy.

    ``freeze_encoder()`` keeps the encoder's weights fixed and, unless ``paper_head``,
    runs it in eval mode (no dropout, batch-norm statistics fixed). ``paper_head``
    reproduces the author's code: a Sigmoid before the cross-entropy, which bounds the
    scores to [0, 1] so the loss cannot fall below about 1.46 — a defect kept only to
    reproduce the original.

    The head runs in fp32 whatever the autocast, and predictions are the argmax of its
    logits: the Sigmoid never changes which class is largest, but in bf16 it saturates to
    exactly 1.0 for logits above about 6, where two classes would tie.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.head = nn.Linear(self.encoder.latent, cfg.num_classes)
        self.encoder_frozen = False

    def freeze_encoder(self) -> None:
        self.encoder_frozen = True
        self.encoder.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if self.encoder_frozen and not self.config.paper_head:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> ModelOutput:
        logits = self.logits(x)
        scores = torch.sigmoid(logits) if self.config.paper_head else logits
        loss = F.cross_entropy(scores, y) if y is not None else scores.new_zeros(())
        return ModelOutput(loss, scores, logits.argmax(1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The head's fp32 logits (before the paper head's Sigmoid)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            z = self.encoder(x).flatten(1)
        with torch.autocast(x.device.type, enabled=False):
            return self.head(z.float())

    def metrics(self, out: ModelOutput, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch sums of the figures besides the loss that the trainer reports."""
        return {"acc": (out.prediction == y).sum()}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(1)


MODELS = {AUTOENCODER: Autoencoder, CLASSIFIER: Classifier}


def build_model(cfg: ModelConfig) -> nn.Module:
    return MODELS[cfg.validate().task](cfg)
