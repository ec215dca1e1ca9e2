"""The shell line that resumes a run from anywhere: written as its command starts
(``resume_line``, recorded in its config.json), and read back for the folder the run is in
now (``resume_line_here``: moved or copied since, the line as it was would train another folder)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import torch

from .data import DATA_ENV, FASHION_MNIST


MAX_LINE = 10_000  # characters: a recorded line longer is an edited one (or no line to paste)


def resume_line(command_line: str, data_dir: str | None = None, processes: int = 1) -> str:
    """``cd FOLDER && [DATA_ENV=DIR] OMP_NUM_THREADS=N [torchrun ...] fashionae ...``: in this
    folder, with the data folder the environment named (``data_dir``), the threads this process
    trains on (a resume on others is not the same arithmetic: on a machine of more cores, all of
    them), and torchrun's ``processes``."""
    variables = {DATA_ENV: data_dir, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    assigned = _joined([f"{k}={v}" for k, v in variables.items() if v]) + " "  # (as runs_fashionae reads it back)
    torchrun = f"torchrun --nproc-per-node {processes} -m " if processes > 1 else ""
    return f"cd {shlex.quote(os.getcwd())} && {assigned}{torchrun}{command_line}"


def runs_fashionae(command: str, *commands: str) -> bool:
    """Whether ``command`` is a line ``resume_line`` writes for one of fashionae's ``commands``:
    ``[cd DIR &&] [NAME=value ...] [torchrun ... -m] fashionae COMMAND ...`` (an edited record
    that is not, or not quoted as it writes it, is never said as the line to run: another
    command, a second one after ``&&`` or ``;``, a line of several, a byte the shell cannot take)."""
    if len(command) > MAX_LINE or not command.replace("\t", " ").isprintable():
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    start = 3 if words[:1] == ["cd"] and words[2:3] == ["&&"] else 0
    if (f"cd {shlex.quote(words[1])} && " if start else "") + _joined(words[start:]) != command:
        return False
    words = words[start:]
    while words and _assignment(words[0]):
        words = words[1:]
    if words[:1] == ["torchrun"]:
        words = words[words.index("-m") + 1:] if "-m" in words else []
    return len(words) > 1 and words[0] == "fashionae" and words[1] in commands


def resume_line_here(command: str, run: Path) -> str:
    """The recorded line (``resume_line``) for the run folder ``run`` where that is not the folder
    it names (moved or copied since): from the folder it was run in moved whole, where its --out
    leads to this one as it did (its other paths too); else with its --out this folder, from where
    it ran if that is still there."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    start = 3 if words[:1] == ["cd"] and words[2:3] == ["&&"] else 0
    named, kept = None, []  # its --out, and its other words
    rest = iter(words[start:])
    for word in rest:
        if word == "--out":
            named = next(rest, None)
        elif word.startswith("--out="):
            named = word.split("=", 1)[1]
        else:
            kept.append(word)
    where, here = (Path(words[1]) if start else Path.cwd()), run.resolve()
    if named is not None and (where / named).resolve() == here:
        return command
    if start and named and not where.is_dir() and (moved := _moved_with(where, named, here, kept)):
        return f"cd {shlex.quote(str(moved))} && " + _joined(words[start:])
    cd = f"cd {shlex.quote(words[1])} && " if start and where.is_dir() else ""
    return cd + _joined(kept + ["--out", str(here)])


def _moved_with(where: Path, named: str, here: Path, words: list[str]) -> Path | None:
    """Where the folder a run's command ran in (``where``, gone) is now, where it moved with the
    run folder (``here``, resolved: a project's folder moved whole): the folders the command's
    --out (``named``) led to then and the run's share their last names, which set the old place
    beside the new; the command from there must lead to the run, and its other ``words`` that
    name files by a relative path (``_relative_paths``: a study file, a dataset's folder) to files
    there (a study folder moved alone, out of its project, shares its own name only), else None."""
    then, now = Path(os.path.normpath(where / named)).parts, here.parts
    tail = 0
    while tail < min(len(then), len(now)) - 1 and then[-1 - tail] == now[-1 - tail]:
        tail += 1
    try:
        moved = Path(*now[:len(now) - tail]) / where.relative_to(Path(*then[:len(then) - tail]))
    except ValueError:  # (it ran outside the folder that moved)
        return None
    return moved if (tail and moved.is_dir() and (moved / named).resolve() == here
                     and all((moved / path).exists() for path in _relative_paths(words))) else None


PATH_OPTIONS = ("--dataset", "--data-dir", "--encoder")  # (--out: the run's own folder, read apart)


def _relative_paths(words: list[str]) -> list[str]:
    """The files a command's words name by a relative path: its path options' values (``--x v``
    or ``--x=v``; not the dataset named ``fashion-mnist``), the data folder its environment names,
    a study file (``.toml``; not a bundled study's name, ``paper``)."""
    paths, rest = [], iter(words)
    for word in rest:
        name, assigned, value = word.partition("=")
        if word in PATH_OPTIONS:
            value = next(rest, "")
        elif not (assigned and name in (*PATH_OPTIONS, DATA_ENV)):
            value = word if word.endswith(".toml") and not word.startswith("-") else ""
        if value and value != FASHION_MNIST and not value.startswith(("/", "~")):
            paths.append(value)
    return paths


def _joined(words: list[str]) -> str:
    """Words as ``resume_line`` writes them in a line: its leading environment assignments (the
    data folder, the threads) with their names outside the quotes, which, quoted whole, the shell
    would run as a command; then the command's words as ``shlex.join`` quotes them (an argument
    ``lr=0.1 run`` quoted whole)."""
    lead = 0
    while lead < len(words) and _assignment(words[lead]):
        lead += 1
    return " ".join([*(f"{w.partition('=')[0]}={shlex.quote(w.partition('=')[2])}" for w in words[:lead]),
                     *map(shlex.quote, words[lead:])])


def _assignment(word: str) -> bool:
    """Whether a word is an environment's assignment, ``NAME=value``."""
    name, assigned, _ = word.partition("=")
    return bool(assigned) and name.isidentifier()
