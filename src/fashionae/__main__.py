"""The ``fashionae`` program (``python -m fashionae``, and the console script): ``cli.entry``,
imported where a Ctrl-C or SIGTERM in the first moments (before the command's handlers are set)
is said as any stop."""


def run() -> None:
    try:
        import signal
        # while the program's modules load, a stop ends it at once, in one line: a Ctrl-C raised
        # there could be swallowed (in a finalizer: "Exception ignored", and the command ran on)
        # or end it in a traceback, a SIGTERM ended it unsaid. A stop ignored stays ignored.
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s, handler in before.items():
            if handler in (signal.default_int_handler, signal.SIG_DFL):
                signal.signal(s, _stopped_early)
        from .cli import entry
        for s, handler in before.items():  # (the command's own handlers take over from these)
            signal.signal(s, handler)
    except KeyboardInterrupt:
        _stopped_early(2, None)  # (SIGINT)
    entry()


def _stopped_early(signum: int, frame) -> None:
    """One line and the status of a stop, before fashionae's own handlers are set: under torchrun,
    a Ctrl-C (which reaches every process of a machine) is said by one (``errors.says_its_ctrl_c``)."""
    import os
    import signal
    import sys
    term = signum == signal.SIGTERM
    try:
        from .errors import process_named, says_its_ctrl_c
        which, speaks = process_named(), says_its_ctrl_c()
    except BaseException:
        which, speaks = "", True
    if term or speaks:  # (a SIGTERM each process says, naming itself where it is not process 0, as errors._stopped)
        print(f"fashionae: {which}{'terminated' if term else 'interrupted'}", file=sys.stderr, flush=True)
    os._exit(128 + signum)


if __name__ == "__main__":
    run()
