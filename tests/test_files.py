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
from fashionae.files import FolderLock, atomic_write, lock_holder


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a" / "f.txt"
    atomic_write(path, "one")
    atomic_write(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temporary left behind


def test_atomic_write_takes_a_name_as_long_as_the_file_system_allows(tmp_path):
    """Its temporary file's name is cut short: the name's 255 bytes with 15 more were refused,
    the folder said unwritable."""
    for name in ("n" * 250 + ".onnx", "服" * 80 + ".png"):  # 255 bytes, 243 in UTF-8
        atomic_write(tmp_path / name, b"whole")
        assert (tmp_path / name).read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(("n" * 250 + ".onnx", "服" * 80 + ".png"))


def test_atomic_write_gives_the_file_the_users_umask_not_mkstemps_0600(tmp_path, monkeypatch):
    """A group that shares the output folder reads what fashionae wrote, as it would a file
    written with open(): mode 0666 less the umask."""
    from fashionae import files
    monkeypatch.setattr(files, "UMASK", 0o027)
    atomic_write(tmp_path / "f.txt", "one")
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640
    atomic_write(tmp_path / "f.txt", "two")  # a file replaced, too
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640


def test_a_file_where_the_folder_would_be_is_said_as_such(tmp_path):
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(UserError, match=r"^output folder .*afile is a file; give a folder$"):
        atomic_write(tmp_path / "afile" / "x.onnx", "data")
    with pytest.raises(UserError, match=r"^output folder .*afile/y: .*afile is a file, so the folder cannot be made"):
        atomic_write(tmp_path / "afile" / "y" / "x.onnx", "data")
    assert (tmp_path / "afile").read_text() == "mine"


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write(path, "old")

    def full_disk(*a):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(UserError, match="no space left"):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_full_disk_says_whether_finished_work_is_kept_and_the_fix_only_when_given(tmp_path):
    from fashionae.files import write_failure
    full = OSError(errno.ENOSPC, "No space left on device")
    path = tmp_path / "d.npz"
    head = f"no space left to write {path}; free some disk space and run again "
    assert str(write_failure(path, full)) == head + "(finished work is kept)"
    assert str(write_failure(path, full, kept=False)) == head + "(nothing was written)"
    assert str(write_failure(path, full, "write it elsewhere", kept=False)) == \
        head + "(nothing was written), or write it elsewhere"
    folder = OSError(errno.EISDIR, "Is a directory")
    assert str(write_failure(path, folder, "write it elsewhere")) == \
        f"cannot write {path}: a folder is in its place; move or remove it; write it elsewhere"


def test_unwritable_folder(tmp_path):
    """Root writes in any folder: as root, the write runs in a process without that capability
    (util-linux's setpriv), so that the refusal is seen whoever runs the tests."""
    import subprocess
    import sys
    tmp_path.chmod(0o500)
    write = ("from fashionae.errors import UserError\nfrom fashionae.files import atomic_write\ntry:\n"
             f"    atomic_write({str(tmp_path / 'f.txt')!r}, 'data')\nexcept UserError as e:\n    print(e)")
    as_user = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root writes in any folder, and setpriv (util-linux) is not here to drop that")
        as_user = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    src = str(Path(__file__).parent.parent / "src")
    said = subprocess.run([*as_user, sys.executable, "-c", write], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": src}).stdout
    if as_user and not said and (tmp_path / "f.txt").exists():  # (setpriv exits 0 where it may not drop them)
        pytest.skip("this root cannot give up writing in any folder (no CAP_SETPCAP)")
    assert said == f"output folder {tmp_path}: cannot write in {tmp_path}; choose a writable folder\n"
    assert not any(tmp_path.iterdir())


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
    from fashionae import files

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(files.os, "pwrite", full)
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


def test_only_fashionaes_own_files_are_leftovers(tmp_path):
    from fashionae.files import holds_nothing, is_leftover
    atomic_write(tmp_path / "a.json", "{}")
    names = {".lock": True, ".config.json.k1ll3d_8.tmp": True, ".notes.tmp": False, "a.json": False,
             ".config.json.tmp": False, ".config.json.k1ll3d_8.tmp.keep": False, ".notes.2024010112.tmp": False}
    for name, leftover in names.items():
        assert is_leftover(tmp_path / name) is leftover, name
    (tmp_path / "a.json").unlink()
    (tmp_path / ".lock").write_text("")
    (tmp_path / ".model.safetensors.abcd1234.tmp").write_text("half")
    assert holds_nothing(tmp_path)
    (tmp_path / ".notes.tmp").write_text("mine")
    assert not holds_nothing(tmp_path)
    with FolderLock(tmp_path):  # any folder (baselines --out may be yours): nothing is removed
        assert len(list(tmp_path.iterdir())) == 3
    with FolderLock(tmp_path, tidy=True):  # a run's or a study's: a killed writer's temporaries go
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", ".notes.tmp"]
    # in its subfolders too (a study's figures/), but for those locked on their own (its runs)
    for sub in ("figures", "runs/a"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / ".fig.png.abcd1234.tmp").write_text("half")
    (tmp_path / "runs" / "a" / ".lock").write_text("")
    with FolderLock(tmp_path, tidy=True):
        assert list((tmp_path / "figures").iterdir()) == []
        assert (tmp_path / "runs" / "a" / ".fig.png.abcd1234.tmp").exists()


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


def test_an_out_folder_several_levels_below_what_exists_is_writable(tmp_path):
    """--out new/deeper/run: the first folder that exists decides, however far up it is; a file
    there refuses it, saying which."""
    from fashionae.files import refuse_unwritable_folder
    refuse_unwritable_folder(tmp_path / "new" / "deeper" / "run")
    assert not (tmp_path / "new").exists()  # said, not made
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(UserError, match=r"afile/b/c: .*afile is a file, so the folder cannot be made"):
        refuse_unwritable_folder(tmp_path / "afile" / "b" / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # (its trial file made and gone)


def test_a_folder_that_takes_no_file_is_refused_where_permissions_say_yes(tmp_path, monkeypatch):
    """Root's permissions say yes to a read-only mount or /proc: a file made there decides, before
    the work."""
    import os
    import tempfile
    from fashionae.files import refuse_unwritable_folder
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)  # as for root

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(UserError, match=rf"^--out {tmp_path}/x: cannot write in {tmp_path}: Read-only file system; "
                                        "choose a writable folder$"):
        refuse_unwritable_folder(tmp_path / "x")


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
