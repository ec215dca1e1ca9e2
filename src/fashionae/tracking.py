"""TensorBoard logging of a run (``--tensorboard``, ``pip install 'fashionae[tensorboard]'``).

``TensorBoardLogger`` is a training callback that writes RUN/tensorboard/: every figure of
each epoch's metrics row as a scalar (step = the epoch; tags grouped by what they measure,
``tag``: loss/train, loss/val, accuracy/val, epoch/seconds, ...; one chart draws the train and
validation losses together), a grid of validation images and their reconstructions for
autoencoders, and, when the run ends, its settings as hparams with its final figures.
metrics.jsonl stays the source of truth; these events are a view of it.

A resumed run writes each epoch once: the writer starts at the epoch after the last one its
event files already hold (the checkpoint can be one epoch ahead of them, if the run was
stopped between the two writes) and passes that epoch as ``purge_step``, so TensorBoard hides
anything an earlier attempt wrote from there on. A run that finished without ``--tensorboard``
gets its events when a later command asks for them (``log_finished_run``): every epoch from
metrics.jsonl, the final figures from summary.json, one grid by its final model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .data import Dataset, make_splits
from .errors import UserError, require
from .runfolder import RunConfig, RunFolder
from .settings import AUTOENCODER
from .training import to_inputs

IMAGES = 8        # fixed validation images shown with their reconstructions
IMAGE_EVERY = 5   # epochs between two grids (the first and the last epoch always have one)
LAYOUT = {"fashionae": {name: ["Multiline", [rf"^{name}/"]] for name in ("loss", "accuracy")}}  # one chart each


def tag(key: str) -> str:
    """A metrics.jsonl key as its TensorBoard tag, in the group of what it measures (TensorBoard
    shows one section per prefix): train_loss -> loss/train, val_acc -> accuracy/val,
    seconds -> epoch/seconds."""
    for suffix, group in (("_loss", "loss"), ("_acc", "accuracy")):
        if key.endswith(suffix):
            return f"{group}/{key[:-len(suffix)]}"
    return f"epoch/{key}"


def need_tensorboard() -> None:
    """The extra ``--tensorboard`` needs, said in one line where it is missing: by each command
    before it writes anything."""
    require("tensorboard", "tensorboard", "--tensorboard")


def logged_scalars(path: Path) -> dict[str, list]:
    """The scalars a run's event files hold, by tag, after earlier purges (none without the
    folder). A path that is no folder, or event files that cannot be read, are one line: the
    events are a view of metrics.jsonl, so the folder can go and be written again."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        if not path.is_dir():
            raise NotADirectoryError("not a folder")
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}
    except Exception as e:  # OSError, or tensorboard's own errors on a damaged file
        raise UserError(f"{path} cannot hold this run's TensorBoard events ({e}); delete it: fashionae writes "
                        "them again from metrics.jsonl") from None


class TensorBoardLogger:
    def __init__(self, folder: RunFolder, cfg: RunConfig, model: torch.nn.Module, val_images: torch.Tensor):
        self.path = folder / folder.TENSORBOARD
        self.cfg = cfg
        self.model = model
        self.images = val_images[:IMAGES]
        self.writer = None  # opened at the first epoch, when the history says where to start

    def _open(self, first: int):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(self.path), purge_step=first)
        self.writer.add_custom_scalars(LAYOUT)

    def _last_logged_epoch(self) -> int:
        """The last epoch the event files hold (0 if none)."""
        val = logged_scalars(self.path).get(tag("val_loss"))  # (events of fashionae 0.3.0 and before: none)
        return val[-1].step if val else 0

    def __call__(self, history: list[dict]) -> None:
        if self.writer is None:  # the rows after what the events hold (and none the history lacks)
            first = min(self._last_logged_epoch() + 1, history[-1]["epoch"])
            self._open(first)
            rows = [r for r in history if r["epoch"] >= first]
        else:
            rows = history[-1:]
        for row in rows:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(tag(key), value, row["epoch"])
        epoch = history[-1]["epoch"]
        if self.cfg.model.task == AUTOENCODER and (epoch == 1 or epoch % IMAGE_EVERY == 0
                                                      or epoch == self.cfg.train.epochs):
            self.writer.add_image("reconstructions", self.reconstructions(), epoch)
        self.writer.flush()  # an epoch's events are on disk before the next epoch starts

    @torch.inference_mode()
    def reconstructions(self) -> torch.Tensor:
        """One grid [1, 2H, 8W]: the validation images above, their reconstructions below,
        by the model as it is now, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        x = to_inputs(self.images, device)
        recon = self.model.reconstruct(x).float().clamp(0, 1)
        self.model.train(was_training)
        rows = [torch.cat(list(batch[:, 0]), dim=1) for batch in (x, recon)]  # [H, 8W] each
        return torch.cat(rows, dim=0).unsqueeze(0).cpu()

    def close(self, summary: dict) -> None:
        """Write the run's settings as hparams, with its final losses and accuracies."""
        from torch.utils.tensorboard.summary import hparams
        if self.writer is None:  # a resumed run whose last epoch was already trained
            self._open(self._last_logged_epoch() + 1)
        settings = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
                    for k, v in self.cfg.used_identity().items() if v is not None and not k.endswith("sha256")}
        final = {f"final/{k}": v for k, v in summary.items()
                 if k.endswith(("_loss", "_acc")) and isinstance(v, (int, float))}
        # in this run's folder, not a sub-run as add_hparams does; and without the "experiment"
        # summary, which TensorBoard takes from one run of a study at random (an autoencoder's
        # then hides the classifiers' settings): without it, it joins every run's settings
        _, start, end = hparams(settings, final)
        for s in (start, end):
            self.writer.file_writer.add_summary(s)
        for key, value in final.items():
            self.writer.add_scalar(key, value, summary["epochs"])
        self.writer.close()


def log_finished_run(folder: RunFolder, data: Dataset) -> bool:
    """Write the events of a finished run that has none (it ran without ``--tensorboard``), or
    not all (stopped while writing them): its epochs from metrics.jsonl, its final figures
    from summary.json and one grid of reconstructions by its final model. False when the
    events were complete already."""
    need_tensorboard()
    scalars = logged_scalars(folder / folder.TENSORBOARD)
    if "final/val_loss" in scalars:  # ``close`` wrote them
        if tag("val_loss") in scalars:
            return False
        shutil.rmtree(folder / folder.TENSORBOARD)  # fashionae 0.3.0's flat tags and hparams: written anew
    cfg = folder.config()  # the grid's images: the first of the validation set, whatever its subset
    logger = TensorBoardLogger(folder, cfg, folder.load_model(), make_splits(data, cfg.train.val).val_x)
    logger(folder.metrics())
    logger.close(folder.summary())
    return True
