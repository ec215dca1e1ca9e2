"""The study folder: ``StudyFolder``, the one code that knows its files (as ``runfolder.py``
knows a run's), checks that it holds the study asked for, and reads its ``study.json`` back."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .files import (atomic_write, atomic_write_together, holds_nothing, is_leftover, json_text, read_rebuildable_json,
                    remove_file, write_failure, write_json)
from .resumeline import resume_line_here, runs_fashionae
from .runfolder import RunFolder
from .settings import is_number
from .study import Study


class StudyFolder:
    """The one place that knows a study folder's layout: ``study.json`` (the resolved study),
    ``runs/<run>/`` (run folders), ``baselines.json``, ``samples.safetensors`` (the validation
    images the report's reconstruction figure shows, and the mean image's MSE), ``timing.json``, ``results.json``,
    ``report.html``, ``report.md`` and ``figures/``; while ``--executor ray`` starts,
    ``.storage-check`` (a token every node must read back); while a report is drawn, ``.report.new/``."""
    STUDY, RESULTS, BASELINES, TIMING = "study.json", "results.json", "baselines.json", "timing.json"
    COMMAND = "command"  # study.json's key of the line that runs the study again (not the study's own)
    LOOKS = "looks.json"  # results.json's histories (its keys ending in _history), kept apart: ``looks``
    STAGING = ".report.new"  # a report's figures while it is drawn (``staged_figures``)
    SAMPLES, REPORT_HTML, REPORT_MD, FIGURES, RUNS = ("samples.safetensors", "report.html", "report.md",
                                                       "figures", "runs")
    STORAGE_CHECK = ".storage-check"
    REPORT_ELSEWHERE = "copy the study folder somewhere writable and report it there"  # (where it cannot be written)

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def run(self, name: str) -> RunFolder:
        return RunFolder(self.path / self.RUNS / name)

    def entry(self, name: str) -> str:
        """How results.json names the run ``name``: its folder, relative to the study's."""
        return f"{self.RUNS}/{name}"

    def encoder_run_name(self, cfg) -> str:
        """The name here of the autoencoder run a classifier's settings (``RunConfig``) record: its
        folder's name, or, where that is no run of this study, the name of the run folder here that
        is a link to it (0.3.23 and before recorded a run folder that is a link by its target)."""
        name, runs = cfg.encoder_name, self / self.RUNS
        if cfg.encoder_run and not (runs / name).exists() and runs.is_dir():
            target = Path(cfg.encoder_run).resolve()
            name = next((p.name for p in sorted(runs.iterdir()) if p.is_symlink() and p.resolve() == target), name)
        return name

    def run_of(self, entry: str) -> RunFolder:
        """The run folder a results.json ``runs`` entry names (``entry``)."""
        return self.run(Path(entry).name)

    def holds_a_study(self) -> bool:
        """Whether its study.json is one fashionae wrote, readable (another tool's is not)."""
        return "autoencoders" in (read_rebuildable_json(self / self.STUDY) or {})

    def is_study(self) -> bool:
        return (self / self.STUDY).is_file()

    @classmethod
    def holding(cls, run: Path) -> list[tuple[StudyFolder, str]]:
        """The study folders whose runs/ holds the run folder ``run``, each with the run's name
        there: where it is named (".", a link to it; read as the shell names it), then where it
        lies (a study's runs/ whose runs are links), once where both are one."""
        named = run if run.is_absolute() else _shell_cwd() / run
        found = []
        for path in dict.fromkeys([Path(os.path.normpath(named)), run.resolve()]):
            if path.parent.name == cls.RUNS and (home := cls(path.parent.parent)).is_study():
                found.append((home, path.name))
        return found

    def holds_only_a_start(self) -> bool:
        """Whether this folder holds only what a study writes before its runs (refused then by
        its executor, say): its study.json and samples, and no run."""
        runs = self / self.RUNS
        return (all(p.name in (self.STUDY, self.SAMPLES, self.RUNS) or is_leftover(p) for p in self.path.iterdir())
                and not (runs.is_dir() and not holds_nothing(runs)))

    def require(self) -> "StudyFolder":
        if not self.path.is_dir():
            raise UserError(f"{self.path} {'is a file' if self.path.exists() else 'does not exist'}; give the "
                            "--out folder of a study (fashionae study)")
        if not self.is_study():
            if RunFolder(self.path).is_run():
                raise UserError(f"{self.path} is a run folder, not a study folder; a report is of a study "
                                f"(fashionae study), and `fashionae eval {self.path}` measures a run again")
            raise UserError(f"{self.path} is not a fashionae study folder (no {self.STUDY})")
        if (self / self.RUNS).exists() and not (self / self.RUNS).is_dir():
            raise UserError(f"{self / self.RUNS} is a file where the study keeps its runs; move it out of the way")
        return self

    def write_results(self, results: dict, markdown: str | None = None, html: str | None = None) -> None:
        """results.json, and the report's pages with the figures drawn into ``staged_figures()``,
        written together (``files.atomic_write_together``): a failure or a stop leaves the results,
        figures and pages before, or the new results.json without pages (``fashionae report``
        writes them), never pages that results.json or the figures contradict. Without pages (a
        report that could not be drawn), results.json alone, and the pages before go. Its histories
        (each report's look at the study) first, to looks.json: a look is never lost with it."""
        write_json(self / self.LOOKS, {k: v for k, v in results.items() if k.endswith("_history")})
        if markdown is None or html is None:
            for page in (self.REPORT_MD, self.REPORT_HTML):
                remove_file(self / page)
            write_json(self / self.RESULTS, results)
            return

        def figures_in_place():  # each drawn figure into figures/, and those of the report before out of it
            staged, figures = self / self.STAGING / self.FIGURES, self / self.FIGURES
            drawn = {p.name for p in staged.iterdir()}
            target = figures
            try:
                figures.mkdir(exist_ok=True)
                for name in sorted(drawn):
                    target = figures / name
                    os.replace(staged / name, target)
                for stale in {p.name for p in figures.glob("*.png")} - drawn:  # (the user's other files stay)
                    target = figures / stale
                    target.unlink()
            except OSError as e:
                raise write_failure(target, e, "the report's pages are not written: run fashionae report "
                                            "again once it can be") from e
        atomic_write_together([(self / self.RESULTS, json_text(results)), (self / self.REPORT_MD, markdown),
                               (self / self.REPORT_HTML, html)], after_first=figures_in_place)

    @contextlib.contextmanager
    def staged_figures(self) -> Iterator[Path]:
        """An empty folder to draw a report's figures into (``STAGING``/figures), to take the place
        of figures/ with its pages (``write_results``, within the ``with``); gone at its end, the
        report written or not (what a killed one left, at the next)."""
        figures = self / self.FIGURES  # (said before drawing)
        if figures.is_symlink() and not figures.exists() or figures.exists() and not figures.is_dir():
            what = (f"a link to {figures.readlink()}, which does not exist," if not figures.exists() else
                    f"a link to {figures.readlink()}, a file," if figures.is_symlink() else "a file")
            raise UserError(f"{figures} is {what} where the report's figures go; move or remove it, and run "
                            f"fashionae report {self.path}")
        if figures.is_dir() and not os.access(figures, os.W_OK | os.X_OK):
            raise UserError(f"cannot write in {figures}, where the report's figures go; make it writable, or "
                            f"{self.REPORT_ELSEWHERE}")
        staging = self / self.STAGING
        shutil.rmtree(staging, ignore_errors=True)
        (staging / self.FIGURES).mkdir(parents=True)
        try:
            yield staging / self.FIGURES
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def looks(self) -> dict:
        """The histories of the reports' looks at the study (``write_results``), which outlive a
        results.json deleted to rebuild it ({}: none kept, before 0.3.30, or damaged: results.json's
        own are read then)."""
        return read_rebuildable_json(self / self.LOOKS) or {}

    def write_samples(self, images, labels, mean_image: dict) -> None:
        """What the report needs of the dataset (``pipeline.save_samples``): the validation
        ``images`` (and their ``labels``) its reconstruction figure shows, and the ``mean_image``'s
        MSE (``baselines.mean_image_mse``)."""
        import torch
        from safetensors.torch import save
        atomic_write(self / self.SAMPLES, save({
            "images": images.contiguous(), "labels": labels.contiguous(),
            "mean_image_mse": torch.tensor([mean_image["val_mse"], mean_image["test_mse"]], dtype=torch.float64)}))

    def samples(self) -> dict | None:
        """The tensors of ``write_samples`` (None: not written, the study stopped before its runs)."""
        from .modelfile import read_safetensors
        if not (self / self.SAMPLES).is_file():
            return None
        return read_safetensors(self / self.SAMPLES, "the study's validation samples",
                                fix="run the study command again: it writes them again")[0]

    def write_timing(self, seconds: float, stages: dict[str, float], command: str | None, executor: str) -> None:
        """The record of the last invocation that trained (``timing``): its wall time, each stage's,
        its command and executor, and how many invocations trained to the end."""
        write_json(self / self.TIMING, {"last_invocation_seconds": seconds, "stages": stages,
                                        "invocations": (self.timing() or {}).get("invocations", 0) + 1,
                                        "command": command, "executor": executor})

    def timing(self) -> dict | None:
        """``write_timing``'s record, or None where it is missing (every run was trained by an
        invocation stopped before its end), or damaged or edited into another shape: left out of the
        report; the next invocation that trains writes it again."""
        timing = read_rebuildable_json(self / self.TIMING)
        if not timing or not (is_number(timing.get("last_invocation_seconds"))
                              and isinstance(timing.get("stages"), dict) and all(map(is_number, timing["stages"].values()))
                              and isinstance(timing.get("invocations"), int)  # (the first wrote no executor)
                              and isinstance(timing.get("command"), (str, type(None)))
                              and isinstance(timing.get("executor", ""), str)):
            return None
        return timing

    def mean_image(self) -> dict | None:
        """The mean image's MSE ``{"val_mse", "test_mse"}``, by which the report names a seed that
        learned nothing (None: samples written before it was kept, 0.3.22 and before)."""
        mse = (self.samples() or {}).get("mean_image_mse")
        return None if mse is None else dict(zip(("val_mse", "test_mse"), mse.tolist()))

    def write_study(self, study: Study, command: str | None = None) -> None:
        """The resolved study (``study``, ``Study.from_dict``, reads it back), and the shell line
        that runs it again (``resume_command``)."""
        write_json(self / self.STUDY, study.to_dict() | ({self.COMMAND: command} if command else {}))

    def resume_command(self) -> str | None:
        """The shell line that runs the study of this folder again (``resumeline.resume_line``), as
        it is from here (``resume_line_here``: the folder moved since); None where none is kept
        (written before 0.3.30, by Python, or edited into another line)."""
        command = (read_rebuildable_json(self / self.STUDY) or {}).get(self.COMMAND)
        return resume_line_here(command, self.path) if isinstance(command, str) and runs_fashionae(command, "study") \
            else None

    def study(self) -> Study:
        path = self / self.STUDY
        fix = f"run the study command again with --out {self.path}: it writes it again and keeps the finished runs"
        description = read_rebuildable_json(path)
        if description is None:
            raise UserError(f"study description {path} is unreadable or not a JSON object (it was edited or "
                            f"damaged); {fix}")
        description.pop(self.COMMAND, None)
        try:
            return Study.from_dict(description, str(path))
        except UserError as e:
            raise UserError(f"{e}; {fix}") from None

    def check_holds(self, study: Study) -> None:
        """Refuse a folder that holds something else than this study. Runs whose settings
        changed are refused run by run, by the plan's check."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise UserError(f"--out {self.path} is not a folder; choose another --out")
        if self.is_study():
            # a damaged study.json is written again: the runs are checked one by one anyway
            old = read_rebuildable_json(self / self.STUDY) or {"name": study.name}
            if old.get("name") != study.name and not self.holds_only_a_start():  # (taken: nothing to keep)
                raise UserError(f"--out {self.path} holds another study ({old.get('name')!r}); "
                                "choose another --out, or delete it to start over")
        elif RunFolder(self.path).is_run():
            raise UserError(f"--out {self.path} is a run folder, not a study's; choose another --out")
        elif not holds_nothing(self.path):
            raise UserError(f"--out {self.path} is not empty and holds no fashionae study; choose another --out")


def refuse_a_study_folder(run_dir: str | Path) -> None:
    """A study folder given where a run is wanted (a command's, ``fashionae.load``'s): say where
    its runs are (a run folder knows nothing of studies, one layer up)."""
    folder = StudyFolder(run_dir)
    if folder.is_study():
        raise UserError(f"{run_dir} is a study folder; give one of its runs, in {folder / folder.RUNS}")


def refuse_a_model_folder(out: str | Path, study_hint: str = "which holds a study's files") -> None:
    """An ``--out`` for files of a command's own (baselines, latent-space maps) that is a run or a
    study folder, whose layouts are theirs: refused before anything is computed. (A folder with
    another tool's config.json or study.json is neither.)"""
    if StudyFolder(out).holds_a_study():
        raise UserError(f"{out} is a study folder, {study_hint}; choose another --out")
    if RunFolder(out).holds_a_run():
        raise UserError(f"{out} is a run folder, which holds one run's files; choose another --out")


def _shell_cwd() -> Path:
    """The working folder as the shell names it ($PWD: through the links that led there, which the
    process's own, resolved, has lost), where it is the same folder."""
    pwd = os.environ.get("PWD", "")
    with contextlib.suppress(OSError):
        if os.path.isabs(pwd) and os.path.samefile(pwd, "."):
            return Path(pwd)
    return Path.cwd()
