"""Figures (matplotlib, PNG), shared by the report and ``fashionae explore``.

Each function draws one figure into a PNG file, written atomically; nothing here reads run
folders or results: the callers hand over the numbers.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .files import atomic_write, user_folder

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
          "tab:gray", "tab:olive", "tab:cyan"]

# Sizes chosen to stay legible at about 600 pixels wide (two figures to a row on a laptop)
# and at about 360 (a phone): figures of 5 inches with 8- to 10-point text, shown at 120 dpi.
STYLE = {"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "legend.frameon": False}
DPI = 120
SHARPNESS = 2  # pixels drawn per pixel shown: the page shows a figure at DPI, sharp on HiDPI screens and when zoomed


def plt():
    if "matplotlib" not in sys.modules:
        _writable_matplotlib_folder()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    pyplot.rcParams.update(STYLE)
    return pyplot


def _writable_matplotlib_folder() -> None:
    """Matplotlib keeps its settings and font cache in ~/.config and ~/.cache (XDG's); where it
    cannot write there (a read-only home, or none) it makes a temporary folder and says so in two long
    warnings, past the command's one line: it is given one here first, removed at exit."""
    if "MPLCONFIGDIR" in os.environ or not sys.platform.startswith(("linux", "freebsd")):  # (matplotlib's XDG)
        return
    for xdg, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        try:
            # the folder matplotlib takes (a relative $XDG too, which fashionae's own cache ignores);
            # None: no home, or one we may not write in
            if base := Path(os.environ[xdg]) if os.environ.get(xdg) else user_folder(xdg, default):
                (folder := base / "matplotlib").mkdir(parents=True, exist_ok=True)
                if os.access(folder, os.W_OK):
                    continue
        except OSError:
            pass
        os.environ["MPLCONFIGDIR"] = temporary = tempfile.mkdtemp(prefix="fashionae-matplotlib-")
        atexit.register(shutil.rmtree, temporary, ignore_errors=True)
        return


def save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI * SHARPNESS, bbox_inches="tight")
    plt().close(fig)
    atomic_write(path, buf.getvalue())


def _band(ax, runs: list[list[dict]], key: str, label: str, color: str, marker: str = "o", style: str = "-",
          z: float = 2, scale: float = 1, apart: float = 0) -> None:
    """Mean line and ± std band (of one epoch, a bar) over seeds of one per-epoch metric (times
    ``scale``); a seed whose curve is not a number somewhere (it diverged) is left out (all of
    them: a line of no numbers). ``apart``: how far off its epoch a curve of one epoch is drawn,
    so that its bar is not on another's."""
    n = min(len(r) for r in runs)
    values = np.array([[row[key] for row in r[:n]] for r in runs], dtype=float) * scale
    if (steady := np.isfinite(values).all(1)).any():
        values = values[steady]
    epochs = np.arange(1, n + 1) + (apart if n == 1 else 0)
    mean = values.mean(0)
    ax.plot(epochs, mean, style, color=color, label=label, marker=marker if n < 8 else None, ms=4, zorder=z)
    if len(values) > 1:
        std = values.std(0, ddof=1)
        if n == 1:  # one epoch: a band of one point has no area, so an error bar
            ax.errorbar(epochs, mean, yerr=std, color=color, alpha=0.5, capsize=4, lw=1, zorder=z - 1)
        else:
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, lw=0, zorder=z - 1)


def _apart(i: int, n: int) -> float:
    """How far off its epoch the i-th of n curves of one epoch is drawn: side by side, within ±0.15."""
    return 0.3 * (i / (n - 1) - 0.5) if n > 1 else 0.0


def _finish(fig, ax, title: str, xlabel: str, ylabel: str, epochs: bool = True) -> None:
    """Title, labels and the legend below the axes (it never hides a curve)."""
    from matplotlib.ticker import MaxNLocator
    # the epochs from the lines themselves: a curve that is not a number (a diverged run) is
    # drawn as nothing, and has no extent on the axes
    xs = [x for line in ax.get_lines() for x in np.asarray(line.get_xdata(), dtype=float)]
    if epochs and xs:
        low, high = min(xs), max(xs)
        if high - low < 8:  # a few epochs: one tick each, the points kept off the frame
            ax.set_xticks(range(int(low), int(high) + 1))
            ax.set_xlim(low - 0.5, high + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(handles)))


def _log_y(ax) -> None:
    """A log y axis labelled in plain decimals (0.02, 0.05, 0.1), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    if high / low < 100:  # under two decades: label 2 and 5 times each power of ten too
        ax.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def _figure():
    return plt().subplots(figsize=(5, 3.2), layout="constrained")


def curves(title: str, runs: list[list[dict]], keys: list[tuple[str, str]], ylabel: str,
           author: dict | None, path: Path, scale: float = 1) -> None:
    """Per-epoch curves of one model (mean ± std over seeds; values times ``scale``), the
    author's dotted beside."""
    fig, ax = _figure()
    # shapes and dashes tell overlapping lines apart, and each curve lies above the ones after it
    # (train in eval mode and validation often coincide: the second stays in view, dashed)
    for i, ((key, label), color, marker, style) in enumerate(zip(keys, COLORS, "o^s", ("-", "--", "-."))):
        _band(ax, runs, key, label, color, marker, style, z=2 + 2 * (len(keys) - i), scale=scale,
              apart=_apart(i, len(keys)))
    if author is not None:  # over as many epochs as ours, in the same colours; one legend entry
        n = len(runs[0])
        for i, ((key, label), color) in enumerate(zip(keys, COLORS)):
            if key in author:
                ys = np.array(author[key][:max(n, 1)]) * scale
                # one epoch: a point, not a line, beside ours; above them
                ax.plot(np.arange(1, len(ys) + 1) + (_apart(i, len(keys)) if len(ys) == 1 else 0), ys, ":",
                        color=color, alpha=0.8, zorder=3 + 2 * len(keys), marker="x" if len(ys) == 1 else None)
        ax.plot([], [], ":", color="black", label="author's code (dotted)" if n > 1 else "author's code (×)",
                marker="x" if n == 1 else None)
    _finish(fig, ax, title, "epoch", ylabel)
    save(fig, path)


def overlaid_curves(title: str, models: list[tuple[str, list[list[dict]]]], key: str, ylabel: str,
                    path: Path) -> None:
    """One metric of several models on one axis (mean ± std band over seeds each)."""
    fig, ax = _figure()
    for i, ((name, runs), color) in enumerate(zip(models, COLORS * 3)):
        _band(ax, runs, key, name, color, apart=_apart(i, len(models)))
    _log_y(ax)
    _finish(fig, ax, title, "epoch", ylabel)
    save(fig, path)


def size_ticks(models: set[int], pca: list[int]) -> list[int]:
    """The latent sizes themselves as ticks (16, 64, ..., 3136), not powers of two: every model's,
    and each PCA k that crowds neither a model's nor a smaller k's (512 and 600, a subset's last)
    by half a power of two."""
    ticks = set(models)
    for k in sorted(pca):
        if all(abs(np.log2(k / m)) > 0.5 for m in ticks):
            ticks.add(k)
    return sorted(ticks)


def mse_by_size(title: str, linear: list[tuple[int, dict]], pca: list[tuple[int, float]],
                points: list[tuple[str, int, dict]], path: Path) -> None:
    """Test MSE against latent size: linear autoencoders (mean ± std) and PCA at every k as
    curves, other autoencoders (the fully convolutional one) as labelled points; log k."""
    fig, ax = _figure()  # (matplotlib imported by plt() first, in a folder it may write: _writable_matplotlib_folder)
    from matplotlib.ticker import NullLocator
    if pca:
        ks, mse = zip(*sorted(pca))
        ax.plot(ks, mse, "--", color="tab:gray", marker=".", label="PCA, k components")
    if linear:
        linear = sorted(linear)
        ax.errorbar([k for k, _ in linear], [s["mean"] for _, s in linear],
                    yerr=[s["std"] for _, s in linear], fmt="-o", color="tab:blue", ms=4, capsize=3,
                    label="linear autoencoders (l_size)")
    for (name, k, s), color in zip(points, COLORS[1:] * 3):
        ax.errorbar([k], [s["mean"]], yerr=[s["std"]], fmt="s", color=color, ms=5, capsize=3,
                    label=f"{name} ({k:,} values)")
    ax.set_xscale("log", base=2)
    _log_y(ax)
    sizes = size_ticks({k for k, _ in linear} | {k for _, k, _ in points}, [k for k, _ in pca])
    ax.set_xticks(sizes, [str(k) for k in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    _finish(fig, ax, title, "latent size (values)", "test MSE per pixel", epochs=False)
    save(fig, path)


EFFECT_LABEL_WIDTH = 32  # characters of a forest plot's row label on one line


def _wrapped(text: str, width: int, most: int | None) -> str:
    """``text`` on lines of ``width`` characters, words whole, ``most`` lines at most (the last ending
    in "…" where words are left out); a last line of its own (a classifier's "(frozen)") is kept
    whole after the others."""
    import textwrap
    *words, last = text.split("\n") if "\n" in text else (text, None)
    lines = textwrap.wrap(" ".join(words), width, break_long_words=False, placeholder=" …",
                          max_lines=None if most is None else max(1, most - (last is not None))) or words
    return "\n".join(lines + ([last] if last is not None else []))


def effects(title: str, rows: list[tuple[str, float, list[float] | None]], xlabel: str, path: Path,
            scale: float = 100) -> None:
    """Changes as points with their confidence intervals (a forest plot), one row each, the
    first at the top, times ``scale`` (100: relative changes in %; 1: points); zero (no change)
    as a vertical line. Where an interval reaches far beyond every change (few seeds: a relative
    change's upper end has no bound), the axis keeps to the changes and the other ends, and that
    end is written at the edge instead, so that the changes stay apart."""
    from .claims import far
    # a row's words wrapped (three lines at most, its table says them whole): else a long change's
    # label takes the width from its interval, which a phone then shows a strip of
    labels = [_wrapped(label, EFFECT_LABEL_WIDTH, 3) for label, _, _ in rows]
    if len(set(labels)) < len({label for label, _, _ in rows}):  # two cut alike: each whole, told apart
        labels = [_wrapped(label, EFFECT_LABEL_WIDTH, None) for label, _, _ in rows]
    lines = max([label.count("\n") + 1 for label in labels] + [1])
    fig, ax = plt().subplots(figsize=(5, (0.3 + 0.15 * lines) * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    means = [mean * scale for _, mean, _ in rows]
    ends = [None if not ci else np.array(ci, dtype=float) * scale for _, _, ci in rows]
    if scale == 1:  # a difference of accuracies in points: an end beyond ±100 at the bound, as the table shows it
        ends = [None if e is None else np.clip(e, -100, 100) for e in ends]
    # an end beyond 20 times every change is far, and never one within 100 times (10,000 %) or 100 points
    limit = 20 * max([abs(m) for m in means if np.isfinite(m)] + [5.0 * scale])
    near = [v for e in ends if e is not None for v in e if abs(v) <= limit] + [m for m in means if np.isfinite(m)]
    off = any(e is not None and (abs(e) > limit).any() for e in ends)  # (an infinite end too; NaN is neither)
    lo, hi = min(near + [0.0]), max(near + [0.0])
    room = 0.15 if off else 0.05  # (a written end beside its point, not on it)
    lo, hi = lo - room * (hi - lo or 1), hi + room * (hi - lo or 1)
    for yi, mean, e in zip(y, means, ends):
        shown = e if e is None or not off else np.clip(e, lo, hi)
        err = None if e is None else [[mean - shown[0]], [shown[1] - mean]]
        ax.errorbar([mean], [yi], xerr=err, fmt="o", color="tab:blue", ms=5, capsize=3)
        for end, edge, right in (() if e is None or not off else ((e[0], lo, False), (e[1], hi, True))):
            if abs(end) > limit:
                said = (far(end / 100) if scale == 100 else None) or f"{end:+,.0f}"
                ax.annotate(f"{said} →" if right else f"← {said}", (edge, yi), xytext=(0, 5),
                            textcoords="offset points", fontsize=7, ha="right" if right else "left",
                            color="tab:blue")
    if off:  # (room above the top row for its written end)
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.5, len(rows) - 0.3)
    ax.axvline(0, color="tab:gray", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8 if lines > 1 else None)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    save(fig, path)


def confusion(title: str, cm: list[list[int]], classes: tuple[str, ...], path: Path) -> None:
    cm = np.array(cm, dtype=float)
    k = len(classes)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt().subplots(figsize=(max(4.5, 0.55 * k + 1), max(4, 0.5 * k + 0.8)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:  # the shares, zeros left blank so that the confusions stand out
        for i in range(k):
            for j in range(k):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    save(fig, path)


def image_rows(rows: list[tuple[str, np.ndarray]], path: Path, titles: list[str] | None = None) -> None:
    """Rows of grayscale images [n, H, W] in [0, 1], each row labelled."""
    n = max(len(images) for _, images in rows)
    fig, axes = plt().subplots(len(rows), n, figsize=(0.9 * n, 0.9 * len(rows) + (0.25 if titles else 0)),
                               squeeze=False, gridspec_kw={"wspace": 0.06, "hspace": 0.06})
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
            if titles and r == 0 and c < len(titles):
                ax.set_title(titles[c], fontsize=8)
    save(fig, path)


def scatter_map(title: str, xy: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], path: Path) -> None:
    fig, ax = plt().subplots(figsize=(6.4, 4.6), layout="constrained")
    # 10 colours, and past them 20 (tab20): no two classes of the legend share one
    import matplotlib
    colours = COLORS if len(classes) <= len(COLORS) else list(matplotlib.colormaps["tab20"].colors)
    for c, name in enumerate(classes):
        pick = labels == c
        ax.scatter(xy[pick, 0], xy[pick, 1], s=4, label=name, alpha=0.7, color=colours[c % len(colours)])
    ax.set_title(title)
    if len(classes) <= 20:  # beside the map: the clusters fill the whole axes
        fig.legend(loc="outside right upper", markerscale=3)
    ax.set_xticks([])
    ax.set_yticks([])
    save(fig, path)
