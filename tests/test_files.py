import os

import pytest

from fashionae.errors import UserError
from fashionae.files import FolderLock, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a" / "f.txt"
    atomic_write(path, "one")
    atomic_write(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temporary left behind


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


def test_unwritable_folder(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file-not-folder"
        target.write_text("x")
        with pytest.raises(UserError, match="cannot write"):
            atomic_write(target / "f.txt", "data")
    else:
        tmp_path.chmod(0o500)
        with pytest.raises(UserError, match="cannot write"):
            atomic_write(tmp_path / "f.txt", "data")


def test_second_writer_is_refused_with_holder_pid(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(UserError, match=f"in use by another fashionae process \\(pid {os.getpid()}\\)"):
            FolderLock(tmp_path).acquire()
    FolderLock(tmp_path).acquire().release()  # free again once released


def test_stale_lock_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text("999999")  # left by a process that died
    with FolderLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
