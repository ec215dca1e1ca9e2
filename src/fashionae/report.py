"""The study's report, ``report.html`` and ``report.md``, drawn from ``results.json`` and
the run folders (reached through ``StudyFolder``/``RunFolder``; no dataset needed).

It opens with a summary (the main figures and the verdicts) and a table of contents, then
two overview figures, the claims, the tables, the figures two or three to a row on a wide
screen (one on a phone), and the provenance of every run. ``report.html`` links
``figures/``; with ``self_contained`` the figures are embedded, to send the page alone.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from . import plots
from .files import atomic_write
from .reference import REFERENCE, author_curves, for_classifier
from .results import classes_of
from .study import StudyFolder


def _f(s: dict | None, digits: int = 4, pct: bool = False) -> str:
    """mean ± std over seeds (the std only with several seeds)."""
    if s is None:
        return "–"
    scale = 100 if pct else 1
    text = f"{s['mean'] * scale:.{digits}f}"
    if len(s["values"]) > 1:
        text += f" ± {s['std'] * scale:.{digits}f}"
    return text


def _v(x, digits=4, pct=False) -> str:
    return "–" if x is None else f"{x * (100 if pct else 1):.{digits}f}"


def _pca(results: dict, k: int | None) -> str:
    """PCA's test MSE with as many components as the latent has (capped at what was fitted)."""
    b = results["baselines"]
    if k is None or not b:
        return "–"
    row = max((r for r in b["pca"] if r["k"] <= k), key=lambda r: r["k"], default=None)
    return "–" if row is None else f"{row['test_mse']:.4f}" + (f" (k={row['k']})" if row["k"] != k else "")


def verdict_text(c: dict) -> str:
    if c["verdict"] in ("inconclusive",):
        return f"inconclusive ({c['seeds']} seed{'s' if c['seeds'] != 1 else ''}; leaning: {c['leaning']})"
    return c["verdict"]


def _effect(c: dict) -> str:
    if c["effect"] is None:
        return "–"
    pct = c["unit"] == "relative"
    fmt = (lambda x: f"{100 * x:+.1f} %") if pct else (lambda x: f"{x:+.2f} pts")  # noqa: E731
    ci = f" [{fmt(c['ci95'][0])}, {fmt(c['ci95'][1])}]" if c["ci95"] else f" ({c['ci_reason']})"
    return fmt(c["effect"]) + ci


# ------------------------------------------------------------------ tables

Table = tuple[str, str, list[str], list[list[str]]]  # (anchor, caption, header, rows)


def tables(results: dict) -> list[Table]:
    fashion = results.get("reference") is not None
    ref_r = REFERENCE["report"] if fashion else {"autoencoders": {}}
    ref_a = REFERENCE["author_code"] if fashion else {"autoencoders": {}}
    out: list[Table] = []
    if results["claims"]:
        out.append(("claims", "The study's claims, tested (95 % confidence intervals over seeds)",
                    ["claim", "verdict", "effect [95 % CI]", "threshold", "evidence"],
                    [[c["claim"], verdict_text(c), _effect(c), c["threshold_meaning"] or "–", c["evidence"]]
                     for c in results["claims"]]))
    ae_rows = []
    for ae in results["autoencoders"]:
        r, a = ref_r["autoencoders"].get(ae["name"], {}), ref_a["autoencoders"].get(ae["name"], {})
        row = [ae["name"], str(ae["epochs"]), _f(ae["train_eval_mse"]), _f(ae["train_mse"]),
               _f(ae["val_mse"]), _f(ae["test_mse"]), f"{ae['best_epoch']['mean']:.0f}"]
        if fashion:
            row += [f"{_v(r.get('train_mse'))} / {_v(r.get('val_mse'))}" if "train_mse" in r else r.get("note", "–"),
                    _v(a.get("val_mse"))]
        ae_rows.append(row + [_pca(results, ae["latent"]),
                              f"{ae['parameters']:,}", f"{ae['seconds']['mean']:.0f}"])
    out.append(("autoencoders", "Autoencoders: MSE per pixel" + (" (Table II)" if fashion else ""),
                ["model", "epochs", "train (eval mode)", "train (training mode)", "val", "test", "best epoch"]
                + (["report train / val", "author's code val"] if fashion else [])
                + ["PCA test, same k", "parameters", "seconds"], ae_rows))
    clf_rows = []
    for c in results["classifiers"]:
        r, a = for_classifier("report", c["encoder"]), for_classifier("author_code", c["encoder"])
        r, a = (r.get(c["strategy"]), a.get(c["strategy"])) if fashion else (None, None)
        row = [c["name"] + (" (control)" if c["strategy"] == "random-frozen" else ""), c["encoder"] or "–",
               "paper (Sigmoid)" if c["paper_head"] else "fixed", str(c["epochs"]),
               _f(c["train_eval_acc"], 2, True), _f(c["train_acc"], 2, True), _f(c["val_acc"], 2, True),
               _f(c["test_acc"], 2, True)]
        if fashion:
            row += [f"{_v(r['train_acc'], 1, True)} / {_v(r['val_acc'], 1, True)}" if r else "–",
                    f"{_v(a['train_acc'], 1, True)} / {_v(a['val_acc'], 1, True)}" if a else "–"]
        clf_rows.append(row + [f"{c['seconds']['mean']:.0f}"])
    if clf_rows:
        out.append(("classifiers", "Classification: accuracy, %",
                    ["strategy", "encoder", "head", "epochs", "train (eval mode)", "train (training mode)",
                     "val", "test"] + (["report train / val", "author's code train / val"] if fashion else [])
                    + ["seconds"], clf_rows))
    b = results["baselines"]
    if b:
        ext = REFERENCE["external"] if fashion else {}
        rows = [[f"PCA, k = {r['k']}", _v(r["val_mse"]), _v(r["test_mse"]),
                 _v(ext.get("pca_test_mse", {}).get(str(r["k"])))] for r in b["pca"]]
        rows.append(["mean image", _v(b["mean_image"]["val_mse"]), _v(b["mean_image"]["test_mse"]),
                     _v(ext.get("mean_image_test_mse"))])
        lr = b["logistic_regression"]
        rows.append([f"logistic regression on pixels, accuracy % ({'converged' if lr.get('converged') else 'not converged'}"
                     f" in {lr['max_iter']} iterations)", _v(lr["val_acc"], 2, True), _v(lr["test_acc"], 2, True),
                     _v(ext.get("pixel_logistic_regression_acc"), 1, True)])
        header = ["baseline", "val", "test", "reference (test)"]
        if not fashion:  # the reference points are Fashion-MNIST's
            header, rows = header[:3], [r[:3] for r in rows]
        out.append(("baselines", f"Baselines (fitted on {b['train_size']:,} training images)", header, rows))
    if results["classifiers"]:
        clfs = results["classifiers"]
        rows = [[name] + [_f(c["per_class_acc"][i], 1, True) for c in clfs]
                for i, name in enumerate(classes_of(results))]
        rows.append(["most confused (seed 0)"] + [f"{c['most_confused']['true']} taken for "
                                                  f"{c['most_confused']['predicted']} ({c['most_confused']['count']}×)"
                                                  for c in clfs])
        out.append(("per-class", "Per-class test accuracy, %", ["class"] + [c["name"] for c in clfs], rows))
    explored = [(a["name"], a["explore"]) for a in results["autoencoders"] if a.get("explore")]
    if explored:
        out.append(("latent", "Latent space: the frozen latent as a feature (test set)",
                    ["autoencoder", "latent size", "k-NN accuracy (k=5)", "linear probe accuracy", "fitted on"],
                    [[name, str(e.get("latent", e.get("latent_dim"))), _v(e["knn_acc"], 2, True),
                      _v(e["linear_probe_acc"], 2, True), f"{e['fit_images']:,} training images"]
                     for name, e in explored]))
    if results.get("targets"):
        out.append(("targets", "Targets (judged on validation figures)",
                    ["target", "reached", "epoch", "training seconds into the study", "best value"],
                    [[t["target"], "yes" if t["reached"] else "no", str(t["epoch"] or "–"),
                      f"{t['seconds_into_study']:.0f}" if t["reached"] else "–", f"{t['best']:.4f}"]
                     for t in results["targets"]]))
    return out


def summary(results: dict) -> list[str]:
    """Three to five sentences: what was run, the main figures, the verdicts."""
    n = results.get("seeds", 1)
    s = [f"Study {results['study']}, profile {results['profile']}: {len(results['autoencoders'])} autoencoder(s) "
         f"and {len(results['classifiers'])} classifier(s) on {results.get('dataset', 'fashion-mnist')}, "
         f"{n} seed{'s' if n != 1 else ''}, validation on {'the test set (the author’s protocol)' if results.get('val') == 'test' else 'held-out training images'}."]
    aes = sorted(results["autoencoders"], key=lambda a: a["test_mse"]["mean"])
    if aes:
        best = aes[0]
        s.append(f"The lowest test MSE is {best['name']}'s, {_f(best['test_mse'])}" + (
            f" (PCA with as many components: {_pca(results, best['latent'])})" if best["latent"] else "") + ".")
    clfs = [c for c in results["classifiers"] if c["strategy"] != "random-frozen"]
    if clfs:
        top = max(clfs, key=lambda c: c["test_acc"]["mean"])
        control = next((c for c in results["classifiers"] if c["strategy"] == "random-frozen"), None)
        s.append(f"The best classifier is {top['name']} at {_f(top['test_acc'], 2, True)} % test accuracy"
                 + (f"; the random-frozen control reaches {_f(control['test_acc'], 2, True)} %" if control else "") + ".")
    claims = results["claims"]
    if claims:
        count = {v: sum(c["verdict"] == v for c in claims) for v in ("confirmed", "refuted", "inconclusive", "not tested")}
        s.append(f"Of the study's {len(claims)} claims, {count['confirmed']} are confirmed, {count['refuted']} refuted, "
                 f"{count['inconclusive']} inconclusive and {count['not tested']} not tested"
                 + (" — one or two seeds cannot confirm or refute anything (see the claims' leanings)." if n < 3 else "."))
    reached = [t for t in results.get("targets", [])]
    if reached:
        s.append("Targets: " + "; ".join(f"{t['target']}: {'reached' if t['reached'] else 'not reached'}"
                                         for t in reached) + ".")
    return s


# ------------------------------------------------------------------ figures

def _figures(folder: StudyFolder, results: dict) -> list[tuple[str, str]]:
    figs = folder / folder.FIGURES
    curves = author_curves() if results.get("reference") else {"autoencoders": {}, "classifiers": {}}
    classes = classes_of(results)
    metrics = {r: folder.run(Path(r).name).metrics() for e in results["autoencoders"] + results["classifiers"]
               for r in e["runs"]}
    out: list[tuple[str, str]] = []

    def add(name: str, caption: str) -> None:
        out.append((name, caption))

    b = results["baselines"]
    linear = [(a["latent"], a["test_mse"]) for a in results["autoencoders"] if a["arch"] == "linear"
              and a["encoder_type"] == "paper"]
    others = [(a["name"], a["latent_size"], a["test_mse"]) for a in results["autoencoders"]
              if not (a["arch"] == "linear" and a["encoder_type"] == "paper")]
    plots.mse_by_size("Test MSE against latent size", linear, [(r["k"], r["test_mse"]) for r in b.get("pca", [])],
                      others, figs / "overview_mse_by_size.png")
    add("overview_mse_by_size.png", "Overview: test MSE against latent size — the linear autoencoders and PCA "
        "at every k (curves), other autoencoders as points (mean ± std over seeds)")
    plots.overlaid_curves("Validation MSE of every autoencoder", [(a["name"], [metrics[r] for r in a["runs"]])
                          for a in results["autoencoders"]], "val_loss", "validation MSE",
                          figs / "overview_val_curves.png")
    add("overview_val_curves.png", "Overview: validation MSE per epoch of every autoencoder (± std over seeds)")

    for i, ae in enumerate(results["autoencoders"], 1):
        name = f"fig{i}_ae_{ae['name']}.png"
        plots.curves(f"Fig. {i}: {ae['name']} autoencoder", [metrics[r] for r in ae["runs"]],
                     [("train_loss", "train (training mode)"), ("train_eval_loss", "train (eval mode)"),
                      ("val_loss", "validation")], "MSE", curves["autoencoders"].get(ae["name"]), figs / name)
        add(name, f"Fig. {i}: loss per epoch of the {ae['name']} autoencoder, mean ± std over "
                  f"{len(ae['runs'])} seed(s); dotted: the author's code")
    k = len(results["autoencoders"]) + 1
    if _reconstructions(folder, results, figs / f"fig{k}_reconstructions.png"):
        add(f"fig{k}_reconstructions.png", f"Fig. {k}: validation images (top) and their reconstructions by "
                                           "each autoencoder (seed 0)")
    k += 1
    ordered = ([c for c in results["classifiers"] if c["strategy"] != "random-frozen"]
               + [c for c in results["classifiers"] if c["strategy"] == "random-frozen"])
    for c in ordered:
        name = f"fig{k}_clf_{c['name'].replace('/', '-')}.png"
        author = curves["classifiers"].get(c["strategy"]) if for_classifier("author_code", c["encoder"]) else None
        plots.curves(f"Fig. {k}: {c['name']} classifier", [metrics[r] for r in c["runs"]],
                     [("train_acc", "train (training mode)"), ("train_eval_acc", "train (eval mode)"),
                      ("val_acc", "validation")], "accuracy", author, figs / name)
        add(name, f"Fig. {k}: accuracy per epoch of the {c['name']} classifier"
                  f"{' (control)' if c['strategy'] == 'random-frozen' else ''}"
                  f"{'; dotted: the author’s code (l_size-1024 encoder, Sigmoid head)' if author else ''}")
        k += 1
    for c in results["classifiers"]:
        if c["strategy"] in ("finetune", "scratch"):
            name = f"fig{k}_confusion_{c['name'].replace('/', '-')}.png"
            plots.confusion(f"Fig. {k}: {c['name']}, test set", c["confusion_matrices"][0], classes, figs / name)
            add(name, f"Fig. {k}: confusion matrix of the {c['name']} classifier on the test set, rows (true "
                      "class) normalised (seed 0)")
            k += 1
    for ae in results["autoencoders"]:  # latent-space views, where the study explored them
        run = folder.run(Path(ae["runs"][0]).name)
        result = run.explore_result()
        for f in (result or {}).get("figures", []):
            name = f"latent_{ae['name']}_{f}"
            atomic_write(figs / name, (run / run.EXPLORE / f).read_bytes())
            add(name, f"Latent space of the {ae['name']} autoencoder (seed 0): {f[:-4].replace('_', ' ')}")
    for stale in {p.name for p in figs.glob("*.png")} - {f for f, _ in out}:
        (figs / stale).unlink()  # from an earlier report of this folder
    return out


def _reconstructions(folder: StudyFolder, results: dict, path: Path) -> bool:
    """The validation images saved with the study, reconstructed by each autoencoder (seed 0)."""
    import torch
    from safetensors.torch import load_file
    from .training import to_inputs
    if not (folder / folder.SAMPLES).is_file():
        return False
    samples = load_file(str(folder / folder.SAMPLES))
    x = to_inputs(samples["images"], "cpu")
    classes = classes_of(results)
    rows = [("original", x[:, 0].numpy())]
    for ae in results["autoencoders"]:
        model = folder.run(Path(ae["runs"][0]).name).load_model()
        with torch.inference_mode():
            rows.append((ae["name"], model.reconstruct(x).float()[:, 0].numpy()))
    plots.image_rows(rows, path, titles=[classes[i] for i in samples["labels"].tolist()])
    return True


# ------------------------------------------------------------------ provenance

def provenance(folder: StudyFolder, results: dict) -> tuple[list[list[str]], list[list[str]]]:
    """(items about the whole study, one row per run)."""
    first = folder.run(Path(results["autoencoders"][0]["runs"][0]).name).raw_config()
    env = first.get("environment", {})
    items = [[k, str(env.get(k))] for k in ("fashionae", "torch", "python", "platform", "git_commit")]
    data = first.get("data", {})
    if data:
        h, w = data["image_size"]
        items.append(["dataset", f"{results.get('dataset')} from {data.get('source')}: {h}x{w} images, "
                                 f"{len(data['classes'])} classes ({', '.join(data['classes'])})"])
    timing = results.get("timing") or {}
    if timing:
        items.append(["wall time of the last `study` invocation", f"{timing['last_invocation_seconds']:.0f} s"])
        items.append(["executor", str(timing.get("executor", "local"))])
        if timing.get("command"):
            items.append(["command", timing["command"]])
    hosts = sorted({r["host"] or "?" for r in results["runs"]})
    items.append(["nodes", ", ".join(hosts)])
    splits = sorted({(r["val_indices_sha256"] or "–")[:16] for r in results["runs"]})
    items.append(["held-out split (SHA-256 of its indices)", ", ".join(splits)])
    rows = [[r["run"], r["device"] or "–", r["precision"] or "–", str(r["hardware"]), str(r["threads"]),
             str(r.get("processes", 1)), r["host"] or "–", f"{r['seconds']:.0f}"] for r in results["runs"]]
    return items, rows


# ------------------------------------------------------------------ writing

def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    return any(ch.isdigit() for ch in cell[:2]) or cell[:1] in "+-–" and len(cell) > 1


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if _numeric(c) else ''}>{html.escape(c)}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:1.5em auto;padding:0 1em;
line-height:1.45;color:#222}h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.summary{background:#f6f8fa;border-left:4px solid #2a7ae2;padding:.6em 1em}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,420px),1fr));gap:1em}
figure{margin:0}img{max-width:100%;height:auto}figcaption{font-size:13px;color:#444}
.inconclusive{color:#777}.confirmed{color:#176f2c;font-weight:600}.refuted{color:#b3261e;font-weight:600}
nav ul{columns:2 220px}"""


def write_report(out: str | Path, results: dict, self_contained: bool = False) -> Path:
    folder = StudyFolder(out)
    figures = _figures(folder, results)
    tabs = tables(results)
    items, run_rows = provenance(folder, results)
    run_header = ["run", "device", "precision", "CPU / GPU", "threads", "processes", "host", "seconds"]
    title = f"fashionae study {results['study']} — profile {results['profile']}"
    intro = [p for p in (results.get("description", ""), results.get("profile_note", "")) if p]
    notes = ("Train figures are re-measured in eval mode after each epoch (the honest estimate); the "
             "training-mode column averages the loss during the epoch with dropout active, as the "
             "author's code also recorded. " + (
                 "A verdict needs at least 3 seeds and a 95 % confidence interval clear of the claim's "
                 "threshold; otherwise it is inconclusive, with the side the mean leans to. The report's "
                 "numbers are the source document's; the author's code's are its published result files "
                 "(validation = test set, 60 epochs). " if results.get("reference") else
                 "The study's claims and reference numbers are about Fashion-MNIST, so they are left out "
                 "on this dataset. ") + "The test set is never used to choose anything.")
    sections = [(a, c) for a, c, _, _ in tabs] + [("figures", "Figures"), ("provenance", "Provenance")]

    md = [f"# {title}", "**Summary.** " + " ".join(summary(results)), *intro, notes,
          "Contents: " + ", ".join(f"[{c}](#{a})" for a, c in sections)]
    for anchor, caption, header, rows in tabs:
        md += [f'<a id="{anchor}"></a>', f"## {caption}", _md_table(header, rows)]
    md += ['<a id="figures"></a>', "## Figures"] + [f"![{cap}](figures/{f})\n\n*{cap}*" for f, cap in figures]
    md += ['<a id="provenance"></a>', "## Provenance", _md_table(["item", "value"], items),
           _md_table(run_header, run_rows)]
    atomic_write(folder / folder.REPORT_MD, "\n\n".join(md) + "\n")

    def src(name: str) -> str:
        if not self_contained:
            return f"figures/{name}"
        return "data:image/png;base64," + base64.b64encode((folder / folder.FIGURES / name).read_bytes()).decode()

    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class=summary><b>Summary.</b> {html.escape(' '.join(summary(results)))}</p>",
            "<nav><b>Contents</b><ul>" + "".join(f'<li><a href="#{a}">{html.escape(c)}</a></li>'
                                                for a, c in sections) + "</ul></nav>"]
    body += [f"<p>{html.escape(p)}</p>" for p in intro + [notes]]
    overview = [f for f in figures if f[0].startswith("overview")]
    body.append("<div class=grid>" + "".join(_figure_html(src(f), cap) for f, cap in overview) + "</div>")
    for anchor, caption, header, rows in tabs:
        table = _html_table(header, rows)
        if anchor == "claims":
            for c in results["claims"]:
                table = table.replace(f"<td>{html.escape(verdict_text(c))}</td>",
                                      f"<td class={c['verdict'].replace(' ', '-')}>{html.escape(verdict_text(c))}</td>", 1)
        body += [f'<h2 id="{anchor}">{html.escape(caption)}</h2>', table]
    body.append('<h2 id="figures">Figures</h2><div class=grid>'
                + "".join(_figure_html(src(f), cap) for f, cap in figures if (f, cap) not in overview) + "</div>")
    body += ['<h2 id="provenance">Provenance</h2>', _html_table(["item", "value"], items),
             _html_table(run_header, run_rows)]
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset='utf-8'>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    atomic_write(folder / folder.REPORT_HTML, page)
    return folder / folder.REPORT_HTML


def _figure_html(src: str, caption: str) -> str:
    return (f'<figure><img src="{src}" alt="{html.escape(caption)}" loading=lazy>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
