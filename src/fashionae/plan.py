"""What a study runs: one ``PlannedRun`` per autoencoder × seed and per classifier × seed.

``make_plan(study)`` lists every run of a study with its resolved settings and the runs it
waits for (a classifier waits for its encoder's autoencoder; "best" waits for every
autoencoder it compares); ``resolve`` fills in a classifier's encoder once it is trained.
What each run's folder holds, and what is refused before training, is ``preflight``'s; carrying
the runs out, ``executors``' (and ``ray_executor``'s).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import Collection

from .errors import UserError
from .runconfig import RunConfig
from .runs import classifier_from_encoder, classifier_model
from .settings import AUTOENCODER, CLASSIFIER
from .study import BEST, Study
from .studyfolder import StudyFolder


@dataclass
class PlannedRun:
    name: str                      # its folder: OUT/runs/<name>
    kind: str                      # autoencoder | classifier
    group: str                     # its row in results.json: the autoencoder or "<encoder>/<strategy>"
    seed: int
    config: RunConfig              # a classifier's without its encoder_run: ``resolve`` gives it
    encoder: str | None = None     # classifier: the autoencoder's name, or "best"
    needs: tuple[str, ...] = ()    # runs that must be finished first

    @property
    def label(self) -> str:
        return f"{self.name.removesuffix(_seed_suffix(self.seed))} seed {self.seed}"

    def awaits_encoder(self, states: dict[str, str]) -> bool:
        """A finished classifier kept while an encoder it needs (for "best", one it compares) trains
        again or on: judged by that encoder's digest once it has (``plan_states``)."""
        return (self.kind == CLASSIFIER and states[self.name] == "complete"
                and any(states[n] != "complete" for n in self.needs))


def _seed_suffix(seed: int) -> str:
    return f"-seed{seed}"


def stem_and_seed(name: str) -> tuple[str, int] | None:
    """A run folder's name (``ae_run_name``, ``clf_run_name``) split into the part its seeds share
    and its seed; None for a name of no run of a study."""
    stem, cut, seed = name.rpartition(_seed_suffix(""))
    return (stem, int(seed)) if cut and stem and seed.isascii() and seed.isdigit() else None


def ae_run_name(name: str, seed: int) -> str:
    """An autoencoder's run folder: ``ae-<name>-seed<k>``."""
    return f"ae-{name}{_seed_suffix(seed)}"


def explored_run(study: Study, name: str) -> str:
    """The run whose latent space [explore] maps for autoencoder ``name``: its first seed's, the
    one whose figures the report shows (``results``: the first run of its group); once, as the
    section's minutes are spent once."""
    return ae_run_name(name, study.seeds[0])


def clf_run_name(strategy: str, seed: int, encoder: str | None = None) -> str:
    """A classifier's run folder: ``clf-<strategy>-seed<k>``, or ``clf-<encoder>-<strategy>-seed<k>``
    where a study's classifier stage names several encoders."""
    return f"clf-{encoder + '-' if encoder else ''}{strategy}{_seed_suffix(seed)}"


def make_plan(study: Study) -> list[PlannedRun]:
    """Every run of the study in an order that respects dependencies (folders: ``ae_run_name``,
    ``clf_run_name``)."""
    plan = []
    for spec in study.autoencoders:
        for seed in study.seeds:
            plan.append(PlannedRun(ae_run_name(spec.name, seed), AUTOENCODER, spec.name, seed,
                                   RunConfig(model=spec.model, train=replace(spec.train, seed=seed),
                                             dataset=study.dataset)))
    c = study.classifiers
    if c:
        models = {a.name: a.model for a in study.autoencoders}
        for encoder in c.encoders:
            for strategy in c.strategies:
                for seed in study.seeds:
                    compared = [a.name for a in study.autoencoders] if encoder == BEST else [encoder]
                    needs = tuple(ae_run_name(n, s) for n in compared
                                  for s in (study.seeds if encoder == BEST else [seed]))
                    # the encoder's settings as far as they are known before it is trained
                    # ("best" is chosen later; the first autoencoder stands in for it): what
                    # --plan shows and the time probe measures
                    model = classifier_model(models.get(encoder, study.autoencoders[0].model), c.paper_head)
                    cfg = RunConfig(model=model,
                                    train=replace(c.train, seed=seed), strategy=strategy,
                                    dataset=study.dataset)
                    name = clf_run_name(strategy, seed, encoder if c.several_encoders else None)
                    plan.append(PlannedRun(name, CLASSIFIER,
                                           c.group(encoder, strategy), seed,
                                           cfg, encoder, needs))
    names = [r.name for r in plan]
    if twice := sorted({n for n in names if names.count(n) > 1}):  # e.g. "a" + "random-frozen", "a-random" + "frozen"
        raise UserError(f"study {study.name}: two of its runs would share the folder {twice[0]}; rename one of the "
                        "autoencoders whose names it joins")
    return plan


def best_encoder(study: Study, folder: StudyFolder) -> str:
    """The autoencoder with the lowest mean validation MSE over the study's seeds (a tie: the first
    of the study file, as ``min`` keeps it); one whose seed diverged (NaN) is never chosen over
    one that did not (NaN compares false both ways: first in the file, it would win)."""
    mean_val = {a.name: statistics.mean(folder.run(ae_run_name(a.name, s)).summary()["val_loss"]
                                        for s in study.seeds) for a in study.autoencoders}
    return min(mean_val, key=lambda name: (math.isnan(mean_val[name]), mean_val[name]))


def resolve(run: PlannedRun, study: Study, folder: StudyFolder) -> RunConfig:
    """The run's settings with its encoder's folder filled in (once the encoder is trained)."""
    if run.kind != CLASSIFIER:
        return run.config
    encoder = best_encoder(study, folder) if run.encoder == BEST else run.encoder
    return replace(run.config, encoder_run=str(folder.run(ae_run_name(encoder, run.seed)).path))


def known_config(run: PlannedRun, study: Study, folder: StudyFolder,
                 changed: Collection[str] = ()) -> tuple[RunConfig, bool]:
    """A run's settings as far as they are known now, and whether they are final: a classifier's
    come from its encoder's run once the autoencoders it needs are finished (and not
    ``changed``: to be trained again). Until then its planned settings stand in: its encoder's,
    or for "best", which is not chosen yet, the first autoencoder's."""
    if run.kind == CLASSIFIER:
        if any(n in changed or not folder.run(n).is_complete() for n in run.needs):
            return run.config, run.encoder != BEST
        return classifier_from_encoder(resolve(run, study, folder))[0], True
    return run.config, True
