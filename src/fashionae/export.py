"""``fashionae export``: a run's model as an ONNX file (``pip install 'fashionae[onnx]'``).

The file takes one input, ``images``: float32 [N, 1, H, W] (any N), pixels / 255 on a dark
background, as the run was trained on (light, for a run on dark garments on white;
``images.read_picture`` with the run's dataset levels makes a photo look so). Its
output is, by part:
- ``encoder``: the embedding, float32 [N, latent] (flattened, as ``LoadedRun.embed``);
- ``autoencoder``: the reconstruction, float32 [N, 1, H, W] in [0, 1];
- ``classifier``: the logits, float32 [N, classes]; a softmax over them gives the class
  probabilities (``LoadedRun.predict_proba``; under the author's paper head, a softmax over
  their sigmoid), their argmax the class.
The output is named as above (``embedding``, ``reconstruction``, ``logits``). The model runs
in eval mode, so dropout is the identity and batch norm uses its statistics.
The file's metadata_props say all this, with the class names, the model's settings, the
fashionae version, the SHA-256 of the source run's model.safetensors and the precision it
trained in (the file computes in fp32 whatever that was, as ``LoadedRun(run, "fp32")`` does).

With ``check`` the file is run in onnxruntime on 100 images and compared with torch.
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .errors import UserError, require
from .files import atomic_write, refuse_to_replace
from .images import is_light
from .runfolder import RunFolder
from .settings import AUTOENCODER, CLASSIFIER
from .training import to_inputs

PARTS = ("encoder", AUTOENCODER, CLASSIFIER)  # the encoder alone, or a run's whole model (its task)
OUTPUTS = {"encoder": "embedding", AUTOENCODER: "reconstruction", CLASSIFIER: "logits"}  # by part
CHECK_IMAGES = 100
TOLERANCE = 1e-4  # max abs difference between onnxruntime's and torch's outputs


class Part(nn.Module):
    """One function of a trained model, as the module to export."""

    def __init__(self, model: nn.Module, part: str):
        super().__init__()
        self.model, self.part = model, part

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.part == "encoder":
            return self.model.embed(images)
        if self.part == "autoencoder":
            return self.model.reconstruct(images)
        return self.model.logits(images)


def describe(part: str, model: nn.Module, light: bool = False) -> tuple[str, str]:
    """The input and output of an exported part, in words (``light``: of a run whose images'
    backgrounds are)."""
    h, w = model.config.image_size
    inputs = f"images float32 [N, 1, {h}, {w}], pixels/255, {'light' if light else 'dark'} background"
    shape = {"encoder": f"[N, {model.encoder.latent}]", "autoencoder": f"[N, 1, {h}, {w}] in [0, 1]",
             "classifier": f"[N, {model.config.num_classes}] " + (
                 "(softmax(sigmoid(logits)) gives the probabilities it was trained on, at most "
                 f"{model.max_probability():.1%}: the author's paper head)" if model.config.paper_head
                 else "(softmax gives probabilities)")}[part]
    return inputs, f"{OUTPUTS[part]} float32 {shape}"


@contextmanager
def quiet_exporter():
    """torch.onnx's exporter warns about operators of packages we do not use (torchvision)
    and about its own deprecations: nothing the user can act on."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx(module: Part) -> "onnx.ModelProto":  # noqa: F821
    """The torch.export-based exporter (torch >= 2.6's default), with a dynamic batch axis;
    the example batch has 2 images, since torch.export specialises a dimension of size 1."""
    h, w = module.model.config.image_size
    with quiet_exporter():
        program = torch.onnx.export(module, (torch.rand(2, 1, h, w),), dynamo=True, verbose=False,
                                    input_names=["images"], output_names=[OUTPUTS[module.part]],
                                    dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                                    external_data=False)
    return program.model_proto


def check_images(size: tuple[int, int]) -> torch.Tensor:
    """Seeded random uint8 images of the run's size, with an all-dark and an all-bright one."""
    images = torch.randint(0, 256, (CHECK_IMAGES, *size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    images[0], images[1] = 0, 255
    return images


def max_abs_diff(onnx_bytes: bytes, module: Part, images: torch.Tensor) -> float:
    """Run the exported file in onnxruntime and torch on the same images."""
    ort = require("onnxruntime", "onnx", "checking the exported file (skip it with --no-check)")
    x = to_inputs(images, "cpu")
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.inference_mode():
        want = module(x)
    if got.shape != want.shape:
        raise UserError(f"the exported file gives outputs of shape {list(got.shape)}, torch "
                        f"{list(want.shape)}; report this as a fashionae bug")
    return (got - want).abs().max().item()


def _made_from(onnx, path: Path) -> tuple[str, str] | None:
    """The part and source model digest that the fashionae export in file ``path`` records
    (None for any other file)."""
    try:
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # a file that is no ONNX model: which exception is onnx's to choose
        return None
    return props.get("part"), props.get("source_model_sha256")


def export_onnx(run_dir: str | Path, output: str | Path, part: str | None = None,
                check: bool = True, images: torch.Tensor | None = None, force: bool = False) -> dict:
    """Export ``part`` of a finished run (default: the whole model) to ``output``. With
    ``check``, compare onnxruntime with torch on ``images`` (uint8 [N, H, W]; default: 100
    seeded random images) and refuse a difference above 1e-4. A file at ``output`` that holds
    something else is refused unless ``force``. Returns part, input, output, path (and
    max_abs_diff when checked)."""
    if Path(output).suffix.lower() != ".onnx":  # never a run's own files, nor any other kind
        raise UserError(f"--output {output} must be an .onnx file, e.g. encoder.onnx")
    onnx = require("onnx", "onnx", "fashionae export")
    require("onnxscript", "onnx", "fashionae export")  # torch.onnx's exporter translates with it
    folder = RunFolder(run_dir).require()
    model, sha = folder.load_model(), folder.model_sha256()  # (load_model checked it against the summary's)
    task = model.config.task
    part = part or task
    if part not in PARTS:
        raise UserError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    if part != "encoder" and part != task:
        raise UserError(f"--part {part} is for {part} runs, not {task} runs like {folder.path}; "
                        f"export --part {task} or --part encoder")
    out = Path(output)
    if out.exists() and (not out.is_file() or _made_from(onnx, out) != (part, sha)):
        # a folder or a pipe (never read), or a file that is no export of this part of this model:
        # refused now, not after the export's seconds
        refuse_to_replace({out: None}, force)
    module = Part(model, part).eval()
    proto = to_onnx(module)
    inputs, outputs = describe(part, model, is_light(folder.dataset_levels()["background"]))
    onnx.helper.set_model_props(proto, {
        "input": inputs, "output": outputs, "part": part,
        "classes": json.dumps(list(folder.classes())),
        "model_config": json.dumps(asdict(model.config)),
        "fashionae_version": __version__,
        "source_model_sha256": sha,
        "trained_precision": str(folder.environment().get("precision")),  # the file computes in fp32
        "pictures": json.dumps(folder.pictures()),  # how a picture is prepared for it (images.prepare_image)
    })
    data = proto.SerializeToString()
    result = {"part": part, "input": inputs, "output": outputs, "path": str(output)}
    if check:
        images = check_images(model.config.image_size) if images is None else images
        diff = max_abs_diff(data, module, images)
        if not diff <= TOLERANCE:  # also refuses NaN
            raise UserError(f"the exported {part} differs from torch by up to {diff:.2e} on "
                            f"{len(images)} images (more than {TOLERANCE:.0e}); nothing was written. "
                            "Report this as a fashionae bug, or pass --no-check to write it anyway")
        result["max_abs_diff"] = diff
    refuse_to_replace({Path(output): data}, force)
    atomic_write(output, data)
    return result
