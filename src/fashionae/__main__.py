"""The ``fashionae`` program (``python -m fashionae``, and the console script): ``cli.entry``,
imported where a Ctrl-C or SIGTERM in the first moments (before the command's handlers are set)
is said as any stop."""

import signal


def run() -> None:
    signal.signal(signal.SIGTERM, _stopped_early)  # (the command's own handler replaces it)
    try:
        from .cli import entry
    except KeyboardInterrupt:
        _stopped_early(signal.SIGINT, None)
    entry()


def _stopped_early(signum: int, frame) -> None:
    """One line and the status of a stop, before fashionae's own handlers are set: under torchrun,
    a Ctrl-C (which reaches every process) is said by process 0 alone."""
    import os
    import sys
    term = signum == signal.SIGTERM
    try:
        from .errors import is_main_process
        speaks = term or is_main_process()
    except BaseException:
        speaks = True
    if speaks:
        print(f"fashionae: {'terminated' if term else 'interrupted'}", file=sys.stderr, flush=True)
    os._exit(128 + signum)


if __name__ == "__main__":
    run()
