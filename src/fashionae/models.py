"""The study's models: one convolutional encoder, two autoencoders, one classifier.

Read top to bottom: the encoder types and the decoders' upsampling stages (each a registry its
setting's choices come from), the settings, the encoder and decoder, the two models and their
registry. They are built of ``layers.py``'s ``Layers`` (a Sequential that computes some
consecutive layers as one on the CPU) and ``BlockConvTranspose2d``, and ``dropout.py``'s dropout
layers. A trained model's file (safetensors, never pickle) is ``modelfile.py``'s.

Every model returns a ``ModelOutput`` holding its own loss, so one trainer serves all
of them; every model has ``embed(x)``; autoencoders have ``reconstruct(x)`` and the
classifier has ``predict(x)``. Inputs are float images in [0, 1], shape [N, 1, H, W] (28 x 28
for Fashion-MNIST; any size divisible by 4: the models take theirs from ``ModelConfig``).
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import settings
from .data import CLASSES, IMAGE_SIZE, image_size_problem
from .dropout import Dropout, ReLUDropout, transformed
from .errors import UserError
from .layers import BlockConvTranspose2d, Layers
from .settings import AUTOENCODER, CLASSIFIER, LARGEST, boolean, integer_in, number_in, positive_int, setting


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
    # (the bound: past it, torch overflows before the memory check can count the parameters)
    latent: int = setting(512, "the study's l_size (linear arch)", check=integer_in(1, LARGEST))
    encoder_type: str = setting("paper", "paper (Table I) | strided | strong", choices=ENCODER_TYPES)
    decoder: str = setting("k2", "k2 (the author's) | k3 | k4 | resize", choices=DECODERS,
                           only=AUTOENCODER)
    dropout: float = setting(0.2, "dropout rate of every dropout layer", check=number_in(0, 1))
    dropout_after_pool: bool = setting(False, "ablation: Dropout after MaxPool (the author puts it "
                                       "before)", check=boolean)
    paper_head: bool = setting(False, "the author's defect: Sigmoid before the cross-entropy, dropout "
                               "active in a frozen encoder", check=boolean, only=CLASSIFIER)
    image_size: tuple = setting(IMAGE_SIZE, option=False, check=image_size_problem)  # taken from the data
    num_classes: int = setting(len(CLASSES), option=False, check=positive_int)  # taken from the data

    def validate(self) -> "ModelConfig":
        settings.check(self)
        return self

    def unused(self) -> set[str]:
        """The settings this model does not use: the other kind of run's, a conv model's latent
        size (its latent is the feature map), and where dropout is 0, where it goes."""
        return (settings.unused(self, self.task) | ({"latent"} if self.arch == "conv" else set())
                | ({"dropout_after_pool"} if self.dropout == 0 else set()))

    def shape_text(self) -> str:
        """"linear 512", "conv": the arch, and the latent size where the arch has one."""
        return self.arch if "latent" in self.unused() else f"{self.arch} {self.latent}"

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return settings.from_dict(cls, d, "model setting")


@dataclass
class ModelOutput:
    loss: torch.Tensor    # scalar, what the trainer minimises
    output: torch.Tensor  # reconstruction [N, 1, H, W] or class scores [N, K]
    prediction: torch.Tensor | None = None  # classifier: the predicted class [N]
    logits: torch.Tensor | None = None  # classifier: its logits [N, K] (``output`` is past the paper head's Sigmoid)


# ------------------------------------------------------------------ encoder and decoder

class Encoder(nn.Module):
    """Convolutional features (C x H/4 x W/4: 64 x 7 x 7 for Fashion-MNIST), then, for the
    linear arch, the bottleneck Flatten -> Linear(C*h*w, latent) -> ReLU -> Dropout, as in the
    author's code. ``latent`` is the size of what it outputs, whatever the arch."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.features, self.channels = FEATURES[cfg.encoder_type](cfg)
        self.input_shape = (1, *cfg.image_size)
        self.map_size = (cfg.image_size[0] // 4, cfg.image_size[1] // 4)
        flat = self.channels * self.map_size[0] * self.map_size[1]
        if cfg.arch == "linear":
            self.bottleneck = nn.Sequential(nn.Flatten(-3), nn.Linear(flat, cfg.latent),  # (one image too: vmap)
                                            ReLUDropout(cfg.dropout))
            self.latent = cfg.latent
        else:
            self.bottleneck = nn.Identity()
            self.latent = flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (not isinstance(x, torch.Tensor) or x.dim() not in (
                (3, 4) if transformed(x) else (4,)) or x.shape[-3:] != self.input_shape or not x.is_floating_point()):
            # (torch's own error names a weight, or none: a conv encoder takes 32x32 images and
            # gives maps that are not its ``latent``; a trace would record the check as a constant;
            # torch.func's vmap shows one image, [1, H, W])
            raise UserError(self.input_problem(x))
        return self.bottleneck(self.features(x))

    def input_problem(self, x: torch.Tensor) -> str:
        got = (f"{str(x.dtype).removeprefix('torch.')} of shape {list(x.shape)}" if isinstance(x, torch.Tensor)
               else f"{type(x).__module__.split('.')[0].replace('builtins', 'Python')}'s {type(x).__name__}, "
               "not a tensor")
        return (f"the encoder takes float images of shape [N, {', '.join(map(str, self.input_shape))}] (uint8 pixels "
                f"/ 255), got {got}; resize or convert them, or give pictures' paths to "
                "fashionae.load(run).embed, which prepares them")


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
        scores = self.scores(logits)
        loss = F.cross_entropy(scores, y) if y is not None else scores.new_zeros(())
        return ModelOutput(loss, scores, logits.argmax(1), logits)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """What the cross-entropy sees: the logits, or through the paper head's Sigmoid."""
        return torch.sigmoid(logits) if self.config.paper_head else logits

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The class probabilities the model was trained to give: the softmax of its ``scores``.
        Under the paper head they cannot exceed ``max_probability()`` (the Sigmoid bounds the
        scores to (0, 1)): the defect shows, where a softmax of the raw logits would hide it."""
        return torch.softmax(self.scores(self.logits(x)), dim=1)

    def max_probability(self) -> float:
        """The largest probability ``probabilities`` can give: 1, or e / (e + classes - 1) under
        the paper head (23.2 % for 10 classes)."""
        return math.e / (math.e + self.config.num_classes - 1) if self.config.paper_head else 1.0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The head's fp32 logits (before the paper head's Sigmoid)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            z = self.encoder(x).flatten(1)
        weight = self.head.weight  # (fp32, but in a model a user converted; a method in a quantized head)
        with torch.autocast(x.device.type, enabled=False):
            return self.head(z.to(weight.dtype if isinstance(weight, torch.Tensor) else torch.float32))

    def metrics(self, out: ModelOutput, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch sums of the figures besides the loss that the trainer reports. A diverged
        model (logits that are not finite numbers; the paper head's Sigmoid keeps its scores and
        loss finite on infinite ones) has no accuracy: argmax would answer class 0 for them, a
        finite share of the images that the claims would judge."""
        correct = (out.prediction == y).sum().double()
        return {"acc": torch.where(out.logits.isfinite().all(), correct, torch.nan)}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(1)


MODELS = {AUTOENCODER: Autoencoder, CLASSIFIER: Classifier}


def build_model(cfg: ModelConfig) -> nn.Module:
    return MODELS[cfg.validate().task](cfg)


def parameter_counts(cfg: ModelConfig) -> tuple[int, int]:
    """The model's parameters and its encoder's, counted on the meta device: nothing is
    allocated, so that a model too large for this machine can be refused before it is built."""
    with torch.device("meta"):
        model = build_model(cfg)
    return sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.encoder.parameters())
