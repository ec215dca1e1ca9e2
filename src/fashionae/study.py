"""A study: a TOML file naming autoencoders, a classifier stage, baselines, a latent-space
section and targets, loaded into one typed ``Study``.

A study file has top-level tables (``train``, ``model``, ``autoencoders``, ``classifiers``,
``baselines``, ``explore``, ``targets``) and named ``profiles``; a profile is a partial study
deep-merged over the top level (tables merge, other values replace). Every key is checked: a
typo is an error, never silently ignored. The keys an autoencoder or ``[train]`` takes are
the fields of ``ModelConfig`` and ``TrainConfig`` (``settings.keys``).

``Study.to_dict()`` is the fully resolved study (every run's settings spelled out), written
to ``OUT/study.json``; ``Study.from_dict`` reads it back through the same checks, so a study
folder is self-describing (``studyfolder.py`` knows the folder's files). ``fashionae study``
loads the file here; ``pipeline.run_study`` does the rest (docs/architecture.md walks through it).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import settings
from .data import FASHION_MNIST
from .datasets import garbles_a_line
from .errors import UserError
from .files import RUNS, is_utf16
from .models import ModelConfig
from .runconfig import STRATEGIES, RunConfig
from .settings import (AUTOENCODER, CLASSIFIER, boolean, integer_in, number_in, optional_positive_int,
                       positive_int, setting)
from .training import TrainConfig

SEEDS = integer_in(1, 100)  # the check of a study's number of seeds
SET_BY_THE_STUDY = "seed"  # a train setting the study sets, each run once per seed: never in a file
NAME_MAX = 64  # an autoencoder's name, in its runs' folder names (of 255 bytes at most, on most file systems)
TOP_KEYS = {"name", "description", "seeds", "dataset", "train", "model", "autoencoders", "classifiers", "ablation",
            "baselines", "profiles", "profile_note", "default_profile", "targets", "explore", "profile"}
AE_KEYS = settings.keys(ModelConfig, AUTOENCODER) | {"name", "train"}
AE_TRAIN_KEYS = settings.keys(TrainConfig, AUTOENCODER)  # what an autoencoder's [train] takes
CLF_KEYS = {"encoder", "strategies", "train"} | (settings.keys(ModelConfig, CLASSIFIER)
                                                - settings.keys(ModelConfig, AUTOENCODER))


BUNDLED = Path(__file__).parent / "studies"  # the study files that come with the package


def bundled_studies() -> list[str]:
    """The names of the bundled study files, each enough to run it: ``fashionae study paper``."""
    return sorted(f.stem for f in BUNDLED.glob("*.toml"))


def study_file(given: str) -> Path:
    """The study file a command line names: a path, or, where no file has it, the name of a
    bundled study, as given (``paper``; ``./paper`` is a path): an installed package has no
    repository's studies/."""
    if given in bundled_studies() and not Path(given).is_file():
        return BUNDLED / f"{given}.toml"
    return Path(given)


def bundled_note(given: str) -> str | None:
    """What a command says when ``given`` names a bundled study: which file it runs, and a copy
    of it beside, if any, that it does not; None for a path."""
    if (path := study_file(given)) == Path(given):
        return None
    yours = Path(f"{given}.toml")
    return f"the bundled study {given} ({path})" + (
        f"; {yours} here is another file: give its name with .toml to run it"
        if yours.is_file() and not yours.samefile(path) else "; copy it to change it")


RUN_WITH = " (Run with --seeds "  # what a profile's note says after it, where --seeds differs from the profile's


def kept_words_note(study: "Study", source: str) -> str | None:
    """What a study file copied from a bundled one (a template) under a name of its own is told
    where it kept that one's description or a profile's note: the report prints them as its own."""
    if study.name in bundled_studies():
        return None
    for name in bundled_studies():
        theirs = tomllib.loads((BUNDLED / f"{name}.toml").read_text(encoding="utf-8"))
        notes = [p.get("profile_note") for p in theirs.get("profiles", {}).values() if p.get("profile_note")]
        kept = [key for key, text, same in (("description", study.description, [theirs.get("description")]),
                                            ("profile_note", study.profile_note, notes))  # (--seeds: said after it)
                if text and any(isinstance(t, str) and (text == t or text.startswith(t + RUN_WITH)) for t in same)]
        if kept:
            return (f"{source} keeps the {' and the '.join(kept)} of the bundled study {name}, which the report prints "
                    f"as this study's ({study.name}): say what yours is there")
    return None


def _examples() -> str:
    return f"give a study file, or the name of a bundled one: {', '.join(bundled_studies())}"


BEST = "best"  # a classifier encoder: the autoencoder of lowest mean validation MSE, chosen once trained


def _identity(spec) -> dict:
    """What sets an autoencoder's runs apart from another's of the same seed: every setting that
    changes its numbers (``used_identity``; trained_with leaves out some that do, dropout_masks)."""
    identity = RunConfig(model=spec.model, train=spec.train).used_identity()
    return {k: v for k, v in identity.items() if k != "train.seed"}


@dataclass
class AutoencoderSpec:
    name: str
    model: ModelConfig
    train: TrainConfig

    def trained_with(self) -> dict:
        """What its runs are trained with, their seed aside: what an ablation line compares."""
        return RunConfig(model=self.model, train=self.train).trained_with()


@dataclass
class ClassifierStage:
    encoders: list[str]               # autoencoder names, or "best" (lowest mean val MSE)
    strategies: list[str]
    paper_head: bool
    train: TrainConfig

    @property
    def several_encoders(self) -> bool:
        """Whether the encoder is named in its groups and run folders."""
        return len(self.encoders) > 1

    def group(self, encoder: str, strategy: str) -> str:
        """The name of one encoder's strategy: its row in results.json and the report, and what
        a target names. The strategy alone with one encoder, else "<encoder>/<strategy>"."""
        return f"{encoder}/{strategy}" if self.several_encoders else strategy

    def groups(self) -> list[str]:
        return [self.group(e, s) for e in self.encoders for s in self.strategies]


def _optional_fraction(v) -> str | None:
    return None if v is None else number_in(0, 1, closed_low=False, closed_high=True)(v)


def _optional_name(v) -> str | None:
    return None if v is None or isinstance(v, str) else f"must be a name, got {v!r}"


def _names(v) -> str | None:
    ok = isinstance(v, list) and all(isinstance(n, str) for n in v)
    return None if ok else f"must be a list of names, got {v!r}"


@dataclass
class Baselines:
    enabled: bool = setting(True, check=boolean)
    logreg_max_iter: int = setting(200, check=positive_int)
    train_subset: int | None = setting(None, check=optional_positive_int)  # default: [train]'s
    eval_subset: int | None = setting(None, check=optional_positive_int)  # default: [train]'s


@dataclass
class Explore:
    autoencoders: list = setting([], check=_names)  # the latent-space section, on seed 0
    tsne: bool = setting(True, check=boolean)


@dataclass
class Targets:
    """What a profile aims to reach, judged on validation figures only."""
    autoencoder: str | None = setting(None, check=_optional_name)
    val_mse: float | None = setting(None, check=_optional_fraction)
    classifier: str | None = setting(None, check=_optional_name)  # a ClassifierStage.group
    val_acc: float | None = setting(None, check=_optional_fraction)


@dataclass
class Comparison:
    """One line of an ablation: what changing ``baseline`` into ``variant`` (two autoencoders
    of the study that differ in one part of the protocol) does to their MSE."""
    change: str = setting("", check=lambda v: None if isinstance(v, str) and v else "must name the change")
    baseline: str = setting("", check=_optional_name)
    variant: str = setting("", check=_optional_name)


@dataclass
class Study:
    name: str
    profile: str
    description: str
    profile_note: str
    seeds: list[int]
    dataset: str
    autoencoders: list[AutoencoderSpec]
    classifiers: ClassifierStage | None
    baselines: Baselines
    explore: Explore
    targets: Targets
    ablation: list[Comparison]

    @property
    def val(self) -> str:
        return self.autoencoders[0].train.val

    @property
    def default_folder(self) -> Path:
        """Its folder where no --out is given: runs/<name>-<profile>, shared by every study file of
        that name (a copy that kept it)."""
        return Path(RUNS) / f"{self.name}-{self.profile}"

    def twins(self) -> list[list[str]]:
        """The groups of autoencoders alike in every setting but their names, in the file's order:
        on the same seeds they train the same models, once each (said, not refused: the study
        runs as written)."""
        groups: list[tuple[dict, list[str]]] = []  # (identity, names)
        for a in self.autoencoders:
            identity = _identity(a)
            names = next((names for seen, names in groups if seen == identity), None)
            if names is None:
                groups.append((identity, names := []))
            names.append(a.name)
        return [names for _, names in groups if len(names) > 1]

    def to_dict(self) -> dict:
        """The resolved study, as a study file without profiles (what study.json holds)."""
        d = {"name": self.name, "profile": self.profile, "description": self.description,
             "profile_note": self.profile_note, "seeds": len(self.seeds), "dataset": self.dataset,
             "autoencoders": [{"name": a.name, **_only(a.model, AE_KEYS),
                               "train": _only(a.train, AE_TRAIN_KEYS)}
                              for a in self.autoencoders],
             "baselines": asdict(self.baselines), "explore": asdict(self.explore),
             "targets": {k: v for k, v in asdict(self.targets).items() if v is not None},
             "ablation": [asdict(c) for c in self.ablation]}
        if self.classifiers:
            c = self.classifiers
            d["classifiers"] = {"encoder": c.encoders, "strategies": c.strategies,
                                "paper_head": c.paper_head, "train": asdict(c.train)}
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "study.json") -> "Study":
        return parse_study(d, source, d.get("profile", "default"), by_hand=False)


def _only(cfg, allowed: set) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k in allowed}


# ------------------------------------------------------------------ loading

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _home(key: str, own_train: set) -> str:
    """Where a study file takes ``key``, said for a key put in the wrong table ("" if nowhere):
    a training setting that a table's own train takes (``own_train``: an autoencoder's, the
    classifiers', a profile's) goes there, not in the shared [train], which every run takes."""
    if key in own_train - {SET_BY_THE_STUDY}:
        return f" (a training setting: in this table's own train, train = {{ {key} = ... }})"
    homes = [where for where, keys in (("[train]", settings.keys(TrainConfig)),
                                       ("[model] or an [[autoencoders]] entry", AE_KEYS - {"name", "train"}),
                                       ("[classifiers]", CLF_KEYS - {"train"}),
                                       ("the top level, before any [table]", TOP_KEYS - {"profile"}))
             if key in keys - {SET_BY_THE_STUDY}]
    return f" (it is a key of {' and of '.join(homes)})" if homes else ""


def _check_keys(table, allowed: set, where: str, source: str, own_train: frozenset | set = frozenset()) -> None:
    if not isinstance(table, dict):
        raise UserError(f"study file {source}: {where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        key = sorted(unknown)[0]
        raise UserError(f"study file {source}: unknown key {key!r} in {where}{_home(key, own_train)}; "
                        f"known keys: {', '.join(sorted(allowed - {SET_BY_THE_STUDY}))}")


def _typed(cls, d: dict, where: str, source: str, **fixed):
    """A settings dataclass from a study-file table, with the file's name in any error."""
    try:
        cfg = cls(**{**d, **fixed})
        settings.check(cfg, file_keys=True)
        return cfg
    except (UserError, TypeError) as e:
        raise UserError(f"study file {source}: {where}: {e}") from None


def _check_tables(d: dict, source: str, at: str = "") -> None:
    """A study dict's settings tables, each checked as it is written: its keys, and each value
    on its own. ``parse_study`` checks a merged study so; ``load_study`` also checks the top level
    before a profile is merged over it, which would hide a bad value the profile overrides (a
    string for a number, a list for a table) until another profile is used."""
    for key, cls, allowed, fixed in (
            ("train", TrainConfig, settings.keys(TrainConfig), {}),
            ("model", ModelConfig, AE_KEYS - {"name", "train"}, {"task": AUTOENCODER}),
            ("baselines", Baselines, set(Baselines.__dataclass_fields__), {}),
            ("explore", Explore, set(Explore.__dataclass_fields__), {})):
        if key in d:
            _check_keys(d[key], allowed, f"[{at}{key}]", source)
            _typed(cls, d[key], f"[{at}{key}]", source, **fixed)
    if isinstance(targets := d.get("targets"), dict):
        for test_key in ("test_acc", "test_mse"):  # (not a key a target may have: said why)
            if test_key in targets:
                raise UserError(f"study file {source}: [{at}targets] {test_key}: a target is judged on the "
                                f"validation set (val_{test_key[5:]}); a profile tuned to reach a test "
                                "figure would choose its settings on the test set")
    if "targets" in d:
        _check_keys(d["targets"], set(Targets.__dataclass_fields__), f"[{at}targets]", source)
        _typed(Targets, d["targets"], f"[{at}targets]", source)
    if "classifiers" in d:
        _check_keys(d["classifiers"], CLF_KEYS, f"[{at}classifiers]", source, settings.keys(TrainConfig, CLASSIFIER))
        clf_train = d["classifiers"].get("train", {})
        _check_keys(clf_train, settings.keys(TrainConfig, CLASSIFIER), f"[{at}classifiers.train]", source)
        _typed(TrainConfig, clf_train, f"[{at}classifiers.train]", source)


def _profiles_inside(d, at: str = "") -> str | None:
    """Where a ``profiles`` key sits below the top level of a study file ("[[autoencoders]]"), if
    anywhere: a profile table misplaced under another one."""
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for key, value in items:
        where = at or (f"[[{key}]]" if isinstance(value, list) else f"[{key}]")
        if at and key == "profiles":
            return at
        if found := _profiles_inside(value, where):
            return found
    return None


def _refuse_seed(d: dict, source: str, at: str = "") -> None:
    """A study trains every run once per seed, so a ``seed`` in a file's train table would be
    overridden; it is refused, not ignored (study.json, written by fashionae, may hold one).
    ``d``: the file's top level, or with ``at`` = "profiles.NAME." one of its profiles."""
    tables = [(f"[{at}train]", d.get("train"))]
    if isinstance(d.get("classifiers"), dict):
        tables.append((f"[{at}classifiers.train]", d["classifiers"].get("train")))
    if isinstance(d.get("autoencoders"), list):
        tables += [(f"{at}autoencoders[{i}].train", a.get("train")) for i, a in enumerate(d["autoencoders"])
                   if isinstance(a, dict)]
    for where, table in tables:
        if isinstance(table, dict) and SET_BY_THE_STUDY in table:
            raise UserError(f"study file {source}: {where}: seed is set by the study, each run once per seed; "
                            "remove it, and set how many seeds with seeds = N (or --seeds N)")


def _with_toml(path: Path) -> str | None:
    """"did you mean my.toml?", where the study file named ``my`` is not one and ``my.toml`` is."""
    if path.name in ("", ".", "..") or path.suffix == ".toml":  # (".", "/": no name to add .toml to)
        return None
    toml = path.with_name(path.name + ".toml")
    return f"did you mean {toml}?" if toml.is_file() else None


def load_study(path: str | Path, profile: str | None = None, seeds: int | None = None,
               train_overrides: dict | None = None) -> Study:
    """Read a study file (a path, or as a string a bundled one's name: ``study_file``) and
    resolve one of its profiles (default: ``default_profile``, or ``quick`` when there is one).
    ``seeds`` and ``train_overrides`` (device, precision, tensorboard: the command line's)
    override the file."""
    shown = str(path)  # as given: ./paper is said as a path, beside the bundled names
    path = study_file(path) if isinstance(path, str) else path  # a Path is a path, never a name
    # a file named as a bundled study is taken for it (``study_file``): where it is not a study
    # file, the error says which one was read
    hides = (f"; the file {shown} here was read, not the bundled study {shown}: move or rename it to run that one"
             if shown in bundled_studies() and path == Path(shown) else "")
    shown = shown if path == Path(shown) else str(path)
    source = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # UTF-8, whatever the locale; a BOM (Notepad's) is skipped
    except FileNotFoundError:
        raise UserError(f"study file {shown} does not exist; {_with_toml(path) or _examples()}") from None
    except UnicodeDecodeError:
        if is_utf16(path):
            raise UserError(f"study file {shown} is UTF-16 text; TOML is UTF-8: save it as UTF-8") from None
        raise UserError(f"study file {shown} is not text (TOML is UTF-8 text); {_examples()}{hides}") from None
    except IsADirectoryError:
        rebuild = f"to rebuild a study folder's report: fashionae report {shown}"
        raise UserError(f"{shown} is a folder; " + (f"{hint} Or, {rebuild}" if (hint := _with_toml(path)) else
                                                     f"{_examples()}; or {rebuild}")) from None
    except OSError as e:
        raise UserError(f"cannot read study file {shown}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"study file {shown} is not valid TOML ({e}){hides}") from None
    if not raw:
        raise UserError(f"study file {shown} is empty; {_examples()}{hides}")
    try:
        _check_keys(raw, TOP_KEYS - {"profile"}, "the top level", source)
    except UserError as e:
        raise UserError(f"{e}{hides}") from None
    profiles = raw.get("profiles", {})
    _check_keys(profiles, set(profiles) if isinstance(profiles, dict) else set(), "[profiles]", source)
    named = "" if profile else " (its default_profile)"  # "quick" is taken only where it exists
    if "default" in (profiles if isinstance(profiles, dict) else {}):
        raise UserError(f"study file {source}: a profile cannot be named 'default', the name of the top level "
                        "alone (a study without a profile); rename [profiles.default]")
    profile = profile or raw.get("default_profile") or ("quick" if "quick" in profiles else "")
    base = {k: v for k, v in raw.items() if k not in ("profiles", "default_profile")}
    if profile and profile not in profiles:
        _check_tables(base, source)  # a [profiles] table misplaced inside another is said as such first
        if inside := _profiles_inside(base):
            raise UserError(f"study file {source}: a profiles table inside {inside}; profiles belong at the top "
                            "level ([profiles.NAME])")
        raise UserError(f"study file {source} has no profile {profile!r}{named}; " + (
            f"choose one of {', '.join(profiles)}" if profiles else
            f"it has no profiles: {'remove its default_profile' if named else 'leave out --profile'}"))
    _refuse_seed(base, source)

    def merged_profile(name: str) -> dict:
        if not isinstance(profiles[name], dict):
            raise UserError(f"study file {source}: [profiles.{name}] must be a table")
        _refuse_seed(profiles[name], source, f"profiles.{name}.")
        _check_tables(profiles[name], source, f"profiles.{name}.")  # said where the profile says it
        merged = deep_merge(base, profiles[name])
        _check_keys(merged, TOP_KEYS - {"profiles", "default_profile", "profile"}, f"profile {name!r}", source,
                    settings.keys(TrainConfig))
        merged.setdefault("name", path.stem)
        return merged

    if profile:
        _check_tables(base, source)
    merged = merged_profile(profile) if profile else {**base, "name": base.get("name", path.stem)}
    if seeds is not None:
        if problem := SEEDS(seeds):
            raise UserError(f"--seeds {problem}")
        if seeds != merged.get("seeds", 1) and isinstance(merged.get("profile_note"), str):
            # the note tells the profile as written, seeds included: the report says what ran
            merged["profile_note"] += f"{RUN_WITH}{seeds}; the profile has {merged.get('seeds', 1)}.)"
        merged["seeds"] = seeds
    written = _precisions(merged)  # before the command line's
    if train_overrides:  # over every train table: [train], each autoencoder's, [classifiers]'s
        merged["train"] = {**merged.get("train", {}), **train_overrides}
        if isinstance(merged.get("autoencoders"), list):
            merged["autoencoders"] = [{**a, "train": {**a["train"], **train_overrides}}
                                      if isinstance(a, dict) and isinstance(a.get("train"), dict) else a
                                      for a in merged["autoencoders"]]
        classifiers = merged.get("classifiers")
        if isinstance(classifiers, dict) and isinstance(classifiers.get("train"), dict):
            merged["classifiers"] = {**classifiers, "train": {**classifiers["train"], **train_overrides}}
    study = parse_study(merged, source, profile or "default",  # first, so what all share is said plainly
                        precision=((train_overrides or {}).get("precision"), written))
    # the profile asked for only (another may name a dataset built elsewhere); and not study.json's,
    # since a study is reported where its dataset is not
    d = study.dataset
    if d != FASHION_MNIST and (not d.strip() or not Path(d).expanduser().is_dir()):
        raise UserError(f"study file {source}: dataset {d!r} is not a folder here ({Path(d).expanduser().absolute()}); "
                        f"give \"{FASHION_MNIST}\" or your dataset's folder (four IDX files or one .npz, see "
                        "docs/datasets.md), relative to where you run fashionae")
    # every profile is checked now, not only the one asked for: a typo in another is said when
    # the file loads, not when that profile first runs
    for other in profiles:
        if other != profile:
            parse_study(merged_profile(other), f"{source} (profile {other!r})", other)
    return study


def _precisions(merged: dict) -> dict:
    """Each autoencoder's precision as a merged study gives it (unset: the default, auto), for
    what the command line's --precision changes; a malformed table is parse_study's to say."""
    def table(d) -> dict:
        return d if isinstance(d, dict) else {}
    autoencoders, default = merged.get("autoencoders"), TrainConfig().precision
    return {a.get("name"): {**table(merged.get("train")), **table(a.get("train"))}.get("precision", default)
            for a in (autoencoders if isinstance(autoencoders, list) else [])
            if isinstance(a, dict) and isinstance(a.get("name"), str)}


def parse_study(merged: dict, source: str, profile: str, by_hand: bool = True,
                precision: tuple[str, dict] | None = None) -> Study:
    """A typed, checked Study from a merged study dict (a profile resolved, or study.json, which
    fashionae wrote: ``by_hand`` False, every setting of each model written out); ``precision``:
    the command line's, merged over every train table, and each autoencoder's as the file gives it
    (said where the option makes two autoencoders alike)."""
    for key in ("description", "profile_note", "name", "dataset"):
        if key in merged and not isinstance(merged[key], str):
            raise UserError(f"study file {source}: {key} must be a string")
    for what, name in (("name", merged.get("name", "")), ("profile name", profile)):
        if not name or name.startswith(".") or "/" in name or "\\" in name or garbles_a_line(name):
            raise UserError(f"study file {source}: {what} {name!r} names the study's default folder "
                            "(runs/NAME-PROFILE): give one in one plain line, without '/' or '\\', that does "
                            "not start with '.'")
    n_seeds = merged.get("seeds", 1)
    if problem := SEEDS(n_seeds):
        raise UserError(f"study file {source}: seeds {problem}")
    _check_tables(merged, source)  # then each table's values together, below
    base_train, base_model = merged.get("train", {}), merged.get("model", {})

    autoencoders = []
    entries = merged.get("autoencoders", [])
    if isinstance(entries, dict):  # [autoencoders] for [[autoencoders]]: one table, not a list of them
        raise UserError(f"study file {source}: [autoencoders] is one table; write each autoencoder under "
                        "[[autoencoders]] (two brackets: an entry of the list)")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"study file {source}: [[autoencoders]] must list at least one autoencoder")
    for i, entry in enumerate(entries):
        where = f"autoencoders[{i}]"
        _check_keys(entry, AE_KEYS, where, source, AE_TRAIN_KEYS)
        name = entry.get("name")
        if not isinstance(name, str) or not name.replace("-", "").isalnum() or len(name) > NAME_MAX:
            raise UserError(f"study file {source}: {where} needs a name of letters, digits and '-', at most "
                            f"{NAME_MAX} of them")
        model_keys = {**base_model, **{k: v for k, v in entry.items() if k not in ("name", "train")}}
        model = _typed(ModelConfig, model_keys, where, source, task=AUTOENCODER)
        if by_hand and "latent" in entry and "latent" in model.unused():  # (a shared [model] latent: the linear ones')
            raise UserError(f"study file {source}: {where} ({entry['name']!r}) is {model.arch}, whose latent is the "
                            "feature map: remove its latent")
        ae_train = entry.get("train", {})
        _check_keys(ae_train, AE_TRAIN_KEYS, f"{where}.train", source)
        train_keys = {**{k: v for k, v in base_train.items() if k in AE_TRAIN_KEYS},
                      **ae_train}
        autoencoders.append(AutoencoderSpec(entry["name"], model,
                                            _typed(TrainConfig, train_keys, f"{where}.train", source)))
    names = [a.name for a in autoencoders]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"study file {source}: two autoencoders share the name {', '.join(map(repr, twice))}")
    if len({a.train.val for a in autoencoders}) > 1:
        raise UserError(f"study file {source}: every autoencoder must use the same val split")

    classifiers = None
    if "classifiers" in merged:
        c = merged["classifiers"]
        encoders = encoder_list(c)
        if not isinstance(encoders, list) or not encoders:
            raise UserError(f"study file {source}: [classifiers] encoder must be a name or a list of names")
        for encoder in encoders:
            if encoder != BEST and encoder not in names:
                raise UserError(f"study file {source}: [classifiers] encoder {encoder!r} is not trained "
                                f"by any autoencoder of the study (known: {', '.join(names)}, or \"{BEST}\")")
        if len(set(encoders)) != len(encoders):
            raise UserError(f"study file {source}: [classifiers] encoder names one encoder twice; name each once")
        strategies = c.get("strategies", list(STRATEGIES))
        if not isinstance(strategies, list) or not strategies or any(s not in STRATEGIES for s in strategies):
            unknown = [s for s in strategies if s not in STRATEGIES] if isinstance(strategies, list) else []
            got = f"{unknown[0]!r}" if unknown else (f"the string {strategies!r} (write [{strategies!r}])"
                                                     if isinstance(strategies, str) else repr(strategies))
            raise UserError(f"study file {source}: [classifiers] strategies must be a list drawn "
                            f"from {', '.join(STRATEGIES)}, got {got}")
        if len(set(strategies)) != len(strategies):
            raise UserError(f"study file {source}: [classifiers] strategies names one strategy twice; name each once")
        paper_head = c.get("paper_head", ModelConfig.paper_head)
        if problem := boolean(paper_head):
            raise UserError(f"study file {source}: [classifiers] paper_head {problem}")
        clf_train = c.get("train", {})
        train = _typed(TrainConfig, {**base_train, **clf_train}, "[classifiers.train]", source)
        if BEST in encoders and train.val == "test":
            raise UserError(f"study file {source}: [classifiers] encoder = \"best\" would choose the "
                            "encoder on the test set (val = \"test\"); name the encoder, or use "
                            "val = \"holdout\"")
        if train.val != autoencoders[0].train.val:
            raise UserError(f"study file {source}: the classifiers must use the autoencoders' val split")
        classifiers = ClassifierStage(encoders, strategies, paper_head, train)

    targets = _typed(Targets, merged.get("targets", {}), "[targets]", source)  # (its keys: _check_tables)
    if by_hand and targets != Targets() and autoencoders[0].train.val == "test":  # (a folder's study.json: as it ran)
        raise UserError(f"study file {source}: [targets] would be judged on the test set (val = \"test\"), "
                        "and a profile tuned to reach them would choose its settings on it; drop the targets, "
                        "or use val = \"holdout\"")
    for who, goal in (("autoencoder", "val_mse"), ("classifier", "val_acc")):
        if (getattr(targets, who) is None) != (getattr(targets, goal) is None):
            raise UserError(f"study file {source}: [targets] {who} and {goal} go together: the {who} "
                            "and the figure it should reach; set both, or neither")
    if targets.autoencoder is not None and targets.autoencoder not in names:
        raise UserError(f"study file {source}: [targets] autoencoder {targets.autoencoder!r} is "
                        "not an autoencoder of the study")
    if not by_hand and classifiers and targets.classifier in classifiers.strategies:
        # study.json of fashionae 0.3.2 and before: a strategy alone meant the first encoder's
        targets = replace(targets, classifier=classifiers.group(classifiers.encoders[0], targets.classifier))
    if targets.classifier is not None and (classifiers is None or targets.classifier not in classifiers.groups()):
        known = ", ".join(map(repr, classifiers.groups())) if classifiers else "none: the study has no [classifiers]"
        raise UserError(f"study file {source}: [targets] classifier {targets.classifier!r} is not a classifier of the "
                        f"study; with several encoders it names one as \"ENCODER/STRATEGY\" (known: {known})")

    explore_keys = merged.get("explore", {})
    explore = _typed(Explore, explore_keys, "[explore]", source)
    if unknown := [n for n in explore.autoencoders if n not in names]:  # (a list of names: _typed checked it)
        raise UserError(f"study file {source}: [explore] autoencoders must name autoencoders of the study: "
                        f"{unknown[0]!r} is none (known: {', '.join(names)})")

    b = merged.get("baselines", {})
    baselines = _typed(Baselines, {"train_subset": base_train.get("train_subset"),
                                   "eval_subset": base_train.get("eval_subset"), **b}, "[baselines]", source)

    ablation = merged.get("ablation", [])
    if not isinstance(ablation, list):
        raise UserError(f"study file {source}: [[ablation]] must be a list of comparisons")
    for i, c in enumerate(ablation):
        _check_keys(c, set(Comparison.__dataclass_fields__), f"ablation[{i}]", source)
    ablation = [_typed(Comparison, c, f"ablation[{i}]", source) for i, c in enumerate(ablation)]
    for i, c in enumerate(ablation):
        if missing := [key for key in ("baseline", "variant") if not getattr(c, key)]:
            raise UserError(f"study file {source}: ablation[{i}] ({c.change!r}) has no {' and no '.join(missing)}; "
                            "name the two autoencoders it compares")
        if unknown := [n for n in (c.baseline, c.variant) if n not in names]:
            raise UserError(f"study file {source}: ablation {c.change!r} names {', '.join(map(repr, unknown))}, "
                            f"no autoencoder of the study (known: {', '.join(names)})")
        if c.baseline == c.variant:
            raise UserError(f"study file {source}: ablation {c.change!r} compares {c.baseline} with itself; "
                            "name the autoencoder that differs as its variant")
        before = [(d.baseline, d.variant) for d in ablation[:i]]
        # (a folder's study.json from before the reverse was refused: as it ran, one comparison)
        if (c.baseline, c.variant) in before or (by_hand and (c.variant, c.baseline) in before):
            how = "" if (c.baseline, c.variant) in before else " the other way round (a change and its reverse " \
                  "are one question, one interval)"
            raise UserError(f"study file {source}: ablation {c.change!r} compares {c.baseline} with {c.variant}, as "
                            f"a line before it does{how}; remove one")
        base, variant = (next(a for a in autoencoders if a.name == n) for n in (c.baseline, c.variant))
        if base.train.eval_subset != variant.train.eval_subset:  # (every autoencoder has the same val split)
            raise UserError(f"study file {source}: ablation {c.change!r}: {c.baseline} and {c.variant} are measured "
                            "on different images (their eval_subset differ), so their MSEs cannot be compared; "
                            "give both the same eval_subset")
        if base.trained_with() == variant.trained_with():
            option, written = precision or (None, {})
            option = option if written.get(c.baseline) != written.get(c.variant) else None  # the option made them alike
            given = f" with --precision {option} (which sets every run's)" if option else ""
            raise UserError(f"study file {source}: ablation {c.change!r}: {c.baseline} and {c.variant} train the same "
                            f"model{given}, so the line would compare a model with itself; change the variant"
                            + (", or leave out --precision" if option else ""))

    return Study(name=merged.get("name", "study"), profile=profile,
                 description=merged.get("description", ""), profile_note=merged.get("profile_note", ""),
                 seeds=list(range(n_seeds)), dataset=merged.get("dataset", FASHION_MNIST), autoencoders=autoencoders,
                 classifiers=classifiers, baselines=baselines, explore=explore, targets=targets,
                 ablation=ablation)


def encoder_list(classifiers: dict):
    """The [classifiers] encoder setting as a list (one name may be given alone)."""
    encoders = classifiers.get("encoder", BEST)
    return [encoders] if isinstance(encoders, str) else encoders
