"""How the report writes a figure: over seeds, alone, as an effect in its unit, as a
change of settings. One place, so that the tables, their captions and the summary write a number alike."""

from __future__ import annotations

from .claims import far, mean_std
from .pages import EMPTY


def stat(s: dict | None, digits: int = 4, pct: bool = False) -> str:
    """A figure over seeds: "0.0123 ± 0.0020" (a percentage with ``pct``)."""
    return EMPTY if s is None else mean_std(s, digits, pct)


def value(x, digits: int = 4, pct: bool = False) -> str:
    """One number: "0.0123" (a percentage with ``pct``)."""
    return EMPTY if x is None else f"{x * (100 if pct else 1):.{digits}f}"


def amount(x: float, unit: str) -> str:
    """An effect as the report writes it: a relative one in %, a difference of accuracy in points.
    A relative change is above -100 % (a ratio of MSEs), and a gain (its sign turned) below
    +100 %: one that rounds to its bound says so ("> -100 %", "< +100 %"); on the other side a
    ratio has no bound, and a wide interval's end beyond 100 times is said so ("> +10,000 %").
    A difference of percentages lies within ±100 points: a wide interval's end beyond is shown at
    the bound. (results.json keeps every figure as computed.)"""
    if unit.startswith("relative"):
        if said := far(x):
            return f"{said} %"
        shown = f"{100 * x:+,.1f}"  # (+1,197.5 %, as "> +10,000 %" is written)
        if unit == "relative" and shown == "-100.0":  # (-1 itself only by underflow: exp(-700) - 1)
            return "> -100 %"
        return "< +100 %" if unit == "relative gain" and shown == "+100.0" else f"{shown} %"
    return f"{min(max(x, -100), 100):+.2f} pts"  # a difference of percentages: an interval's end shown within reach


def differs_text(differs: dict) -> str:
    """An ablation line's differing settings, as a study file names them: "dropout 0.2 → 0"."""
    def setting(v) -> str:
        if v is None:
            return "all"  # (the subsets: all images)
        return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)
    return "; ".join(f"{k.split('.', 1)[-1]} {setting(b)} → {setting(v)}"
                     for k, (b, v) in sorted(differs.items())) or EMPTY
