"""A run's settings: ``RunConfig`` (its model's, its training's, a classifier's strategy and
encoder, its dataset), what of them is its identity (what must match to resume a folder, or to
compare two runs), and the classifier strategies. ``RunFolder`` writes it as config.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import settings
from .data import FASHION_MNIST
from .models import ModelConfig
from .training import TrainConfig

STRATEGIES = ("frozen", "finetune", "scratch", "random-frozen")
FROM_TRAINED_ENCODER = ("frozen", "finetune")  # the strategies that start from an autoencoder's encoder
FROZEN_ENCODER = ("frozen", "random-frozen")   # those whose encoder does not learn
CONTROL = "random-frozen"  # a random encoder, frozen: what "frozen" must beat to show the encoder learned

# how a run was carried out rather than what it trained: the hardware, the dropout masks'
# generator, the memory layout, bit-reproducibility (each moves its numbers as a seed does)
CARRIED_OUT = ("train.device", "train.dropout_masks", "train.channels_last", "train.deterministic")
# what differs by seed, or only re-measures the train loss
NOT_TRAINED_WITH = ("train.seed", "encoder_sha256", "train.train_eval_subset", *CARRIED_OUT)
# what a frozen encoder does not run: it trains in eval mode (but under the author's paper head)
INERT_WHEN_FROZEN = ("model.dropout", "model.dropout_after_pool")


@dataclass
class RunConfig:
    """A run's settings. Its identity (what must match to resume a folder) is every setting
    that changes its numbers: see ``identity``."""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: str | None = None        # classifier: frozen | finetune | scratch | random-frozen
    encoder_run: str | None = None     # classifier: the autoencoder run its encoder comes from
    encoder_sha256: str | None = None  # ... and the SHA-256 of that run's model.safetensors
    dataset: str = FASHION_MNIST       # the dataset's name
    dataset_sha256: str | None = None  # a digest of your own dataset's files (None: Fashion-MNIST)

    @property
    def encoder_name(self) -> str:
        """The name of the run folder its encoder comes from ("" for an autoencoder): a study's
        run name, wherever the study's folder is now."""
        return Path(self.encoder_run or "").name

    def identity(self) -> dict:
        """The settings that change the run's numbers, flat. The encoder's location and the
        settings declared ``identity=False`` (trackers) are left out."""
        flat = {f"model.{k}": v for k, v in settings.identity(self.model).items()}
        flat.update({f"train.{k}": v for k, v in settings.identity(self.train).items()})
        flat.update(strategy=self.strategy, encoder_sha256=self.encoder_sha256,
                    dataset=self.dataset, dataset_sha256=self.dataset_sha256)
        return flat

    def unused(self) -> set[str]:
        """The keys of ``identity`` whose settings this run does not use (``ModelConfig.unused``,
        the other kind of run's training settings, and the encoder's weights where the strategy
        takes only its architecture)."""
        unused = {f"model.{k}" for k in self.model.unused()} | {
            f"train.{k}" for k in settings.unused(self.train, self.model.task)}
        if self.strategy is not None and self.strategy not in FROM_TRAINED_ENCODER:
            unused.add("encoder_sha256")
        return unused

    def used_identity(self) -> dict:
        """``identity`` without the settings this run does not use: what sets two runs apart."""
        unused = self.unused()
        return {k: v for k, v in self.identity().items() if k not in unused}

    def trained_with(self) -> dict:
        """What the run's model is trained with, its seed aside: ``used_identity`` less what
        differs by seed (the seed, a classifier's encoder's digest), what only re-measures and
        ``CARRIED_OUT``, and a frozen encoder's dropout, which it does not run (``INERT_WHEN_FROZEN``;
        kept in its identity: a kept folder's layers follow it). Two runs with the same differ as
        two seeds do: what an ablation compares."""
        inert = INERT_WHEN_FROZEN if self.strategy in FROZEN_ENCODER and not self.model.paper_head else ()
        return {k: v for k, v in self.used_identity().items() if k not in NOT_TRAINED_WITH + inert}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From config.json; keys a folder written before a setting existed lacks read as what
        it did then (``settings.from_dict``)."""
        return cls(model=ModelConfig.from_dict(d["model"]), train=TrainConfig.from_dict(d["train"]),
                   strategy=d.get("strategy"), encoder_run=d.get("encoder_run"),
                   encoder_sha256=d.get("encoder_sha256"), dataset=d.get("dataset", FASHION_MNIST),
                   dataset_sha256=d.get("dataset_sha256"))
