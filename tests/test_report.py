"""The study report in a real browser: Debian's chromium, headless, driven by Playwright,
on a report built from a smoke study of synthetic data. Playwright never downloads a
browser here: it launches /usr/bin/chromium (CI installs the Debian package)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from fashionae import plots
from fashionae.cli import main
from fashionae.report import write_report
from helpers import PAPER, write_dataset

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = {1280: 900, 390: 844}  # a laptop and a phone: width -> height


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    data = write_dataset(root / "data", n_train=11_000, n_test=300)
    out = root / "study"
    assert main(["study", str(PAPER), "--profile", "smoke", "--data-dir", str(data), "--no-verify",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def pages(study, tmp_path_factory) -> dict[str, Path]:
    """The linked page (beside figures/) and the self-contained one, alone in a folder."""
    linked = study / "linked.html"
    shutil.copy(study / "report.html", linked)
    assert main(["report", str(study), "--self-contained"]) == 0
    alone = tmp_path_factory.mktemp("mail") / "report.html"
    shutil.move(study / "report.html", alone)
    return {"linked": linked, "self-contained": alone}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: the CI machine must install the Debian package chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def test_linked_page_is_small_and_self_contained_page_embeds_every_figure(pages, study):
    linked, alone = pages["linked"].read_text(), pages["self-contained"].read_text()
    figures = sorted(p.name for p in (study / "figures").glob("*.png"))
    assert all(f'src="figures/{f}"' in linked for f in figures)
    assert "data:image" not in linked and "self-contained" not in linked.lower()
    assert len(linked) < 100_000
    assert "figures/" not in alone
    assert alone.count('src="data:image/png;base64,') == len(figures)


@pytest.mark.parametrize("variant", ["linked", "self-contained"])
def test_report_renders_at_laptop_and_phone_widths(pages, browser, variant, tmp_path):
    """Every image loads, the console stays clean, and nothing is wider than the window:
    wide tables scroll inside their own box. Screenshots are left in tmp_path to look at."""
    for width, height in WIDTHS.items():
        page = browser.new_page(viewport={"width": width, "height": height})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url[:80]}"))
        page.goto(pages[variant].as_uri(), wait_until="load")
        shown = page.evaluate("""() => ({
            scrollWidth: document.documentElement.scrollWidth, window: window.innerWidth,
            images: document.images.length,
            broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
                                        .map(i => i.alt),
            verdicts: [...document.querySelectorAll('#claims td:nth-child(2)')].filter(td => td.textContent)
                                                                               .map(td => td.className),
            testColumn: getComputedStyle(document.querySelector('#autoencoders td:nth-child(6)')).textAlign,
        })""")
        page.screenshot(path=str(tmp_path / f"{variant}-{width}.png"), full_page=True)
        page.close()
        assert errors == [], (width, errors)
        assert shown["images"] == 13 and shown["broken"] == [], (width, shown["broken"])
        assert shown["scrollWidth"] <= width == shown["window"], (width, shown["scrollWidth"])
        assert len(shown["verdicts"]) == 8 and all("inconclusive" in c for c in shown["verdicts"])
        assert shown["testColumn"] == "right"


def test_overview_draws_pca_from_baselines_and_conv_at_its_latent_size(study, monkeypatch):
    drawn = {}
    real = plots.mse_by_size
    monkeypatch.setattr(plots, "mse_by_size", lambda *a: (drawn.update(args=a), real(*a)))
    results = json.loads((study / "results.json").read_text())
    write_report(study, results)
    _, linear, pca, points, path = drawn["args"]
    baselines = json.loads((study / "baselines.json").read_text())
    assert pca == [(r["k"], r["test_mse"]) for r in baselines["pca"] if r["k"] < 28 * 28]  # not the exact one
    assert len(pca) >= 5
    assert [k for k, _ in linear] == [64, 512, 1024]
    assert [(name, k) for name, k, _ in points] == [("conv", 3136)]
    assert path.name == "overview_mse_by_size.png" and path.is_file()


def test_damaged_samples_are_one_line_and_the_study_command_writes_them_again(study, tmp_path, capsys):
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    samples = copy / "samples.safetensors"
    samples.write_bytes(samples.read_bytes()[:100])
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"fashionae: error: the study's validation samples {samples} is not a valid "
                          "safetensors file") and err.endswith("run the study command again: it writes them again\n")


def test_runs_without_class_names_report_fashion_mnists_and_a_bad_image_size_is_one_line(study, tmp_path, capsys):
    """The report reads a run's classes and image size through RunFolder, like every other reader:
    a folder from before class names were recorded falls back to Fashion-MNIST's, and a damaged
    size is one line, not an internal error."""
    import json
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    configs = sorted((copy / "runs").glob("*/config.json"))
    for path in configs:
        cfg = json.loads(path.read_text())
        del cfg["data"]["classes"]
        path.write_text(json.dumps(cfg))
    code, _, err = cli(capsys, "report", copy)
    assert code == 0, err
    assert "10 classes (T-shirt/top, Trouser, Pullover" in (copy / "report.md").read_text()
    for path in configs:
        cfg = json.loads(path.read_text())
        cfg["model"]["image_size"] = [28]
        path.write_text(json.dumps(cfg))
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.count("\n") == 1, err
    assert "config.json holds settings this fashionae cannot read (image-size must be [height, width], " \
           "got (28,))" in err


def test_a_reference_column_with_no_classifier_on_its_encoder_is_left_out(study):
    """The author's code's classifier numbers are for the l_size-1024 encoder; the study's
    classifiers are on 512, so that column would be empty: it goes, and the note says why."""
    import json
    from fashionae.report import tables
    results = json.loads((study / "results.json").read_text())
    header = next(h for anchor, _, h, _ in tables(results) if anchor == "classifiers")
    assert "report train / val" in header and "author's code train / val" not in header
    md = (study / "report.md").read_text()
    assert "the author's code's are for the linear-1024 encoder (its result files). A column is left out" in md


# ------------------------------------------------------------------ the figures' text, one helper at a time

def test_verdicts_effects_and_counts_read_as_the_report_prints_them():
    from fashionae.report import _count, _effect, verdict_text
    assert verdict_text({"verdict": "inconclusive", "seeds": 3, "leaning": "supports"}) == \
        "inconclusive (3 seeds; leaning: supports)"
    assert verdict_text({"verdict": "confirmed", "seeds": 3, "leaning": None}) == "confirmed"
    assert (_count(1, "seed"), _count(0, "run"), _count(2, "run")) == ("1 seed", "0 runs", "2 runs")
    points = {"effect": 6.712, "ci": [1.731, 11.694], "unit": "points", "ci_reason": None}
    assert _effect(points) == ("+6.71 pts", "[+1.73 pts, +11.69 pts]")
    relative = {"effect": -0.0163, "ci": [-0.919, 0.462], "unit": "relative to l_size 512", "ci_reason": None}
    assert _effect(relative) == ("-1.6 %", "[-91.9 %, +46.2 %]")
    assert _effect({**points, "ci": None, "ci_reason": "one seed: no interval"}) == ("+6.71 pts", "one seed: no interval")
    for effect in (None, float("nan")):  # no seed, or a diverged run
        assert _effect({**points, "effect": effect, "ci_reason": "diverged"}) == ("–", "diverged")
        assert _effect({**points, "effect": effect, "ci_reason": None}) == ("–", "–")


def test_values_pca_columns_and_interval_families_read_as_the_report_prints_them():
    from fashionae.claims import FAMILY_CONFIDENCE, ci_level
    from fashionae.report import _f, _family, _pca, _pca_row, _v, _without_empty_columns
    assert (_f(None), _v(None)) == ("–", "–")
    assert _f({"mean": 0.01234, "std": 0.002, "values": [0.011, 0.013]}) == "0.0123 ± 0.0020"
    assert _f({"mean": 0.8567, "std": 0.0002, "values": [0.8565, 0.8569]}, 2, pct=True) == "85.67 ± 0.02"
    assert (_v(0.012345), _v(0.8567, 2, pct=True), _v(3, 1)) == ("0.0123", "85.67", "3.0")
    results = {"baselines": {"pca": [{"k": 16, "test_mse": 0.03}, {"k": 64, "test_mse": 0.0105},
                                      {"k": 512, "test_mse": 0.00072}]}}
    assert _pca_row(results, 64)["k"] == 64 and _pca_row(results, 100)["k"] == 64
    assert _pca_row(results, 8) is None and _pca_row(results, None) is None
    assert _pca_row({"baselines": None}, 64) is None
    assert (_pca(results, 64), _pca(results, 1024), _pca(results, 8)) == ("0.0105", "0.0007 (k=512)", "–")
    header = ["model", "report train / val", "PCA test, same k", "val"]
    assert _without_empty_columns(header, [["a", "–", "–", "1"], ["b", "–", "0.2", "–"]]) == \
        (["model", "PCA test, same k", "val"], [["a", "–", "1"], ["b", "0.2", "–"]])
    assert _family([{"intervals": 1}, {}]) == f"{100 * FAMILY_CONFIDENCE:.0f} % confidence intervals over seeds"
    assert _family([]) == _family([{"intervals": 1}])
    assert _family([{"intervals": 4}, {"intervals": 2}]) == (
        f"4 intervals over seeds, each at {100 * ci_level(4):.2f} %: all hold at once with 95 % confidence")
