import errno
import os
import shutil
from pathlib import Path

import pytest

from fashionae.errors import UserError
from fashionae.files import atomic_write
from fashionae.lock import FolderLock
from helpers import run_python


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
    tmp_path.chmod(0o500)
    write = ("from fashionae.errors import UserError\nfrom fashionae.files import atomic_write\ntry:\n"
             f"    atomic_write({str(tmp_path / 'f.txt')!r}, 'data')\nexcept UserError as e:\n    print(e)")
    as_user = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root writes in any folder, and setpriv (util-linux) is not here to drop that")
        as_user = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    said = run_python(write, as_user, check=True).stdout
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


def test_files_written_together_are_fsynced_in_their_folder_and_after_first_follows_the_first(tmp_path, monkeypatch):
    """The old others' removal is on disk (the folder's fsync) before any rename, the renames are
    on disk before it returns, and ``after_first`` runs once the first file is in place (with
    one file too: results.json written alone)."""
    from fashionae import files
    files_ = [tmp_path / n for n in ("results.json", "report.md", "report.html")]
    for f in files_:
        f.write_text("old")
    events = []
    monkeypatch.setattr(files, "_fsync_dir", lambda folder: events.append(("fsync", folder)))
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replace(a, b), events.append(("replace", Path(b).name))))

    def after_first():
        events.append(("after_first", [f.read_text() if f.exists() else None for f in files_]))
    files.atomic_write_together([(f, "new") for f in files_], after_first=after_first)
    assert events == [("fsync", tmp_path), ("replace", "results.json"), ("after_first", ["new", None, None]),
                      ("replace", "report.md"), ("replace", "report.html"), ("fsync", tmp_path)]
    events.clear()
    files.atomic_write_together([(files_[0], "alone")], after_first=after_first)
    assert events == [("replace", "results.json"), ("after_first", ["alone", "new", "new"]), ("fsync", tmp_path)]


def test_a_stop_while_a_later_file_of_several_is_written_leaves_no_temporary_of_the_earlier(tmp_path, monkeypatch):
    """A Ctrl-C while the second of the files written together goes to disk: the first one's
    temporary, already whole, is removed too, and the old files are as they were."""
    from fashionae.files import atomic_write_together
    files_ = [tmp_path / n for n in ("results.json", "report.md")]
    for f in files_:
        f.write_text("old")
    fsync, calls = os.fsync, []

    def stopped_on_the_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise KeyboardInterrupt
        fsync(fd)
    monkeypatch.setattr(os, "fsync", stopped_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_together([(f, "new") for f in files_])
    assert [f.read_text() for f in files_] == ["old", "old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "results.json"]


def test_files_in_the_way_are_named_three_at_most_and_the_rest_counted(tmp_path):
    from fashionae.files import refuse_to_replace
    taken = [tmp_path / f"{i}.png" for i in range(5)]
    for p in taken:
        p.write_bytes(b"mine")
    for n, named in ((1, "0.png already exists with other contents; nothing was written: choose another output, "
                         "or pass --force to replace it"),
                     (3, "0.png, 1.png, 2.png already exist"), (4, "0.png, 1.png, 2.png and 1 more already exist"),
                     (5, "0.png, 1.png, 2.png and 2 more already exist")):
        with pytest.raises(UserError) as e:
            refuse_to_replace({p: b"new" for p in taken[:n]}, force=False)
        assert str(e.value).replace(f"{tmp_path}/", "").startswith(named), n
    refuse_to_replace({p: b"mine" for p in taken}, force=False)  # the same bytes again: nothing lost
    refuse_to_replace({p: None for p in taken}, force=True)


def test_is_there_answers_for_any_entry_and_raises_where_the_path_cannot_be_looked_at(tmp_path):
    """A broken link is there; a name under a file is not (NotADirectoryError); a path the system
    cannot use (a loop of links above it, a name too long) is no answer: OSError, not "not there"."""
    from fashionae.files import is_there
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "broken").symlink_to(tmp_path / "gone")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert is_there(tmp_path / "broken") and is_there(tmp_path / "afile")
    assert not is_there(tmp_path / "gone") and not is_there(tmp_path / "afile" / "x")
    for path, code in ((tmp_path / "loop" / "x", errno.ELOOP), (tmp_path / ("n" * 300), errno.ENAMETOOLONG)):
        with pytest.raises(OSError) as e:
            is_there(path)
        assert e.value.errno == code


def test_what_an_entry_that_is_no_regular_file_is_called(tmp_path):
    from fashionae.files import kind_of
    (tmp_path / "folder").mkdir()
    for name, target in (("to_folder", tmp_path / "folder"), ("broken", tmp_path / "gone"), ("to_null", "/dev/null")):
        (tmp_path / name).symlink_to(target)
    assert [kind_of(tmp_path / n) for n in ("folder", "to_folder", "broken", "to_null")] == \
        ["a folder", "a folder", "a broken link", "not a regular file"]  # a link to a device is there: not broken


def test_a_folder_whose_fsync_fails_still_takes_the_files(tmp_path, monkeypatch):
    """Some file systems refuse a folder's fsync (EINVAL): the files are written all the same,
    and no descriptor is left open."""
    import stat
    from fashionae.files import atomic_write_together
    fsync, opened = os.fsync, []

    def no_folder_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            opened.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        fsync(fd)
    monkeypatch.setattr(os, "fsync", no_folder_fsync)
    atomic_write_together([(tmp_path / "a.json", "a"), (tmp_path / "b.md", "b")])
    assert (tmp_path / "a.json").read_text() + (tmp_path / "b.md").read_text() == "ab" and opened
    for fd in opened:
        with pytest.raises(OSError):
            os.fstat(fd)  # closed


def test_removing_a_file_that_is_gone_does_nothing_and_an_unwritable_folder_is_one_line(tmp_path):
    from fashionae.files import remove_file
    remove_file(tmp_path / "gone.md")
    (tmp_path / "f.md").write_text("x")
    remove_file(tmp_path / "f.md")
    assert not any(tmp_path.iterdir())
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(UserError, match=rf"^cannot write in {tmp_path}/afile: Not a directory; choose a writable"):
        remove_file(tmp_path / "afile" / "x.md")


def test_a_folder_that_may_be_written_but_not_entered_is_refused(tmp_path, monkeypatch):
    """chmod 0600 on a folder: its files cannot be made, write permission or not."""
    from fashionae.files import refuse_unwritable_folder
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: not mode & os.X_OK)
    with pytest.raises(UserError, match=rf"^--out {tmp_path}/x: cannot write in {tmp_path}; choose a writable folder$"):
        refuse_unwritable_folder(tmp_path / "x")


def test_a_seal_holds_whatever_the_key_order_and_breaks_on_an_edit():
    """A file of ours whose keys another tool wrote in another order is still its own."""
    from fashionae.files import seal_broken, sealed
    content = sealed({"b": 1, "a": {"y": 2, "x": 3}}, "digest")
    reordered = {"digest": content["digest"], "a": {"x": 3, "y": 2}, "b": 1}
    assert not seal_broken(content, "digest") and not seal_broken(reordered, "digest")
    assert seal_broken({**reordered, "b": 2}, "digest") and not seal_broken({"b": 2}, "digest")


def test_utf16_is_known_by_either_byte_order_mark(tmp_path):
    from fashionae.files import is_utf16
    for name, text, utf16 in (("le", "\ufeffa = 1".encode("utf-16-le"), True),
                              ("be", "\ufeffa = 1".encode("utf-16-be"), True), ("utf8", b"a = 1", False)):
        (tmp_path / name).write_bytes(text)
        assert is_utf16(tmp_path / name) is utf16, name


def test_a_json_file_of_ours_missing_damaged_or_not_text_is_one_line(tmp_path):
    from fashionae.files import read_json
    with pytest.raises(UserError, match=rf"^run summary {tmp_path}/s.json is missing$"):
        read_json(tmp_path / "s.json", "run summary", "train it again")
    for damage in (b"{\"a\": ", b"\xff\xfe\x00{", b""):
        (tmp_path / "s.json").write_bytes(damage)
        with pytest.raises(UserError, match=r"^run summary .*s.json is unreadable or not valid JSON \(.*\); train it "
                                            r"again$"):
            read_json(tmp_path / "s.json", "run summary", "train it again")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match=r"d is unreadable or not valid JSON"):
        read_json(tmp_path / "d", "run summary", "train it again")


def test_a_rebuildable_json_file_that_is_no_object_is_rebuilt(tmp_path):
    from fashionae.files import read_json, read_rebuildable_json
    assert read_rebuildable_json(tmp_path / "gone.json") is None
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"  # (Python's decoder: a RecursionError of its own)
    for text, value in (('{"a": 1}', {"a": 1}), ("[1, 2]", None), ("3", None), ('{"a": ', None), ("\udcff", None),
                        (deep, None)):
        (tmp_path / "t.json").write_text(text, errors="surrogateescape")
        assert read_rebuildable_json(tmp_path / "t.json") == value, text[:20]
    with pytest.raises(UserError, match=r"t.json is unreadable or not valid JSON \(maximum recursion depth"):
        read_json(tmp_path / "t.json", "run summary", "train it again")


def test_with_no_home_at_all_there_is_no_user_folder(monkeypatch):
    """No $HOME and no entry in the password database (a container's user): Path.home() raises."""
    from fashionae.files import user_folder

    def no_home():
        raise RuntimeError("Could not determine home directory.")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", no_home)
    assert user_folder("XDG_CACHE_HOME", ".cache") is None


def test_a_cache_folder_of_this_users_name_that_another_user_made_is_not_taken(tmp_path, monkeypatch):
    """/tmp/fashionae-cache-UID made first by someone else (here: by this process, for a uid that
    is not ours): not this user's alone, so a folder of this process's is used instead."""
    from fashionae import files
    monkeypatch.setattr(files.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(files.os, "getuid", lambda: os.geteuid() + 4242)
    files._temporary_cache.cache_clear()
    try:
        folder = files._temporary_cache()
    finally:
        files._temporary_cache.cache_clear()
    squatted = tmp_path / f"fashionae-cache-{os.geteuid() + 4242}"
    assert squatted.is_dir() and folder != squatted and folder.parent == tmp_path and folder.is_dir()


def test_a_jsonl_file_ends_each_row_with_its_newline(tmp_path):
    """One line per row, the last ended too (``wc -l`` counts the epochs, an append starts a row)."""
    from fashionae.files import write_jsonl
    write_jsonl(tmp_path / "m.jsonl", [{"epoch": 1}, {"epoch": 2}])
    assert (tmp_path / "m.jsonl").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_a_sigterm_as_the_handlers_are_put_back_ends_a_process_whose_sigterm_was_the_default():
    """Its noting handler still there (SIGINT's put back first), a SIGTERM does as SIG_DFL would:
    the process ends by it, not swallowed."""
    import signal
    code = ("import os, signal\nfrom fashionae.errors import stops_held_back\n"
            "signal.signal(signal.SIGTERM, signal.SIG_DFL)\nreal = signal.signal\n"
            "def put_back(signum, handler):\n    replaced = real(signum, handler)\n"
            "    if signum == signal.SIGINT and handler is not replaced:\n        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return replaced\n"
            "with stops_held_back():\n    signal.signal = put_back\nsignal.signal = real\nprint('swallowed')\n")
    proc = run_python(code)
    assert (proc.returncode, proc.stdout) == (-signal.SIGTERM, "")


def test_files_written_together_outside_the_main_thread_hold_nothing_back(tmp_path):
    """A thread (Ray's, a local executor's) may set no handler: it writes as the main thread does,
    no stop held."""
    import threading
    from fashionae.files import atomic_write_together
    failed = []

    def write():
        try:
            atomic_write_together([(tmp_path / "a.json", "a"), (tmp_path / "b.md", "b")])
        except BaseException as e:
            failed.append(e)
    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert failed == [] and (tmp_path / "a.json").read_text() + (tmp_path / "b.md").read_text() == "ab"
