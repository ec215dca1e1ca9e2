"""A study: a TOML file naming autoencoders, a classifier stage and baselines, run as a
set of ordinary run folders, then gathered into ``results.json`` and a report.

A study file has top-level tables (``train``, ``model``, ``autoencoders``, ``classifiers``,
``baselines``) and named ``profiles``; a profile is a partial study deep-merged over the
top level (tables merge, other values replace). Every key is checked: a typo is an error,
never silently ignored.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .baselines import compute_baselines
from .data import load_fashion_mnist, make_splits
from .errors import UserError
from .files import FolderLock, read_json, write_json
from .models import ModelConfig
from .runs import STRATEGIES, RunConfig, execute, read_run
from .training import TrainConfig

TOP_KEYS = {"name", "description", "seeds", "train", "model", "autoencoders", "classifiers",
            "baselines", "profiles", "profile_note", "default_profile", "targets", "explore"}
EXPLORE_KEYS = {"autoencoders", "tsne"}
TARGET_KEYS = {"autoencoder", "val_mse", "classifier", "test_acc"}
AE_KEYS = {"name", "train"} | {"arch", "latent", "decoder", "encoder_type", "dropout", "dropout_after_pool"}
CLF_KEYS = {"encoder", "strategies", "paper_head", "train"}
BASELINE_KEYS = {"enabled", "logreg_max_iter", "train_subset"}


@dataclass
class AutoencoderSpec:
    name: str
    model: ModelConfig
    train: TrainConfig


@dataclass
class ClassifierStage:
    encoders: list[str]               # autoencoder names, or "best" (lowest mean val MSE)
    strategies: list[str]
    paper_head: bool
    train: TrainConfig


@dataclass
class Study:
    name: str
    profile: str
    description: str
    profile_note: str
    seeds: list[int]
    autoencoders: list[AutoencoderSpec]
    classifiers: ClassifierStage | None
    baselines: dict | None
    resolved: dict = field(repr=False)  # the merged study dict, as written to study.json


# ------------------------------------------------------------------ loading

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _check_keys(table, allowed: set, where: str, source: str) -> None:
    if not isinstance(table, dict):
        raise UserError(f"study file {source}: {where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise UserError(f"study file {source}: unknown key {sorted(unknown)[0]!r} in {where}; "
                        f"known keys: {', '.join(sorted(allowed))}")


def _train(d: dict, where: str, source: str) -> TrainConfig:
    _check_keys(d, set(TrainConfig.__dataclass_fields__), where, source)
    try:
        return TrainConfig(**d).validate()
    except (UserError, TypeError) as e:
        raise UserError(f"study file {source}: {where}: {e}") from None


def load_study(path: str | Path, profile: str | None = None, seeds: int | None = None,
               train_overrides: dict | None = None) -> Study:
    path = Path(path)
    source = path.name
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"study file {path} does not exist; see studies/ for examples") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read study file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"study file {path} is not valid TOML ({e})") from None
    _check_keys(raw, TOP_KEYS, "the top level", source)
    profiles = raw.get("profiles", {})
    _check_keys(profiles, set(profiles), "[profiles]", source)
    profile = profile or raw.get("default_profile") or ("quick" if "quick" in profiles else "")
    if profile and profile not in profiles:
        raise UserError(f"study file {source} has no profile {profile!r}; "
                        f"choose one of {', '.join(profiles) or '(none)'}")
    base = {k: v for k, v in raw.items() if k != "profiles"}
    merged = deep_merge(base, profiles[profile]) if profile else base
    _check_keys(merged, TOP_KEYS - {"profiles"}, f"profile {profile!r}", source)
    if seeds is not None:
        merged["seeds"] = seeds
    if train_overrides:
        merged["train"] = {**merged.get("train", {}), **train_overrides}
    if "profile_note" in merged and not isinstance(merged["profile_note"], str):
        raise UserError(f"study file {source}: profile_note must be a string")

    n_seeds = merged.get("seeds", 1)
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or not 1 <= n_seeds <= 100:
        raise UserError(f"study file {source}: seeds must be an integer from 1 to 100, got {n_seeds!r}")
    base_train = merged.get("train", {})
    _train(base_train, "[train]", source)
    base_model = merged.get("model", {})
    _check_keys(base_model, AE_KEYS - {"name", "train"}, "[model]", source)

    autoencoders = []
    entries = merged.get("autoencoders", [])
    if not isinstance(entries, list) or not entries:
        raise UserError(f"study file {source}: [[autoencoders]] must list at least one autoencoder")
    for i, entry in enumerate(entries):
        where = f"autoencoders[{i}]"
        _check_keys(entry, AE_KEYS, where, source)
        if not isinstance(entry.get("name"), str) or not entry["name"].replace("-", "").isalnum():
            raise UserError(f"study file {source}: {where} needs a name of letters, digits and '-'")
        model_keys = {**base_model, **{k: v for k, v in entry.items() if k not in ("name", "train")}}
        try:
            model = ModelConfig(task="autoencoder", **model_keys).validate()
        except (UserError, TypeError) as e:
            raise UserError(f"study file {source}: {where}: {e}") from None
        train = _train({**base_train, **entry.get("train", {})}, f"{where}.train", source)
        autoencoders.append(AutoencoderSpec(entry["name"], model, train))
    names = [a.name for a in autoencoders]
    if len(set(names)) != len(names):
        raise UserError(f"study file {source}: two autoencoders share a name")

    classifiers = None
    if "classifiers" in merged:
        c = merged["classifiers"]
        _check_keys(c, CLF_KEYS, "[classifiers]", source)
        encoders = encoder_list(c)
        if not isinstance(encoders, list) or not encoders:
            raise UserError(f"study file {source}: [classifiers] encoder must be a name or a list of names")
        for encoder in encoders:
            if encoder != "best" and encoder not in names:
                raise UserError(f"study file {source}: [classifiers] encoder {encoder!r} is not trained "
                                f"by any autoencoder of the study (known: {', '.join(names)}, or \"best\")")
        strategies = c.get("strategies", list(STRATEGIES))
        if not isinstance(strategies, list) or not strategies or any(s not in STRATEGIES for s in strategies):
            raise UserError(f"study file {source}: [classifiers] strategies must be a list drawn "
                            f"from {', '.join(STRATEGIES)}")
        if not isinstance(c.get("paper_head", False), bool):
            raise UserError(f"study file {source}: [classifiers] paper_head must be true or false")
        train = _train({**base_train, **c.get("train", {})}, "[classifiers.train]", source)
        classifiers = ClassifierStage(encoders, strategies, c.get("paper_head", False), train)

    targets = merged.get("targets", {})
    _check_keys(targets, TARGET_KEYS, "[targets]", source)
    if targets.get("autoencoder", names[0]) not in names:
        raise UserError(f"study file {source}: [targets] autoencoder {targets['autoencoder']!r} is "
                        "not an autoencoder of the study")

    explore = merged.get("explore", {})
    _check_keys(explore, EXPLORE_KEYS, "[explore]", source)
    if any(n not in names for n in explore.get("autoencoders", [])):
        raise UserError(f"study file {source}: [explore] autoencoders must name autoencoders of the study")

    baselines = None
    b = merged.get("baselines", {})
    _check_keys(b, BASELINE_KEYS, "[baselines]", source)
    if b.get("enabled", True):
        baselines = {"logreg_max_iter": b.get("logreg_max_iter", 200),
                     "train_subset": b.get("train_subset", base_train.get("train_subset"))}

    name = merged.get("name", path.stem)
    return Study(name=name, profile=profile or "default", description=merged.get("description", ""),
                 profile_note=merged.get("profile_note", ""), seeds=list(range(n_seeds)),
                 autoencoders=autoencoders, classifiers=classifiers, baselines=baselines,
                 resolved={**merged, "name": name, "profile": profile or "default"})


# ------------------------------------------------------------------ planning and running

def ae_folder(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / f"ae-{name}-seed{seed}"


def clf_folder(out: Path, strategy: str, seed: int, encoder: str | None = None) -> Path:
    """``clf-<strategy>-seed<k>``; with several encoders, ``clf-<encoder>-<strategy>-seed<k>``."""
    tag = f"{encoder}-{strategy}" if encoder else strategy
    return out / "runs" / f"clf-{tag}-seed{seed}"


def encoder_list(classifiers: dict):
    """The [classifiers] encoder setting as a list (one name may be given alone)."""
    encoders = classifiers.get("encoder", "best")
    return [encoders] if isinstance(encoders, str) else encoders


def classifier_plan(encoders: list[str], mean_val: dict[str, float]) -> list[tuple[str, str | None]]:
    """(encoder name, folder tag) for each encoder of the classifier stage; "best" is the
    autoencoder with the lowest mean validation MSE. One encoder keeps the short names."""
    best = min(mean_val, key=mean_val.get)
    names = list(dict.fromkeys(best if e == "best" else e for e in encoders))
    return [(name, name if len(names) > 1 else None) for name in names]


class Progress:
    """Which run, which epoch, and the time left, estimated from the images processed."""

    def __init__(self, total_units: float):
        self.total, self.done = total_units, 0.0
        self.start = time.perf_counter()
        self.measured_units, self.measured_seconds = 0.0, 0.0

    def epoch(self, units: float, seconds: float) -> str:
        self.done += units
        self.measured_units += units
        self.measured_seconds += seconds
        left = (self.total - self.done) * self.measured_seconds / max(self.measured_units, 1e-9)
        return f"{100 * self.done / self.total:3.0f}% done, about {_duration(left)} left"

    def skip(self, units: float) -> None:
        self.done += units


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _units(t: TrainConfig, n_train: int) -> float:
    return t.epochs * min(n_train, t.train_subset or n_train)


def mean_val_mse(out: Path, names: list[str], seeds: list[int]) -> dict[str, float]:
    return {n: statistics.mean(read_run(ae_folder(out, n, s))["summary"]["val_loss"] for s in seeds)
            for n in names}


def check_out(out: Path, study: Study) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} is not a folder; choose another --out")
    marker = out / "study.json"
    if marker.is_file():
        old = read_json(marker, "study description")
        if old != study.resolved:
            what = f"study {old.get('name')!r}, profile {old.get('profile')!r}"
            raise UserError(f"--out {out} holds another study ({what}, or other settings); "
                            "choose another --out, or delete it to start over")
    elif any(p.name != ".lock" for p in out.iterdir()):
        raise UserError(f"--out {out} is not empty and holds no fashionae study; choose another --out")


def run_study(study: Study, out: str | Path, data_dir: str | None = None, verify: bool = True,
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
              command: str | None = None) -> dict:
    """Run every unfinished run of the study, then write results.json and the report."""
    from .report import write_report
    out = Path(out)
    check_out(out, study)
    with FolderLock(out):
        write_json(out / "study.json", study.resolved)
        t_start = time.perf_counter()
        data = load_fashion_mnist(data_dir, verify)
        n_train = 50_000 if study.autoencoders[0].train.val == "holdout" else 60_000
        total = sum(_units(a.train, n_train) for a in study.autoencoders) * len(study.seeds)
        if study.classifiers:
            c = study.classifiers
            total += (_units(c.train, n_train) * len(c.strategies) * len(study.seeds)
                      * len(set(c.encoders)))
        progress = Progress(total)
        stage_seconds = {}

        def run(cfg: RunConfig, folder: Path, label: str) -> None:
            units_per_epoch = _units(cfg.train, n_train) / cfg.train.epochs
            if (folder / "summary.json").is_file():
                progress.skip(units_per_epoch * cfg.train.epochs)
            execute(cfg, folder, data=data, label=label, log=log,
                    on_epoch=lambda row: progress.epoch(units_per_epoch, row["seconds"]))

        t0 = time.perf_counter()
        for spec in study.autoencoders:
            for seed in study.seeds:
                cfg = RunConfig(model=spec.model, train=_with_seed(spec.train, seed))
                run(cfg, ae_folder(out, spec.name, seed), f"ae-{spec.name} seed {seed}")
        stage_seconds["autoencoders"] = time.perf_counter() - t0

        if study.classifiers:
            t0 = time.perf_counter()
            c = study.classifiers
            mean_val = mean_val_mse(out, [a.name for a in study.autoencoders], study.seeds)
            for encoder, tag in classifier_plan(c.encoders, mean_val):
                for strategy in c.strategies:
                    for seed in study.seeds:
                        cfg = RunConfig(model=ModelConfig(task="classifier", paper_head=c.paper_head),
                                        train=_with_seed(c.train, seed), strategy=strategy,
                                        encoder_run=str(ae_folder(out, encoder, seed)))
                        folder = clf_folder(out, strategy, seed, tag)
                        run(cfg, folder, f"{folder.name.rsplit('-seed', 1)[0]} seed {seed}")
            stage_seconds["classifiers"] = time.perf_counter() - t0

        explore = study.resolved.get("explore", {})
        if explore.get("autoencoders"):
            from .explore import explore as explore_run
            t0 = time.perf_counter()
            for name in explore["autoencoders"]:
                folder = ae_folder(out, name, study.seeds[0])
                if not (folder / "explore" / "explore.json").is_file():
                    log(f"explore: latent space of ae-{name} (maps, k-NN, linear probe)")
                    with FolderLock(folder):
                        explore_run(folder, data=data, tsne=explore.get("tsne", True))
            stage_seconds["explore"] = time.perf_counter() - t0

        if study.baselines is not None:
            t0 = time.perf_counter()
            settings = {**study.baselines, "val": study.autoencoders[0].train.val}
            path = out / "baselines.json"
            if not path.is_file() or read_json(path).get("settings") != settings:
                log("baselines: PCA, mean image, logistic regression on pixels")
                splits = make_splits(data, settings["val"], settings["train_subset"])
                b = compute_baselines(splits, logreg_max_iter=settings["logreg_max_iter"])
                write_json(path, {**b, "settings": settings})
            stage_seconds["baselines"] = time.perf_counter() - t0

        wall = time.perf_counter() - t_start
        previous = read_json(out / "timing.json") if (out / "timing.json").is_file() else {}
        write_json(out / "timing.json", {"last_invocation_seconds": wall, "stages": stage_seconds,
                                         "invocations": previous.get("invocations", 0) + 1,
                                         "command": command})
        results = collect_results(out)
        report = write_report(out, results, data_dir, verify)
    stages = ", ".join(f"{k} {_duration(v)}" for k, v in stage_seconds.items())
    log(f"study {study.name} ({study.profile}) finished in {_duration(wall)} ({stages}); report: {report}")
    return results


def reached_targets(out: Path, resolved: dict, autoencoders: list, classifiers: list) -> list[dict]:
    """For each target of the study file: reached or not, and when — in training seconds
    into the study (the runs' epoch times added up in the study's order, seed 0), so a
    resumed study reports the same figure."""
    targets = resolved.get("targets", {})
    if not targets:
        return []
    elapsed, out_rows = 0.0, []
    for entry in autoencoders + classifiers:
        is_ae = entry in autoencoders
        run = read_run(out / entry["runs"][0])
        rows = run["metrics"]
        if is_ae and entry["name"] == targets.get("autoencoder") and "val_mse" in targets:
            goal, t, hit = targets["val_mse"], elapsed, None
            for r in rows:
                t += r["seconds"]
                if r["val_loss"] <= goal:
                    hit = (r["epoch"], t)
                    break
            out_rows.append({"target": f"{entry['name']} val MSE <= {goal}", "reached": hit is not None,
                             "epoch": hit[0] if hit else None, "seconds_into_study": hit[1] if hit else None,
                             "best": min(r["val_loss"] for r in rows)})
        if not is_ae and entry["strategy"] == targets.get("classifier") and "test_acc" in targets \
                and not any(r["target"].startswith(entry["strategy"] + " ") for r in out_rows):
            goal = targets["test_acc"]
            t = elapsed + sum(r["seconds"] for r in rows)
            hit = run["summary"]["test_acc"] >= goal
            out_rows.append({"target": f"{entry['strategy']} test accuracy >= {goal}", "reached": hit,
                             "epoch": len(rows) if hit else None, "seconds_into_study": t if hit else None,
                             "best": run["summary"]["test_acc"]})
        elapsed += sum(r["seconds"] for r in rows)
    return out_rows


def _with_seed(t: TrainConfig, seed: int) -> TrainConfig:
    return TrainConfig(**{**asdict(t), "seed": seed})


# ------------------------------------------------------------------ results

# results.json figure -> summary.json key; each becomes {"mean", "std", "values"} over seeds.
# Train figures are the ones re-measured in eval mode; "_train_mode" ones were averaged in training.
AE_FIGURES = {"train_mse": "train_eval_loss", "train_mse_train_mode": "train_loss", "val_mse": "val_loss",
              "best_val_mse": "best_val_loss", "test_mse": "test_loss", "best_epoch": "best_epoch",
              "seconds": "seconds_total"}
CLF_FIGURES = {"train_acc": "train_eval_acc", "train_acc_train_mode": "train_acc", "val_acc": "val_acc",
               "best_val_acc": "best_val_acc", "test_acc": "test_acc", "seconds": "seconds_total"}


def _figures(summaries: list[dict], table: dict) -> dict:
    return {name: _stats([s[key] for s in summaries]) for name, key in table.items()}


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def collect_results(out: str | Path) -> dict:
    """results.json, from the study folder's study.json and run folders alone."""
    from .reference import REFERENCE
    out = Path(out)
    resolved = read_json(out / "study.json", "study description")
    n_seeds = resolved.get("seeds", 1)
    seeds = list(range(n_seeds))
    autoencoders = []
    for entry in resolved["autoencoders"]:
        folders = [ae_folder(out, entry["name"], s) for s in seeds]
        runs = [read_run(f) for f in folders]
        m = runs[0]["config"]["model"]
        summaries = [r["summary"] for r in runs]
        autoencoders.append({
            "name": entry["name"], "runs": [str(f.relative_to(out)) for f in folders], "arch": m["arch"],
            "latent": m["latent"] if m["arch"] == "linear" else None,
            "decoder": m["decoder"], "encoder_type": m["encoder_type"], "seeds": seeds,
            **_figures(summaries, AE_FIGURES), "epochs": summaries[0]["epochs"],
            "explore": (read_json(folders[0] / "explore" / "explore.json")
                        if (folders[0] / "explore" / "explore.json").is_file() else None),
        })
    classifiers = []
    if "classifiers" in resolved:
        c = resolved["classifiers"]
        mean_val = {a["name"]: a["val_mse"]["mean"] for a in autoencoders}
        for encoder, tag in classifier_plan(encoder_list(c), mean_val):
            for strategy in c.get("strategies", list(STRATEGIES)):
                folders = [clf_folder(out, strategy, s, tag) for s in seeds]
                runs = [read_run(f) for f in folders]
                summaries = [r["summary"] for r in runs]
                classifiers.append({
                    "name": f"{encoder}/{strategy}" if tag else strategy, "strategy": strategy,
                    "encoder": encoder, "seeds": seeds, "runs": [str(f.relative_to(out)) for f in folders],
                    "paper_head": runs[0]["config"]["model"]["paper_head"],
                    **_figures(summaries, CLF_FIGURES), "epochs": summaries[0]["epochs"],
                    "most_confused": summaries[0]["most_confused"],
                })
    baselines = read_json(out / "baselines.json") if (out / "baselines.json").is_file() else {}
    from .claims import assess_claims
    results = {"study": resolved["name"], "profile": resolved["profile"],
               "description": resolved.get("description", ""),
               "profile_note": resolved.get("profile_note", ""),
               "classifier_encoders": list(dict.fromkeys(c["encoder"] for c in classifiers)),
               "autoencoders": autoencoders, "classifiers": classifiers,
               "baselines": baselines, "reference": REFERENCE}
    results["claims"] = assess_claims(results)
    results["targets"] = reached_targets(out, resolved, autoencoders, classifiers)
    write_json(out / "results.json", results)
    return results
