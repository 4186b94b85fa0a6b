"""Hiding a process's environment (API keys, tokens) from programs that run as the same user.

Any process of the same uid may read `/proc/<pid>/environ`, and with the subprocess backend the model's
code runs as the app's user. A process marked non-dumpable has its /proc files owned by root instead, so
they are unreadable to unprivileged code. (Root is not stopped by this; the isolated backends are.)
Linux only; elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_DUMPABLE = 4


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(libc.prctl(option, arg, 0, 0, 0))


def make_undumpable() -> bool:
    """Mark this process non-dumpable (its children reset to dumpable when they exec). True on success."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _prctl(PR_SET_DUMPABLE, 0) == 0
    except OSError:
        return False
