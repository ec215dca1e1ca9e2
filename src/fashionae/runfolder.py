"""A run folder: the one place that knows its layout, its settings and its model.

A run folder describes itself:
- ``config.json``: the run's settings (``runconfig.RunConfig``), the data it saw and its environment;
- ``metrics.jsonl``: one JSON object per epoch;
- ``model.safetensors``: the weights, with the model's settings in the metadata;
- ``summary.json``: final and best figures; written last, so its presence means "done";
- ``checkpoint.safetensors``: the training state while the run is unfinished (and after, with
  keep_state, for ``--extend``);
- ``explore/`` (``fashionae explore``) and ``tensorboard/`` (``--tensorboard``).

Everything else (training, the study, the report, ``fashionae.load``, the CLI) reaches these
files through ``RunFolder``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from pathlib import Path

import torch

from .checkpoint import checkpoint_epoch
from .data import CLASSES, FASHION_MNIST, Dataset, Splits
from .datasets import load_dataset
from .distributed import on_processes
from .errors import UserError
from .files import (atomic_write, holds_nothing, is_there, json_digest, kind_of, read_json, read_rebuildable_json,
                    remove_file, seal_broken, sealed, write_json, write_jsonl)
from .images import dataset_background, dataset_border, is_light, pictures_or_default, pictures_problem
from .lock import FolderLock, lock_holder
from .modelfile import load_model, write_model_file
from .progress import count
from .resumeline import resume_line_here, runs_fashionae
from .settings import CLASSIFIER, is_number
from .runconfig import RunConfig
from .training import TrainConfig

# What summary.json holds (written by ``runs.summarize``; read by results, the plan and the CLI):
# these figures for every run, and for a classifier its accuracies and confusion matrix too.
SUMMARY_FIGURES = ("epochs", "best_epoch", "train_loss", "train_eval_loss", "val_loss", "best_val_loss",
                   "test_loss", "seconds_total", "images_per_second")
CLASSIFIER_FIGURES = ("train_acc", "train_eval_acc", "val_acc", "best_val_acc", "best_val_acc_epoch", "test_acc")
EPOCH_FIGURES = ("epoch", "train_loss", "train_eval_loss", "val_loss", "seconds")  # every metrics.jsonl row
CLASSIFIER_EPOCH_FIGURES = ("train_acc", "train_eval_acc", "val_acc")
EXPLORE_FIGURES = ("latent", "fit_images", "knn_acc", "linear_probe_acc")  # what the report reads of explore.json


SEAL = "summary_sha256"  # summary.json's digest of the rest of itself (folders before 0.3.2: none)
SEALED_SINCE = (0, 3, 2)


def _version(text) -> tuple:
    """"0.3.2" -> (0, 3, 2); what is no version (a folder that did not record one) -> ()."""
    try:
        return tuple(int(part) for part in str(text).split(".")[:3])
    except ValueError:
        return ()


ENVIRONMENT_KINDS = {**dict.fromkeys(("fashionae", "torch", "python", "device", "precision", "cpu", "host",
                                      "platform", "executor", "gpu", "command"), str),
                     **dict.fromkeys(("threads", "processes"), int), "isa": list, "isa_caps": dict,
                     "git_commit": (str, type(None)), **dict.fromkeys(("cpu_kernels", "tf32", "deterministic"), bool)}
ENVIRONMENT_KIND_NAMES = {str: "text", int: "a whole number", list: "a list", dict: "a table",
                          (str, type(None)): "text or null", bool: "true or false"}


def _one_of_each_task(runs: list[Path]) -> str:
    """The first of ``runs`` of each task (an autoencoder, a classifier), named with it: the
    command that refused the folder may want either."""
    first = {}
    for path in runs:
        try:
            first.setdefault(RunFolder(path).config().model.task, path)
        except UserError:  # a run whose config.json cannot be read is not one to suggest
            continue
    if not first:
        return str(runs[0])
    return " or ".join(f"{path} ({'an' if task[0] in 'aeiou' else 'a'} {task})" for task, path in first.items())


def _is_run_config(raw) -> bool:
    """Whether a config.json's content is a run's settings as fashionae writes them: its settings'
    tables, in every one; the data's and environment's, where there, tables too."""
    return (isinstance(raw, dict) and isinstance(raw.get("model"), dict) and isinstance(raw.get("train"), dict)
            and all(isinstance(raw.get(k, {}), dict) for k in ("data", "environment")))


def data_record(data: Dataset, splits: Splits) -> dict:
    """What config.json records of the data a run sees (``RunFolder.data_record`` reads it back)."""
    return {"classes": list(data.classes), "image_size": list(data.image_size),
            "source": str(Path(data.folder).resolve()), "verified": data.verified,
            "train_size": len(splits.train_x), "val_size": len(splits.val_x), "test_size": len(splits.test_x),
            "val_indices_sha256": splits.val_indices_sha256,
            "border": dataset_border(splits.train_x), "background": dataset_background(splits.train_x)} | (
                {"pictures": data.pictures} if data.pictures else {})


def _settings(raw_config: dict) -> dict:
    """What summary.json seals of config.json: all but the record of where and how it ran,
    which a resumed run adds to."""
    return {k: v for k, v in raw_config.items() if k != "environment"}


def _summary_fault(summary, task: str) -> str | None:
    """What is wrong with a summary.json's content, or None."""
    if not isinstance(summary, dict):
        return "it is not a JSON object"
    figures = SUMMARY_FIGURES + (CLASSIFIER_FIGURES if task == CLASSIFIER else ())
    for key in figures:
        if not is_number(summary.get(key)):
            return f"{key!r} is {'missing' if key not in summary else 'not a number'}"
    if summary["epochs"] < 1:  # a finished run trained an epoch at least
        return "'epochs' is not a positive number"
    if task == CLASSIFIER:
        cm, worst = summary.get("confusion_matrix"), summary.get("most_confused")
        if not (isinstance(summary.get("per_class_acc"), list) and isinstance(cm, list)
                and all(isinstance(row, list) and len(row) == len(cm) for row in cm)
                and len(summary["per_class_acc"]) == len(cm)
                and isinstance(worst, dict) and {"true", "predicted", "count"} <= set(worst)):
            return "its per-class accuracy or confusion matrix is missing or malformed"
    return None


def epoch_figures(rows: list[dict]) -> dict:
    """The figures of summary.json that its epochs (metrics.jsonl's rows) decide: the last
    epoch's, and the best (the first lowest validation loss; a classifier's first highest
    validation accuracy too). ``runs.summarize`` writes them; ``metrics`` checks them."""
    last, best = rows[-1], min(rows, key=lambda r: r["val_loss"])
    figures = {"epochs": len(rows), "best_epoch": best["epoch"],
               "train_loss": last["train_loss"], "train_eval_loss": last["train_eval_loss"],
               "val_loss": last["val_loss"], "best_val_loss": best["val_loss"]}
    if "val_acc" in last:
        best_acc = max(rows, key=lambda r: r["val_acc"])
        figures.update(train_acc=last["train_acc"], train_eval_acc=last["train_eval_acc"], val_acc=last["val_acc"],
                       best_val_acc=best_acc["val_acc"], best_val_acc_epoch=best_acc["epoch"])
    return figures


def _disagreement(summary: dict, rows: list[dict]) -> str | None:
    """Where a (well-formed) summary.json says other figures than the epochs it summarises
    (metrics.jsonl's rows), or a confusion matrix other than its test accuracy; else None."""
    for key, value in epoch_figures(rows).items():
        if summary[key] != value and not (math.isnan(summary[key]) and math.isnan(value)):  # a diverged run's NaN
            return f"says {key} {summary[key]} where metrics.jsonl says {value}"
    if "test_acc" in summary and not math.isnan(summary["test_acc"]):  # (a diverged run's matrix is argmax's guess)
        cm = summary["confusion_matrix"]
        total = sum(map(sum, cm))
        if not math.isclose(sum(cm[i][i] for i in range(len(cm))) / max(total, 1), summary["test_acc"], abs_tol=1e-9):
            return ("has a confusion matrix that does not give its test accuracy, as fashionae 0.3.0 recorded "
                    "them under torchrun")
    return None


class RunFolder:
    CONFIG, METRICS, MODEL, SUMMARY = "config.json", "metrics.jsonl", "model.safetensors", "summary.json"
    CHECKPOINT, EXPLORE, TENSORBOARD = "checkpoint.safetensors", "explore", "tensorboard"
    EXPLORE_JSON = "explore.json"  # in EXPLORE, or in ``fashionae explore --out``
    EXPLORE_SEAL = "explore_sha256"  # explore.json's digest of the rest of itself (before 0.3.23: none)
    EXPLORE_START = ("run", "model_sha256")  # explore.json's keys once it has started, before its scores

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ---------------------------------------------------------- state

    def is_run(self) -> bool:
        return (self / self.CONFIG).is_file()

    def is_complete(self) -> bool:
        return (self / self.SUMMARY).is_file()

    def has_checkpoint(self) -> bool:
        """Whether the run's training state is here: an unfinished run's, to resume from, or a
        finished one's that kept it (keep_state), to train on. Something else by its name (a
        folder, a broken link) is refused: whether the run resumes is never a guess."""
        path = self / self.CHECKPOINT
        try:
            if is_there(path) and not path.is_file():
                raise UserError(f"{path} is {kind_of(path)}, not a training state; remove it (a finished run stays "
                                "as it is; an unfinished one then trains from epoch 1)")
            return path.is_file()
        except OSError as e:  # a link into a folder we may not enter
            raise UserError(f"cannot read {path}: {e.strerror}") from None

    def require(self, what: str = "") -> "RunFolder":
        """This folder, if it holds a finished run; UserError saying what is wrong otherwise."""
        name = f"{what} {self.path}" if what else str(self.path)
        if not self.path.is_dir():
            what = ("is a file" if self.path.exists() else "is a link that leads nowhere (to a path that does not "
                    "exist, or round a loop of links)" if self.path.is_symlink() else "does not exist")
            raise UserError(f"{name} {what}; give a fashionae run folder")
        if not self.is_run():
            self.refuse_lost_config(name)
            inside = sorted(f.parent for depth in ("*", "*/*") for f in self.path.glob(f"{depth}/{self.CONFIG}"))
            fix = (f"it holds runs: give one, such as {_one_of_each_task(inside)}" if inside else
                   "give a folder that train-ae, train-clf or a study wrote (a study's runs are in its runs/)")
            raise UserError(f"{name} is not a fashionae run folder (no {self.CONFIG}); {fix}")
        self.refuse_lost_summary()
        if not self.is_complete():
            if holder := lock_holder(self.path):
                host, pid = holder
                if host == platform.node():  # certain: that process runs
                    raise UserError(f"{name} is being trained by another fashionae process (pid {pid}); wait for "
                                    "it to finish")
                raise UserError(f"{name} has not finished training, and its lock names a process on another host "
                                f"(pid {pid} on {host}): wait for it to finish, or if that process is gone, "
                                f"{self._resume_it()}")
            raise UserError(f"{name} has not finished training (no {self.SUMMARY}); {self._resume_it()}")
        return self

    def _resume_it(self) -> str:
        """How to resume the unfinished run here: with the command it recorded (train-ae's,
        train-clf's; a study's runs resume with the study)."""
        try:
            env = self.environment()
        except UserError:  # damaged: said when the run is read
            env = {}
        processes, command = env.get("processes", 1), env.get("command")
        if not (isinstance(command, str) and runs_fashionae(command, "train-ae", "train-clf")):
            command = None  # (an edited record: never said as the line to run)
        under = f", {on_processes(processes)}," if processes != 1 and "torchrun" not in (command or "") else ""
        return f"run its command again{under} to resume it" + (f": {resume_line_here(command, self.path)}" if command else "")

    def refuse_lost_config(self, name: str, out: bool = False) -> None:
        """A folder holding a run's files but not its config.json: the run is there, its
        settings lost (deleted or moved). Given as a run, its summary says so too; as an --out
        (``out``), only the files of names no other tool writes (a folder of another's
        metrics.jsonl is no run: "holds no fashionae run" says it)."""
        files = (self.MODEL, self.CHECKPOINT) + (() if out else (self.SUMMARY,))
        if any((self / file).is_file() for file in files):
            raise UserError(f"{name} holds a run's files but not its {self.CONFIG}: it was deleted or moved; "
                            f"{self.restore}" + (", or choose another --out" if out else ""))

    def refuse_lost_summary(self) -> None:
        """A trained model with neither summary.json nor a checkpoint: its summary was deleted,
        and training it again would overwrite the model, so it is refused."""
        if not self.is_complete() and (self / self.MODEL).is_file() and not self.has_checkpoint():
            raise UserError(f"{self.path} holds a trained model but neither its {self.SUMMARY} nor a checkpoint to "
                            f"resume from: {self.SUMMARY} was deleted or moved; put it back, or {self.start_again} "
                            "to train it again")

    def state_for(self, cfg: RunConfig, extend: bool = False) -> str:
        """Whether this folder (train-ae's --out, or a study's runs/<run>) can hold ``cfg``'s run:
        'new', 'resume', 'complete', or 'extend' (``extend``: the run here, trained on for more
        epochs; see ``extends``). Refuses another run's folder (other settings) and a folder
        holding other files."""
        if not self.path.exists():
            return "new"
        if not self.path.is_dir():
            raise UserError(f"{self.path} exists and is not a folder; move it away, or choose another --out")
        if not self.is_run():
            self.refuse_lost_config(str(self.path), out=True)
            if not holds_nothing(self.path):
                raise UserError(f"{self.path} is not empty and holds no fashionae run; move its files away, "
                                "or choose an empty or new --out")
            return "new"
        diffs = self.differences(cfg)
        if diffs and self.holds_training():
            if self.extends(cfg, extend):
                return "extend"
            if self.fewer_epochs(cfg):
                asked = cfg.train.epochs
                raise UserError(f"{self.path} holds a finished run of {count(self.config().train.epochs, 'epoch')}, and {asked:,} "
                                f"{'is' if asked == 1 else 'are'} asked for: a run is trained on to more epochs, never "
                                "back to fewer; choose another --out, or delete it to start over")
            said = [self.in_words(d, cfg) for d in diffs[:3]]
            raise UserError(f"{self.path} holds a run with other settings ({'; '.join(said)}); "
                            "choose another --out, or delete it to start over")
        return "new" if diffs else self.progress()  # one stopped before its first epoch holds nothing to keep

    def extends(self, cfg: RunConfig, extend: bool) -> bool:
        """Whether ``cfg`` asks for the run here trained on to other epochs (``other_epochs``),
        all its other settings alike, and it can be (``why_not_extend``): trained on, it is the run
        of that many epochs from the start, bit for bit on the same threads. A run asked for other
        epochs that cannot be, or without ``extend``, is refused, saying why; False for any other
        difference."""
        if not self.other_epochs(cfg):
            return False
        held = f"{self.path} holds a run of {count(self.config().train.epochs, 'epoch')}"
        another = f"train a run of {count(cfg.train.epochs, 'epoch')} into another --out"
        if why := self.why_not_extend(cfg):
            stateless = not cfg.train.fitted_to_epochs and not self.has_checkpoint()
            later = " (with --keep-state, --extend can train it on later)" if stateless else ""
            raise UserError(f"{held} {why}; {another}{later}")  # later: the state was not kept
        if not extend:
            raise UserError(f"{held}, and {cfg.train.epochs} are asked for; add --extend to "
                            f"train it on to {cfg.train.epochs} from its training state, or choose another --out")
        return True

    def other_epochs(self, cfg: RunConfig, ignore=()) -> bool:
        """Whether ``cfg`` asks for the run here with other epochs, and no other setting changed
        (``ignore``: as for ``differences``): more than a finished run's, or any other number for
        one not finished (one stopped while trained on to a mistyped number can be aimed again;
        ``why_not_extend`` refuses fewer than it has trained)."""
        held = self.config().train.epochs
        other = cfg.train.epochs > held or (cfg.train.epochs != held and not self.is_complete())
        return other and not self.differences(cfg, ignore=("train.epochs", *ignore))

    def fewer_epochs(self, cfg: RunConfig, ignore=()) -> bool:
        """Whether ``cfg`` asks for the finished run here with fewer epochs, and no other setting
        changed (``ignore``: as for ``differences``): never trained on (``other_epochs``)."""
        return (cfg.train.epochs < self.config().train.epochs and self.is_complete()
                and not self.differences(cfg, ignore=("train.epochs", *ignore)))

    def why_not_extend(self, cfg: RunConfig) -> str | None:
        """Why the run here cannot be trained on to ``cfg``'s epochs (``other_epochs``), or None if
        it can: its schedule is constant (a one-cycle schedule is shaped by its epochs), its
        training state is here (kept by keep_state, or an unfinished run's checkpoint), and it has
        not trained more epochs than that."""
        if cfg.train.fitted_to_epochs:
            return (f"whose {cfg.train.schedule} schedule is fitted to its epochs: trained on, it would not be a run "
                    f"of {cfg.train.epochs} epochs")
        if not self.has_checkpoint():
            return "that did not keep its training state (Adam's moments, the random generators), which training it on needs"
        if (trained := self.epochs_trained()) > cfg.train.epochs:
            return f"that has trained {count(trained, 'epoch')} already: ask for {trained} or more"
        return None

    def epochs_trained(self) -> int:
        """The epochs its checkpoint holds (0 with none, or one it cannot read: what is wrong with
        it is said when the run starts)."""
        return checkpoint_epoch(self / self.CHECKPOINT)

    def holds_training(self) -> bool:
        """Whether the run here holds training to keep or go on from: its checkpoint, model or
        summary. One killed before its first epoch (by the system, out of memory) leaves only its
        settings, and one whose checkpoint was deleted (to restart it) only those and its epochs'
        figures: a run with other settings (other epochs) may replace either, from epoch 1."""
        return any((self / f).exists() for f in (self.CHECKPOINT, self.MODEL, self.SUMMARY))

    def progress(self) -> str:
        """'complete' or 'resume', for a folder that holds the run asked for. A finished run whose
        model file is gone, or whose files are damaged, is refused before anything trains: it
        can be neither kept nor resumed."""
        if not self.is_complete():
            self.refuse_lost_summary()
            self.has_checkpoint()  # something else by its name: said before anything trains
            return "resume"
        if not (self / self.MODEL).is_file():
            raise UserError(f"{self.path} finished training but its {self.MODEL} {self._model_gone('is gone')} "
                            "to train it again")
        self.metrics()  # and summary.json, and that the two agree
        self.load_model()
        return "complete"

    def started(self) -> TrainConfig | None:
        """The training settings of the run this folder holds, or None if it holds none (or none
        to go on from, ``holds_training``): what a resumed run keeps
        (``TrainConfig.resolved``)."""
        return self.config().train if self.is_run() and self.holds_training() else None

    def differences(self, cfg: RunConfig, ignore=(), asked: str = "now") -> list[str]:
        """How the run this folder holds differs from ``cfg`` in what ``cfg``'s run uses ("key: x
        there, y now"; [] if alike), the keys in ``ignore`` left out: a setting the model does not
        use changes nothing."""
        ours, theirs = cfg.used_identity(), self.config().identity()
        return [f"{k}: {theirs[k]!r} there, {ours[k]!r} {asked}" for k in ours
                if theirs[k] != ours[k] and k not in ignore]

    def in_words(self, diff: str, cfg: RunConfig) -> str:
        """A difference (``differences``') said in words where a digest would say nothing: this
        classifier's encoder is not the one it was trained on (``cfg``'s encoder, trained on or
        again since), and, where the encoder ran on other threads than the classifier (an encoder
        trained again), that it may come out the same on those."""
        if not diff.startswith("encoder_sha256:"):
            return diff
        encoder = RunFolder(cfg.encoder_run or "")
        said = f"trained on an earlier {encoder.path.name}"
        theirs = self.environment().get("threads")
        try:
            now = encoder.environment().get("threads")
        except UserError:
            return said
        if theirs and now and theirs != now:
            said += (f" (the new one ran on {count(now, 'thread')}, the classifier on {theirs}: deleted and "
                     f"trained again with OMP_NUM_THREADS={theirs}, it may come out as before)")
        return said

    def lock(self) -> FolderLock:
        return FolderLock(self.path, tidy=True)

    # ---------------------------------------------------------- reading

    def damaged(self, file: str, fault: str) -> UserError:
        """The error for one of this folder's files that fashionae did not write as it is."""
        return UserError(f"{self / file} {fault} (it was edited or damaged); {self.restore}")

    @property
    def start_again(self) -> str:
        """The last fix for a run folder that can be neither used nor resumed (its training is lost)."""
        return f"delete {self.path} and run its command again"

    @property
    def restore(self) -> str:
        """The fix for a file of the run damaged, replaced or lost: a copy of it first."""
        return f"put back a copy of it, or {self.start_again}"

    def raw_config(self) -> dict:
        """config.json as written: the settings' tables, and the data and environment recorded."""
        raw = read_json(self / self.CONFIG, "run settings", self.restore)
        if not _is_run_config(raw):
            raise self.damaged(self.CONFIG, "is not a run's settings as fashionae writes them")
        return raw

    def holds_a_run(self) -> bool:
        """Whether its config.json is one fashionae wrote, readable (another tool's is not)."""
        return _is_run_config(read_rebuildable_json(self / self.CONFIG))

    def environment(self) -> dict:
        """How and where the run was made, as config.json records it (its last session's)."""
        env = self.raw_config().get("environment", {})
        self._check_environment(env)
        return env

    def sessions(self) -> list[dict]:
        """The sessions config.json records, first to last: the earlier ones a resumed run keeps
        (``earlier_sessions``), then the last one's environment."""
        env = self.environment()
        earlier = env.get("earlier_sessions", [])
        if not isinstance(earlier, list) or not all(isinstance(s, dict) for s in earlier):
            raise self.damaged(self.CONFIG, "records earlier sessions that are not a list of records")
        for session in earlier:
            self._check_environment(session)
        return [*earlier, {k: v for k, v in env.items() if k != "earlier_sessions"}]

    def _check_environment(self, env: dict) -> None:
        """Refuse a recorded environment whose known entries are not of their kind (it is not
        sealed: the report lists and sorts them); an entry of a later version passes."""
        for key, kind in ENVIRONMENT_KINDS.items():
            if key in env and (not isinstance(env[key], kind) or (kind is int and isinstance(env[key], bool))):
                raise UserError(f"{self / self.CONFIG} records its environment's {key} as "
                                f"{json.dumps(env[key])[:40]}, not {ENVIRONMENT_KIND_NAMES[kind]} (it was edited or "
                                f"damaged); give it back {ENVIRONMENT_KIND_NAMES[kind]} (what the report shows of "
                                f"where the run was made), or {self.start_again}")

    def data_record(self) -> dict:
        """The data the run saw, as config.json records it: source, sizes, classes, split digest."""
        return self.raw_config().get("data", {})

    def config(self) -> RunConfig:
        raw = self.raw_config()
        try:
            return RunConfig.from_dict(raw)
        except (TypeError, UserError) as e:
            raise UserError(f"{self / self.CONFIG} holds settings this fashionae cannot read ({e}); it was written "
                            f"by another version, or edited: {self.restore}, or read it with the version that "
                            "wrote it") from None

    def classes(self) -> tuple[str, ...]:
        """The class names of the data the run saw (Fashion-MNIST's for folders from before); a
        classifier's are as many as its classes."""
        classes = self.data_record().get("classes", CLASSES)
        if not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes):
            raise self.damaged(self.CONFIG, "records class names that are not a list of names")
        model = self.config().model
        if model.task == CLASSIFIER and len(classes) != model.num_classes:
            raise self.damaged(self.CONFIG, f"names {len(classes)} classes but the model has {model.num_classes}")
        return tuple(classes)

    def pictures(self) -> dict:
        """How pictures given to the run are prepared ({"invert", "fill"}): as its dataset's were, where
        a dataset made of pictures recorded it; else as Fashion-MNIST's were."""
        pictures = self.data_record().get("pictures", {})
        if problem := pictures_problem(pictures):
            raise self.damaged(self.CONFIG, f"records how its dataset's pictures were prepared wrongly ([pictures]: "
                                            f"{problem})")
        return pictures_or_default(pictures)

    def dataset_levels(self) -> dict[str, float]:
        """Its training images' border levels (``images.dataset_border``): ``border``, up to which a
        picture of their size is in their form (down to which, on light backgrounds), and
        ``background``, their median; 0 (black, as Fashion-MNIST's) for a run from before 0.3.29,
        whose runs on light backgrounds recorded no border (0): white, theirs."""
        levels = {k: self.data_record().get(k, 0.0) for k in ("border", "background")}
        for k, level in levels.items():
            if not (is_number(level) and 0 <= level <= 255):
                raise self.damaged(self.CONFIG, f"records its images' {k} level as {level!r}, not a number of "
                                                "0 to 255")
        if is_light(levels["background"]) and levels["border"] == 0:  # (0.3.29's: 0.3.30 writes 115 or more)
            levels["border"] = 255.0
        return {k: float(level) for k, level in levels.items()}

    def levels_unknown(self) -> bool:
        """Whether the run's dataset is its own and it records no border levels of it (a run from
        before 0.3.29): its pictures are prepared as for a dark background, Fashion-MNIST's."""
        return self.config().dataset_sha256 is not None and "background" not in self.data_record()

    def load_data(self, data_dir: str | None = None, verify: bool = True) -> Dataset:
        """The data the run was trained on, loaded again: Fashion-MNIST (``data_dir`` as for
        training), or your own dataset from the folder it was in (``data_dir``: where it is
        now), refused if its files changed since."""
        cfg = self.config()
        if cfg.dataset_sha256 is None:  # only your own datasets have a digest
            return load_dataset(FASHION_MNIST, data_dir, verify)
        trained_in = self.data_record().get("source")
        if data_dir and not Path(data_dir).is_dir():
            raise UserError(f"--data-dir {data_dir} is not a folder; give the folder where {cfg.dataset} is now "
                            f"({self.path} was trained on it in {trained_in})")
        source = data_dir or trained_in
        if not isinstance(source, str) or not source or not Path(source).is_dir():
            raise UserError(f"{self.path} was trained on {cfg.dataset} in {source}, which is not there "
                            "now; pass --data-dir with the folder where that dataset is")
        data = load_dataset(source, verify=verify)
        if data.sha256 != cfg.dataset_sha256:
            raise UserError(f"the data files in {source} are not the ones {self.path} was trained on "
                            "(their SHA-256 differ); pass --data-dir with the folder of that dataset")
        return data

    def metrics(self) -> list[dict]:
        """metrics.jsonl, one row per epoch trained so far, each with its epoch's figures; a
        finished run has one row per epoch of its summary."""
        path = self / self.METRICS
        try:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            rows = []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # (nested past the stack)
            raise UserError(f"{path} is unreadable ({e}); {self.restore}") from None
        if rows:
            keys = EPOCH_FIGURES + (CLASSIFIER_EPOCH_FIGURES if self.config().model.task == CLASSIFIER else ())
            if not all(isinstance(r, dict) and all(is_number(r.get(k)) for k in keys) for r in rows):
                raise self.damaged(self.METRICS, f"holds a row without an epoch's figures ({', '.join(keys)})")
            if [r["epoch"] for r in rows] != list(range(1, len(rows) + 1)):
                raise self.damaged(self.METRICS, "does not number its epochs 1, 2, 3, … in order")
        if self.is_complete():
            summary = self.summary()
            if len(rows) != summary["epochs"]:
                raise self.damaged(self.METRICS, f"holds {len(rows)} epochs where {self.SUMMARY} says "
                                                 f"{summary['epochs']}")
            if fault := _disagreement(summary, rows):
                raise self.damaged(self.SUMMARY, fault)
            if "metrics_sha256" in summary and summary["metrics_sha256"] != json_digest(rows):
                raise self.damaged(self.METRICS, f"holds other epochs than those the run finished with (their digest "
                                                 f"is in {self.SUMMARY})")
        return rows

    def summary(self) -> dict:
        """summary.json, checked to hold every figure of a finished run of its task, and against
        the digests it records (``write_summary``) of itself and of config.json."""
        summary = read_json(self / self.SUMMARY, "run summary", self.restore)
        if fault := _summary_fault(summary, self.config().model.task):
            raise self.damaged(self.SUMMARY, f"does not hold a finished run's figures: {fault}")
        if SEAL not in summary and _version(self.environment().get("fashionae")) >= SEALED_SINCE:
            raise self.damaged(self.SUMMARY, "lacks the digests its fashionae version seals it with")
        if seal_broken(summary, SEAL):
            raise self.damaged(self.SUMMARY, "does not match the digest it records")
        if "config_sha256" in summary and summary["config_sha256"] != json_digest(_settings(self.raw_config())):
            raise self.damaged(self.CONFIG, f"holds other settings than those the run finished with (their digest "
                                            f"is in {self.SUMMARY})")
        return summary

    def _model_gone(self, gone: str) -> str:
        """What model.safetensors is where it is no file (``gone``, or a folder, a broken link, a
        device in its place), and what to do."""
        if not is_there(self / self.MODEL):
            return f"{gone}; {self.restore}"
        return f"is {kind_of(self / self.MODEL)}; remove it, then {self.restore}"

    def load_model(self, device: str = "cpu") -> torch.nn.Module:
        """The trained model, checked against the run's settings, in eval mode."""
        if not (self / self.MODEL).is_file():
            raise UserError(f"{self / self.MODEL} {self._model_gone('is missing')}")
        try:
            model = load_model(self / self.MODEL)
        except UserError as e:
            raise UserError(f"{e} ({self.restore})") from None
        if model.config != self.config().model:
            raise UserError(f"{self / self.MODEL} does not match the settings in {self / self.CONFIG}: one of "
                            f"them was edited or replaced; put back a copy of the one replaced, or {self.start_again}")
        recorded = self.summary().get("model_sha256") if self.is_complete() else None  # (older runs: none)
        if recorded is not None and recorded != self.model_sha256():
            raise UserError(f"{self / self.MODEL} is not the model this run trained (its SHA-256 differs from the one "
                            f"{self.SUMMARY} records): it was replaced; {self.restore}")
        return model.to(device)

    def model_sha256(self) -> str:
        return hashlib.sha256((self / self.MODEL).read_bytes()).hexdigest()

    def explore_json(self) -> Path:
        return self / self.EXPLORE / self.EXPLORE_JSON

    def explored(self, tsne: bool) -> bool:
        """Whether explore/ holds the latent space of the model here, mapped with t-SNE or without as
        ``tsne`` says (not where there is none, it was damaged or edited, it is of the model before
        --extend trained it on, or ``fashionae explore`` mapped it otherwise since)."""
        result = self.explore_result()
        return (result is not None and result.get("model_sha256") in (None, self.model_sha256())  # None: older runs
                and self.mapped_as_asked(result, tsne))

    @staticmethod
    def mapped_as_asked(result: dict, tsne: bool) -> bool:
        """Whether an explore result was mapped with t-SNE or without as ``tsne`` says (one written
        before 0.3.21 does not say, and is taken as it is)."""
        return result.get("tsne", tsne) == tsne

    def explore_result(self) -> dict | None:
        """explore/explore.json as ``fashionae explore`` writes it: its scores, and figures that
        are files beside it. None when there is none, or when it was damaged or edited (see
        ``explore_damaged``): ``fashionae explore`` and the study write it again."""
        result = read_rebuildable_json(self.explore_json())
        figures = (result or {}).get("figures")
        if (result is None or seal_broken(result, self.EXPLORE_SEAL)
                or not all(is_number(result.get(k)) for k in EXPLORE_FIGURES)
                or not isinstance(figures, list)
                or not all(isinstance(f, str) and Path(f).name == f and (self / self.EXPLORE / f).is_file()
                           for f in figures)):
            return None
        return result

    def explore_fault(self) -> str | None:
        """Why explore/ gives no latent space (``explore_result`` is None), as a sentence's end,
        or None where it gives one."""
        if self.explore_result() is not None:
            return None
        if not self.explore_json().is_file():
            return "is missing (the study was stopped before it mapped the run, or it was deleted)"
        written = read_rebuildable_json(self.explore_json())
        if isinstance(written, dict) and written and set(written) <= set(self.EXPLORE_START):
            return "holds no scores: the latent space was stopped before it was finished"
        return "is damaged or was edited"

    # ---------------------------------------------------------- writing

    def write_config(self, cfg: RunConfig, data: dict, environment: dict, keep_sessions: bool = False) -> None:
        """config.json: the run's settings, ``data_record``'s record of its data, and the environment
        of this session, after those of the sessions recorded before with ``keep_sessions`` (a
        resumed run's: the epochs it keeps ran in them)."""
        if keep_sessions:
            environment = {**environment, "earlier_sessions": self.sessions()}
        write_json(self / self.CONFIG, {**cfg.to_dict(), "data": data, "environment": environment})

    def write_metrics(self, history: list[dict]) -> None:
        write_jsonl(self / self.METRICS, history)

    def write_model(self, model: torch.nn.Module) -> None:
        atomic_write(self / self.MODEL, lambda staged: write_model_file(staged, model))

    def write_summary(self, summary: dict) -> dict:
        """Finish the run: its summary, sealed with the digests of the model file, of config.json,
        of metrics.jsonl's epochs and of itself, so that a file edited or replaced afterwards is
        refused (``summary``, ``metrics``, ``load_model``), not reported. Returns what it wrote."""
        summary = sealed({**summary, "model_sha256": self.model_sha256(),
                          "config_sha256": json_digest(_settings(self.raw_config())),
                          "metrics_sha256": json_digest(self.metrics())}, SEAL)
        write_json(self / self.SUMMARY, summary)
        return summary

    def drop_training_state(self) -> None:
        """A finished run holds its training state (the checkpoint) only where it asked to keep it
        (keep_state, --keep-state, for ``--extend``): otherwise it goes."""
        if not self.config().train.keep_state and self.has_checkpoint():  # none: nothing written
            remove_file(self / self.CHECKPOINT)

    def reopen(self) -> None:
        """Make the finished run here unfinished, to be trained on (``--extend``): its summary, then
        its model go (the longer run's are written at its end); its metrics and checkpoint stay.
        Stopped, it is then a run that resumes, or, its checkpoint deleted, trains from epoch 1."""
        remove_file(self / self.SUMMARY)
        remove_file(self / self.MODEL)
