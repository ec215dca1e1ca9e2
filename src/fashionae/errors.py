"""Errors a user can act on, and how a command's failure reaches the user (``run_command``).

Anything raised as ``UserError`` is reported by the CLI as one line
``fashionae: error: <message>`` with exit status 2 and no traceback; the message says
what is wrong and what to do. Ctrl-C and SIGTERM stop a command with one line too (130, 143),
a reader of our output that went away (``| head``) quietly. Any other exception is a bug in
fashionae (exit status 1).
"""

import _thread
import ast
import codecs
import contextlib
import errno
import importlib
import os
import signal
import sys
import threading
import traceback
from typing import Any, Callable, NoReturn


class UserError(Exception):
    """Bad input or a bad setting: the user can fix it."""

    exit_code = 2


def require(module: str, extra: str, what: str):
    """Import an optional dependency, or say in one line which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs {module.split('.')[0]}, which is not installed: "
                        f"pip install 'fashionae[{extra}]'") from None


def run_command(command: Callable[[], int], debug: bool, resumable: bool, memory: str | None = None) -> int:
    """``command()``'s exit status, every failure reported in one line on stderr (``debug``: with
    its traceback); ``resumable``: the command keeps finished epochs when stopped, and says so;
    ``memory``: the settings of the command that ask for less memory, said where it runs out."""
    main_thread = threading.current_thread() is threading.main_thread()  # where signals are handled
    on_term = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    on_int = signal.getsignal(signal.SIGINT) if main_thread else None
    unraisable = sys.unraisablehook
    if main_thread:
        sys.unraisablehook = _stop_again(unraisable)
    _signals.clear()
    _said.clear()
    try:
        code = command()
        sys.stdout.flush()  # here, so that a reader gone away shows below and not at exit
        return code
    except UserError as e:
        if debug:
            traceback.print_exc()
        say_error(str(e))
        return e.exit_code
    except KeyboardInterrupt as e:
        if main_thread:  # stopping: a second Ctrl-C (or SIGTERM) while the first is said changes nothing
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return _stopped(isinstance(e, Terminated), resumable)
    except Exception as e:
        if signal.SIGTERM in _signals:  # a library's failure once the stop reached its processes (Ray's)
            return _stopped(True, resumable)
        return _failed(e, debug, memory)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if on_term is None else on_term)
            signal.signal(signal.SIGINT, signal.default_int_handler if on_int is None else on_int)
            sys.unraisablehook = unraisable


@contextlib.contextmanager
def stops_held_back():
    """Ctrl-C and SIGTERM held back for the ``with``, then delivered, every one: for steps a stop
    must not cut in two. Their handlers only note them meanwhile (Python runs a handler in the
    main thread, whichever thread the system gave the signal to: torch's own threads take them as
    well, so a mask of the main thread's would hold back nothing). Each handler is put back
    whatever comes as the others are, and one that notes acts as the handler it replaced once the
    ``with`` is over (left noting, it would swallow every stop after); outside the main thread,
    where no handler can be set, nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    before: dict[int, Any] = {}
    closing = threading.Event()

    def note(signum, frame):
        if not closing.is_set():
            came.append(signum)
        elif callable(handler := before[signum]):  # the with is over (this one not yet put back): as the
            handler(signum, frame)                 # handler it replaced would
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            before[s] = signal.signal(s, note)
        yield
    finally:
        closing.set()
        _one_after_another([lambda s=s, h=h: signal.signal(s, h) for s, h in before.items()]
                           + [lambda s=s: signal.raise_signal(s) for s in dict.fromkeys(came)])


def _one_after_another(steps: list[Callable[[], Any]]) -> None:
    """Each step, whatever the ones before raised (what the last step to raise raised comes out,
    the earlier exceptions its context: a SIGTERM after a Ctrl-C ends the process as a SIGTERM)."""
    if steps:
        try:
            steps[0]()
        finally:
            _one_after_another(steps[1:])


def import_whole(*modules: str) -> None:
    """Import ``modules`` (numpy, torch) with Ctrl-C and SIGTERM held back until they are loaded,
    then delivered: a stop raised inside torch's import was swallowed by its C++ code (the command
    ran on), or killed the process (pybind11's error_already_set), or left numpy half-imported (an
    internal error later); held back, it is the command's one line, as any stop."""
    with stops_held_back():
        for name in modules:
            importlib.import_module(name)


def say_error(message: str) -> None:
    """The one line of a command refused: what is wrong, and what to do."""
    print(f"fashionae: error: {message}", file=sys.stderr)


def _failed(e: Exception, debug: bool, memory: str | None) -> int:
    """The exit status of a command that failed with ``e`` (no UserError), said in one line."""
    if isinstance(e, OSError) and (getattr(sys.stdout, "failed", None) is e  # (``_Stream``'s record)
                                   or isinstance(e, BrokenPipeError) and _stdout_gone()):
        # our output failed: the rest of it goes to /dev/null (no error at exit's flush); a reader
        # gone away (`... | head`) stops it quietly, a file that cannot take it (> /dev/full) is said
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if not isinstance(e, BrokenPipeError):
            room = " where there is room" if e.errno in (errno.ENOSPC, errno.EDQUOT) else " elsewhere"
            say_error(f"cannot write the output: {e.strerror or e}; send it{room} (what the command wrote to its "
                      "files is kept)")
        return 1
    if isinstance(e, OSError) and e.errno in (errno.ENAMETOOLONG, errno.ELOOP):
        return _bad_path(str(e.filename or ""), e.strerror)
    if isinstance(e, RuntimeError) and str(e).startswith("Symlink loop from "):  # Path.resolve, Python < 3.13
        name = str(e).removeprefix("Symlink loop from ")  # the path's repr
        try:
            name = ast.literal_eval(name)
        except (ValueError, SyntaxError):
            pass
        return _bad_path(str(name), os.strerror(errno.ELOOP))
    return _internal_error(e, debug, memory)  # a bug in fashionae, or a machine too small for the settings


def _bad_path(name: str, why: str) -> int:
    """A path the system cannot use (too long, a loop of links), its end shown: the file's name."""
    name = f" …{name[-60:]}" if len(name) > 60 else f" {name}" if name else ""
    say_error(f"cannot use the path{name}: {why}; give another path")
    return UserError.exit_code


def ready_streams() -> None:
    """The ``fashionae`` program's standard streams made safe before anything runs. A stream
    closed at the start (``>&-``) is opened on /dev/null, at its own descriptor: else the next
    file opened (a checkpoint) would take it, and whatever a library writes to the stream would
    go into that file; the command's own output there fails as on a full disk (its lines have
    nowhere to go: said, not lost with status 0), its notes are dropped. Output lines are flushed
    one by one (see ``cli.entry``), and what the locale cannot encode (LC_ALL=C) is written as a
    name's own bytes or escaped (``_escaped``), not a failure after the work is done. stderr
    (progress, notes) that cannot be written (``2>/dev/full``, its reader gone) is dropped, and
    the command goes on."""
    closed = False
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:  # closed
            closed = closed or fd == 1
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", closefd=False))
    codecs.register_error("fashionae", _escaped)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True, errors="fashionae")
    if hasattr(sys.stderr, "reconfigure"):
        sys.stderr.reconfigure(errors="fashionae")
    sys.stdout, sys.stderr = _Stream(sys.stdout, drops=False, closed=closed), _Stream(sys.stderr, drops=True)


def _escaped(e: UnicodeEncodeError) -> tuple:
    """What the output's encoding cannot write: a name's bytes that were not text in the file
    system's encoding as those bytes (Python's surrogateescape: the path as it is, to copy into
    the next command), anything else escaped (U+2212 as \\u2212)."""
    try:
        return codecs.lookup_error("surrogateescape")(e)
    except UnicodeEncodeError:
        return codecs.backslashreplace_errors(e)


class _Stream:
    """A standard stream whose failed writes are known: dropped (``drops``: stderr's notes and
    progress, so that a long command is not lost for its log, its own error line included:
    there is nowhere to say it), or raised and kept in ``failed`` (stdout: the command's output,
    whose failure ``_failed`` says as such). A ``closed`` stream (stdout closed at the start, now
    /dev/null) fails each write as the closed descriptor would have."""

    def __init__(self, stream, drops: bool, closed: bool = False):
        self._stream, self._drops, self._closed, self.failed = stream, drops, closed, None

    def _do(self, what: str, *args):
        try:
            if self._closed and what == "write":
                raise OSError(errno.EBADF, "the output is closed")
            return getattr(self._stream, what)(*args)
        except (OSError, ValueError) as e:
            if not self._drops:
                self.failed = e
                raise
            return len(args[0]) if args else None

    def write(self, text: str) -> int:
        return self._do("write", text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._do("flush")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def exit_process(code: int) -> NoReturn:
    """End the ``fashionae`` process with a finished command's status. Python's teardown of
    torch takes about 0.6 s after the last line; a Ctrl-C or SIGTERM in it used to end a
    finished command with status 130 or 143 and no message. Now the signals are ignored (the
    command is done, its files written); what Python does first at exit is done (wait for the
    threads that are not daemons, run the ``atexit`` handlers: Ray's shutdown, torch.distributed's
    process group, logging's flush), and the process leaves without the teardown."""
    import atexit
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        getattr(threading, "_shutdown", lambda: None)()  # as Python's own exit does, before atexit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone away, or a stream closed: nothing to add
            pass
    os._exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's stop), handled as Ctrl-C is: what is written stays whole,
    finished epochs are kept."""


_signals: list[int] = []  # the stops received, in order: a library may turn our exception into its own
_said: list[int] = []  # the stops said, by their status


def late_stop(e: KeyboardInterrupt) -> int:
    """The status of a process stopped once its command had returned (in the instant before
    ``exit_process`` ignores the signals): the stop said before, or this one, said now."""
    return _said[0] if _said else _stopped(isinstance(e, Terminated), False)


def stops_are_ours() -> bool:
    """Whether Ctrl-C and SIGTERM are handled by a command of the ``fashionae`` program here
    (``run_command``'s handlers, in the main thread), not by a script that uses fashionae."""
    return signal.getsignal(signal.SIGTERM) is _terminate


def say_stopped(term: bool) -> int:
    """The one line of a stop (SIGTERM where ``term``, else Ctrl-C) that comes where no handler
    can run (``distributed``'s wait for the group), and its status."""
    return _stopped(term, False)


def _stopped(term: bool, resumable: bool) -> int:
    """The one line of a command stopped by Ctrl-C or SIGTERM, and its status. A SIGTERM is ours
    to report even when a library raised its KeyboardInterrupt in place of Terminated (Ray's
    wait does, for any signal that arrives while it waits). Under torchrun, Ctrl-C reaches every
    process of a machine and the first says it (``says_its_ctrl_c``); a SIGTERM may reach one
    process alone (a scheduler stopping one machine), and each says its own, naming itself where
    it is not process 0."""
    term = term or signal.SIGTERM in _signals
    _said.append(128 + (signal.SIGTERM if term else signal.SIGINT))
    if term or says_its_ctrl_c():
        print(f"fashionae: {process_named()}{'terminated' if term else 'interrupted'}"
              + ("; finished epochs are kept, run the same command to resume" if resumable else ""), file=sys.stderr)
    return _said[-1]


def _terminate(signum, frame):
    _signals.append(signum)
    raise Terminated


def _stop_again(hook):
    """``sys.unraisablehook`` for a command: a stop (Ctrl-C, SIGTERM) that came while a finalizer
    ran (a weak reference's callback, a ``__del__``), where Python prints the exception and goes
    on, is delivered again a moment later (once this hook has returned: raised in it, the stop
    would be lost too), to be raised where the command is; the rest is ``hook``'s."""
    def unraisable(u) -> None:
        if not isinstance(u.exc_value, KeyboardInterrupt):
            return hook(u)
        signum = signal.SIGTERM if isinstance(u.exc_value, Terminated) else signal.SIGINT
        again = threading.Timer(0.05, _thread.interrupt_main, args=(signum,))
        again.daemon = True
        again.start()
    return unraisable


def _stdout_gone() -> bool:
    """Whether standard output leads to a pipe whose reader has gone, so that a BrokenPipeError
    is about our output and not some other connection (Ray's, say)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    import select
    if not hasattr(select, "poll"):  # Windows: cannot tell, take the pipe as gone
        return True
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), 0)  # a pipe without reader reports POLLERR anyway
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError):  # not a file (captured output)
        return False


TRAINING_MEMORY = ("use a smaller latent, batch or training subset (--latent, --batch-size, --train-subset; in a "
                   "study file latent, batch_size, train_subset)")  # what asks a run for less memory


def out_of_memory(e: BaseException, memory: str | None = TRAINING_MEMORY) -> str | None:
    """What to tell of an exception that says the memory ran out (the CPU's or a GPU's), else None;
    ``memory``: what asks the command for less (a run's settings), if anything does."""
    if not (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e)):
        return None
    first = (str(e).splitlines() or [""])[0]
    detail = first[first.find("tried to allocate"):] if "tried to allocate" in first else first[:120]
    said = f"out of memory ({detail})" if detail else "out of memory"  # (a MemoryError says nothing more)
    if memory is None:
        return f"{said}; close what else takes memory, or use a machine with more"
    return f"{said}; {memory}, or a machine with more memory"


def permission_denied(e: Exception) -> str | None:
    """What to say of a file or folder this user may not read or write, wherever it was met (an
    environment's limit, not a bug); None for anything else."""
    if not isinstance(e, PermissionError):
        return None
    where = f" {e.filename}" if e.filename else ""
    return (f"permission denied:{where} ({e.strerror or e}); give this user access to it, or choose another "
            "folder")


def _internal_error(e: Exception, debug: bool, memory: str | None) -> int:
    if debug:
        traceback.print_exception(e)
    if said := out_of_memory(e, memory) or permission_denied(e):
        say_error(said)
        return UserError.exit_code
    print(f"fashionae: internal error: {type(e).__name__}: {e} (run with --debug for the "
          "traceback, and please report it)", file=sys.stderr)
    return 1


def started_by_torchrun() -> bool:
    """Whether torchrun's agent started this process (not variables of its left over in a shell,
    nor processes started by hand with them)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def says_its_ctrl_c() -> bool:
    """Whether this process says a Ctrl-C. A torchrun's Ctrl-C reaches the processes it started on
    its machine, and the first of them says it (process 0 on the first machine; RANK is numbered
    machine after machine, LOCAL_WORLD_SIZE to each); a process torchrun did not start says its
    own (no process 0 may be there)."""
    if not started_by_torchrun():
        return True
    try:
        return int(os.environ["RANK"]) % int(os.environ["LOCAL_WORLD_SIZE"]) == 0
    except (KeyError, ValueError, ZeroDivisionError):  # (torchrun sets both: read as process 0's)
        return is_main_process()


def process_named() -> str:
    """How a line this process says for itself starts: nothing for process 0 (or a command run
    alone), else its rank, "process 1 of this torchrun: ", or, where torchrun did not start it
    (its variables set by another launcher, or left over in a shell), "process 1 of 2: "."""
    if is_main_process():
        return ""
    rank = os.environ.get("RANK")
    return f"process {rank} of this torchrun: " if started_by_torchrun() else f"process {rank} of {os.environ['WORLD_SIZE']}: "


def is_main_process() -> bool:
    """Whether this is torchrun's process 0 (or no torchrun at all): the one that speaks. Its RANK
    counts only where WORLD_SIZE says several processes run, and one that cannot be read speaks:
    variables left over in a shell are the command's to say (``distributed.torchrun_variable``)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) <= 1 or int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True
