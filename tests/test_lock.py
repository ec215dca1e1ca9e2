"""FolderLock: one writer per output folder, a killed one's lock taken over, waiters, filesystems
without flock, and the tidying of what a stopped writer left."""

import errno
import fcntl
import os
import platform
import shutil
import threading
import time
from pathlib import Path

import pytest

from fashionae.errors import UserError
from fashionae.lock import FolderLock, lock_holder

HOST = platform.node()


def test_second_writer_is_refused_with_holder_host_and_pid(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(UserError, match=f"in use by another fashionae process \\(pid {os.getpid()} on {HOST}\\)"):
            FolderLock(tmp_path).acquire()
    FolderLock(tmp_path).acquire().release()  # free again once released
    assert (tmp_path / ".lock").read_text() == ""  # and says so


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here")
def test_a_place_that_takes_no_folder_is_one_line_not_a_wait_forever():
    """/proc refuses a new folder with ENOENT, the error a holder's removed folder also gives."""
    with pytest.raises(UserError, match=r"^cannot make the folder /proc/fashionae-x: No such file or directory; "
                                        r"choose another --out$"):
        FolderLock("/proc/fashionae-x").acquire()


def test_lock_holder_names_the_process_that_holds_the_lock_and_takes_nothing(tmp_path):
    assert lock_holder(tmp_path) is None  # no lock file
    with FolderLock(tmp_path):
        assert lock_holder(tmp_path) == (HOST, os.getpid())
        with pytest.raises(UserError, match="is in use by another fashionae process"):
            FolderLock(tmp_path).acquire()  # still held: asking took nothing
    assert lock_holder(tmp_path) is None
    (tmp_path / ".lock").write_text(f"{HOST}:999999")  # left by a process killed while it held it
    assert lock_holder(tmp_path) is None


def test_a_disk_too_full_for_the_lock_is_one_line_and_takes_nothing(tmp_path, monkeypatch):
    from fashionae import lock

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(lock.os, "pwrite", full)
    with pytest.raises(UserError, match=rf"^no space left to write {tmp_path / '.lock'}; free some disk space"):
        FolderLock(tmp_path).acquire()
    with pytest.raises(UserError, match="^no space left to write"):
        FolderLock(tmp_path / "new").acquire()
    monkeypatch.undo()
    assert not (tmp_path / "new").exists()  # the folder made for it: removed
    FolderLock(tmp_path).acquire().release()  # not held by the failed try


def test_stale_lock_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text(f"{HOST}:999999")  # left by a process that died
    with FolderLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{HOST}:{os.getpid()}"


def test_a_waiting_lock_gets_the_folder_once_its_holder_lets_go(tmp_path):
    holder = FolderLock(tmp_path).acquire()
    threading.Timer(1.0, holder.release).start()
    FolderLock(tmp_path).acquire(wait=30).release()
    with FolderLock(tmp_path):
        with pytest.raises(UserError, match="in use"):
            FolderLock(tmp_path).acquire(wait=1.5)


@pytest.mark.parametrize("recorded, taken", [
    ("", True),                                # released
    (f"{HOST}:999999", True),                  # its process is gone
    ("999999", True),                          # a lock file from before hosts were recorded
    (f"{HOST}:{os.getppid()}", False),         # a process still running here
    ("node-7.cluster:4242", False),            # another host: cannot be checked from here
])
def test_without_flock_the_named_holder_decides(tmp_path, monkeypatch, recorded, taken):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_flock)
    (tmp_path / ".lock").write_text(recorded)
    if taken:
        with FolderLock(tmp_path):
            assert (tmp_path / ".lock").read_text() == f"{HOST}:{os.getpid()}"
    else:
        with pytest.raises(UserError, match="in use by another fashionae process"):
            FolderLock(tmp_path).acquire()
        assert (tmp_path / ".lock").read_text() == recorded  # left as it was


def test_a_subfolder_the_lock_may_not_read_is_left_alone(tmp_path, monkeypatch):
    """A folder of the user's in a study folder that we may not read (chmod 000, another user's)
    stops neither the lock nor the tidying of the rest."""
    from pathlib import Path
    (tmp_path / "theirs").mkdir()
    (tmp_path / ".fig.png.abcd1234.tmp").write_text("half")
    iterdir = Path.iterdir

    def refused(path):
        if path.name == "theirs":
            raise PermissionError(13, "Permission denied", str(path))
        return iterdir(path)
    monkeypatch.setattr(Path, "iterdir", refused)
    with FolderLock(tmp_path, tidy=True):
        assert not (tmp_path / ".fig.png.abcd1234.tmp").exists()


def test_a_folder_the_lock_may_write_in_but_not_list_is_still_locked(tmp_path, monkeypatch):
    """A folder that takes the lock file but cannot be listed (mode -wx): nothing of ours can be
    tidied there, and the lock is taken all the same."""
    from pathlib import Path
    iterdir = Path.iterdir

    def refused(path):
        if path == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return iterdir(path)
    monkeypatch.setattr(Path, "iterdir", refused)
    lock = FolderLock(tmp_path, tidy=True).acquire()
    assert lock_holder(tmp_path) == (HOST, os.getpid())
    lock.release()


def test_a_lock_file_that_is_a_link_to_a_file_naming_a_live_process_names_no_holder(tmp_path):
    """``lock_holder`` reads fashionae's own lock file only: a link in its place names no one,
    whatever the file it points to says."""
    (tmp_path / "elsewhere").write_text(f"{HOST}:{os.getpid()}")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".lock").symlink_to(tmp_path / "elsewhere")
    assert lock_holder(tmp_path / "out") is None


@pytest.mark.parametrize("pid", ["99999999999999999999", "\u00b2", "0", "2147483648"])
def test_a_lock_file_naming_no_process_the_system_could_have_names_no_holder(tmp_path, pid):
    """A damaged lock file: a number beyond a C int (os.kill's OverflowError), a digit that is not
    ASCII (int()'s ValueError), or 0, which os.kill takes for the whole process group (held, by
    the very command asking): an internal error of `study --plan`, or a holder that is none."""
    (tmp_path / ".lock").write_text(f"{HOST}:{pid}")
    assert lock_holder(tmp_path) is None
    with FolderLock(tmp_path):  # and the folder is taken as any other whose holder is gone
        pass


def test_a_folder_the_lock_made_and_nothing_filled_goes_with_it(tmp_path):
    new = tmp_path / "runs" / "new"
    FolderLock(new).acquire().release()  # a command that failed before its first file
    assert not new.exists() and (tmp_path / "runs").is_dir()  # the leaf only
    with FolderLock(new):
        (new / "config.json").write_text("{}")
    assert sorted(p.name for p in new.iterdir()) == [".lock", "config.json"]  # kept once written in
    tmp_path.joinpath("empty").mkdir()
    FolderLock(tmp_path / "empty").acquire().release()
    assert (tmp_path / "empty" / ".lock").exists()  # a folder it did not make stays as it was


def test_a_waiter_on_a_folder_removed_as_its_holder_let_go_makes_it_again(tmp_path):
    new = tmp_path / "new"
    holder = FolderLock(new).acquire()
    threading.Timer(1.0, holder.release).start()  # leaves nothing: the folder goes
    waiter = FolderLock(new).acquire(wait=30)
    assert (new / ".lock").read_text() == f"{HOST}:{os.getpid()}"  # a lock file that exists
    with pytest.raises(UserError, match="in use"):
        FolderLock(new).acquire()
    waiter.release()
    assert not new.exists()  # the folder it made again goes too, when nothing filled it


def test_a_waiter_that_wakes_before_the_folder_goes_still_takes_it_over(tmp_path, monkeypatch):
    """The holder unlinks its lock, closes it (the waiter wakes), then removes the folder: a
    waiter quicker than that removal finds the folder still there, and must still treat it as
    one fashionae made and nothing filled."""
    import pathlib
    rmdir = pathlib.Path.rmdir
    monkeypatch.setattr(pathlib.Path, "rmdir", lambda self: (time.sleep(2), rmdir(self)))
    new = tmp_path / "new"
    holder = FolderLock(new).acquire()
    threading.Timer(0.5, holder.release).start()
    waiter = FolderLock(new).acquire(wait=30)
    time.sleep(2.5)  # the holder's removal came and found the waiter's lock file
    waiter.release()
    assert not new.exists()


def test_a_folder_deleted_while_locked_lets_the_commands_own_error_through(tmp_path):
    with pytest.raises(UserError, match="^the command's own$"):
        with FolderLock(tmp_path / "new"):
            shutil.rmtree(tmp_path / "new")
            raise UserError("the command's own")


def test_without_flock_another_users_process_still_holds_its_lock(tmp_path, monkeypatch):
    """A holder on this host that we may not signal (another user's: EPERM) runs: refused, not
    taken over."""
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    def not_yours(pid, sig):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(fcntl, "flock", no_flock)
    monkeypatch.setattr(os, "kill", not_yours)
    (tmp_path / ".lock").write_text(f"{HOST}:4242")
    with pytest.raises(UserError, match=r"in use by another fashionae process \(pid 4242 on "):
        FolderLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text() == f"{HOST}:4242"


def test_tidying_does_not_follow_a_link_out_of_the_folder(tmp_path):
    """A link in a run or study folder to a folder of the user's (a dataset, shared figures) is not
    ours to tidy: a file there named like a temporary stays."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / ".notes.abcd1234.tmp").write_text("mine")
    study = tmp_path / "study"
    study.mkdir()
    (study / "data").symlink_to(theirs, target_is_directory=True)
    (study / ".study.json.abcd1234.tmp").write_text("half")
    with FolderLock(study, tidy=True):
        assert not (study / ".study.json.abcd1234.tmp").exists()
    assert (theirs / ".notes.abcd1234.tmp").read_text() == "mine"


def test_a_lock_file_that_is_a_link_or_a_folder_is_one_line_not_a_wait_forever(tmp_path):
    """A .lock replaced by a link (broken, or to a file elsewhere: never written through) or by a
    folder: one line naming it, at once; a command that only reads the folder sees no holder."""
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("theirs")
    for kind, make in (("link", lambda p: p.symlink_to(tmp_path / "no" / "such")),
                       ("link", lambda p: p.symlink_to(elsewhere)), ("folder", lambda p: p.mkdir())):
        folder = tmp_path / f"out-{kind}-{make.__hash__()}"
        folder.mkdir()
        make(folder / ".lock")
        with pytest.raises(UserError) as e:
            FolderLock(folder).acquire()
        assert str(e.value) == (f"{folder / '.lock'} should be fashionae's lock file, and is a {kind}: move it "
                                "away (fashionae makes its own again) and run again")
        assert lock_holder(folder) is None
    assert elsewhere.read_text() == "theirs"


def test_an_out_folder_that_is_a_broken_link_or_a_file_is_said_as_such(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(UserError, match=f"^{tmp_path / 'link'} is a link to {tmp_path / 'gone'}, which is no folder "
                       "\\(moved or deleted\\?\\): point it at the folder, or remove it$"):
        FolderLock(tmp_path / "link").acquire()
    with pytest.raises(UserError, match=f"^{tmp_path / 'link'} is a link to {tmp_path / 'gone'}, which is no folder"):
        FolderLock(tmp_path / "link" / "sub").acquire()  # the one above it said, not the folder asked for
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=f"^{tmp_path / 'file'} is a file, not a folder; choose another --out$"):
        FolderLock(tmp_path / "file").acquire()
    with pytest.raises(UserError, match=f"^{tmp_path / 'file'} is a file, not a folder; choose another --out$"):
        FolderLock(tmp_path / "file" / "sub").acquire()
    assert not (tmp_path / "gone").exists()

