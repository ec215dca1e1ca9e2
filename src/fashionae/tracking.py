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
anything an earlier attempt wrote from there on. When the run ends, ``close`` writes what the
events still lack, whenever the run was stopped: the last epochs, the last epoch's grid (by
the final model, which is that epoch's), and the final figures and hparams once (a run trained
on with ``--extend`` keeps its shorter self's final figures, and its hparams become the longer
run's: TensorBoard would show the shorter run's settings beside the longer run's figures). A
grid due at an epoch the run was stopped after, before its events, is lost: that model is gone. A run that
finished without ``--tensorboard`` gets its events when a later command asks for them
(``log_finished_run``): every epoch from metrics.jsonl, the final figures from summary.json,
one grid by its final model.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from pathlib import Path

import torch

from .data import Dataset, make_splits
from .errors import UserError, require
from .files import atomic_write
from .runconfig import RunConfig
from .runfolder import RunFolder
from .settings import AUTOENCODER
from .training import to_inputs

IMAGES = 8        # fixed validation images shown with their reconstructions
IMAGE_EVERY = 5   # epochs between two grids (the first and the last epoch always have one)
LAYOUT = {"fashionae": {name: ["Multiline", [rf"^{name}/"]] for name in ("loss", "accuracy")}}  # one chart each
LAYOUT_TAG = "custom_scalars__config__"  # the tag TensorBoard's writer gives it
HPARAMS = "_hparams_/"  # how the tags of a run's settings as hparams start (torch's ``hparams``)


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


def logged_steps(path: Path) -> dict[str, list[int]]:
    """The steps a run's event files hold, by scalar or image tag, after earlier purges (none
    without the folder). A path that is no folder, or event files that cannot be read, are one
    line: the events are a view of metrics.jsonl, so the folder can go and be written again."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        if not path.is_dir():
            raise NotADirectoryError("not a folder")
        events = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0})
        events.Reload()
        tags = events.Tags()
        return {**{t: [e.step for e in events.Scalars(t)] for t in tags["scalars"]},
                **{t: [e.step for e in events.Images(t)] for t in tags["images"]},
                **{t: [e.step for e in events.Tensors(t)] for t in tags["tensors"]}}  # (the charts' layout)
    except Exception as e:  # OSError, or tensorboard's own errors on a damaged file
        raise UserError(f"{path} cannot hold this run's TensorBoard events ({e}); delete it: fashionae writes "
                        "them again from metrics.jsonl") from None


def refuse_unwritable_events(path: Path) -> None:
    """A run's TensorBoard folder that is there but takes no file (no permission, a read-only
    file system), said in one line before anything is written: tensorboard's writer would fail
    in a thread of its own, after an epoch, with a traceback."""
    if not path.is_dir():
        return  # (none yet: made in the run's folder, which the run writes in)
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UserError(f"{path} cannot hold this run's TensorBoard events (cannot write in it: {e.strerror or e}); "
                        "make it writable, or delete it: fashionae writes them again from metrics.jsonl") from None


class TensorBoardLogger:
    def __init__(self, folder: RunFolder, cfg: RunConfig, model: torch.nn.Module, val_images: torch.Tensor):
        self.path = folder / folder.TENSORBOARD
        refuse_unwritable_events(self.path)  # (before the run trains: the writer opens after its first epoch)
        self.cfg = cfg
        self.model = model
        self.images = val_images[:IMAGES]
        self.writer = None  # opened at the first epoch, when the history says where to start
        self.next_epoch = 1  # the first epoch whose figures are still to write
        self.grids: set[int] = set()  # the epochs whose grid the events hold
        self.final_logged = False  # whether they hold the final figures and hparams

    def _open(self, history: list[dict]) -> None:
        """Open the writer after the last epoch the events hold: or at the history's last epoch
        if they hold more (a run started over), hiding what they hold from there on."""
        from torch.utils.tensorboard import SummaryWriter
        steps = logged_steps(self.path)
        logged = (steps.get(tag("val_loss")) or [0])[-1]  # (none: events of fashionae 0.3.0 and before, or all purged)
        self.next_epoch = min(logged + 1, history[-1]["epoch"]) if history else logged + 1
        self.grids = {e for e in steps.get("reconstructions", []) if e < self.next_epoch}
        # at the run's last epoch, not purged: stopped after writing them, before summary.json
        self.final_logged = self.cfg.train.epochs in [e for e in steps.get("final/val_loss", []) if e < self.next_epoch]
        if not self.final_logged and steps.get("final/val_loss"):  # its shorter self's: --extend trains it on
            _drop_hparams(self.path)
        _after_the_last_events_file(self.path)
        self.writer = SummaryWriter(str(self.path), purge_step=self.next_epoch)
        if LAYOUT_TAG not in steps:  # (a stopped attempt's events hold it, unless it stopped before it was written)
            self.writer.add_custom_scalars(LAYOUT)

    def _write_rows(self, history: list[dict]) -> None:
        for row in history:
            if row["epoch"] >= self.next_epoch:
                for key, value in row.items():
                    if key != "epoch":
                        self.writer.add_scalar(tag(key), value, row["epoch"])
        self.next_epoch = max(self.next_epoch, history[-1]["epoch"] + 1)

    def _grid(self, epoch: int) -> None:
        self.writer.add_image("reconstructions", self.reconstructions(), epoch)
        self.grids.add(epoch)

    def __call__(self, history: list[dict]) -> None:
        if self.writer is None:
            self._open(history)
        self._write_rows(history)
        epoch = history[-1]["epoch"]
        if self.cfg.model.task == AUTOENCODER and (epoch == 1 or epoch % IMAGE_EVERY == 0
                                                      or epoch == self.cfg.train.epochs):
            self._grid(epoch)
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

    def close(self, summary: dict, history: list[dict]) -> None:
        """Write what the events lack of the finished run (its epochs, its last grid), then its
        settings as hparams with its final losses and accuracies, unless they hold them."""
        from torch.utils.tensorboard.summary import hparams
        if self.writer is None:  # a resumed run whose last epoch was already trained
            self._open([])
        self._write_rows(history)  # the epochs a stop between the checkpoint and the events left out
        if self.cfg.model.task == AUTOENCODER and history[-1]["epoch"] not in self.grids:
            self._grid(history[-1]["epoch"])  # by the final model: the last epoch's
        if self.final_logged:  # stopped after writing them, before summary.json
            self.writer.close()
            return
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


def _drop_hparams(path: Path) -> None:
    """Write the run's event files again without their hparams: those of the shorter run that
    ``--extend`` trains on, which TensorBoard's HParams tab would show beside the longer run's
    final figures (its epochs those of the shorter run). Every other event is kept as it was,
    in its order: the epochs, the grids, the purges of stopped attempts, and the shorter run's
    final figures, a point each on the final/ charts at its last epoch."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter
    for leftover in path.glob(".events.out.tfevents.*.tmp"):  # a rewrite a kill cut short (atomic_write's):
        leftover.unlink(missing_ok=True)  # TensorBoard reads every file whose name holds "tfevents"
    for events_file in sorted(path.glob("events.out.tfevents.*")):
        kept, dropped = io.BytesIO(), False
        for raw in RawEventFileLoader(str(events_file)).Load():
            event = Event.FromString(raw)
            if event.HasField("summary") and any(v.tag.startswith(HPARAMS) for v in event.summary.value):
                dropped = True
                continue
            RecordWriter(kept).write(raw)
        if dropped:
            atomic_write(events_file, kept.getvalue())


def _after_the_last_events_file(path: Path) -> None:
    """Wait, where an events file was made this very second, for the next: TensorBoard reads the
    files in the order of their names, which hold the second they were made in and then the
    process and a count that sort as text (".10" before ".9"), and a file read before an earlier
    one has its epochs purged as out of order (a resume within a second of the attempt it resumes)."""
    made = [int(p.name.split(".")[3]) for p in path.glob("events.out.tfevents.*") if p.name.split(".")[3].isdigit()]
    newest = max(made, default=0)
    while int(time.time()) <= newest <= time.time() + 2:  # (a file far ahead: another machine's clock, not waited for)
        time.sleep(max(0.0, newest + 1 - time.time()))


def log_finished_run(folder: RunFolder, data: Dataset) -> bool:
    """Write the events of a finished run that has none (it ran without ``--tensorboard``), or
    not all (stopped while writing them): its epochs from metrics.jsonl, its final figures
    from summary.json and one grid of reconstructions by its final model. False when the
    events were complete already."""
    need_tensorboard()
    steps = logged_steps(folder / folder.TENSORBOARD)
    history, cfg = folder.metrics(), folder.config()
    epochs, logged = [r["epoch"] for r in history], steps.get(tag("val_loss"), [])
    if logged == epochs and epochs[-1] in steps.get("final/val_loss", []) and (
            cfg.model.task != AUTOENCODER or epochs[-1] in steps.get("reconstructions", [])):
        return False
    if logged != epochs[:len(logged)] or ("final/val_loss" in steps and not logged):
        # events of another attempt, or fashionae 0.3.0's flat tags and hparams: written anew
        shutil.rmtree(folder / folder.TENSORBOARD)
    # the grid's images: the first of the validation set, whatever its subset
    logger = TensorBoardLogger(folder, cfg, folder.load_model(), make_splits(data, cfg.train.val).val_x)
    logger.close(folder.summary(), history)
    return True
