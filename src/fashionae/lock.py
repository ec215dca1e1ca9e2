"""``FolderLock``: one process at a time writes in an output folder (a study's, a run's, a
dataset's), and ``lock_holder``: who that is, for the commands that only read it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import platform
import time
from pathlib import Path

from .errors import UserError
from .files import LOCK, is_leftover, refuse_a_link_to_nothing, write_failure


class FolderLock:
    """An exclusive lock on an output folder, held from ``acquire`` (or ``with``) to ``release``.

    It is an ``flock`` on ``<folder>/.lock``, which names its holder as ``host:pid``. The
    kernel drops an flock when its process dies (on NFS, the dead process's node tells the
    server), so a lock left by a killed process is simply taken over. Not detected: a node
    that dies holding a lock on a shared filesystem keeps it until the server gives up on
    that node (an NFSv4 lease, about 90 s; NFSv3 only once the node is back); ``wait``
    covers the first. On a filesystem without flock the named holder decides: one on this
    host that no longer runs is taken over; one on another host cannot be checked from
    here, so it is refused (delete the file once that process is known to be gone).
    """

    def __init__(self, folder: str | os.PathLike, tidy: bool = False, elsewhere: str = "choose another --out",
                 busy: str = "wait for it to finish or choose another --out"):
        """``tidy``: the folder is fashionae's alone (a run's, a study's), so once the lock is
        taken a killed writer's temporaries are removed. ``elsewhere`` and ``busy``: what the
        user can do where the folder cannot be made or written in, and where another process
        holds it (the command's own ways out)."""
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.tidy, self.elsewhere, self.busy = tidy, elsewhere, busy
        self._fd: int | None = None
        self._made = False  # whether acquire made the folder
        self._heir = False  # whether it waited on a holder that let go of a folder it had made

    def acquire(self, wait: float = 0.0) -> "FolderLock":
        """Take the lock, waiting up to ``wait`` seconds for a holder to let go."""
        deadline = time.monotonic() + wait
        while (fd := self._take(deadline)) is None:
            pass  # its holder removed the folder as it let go: make it again
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{platform.node()}:{os.getpid()}".encode(), 0)
        except OSError as e:  # a full disk, say: let go, and a folder made for it removed
            self._fd = fd
            self.release()
            raise write_failure(self.path, e, self.elsewhere) from e
        self._fd = fd
        if self.tidy:  # no one else writes here now
            self._tidy(self.folder)
        return self

    def _tidy(self, folder: Path) -> None:
        """Remove what writes stopped midway left in ``folder`` and its subfolders (a study's
        figures/, a run's explore/), but for those that hold a lock of their own (a study's runs:
        each tidied when it is locked)."""
        try:
            entries = list(folder.iterdir())
        except OSError:  # a subfolder we may not read (the user's): nothing of ours to tidy there
            return
        for p in entries:
            try:
                if p.is_dir() and not p.is_symlink() and not (p / self.path.name).exists():
                    self._tidy(p)
                elif p != self.path and is_leftover(p) and p.is_file():
                    p.unlink(missing_ok=True)
            except OSError:  # one we may not enter or remove: the others are still tidied
                pass

    def _take(self, deadline: float) -> int | None:
        """The lock file's descriptor, locked; None if the file (or its folder) was removed as
        its holder let go, before or while we waited."""
        # a holder that made the folder and left it empty unlinks its lock, then removes the folder:
        # a waiter that saw the lock go takes the folder over as made, whether or not it is gone yet
        made = self._heir or not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # it, or one above it, is there as no folder (a link to one is one)
            there = next((p for p in (self.folder, *self.folder.parents) if os.path.lexists(p) and not p.is_dir()),
                         self.folder)
            refuse_a_link_to_nothing(there)
            raise UserError(f"{there} is a file, not a folder; {self.elsewhere}") from None
        except OSError as e:  # (a place that takes no folder, such as /proc/x: ENOENT)
            raise UserError(f"cannot make the folder {self.folder}: {e.strerror}; {self.elsewhere}") from None
        try:  # (never through a link: the lock is fashionae's own file, and a link's target is not)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except FileNotFoundError:  # its holder removed the folder as it let go: make it again
            return None
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR):  # the folder is writable: its .lock is not a lock file
                raise UserError(f"{self.path} should be fashionae's lock file, and is a "
                                f"{'link' if e.errno == errno.ELOOP else 'folder'}: move it away (fashionae makes its "
                                "own again) and run again") from None
            raise UserError(f"cannot write in {self.folder}: {e.strerror}; {self.elsewhere}") from e
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(1)
                    continue
                holder = _holder(fd)
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
                holder = _holder(fd)  # no flock here: the file alone says who holds it
                if holder is None or not _running(*holder):
                    break
            os.close(fd)
            raise UserError(f"{in_use(self.folder, holder)}; {self.busy}") from None
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                self._made = made
                return fd
        except FileNotFoundError:
            pass
        self._heir = True  # its lock file went as we waited: its holder was letting the folder go
        os.close(fd)
        return None

    def release(self) -> None:
        """Let go. A folder this lock made and nothing else wrote in (the command failed before
        its first file) is removed, not left holding only the lock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            empty = self._made and [p.name for p in self.folder.iterdir()] == [LOCK]
            if empty:
                self.path.unlink()  # while still locked: a waiter sees its file gone and starts again
            else:
                os.ftruncate(fd, 0)  # free, also where no flock tells it
        except OSError:  # the folder went meanwhile (deleted by hand): nothing to free
            empty = False
        finally:
            os.close(fd)
        if empty:  # once closed (NFS keeps an open file's name until then)
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> tuple[str, int] | None:
    """The (host, pid) a lock file names, or None when it names none."""
    host, _, pid = os.pread(fd, 300, 0).decode(errors="replace").strip().rpartition(":")
    # (a process number as the system has them: not "²", nor 0, which os.kill takes for every process
    # of the group, nor one beyond a C int)
    return (host or platform.node(), int(pid)) if pid.isascii() and pid.isdigit() and 0 < int(pid) < 2**31 else None


def in_use(folder, holder: tuple[str, int] | None) -> str:
    """How a folder that another process holds is said: by its process and host."""
    host, pid = holder or ("?", "?")
    return f"{folder} is in use by another fashionae process (pid {pid} on {host})"


def lock_holder(folder: str | os.PathLike) -> tuple[str, int] | None:
    """(host, pid) of the process that holds ``folder``'s ``FolderLock``, as far as its file
    tells: the process it names (a holder empties it as it lets go) if that still runs (on another
    host: assumed). It takes no lock, not even for an instant, so that it never stands in the way
    of a command that would: for the commands that only read a folder, to say why it is not
    finished."""
    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # no lock file (or a link, which is none): no holder
        return None
    try:
        holder = _holder(fd)
    except OSError:  # (a folder, which is none either: the command that locks says so)
        holder = None
    finally:
        os.close(fd)
    return holder if holder and _running(*holder) else None


def _running(host: str, pid: int) -> bool:
    """Whether a process may still run: certain on this host, assumed on another."""
    if host != platform.node():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
