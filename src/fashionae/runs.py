"""A run: its settings, its folder, and the code that carries it out.

A run folder describes itself:
- ``config.json``: every resolved setting, plus versions, device, precision, git commit;
- ``metrics.jsonl``: one JSON object per epoch;
- ``model.safetensors``: the weights, with the model's settings in the metadata;
- ``summary.json``: final and best figures; written last, so its presence means "done";
- ``checkpoint.safetensors``: the training state while the run is unfinished.
``train-ae``, ``train-clf`` and ``study`` all go through ``execute``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import __version__
from .data import CLASSES, FashionMNIST, load_fashion_mnist, make_splits
from .errors import UserError
from .files import FolderLock, read_json, write_json, write_jsonl, atomic_write
from .models import ModelConfig, build_model, load_model, load_weights, model_file_bytes
from .training import TrainConfig, evaluate, fit, progress_bar, seed_everything, to_inputs

STRATEGIES = ("frozen", "finetune", "scratch", "random-frozen")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: str | None = None        # classifier: frozen | finetune | scratch | random-frozen
    encoder_run: str | None = None     # classifier: the autoencoder run its encoder comes from
    encoder_sha256: str | None = None  # ... and the SHA-256 of that run's model.safetensors

    def settings(self) -> dict:
        """What must match for a folder's run to be resumed (its location may change)."""
        d = asdict(self)
        d.pop("encoder_run")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(model=ModelConfig.from_dict(d["model"]), train=TrainConfig.from_dict(d["train"]),
                   strategy=d.get("strategy"), encoder_run=d.get("encoder_run"),
                   encoder_sha256=d.get("encoder_sha256"))


def git_commit() -> str | None:
    """The commit fashionae runs from, with "+dirty" when its files were changed since."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        return (commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(cfg: TrainConfig) -> dict:
    env = {"fashionae": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "device": cfg.device, "precision": cfg.precision, "threads": torch.get_num_threads(),
           "platform": platform.platform(), "git_commit": git_commit()}
    if cfg.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    return env


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_complete(folder: Path) -> bool:
    return (folder / "summary.json").is_file()


def read_run(folder: str | Path) -> dict:
    """config, metrics and summary of a finished run folder."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a fashionae run folder (no config.json)")
    if not is_complete(folder):
        raise UserError(f"run {folder} is not finished (no summary.json); run its command again "
                        "to resume it")
    metrics = [l for l in (folder / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return {"config": read_json(folder / "config.json", "run settings"),
            "metrics": [json.loads(l) for l in metrics],
            "summary": read_json(folder / "summary.json", "run summary"), "folder": folder}


# ------------------------------------------------------------------ building

def classifier_from_encoder(cfg: RunConfig) -> tuple[RunConfig, dict[str, torch.Tensor] | None]:
    """Resolve a classifier run's model settings from ``--encoder`` and return the
    encoder's weights when the strategy starts from them."""
    if cfg.strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {cfg.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cfg.encoder_run is None:
        if cfg.strategy in ("frozen", "finetune"):
            raise UserError(f"strategy {cfg.strategy} starts from a trained encoder: pass "
                            "--encoder AE_RUN_DIR")
        return cfg, None
    folder = Path(cfg.encoder_run)
    if not folder.is_dir():
        raise UserError(f"--encoder {folder} does not exist; give an autoencoder run folder")
    ae_config = read_json(folder / "config.json", "run settings") if (folder / "config.json").is_file() else None
    if ae_config is None or "model" not in ae_config:
        raise UserError(f"--encoder {folder} is not a fashionae run folder (no config.json)")
    if ae_config["model"].get("task") != "autoencoder":
        raise UserError(f"--encoder {folder} is a {ae_config['model'].get('task')} run; give an "
                        "autoencoder run folder")
    model_path = folder / "model.safetensors"
    if not is_complete(folder):
        raise UserError(f"--encoder {folder} has not finished training (no summary.json)")
    ae = load_model(model_path)
    if ae.config != ModelConfig.from_dict(ae_config["model"]):
        raise UserError(f"{model_path} does not match the settings in {folder / 'config.json'}")
    m = ae.config
    clf_model = ModelConfig(task="classifier", arch=m.arch, latent=m.latent, encoder_type=m.encoder_type,
                            dropout=m.dropout, dropout_after_pool=m.dropout_after_pool,
                            paper_head=cfg.model.paper_head)
    resolved = RunConfig(model=clf_model, train=cfg.train, strategy=cfg.strategy,
                         encoder_run=str(folder.resolve()), encoder_sha256=file_sha256(model_path))
    weights = ae.encoder.state_dict() if cfg.strategy in ("frozen", "finetune") else None
    return resolved, weights


def build(cfg: RunConfig, encoder_weights=None) -> torch.nn.Module:
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model)
    if encoder_weights is not None:
        load_weights(model.encoder, encoder_weights, cfg.encoder_run or "encoder")
    if cfg.strategy in ("frozen", "random-frozen"):
        model.freeze_encoder()
    return model.to(cfg.train.device)


# ------------------------------------------------------------------ running

def prepare_folder(out: Path, cfg: RunConfig) -> str:
    """Check ``out`` can hold this run: 'new', 'resume' or 'complete'. Never overwrites
    another run's files."""
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder; choose another --out")
    if not (out / "config.json").is_file():
        if any(p.name != ".lock" for p in out.iterdir()):
            raise UserError(f"--out {out} is not empty and holds no fashionae run; choose an empty "
                            "or new folder")
        return "new"
    old = read_json(out / "config.json", "run settings")
    ours, theirs = _flatten(cfg.settings()), _flatten({k: old.get(k) for k in cfg.settings()})
    diffs = [f"{k}: {theirs.get(k)!r} there, {ours[k]!r} now" for k in ours if theirs.get(k) != ours[k]]
    if diffs:
        raise UserError(f"--out {out} holds a run with other settings ({'; '.join(diffs[:3])}); "
                        "choose another --out, or delete it to start over")
    return "complete" if is_complete(out) else "resume"


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[prefix + k] = v
    return flat


def execute(cfg: RunConfig, out: str | Path, data: FashionMNIST | None = None,
            data_dir: str | None = None, verify: bool = True, label: str = "",
            log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
            on_epoch: Callable[[dict], str] | None = None) -> dict:
    """Train (or resume, or skip if finished) one run in ``out``; return its summary.
    ``on_epoch(row)`` may return a note appended to each epoch's log line."""
    out = Path(out)
    cfg.train = cfg.train.validate().resolved()
    cfg.model.validate()
    encoder_weights = None
    if cfg.model.task == "classifier":
        cfg, encoder_weights = classifier_from_encoder(cfg)
    state = prepare_folder(out, cfg)
    if state == "complete":
        log(f"{label or out}: already finished, kept as is")
        return read_json(out / "summary.json", "run summary")

    with FolderLock(out):
        state = prepare_folder(out, cfg)  # again, now that no other process can write here
        if state == "complete":
            return read_json(out / "summary.json", "run summary")
        if data is None:
            data = load_fashion_mnist(data_dir, verify)
        t = cfg.train
        splits = make_splits(data, t.val, t.train_subset, t.eval_subset)
        write_json(out / "config.json", {**asdict(cfg), "environment": environment(t)})
        model = build(cfg, encoder_weights)
        checkpoint = out / "checkpoint.safetensors"
        if state == "resume" and checkpoint.exists():
            log(f"{label or out}: resuming from its last finished epoch")

        def after_epoch(history: list[dict]) -> None:
            write_jsonl(out / "metrics.jsonl", history)
            row = history[-1]
            acc = f"  val_acc {row['val_acc']:.4f}" if "val_acc" in row else ""
            note = f"  [{on_epoch(row)}]" if on_epoch else ""
            log(f"{label or out} epoch {row['epoch']}/{t.epochs}: train {row['train_loss']:.5f}  "
                f"train(eval) {row['train_eval_loss']:.5f}  val {row['val_loss']:.5f}{acc}  "
                f"{row['seconds']:.1f}s  {row['train_images_per_second']:.0f} img/s{note}")

        history = fit(model, (splits.train_x, splits.train_y), (splits.val_x, splits.val_y), t,
                      checkpoint=checkpoint, on_epoch=after_epoch,
                      progress=progress_bar(f"{label or out.name} training"))
        write_jsonl(out / "metrics.jsonl", history)
        summary = summarize(model, history, splits, t)
        atomic_write(out / "model.safetensors", model_file_bytes(model))
        write_json(out / "summary.json", summary)
        checkpoint.unlink(missing_ok=True)
    return summary


def summarize(model, history: list[dict], splits, t: TrainConfig) -> dict:
    device = torch.device(t.device)
    best = min(history, key=lambda r: r["val_loss"])
    last = history[-1]
    test = evaluate(model, to_inputs(splits.test_x, device), splits.test_y.to(device), t,
                    predictions=True)
    train_seconds = sum(len(splits.train_x) / r["train_images_per_second"] for r in history)
    summary = {
        "epochs": len(history), "best_epoch": best["epoch"],
        "train_loss": last["train_loss"], "train_eval_loss": last["train_eval_loss"],
        "val_loss": last["val_loss"], "best_val_loss": best["val_loss"], "test_loss": test["loss"],
        "seconds_total": sum(r["seconds"] for r in history),
        "images_per_second": len(splits.train_x) * len(history) / train_seconds,
    }
    if "acc" in test:
        best_acc = max(history, key=lambda r: r["val_acc"])
        cm = torch.zeros(10, 10, dtype=torch.int64)
        cm.index_put_((splits.test_y, test["predictions"]), torch.ones_like(splits.test_y), accumulate=True)
        per_class = (cm.diag().double() / cm.sum(1).clamp(min=1)).tolist()
        off = cm.clone().fill_diagonal_(0)
        i, j = divmod(int(off.argmax()), 10)
        summary.update({
            "train_acc": last["train_acc"], "train_eval_acc": last["train_eval_acc"],
            "val_acc": last["val_acc"], "best_val_acc": best_acc["val_acc"],
            "best_val_acc_epoch": best_acc["epoch"], "test_acc": test["acc"],
            "per_class_acc": per_class, "confusion_matrix": cm.tolist(),
            "most_confused": {"true": CLASSES[i], "predicted": CLASSES[j], "count": int(off[i, j])},
        })
    return summary
