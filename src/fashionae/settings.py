"""Settings: every configurable value is one dataclass field, declared with ``setting()``.

A field's declaration is the one place that knows its default, its help text, its allowed
values, which kind of run takes it and whether it is part of a run's identity. From it come
the command-line options (``add_options``), the keys a study file accepts (``keys``), the
checks (``check``), the JSON round trip (``from_dict``) and the comparison that decides
whether a run folder can be resumed (``identity``). Adding a model or training setting is
adding one field.

Identity: a run's identity is the settings that change its numbers. Settings that change no
number (trackers, progress) are declared ``identity=False``; they never refuse a resume. A
folder written before a setting existed reads as if it had the field's ``before`` value: its
default, unless the field declares what those versions did.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, field, fields
from typing import Any, Callable

from .errors import UserError

# which runs take a setting
AUTOENCODER, CLASSIFIER = "autoencoder", "classifier"


def setting(default: Any, help: str = "", *, choices: tuple | None = None,
            check: Callable[[Any], str | None] | None = None, only: str | None = None,
            option: bool = True, identity: bool = True, metavar: str | None = None,
            before: Any = MISSING):
    """A config field. ``only``: the kind of run that takes it (autoencoder or classifier;
    None: both). ``option=False``: set by fashionae itself (from the command or the data),
    never given by the user. ``check(value)`` returns what is wrong, or None. ``before``: the
    value a file written before the setting existed reads as (unless declared: ``default``)."""
    meta = {"help": help, "choices": choices, "check": check, "only": only, "option": option,
            "identity": identity, "metavar": metavar, "before": before}
    if isinstance(default, (list, dict)):  # mutable: each object gets its own copy
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# ------------------------------------------------------------------ checks

def is_number(v) -> bool:
    """An int or a float, as JSON and TOML numbers load (a bool is not one)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


LARGEST = 2**31 - 1  # a count beyond this (epochs, a batch, a subset) is a slip, not a setting


def positive_int(v) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        return f"must be a positive integer, got {v!r}"
    if v > LARGEST:
        return f"must be a positive integer of at most {LARGEST:,}, got {v:,}"
    return None


def optional_positive_int(v) -> str | None:
    return None if v is None else positive_int(v)


def integer_in(low: int, high: int) -> Callable[[Any], str | None]:
    def check(v) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
        return None if ok else f"must be an integer from {low} to {high}, got {v!r}"
    return check


def number_in(low: float, high: float, closed_low: bool = True, closed_high: bool = False) -> Callable[[Any], str | None]:
    def check(v) -> str | None:
        ok = is_number(v) and (low <= v if closed_low else low < v) and (v <= high if closed_high else v < high)
        return None if ok else (f"must be a number in {'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}, "
                                f"got {v!r}")
    return check


def boolean(v) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _name(f) -> str:
    return f.name.replace("_", "-")


# ------------------------------------------------------------------ the dataclass side

def check(cfg, file_keys: bool = False) -> None:
    """Check every field of a settings dataclass; UserError naming the first bad one, as an
    option (``--batch-size``) or, with ``file_keys``, as a study file's key (``batch_size``); one
    fashionae sets itself (``image_size``) by its name."""
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        name = f.name if file_keys or not f.metadata.get("option", True) else f"--{_name(f)}"
        choices = f.metadata.get("choices")
        if choices is not None and v not in choices:
            shown = str(v).lower() if isinstance(v, bool) else repr(v)  # true, as TOML and the options spell it
            raise UserError(f"unknown {name} {shown}; choose one of {', '.join(map(str, choices))}")
        problem = f.metadata.get("check") and f.metadata["check"](v)
        if problem:
            raise UserError(f"{name} {problem}")


def unused(cfg, kind: str) -> set[str]:
    """The fields of ``cfg`` that only the other kind of run takes (a classifier's ``augment`` in
    an autoencoder's settings)."""
    return {f.name for f in fields(cfg) if f.metadata.get("only") not in (None, kind)}


def overridden(cfg, by, given: frozenset[str]) -> list[str]:
    """The options of ``cfg`` given on the command line (``given``) whose values ``by`` would
    replace: "--latent 999 (its: 16)". An option given at its default value counts too."""
    return [f"--{_name(f)} {getattr(cfg, f.name)} (its: {getattr(by, f.name)})" for f in fields(cfg)
            if f.name in given and getattr(cfg, f.name) != getattr(by, f.name)]


def keys(cls, only: str | None = None) -> set[str]:
    """The field names a user may set, for a kind of run (None: every kind)."""
    return {f.name for f in fields(cls)
            if f.metadata.get("option", True) and (only is None or f.metadata.get("only") in (None, only))}


def from_dict(cls, d: dict, where: str = "setting"):
    """A checked settings object from a file fashionae wrote; missing keys take their ``before``
    values (so files written before a setting existed load as what they were). Lists become
    tuples where the field's default is a tuple (JSON has no tuples)."""
    if not isinstance(d, dict):
        raise UserError(f"the {where}s must be a table of names and values")
    known = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(known)
    if unknown:
        raise UserError(f"unknown {where} {sorted(unknown)[0]!r}; known: {', '.join(sorted(keys(cls)))}")
    values = {k: f.metadata["before"] for k, f in known.items()
              if k not in d and f.metadata.get("before", MISSING) is not MISSING}
    for k, v in d.items():
        default = known[k].default
        values[k] = tuple(v) if isinstance(default, tuple) and isinstance(v, list) else v
    cfg = cls(**values)
    check(cfg, file_keys=True)
    return cfg


def identity(cfg) -> dict:
    """The fields that change a run's numbers, as a flat dict."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.metadata.get("identity", True)}


# ------------------------------------------------------------------ the command-line side

_TYPES = {"int": int, "float": float, "str": str, "int | None": int, "float | None": float,
          "str | None": str}


class _Noted(argparse.Action):
    """Stores an option's value (a flag's: its ``const``) and notes that it was given (``given``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.given_settings = getattr(namespace, "given_settings", frozenset()) | {self.dest}


def add_options(parser: argparse.ArgumentParser, cls, title: str, only: str | None) -> None:
    """One option per user setting of ``cls`` taken by runs of kind ``only``; the defaults,
    choices and help are the fields'. Booleans are flags (``--x`` or, when on by default,
    ``--no-x``). Which ones the user gave, whatever their values, is ``given``'s."""
    group = parser.add_argument_group(title)
    for f in fields(cls):
        if not f.metadata.get("option", True) or f.metadata.get("only") not in (None, only):
            continue
        help_text = f.metadata.get("help", "")
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind == "bool":
            flag = f"--no-{_name(f)}" if f.default else f"--{_name(f)}"
            group.add_argument(flag, dest=f.name, action=_Noted, nargs=0, const=not f.default,
                               default=f.default, help=help_text)
            continue
        choices = f.metadata.get("choices")
        default = f.default if f.default is not MISSING else None
        shown = f" (default: {default})" if default is not None else ""
        group.add_argument(f"--{_name(f)}", dest=f.name, type=_TYPES[kind], default=default, action=_Noted,
                           metavar=f.metadata.get("metavar") or ("|".join(choices) if choices else None),
                           help=help_text + shown)


def given(args: argparse.Namespace) -> frozenset[str]:
    """The settings whose options the command line gave (``add_options``), at any value."""
    return getattr(args, "given_settings", frozenset())


def from_options(cls, args: argparse.Namespace, **fixed):
    """The settings object of a parsed command line (fields it has no option for keep their
    defaults, or take ``fixed``)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    cfg = cls(**{**values, **fixed})
    check(cfg)
    return cfg
