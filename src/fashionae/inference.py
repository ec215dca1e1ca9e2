"""A finished run applied to images: ``LoadedRun``, behind ``fashionae.load``, and what it takes
as images (tensors, numpy arrays, picture files). It reaches the run folder through ``RunFolder``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import UserError
from .images import FILL, INVERT, preparation_problem, read_pictures
from .runfolder import RunFolder
from .settings import AUTOENCODER, CLASSIFIER
from .training import EVAL_BATCH, PRECISIONS, TrainConfig, autocast, native_bf16


class LoadedRun:
    """A trained run, ready to apply: ``reconstruct``, ``embed``, ``predict``.

    Inputs are float tensors [N, 1, H, W] in [0, 1] (or [N, H, W]: [1, H, W] is one image; or
    channels last, [N, H, W, 1]) of the run's image size, or paths of picture files, converted
    by ``images.prepare_image`` as ``invert`` and ``fill`` say (the run's dataset's, where it was
    made of pictures). Outputs are ordinary fp32 tensors, on the CPU. The model runs
    on the CPU in eval mode, in ``precision``: "auto" (the default) is the precision the run
    trained in, as ``fashionae eval`` measures it, so that its answers are the run's own, unless
    this CPU only emulates bf16 (many times slower): then fp32, as an ONNX export computes.
    """

    def __init__(self, folder: str | Path, precision: str = "auto"):
        self.folder = RunFolder(folder).require()
        if precision not in PRECISIONS:
            raise UserError(f"precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {precision!r}")
        trained = self.folder.config().train
        if precision == "auto":
            precision = "bf16" if trained.precision == "bf16" and native_bf16("cpu") else "fp32"
        self.precision = precision
        self._train = replace(trained, device="cpu", precision=precision)  # what ``autocast`` reads
        self.model = self.folder.load_model()
        self.config = self.model.config
        self.task = self.config.task
        self.classes = self.folder.classes()
        self.size = tuple(self.config.image_size)  # (H, W) of the images it takes
        # how pictures given by their paths are prepared (``images.read_picture``): as the run's
        # dataset's were, where it was made of pictures (dataset.toml's [pictures]); set them to change
        self.dataset_pictures = self.folder.pictures()
        self.invert, self.fill = self.dataset_pictures["invert"], self.dataset_pictures["fill"]
        # its images' border levels: a picture with a border this dark is taken as it is (``border``);
        # their median (``background``), light where the dataset's garments are dark on white
        self.dataset_levels = self.folder.dataset_levels()

    @property
    def invert(self) -> str:
        """Whether a picture is negated on its way to light on black: auto, yes or no."""
        return self._invert

    @invert.setter
    def invert(self, value: str) -> None:
        if problem := preparation_problem(value, FILL):  # (checked here: a bad value said where it was set)
            raise UserError(f"run.{problem}")
        self._invert = value

    @property
    def fill(self) -> float:
        """The part of the frame a picture's object spans once prepared (0 < fill <= 1)."""
        return self._fill

    @fill.setter
    def fill(self, value: float) -> None:
        if problem := preparation_problem(INVERT[0], value):
            raise UserError(f"run.{problem}")
        self._fill = float(value)

    def __repr__(self) -> str:
        c = self.config
        classes = f", {len(self.classes)} classes" if c.task == CLASSIFIER else ""
        return (f"LoadedRun({str(self.folder.path)!r}: {c.task}, {c.encoder_type} encoder, {c.shape_text()}, "
                f"{c.image_size[0]}x{c.image_size[1]} images{classes}, {self.precision})")

    def _inputs(self, images) -> torch.Tensor:
        """Pictures (paths), or images as a tensor or numpy array (or a list of them): [N, 1, H, W]
        or [N, H, W], floats in [0, 1] or uint8 pixels."""
        size = self.size
        if isinstance(images, (str, Path)):
            images = [images]
        if isinstance(images, (list, tuple)):
            # every picture read first: those that cannot be named together, as classify does
            pictures = self.read_pictures(list(dict.fromkeys(str(p) for p in images if isinstance(p, (str, Path)))))
            images = (torch.stack([pictures[str(p)].pixels if isinstance(p, (str, Path)) else self._one_image(p)
                                   for p in images]) if images else torch.empty(0, 1, *size))
        else:
            images = _pixels(images)
        given = list(images.shape)  # as the user gave them, for the message below
        if images.ndim == 3:  # [N, H, W]: add the channel
            images = images.unsqueeze(1)
        elif images.ndim == 4 and images.shape[1] != 1 and images.shape[3] == 1:  # [N, H, W, 1]
            images = images.reshape(len(images), 1, *images.shape[1:3])  # one channel: the same order
        if tuple(images.shape[1:]) != (1, *size):
            raise UserError(f"images must be [N, 1, {size[0]}, {size[1]}] (or [N, {size[0]}, {size[1]}]), got {given}")
        return images

    def read_pictures(self, paths: list[str]) -> dict:
        """``images.read_pictures`` as this run prepares pictures (``invert``, ``fill``, its size),
        into its dataset's form (its border levels: dark on light where its backgrounds are)."""
        return read_pictures(paths, self.invert, self.size, self.fill, dataset_fill=self.dataset_pictures["fill"],
                             dataset_border=self.dataset_levels["border"],
                             dataset_background=self.dataset_levels["background"])

    def _one_image(self, image) -> torch.Tensor:
        """An item of a list that is no picture's path: one image as [H, W], [1, H, W] or [H, W, 1]."""
        size = self.size
        x = _pixels(image)
        if x.ndim == 2:
            x = x.unsqueeze(0)
        elif x.ndim == 3 and x.shape[0] != 1 and x.shape[2] == 1:
            x = x.reshape(1, *x.shape[:2])
        if tuple(x.shape) != (1, *size):
            raise UserError(f"each image of a list must be [{size[0]}, {size[1]}] (or [1, {size[0]}, {size[1]}]), "
                            f"got {list(x.shape)}")
        return x

    def _apply(self, part: Callable[[torch.Tensor], torch.Tensor], images,
               uses: torch.nn.Module | None = None) -> torch.Tensor:
        """``part`` of the model on the images, ``EVAL_BATCH`` at a time (memory stays flat however
        many are given), as ``training.evaluate`` runs a model: autograd off (the fused kernels), one autocast region (in bf16, each weight cast
        once), under ``no_grad``, so that the result is an ordinary tensor, which autograd and
        in-place operations accept (a linear probe trained on ``embed``'s codes)."""
        x, cfg = self._inputs(images), self._train
        kinds = {(p.device, p.dtype) for p in (self.model if uses is None else uses).parameters()}  # (``part``'s weights)
        if kinds - {(torch.device("cpu"), torch.float32)}:  # moved or converted in a network of the user's
            x, cfg = self._as_converted(x, kinds)
        with torch.no_grad(), autocast(cfg), _evaluating(self.model):
            return torch.cat([part(x[i:i + EVAL_BATCH]).float().cpu() for i in range(0, max(len(x), 1), EVAL_BATCH)])

    def _as_converted(self, x: torch.Tensor, kinds: set) -> tuple[torch.Tensor, TrainConfig]:
        """The images, and how to run a model moved or converted in a network of the user's
        (README): on its device; in its type, or where only its encoder went to bf16, under bf16
        autocast (which takes its fp32 parts too)."""
        devices, dtypes = {d for d, _ in kinds}, {t for _, t in kinds}
        if len(devices) > 1 or len(dtypes) > 1 and dtypes != {torch.float32, torch.bfloat16}:
            what = " and ".join(sorted({str(d) for d in devices} if len(devices) > 1 else
                                       {str(t).removeprefix("torch.") for t in dtypes}))
            raise UserError(f"{self.folder.path}'s model is now in parts of {what} (a network of yours converted its "
                            "encoder): convert all of run.model alike, or put copy.deepcopy(run.model.encoder) in "
                            "your network")
        mixed = len(dtypes) > 1
        device, dtype = devices.pop(), torch.float32 if mixed else dtypes.pop()
        return x.to(device, dtype), replace(self._train, device=device.type, precision="bf16" if mixed else "fp32")

    def needs(self, task: str) -> None:
        """Refuse a run of the other task: reconstructing needs an autoencoder, predicting a classifier."""
        if self.task != task:
            raise UserError(f"{self.folder.path} is a classifier run; reconstruct needs an autoencoder run"
                            if task == AUTOENCODER else f"{self.folder.path} is an autoencoder run; predicting "
                            "classes needs a classifier run (fashionae train-clf)")

    def embed(self, images) -> torch.Tensor:
        """The encoder's codes, [N, latent] (a fully convolutional model's feature map, flattened)."""
        return self._apply(self.model.embed, images, uses=self.model.encoder)

    def reconstruct(self, images) -> torch.Tensor:
        """An autoencoder run's reconstructions, [N, 1, H, W] in [0, 1]."""
        self.needs(AUTOENCODER)
        return self._apply(self.model.reconstruct, images)

    def predict_proba(self, images) -> torch.Tensor:
        """A classifier run's class probabilities, [N, classes], in the order of ``classes``."""
        self.needs(CLASSIFIER)
        return self._apply(self.model.probabilities, images)

    def predict(self, images) -> list[str]:
        """A classifier run's answer for each image: the name of its most probable class."""
        return [self.classes[i] for i in self.predict_proba(images).argmax(1).tolist()]


@contextmanager
def _evaluating(model: torch.nn.Module):
    """``model`` in eval mode (dropout off) for one call, and each of its modules' own mode given
    back after: its encoder may be part of a network of the user's in training (README), whose
    dropout stays on."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


CLAMPED = 0.02  # pixels this far outside [0, 1] at most are a float's rounding or a resize's overshoot, not a scale


def _pixels(images) -> torch.Tensor:
    """Images as floats in [0, 1]: uint8 pixels are divided by 255, as the dataset's are; other
    numbers must be in [0, 1] already. A numpy array may have any strides or byte order."""
    if type(images).__module__.startswith("PIL."):  # (an opened picture: its file is prepared, its pixels not)
        raise UserError("images must be pictures' paths, tensors or numpy arrays, got a PIL image: give its file's "
                        "path (prepared as classify prepares it), or np.asarray(image) if it is in the dataset's form")
    if isinstance(images, np.ndarray):
        images = np.ascontiguousarray(images).astype(images.dtype.newbyteorder("="))
    try:
        images = torch.as_tensor(images).cpu()  # where the model is
    except (TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"images must be pictures, tensors or numpy arrays of numbers ({e})") from None
    if images.layout != torch.strided or images.is_complex():
        raise UserError(f"images must be real numbers in a dense tensor, got a {str(images.layout).split('.')[-1]} "
                        f"tensor of {str(images.dtype).split('.')[-1]}")
    if images.dtype == torch.uint8:
        return images.float() / 255
    integers, images = not images.is_floating_point(), images.float()
    if images.isnan().any() or images.isinf().any():
        raise UserError("image pixels must be floats in [0, 1] or uint8, got values that are not a number (NaN) "
                        "or infinite")
    if images.numel() and not (images.min() >= 0 and images.max() <= 1):
        low, high = images.min().item(), images.max().item()
        in_0_255 = integers and low >= 0 and high <= 255
        fix = ("give them as uint8 (.astype(np.uint8), or .to(torch.uint8))" if in_0_255
               else "divide them by their full scale (65535 for 16-bit pixels, 255 for 8-bit ones)"
               if integers and low >= 0 else
               "clamp them to [0, 1] (x.clamp(0, 1)): arithmetic's rounding, a resize's overshoot"
               if low >= -CLAMPED and high <= 1 + CLAMPED else
               "map images normalised to [-1, 1] back with (x + 1) / 2" if -1 - CLAMPED <= low <= -0.9 and high <= 1
               else "divide 0-255 pixels by 255" if high > 10 else
               "undo their normalisation (x * std + mean), back to [0, 1] as the dataset's pixels are")
        raise UserError(f"image pixels must be floats in [0, 1] or uint8, got values from {low:.8g} to {high:.8g}; "
                        f"{fix}")
    return images
