"""PID 1 of the app's container: `python -m sandbox.pid1 <command...>`.

The container's secrets arrive as environment variables of PID 1, and `/proc/1/environ` is readable by
every process of the same user. The image's sandboxes (wasm on a Space, bwrap or docker elsewhere) never
show it to model-written code; this guards the rest: any other process of the app's user, and code run by
the unisolated subprocess backend where someone opts in to it (SANDBOX_ALLOW_SUBPROCESS=1). This init marks
itself non-dumpable (see sandbox/undumpable.py), runs the command as its child, forwards SIGTERM/SIGINT/
SIGHUP, reaps orphaned processes (the job tini would do) and exits with the command's status.
"""

from __future__ import annotations

import os
import signal
import sys

from sandbox.undumpable import make_undumpable


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m sandbox.pid1 COMMAND [ARG...]", file=sys.stderr)
        return 2
    make_undumpable()
    child = os.fork()
    if child == 0:
        os.setsid()
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"pid1: cannot run {argv[0]}: {exc}", file=sys.stderr)
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.wait()  # reaps the child and any orphan re-parented to us
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child:
            return os.waitstatus_to_exitcode(status) if status else 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.exit(128 - code if code < 0 else code)  # a signal -N becomes 128+N, as a shell reports it
