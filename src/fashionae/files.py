"""Writing artefacts safely: atomic replace, JSON files and their seals, what a stopped writer leaves
(``is_leftover``; one writer per folder is ``lock.py``'s); where fashionae's cache is.

Every artefact fashionae writes (settings, metrics, models, summaries, results, figures, reports)
goes through ``atomic_write``: the bytes go to a temporary
file in the same folder, are flushed and fsynced, and only then renamed over the target.
A crash or a full disk therefore leaves either the old file or the new one, never half
of one.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import UserError, stops_held_back


UMASK = os.umask(0)
os.umask(UMASK)


RUNS = "runs"  # where train-ae, train-clf and study write when no --out is given (``study.Study.default_folder``)


def cache_dir() -> Path:
    """fashionae's cache (``$XDG_CACHE_HOME/fashionae``, else ``~/.cache/fashionae``): the dataset
    downloaded, and the CPU kernels built for this machine. Where there is no home to keep it in
    (``HOME=/nonexistent``, a container's user with none or a home it may not write in), a folder
    of this user's alone in the temporary folder."""
    folder = user_folder("XDG_CACHE_HOME", ".cache")
    return folder / "fashionae" if folder else _temporary_cache()


def user_folder(xdg: str, default: str) -> Path | None:
    """An XDG base folder: ``$XDG`` where it is an absolute path (a relative one is ignored, as the
    XDG specification says: else each folder a command runs in had its own), else ``~/default``
    where it is, or can be made in the home; None where there is no home, or one we may not
    write in (a home that does not exist is never made: ``/nonexistent`` says there is none)."""
    if os.path.isabs(base := os.environ.get(xdg, "")):
        return Path(base)
    try:
        home = Path.home()
    except RuntimeError:  # no $HOME, and no home in the password database
        return None
    there = folder = home / default
    try:
        while not there.exists() and there != home:
            there = there.parent
    except OSError:  # (a home we may not enter: another user's, kept by sudo or docker --user)
        return None
    return folder if there.is_dir() and os.access(there, os.W_OK | os.X_OK) else None


@functools.cache
def _temporary_cache() -> Path:
    """A cache in the temporary folder, kept from one command to the next: this user's alone (made
    by it, for it alone to read and write), else one for this process, removed at its exit."""
    folder = Path(tempfile.gettempdir()) / f"fashionae-cache-{os.getuid()}"
    with contextlib.suppress(OSError):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        mine = folder.lstat()  # (a link, or a folder another user made first, is not taken)
        if stat.S_ISDIR(mine.st_mode) and mine.st_uid == os.getuid() and not mine.st_mode & 0o077:
            return folder
    atexit.register(shutil.rmtree, folder := tempfile.mkdtemp(prefix="fashionae-cache-"), ignore_errors=True)
    return Path(folder)


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[str], None]) -> None:
    """Write a file whole or not at all: beside it first, then in its place (``data``: its bytes or
    text, or a function that writes the path it is given)."""
    atomic_write_together([(path, data)])


def atomic_write_together(files: list[tuple[str | os.PathLike, bytes | str | Callable[[str], None]]],
                          after_first: Callable[[], None] = lambda: None) -> None:
    """Write files that must agree (results.json and the report's pages) as one: each is written
    beside its place first; once all are whole, the old ones after the first go (and the folder's
    fsync makes that so on disk), then the new ones take their places in order, ``after_first``
    called after the first. A full disk or a stop while they are written leaves the old files as
    they were; a Ctrl-C or SIGTERM among the renames waits for them to end; a kill (or a power cut)
    there leaves the first file, old or new, and some of the new others, none of the old."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            staged.append((_staged(Path(path), data), Path(path)))
        with stops_held_back():  # (a Ctrl-C among the renames would leave the old first file without the rest)
            for _, path in staged[1:]:
                path.unlink(missing_ok=True)
            for folder in dict.fromkeys(path.parent for _, path in staged[1:]):
                _fsync_dir(folder)
            for i, (tmp, path) in enumerate(staged):
                os.replace(tmp, path)
                if i == 0:
                    after_first()
            for folder in dict.fromkeys(path.parent for _, path in staged):  # the renames, on disk too
                _fsync_dir(folder)
    except BaseException as e:  # a failure or a stop: no temporary left behind
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise write_failure(path, e) from e
        raise


def _staged(path: Path, data: bytes | str | Callable[[str], None]) -> str:
    """A temporary file beside ``path`` holding ``data``, on disk (fsync); ``data`` may be a
    function that writes the file it is given (a large one, written without a copy in memory)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # (the name cut short: a file system's 255 bytes hold the file's name, not its name and 15 more)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:50]}.", suffix=".tmp")
    except OSError as e:
        refuse_unwritable_folder(path.parent, "output folder")  # a file in the way, said as such
        raise _unwritable(path.parent, e) from e
    try:
        if callable(data):  # (it may put a file of its own in the temporary's place: safetensors does)
            os.close(fd)
            data(tmp)
            fd = os.open(tmp, os.O_RDWR)
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600 files; use the user's umask
        with os.fdopen(fd, "r+b") as f:
            if not callable(data):
                f.write(data)
                f.flush()
            os.fsync(f.fileno())
    except BaseException as e:  # a full disk, or a stop while it is written: no temporary left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise write_failure(path, e) from e
        raise
    return tmp


def write_failure(path: Path, e: OSError, fix: str = "", kept: bool = True) -> UserError:
    """The one line of a file that could not be written: a full disk, or why not (and ``fix``).
    ``kept``: what the command finished before is kept (else nothing was written: a whole that
    is written at once, or not at all)."""
    if e.errno == errno.ENOSPC:
        return UserError(f"no space left to write {path}; free some disk space and run again "
                         + ("(finished work is kept)" if kept else "(nothing was written)" + (f", or {fix}" if fix else "")))
    if e.errno == errno.EISDIR:
        return UserError(f"cannot write {path}: a folder is in its place; move or remove it" + (f"; {fix}" if fix else ""))
    return UserError(f"cannot write {path}: {e.strerror}" + (f"; {fix}" if fix else ""))


LOCK = ".lock"  # FolderLock's file
# atomic_write's: mkstemp(prefix=".NAME.", suffix=".tmp"); safetensors' save_file's (Rust's tempfile: ".tmp" and 6)
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp|\.tmp[A-Za-z0-9]{6}")


def refuse_to_replace(outputs: dict[Path, bytes | None], force: bool) -> None:
    """Before anything is written: a file in the way whose bytes differ from what would replace
    it (another run's export, the user's own file) is refused, unless ``force``. Writing what a
    file already holds (the same command again) loses nothing, so it goes ahead. ``None``: bytes
    not made yet, and known to differ from any file there."""
    in_the_way = [p for p in outputs if p.exists() and not p.is_file()]
    if in_the_way:
        raise UserError(f"{in_the_way[0]} is a folder (or not a file), where a file would be written; nothing was "
                        "written: move it, or choose another output")
    if force:
        return
    taken = [p for p, data in outputs.items() if p.is_file() and (data is None or p.read_bytes() != data)]
    if taken:
        named = ", ".join(str(p) for p in taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise UserError(f"{named} already {'exists' if len(taken) == 1 else 'exist'} with other contents; "
                        "nothing was written: choose another output, or pass --force to replace "
                        f"{'it' if len(taken) == 1 else 'them'}")


def is_there(path: Path) -> bool:
    """Whether a folder entry by this name exists, of any kind (a broken link too); OSError where
    its folder cannot be read (``os.path.lexists`` would answer no)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def kind_of(path: Path) -> str:
    """What an entry that is not a regular file is, for a message: "a folder", "a broken link"."""
    if path.is_dir():
        return "a folder"
    return "a broken link" if path.is_symlink() and not path.exists() else "not a regular file"


def refuse_a_link_to_nothing(folder: Path) -> None:
    """A folder that is a link whose target is gone (moved to another disk, or deleted): one line."""
    if folder.is_symlink() and not folder.exists():
        raise UserError(f"{folder} is a link to {os.readlink(folder)}, which is no folder (moved or deleted?): "
                        "point it at the folder, or remove it")


def is_leftover(path: Path) -> bool:
    """Whether a folder entry is fashionae's own bookkeeping, not content: the lock file, or
    a temporary file of ``atomic_write`` that a killed writer left."""
    return path.name == LOCK or _TEMPORARY.fullmatch(path.name) is not None


def holds_nothing(folder: Path) -> bool:
    """Whether a folder holds nothing but fashionae's bookkeeping (see ``is_leftover``)."""
    return all(is_leftover(p) for p in folder.iterdir())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_file(path: str | os.PathLike) -> None:
    """Remove a file of ours (one gone already: nothing to do), or say in one line that its
    folder cannot be written in."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as e:
        raise _unwritable(Path(path).parent, e) from e


def _unwritable(folder: Path, e: OSError) -> UserError:
    return UserError(f"cannot write in {folder}: {e.strerror}; choose a writable folder")


def json_text(obj: Any) -> str:
    """A JSON file's text as fashionae writes it."""
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, json_text(obj))


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))


def refuse_unwritable_folder(path: Path, option: str = "--out") -> None:
    """Say now, in one line, that a folder cannot be made or written in (a file in its way, no
    permission, a file system that takes no file, such as a read-only one, where root's
    permissions say yes): before a command's work, not after it."""
    there = path
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder" if there == path else
                        f"{option} {path}: {there} is a file, so the folder cannot be made; give another")
    if not os.access(there, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write in {there}; choose a writable folder")
    try:  # (a file made and gone at once: nothing is left, whatever stops the command)
        with tempfile.TemporaryFile(dir=there):
            pass
    except OSError as e:
        raise UserError(f"{option} {path}: cannot write in {there}: {e.strerror or e}; choose a writable folder") \
            from None


def json_digest(content) -> str:
    """The SHA-256 of JSON content, whatever its formatting and key order."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def sealed(content: dict, key: str) -> dict:
    """``content`` with its digest under ``key`` (``seal_broken`` checks it): a file of ours
    edited by hand, or damaged into other valid JSON, is known as such."""
    return {**content, key: json_digest(content)}


def seal_broken(content: dict, key: str) -> bool:
    """Whether ``content`` records a digest under ``key`` that is not its own (one written
    before it was sealed records none, and passes)."""
    return key in content and content[key] != json_digest({k: v for k, v in content.items() if k != key})


def is_utf16(path: Path) -> bool:
    """Whether a text file starts with UTF-16's byte-order mark (PowerShell 5's ``>`` writes it),
    where UTF-8 was asked for."""
    return path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")


def read_json(path: str | os.PathLike, what: str, fix: str) -> Any:
    """A JSON file of ours; UserError naming ``what`` it is, and ``fix`` where it is damaged."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise UserError(f"{what} {path} is missing") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # (arrays nested 100,000 deep)
        raise UserError(f"{what} {path} is unreadable or not valid JSON ({e}); {fix}") from e


def read_rebuildable_json(path: str | os.PathLike) -> dict | None:
    """A JSON object fashionae rebuilds when it must (a cache, a timing record), or None when
    it is missing or damaged."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # (arrays nested 100,000 deep)
        return None
    return value if isinstance(value, dict) else None
