"""The study report in a real browser: Debian's chromium, headless, driven by Playwright,
on a report built from a smoke study of synthetic data. Playwright never downloads a
browser here: it launches /usr/bin/chromium (CI installs the Debian package)."""

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from fashionae import plots
from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.progress import seconds_text
from fashionae.report import write_report
from helpers import PAPER, write_dataset
from made_results import ablation, autoencoder, classifier, other_results, results, stats


@pytest.fixture
def drawn(monkeypatch):
    """The figures ``plots`` would save, to look at, closed after the test (pyplot keeps them)."""
    import matplotlib.pyplot as plt
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig))
    yield figures
    for fig in figures:
        plt.close(fig)


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
    """The linked page (beside figures/) and the self-contained one, alone in a folder; of copies
    of the study (the other tests' study stays as the study command wrote it)."""
    linked, embedded = tmp_path_factory.mktemp("linked") / "study", tmp_path_factory.mktemp("embedded") / "study"
    shutil.copytree(study, linked)
    shutil.copytree(study, embedded)
    assert main(["report", str(embedded), "--self-contained"]) == 0
    alone = tmp_path_factory.mktemp("mail") / "report.html"
    shutil.move(embedded / "report.html", alone)
    return {"linked": linked / "report.html", "self-contained": alone}


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
    """Every image loads, the console stays clean, and nothing is wider than the window: on the
    laptop, wide tables scroll inside their own box; on the phone, each table's row is a card of
    its cells, which fits the screen. Screenshots are left in tmp_path to look at."""
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
            overflowing: [...document.querySelectorAll('.scroll')].filter(d => d.scrollWidth > d.clientWidth)
                                                                 .map(d => d.closest('section').id),
            labels: [...document.querySelectorAll('#autoencoders tbody tr:first-child td')]
                        .map(td => getComputedStyle(td, '::before').content),
            height: document.documentElement.scrollHeight,
            reconstructions: (() => {  // a row of its own, as wide as the grid
                const f = document.querySelector('figure:has(img[alt*="reconstructions by each autoencoder"])');
                const r = f.getBoundingClientRect(), grid = f.parentElement.getBoundingClientRect();
                return {full: Math.abs(r.width - grid.width) < 1, beside: [...f.parentElement.children].filter(o =>
                    o !== f && o.getBoundingClientRect().top < r.bottom && o.getBoundingClientRect().bottom > r.top).length};
            })(),
            baselines: [...document.querySelectorAll('#baselines table')].map(t =>
                [...t.querySelectorAll('th')].map(th => th.textContent).slice(1)),
        })""")
        # (a screenshot is at most 16,384 pixels tall)
        page.screenshot(path=str(tmp_path / f"{variant}-{width}.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": width, "height": min(shown["height"], 16_000)})
        page.close()
        assert errors == [], (width, errors)
        assert shown["images"] == 13 and shown["broken"] == [], (width, shown["broken"])
        assert shown["scrollWidth"] <= width == shown["window"], (width, shown["scrollWidth"])
        assert len(shown["verdicts"]) == 8 and all("inconclusive" in c for c in shown["verdicts"])
        assert shown["reconstructions"] == {"full": True, "beside": 0}, (width, shown["reconstructions"])
        assert shown["baselines"] == [["val MSE", "test MSE", "reference test MSE"],  # one table for each unit
                                      ["val accuracy, %", "test accuracy, %", "reference test accuracy, %"]]
        phone = width < 700
        assert shown["testColumn"] == ("left" if phone else "right")
        if phone:  # every cell named by its column
            assert shown["overflowing"] == [], shown["overflowing"]
            assert shown["labels"][:2] == ['"model: "', '"epochs: "'], shown["labels"]
        else:
            assert set(shown["labels"]) == {"none"}, shown["labels"]


def test_a_printed_report_shows_every_column_of_its_tables(pages, browser):
    """On paper a wide table cannot scroll: printed (A4 with margins of 1 cm, 718 pixels), every
    table fits, its cells wrapped and smaller, where on screen it scrolls inside its own box."""
    page = browser.new_page(viewport={"width": 718, "height": 1000})
    page.emulate_media(media="print")
    page.goto(pages["linked"].as_uri(), wait_until="load")
    cut = page.evaluate("""() => [...document.querySelectorAll('.scroll')]
        .filter(d => d.scrollWidth > d.clientWidth + 1 || d.getBoundingClientRect().right > window.innerWidth)
        .map(d => d.closest('section').id)""")
    page.close()
    assert cut == [], cut


def test_report_md_shows_a_studys_words_as_the_html_page_does(tmp_path):
    """A description's tag or stars are text on both pages (report.md rendered them as markup);
    our `code`, a "<=" and the verdicts' own emphasis stay as they were."""
    from fashionae import pages
    page = pages.Page("study <i>mine</i>", "2 *seeds*", [pages.Section("about", "About", [
        "with a <b>tag</b> & *stars*, `code` and val MSE <= 0.05", pages.Note("a <br> note"),
        pages.Table(["change", "verdict"], [["<b>a</b> | *b*", "confirmed"], ["c", "inconclusive"]])])])
    md = pages.markdown_page(page, tmp_path)
    assert "# study &lt;i>mine&lt;/i>\n\n**Summary.** 2 \\*seeds\\*\n" in md
    assert "\nwith a &lt;b>tag&lt;/b> & \\*stars\\*, `code` and val MSE <= 0.05\n\na &lt;br> note\n" in md
    assert "| &lt;b>a&lt;/b> / \\*b\\* | **confirmed** |\n| c | *inconclusive* |" in md
    said = pages.md_text("# A `<b>*code*</b>` study\n- of _this_ &amp; [that](http://x), l_size [CI]\n1. done")
    assert said == "\\# A `<b>*code*</b>` study\n\\- of \\_this\\_ &amp;amp; \\[that](http://x), l_size [CI]\n1\\. done"
    assert pages.md_text("a \\_b\\_\n## notes\n>quote\n---\n[x]: http://y\n2.") == (
        "a \\\\\\_b\\\\\\_\n\\## notes\n\\>quote\n\\---\n\\[x]: http://y\n2\\.")  # each as text
    assert "&lt;b&gt;tag&lt;/b&gt; &amp; *stars*" in pages.html_page(page, tmp_path)  # (as the HTML page shows them)


def test_figures_drawn_with_no_home_make_none(tmp_path):
    """HOME that does not exist (a service's user): matplotlib's folders are a temporary one, and the
    home is never made (the report's first figure imported matplotlib before its folder was chosen,
    which made it, as root)."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR")}
    drawn = tmp_path / "f.png"
    code = ("from pathlib import Path; from fashionae import plots; plots.mse_by_size('t', [(64, {'mean': 0.1, "
            f"'std': 0.01}})], [(16, 0.2)], [], Path({str(drawn)!r}))")
    done = subprocess.run([sys.executable, "-c", code], env={**env, "HOME": str(tmp_path / "nonexistent")},
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert drawn.is_file() and not (tmp_path / "nonexistent").exists()


def test_the_sizes_axis_names_each_model_and_each_pca_k_that_crowds_no_other_tick():
    """A PCA k half a power of two or nearer a model's size, or a smaller k's, is left out (512 and
    600, a training subset's last component count, were drawn as "512600")."""
    assert plots.size_ticks({64, 512}, [16, 64, 128, 400, 600, 784]) == [16, 64, 128, 512, 784]
    assert plots.size_ticks({64, 256}, [16, 64, 128, 256, 512, 600]) == [16, 64, 128, 256, 512]
    assert plots.size_ticks({3136}, []) == [3136]


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
    assert path.name == "overview_mse_by_size.png" and (study / "figures" / path.name).is_file()  # drawn aside, then moved
    # linear models trained otherwise than in their latent are points, not one l_size curve
    other = {**results["autoencoders"][0]["settings"], "model.dropout": 0.0}
    write_report(study, {**results, "autoencoders": [{**results["autoencoders"][0], "settings": other},
                                                     *results["autoencoders"][1:]]})
    _, linear, _, points, _ = drawn["args"]
    assert linear == [] and len(points) == 4


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


def test_a_report_that_cannot_be_written_says_what_the_report_command_can_do(study, tmp_path, capsys):
    """Advice for `report`, which has no --out: a folder in use, a finished run that lost its
    summary (not "run the study again", which refuses it), a file where the runs should be."""
    from fashionae.lock import FolderLock
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    with FolderLock(copy):
        code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.endswith("); wait for it to finish, then report it\n"), err
    def refused(*args):  # a folder we may not write in (a read-only mount; root writes anywhere here)
        raise PermissionError(13, "Permission denied")
    with pytest.MonkeyPatch.context() as m:
        m.setattr("fashionae.files.os.open", refused)
        code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: cannot write in {copy}: Permission denied; copy the study "
                                 "folder somewhere writable and report it there\n"), err
    pages = {p: (copy / p).read_bytes() for p in ("results.json", "report.html", "report.md")}
    names = sorted(p.name for p in copy.iterdir())
    with pytest.MonkeyPatch.context() as m:  # one that says so (a read-only mount): its tables, then why no report
        m.setattr("fashionae.cli.os.access", lambda path, mode: Path(path) != copy)
        code, out, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: cannot write in {copy}, so its report is not written (the "
                                 "tables above are its results); copy the study folder somewhere writable and "
                                 "report it there\n"), err
    assert out.startswith("\nThe study's claims, tested") and "fine-tuning beats" in out, out
    assert {p: (copy / p).read_bytes() for p in pages} == pages and sorted(p.name for p in copy.iterdir()) == names
    run = next((copy / "runs").iterdir())
    (run / "summary.json").unlink()
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.startswith(f"fashionae: error: {run} holds a trained model but neither its "
                                        "summary.json nor a checkpoint"), err
    with pytest.MonkeyPatch.context() as m:  # read-only: its advice is to follow in a copy
        m.setattr("fashionae.cli.os.access", lambda path, mode: Path(path) != copy)
        code, _, read_only = cli(capsys, "report", copy)
    assert code == 2 and read_only == err[:-1] + f" (in a copy: {copy} cannot be written)\n", read_only
    shutil.rmtree(copy / "runs")
    (copy / "runs").write_text("")
    code, _, err = cli(capsys, "report", copy)
    assert (code, err) == (2, f"fashionae: error: {copy / 'runs'} is a file where the study keeps its runs; move "
                              "it out of the way\n")


def test_missing_or_other_baselines_are_refused_not_reported(study, tmp_path, capsys):
    """A study stopped while it computed its baselines, or given another study's: the report
    would lack them, or show figures of other settings, without a word."""
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    baselines = json.loads((copy / "baselines.json").read_text())
    fix = "run the study command again: it computes them again\n"
    (copy / "baselines.json").unlink()
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: baselines {copy / 'baselines.json'} are missing (the study "
                                 f"was stopped before it computed them?); {fix}")
    from fashionae.baselines import BASELINES_SEAL
    from fashionae.files import sealed
    other = baselines["settings"]["train_subset"] + 1  # (computed so, its digest its own: not an edit)
    unsealed = {k: v for k, v in baselines.items() if k != BASELINES_SEAL}
    (copy / "baselines.json").write_text(json.dumps(sealed(
        {**unsealed, "settings": {**baselines["settings"], "train_subset": other}}, BASELINES_SEAL)))
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: baselines {copy / 'baselines.json'} were computed with other "
                                 f"settings (train_subset {other!r} there, {other - 1!r} in the study); {fix}")
    # the same file edited by hand: its digest is not its own
    (copy / "baselines.json").write_text(json.dumps({**baselines, "settings": {**baselines["settings"],
                                                                               "train_subset": other}}))
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: baselines {copy / 'baselines.json'} are damaged or were edited "
                                 f"(it does not match the digest it records); {fix}")
    # a setting the study leaves unset (eval_subset: every image) is compared too
    (copy / "baselines.json").write_text(json.dumps(baselines))
    study_json = json.loads((copy / "study.json").read_text())
    study_json["baselines"]["eval_subset"] = None
    (copy / "study.json").write_text(json.dumps(study_json))
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: baselines {copy / 'baselines.json'} were computed with other "
                                 f"settings (eval_subset {baselines['settings']['eval_subset']} there, all in the "
                                 f"study); {fix}")


def test_a_report_stopped_or_failed_halfway_keeps_the_one_before_and_no_page_contradicts_its_results(
        study, tmp_path, monkeypatch, capsys):
    """results.json, the figures and the pages are written together, once all are whole: a stop
    while the figures are drawn, or a disk that fills as the pages are written, keeps the results
    and report before; a stop among the renames leaves the new results.json without pages, never
    old pages; a bug in drawing the report writes its results.json all the same, without pages."""
    from fashionae import files, report
    from fashionae.results import collect_results
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    before = {**json.loads((copy / "results.json").read_text()), "seeds": 99}  # the results before, say
    (copy / "results.json").write_text(json.dumps(before))
    (copy / "figures" / "fig1_old.png").write_bytes(b"a figure of the report before")
    pages = {p: (copy / p).read_text() for p in ("report.md", "report.html")}
    figures = {p.name: p.read_bytes() for p in (copy / "figures").iterdir()}
    draw = report.draw_figures

    def stopped_halfway(folder, results, figs):
        draw(folder, results, figs)
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "draw_figures", stopped_halfway)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(copy, collect_results(copy))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (copy / "figures").iterdir()} == figures  # drawn aside
    staged = files._staged

    def full_at_html(path, data):  # the disk fills as the last page is written
        if path.name == "report.html":
            raise UserError(f"no space left to write {path}; free some disk space and run again (finished work is kept)")
        return staged(path, data)
    monkeypatch.setattr(files, "_staged", full_at_html)
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.startswith("fashionae: error: no space left to write")
    assert json.loads((copy / "results.json").read_text()) == before
    assert {p: (copy / p).read_text() for p in pages} == pages
    assert {p.name: p.read_bytes() for p in (copy / "figures").iterdir()} == figures
    assert not [p.name for p in copy.iterdir() if p.name.endswith(".tmp")]  # no temporaries left
    assert not (copy / ".report.new").exists()  # nor the figures drawn for the pages not written
    replace = os.replace

    def stop_after_results(tmp, path):
        replace(tmp, path)
        if Path(path).name == "results.json":
            raise KeyboardInterrupt
    monkeypatch.setattr(files, "_staged", staged)
    monkeypatch.setattr(files.os, "replace", stop_after_results)
    new = collect_results(copy)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(copy, new)
    monkeypatch.undo()
    assert json.loads((copy / "results.json").read_text()) == json.loads(json.dumps(new))
    assert not (copy / "report.html").exists() and not (copy / "report.md").exists()
    assert not [p.name for p in copy.iterdir() if p.name.endswith(".tmp")] and not (copy / ".report.new").exists()
    (copy / "results.json").write_text(json.dumps(before))
    monkeypatch.setattr(report, "provenance", lambda *a: 1 / 0)  # a bug in drawing the report
    with pytest.raises(ZeroDivisionError):
        report.write_report(copy, new)
    monkeypatch.undo()  # its results are written all the same, and no page contradicts them
    assert json.loads((copy / "results.json").read_text()) == json.loads(json.dumps(new))
    assert cli(capsys, "report", copy)[0] == 0 and (copy / "report.html").is_file()
    assert not (copy / ".report.new").exists() and not (copy / "figures" / "fig1_old.png").exists()


def test_a_report_replaces_its_own_figures_only(study, tmp_path, capsys):
    """The figures of the report before go (its *.png no longer drawn), the user's other files in
    figures/ stay; a file where figures/ goes is said before anything is drawn, and kept."""
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    (copy / "figures" / "NOTES.txt").write_text("mine")
    (copy / "figures" / "fig99_gone.png").write_bytes(b"of an earlier report")
    assert cli(capsys, "report", copy)[0] == 0
    assert (copy / "figures" / "NOTES.txt").read_text() == "mine" and not (copy / "figures" / "fig99_gone.png").exists()
    assert not (copy / ".report.new").exists()
    from fashionae import studyfolder
    replace = os.replace

    def refused(src, dst):  # figures/ that this user may not write in, say
        if Path(dst).parent == copy / "figures":
            raise PermissionError(13, "Permission denied")
        return replace(src, dst)
    studyfolder.os.replace = refused
    try:
        code, _, err = cli(capsys, "report", copy)
    finally:
        studyfolder.os.replace = replace
    assert code == 2 and err.startswith(f"fashionae: error: cannot write {copy / 'figures'}/") and err.endswith(
        ": Permission denied; the report's pages are not written: run fashionae report again once it can be\n")
    assert not (copy / "report.html").exists()  # the new results.json, no page: none that disagrees
    shutil.rmtree(copy / "figures")
    (copy / "figures").write_text("notes")
    code, _, err = cli(capsys, "report", copy)
    assert (code, err) == (2, f"fashionae: error: {copy / 'figures'} is a file where the report's figures go; move or "
                              f"remove it, and run fashionae report {copy}\n")
    assert (copy / "figures").read_text() == "notes"
    (copy / "figures").unlink()
    (copy / "figures").symlink_to(tmp_path / "nowhere")  # a link to a folder gone: as a file, before the pages go
    pages = sorted(p.name for p in copy.iterdir())
    code, _, err = cli(capsys, "report", copy)
    assert (code, err) == (2, f"fashionae: error: {copy / 'figures'} is a link to {tmp_path / 'nowhere'}, which does "
                              f"not exist, where the report's figures go; move or remove it, and run fashionae report "
                              f"{copy}\n")
    assert sorted(p.name for p in copy.iterdir()) == pages
    (copy / "figures").unlink()
    (tmp_path / "notes.txt").write_text("notes")
    (copy / "figures").symlink_to(tmp_path / "notes.txt")  # a link to a file: said as such, not as gone
    code, _, err = cli(capsys, "report", copy)
    assert (code, err) == (2, f"fashionae: error: {copy / 'figures'} is a link to {tmp_path / 'notes.txt'}, a file, "
                              f"where the report's figures go; move or remove it, and run fashionae report {copy}\n")
    (copy / "figures").unlink()
    (copy / "figures").mkdir()
    access = os.access
    os.access = lambda path, mode: Path(path) != copy / "figures" and access(path, mode)  # (root may write anywhere)
    try:
        code, _, err = cli(capsys, "report", copy)
    finally:
        os.access = access
    assert (code, err) == (2, f"fashionae: error: cannot write in {copy / 'figures'}, where the report's figures go; "
                              "make it writable, or copy the study folder somewhere writable and report it there\n")
    (copy / "report.html").mkdir()  # a folder in a page's place: said, with what to do
    (copy / "report.html" / "mine.txt").write_text("kept")
    code, _, err = cli(capsys, "report", copy)
    assert (code, err) == (2, f"fashionae: error: cannot write {copy / 'report.html'}: a folder is in its place; move "
                              "or remove it\n")
    assert (copy / "report.html" / "mine.txt").read_text() == "kept"


def test_a_run_folder_swapped_for_another_is_refused(study, tmp_path, capsys):
    """The report reads each run where the study put it: two folders swapped (or renamed) would
    pair the wrong runs, so it is refused in one line, as the study command refuses it."""
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    runs = copy / "runs"
    (runs / "ae-linear-64-seed0").rename(runs / "swap")
    (runs / "ae-linear-512-seed0").rename(runs / "ae-linear-64-seed0")
    (runs / "swap").rename(runs / "ae-linear-512-seed0")
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err == (f"fashionae: error: {runs / 'ae-linear-64-seed0'} holds another run than the study's "
                                 "ae-linear-64-seed0 (model.latent: 512 there, 64 in the study): a run folder was moved, renamed "
                                 f"or edited; put it back, or run `fashionae study ... --out {copy}` to see what to "
                                 "train again\n")
    # a classifier whose encoder was trained again since (on other threads, say): that is the cause
    import json
    from helpers import unsealed
    retrained = tmp_path / "retrained"
    shutil.copytree(study, retrained)
    clf = sorted((retrained / "runs").glob("clf-*/config.json"))[0]
    cfg = json.loads(clf.read_text())
    cfg["encoder_sha256"] = "0" * 64
    clf.write_text(json.dumps(cfg))
    unsealed(clf.parent)
    code, _, err = cli(capsys, "report", retrained)
    encoder = Path(cfg["encoder_run"]).name
    assert code == 2 and err == (f"fashionae: error: {clf.parent} holds another run than the study's {clf.parent.name} "
                                 f"(trained on an earlier {encoder}): its encoder was trained on or again since; run "
                                 f"`fashionae study ... --out {retrained}` to see what to train again\n")
    # a study trained on a GPU is reported where there is none: the runs' devices are what they chose
    gpu = tmp_path / "gpu"
    shutil.copytree(study, gpu)
    for path in (gpu / "runs").glob("*/config.json"):
        cfg = json.loads(path.read_text())
        cfg["train"]["device"] = "cuda"
        path.write_text(json.dumps(cfg))
        unsealed(path.parent)
    code, _, err = cli(capsys, "report", gpu)
    assert code == 0, err


def test_a_tampered_model_of_any_run_stops_the_report(study, tmp_path, capsys):
    """Every run's model is checked against its checksum, not only those the figures load: a
    classifier's figures come from its summary, which a changed model no longer backs."""
    from helpers import cli
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    model = sorted((copy / "runs").glob("clf-*/model.safetensors"))[-1]
    raw = bytearray(model.read_bytes())
    raw[-1] ^= 1
    model.write_bytes(bytes(raw))
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.count("\n") == 1 and str(model) in err and "checksum" in err, err


def test_runs_without_class_names_report_fashion_mnists_and_a_bad_image_size_is_one_line(study, tmp_path, capsys):
    """The report reads a run's classes and image size through RunFolder, like every other reader:
    a folder from before class names were recorded falls back to Fashion-MNIST's, and a damaged
    size is one line, not an internal error."""
    import json
    from helpers import cli, unsealed
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    configs = sorted((copy / "runs").glob("*/config.json"))
    for path in configs:
        cfg = json.loads(path.read_text())
        del cfg["data"]["classes"]
        path.write_text(json.dumps(cfg))
        unsealed(path.parent)
    code, _, err = cli(capsys, "report", copy)
    assert code == 0, err
    assert "10 classes (T-shirt/top, Trouser, Pullover" in (copy / "report.md").read_text()
    for path in configs:
        cfg = json.loads(path.read_text())
        cfg["model"]["image_size"] = [28]
        path.write_text(json.dumps(cfg))
    code, _, err = cli(capsys, "report", copy)
    assert code == 2 and err.count("\n") == 1, err
    assert "config.json holds settings this fashionae cannot read (image_size must be [height, width], " \
           "got (28,))" in err


def test_a_reference_column_with_no_classifier_on_its_encoder_is_left_out(study):
    """The author's code's classifier numbers are for the l_size-1024 encoder; the study's
    classifiers are on 512, so that column would be empty: it goes, and the note says why."""
    import json
    from fashionae.report import tables
    results = json.loads((study / "results.json").read_text())
    header = next(h for anchor, _, h, _ in tables(results) if anchor == "classifiers")
    assert "report train / val" in header and "author's code train (eval mode) / val" not in header
    md = (study / "report.md").read_text()
    assert "the author's code's are for the linear-1024 encoder (its result files). A column is left out" in md


# ------------------------------------------------------------------ the figures' text, one helper at a time

def test_verdicts_effects_and_counts_read_as_the_report_prints_them():
    from fashionae.report import _effect, verdict_text
    from fashionae.progress import count
    assert verdict_text({"verdict": "inconclusive", "seeds": 3, "leaning": "supports"}) == \
        "inconclusive (3 seeds; leaning: supports)"
    assert verdict_text({"verdict": "confirmed", "seeds": 3, "leaning": None}) == "confirmed"
    assert (count(1, "seed"), count(0, "run"), count(2, "run"), count(1200, "image")) == (
        "1 seed", "0 runs", "2 runs", "1,200 images")
    points = {"effect": 6.712, "ci": [1.731, 11.694], "unit": "points", "ci_reason": None}
    assert _effect(points) == ("+6.71 pts", "[+1.73 pts, +11.69 pts]")
    relative = {"effect": -0.0163, "ci": [-0.919, 0.462], "unit": "relative to l_size 512", "ci_reason": None}
    assert _effect(relative) == ("-1.6 %", "[-91.9 %, +46.2 %]")
    gain = {"effect": 0.278, "ci": [0.216, 0.34], "unit": "relative gain", "ci_reason": None}  # said as one
    assert _effect(gain) == ("+27.8 % gain", "[+21.6 %, +34.0 %]")
    assert _effect({**points, "ci": None, "ci_reason": "one seed: no interval"}) == ("+6.71 pts", "one seed: no interval")
    for effect in (None, float("nan")):  # no seed, or a diverged run
        assert _effect({**points, "effect": effect, "ci_reason": "diverged"}) == ("–", "diverged")
        assert _effect({**points, "effect": effect, "ci_reason": None}) == ("–", "–")


def test_values_pca_columns_and_interval_families_read_as_the_report_prints_them():
    from fashionae.claims import FAMILY_CONFIDENCE, ci_level
    from fashionae.report import _family, _pca, _without_empty_columns
    from fashionae.results import pca_row
    from fashionae.wording import stat, value
    assert (stat(None), value(None)) == ("–", "–")
    assert stat({"mean": 0.01234, "std": 0.002, "values": [0.011, 0.013]}) == "0.0123 ± 0.0020"
    assert stat({"mean": 0.8567, "std": 0.0002, "values": [0.8565, 0.8569]}, 2, pct=True) == "85.67 ± 0.02"
    assert (value(0.012345), value(0.8567, 2, pct=True), value(3, 1)) == ("0.0123", "85.67", "3.0")
    results = {"baselines": {"pca": [{"k": 16, "test_mse": 0.03}, {"k": 64, "test_mse": 0.0105},
                                      {"k": 512, "test_mse": 0.00072}]}}
    assert pca_row(results, 64)["k"] == 64 and pca_row(results, 100)["k"] == 64
    assert pca_row(results, 8) is None and pca_row(results, None) is None
    assert pca_row({"baselines": None}, 64) is None
    assert (_pca(results, 64), _pca(results, 1024), _pca(results, 8)) == ("0.0105", "0.0007 (k=512)", "–")
    header = ["model", "report train / val", "PCA test, same k", "val"]
    assert _without_empty_columns(header, [["a", "–", "–", "1"], ["b", "–", "0.2", "–"]]) == \
        (["model", "PCA test, same k", "val"], [["a", "–", "1"], ["b", "0.2", "–"]])
    def claims(*intervals, ci=(0.1, 0.2), why=None):  # claims of one part each, their intervals judged together
        return {"claims": [{"parts": [{"intervals": m, "ci": ci, "ci_reason": why} if m else {"ci": ci}]}
                           for m in intervals]}
    assert _family(claims(1, None), "claims") == f"{100 * FAMILY_CONFIDENCE:.0f} % confidence intervals over seeds"
    assert _family(claims(), "claims") == _family(claims(1), "claims") == _family(claims(4), "ablation")
    assert _family(claims(4, 2), "claims") == (
        f"4 intervals over seeds, each at {100 * ci_level(4):.2f} %: all hold at once with 95 % confidence")
    # a table without one interval (one seed) says so, not the confidence its intervals would have had
    one = "one seed: no spread to measure"
    assert _family(claims(4, 4, ci=None, why=one), "claims") == f"{one}, so no intervals"
    mixed = claims(4, ci=None, why=one)["claims"] + claims(4, ci=None, why="a run diverged")["claims"]
    assert _family({"claims": mixed}, "claims") == "no intervals (each line says why)"
    assert "confidence" in _family({"claims": claims(4, ci=None, why=one)["claims"] + claims(4)["claims"]}, "claims")


FASHION_TABLES = '''
## claims: The study's claims, tested (3 intervals over seeds, each at 98.33 %: all hold at once with 95 % confidence)
claim | verdict | part | effect | CI | threshold | evidence
64 is too small | inconclusive (3 seeds; leaning: supports) | worse by 10 % | +21.6 % | [+10.0 %, +35.0 %] | worse by 10 %: threshold | 64 is too small: evidence
conv is better | confirmed | better (confirmed) | -31.0 % | [-40.0 %, -20.0 %] | better: threshold | conv is better: evidence
 |  | much better (inconclusive, leaning: contradicts) | -31.0 % | [-40.0 %, -20.0 %] | much better: threshold |
512 balances | inconclusive (3 seeds; leaning: supports) | see above | +1.0 % | [-10.0 %, +10.0 %] | see above: threshold | 512 balances: evidence
nothing here | not tested | – | – | nothing measured | – | nothing here: evidence
## autoencoders: Autoencoders: MSE per pixel; every figure is the final model's, the best epoch is where validation was lowest; the source's columns (its Table II, the author's result files) are for its model of the same architecture, trained as the author did (the paper profile), beside every model of ours of that architecture, however it was trained
model | epochs | train (eval mode) | train (training mode) | val | test | best epoch | report train / val | author's code val | PCA test, same k | parameters | seconds
linear-64 | 2 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | 0.0233 ± 0.0003 | 2 | 0.0085 / 0.0087 | 0.0222 | 0.0105 | 3,300,000 | 12
linear-512 | 2 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | 0.0192 ± 0.0001 | 2 | 0.0072 / 0.0074 | 0.0089 | 0.0007 | 3,300,000 | 12
linear-1024 | 2 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | 0.0191 ± 0.0001 | 2 | 0.0074 / 0.0076 | 0.0081 | 0.0007 (k=512) | 3,300,000 | 12
conv | 2 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | 0.0102 ± 0.0001 | 2 | slightly better than 512 | 0.0058 | – | 3,300,000 | 12
## classifiers: Classification: accuracy, %
strategy | encoder | head | epochs | train (eval mode) | train (training mode) | val | test | report train / val | author's code train (eval mode) / val | seconds
frozen | linear-512 | logits | 3 | 80.20 ± 0.14 | 70.50 ± 0.71 | 79.50 ± 0.71 | 75.50 ± 0.71 | 89.0 / 87.0 | – | 8
finetune | linear-512 | logits | 3 | 80.20 ± 0.14 | 70.50 ± 0.71 | 79.50 ± 0.71 | 86.50 ± 0.71 | 93.1 / 90.2 | – | 8
random-frozen (control) | linear-512 | paper (Sigmoid) | 3 | 80.20 ± 0.14 | 70.50 ± 0.71 | 79.50 ± 0.71 | 42.00 ± 1.41 | – | – | 8
frozen-1024 | linear-1024 | logits | 3 | 80.20 ± 0.14 | 70.50 ± 0.71 | 79.50 ± 0.71 | 77.50 ± 0.71 | – | 88.0 / 86.9 | 8
## baselines: Baselines (fitted on 8,000 training images): reconstruction, MSE per pixel; reference: published test figures of the same methods on all of Fashion-MNIST, from outside the study
baseline | val MSE | test MSE | reference test MSE
PCA, k = 64 | 0.0103 | 0.0105 | 0.0104
PCA, k = 512 | 0.0007 | 0.0007 | 0.0006
mean image | 0.0951 | 0.0949 | 0.0866
## baselines: Baseline classifier (fitted on the same images): accuracy, %; reference: as above
baseline | val accuracy, % | test accuracy, % | reference test accuracy, %
logistic regression on pixels (not converged in 200 iterations) | 84.12 | 83.77 | 84.0
## per-class: Per-class test accuracy, %
class | frozen | finetune | random-frozen | frozen-1024
T-shirt/top | 75.5 ± 0.7 | 86.5 ± 0.7 | 42.0 ± 1.4 | 77.5 ± 0.7
Trouser | 73.2 ± 0.4 | 84.2 ± 0.4 | 39.8 ± 1.1 | 75.2 ± 0.4
Pullover | 71.0 ± 0.0 | 82.0 ± 0.0 | 37.5 ± 0.7 | 73.0 ± 0.0
Dress | 68.8 ± 0.4 | 79.8 ± 0.4 | 35.2 ± 0.4 | 70.8 ± 0.4
Coat | 66.5 ± 0.7 | 77.5 ± 0.7 | 33.0 ± 0.0 | 68.5 ± 0.7
Sandal | 64.2 ± 1.1 | 75.2 ± 1.1 | 30.8 ± 0.4 | 66.3 ± 1.1
Shirt | 62.0 ± 1.4 | 73.0 ± 1.4 | 28.5 ± 0.7 | 64.0 ± 1.4
Sneaker | 59.7 ± 1.8 | 70.8 ± 1.8 | 26.2 ± 1.1 | 61.7 ± 1.8
Bag | 57.5 ± 2.1 | 68.5 ± 2.1 | 24.0 ± 1.4 | 59.5 ± 2.1
Ankle boot | 55.2 ± 2.5 | 66.2 ± 2.5 | 21.7 ± 1.8 | 57.2 ± 2.5
most confused (seed 0) | Shirt taken for T-shirt/top (41×) | Shirt taken for T-shirt/top (41×) | Shirt taken for T-shirt/top (41×) | Shirt taken for T-shirt/top (41×)
## latent: Latent space: the frozen latent as a feature (each autoencoder's seed-0 run; test set)
autoencoder | latent size | k-NN accuracy (k=5), % | linear probe accuracy, % | fitted on
conv | 3136 | 81.23 | 83.45 | 5,000 training images
## targets: Targets (judged on validation figures of seed 0)
target | reached | epoch | training seconds into the study | best value
val MSE <= 0.02 | yes | 2 | 31 | 0.0191
val acc >= 0.9 | no | – | – | 0.8000
'''
FASHION_SUMMARY = '''
The paper study (quick profile) trained 4 autoencoders and 4 classifiers on Fashion-MNIST with 2 seeds, validated on held-out training images.
The lowest mean test MSE per pixel is conv's, 0.0102 ± 0.0001, the highest linear-64's, 0.0233 ± 0.0003; PCA with 512 components reaches 0.0007 (linear-512: 0.0192 ± 0.0001).
The highest mean test accuracy is finetune's, 86.50 ± 0.71 % (a uniform guess: 10.00 %; the random-frozen control: 42.00 ± 1.41 %; logistic regression on the pixels: 83.77 %).
These rank means over seeds; which differences are real is for the claims to say, of the pairs they compare (no other pair is shown to differ).
With 2 seeds none of the 2 claims the study tests can be confirmed or refuted (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); the claims table gives the side each leans to; 1 more is not tested; “512 balances” follows from the first two.
Targets, on seed 0 alone (a profile's speed to a quality, not a verdict): val MSE <= 0.02: reached; val acc >= 0.9: not reached.
'''
ELSEWHERE_TABLES = '''
## claims: The study's claims, tested (3 intervals over seeds, each at 98.33 %: all hold at once with 95 % confidence)
claim | verdict | part | effect | CI | threshold | evidence
a confirmed one | confirmed | above | +30.0 % | [+20.0 %, +40.0 %] | above: threshold | a confirmed one: evidence
a refuted one | refuted | below | -0.05 pts | [-0.07 pts, -0.03 pts] | below: threshold | a refuted one: evidence
another confirmed | confirmed | above | +25.0 % | [+10.0 %, +40.0 %] | above: threshold | another confirmed: evidence
an open one | inconclusive (3 seeds; leaning: supports) | either | +1.0 % | [-10.0 %, +12.0 %] | either: threshold | an open one: evidence
restates two | confirmed | see above | +30.0 % | [+20.0 %, +40.0 %] | see above: threshold | restates two: evidence
untested | not tested | – | – | nothing measured | – | untested: evidence
## autoencoders: Autoencoders: MSE per pixel; every figure is the final model's, the best epoch is where validation was lowest
model | epochs | train (eval mode) | train (training mode) | val | test | best epoch | PCA test, same k | parameters | seconds
linear-64 | 2 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | 0.0233 ± 0.0002 | 2 | 0.0105 | 3,300,000 | 12
wide | 4 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | nan ± nan | 2 | 0.0105 (k=64) | 3,300,000 | 12
linear-512 | 2 | 0.0303 ± 0.0003 | 0.0404 ± 0.0003 | 0.0252 ± 0.0001 | 0.0192 ± 0.0001 | 2 | 0.0105 (k=64) | 3,300,000 | 12
## classifiers: Classification: accuracy, %
strategy | encoder | head | epochs | train (eval mode) | train (training mode) | val | test | seconds
frozen | – | logits | 3 | 80.20 ± 0.14 | 70.50 ± 0.71 | 79.50 ± 0.71 | 86.50 ± 0.50 | 8
scratch | linear-512 | logits | 3 | 80.20 ± 0.14 | 70.50 ± 0.71 | 79.50 ± 0.71 | 86.50 ± 0.50 | 8
## baselines: Baselines (fitted on 1,200 training images): reconstruction, MSE per pixel
baseline | val MSE | test MSE
PCA, k = 64 | 0.0103 | 0.0105
mean image | 0.0951 | 0.0949
## baselines: Baseline classifier (fitted on the same images): accuracy, %
baseline | val accuracy, % | test accuracy, %
logistic regression on pixels (converged within 100 iterations) | 94.12 | 93.77
## per-class: Per-class test accuracy, %
class | frozen | scratch
zero | 91.0 ± 1.0 | 71.0 ± 1.0
one | 81.0 ± 1.0 | 61.0 ± 1.0
most confused (seed 0) | none (no test image misclassified) | one taken for zero (3×)
## ablation: Ablation: what each change does to the MSE (95 % confidence intervals over seeds)
change | baseline → variant | what differs | seeds | epochs | val MSE, baseline | val MSE, variant | val MSE change [CI] | test MSE change [CI]
dropout after pooling | linear-512 → linear-64 | latent 512 → 64 | 3 | 2 | 0.0205 ± 0.0007 | 0.0192 ± 0.0004 | -12.0 % [-20.0 %, -4.0 %]: lower | -12.0 % [-20.0 %, -4.0 %]
no dropout | linear-512 → wide | dropout 0.2 → 0; epochs 2 → 4 | 3 | 2 → 4 | 0.0205 ± 0.0007 | 0.0192 ± 0.0004 | +8.0 % [+2.0 %, +15.0 %]: higher | +8.0 % [+2.0 %, +15.0 %]
k3 decoder | linear-512 → linear-64 | latent 512 → 64 | 3 | 2 | 0.0205 ± 0.0007 | 0.0192 ± 0.0004 | +1.0 % [-5.0 %, +7.0 %] | +1.0 % [-5.0 %, +7.0 %]
diverging | linear-512 → linear-64 | latent 512 → 64 | 3 | 2 | 0.0205 ± 0.0007 | 0.0192 ± 0.0004 | – a seed's figure is not a number: a run diverged | – a seed's figure is not a number: a run diverged
'''
ELSEWHERE_SUMMARY = '''
The paper study (full profile) trained 3 autoencoders and 2 classifiers on digits with 3 seeds, validated on the test set (the author's protocol).
wide had a run that diverged (a figure that is not a number): left out of the ranking below.
The lowest mean test MSE per pixel is linear-512's, 0.0192 ± 0.0001, the highest linear-64's, 0.0233 ± 0.0002; PCA with 64 components reaches 0.0105 (linear-64: 0.0233 ± 0.0002).
The highest mean test accuracy is shared by frozen and scratch, 86.50 ± 0.50 % (a uniform guess: 50.00 %; logistic regression on the pixels: 93.77 %).
These rank means over seeds; which differences are real is for the claims and the ablation to say, of the pairs they compare (no other pair is shown to differ).
Of the ablation's 3 changes with a figure on every seed, 1 lowers the validation MSE at 95 % confidence (“dropout after pooling”, -12.0 %); 1 raises it at 95 % confidence (“no dropout”, +8.0 %); 1 is not shown to move it (no interval wholly on one side of 0). “diverging”: a run diverged, so no verdict.
Not one change alone: “no dropout” changes dropout 0.2 → 0; epochs 2 → 4.
Of the study's 5 claims with a test of their own, 2 are confirmed (“a confirmed one”; “another confirmed”), 1 is refuted (“a refuted one”), 1 is inconclusive and 1 is not tested. “restates two”, which follows from the first two, is confirmed.
'''


def table_text(results: dict) -> str:
    from fashionae.report import tables
    lines = []
    for anchor, caption, header, rows in tables(results):
        lines += [f"## {anchor}: {caption}", " | ".join(header)] + [" | ".join(row).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def test_an_autoencoder_the_source_does_not_report_gets_a_dash_in_its_columns():
    from fashionae.report import tables
    study = results()
    study["autoencoders"].append(autoencoder("wide", 128, (0.02, 0.021)))
    [(_, _, header, rows)] = [t for t in tables(study) if t[0] == "autoencoders"]
    assert rows[-1][0] == "wide"
    assert rows[-1][header.index("report train / val")] == rows[-1][header.index("author's code val")] == "–"


def test_a_fashion_mnist_studys_tables_and_summary_read_as_pinned():
    """Two seeds: reference columns (the author's code's classifiers are on another encoder, so
    theirs goes), the random-frozen control, the latent probes, targets; no verdicts yet."""
    from fashionae.summary import summary
    assert "\n" + table_text(results()) == FASHION_TABLES
    assert "\n" + "\n".join(summary(results())) + "\n" == FASHION_SUMMARY


def test_another_datasets_tables_and_summary_read_as_pinned():
    """Three seeds on another dataset, validated on the test set: no reference columns, a run that
    diverged, two classifiers tied, an ablation, claims confirmed, refuted, open and untested."""
    from fashionae.summary import summary
    assert "\n" + table_text(other_results()) == ELSEWHERE_TABLES
    assert "\n" + "\n".join(summary(other_results())) + "\n" == ELSEWHERE_SUMMARY


def test_the_terminals_ablation_table_says_which_lines_change_more_than_one_thing():
    """The terminal shows no "what differs" column (the page does): its caption says it instead."""
    from fashionae.report import terminal_tables
    caption = next(c for c, header, _ in terminal_tables(other_results()) if "baseline → variant" in header)
    assert "what differs" not in next(h for c, h, _ in terminal_tables(other_results()) if c == caption)
    assert caption.endswith(". Not one change alone: “no dropout” changes dropout 0.2 → 0; epochs 2 → 4.")
    assert not any("Not one change" in c for c, _, _ in terminal_tables(results()))


def test_the_terminal_counts_the_claims_not_tested_which_the_page_lists_with_why():
    """A study of a question of its own that happens to test a claim showed every claim, most of
    them "not tested", above its own question: the terminal counts those; the page lists them."""
    from fashionae.report import tables, terminal_tables
    r = results()
    (page_caption, page_rows), = [(c, rows) for a, c, _, rows in tables(r) if a == "claims"]
    caption, _, rows = next(t for t in terminal_tables(r) if t[0].startswith("The study's claims"))
    assert [row[0] for row in page_rows if row[1] == "not tested"] == ["nothing here"]
    assert caption == page_caption + "; 1 other not tested here (report.md says why)"
    assert [row[:len(rows[0])] for row in page_rows if row[1] != "not tested"] == rows  # (its columns)
    r["claims"] = [c for c in r["claims"] if c["verdict"] != "not tested"]
    assert next(t for t in terminal_tables(r) if t[0].startswith("The study's claims"))[0] == page_caption


def test_the_terminals_autoencoder_caption_speaks_of_no_column_it_lacks():
    """The source's columns are the page's alone: the terminal's caption does not describe them."""
    from fashionae.report import REPORT_TRAIN_VAL, SOURCE_COLUMNS, tables, terminal_tables
    (page_caption, page_header), = [(c, h) for a, c, h, _ in tables(results()) if a == "autoencoders"]
    assert page_caption.endswith(SOURCE_COLUMNS) and REPORT_TRAIN_VAL in page_header
    caption, header, _ = next(t for t in terminal_tables(results()) if t[0].startswith("Autoencoders"))
    assert caption == page_caption.removesuffix(SOURCE_COLUMNS) and REPORT_TRAIN_VAL not in header


def test_a_seed_that_learned_next_to_nothing_is_named_under_its_table():
    """A collapse (one output for every image) is a number, so no divergence: the seeds whose test
    figure is near the mean image's MSE or a uniform guess's accuracy are named in the captions,
    the terminal's too, the random-frozen control's among them (a random encoder's features with a trained
    layer are far from a guess); none where no seed is, nor for autoencoders without the mean image's MSE."""
    from fashionae.report import tables, terminal_tables
    r = results()
    r["autoencoders"][1] = autoencoder("linear-512", 512, (0.0191, 0.0855))  # 0.9 of the mean image's 0.0949
    r["autoencoders"][2] = autoencoder("linear-1024", 1024, (0.0853, 0.0190))  # just under: trained a little
    r["classifiers"][2] = classifier("random-frozen", "random-frozen", (0.15, 0.43), paper_head=True)
    r["classifiers"][3] = classifier("frozen-1024", "frozen", (0.77, 0.15), encoder="linear-1024")
    captions = {a: c for a, c, _, _ in tables(r)}
    assert captions["autoencoders"].endswith(
        ". Learned next to nothing (a test MSE near the mean image's, 0.0949, or above): linear-512 seed 1 (0.0855); "
        "likely a collapse (the same output for every image), a blow-up or too little training, which counts in the "
        "means and in every comparison that reads its seed, as any seed does: see its curves")
    assert captions["classifiers"] == (
        "Classification: accuracy, %. Learned next to nothing (a test accuracy near a uniform guess's, 10.00 %, or "
        "below): random-frozen seed 0 (15.00 %), frozen-1024 seed 1 (15.00 %); likely a collapse (the same output "
        "for every image), a blow-up or too little training, which counts in the means and in every comparison that "
        "reads its seed, as any seed does: see their curves")
    assert sum("random-frozen seed 0" in c or "linear-512 seed 1" in c for c, _, _ in terminal_tables(r)) == 2
    r["classifiers"][3] = classifier("frozen-1024", "frozen", (0.77, 0.151), encoder="linear-1024")  # just over
    assert "frozen-1024" not in next(c for a, c, _, _ in tables(r) if a == "classifiers")
    two = results(classes=["cat", "dog"], classifiers=[classifier("frozen", "frozen", (0.55, 0.74, 0.551))])
    assert next(c for a, c, _, _ in tables(two) if a == "classifiers").endswith(
        "(a test accuracy near a uniform guess's, 50.00 %, or below): frozen seed 0 (55.00 %); likely a collapse (the "
        "same output for every image), a blow-up or too little training, which counts in the means and in every "
        "comparison that reads its seed, as any seed does: see its curves")  # 5 points above a guess, whatever the classes
    r["baselines"] = r["mean_image"] = None  # (a folder of 0.3.22 or before without baselines)
    assert "Learned" not in next(c for a, c, _, _ in tables(r) if a == "autoencoders")
    assert not any("Learned" in c for _, c, _, _ in tables(results()))


def test_an_ablation_figures_caption_names_its_scale_only_where_it_has_one():
    """The MSE figure's intervals are on the log scale; the accuracy figure's (no scale given) are
    plain t-intervals, its caption naming no scale."""
    from fashionae.figures import _intervals
    with_ci = {"claims": [{"parts": [{"ci": [0.1, 0.2], "intervals": 2}]}]}
    tail = " (the table's intervals hold all at once with 95 % confidence)"
    assert _intervals(with_ci, "claims") == ", with its t-interval" + tail
    assert _intervals(with_ci, "claims", "on the log scale") == ", with its t-interval on the log scale" + tail


def test_the_provenance_gives_each_runs_record_and_marks_what_was_not_recorded(study, tmp_path):
    """Every value of the provenance, item by item and run by run, from the files the study
    wrote; then the same study as if a run had recorded no host, device, precision or split
    (each reads –, never a guess) nor a process count (one), and the study no command."""
    import copy
    from fashionae.data import CLASSES
    from fashionae.report import provenance
    from fashionae.studyfolder import StudyFolder
    results = json.loads((study / "results.json").read_text())
    config = json.loads((study / results["autoencoders"][0]["runs"][0] / "config.json").read_text())
    env, timing = config["environment"], results["timing"]
    items, rows = provenance(StudyFolder(study), results)
    # (no git commit where the package is not run from its checkout: an sdist's, a mutation run's)
    assert items[:5] == [[k, "–" if env[k] is None else str(env[k])]
                         for k in ("fashionae", "torch", "python", "platform", "git_commit")]
    assert dict(items)["dataset"] == \
        f"fashion-mnist from {config['data']['source']}: 28x28 images, 10 classes ({', '.join(CLASSES)})"
    said = dict(items)["wall time of the last `study` invocation that trained"]
    assert said == f"{seconds_text(timing['last_invocation_seconds'])} s"
    # whole seconds, and under one a tenth: a tiny run's is not "0"
    assert [seconds_text(x) for x in (0.04, 0.44, 0.949, 0.95, 7.6, 1234.5)] == ["0.0", "0.4", "0.9", "1", "8", "1234"]
    assert dict(items)["command"] == timing["command"] and timing["command"]
    assert dict(items)["nodes"] == ", ".join(sorted({r["host"] for r in results["runs"]}))
    assert dict(items)["held-out split (SHA-256 of its indices)"] == results["runs"][0]["val_indices_sha256"][:16]
    assert len({r["val_indices_sha256"] for r in results["runs"]}) == 1  # one split for the whole study
    assert rows == [[r["run"], r["device"], r["precision"], str(r["hardware"]), str(r["threads"]), "1",
                     r["host"], r["executor"], "1", seconds_text(r["seconds"])] for r in results["runs"]]

    bare = copy.deepcopy(results)
    first = bare["runs"][0]
    first.update(host=None, device=None, precision=None, val_indices_sha256=None)
    del first["processes"]
    bare["timing"] = {"last_invocation_seconds": 7.4}
    bare_items, bare_rows = provenance(StudyFolder(study), bare)
    bare_items = dict(bare_items)
    assert bare_items["executor"] == "local" and "command" not in bare_items
    assert bare_items["wall time of the last `study` invocation that trained"] == "7 s"
    assert bare_items["nodes"] == dict(items)["nodes"]  # every session's, from the run folders
    assert bare_items["held-out split (SHA-256 of its indices)"] == \
        ", ".join(sorted({"–", results["runs"][1]["val_indices_sha256"][:16]}))
    assert bare_rows[0][1:3] == ["–", "–"] and bare_rows[0][5:7] == ["1", "–"] and bare_rows[1:] == rows[1:]
    bare["timing"]["executor"] = "ray (local)"
    bare["runs"][1]["processes"] = 2  # under torchrun
    items, rows = provenance(StudyFolder(study), bare)
    assert dict(items)["executor"] == "ray (local)" and rows[1][5] == "2"
    del bare["timing"]
    assert "executor" not in dict(provenance(StudyFolder(study), bare)[0])
    # runs of one study made by two versions of the code: each named, with its number of runs
    shutil.copytree(study, tmp_path / "mixed")
    edited = tmp_path / "mixed" / "runs" / results["runs"][-1]["run"] / "config.json"
    config = json.loads(edited.read_text())
    config["environment"]["git_commit"] = "0123abc+dirty"
    edited.write_text(json.dumps(config))
    n = len(results["runs"])
    assert dict(provenance(StudyFolder(tmp_path / "mixed"), results)[0])["git_commit"] == \
        f"{env['git_commit'] or '–'} ({n - 1} runs), 0123abc+dirty (1 run)"
    config["environment"]["earlier_sessions"] = [{**config["environment"], "git_commit": "fedcba9",
                                                  "host": "node-b", "executor": "ray"}]
    edited.write_text(json.dumps(config))  # resumed under another commit: both made it
    mixed = dict(provenance(StudyFolder(tmp_path / "mixed"), results)[0])
    assert mixed["git_commit"] == \
        f"{env['git_commit'] or '–'} ({n - 1} runs), fedcba9 (1 run), 0123abc+dirty (1 run) (a run resumed under another " \
        "counts under each)"  # the earlier first; the counts add up to one more than the runs
    assert mixed["nodes"] == ", ".join(sorted({"node-b", env["host"]}))
    # the run's own row: its sessions, and where each ran
    from fashionae.results import _run_info
    from fashionae.runfolder import RunFolder
    info = _run_info("r", RunFolder(edited.parent))
    assert (info["host"], info["executor"], info["sessions"]) == (f"node-b → {env['host']}", "ray → local", 2)


def test_each_table_has_its_note_and_reference_columns_add_theirs():
    from fashionae.report import NOTES, REFERENCE_NOTES, _notes
    from made_results import results
    r = results()  # (its classifiers record no confusion matrix: no count of test images)
    assert _notes("claims", ["claim"], r) == [NOTES["claims"]]
    assert _notes("autoencoders", ["model", "val"], r) == [NOTES["autoencoders"]]
    assert _notes("autoencoders", ["model", "author's code val"], r) == \
        [NOTES["autoencoders"] + " " + REFERENCE_NOTES["autoencoders"]]
    assert _notes("per-class", ["class", "report train / val"], r) == []


def test_the_claims_note_gives_the_test_sets_own_sampling_error_at_its_size_and_accuracies():
    from fashionae.report import NOTES, _notes
    from made_results import classifier, results

    def scored(name, strategy, accs, n):  # a confusion matrix of n images, spread evenly
        return classifier(name, strategy, accs, confusion_matrices=[[[n // 10] * 10] * 10])
    r = results(classifiers=[scored("finetune", "finetune", (0.90, 0.90), 100), scored("frozen", "frozen", (0.70, 0.70), 100),
                             scored("random-frozen", "random-frozen", (0.5, 0.5), 100)])
    note = _notes("claims", ["claim"], r)[0]
    assert note.startswith(NOTES["claims"] + " Those test images are 1,000: another test set of their size would "
                           "typically move each classifier's accuracy by about 0.9 to 1.4 points (√(p(1 − p)/n)")
    r["classifiers"][1]["confusion_matrices"] = [[[500] * 10] * 10]  # 5,000 images: the smallest count is said
    assert "Those test images are 1,000 or more: " in _notes("claims", ["claim"], r)[0]


def test_the_written_report_holds_the_summary_each_table_its_figures_and_the_provenance(study, tmp_path):
    """``write_report`` called here (the fixture's report was written inside the study command):
    report.md and report.html, linked and self-contained, section by section."""
    import html
    import re
    from fashionae import pages as page_parts
    from fashionae.report import SECTIONS, _notes, provenance, tables
    from fashionae.summary import summary
    from fashionae.studyfolder import StudyFolder
    out = tmp_path / "study"
    shutil.copytree(study, out)
    results = json.loads((out / "results.json").read_text())
    assert write_report(out, results) == out / "report.html"
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    sections = ["overview", "about", "claims", "autoencoders", "classifiers", "baselines", "per-class", "figures",
                "provenance"]
    names = ["Overview", "About this study", "Claims", "Autoencoders", "Classifiers", "Baselines",
             "Per-class accuracy", "Figures", "Provenance"]

    blocks = md.split("\n\n")
    assert blocks[:3] == ["# fashionae study paper — profile smoke", "**Summary.** " + " ".join(summary(results)),
                          "**Contents:** " + " · ".join(f"[{n}](#{a})" for n, a in zip(names, sections))]
    assert re.findall(r'<a id="([^"]+)"></a>', md) == sections
    assert [b for b in blocks if b.startswith("## ")] == (
        ["## Overview", "## About this study"]
        + [f"## {SECTIONS[anchor]}" for anchor in dict.fromkeys(anchor for anchor, _, _, _ in tables(results))]
        + ["## Figures", "## Provenance"])
    assert [b for b in blocks if b.startswith("### ")] == ["### Autoencoders", "### Classifiers"]
    at = {}
    for anchor, caption, header, rows in tables(results):  # each table under its heading and caption, then its note
        at[anchor] = at.get(anchor, blocks.index(f"## {SECTIONS[anchor]}") + 1)  # an anchor's next table after the last
        part = [caption, page_parts.md_table(header, rows), *_notes(anchor, header, results)]
        assert blocks[at[anchor]: at[anchor] + len(part)] == part
        at[anchor] += len(part)
    baselines = [(caption, header) for anchor, caption, header, _ in tables(results) if anchor == "baselines"]
    assert [(c.split(": ")[1].split(";")[0], h[1:]) for c, h in baselines] == [  # one table for each unit
        ("reconstruction, MSE per pixel", ["val MSE", "test MSE", "reference test MSE"]),
        ("accuracy, %", ["val accuracy, %", "test accuracy, %", "reference test accuracy, %"])]
    assert re.findall(r"<section id=baselines>.*?</section>", page)[0].count("<table>") == 2
    shown = re.findall(r'<img src="figures/([^"]+)" width=\d+ height=\d+ alt="([^"]+)">\n\n\*([^*]+)\*', md)
    assert sorted(f for f, _, _ in shown) == figures and all(alt == html.escape(caption) for _, alt, caption in shown)
    captions = {f: caption for f, _, caption in shown}  # the author's epochs beside ours, the curves not drawn
    assert "whose epochs are 60,000 images at a constant learning rate (here: " in captions["fig1_ae_linear-64.png"]
    assert captions["fig6_clf_frozen.png"].endswith("; the author's curves, of another encoder (l_size 1024), "
                                                    "are not drawn.")
    assert "The test set is never used to choose anything" in md and "None of the source study's claims" not in md

    items, run_rows = provenance(StudyFolder(out), results)
    assert [k for k, _ in items] == ["fashionae", "torch", "python", "platform", "git_commit", "dataset",
                                     "wall time of the last `study` invocation that trained", "executor", "command", "nodes",
                                     "held-out split (SHA-256 of its indices)"]
    assert dict(items)["torch"] == torch.__version__ and dict(items)["executor"] == "local"
    assert dict(items)["dataset"].startswith("fashion-mnist from ") and ": 28x28 images, 10 classes (T-shirt/top, " \
        in dict(items)["dataset"]
    assert [r[0] for r in run_rows] == [r["run"] for r in results["runs"]] and {len(r) for r in run_rows} == {10}
    first = out / results["autoencoders"][0]["runs"][0] / "config.json"
    config = json.loads(first.read_text())
    first.write_text(json.dumps({k: v for k, v in config.items() if k != "environment"}))  # as if not recorded
    assert provenance(StudyFolder(out), results)[0][:5] == [[k, v if v == "–" else f"{v} ({len(run_rows) - 1} runs), – (1 run)"]
                                                            for k, v in items[:5]]
    first.write_text(json.dumps(config))
    assert md.endswith(page_parts.md_table(["item", "value"], items + [["figures", "figures/, beside this page"]])
                       + "\n\n" + page_parts.md_table(["run", "device", "precision", "CPU / GPU", "threads",
                                                       "processes", "host", "executor", "sessions", "seconds"],
                                                      run_rows) + "\n")

    title = "fashionae study paper — profile smoke"
    assert page.startswith(f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=viewport content="
                           f"'width=device-width, initial-scale=1'><title>{html.escape(title)}</title><style>")
    assert f"<header><h1>{html.escape(title)}</h1><p class=summary><b>Summary.</b> " \
           f"{page_parts.text(' '.join(summary(results)))}</p><nav><b>Contents</b><ul>" + "".join(
               f'<li><a href="#{a}">{page_parts.text(n)}</a></li>' for n, a in zip(names, sections)) + \
           "</ul></nav></header>" in page
    assert re.findall(r"<section id=([\w-]+)><h2>", page) == sections
    assert page.count("<figure") == len(figures) and page.endswith("</body></html>\n")
    for f in figures:
        pixels = page_parts.png_size((out / "figures" / f).read_bytes())
        width, height = (round(n / 2) for n in pixels)  # drawn with twice the pixels shown
        wide = " class=wide" if page_parts.wide_figure(width, height) or f.endswith("_reconstructions.png") else ""
        assert re.search(f'<figure{wide}><a href="figures/{re.escape(f)}"><img src="figures/{re.escape(f)}" width={width} '
                         f'height={height} alt="', page)  # linked: it opens at full size
        assert f'\n\n<img src="figures/{f}" width={width} height={height} alt="' in md  # its size on the page
    assert write_report(out, results, self_contained=True) == out / "report.html"
    alone = (out / "report.html").read_text()
    assert alone.count('src="data:image/png;base64,') == len(figures) and 'src="figures/' not in alone
    assert "embedded in this page" in alone  # report.md links its figures still, and says so
    assert "embedded" not in (out / "report.md").read_text() and "figures/, beside this page" in (out / "report.md").read_text()


def test_a_figure_spans_the_page_when_it_is_a_large_row_of_images():
    from fashionae.pages import wide_figure
    assert wide_figure(1601, 1000) and wide_figure(801, 500)
    assert not wide_figure(1600, 1000) and not wide_figure(800, 400) and not wide_figure(1000, 1000)


def test_a_figure_of_images_takes_a_row_of_its_own():
    """The reconstructions and a latent interpolation: their images too small to read in a column."""
    from fashionae.figures import takes_a_row
    assert takes_a_row("fig5_reconstructions.png") and takes_a_row("latent_conv_interpolation.png")
    assert not any(map(takes_a_row, ["fig1_ae_conv.png", "fig10_confusion_finetune.png", "latent_conv_latent_tsne.png",
                                     "overview_val_curves.png"]))


def test_about_this_study_says_how_validation_was_chosen_and_what_was_left_out(study, tmp_path):
    """One paragraph on the validation set, by split; one on the claims where none is tested,
    by why: the dataset is not Fashion-MNIST, or no claim compares the study's models."""
    out = tmp_path / "study"
    shutil.copytree(study, out)
    results = json.loads((out / "results.json").read_text())
    holdout = ("The test set is never used to choose anything: every choice (the best epoch; the best encoder and "
               "the targets, where the study asks for them) is made on validation figures (held-out training images).")
    on_test = ("Validation is the test set here (the author's protocol): the best epoch, chosen on validation "
               "figures, has seen the test set (a study refuses the best encoder and targets there).")
    no_claim = "None of the source study's claims compares models that this study trains, so none is tested here."
    other_data = ("The study's claims and reference numbers are about Fashion-MNIST, so they are left out on this "
                  "dataset.")

    def about(changes: dict) -> list[str]:
        write_report(out, {**results, **changes})
        blocks = (out / "report.md").read_text().split("\n\n")
        start = blocks.index("## About this study") + 1
        return blocks[start:blocks.index('<a id="claims"></a>' if '<a id="claims"></a>' in blocks else
                                         '<a id="autoencoders"></a>')]
    described = [p for p in (results.get("description"), results.get("profile_note")) if p]
    assert results["claims"] and results["reference"]  # the smoke study's own: nothing left out
    assert about({}) == described + [holdout]
    assert about({"val": "test"}) == described + [on_test]
    assert about({"claims": []}) == described + [holdout, no_claim]
    assert about({"claims": [], "reference": None}) == described + [holdout, other_data]
    assert about({"reference": None}) == described + [holdout, other_data]


def test_the_terminal_shows_the_reports_tables_without_what_only_the_page_holds(study, capsys):
    from fashionae.report import PAGE_ONLY_COLUMNS, PAGE_ONLY_TABLES, SOURCE_COLUMNS, tables
    assert main(["report", str(study)]) == 0
    out = capsys.readouterr().out
    report_tables = [(anchor, caption, header) for anchor, caption, header, _ in
                     tables(json.loads((study / "results.json").read_text()))]
    assert any(anchor in PAGE_ONLY_TABLES for anchor, _, _ in report_tables)  # so each check below can fail
    assert any(h in PAGE_ONLY_COLUMNS for anchor, _, header in report_tables if anchor not in PAGE_ONLY_TABLES
               for h in header)
    for anchor, caption, header in report_tables:
        if anchor in PAGE_ONLY_TABLES:
            assert f"\n{caption}\n" not in out
            continue
        shown = out.split(f"\n{caption.replace(SOURCE_COLUMNS, '')}\n")[1].splitlines()[0]  # (of page-only columns)
        assert [h for h in header if h in shown] == [h for h in header if h not in PAGE_ONLY_COLUMNS]


def test_the_authors_curve_of_one_epoch_is_drawn_as_a_point(tmp_path, drawn):
    """A one-epoch run's figure says "dotted: the author's code": its single point must show
    (a dotted line through one point draws nothing)."""
    runs = [[{"train_loss": 0.03, "val_loss": 0.02}], [{"train_loss": 0.05, "val_loss": 0.04}]]
    author = {"train_loss": [0.05, 0.04], "val_loss": [0.045, 0.03]}
    plots.curves("one epoch", runs, [("train_loss", "train"), ("val_loss", "validation")], "MSE", author,
                 tmp_path / "f.png")
    ax = drawn[0].axes[0]
    dotted = [line for line in ax.lines if line.get_linestyle() == ":" and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in dotted] == [[0.85], [1.15]]  # beside each other, as ours
    assert all(line.get_marker() not in (None, "None", "") for line in dotted)
    # the legend says a point (×), and the seeds' std, which a band of one epoch cannot show, is a bar
    (box,) = drawn[0].legends or [ax.get_legend()]
    legend = {t.get_text(): h for t, h in zip(box.get_texts(), box.legend_handles)}
    assert legend["author's code (×)"].get_marker() == "x"
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 2 and not any("Poly" in type(c).__name__ for c in ax.collections)  # bars, no band


def test_curves_of_one_epoch_stand_side_by_side(tmp_path, drawn):
    """Several models of one epoch each, 2 seeds: their points and std bars apart, within the epoch."""
    models = [(name, [[{"val_loss": v}], [{"val_loss": v * 1.2}]]) for name, v in (("a", 0.03), ("b", 0.02), ("c", 0.01))]
    plots.overlaid_curves("one epoch", models, "val_loss", "MSE", tmp_path / "f.png")
    ax = drawn[0].axes[0]
    xs = [float(line.get_xdata()[0]) for line in ax.lines if line.get_label() in ("a", "b", "c")]
    assert xs == pytest.approx([0.85, 1.0, 1.15])
    assert sum(type(c).__name__ == "ErrorbarContainer" for c in ax.containers) == 3


def test_the_forest_plot_keeps_to_the_changes_and_writes_a_far_end(tmp_path, drawn):
    """Two seeds' relative interval reaches +15,000 % and another's no end: the axis keeps to the
    changes and the other ends (a relative change is above -100 %), the far ends written at its
    edge as the report writes them; without a far end (a ±50 % interval about no change is not
    far), nothing is written and the axis is matplotlib's. In points, an end beyond ±100 is drawn at
    that bound, as the table shows it (a difference of accuracies lies within it)."""
    rows = [("a", -0.3, [-0.5, 150.0]), ("b", 0.1, [-0.15, 0.18]), ("c", -0.05, None), ("d", 0.2, [-0.99, math.inf])]
    plots.effects("far", rows, "change, %", tmp_path / "f.png")
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.texts] == ["> +10,000 →", "> +10,000 →"]
    low, high = ax.get_xlim()
    assert -118 < low < -116 and 37 < high < 39  # -99 and +20 %, with 15 % of room for the written ends
    plots.effects("near", [("a", 0.0, [-0.5, 0.5]), *rows[1:3]], "change, %", tmp_path / "g.png")
    assert not drawn[1].axes[0].texts and drawn[1].axes[0].get_xlim()[1] > 50
    plots.effects("points", [("a", 0.5, [-250.0, 3.0])], "change, points", tmp_path / "h.png", scale=1)
    assert not drawn[2].axes[0].texts and -111 < drawn[2].axes[0].get_xlim()[0] < -100


def test_a_forest_plots_labels_are_wrapped_and_stay_apart(tmp_path, drawn):
    """A long change takes three lines of whole words at most (its table says it whole), a
    classifier's strategy always its own last line; two changes cut alike are each shown whole."""
    long = "latent 256 instead of 64, a longer description to test wrapping in the first column of the table"
    plots.effects("t", [(f"{long}\n(frozen)", 1.0, None), (f"{long}\n(finetune)", 2.0, None),
                        ("encoder_type=paper_with_batchnorm_everywhere", 0.5, None)], "points", tmp_path / "f", scale=1)
    labels = [t.get_text() for t in drawn[0].axes[0].get_yticklabels()]
    assert labels == ["latent 256 instead of 64, a\nlonger description to test …\n(frozen)",
                      "latent 256 instead of 64, a\nlonger description to test …\n(finetune)",
                      "encoder_type=paper_with_batchnorm_everywhere"]
    plots.effects("t", [(long + " (one)", 1.0, None), (long + " (two)", 2.0, None)], "%", tmp_path / "g")
    assert [t.get_text().endswith(end) for t, end in zip(drawn[1].axes[0].get_yticklabels(), ("(one)", "(two)"))] \
        == [True, True]


def test_a_figure_is_drawn_with_twice_the_pixels_the_page_shows(tmp_path):
    """Sharp on a HiDPI screen: 5 x 3 inches and the tight box's margins of 0.1 inch, shown at
    120 dpi (624 x 384), drawn with 1248 x 768 pixels."""
    from fashionae.pages import png_size, shown_size
    plots.save(plots.plt().figure(figsize=(5, 3)), tmp_path / "f.png")
    data = (tmp_path / "f.png").read_bytes()
    assert png_size(data) == (1248, 768) and shown_size(data) == (624, 384)


def test_curves_in_percent_keep_every_series_in_view(tmp_path, drawn):
    """Accuracy is drawn in % (the tables' unit), the author's too; each series has its own dashes,
    and an earlier one lies above a later one (train in eval mode over validation, which it often hides)."""
    runs = [[{"train_acc": 0.5, "val_acc": 0.6}, {"train_acc": 0.7, "val_acc": 0.8}]]
    plots.curves("acc", runs, [("train_acc", "train"), ("val_acc", "validation")], "accuracy, %",
                 {"train_acc": [0.4, 0.45]}, tmp_path / "f.png", scale=100)
    lines = [line for line in drawn[0].axes[0].lines if len(line.get_xdata())]
    ours = [line for line in lines if line.get_linestyle() != ":"]
    assert [list(line.get_ydata()) for line in ours] == [[50.0, 70.0], [60.0, 80.0]]
    assert [list(line.get_ydata()) for line in lines if line.get_linestyle() == ":"] == [[40.0, 45.0]]
    assert ours[0].get_linestyle() != ours[1].get_linestyle() and ours[0].get_zorder() > ours[1].get_zorder()
    assert all(line.get_zorder() > ours[0].get_zorder() for line in lines if line.get_linestyle() == ":")  # the author's on top


def test_page_text_shows_code_and_keeps_a_number_with_its_unit():
    from fashionae.pages import text
    assert text("what `make run` runs <here>") == "what <code>make run</code> runs &lt;here&gt;"
    assert text("83.90 ± 0.11 % and +4.4 pts in 3 seeds") == "83.90\u00a0±\u00a00.11\u00a0% and +4.4\u00a0pts in 3 seeds"


def test_markdown_and_terminal_tables_mark_verdicts_and_keep_their_columns():
    """report.md's tables: a verdict confirmed or refuted in bold, another in italics, a "|" in a
    cell not taken for a column's end; the terminal's: each column as wide as its widest cell or
    its header."""
    from fashionae.pages import md_table, text_table
    assert md_table(["model", "verdict", "note"], [["a", "confirmed", "x|y"], ["b", "refuted", ""],
                                                   ["c", "not tested", ""], ["d", "", ""]]).splitlines() == [
        "| model | verdict | note |", "| --- | --- | --- |", "| a | **confirmed** | x/y |", "| b | **refuted** |  |",
        "| c | *not tested* |  |", "| d |  |  |"]
    assert text_table(["model", "test MSE"], [["linear-512", "0.0123"], ["conv", "0.02"]]).splitlines() == [
        "model       test MSE", "linear-512  0.0123  ", "conv        0.02    "]


def test_html_tables_align_figures_colour_verdicts_and_name_each_cell_by_its_column():
    """A column is numeric (right-aligned, its header too) when at least half its cells that are
    not "–" are figures, units (%, pts, s) included; long text wraps, short cells and figures do
    not; a verdict's cell has its verdict's class; an empty cell has no label (the phone's card
    hides it); the label is an escaped attribute."""
    import re
    from fashionae.pages import html_table
    page = html_table(["model", "test MSE", "seconds", "k", "verdict", "author's"], [
        ["linear-512 <small>, with a name longer than 32", "0.0123 ± 0.0004", "12.3 s", "64", "not tested (1 seed)", "x"],
        ["conv", "–", "unknown", "n/a", "confirmed", ""],
        ["pca", "–", "4.5 s", "–", "refuted", "–"]])
    assert re.findall(r"<th( class=num)?>", page) == ["", " class=num", " class=num", " class=num", "", ""]
    rows = [re.findall(r"<td class='([^']*)' data-label='([^']*)'>|<td></td>", row)
            for row in page.split("<tr>")[2:]]
    labels = ["model", "test MSE", "seconds", "k", "verdict", "author&#x27;s"]
    assert rows == [
        list(zip(["long", "num nw", "num nw", "num nw", "nw not-tested", "nw"], labels)),
        list(zip(["nw", "num nw", "num nw", "num nw", "nw confirmed"], labels)) + [("", "")],
        list(zip(["nw", "num nw", "num nw", "num nw", "nw refuted", "nw"], labels))]
    assert "linear-512 &lt;small&gt;, with" in page
    # a claim's second part (its first cell empty) joins the claim's card on a narrow screen
    parts = html_table(["claim", "part"], [["a", "first"], ["", "second"]])
    assert "<tr><td class='nw' data-label='claim'>a</td>" in parts and "<tr class=more><td></td>" in parts


def test_the_figures_are_numbered_in_order_with_the_control_last(study, tmp_path):
    """draw_figures: "Fig. k" numbered 1, 2, ... without a gap or a repeat, each classifier's curves
    with the control last, a confusion matrix for each classifier that trains its encoder
    (finetune, scratch), one seed said as such, the exact PCA said left out only where the
    baselines hold it."""
    import re
    from fashionae.figures import draw_figures
    from fashionae.studyfolder import StudyFolder
    figs = tmp_path / "figs"
    figs.mkdir()
    results = json.loads((study / "results.json").read_text())
    drawn = draw_figures(StudyFolder(study), results, figs)
    assert sorted(p.name for p in figs.glob("*.png")) == sorted(f for _, f, _ in drawn)
    numbered = [(int(re.match(r"fig(\d+)_", f)[1]), f, c) for _, f, c in drawn if f.startswith("fig")]
    assert [k for k, _, _ in numbered] == list(range(1, len(numbered) + 1))
    assert all(c.startswith(f"Fig. {k}: ") for k, _, c in numbered)
    curves = [f for _, f, _ in numbered if "_clf_" in f]
    assert curves[-1].endswith("_clf_random-frozen.png") and len(curves) == len(results["classifiers"])
    assert [f.split("_confusion_")[1] for _, f, _ in numbered if "_confusion_" in f] == ["finetune.png", "scratch.png"]
    assert all("one seed" in c and "seeds" not in c for _, f, c in drawn if "_ae_" in f or "_clf_" in f
               or f.startswith("overview_"))
    overview = dict((f, c) for _, f, c in drawn)["overview_mse_by_size.png"]
    assert "left out" not in overview and all(r["k"] < 28 * 28 for r in results["baselines"]["pca"])
    results["baselines"]["pca"].append({"k": 28 * 28, "test_mse": 1e-13})
    overview = dict((f, c) for _, f, c in draw_figures(StudyFolder(study), results, figs))["overview_mse_by_size.png"]
    assert "; PCA with all 784 components (exact) left out." in overview


def test_the_html_page_sizes_its_figures_from_their_files_and_escapes_title_and_captions(tmp_path):
    """Each <img> is shown at half its PNG's width and height, which are drawn with twice the
    pixels shown (a wide row of images spans the page, as does a figure named wide, others share
    a row), and the title and a caption with markup or quotes are escaped."""
    from PIL import Image
    from fashionae.pages import Figures, Page, Section, html_page
    (tmp_path / "figures").mkdir()
    Image.new("L", (2000, 800)).save(tmp_path / "figures" / "row.png")
    Image.new("L", (601, 400)).save(tmp_path / "figures" / "small.png")  # 300.5 shown: rounded to even
    Image.new("L", (1200, 800)).save(tmp_path / "figures" / "grid.png")  # not wide_figure's, but named wide
    page = html_page(Page("a <b> & c", "s", [Section("figures", "Figures", [Figures(
        [("row.png", 'a "row" <of> images'), ("small.png", "small"), ("grid.png", "grid")], wide=["grid.png"])])]),
        tmp_path / "figures")
    assert "<title>a &lt;b&gt; &amp; c</title>" in page and "<h1>a &lt;b&gt; &amp; c</h1>" in page
    assert '<figure class=wide><a href="figures/row.png"><img src="figures/row.png" width=1000 height=400 ' \
           'alt="a &quot;row&quot; &lt;of&gt; images"></a><figcaption>a "row" &lt;of&gt; images</figcaption></figure>' \
           in page
    assert '<figure><a href="figures/small.png"><img src="figures/small.png" width=300 height=200 alt="small">' in page
    assert '<figure class=wide><a href="figures/grid.png"><img src="figures/grid.png" width=600 height=400 alt="grid">' in page


def test_the_claims_note_describes_the_claims_as_claims_py_makes_them(study):
    """NOTES["claims"] names claims and their order in prose: the derived one repeats the two
    before it, conv's has two parts, and “beats scratch” and “competitive” share one difference."""
    from fashionae.report import NOTES
    claims = json.loads((study / "results.json").read_text())["claims"]
    names = [c["claim"] for c in claims]
    derived = [c for c in claims if c.get("derived")]
    assert [c["claim"] for c in derived] == ["l_size 512 balances quality and cost"]
    assert f"“{derived[0]['claim']}” tests nothing of its own: its rows repeat the two claims before it" in NOTES["claims"]
    at = names.index(derived[0]["claim"])
    assert [p["part"].split(": ")[0] for p in derived[0]["parts"]] == names[at - 2:at]
    conv = next(c for c in claims if c["claim"].startswith("the fully convolutional autoencoder"))
    assert "conv's two parts" in NOTES["claims"] and len(conv["parts"]) == 2
    scratch, competitive = (next(c for c in claims if words in c["claim"])
                            for words in ("beats training from scratch", "competitive"))
    assert "“beats scratch” and “competitive”, the same difference with its sign turned" in NOTES["claims"]
    assert scratch["parts"][0]["effect"] == -competitive["parts"][0]["effect"]


def test_the_classifier_ablation_table_gives_each_strategys_accuracies_and_changes_in_their_columns():
    from fashionae.report import tables

    def figure(base, variant, effect, ci, verdict):
        return {"baseline": stats(*base), "variant": stats(*variant), "values": [effect] * 3, "effect": effect,
                "ci": ci, "ci_reason": None, "unit": "points", "verdict": verdict}
    line = {**ablation("no dropout", -0.12, [-0.2, -0.04], verdict="lower"),
            "classifiers": {"finetune": {
                "val_acc": figure((0.80, 0.81), (0.83, 0.84), 3.0, [1.0, 5.0], "higher"),
                "test_acc": figure((0.70, 0.71), (0.70, 0.70), -0.5, [-2.0, 1.0], "not shown")}}}
    [(_, caption, header, rows)] = [t for t in tables(results(ablation=[line])) if t[0] == "ablation-classifiers"]
    assert caption.startswith("Ablation: what each change of encoder does to the classifiers' accuracy (")
    assert dict(zip(header, rows[0])) == {
        "change": "no dropout", "baseline → variant": "linear-512 → linear-64", "strategy": "finetune",
        "seeds": "3",
        "val accuracy, baseline, %": "80.50 ± 0.71", "val accuracy, variant, %": "83.50 ± 0.71",
        "val accuracy change [CI]": "+3.00 pts [+1.00 pts, +5.00 pts]: higher",
        "test accuracy change [CI]": "-0.50 pts [-2.00 pts, +1.00 pts]"}


def test_the_provenance_row_of_a_resumed_run_counts_its_sessions(study):
    from fashionae.report import provenance
    from fashionae.studyfolder import StudyFolder
    results = json.loads((study / "results.json").read_text())
    results["runs"][1]["sessions"] = 2  # stopped once and resumed
    _, rows = provenance(StudyFolder(study), results)
    assert [row[8] for row in rows[:3]] == ["1", "2", "1"]


def test_the_provenance_gives_the_image_size_as_height_by_width(own_run, tmp_path):
    """Images of your own dataset need not be square: 16 high, 24 wide."""
    from fashionae.report import provenance
    from fashionae.studyfolder import StudyFolder
    data, run = own_run
    shutil.copytree(run, tmp_path / "study" / "runs" / "ae")
    results = {"dataset": "shapes", "autoencoders": [{"runs": ["runs/ae"]}],
               "runs": [{"run": "ae", "device": "cpu", "precision": "fp32", "hardware": "x", "threads": 1,
                         "host": "h", "executor": "local", "seconds": 1.0, "val_indices_sha256": "ab" * 32}]}
    items, _ = provenance(StudyFolder(tmp_path / "study"), results)
    assert dict(items)["dataset"] == (f"shapes from {data.resolve()}: 16x24 images, 5 classes "
                                      "(Circle, Square, Star, Moon, Heart)")


def test_the_report_pages_are_replaced_whole_never_rewritten_in_place(study, tmp_path):
    """A reader of the earlier report.md or report.html (a hard link to it, a copy being made)
    keeps it whole: the new page takes the name once it is written."""
    shutil.copytree(study, tmp_path / "study")
    out = tmp_path / "study"
    results = json.loads((out / "results.json").read_text())
    for name in ("report.md", "report.html"):
        (out / name).write_text("an earlier report")
        (tmp_path / name).hardlink_to(out / name)
    write_report(out, results)
    for name in ("report.md", "report.html"):
        assert (tmp_path / name).read_text() == "an earlier report" != (out / name).read_text()


def test_results_without_pages_take_the_pages_before_away_and_each_report_its_own_figures(tmp_path):
    """``StudyFolder.write_results``: a report that could not be drawn writes results.json alone,
    and the pages before go (they would contradict it); a report drawn replaces the figures of
    the one before, the user's other files in figures/ staying, and starts from an empty staging
    folder whatever a killed one left there."""
    from fashionae.studyfolder import StudyFolder
    folder = StudyFolder(tmp_path)
    (tmp_path / StudyFolder.STAGING / "figures").mkdir(parents=True)
    (tmp_path / StudyFolder.STAGING / "figures" / "killed.png").write_bytes(b"half")  # a killed report's
    with folder.staged_figures() as staged:
        assert list(staged.iterdir()) == []
        (staged / "a.png").write_bytes(b"a")
        folder.write_results({"n": 1}, "# one", "<p>one</p>")
    (tmp_path / "figures" / "notes.txt").write_text("mine")
    with folder.staged_figures() as staged:
        (staged / "b.png").write_bytes(b"b")
        folder.write_results({"n": 2}, "# two", "<p>two</p>")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["b.png", "notes.txt"]
    assert (tmp_path / "report.md").read_text() == "# two" and not (tmp_path / StudyFolder.STAGING).exists()
    folder.write_results({"n": 3})
    assert json.loads((tmp_path / "results.json").read_text())["n"] == 3
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "report.html").exists()


def test_a_figures_folder_the_report_may_not_write_in_is_refused_before_anything_is_drawn(tmp_path, monkeypatch):
    """figures/ that cannot be written in (another user's, read-only): said before the figures
    are drawn, not once they are, and nothing is staged."""
    from fashionae.studyfolder import StudyFolder
    (tmp_path / "figures").mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != tmp_path / "figures"
                        and access(path, mode, **kw))
    with pytest.raises(UserError, match=f"^cannot write in {tmp_path / 'figures'}, where the report's figures go"):
        with StudyFolder(tmp_path).staged_figures():
            pytest.fail("draws the figures")
    assert not (tmp_path / StudyFolder.STAGING).exists()


def test_a_relative_change_that_rounds_to_minus_100_percent_is_not_written_so():
    """A ratio of MSEs is positive, so a change is above -100 %: an interval's end that rounds to
    it (two seeds' wide intervals do) says so rather than seem to reach it."""
    from fashionae.wording import amount
    assert [amount(x, "relative") for x in (-0.99999, -0.9994, -0.5, 0.1)] == ["> -100 %", "-99.9 %", "-50.0 %",
                                                                                "+10.0 %"]
    assert amount(-0.5, "points") == "-0.50 pts"
    assert [amount(x, "points") for x in (-268.85, 206.95, 99.999)] == ["-100.00 pts", "+100.00 pts", "+100.00 pts"]
    # a gain (1 - a/b) is below +100 %; a relative difference (a/b - 1) reaches it at twice the MSE
    assert [amount(x, "relative gain") for x in (0.99999, 0.5, -0.99999)] == ["< +100 %", "+50.0 %", "-100.0 %"]
    assert amount(0.99999, "relative") == "+100.0 %"
    # a bound itself only by underflow (an MSE of 0 counts as not a number; exp(-700) - 1 is -1.0)
    assert (amount(-1.0, "relative"), amount(1.0, "relative gain")) == ("> -100 %", "< +100 %")
    # unbounded on the other side (2 seeds' interval at 99.29 % reaches millions of %): said as far
    assert [amount(x, "relative") for x in (751329.987, 100.0, 100.01)] == ["> +10,000 %", "+10,000.0 %", "> +10,000 %"]
    assert [amount(x, "relative gain") for x in (-937833003.924, -100.0)] == ["< -10,000 %", "-10,000.0 %"]
    assert amount(11.975, "relative") == "+1,197.5 %"  # (grouped as "> +10,000 %" is)


def test_a_curve_leaves_out_the_seeds_that_diverged(tmp_path, monkeypatch):
    """The mean over seeds of a curve with a diverged seed would be no numbers at all: the seeds
    that stayed numbers are drawn; all diverged, a line of no numbers (and the figure is still drawn)."""
    import math

    import numpy as np

    from fashionae import plots
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append([line.get_ydata() for line in fig.axes[0].get_lines()]))
    steady = [{"val_acc": 0.5}, {"val_acc": 0.6}]
    diverged = [{"val_acc": 0.4}, {"val_acc": math.nan}]
    plots.curves("t", [diverged, steady], [("val_acc", "validation")], "accuracy", None, tmp_path / "a.png")
    plots.curves("t", [diverged, diverged], [("val_acc", "validation")], "accuracy", None, tmp_path / "b.png")
    assert np.allclose(drawn[0][0], [0.5, 0.6]) and np.isnan(drawn[1][0]).any()


def test_the_terminal_puts_each_caveat_under_its_own_table_after_a_full_stop():
    """The caveat of another look goes with the first table of verdicts alone (the claims', else
    the ablation's), a line's "not one change" with the ablation's alone, and each joins its
    caption after one full stop: ". " after a caption, " " after a sentence."""
    from fashionae.report import terminal_tables
    from fashionae.summary import another_look, other_family
    r = other_results()
    r["seed_history"] = [1, 3]
    look = another_look(r)
    captions = {tuple(h): c for c, h, _ in terminal_tables(r)}
    claims = next(c for h, c in captions.items() if "claim" in h)
    ablation = next(c for h, c in captions.items() if "baseline → variant" in h)
    assert claims.endswith(f"). {look}") and ".. " not in claims
    assert sum(look in c for c in captions.values()) == 1
    assert sum("Not one change alone" in c for c in captions.values()) == 1 and "Not one change" in ablation
    r["claims"] = []  # the ablation's is the first table of verdicts: the look, then the note, each after one stop
    ablation = next(c for c, h, _ in terminal_tables(r) if "baseline → variant" in h)
    assert f". {look} Not one change alone: “no dropout”" in ablation and ".. " not in ablation
    r = other_results()
    r["ablation"] = r["ablation"][:1]  # one change alone: the caption ends without a stop
    r["family_history"] = [{"ablation": 4}, {"ablation": 2}]
    ablation = next(c for c, h, _ in terminal_tables(r) if "baseline → variant" in h)
    assert ablation.endswith(f"). {other_family(r)}") and ".. " not in ablation


def test_a_seed_exactly_at_nine_tenths_of_the_mean_images_mse_learned_next_to_nothing():
    from fashionae.report import learned_nothing
    from fashionae.results import NEAR_MEAN_IMAGE
    from fashionae.summary import summary
    r = results(seeds=1)
    r["mean_image"] = {"val_mse": 0.1, "test_mse": 0.1}
    r["autoencoders"] = [autoencoder("linear-64", 64, (NEAR_MEAN_IMAGE * 0.1,))]
    assert "linear-64 seed 0" in learned_nothing(r, "autoencoders")
    r["autoencoders"] = [autoencoder("linear-64", 64, (NEAR_MEAN_IMAGE * 0.1 - 1e-9,))]
    assert learned_nothing(r, "autoencoders") is None
    # the mean image's MSE is known whether or not the study computed its baselines (results.json
    # format 10); before, by the baselines alone
    r["baselines"], r["mean_image"] = {}, {"val_mse": 0.1, "test_mse": 0.1}
    r["autoencoders"] = [autoencoder("linear-64", 64, (NEAR_MEAN_IMAGE * 0.1,))]
    assert "linear-64 seed 0" in learned_nothing(r, "autoencoders")
    # and the summary says whose, before its rankings and verdicts, the random-frozen control's too
    said = [line for line in summary(r) if line.startswith("Learned next to nothing")]
    assert said == ["Learned next to nothing: autoencoder linear-64 (1 of 1 seed): a test figure near a trivial "
                    "answer's (the tables say which seeds), likely too little training in 2 epochs, or a collapse; "
                    "each counts in the means and in every comparison below as any seed does."]
    r["autoencoders"][0]["epochs"] = 10  # (longer runs)
    assert ", likely a collapse or a blow-up; each" in [line for line in summary(r) if line.startswith("Learned")][0]
    r["classifiers"] = [{**c, "test_acc": {"mean": 0.1, "std": 0.0, "values": [0.1]}} for c in r["classifiers"]]
    assert any("random-frozen" in c["strategy"] for c in r["classifiers"])
    assert "random-frozen" in learned_nothing(r, "classifiers")
    (said,) = [line for line in summary(r) if line.startswith("Learned")]
    assert said.startswith("Learned next to nothing: autoencoder linear-64 (1 of 1 seed); classifiers frozen (1 of 2 "
                           "seeds), finetune (1 of ")
    assert "random-frozen (1 of 2 seeds)" in said
    # an autoencoder and a classifier of one name (a strategy's) are two; short runs, likely too little training
    r["autoencoders"] = [{**a, "name": "frozen", "epochs": 2} for a in r["autoencoders"]]
    r["classifiers"] = [{**c, "epochs": 1} for c in r["classifiers"] if c["name"] == "frozen"]
    (said,) = [line for line in summary(r) if line.startswith("Learned")]
    assert said.startswith("Learned next to nothing: autoencoder frozen (1 of 1 seed); classifier frozen (1 of 2 "
                           "seeds): a test figure near a trivial answer's (the tables say which seeds), likely too "
                           "little training in 2 epochs, or a collapse;")
    del r["mean_image"]
    assert learned_nothing(r, "autoencoders") is None


def test_a_seed_band_is_the_mean_plus_and_minus_the_seeds_sample_std(tmp_path, drawn):
    """The band about a curve of several epochs is mean ± the std over seeds (ddof 1, as the tables'
    "±"), over the epochs every seed has (a seed with more is cut to the others')."""
    import numpy as np
    runs = [[{"val_loss": 0.1}, {"val_loss": 0.2}, {"val_loss": 0.9}], [{"val_loss": 0.3}, {"val_loss": 0.6}]]
    plots.curves("t", runs, [("val_loss", "validation")], "MSE", None, tmp_path / "f.png")
    ax = drawn[0].axes[0]
    (line,) = [line for line in ax.lines if line.get_label() == "validation"]
    assert list(line.get_xdata()) == [1, 2] and np.allclose(line.get_ydata(), [0.2, 0.4])
    (band,) = [c for c in ax.collections if "Poly" in type(c).__name__]
    ys = band.get_paths()[0].vertices[:, 1]
    std = np.std([[0.1, 0.2], [0.3, 0.6]], axis=0, ddof=1)
    assert np.isclose(ys.min(), 0.2 - std[0]) and np.isclose(ys.max(), 0.4 + std[1])


def test_curves_of_a_few_epochs_tick_each_epoch_and_label_their_axes(tmp_path, drawn):
    """A few epochs: one tick each, the points half an epoch off the frame; the x axis says epoch,
    the y axis the figure's unit."""
    runs = [[{"val_loss": v} for v in (0.3, 0.2, 0.1)]]
    plots.curves("t", runs, [("val_loss", "validation")], "MSE per pixel", None, tmp_path / "f.png")
    ax = drawn[0].axes[0]
    assert list(ax.get_xticks()) == [1, 2, 3] and ax.get_xlim() == (0.5, 3.5)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "MSE per pixel")


def test_overlaid_curves_are_on_a_log_axis_labelled_in_decimals(tmp_path, drawn):
    """Within two decades the log axis labels 2 and 5 times each power of ten too; over more, the
    powers of ten alone (the minor ticks unlabelled)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    for low in (0.02, 0.0001):
        plots.overlaid_curves("t", [("a", [[{"val_loss": 0.05}, {"val_loss": low}]])], "val_loss", "MSE", tmp_path / "f.png")
    narrow, wide = (fig.axes[0] for fig in drawn)
    assert narrow.get_yscale() == wide.get_yscale() == "log"
    assert isinstance(narrow.yaxis.get_minor_formatter(), FuncFormatter)
    assert isinstance(wide.yaxis.get_minor_formatter(), NullFormatter)


def test_mse_by_size_draws_pca_in_order_and_each_model_with_its_std(tmp_path, drawn):
    """The sizes on a log-2 axis; PCA a line in order of k; the linear autoencoders with their std as
    bars; another model a point named with its latent size."""
    import numpy as np
    plots.mse_by_size("t", [(512, {"mean": 0.01, "std": 0.002}), (64, {"mean": 0.02, "std": 0.001})],
                      [(64, 0.03), (16, 0.05)], [("conv", 3136, {"mean": 0.005, "std": 0.0005})], tmp_path / "f.png")
    ax = drawn[0].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    (pca,) = [line for line in ax.lines if line.get_label() == "PCA, k components"]
    assert list(pca.get_xdata()) == [16, 64]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    linear = next(c for c in bars if c.get_label() == "linear autoencoders (l_size)")
    (segments,) = [col.get_segments() for col in linear.lines[2]]
    assert np.allclose([s[:, 1] for s in segments], [[0.019, 0.021], [0.008, 0.012]])
    assert [c.get_label() for c in bars] == ["linear autoencoders (l_size)", "conv (3,136 values)"]


def test_the_authors_curve_of_two_epochs_is_said_dotted(tmp_path, drawn):
    """From two epochs the author's curve is a dotted line, and its legend entry says so."""
    runs = [[{"val_loss": 0.03}, {"val_loss": 0.02}]]
    plots.curves("t", runs, [("val_loss", "validation")], "MSE", {"val_loss": [0.04, 0.03, 0.02]}, tmp_path / "f.png")
    (box,) = drawn[0].legends
    assert "author's code (dotted)" in [t.get_text() for t in box.get_texts()]
    dotted = [line for line in drawn[0].axes[0].lines if line.get_linestyle() == ":" and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in dotted] == [[1, 2]]


def test_a_forest_plots_first_change_is_at_the_top_and_no_change_is_the_dashed_line_at_zero(tmp_path, drawn):
    """Rows from the top in the table's order (the first change highest), each label at its own
    point; the dashed vertical line at 0."""
    plots.effects("t", [("a", -0.1, [-0.2, 0.0]), ("b", 0.05, [0.01, 0.1]), ("c", 0.2, None)], "%", tmp_path / "f.png")
    ax = drawn[0].axes[0]
    points = {float(line.get_xdata()[0]): float(line.get_ydata()[0]) for line in ax.lines if line.get_marker() == "o"}
    assert points == {-10.0: 2.0, 5.0: 1.0, 20.0: 0.0}
    assert {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())} == {"a": 2, "b": 1, "c": 0}
    (zero,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert list(zero.get_xdata()) == [0, 0]


def test_a_confusion_matrix_shows_each_true_classs_row_as_shares_zeros_blank(tmp_path, drawn):
    """Each row (a true class) normalised to 1, columns the predictions, in the classes' order; the
    shares written, a share under half a percent left blank, on a colour scale of 0 to 1."""
    import numpy as np
    plots.confusion("t", [[8, 2, 0], [1, 1, 0], [0, 1, 999]], ("T-shirt", "Trouser", "Bag"), tmp_path / "f.png")
    ax = drawn[0].axes[0]
    (image,) = ax.images
    assert np.allclose(image.get_array(), [[0.8, 0.2, 0], [0.5, 0.5, 0], [0, 0.001, 0.999]])
    assert image.get_clim() == (0, 1)
    assert {(t.get_position(), t.get_text()) for t in ax.texts} == {
        ((0, 0), "0.80"), ((1, 0), "0.20"), ((0, 1), "0.50"), ((1, 1), "0.50"), ((2, 2), "1.00")}
    assert [t.get_text() for t in ax.get_xticklabels()] == [t.get_text() for t in ax.get_yticklabels()] == [
        "T-shirt", "Trouser", "Bag"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")


def test_image_rows_show_0_as_black_and_1_as_white_each_row_named(tmp_path, drawn):
    """A row of images in [0, 1] on the grey scale as it is (0 black, 1 white, not stretched to each
    image's range), each row named at its left, the titles over the first row."""
    import numpy as np
    images = np.array([np.full((4, 4), 0.25), np.full((4, 4), 0.75)])
    plots.image_rows([("original", images), ("conv", images[:1])], tmp_path / "f.png", titles=["Bag", "Coat"])
    axes = drawn[0].axes
    assert [ax.get_ylabel() for ax in axes] == ["original", "", "conv", ""]
    assert [ax.get_title() for ax in axes] == ["Bag", "Coat", "", ""]
    assert [len(ax.images) for ax in axes] == [1, 1, 1, 0]
    for ax in axes[:3]:
        (image,) = ax.images
        assert image.get_cmap().name == "gray" and image.get_clim() == (0, 1)
        assert np.allclose(image.to_rgba(np.array([0.0, 1.0]))[:, :3], [[0, 0, 0], [1, 1, 1]])


def test_a_latent_map_names_each_class_by_its_own_points(tmp_path, drawn):
    """The points of label c are drawn under the name of class c, in a colour of their own."""
    import numpy as np
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    plots.scatter_map("t", xy, np.array([0, 1, 1, 2]), ("T-shirt", "Trouser", "Bag"), tmp_path / "f.png")
    ax = drawn[0].axes[0]
    named = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
    assert named == {"T-shirt": [[0, 0]], "Trouser": [[1, 1], [2, 2]], "Bag": [[3, 3]]}
    assert len({tuple(c.get_facecolor()[0]) for c in ax.collections}) == 3


def test_a_linear_autoencoder_of_another_encoder_is_a_point_not_on_the_l_size_curve(study, tmp_path, monkeypatch):
    """The l_size curve is the paper encoder's linear models alone: one of another encoder is a point
    of its own, named with its latent size."""
    from fashionae.figures import draw_figures
    from fashionae.studyfolder import StudyFolder
    drawn = {}
    monkeypatch.setattr(plots, "mse_by_size", lambda *a: drawn.update(args=a))
    results = json.loads((study / "results.json").read_text())
    first, *rest = results["autoencoders"]
    assert first["arch"] == "linear" and first["encoder_type"] == "paper"
    figs = tmp_path / "figs"
    figs.mkdir()
    draw_figures(StudyFolder(study), {**results, "autoencoders": [{**first, "encoder_type": "strong"}, *rest]}, figs)
    _, linear, _, points, _ = drawn["args"]
    assert [k for k, _ in linear] == sorted(a["latent"] for a in rest if a["arch"] == "linear")
    assert (first["name"], first["latent_size"]) in [(name, k) for name, k, _ in points]


def test_draw_figures_hands_each_plot_its_metric_unit_and_the_authors_curves_only_on_their_encoder(study, tmp_path,
                                                                                                    monkeypatch):
    """The overview's curves are the validation MSE; a classifier's curves in %, the author's beside
    them only on the author's l_size-1024 encoder (the smoke study's classifiers are on linear-512);
    a confusion matrix of a seed after one that diverged is said to be the first that did not; the
    reconstructions' titles are the samples' classes."""
    import math

    from fashionae.figures import draw_figures
    from fashionae.results import classes_of
    from fashionae.studyfolder import StudyFolder
    calls = {"curves": [], "overlaid": [], "rows": []}
    monkeypatch.setattr(plots, "curves", lambda *a, **k: calls["curves"].append((a, k)))
    monkeypatch.setattr(plots, "overlaid_curves", lambda *a, **k: calls["overlaid"].append(a))
    monkeypatch.setattr(plots, "image_rows", lambda rows, path, titles=None: calls["rows"].append(titles))
    monkeypatch.setattr(plots, "mse_by_size", lambda *a: None)
    monkeypatch.setattr(plots, "confusion", lambda *a: None)
    real = StudyFolder.samples
    monkeypatch.setattr(StudyFolder, "samples", lambda self: {**(s := real(self)), "images": s["images"][[2, 0]],
                                                              "labels": s["labels"][[2, 0]]})
    results = json.loads((study / "results.json").read_text())
    finetune = next(c for c in results["classifiers"] if c["strategy"] == "finetune")
    finetune.update(seeds=[0, 1], runs=finetune["runs"] * 2, confusion_matrices=finetune["confusion_matrices"] * 2,
                    test_acc={**finetune["test_acc"], "values": [math.nan, finetune["test_acc"]["values"][0]]})
    figs = tmp_path / "figs"
    figs.mkdir()
    drawn = dict((f, c) for _, f, c in draw_figures(StudyFolder(study), results, figs))
    assert [a[2] for a in calls["overlaid"]] == ["val_loss"]
    classifiers = [(a, k) for a, k in calls["curves"] if a[0].endswith(" classifier")]
    assert len(classifiers) == len(results["classifiers"])
    assert all(k.get("scale") == 100 and a[4] is None for a, k in classifiers)
    (confusion,) = [c for f, c in drawn.items() if "_confusion_finetune" in f]
    assert confusion.endswith("(seed 1, the first that did not diverge).")
    classes = classes_of(results)
    assert calls["rows"] == [[classes[2], classes[0]]]


def test_a_pca_figure_with_its_k_is_a_figure_and_a_cell_of_32_characters_stays_on_one_line():
    """"0.0007 (k=512)" (the PCA column's, at the k fitted) is a figure; a cell of up to 32
    characters does not wrap, one longer does."""
    from fashionae.pages import html_table, is_number
    assert is_number("0.0007 (k=512)") and not is_number("0.0007 (k=)")
    assert "<th class=num>PCA test, same k</th>" in html_table(["PCA test, same k"], [["0.0007 (k=512)"]])
    page = html_table(["name"], [["a" * 32], ["b" * 33]])
    assert f"<td class='nw' data-label='name'>{'a' * 32}</td>" in page
    assert f"<td class='long' data-label='name'>{'b' * 33}</td>" in page


def test_a_note_is_set_as_a_note_and_a_figure_of_an_odd_size_is_shown_at_the_nearest_even_one(tmp_path):
    """A ``Note`` under a table is a paragraph of class note (smaller, greyer), a paragraph is not;
    301.5 pixels shown round to 302, not cut to 301."""
    import io
    from PIL import Image
    from fashionae.pages import Note, Page, Section, html_page, shown_size
    page = html_page(Page("t", "s", [Section("a", "A", ["a paragraph", Note("a note")])]), tmp_path)
    assert "<p>a paragraph</p><p class=note>a note</p>" in page
    png = io.BytesIO()
    Image.new("L", (603, 401)).save(png, format="PNG")
    assert shown_size(png.getvalue()) == (302, 200)  # 301.5 and 200.5, each to the even one


def test_verdicts_read_after_another_look_are_said_at_a_nominal_confidence():
    """A verdict read after another look at the study (more seeds added to see) holds with less
    than its interval's confidence: the summary says it at a nominal one, not as one look's."""
    from fashionae.summary import summary
    r = other_results()
    line = next(s for s in summary(r) if s.startswith(("Of the ablation", "The ablation's change")))
    assert " at 95 % confidence" in line and "nominal" not in " ".join(summary(r))
    r["seed_history"] = [2, 3]  # a verdict of 3 seeds, read after a look at 2
    said = summary(r)
    line = next(s for s in said if s.startswith(("Of the ablation", "The ablation's change")))
    assert " at a nominal 95 % confidence" in line and " at 95 % confidence" not in line
    assert said[-1].startswith("This study folder's earlier reports had 2 seeds, and this one has 3: ")
    # a model read at other epochs (trained on with --extend after a look, or again): a look too
    names = [m["name"] for m in r["autoencoders"] + r["classifiers"]]
    r["seed_history"], r["epochs_history"] = [3], [{n: 2 for n in names}, {n: 4 for n in names}]
    said = summary(r)
    line = next(s for s in said if s.startswith(("Of the ablation", "The ablation's change")))
    assert " at a nominal 95 % confidence" in line
    assert said[-1] == (f"This study folder's earlier reports read {names[0]} after 2 epochs, and this one after 4 "
                        f"(and {len(names) - 1} other models at other epochs): a verdict read after another look at "
                        "the same study is weaker than its interval says (optional stopping, docs/claims.md); read "
                        "one the earlier looks did not show as a new experiment, planned with 3 seeds and its "
                        "epochs.")
    r["seed_history"], r["epochs_history"] = [1, 3], [{names[0]: 1}, {names[0]: 1, "added": 5}, {names[0]: 2}]
    assert summary(r)[-1].startswith(f"This study folder's earlier reports had 1 seed, and this one has 3; they read "
                                     f"{names[0]} after 1 epoch, and this one after 2: ")
    r["seed_history"], r["epochs_history"] = [3], [{names[0]: 2}, {names[0]: 2, "added": 5}]  # a model added: no look
    assert "nominal" not in " ".join(summary(r))
    r["seed_history"], r["epochs_history"] = [1, 2, 4, 5, 6, 7, 3], [{n: 4 for n in names}]  # a long history: cut
    assert summary(r)[-1].startswith("This study folder's earlier reports had 1, then 3 others, then 6, then 7 seeds, "
                                     "and this one has 3: ")
    r["seed_history"], r["epochs_history"] = [2, 3], [{n: 4 for n in names}]  # (back to the seeds' look alone)
    one, none = ablation("no dropout", -0.12, [-0.2, -0.04], verdict="lower"), ablation("wider", 0.01, [-0.1, 0.1])
    one["classifiers"] = {"frozen": {"val_acc": {**stats(0.8, 0.81, 0.82), "effect": 0.01, "ci": [0.005, 0.02],
                                                 "unit": "points", "verdict": "higher"}}}
    for lines, verdicts in (([one], "lowers the validation MSE at a nominal 95 % confidence"),
                            ([none, none], "none moves the validation MSE at a nominal 95 % confidence")):
        r["ablation"] = lines
        assert verdicts in " ".join(summary(r))
    r["ablation"] = [one]  # its classifier comparison: a family of its own, said alike
    assert "raises the classifiers' validation accuracy at a nominal 95 % confidence" in " ".join(summary(r))


def test_several_tables_of_verdicts_are_said_to_hold_each_on_its_own():
    """Each table of verdicts (a family) holds at 95 % on its own: where several give verdicts,
    the summary says what that means for them all (at most their error rates added up)."""
    from fashionae.summary import summary
    r = other_results()
    r["family_history"] = [{"claims": 7}]
    assert not any(s.startswith("Each table of verdicts") for s in summary(r))
    r["family_history"] = [{"claims": 7, "ablation": 2, "ablation-classifiers": 0}]
    assert summary(r)[-1] == ("Each table of verdicts (the claims and the ablation's MSE table) holds at 95 % on its "
                              "own, not all together: the chance that one of them holds a wrong verdict is up to 10 %.")
    r["family_history"] = [{"claims": 7, "ablation": 2, "ablation-classifiers": 3}]
    assert "(the claims, the ablation's MSE table and the ablation's accuracy table)" in summary(r)[-1]
    assert "up to 15 %" in summary(r)[-1]
    r["seeds"] = 2  # no table gives a verdict
    assert not any(s.startswith("Each table of verdicts") for s in summary(r))
