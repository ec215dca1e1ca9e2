import errno
import os
import shutil
from pathlib import Path

import pytest

from fashionae.errors import UserError
from fashionae.files import atomic_write
from fashionae.lock import FolderLock


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


def test_a_stop_while_a_file_is_written_leaves_the_old_one_and_no_temporary(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM) while the bytes go to disk: the file as it was, and no temporary beside
    it (in a folder no lock tidies: reconstruct's -o, export's, bench's --out)."""
    path = tmp_path / "f.txt"
    atomic_write(path, "old")

    def stopped(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", stopped)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_stop_among_the_renames_of_files_written_together_waits_for_them(tmp_path, monkeypatch, stop):
    """results.json and the report's pages: a Ctrl-C or SIGTERM once the old pages are gone (the
    old results.json without pages was left) is held back until every new file is in place."""
    import signal
    import threading
    from fashionae.files import atomic_write_together
    files = [tmp_path / n for n in ("results.json", "report.md", "report.html")]
    for f in files:
        f.write_text("old")
    raised = {"SIGINT": KeyboardInterrupt, "SIGTERM": SystemExit}[stop]

    def on_term(signum, frame):
        raise SystemExit(143)
    before = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, on_term)
    unlink = Path.unlink

    def stopped_there(self, *args, **kwargs):  # the stop comes as the old pages go
        unlink(self, *args, **kwargs)
        os.kill(os.getpid(), getattr(signal, stop))  # to the process: any of its threads may take it
    monkeypatch.setattr(Path, "unlink", stopped_there)
    done = threading.Event()
    other = threading.Thread(target=done.wait)  # (torch's threads: a mask of the main thread's held nothing)
    other.start()
    try:
        with pytest.raises(raised):
            atomic_write_together([(f, "new") for f in files])
    finally:
        done.set()
        other.join()
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    assert [f.read_text() for f in files] == ["new"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files)  # no temporary left


def test_stops_held_back_are_all_delivered_and_every_handler_is_put_back(monkeypatch):
    """A Ctrl-C and a SIGTERM both held: both delivered after (the SIGTERM was lost behind the
    Ctrl-C's exception). A stop that comes as the handlers are put back (its own raising there)
    leaves no handler that only notes: every later stop would be swallowed."""
    import signal
    from fashionae.errors import stops_held_back
    said = []

    def on_int(signum, frame):
        said.append("int")
        raise KeyboardInterrupt

    def on_term(signum, frame):
        said.append("term")
        raise SystemExit(143)
    before = signal.signal(signal.SIGINT, on_int), signal.signal(signal.SIGTERM, on_term)
    try:
        with pytest.raises(SystemExit):
            with stops_held_back():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGTERM)
                assert said == []
        assert said == ["int", "term"]
        real = signal.signal

        def stopped_as_put_back(signum, handler):  # a Ctrl-C the moment SIGINT's handler is back
            replaced = real(signum, handler)
            if signum == signal.SIGINT and handler is on_int:
                raise KeyboardInterrupt
            return replaced
        monkeypatch.setattr(signal, "signal", stopped_as_put_back)
        with pytest.raises(KeyboardInterrupt):
            with stops_held_back():
                pass
        monkeypatch.undo()
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (on_int, on_term)
        said.clear()

        def stopped_between(signum, handler):  # a SIGTERM the moment SIGINT's handler is back, before SIGTERM's
            replaced = real(signum, handler)
            if signum == signal.SIGINT and handler is on_int:
                os.kill(os.getpid(), signal.SIGTERM)
            return replaced
        monkeypatch.setattr(signal, "signal", stopped_between)
        with pytest.raises(SystemExit):  # taken by the noting handler, still there: as SIGTERM's own
            with stops_held_back():
                pass
        monkeypatch.undo()
        assert said == ["term"] and signal.getsignal(signal.SIGTERM) is on_term
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


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
