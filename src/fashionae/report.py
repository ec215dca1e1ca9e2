"""The study's report: figures (matplotlib, PNG), and the same tables and figures as
``report.md`` and a self-contained ``report.html`` (no network needed)."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np

from .data import CLASSES
from .errors import UserError
from .files import atomic_write, read_json
from .reference import REFERENCE, author_curves


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    atomic_write(path, buf.getvalue())


def _metrics(folder: Path) -> list[dict]:
    from .runs import read_run
    return read_run(folder)["metrics"]


def _band(ax, runs: list[list[dict]], key: str, label: str, color: str, style: str = "-") -> None:
    """Mean line and ± std band over seeds of one per-epoch metric."""
    n = min(len(r) for r in runs)
    values = np.array([[row[key] for row in r[:n]] for r in runs])
    epochs = np.arange(1, n + 1)
    mean = values.mean(0)
    ax.plot(epochs, mean, style, color=color, label=label, marker="o" if n < 8 else None, ms=3)
    if len(runs) > 1:
        std = values.std(0, ddof=1)
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)


def _curve_figure(title: str, runs: list[list[dict]], keys: list[tuple[str, str]], ylabel: str,
                  author: dict | None, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for (key, label), color in zip(keys, colors):
        _band(ax, runs, key, label, color)
    if author is not None:
        n = len(runs[0])
        for (key, label), color in zip(keys, colors):
            if key in author:
                ys = author[key][:max(n, 1)]
                ax.plot(np.arange(1, len(ys) + 1), ys, ":", color=color, alpha=0.8,
                        label=f"{label}, author's code")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def _confusion_figure(title: str, cm: list[list[int]], path: Path) -> None:
    plt = _plt()
    cm = np.array(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(10):
        for j in range(10):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(10), CLASSES, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(10), CLASSES, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    _save(fig, path)


def _reconstruction_figure(out: Path, results: dict, path: Path, data_dir: str | None,
                           verify: bool) -> bool:
    """Fig. 5: the same validation images, reconstructed by each autoencoder (seed 0)."""
    import torch
    from .data import load_fashion_mnist, make_splits
    from .models import load_model
    from .training import to_inputs
    try:
        data = load_fashion_mnist(data_dir, verify, download=False)
    except UserError:
        return False
    first = json.loads((out / results["autoencoders"][0]["runs"][0] / "config.json").read_text())
    splits = make_splits(data, first["train"]["val"])
    # one image of each of 8 classes, fixed for every report
    picks = [int((splits.val_y == c).nonzero()[0]) for c in range(8)]
    x = to_inputs(splits.val_x[picks], torch.device("cpu"))
    rows = [("original", x)]
    for ae in results["autoencoders"]:
        model = load_model(out / ae["runs"][0] / "model.safetensors")
        with torch.inference_mode():
            rows.append((ae["name"], model.reconstruct(x).float()))
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 8, figsize=(8, 1.1 * len(rows)))
    for r, (name, images) in enumerate(rows):
        for c in range(8):
            ax = axes[r, c]
            ax.imshow(images[c, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    _save(fig, path)
    return True


# ------------------------------------------------------------------ tables

def _f(s: dict | None, digits: int = 4, pct: bool = False) -> str:
    if s is None:
        return "–"
    scale = 100 if pct else 1
    text = f"{s['mean'] * scale:.{digits}f}"
    if len(s["values"]) > 1:
        text += f" ± {s['std'] * scale:.{digits}f}"
    return text


def _v(x, digits=4, pct=False) -> str:
    if x is None:
        return "–"
    return f"{x * (100 if pct else 1):.{digits}f}"


def _pca(results: dict, k: int | None) -> str:
    """PCA's test MSE with as many components as the latent has (capped at what was fitted)."""
    b = results["baselines"]
    if k is None or not b:
        return "–"
    row = max((r for r in b["pca"] if r["k"] <= k), key=lambda r: r["k"], default=None)
    return "–" if row is None else f"{row['test_mse']:.4f}" + (f" (k={row['k']})" if row["k"] != k else "")


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    ref_r, ref_a = REFERENCE["report"], REFERENCE["author_code"]
    ae_rows = []
    for ae in results["autoencoders"]:
        r = ref_r["autoencoders"].get(ae["name"], {})
        a = ref_a["autoencoders"].get(ae["name"], {})
        ae_rows.append([
            ae["name"], str(ae["epochs"]), _f(ae["train_mse"]), _f(ae["train_mse_train_mode"]),
            _f(ae["val_mse"]), _f(ae["test_mse"]), f"{ae['best_epoch']['mean']:.0f}",
            f"{_v(r.get('train_mse'))} / {_v(r.get('val_mse'))}" if "train_mse" in r else r.get("note", "–"),
            _v(a.get("val_mse")), _pca(results, ae["latent"]), f"{ae['seconds']['mean']:.0f}"])
    clf_rows = []
    for c in results["classifiers"]:
        # the study's numbers are for its own encoder: shown only beside a plain strategy name
        r = ref_r["classifiers"].get(c["name"], {})
        a = ref_a["classifiers"].get(c["name"], {})
        clf_rows.append([
            c["name"] + (" (control)" if c["strategy"] == "random-frozen" else ""),
            c["encoder"] or "–", str(c["epochs"]), _f(c["train_acc"], 2, True),
            _f(c["train_acc_train_mode"], 2, True), _f(c["val_acc"], 2, True),
            _f(c["test_acc"], 2, True),
            f"{_v(r.get('train_acc'), 1, True)} / {_v(r.get('val_acc'), 1, True)}" if r else "–",
            f"{_v(a.get('train_acc'), 1, True)} / {_v(a.get('val_acc'), 1, True)}" if a else "–",
            f"{c['seconds']['mean']:.0f}"])
    out = [
        ("Table II — autoencoders (MSE per pixel)",
         ["model", "epochs", "train (eval mode)", "train (training mode)", "val", "test", "best epoch",
          "report train / val", "author's code val", "PCA test, same k", "seconds"], ae_rows),
        ("Classification (accuracy, %)",
         ["strategy", "encoder", "epochs", "train (eval mode)", "train (training mode)", "val", "test",
          "report train / val", "author's code train / val", "seconds"], clf_rows),
    ]
    b = results["baselines"]
    if b:
        rows = [[f"PCA, k = {r['k']}", _v(r["val_mse"]), _v(r["test_mse"]),
                 _v(REFERENCE["external"]["pca_test_mse"].get(str(r["k"])))] for r in b["pca"]]
        rows.append(["mean image", _v(b["mean_image"]["val_mse"]), _v(b["mean_image"]["test_mse"]),
                     _v(REFERENCE["external"]["mean_image_test_mse"])])
        lr = b["logistic_regression"]
        rows.append(["logistic regression on pixels (accuracy, %)", _v(lr["val_acc"], 2, True),
                     _v(lr["test_acc"], 2, True), _v(REFERENCE["external"]["pixel_logistic_regression_acc"], 1, True)])
        out.append((f"Baselines (fitted on {b['train_size']:,} training images)",
                    ["baseline", "val", "test", "SPEC.md reference (test)"], rows))
    explored = [(a["name"], a["explore"]) for a in results["autoencoders"] if a.get("explore")]
    if explored:
        out.append(("Latent space: feature quality of the frozen latent (test set)",
                    ["autoencoder", "latent size", "k-NN accuracy (k=5)", "linear probe accuracy",
                     "fitted on"],
                    [[name, str(e["latent_dim"]), _v(e["knn_acc"], 2, True), _v(e["linear_probe_acc"], 2, True),
                      f"{e['fit_images']:,} training images"] for name, e in explored]))
    if results.get("targets"):
        out.append(("Targets", ["target", "reached", "epoch", "training seconds into the study", "best value"],
                    [[t["target"], "yes" if t["reached"] else "no", str(t["epoch"] or "–"),
                      f"{t['seconds_into_study']:.0f}" if t["reached"] else "–", f"{t['best']:.4f}"]
                     for t in results["targets"]]))
    out.append(("The study's claims, checked", ["claim", "verdict", "evidence"],
                [[c["claim"], c["verdict"].upper(), c["evidence"]] for c in results["claims"]]))
    return out


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ------------------------------------------------------------------ the report

def write_report(out: str | Path, results: dict, data_dir: str | None = None,
                 verify: bool = True) -> Path:
    out = Path(out)
    figs = out / "figures"
    curves = author_curves()
    figures: list[tuple[str, str]] = []  # (file name, caption)

    for i, ae in enumerate(results["autoencoders"], 1):
        runs = [_metrics(out / r) for r in ae["runs"]]
        name = f"fig{i}_ae_{ae['name']}.png"
        _curve_figure(f"Fig. {i}: {ae['name']} autoencoder", runs,
                      [("train_loss", "train (training mode)"), ("train_eval_loss", "train (eval mode)"),
                       ("val_loss", "validation")], "MSE", curves["autoencoders"].get(ae["name"]),
                      figs / name)
        figures.append((name, f"Fig. {i}: loss per epoch of the {ae['name']} autoencoder, mean ± std "
                              f"over {len(runs)} seed(s); dotted: the author's code"))
    n = len(results["autoencoders"])
    name = "fig5_reconstructions.png" if n == 4 else f"fig{n + 1}_reconstructions.png"
    if _reconstruction_figure(out, results, figs / name, data_dir, verify):
        figures.append((name, f"Fig. {n + 1}: validation images (top) and their reconstructions by each "
                              "autoencoder (seed 0)"))
    k = n + 2
    study_strategies = [c for c in results["classifiers"] if c["strategy"] != "random-frozen"]
    controls = [c for c in results["classifiers"] if c["strategy"] == "random-frozen"]

    def curves_figure(c: dict, number: int) -> None:
        runs = [_metrics(out / r) for r in c["runs"]]
        name = f"fig{number}_clf_{c['name'].replace('/', '-')}.png"
        _curve_figure(f"Fig. {number}: {c['name']} classifier", runs,
                      [("train_acc", "train (training mode)"), ("train_eval_acc", "train (eval mode)"),
                       ("val_acc", "validation")], "accuracy",
                      curves["classifiers"].get(c["name"]), figs / name)
        figures.append((name, f"Fig. {number}: accuracy per epoch of the {c['name']} classifier"
                              f"{' (control)' if c['strategy'] == 'random-frozen' else ''}; dotted: the "
                              "author's code (l_size-1024 encoder, Sigmoid head)"))

    for c in study_strategies:
        curves_figure(c, k)
        k += 1
    for strategy in ("finetune", "scratch"):
        c = next((c for c in results["classifiers"] if c["strategy"] == strategy), None)
        if c is None:
            continue
        summary = read_json(out / c["runs"][0] / "summary.json")
        name = f"fig{k}_confusion_{c['name'].replace('/', '-')}.png"
        _confusion_figure(f"Fig. {k}: {c['name']}, test set (rows: true class)", summary["confusion_matrix"],
                          figs / name)
        figures.append((name, f"Fig. {k}: confusion matrix of the {c['name']} classifier on the test set, "
                              "rows normalised (seed 0)"))
        k += 1
    for c in controls:
        curves_figure(c, k)
        k += 1
    for ae in results["autoencoders"]:  # latent-space views, where the study explored them
        folder = out / ae["runs"][0] / "explore"
        if (folder / "explore.json").is_file():
            for f in read_json(folder / "explore.json")["figures"]:
                name = f"latent_{ae['name']}_{f}"
                atomic_write(figs / name, (folder / f).read_bytes())
                figures.append((name, f"Latent space of the {ae['name']} autoencoder (seed 0): {f[:-4]}"))

    for stale in {p.name for p in figs.glob("*.png")} - {f for f, _ in figures}:
        (figs / stale).unlink()  # from an earlier report of this folder
    provenance = _provenance(out, results)
    title = f"fashionae study {results['study']} — profile {results['profile']}"
    intro = [results.get("description", ""), results.get("profile_note", "")]
    intro = [p for p in intro if p]
    tabs = tables(results)

    md = [f"# {title}", *intro]
    for caption, header, rows in tabs:
        md += [f"## {caption}", _md_table(header, rows)]
    md.append("## Figures")
    md += [f"![{cap}](figures/{f})\n\n*{cap}*" for f, cap in figures]
    md += ["## Provenance", _md_table(["item", "value"], provenance)]
    notes = ("Train figures are re-measured in eval mode after each epoch (the honest estimate); the "
             "training-mode column averages the loss during the epoch with dropout active, as the "
             "author's code also recorded. The report's numbers are the source document's; the "
             "author's code's are its published result files (validation = test set, 60 epochs).")
    md.insert(1 + len(intro), notes)
    atomic_write(out / "report.md", "\n\n".join(md) + "\n")

    body = [f"<h1>{html.escape(title)}</h1>"] + [f"<p>{html.escape(p)}</p>" for p in intro + [notes]]
    for caption, header, rows in tabs:
        body += [f"<h2>{html.escape(caption)}</h2>", _html_table(header, rows)]
    body.append("<h2>Figures</h2>")
    body += [f'<figure><img src="figures/{f}" alt="{html.escape(cap)}"><figcaption>{html.escape(cap)}'
             f"</figcaption></figure>" for f, cap in figures]
    body += ["<h2>Provenance</h2>", _html_table(["item", "value"], provenance)]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}th{background:#f3f3f3}"
             "img{max-width:100%}figure{margin:1.5em 0}figcaption{font-size:13px;color:#444}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    atomic_write(out / "report.html", page)
    return out / "report.html"


def _provenance(out: Path, results: dict) -> list[list[str]]:
    rows = []
    first = read_json(out / results["autoencoders"][0]["runs"][0] / "config.json")
    env = first.get("environment", {})
    for key in ("fashionae", "torch", "python", "device", "precision", "threads", "platform", "git_commit"):
        rows.append([key, str(env.get(key))])
    timing = read_json(out / "timing.json") if (out / "timing.json").is_file() else {}
    if timing:
        rows.append(["wall time of the last `study` invocation", f"{timing['last_invocation_seconds']:.0f} s"])
        if timing.get("command"):
            rows.append(["command", timing["command"]])
    for ae in results["autoencoders"]:
        for s in ae["seeds"]:
            rows.append([f"run ae-{ae['name']} seed {s}", f"{ae['seconds']['values'][ae['seeds'].index(s)]:.0f} s"])
    for c in results["classifiers"]:
        for s in c["seeds"]:
            rows.append([f"run {c['name']} seed {s}", f"{c['seconds']['values'][c['seeds'].index(s)]:.0f} s"])
    return rows
