"""The ``fashionae`` program (``python -m fashionae``, and the console script): ``cli.entry``,
imported where a Ctrl-C in the first moments (before any handler is set) is said as any stop."""


def run() -> None:
    try:
        from .cli import entry
    except KeyboardInterrupt:
        import os
        import sys
        try:  # under torchrun, process 0 alone says it (a terminal's Ctrl-C reaches every process)
            from .errors import is_main_process
            speaks = is_main_process()
        except BaseException:
            speaks = True
        if speaks:
            print("fashionae: interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    entry()


if __name__ == "__main__":
    run()
