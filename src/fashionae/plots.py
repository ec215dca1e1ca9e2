"""Figures (matplotlib, PNG), shared by the report and ``fashionae explore``.

Each function draws one figure into a PNG file, written atomically; nothing here reads run
folders or results: the callers hand over the numbers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .files import atomic_write

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
          "tab:gray", "tab:olive", "tab:cyan"]


def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt().close(fig)
    atomic_write(path, buf.getvalue())


def _band(ax, runs: list[list[dict]], key: str, label: str, color: str) -> None:
    """Mean line and ± std band over seeds of one per-epoch metric."""
    n = min(len(r) for r in runs)
    values = np.array([[row[key] for row in r[:n]] for r in runs])
    epochs = np.arange(1, n + 1)
    mean = values.mean(0)
    ax.plot(epochs, mean, "-", color=color, label=label, marker="o" if n < 8 else None, ms=3)
    if len(runs) > 1:
        std = values.std(0, ddof=1)
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)


def _finish(ax, title: str, xlabel: str, ylabel: str, integer_x: bool = True) -> None:
    from matplotlib.ticker import MaxNLocator
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def curves(title: str, runs: list[list[dict]], keys: list[tuple[str, str]], ylabel: str,
           author: dict | None, path: Path) -> None:
    """Per-epoch curves of one model (mean ± std over seeds), the author's dotted beside."""
    fig, ax = plt().subplots(figsize=(6, 3.6))
    for (key, label), color in zip(keys, COLORS):
        _band(ax, runs, key, label, color)
    if author is not None:
        n = len(runs[0])
        for (key, label), color in zip(keys, COLORS):
            if key in author:
                ys = author[key][:max(n, 1)]
                ax.plot(np.arange(1, len(ys) + 1), ys, ":", color=color, alpha=0.8,
                        label=f"{label}, author's code")
    _finish(ax, title, "epoch", ylabel)
    save(fig, path)


def overlaid_curves(title: str, models: list[tuple[str, list[list[dict]]]], key: str, ylabel: str,
                    path: Path, log_y: bool = True) -> None:
    """One metric of several models on one axis (mean ± std band over seeds each)."""
    fig, ax = plt().subplots(figsize=(6.4, 3.8))
    for (name, runs), color in zip(models, COLORS * 3):
        _band(ax, runs, key, name, color)
    if log_y:
        ax.set_yscale("log")
    _finish(ax, title, "epoch", ylabel)
    save(fig, path)


def mse_by_size(title: str, linear: list[tuple[int, dict]], pca: list[tuple[int, float]],
                points: list[tuple[str, int, dict]], path: Path) -> None:
    """Test MSE against latent size: linear autoencoders (mean ± std) and PCA at every k as
    curves, other autoencoders (the fully convolutional one) as labelled points; log k."""
    fig, ax = plt().subplots(figsize=(6.4, 3.8))
    if pca:
        ks, mse = zip(*sorted(pca))
        ax.plot(ks, mse, "--", color="tab:gray", marker=".", label="PCA, k components")
    if linear:
        linear = sorted(linear)
        ax.errorbar([k for k, _ in linear], [s["mean"] for _, s in linear],
                    yerr=[s["std"] for _, s in linear], fmt="-o", color="tab:blue", capsize=3,
                    label="linear autoencoders (l_size)")
    for (name, k, s), color in zip(points, COLORS[1:] * 3):
        ax.errorbar([k], [s["mean"]], yerr=[s["std"]], fmt="s", color=color, capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _finish(ax, title, "latent size (values)", "test MSE per pixel", integer_x=False)
    save(fig, path)


def confusion(title: str, cm: list[list[int]], classes: tuple[str, ...], path: Path) -> None:
    cm = np.array(cm, dtype=float)
    k = len(classes)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt().subplots(figsize=(max(4.5, 0.55 * k + 1), max(4, 0.5 * k + 0.8)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
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
    fig, axes = plt().subplots(len(rows), n, figsize=(n, 1.1 * len(rows) + (0.2 if titles else 0)),
                               squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            if titles and r == 0 and c < len(titles):
                ax.set_title(titles[c], fontsize=7)
    save(fig, path)


def scatter_map(title: str, xy: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], path: Path) -> None:
    fig, ax = plt().subplots(figsize=(6.5, 5))
    for c, name in enumerate(classes):
        pick = labels == c
        ax.scatter(xy[pick, 0], xy[pick, 1], s=4, label=name, alpha=0.7, color=(COLORS * 10)[c])
    ax.set_title(title)
    if len(classes) <= 20:
        ax.legend(fontsize=7, markerscale=3, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    save(fig, path)
