"""Errors a user can act on.

Anything raised as ``UserError`` is reported by the CLI as one line
``fashionae: error: <message>`` with exit status 2 and no traceback; the message says
what is wrong and what to do. Any other exception is a bug in fashionae (exit status 1).
"""

import importlib


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
