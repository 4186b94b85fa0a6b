"""PID 1 of a sandbox container: reap orphans, kill every program on SIGUSR1, end after a lifetime.

The host sends SIGUSR1 (`docker kill --signal USR1`) to stop a run that timed out or was cancelled. A
signal needs no new process in the container, so it works even when a fork bomb holds every pid the
container may have. kill(-1) reaches every process this user may signal except PID 1 itself.
argv[1]: seconds before the container ends on its own (it is started with auto-remove), so a container
whose owner crashed does not live forever.
"""

import os
import signal
import sys
import time


def reap(*_):
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_all(*_args: object) -> None:
    for _ in range(3):  # new children may appear while the first sweep runs
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            break
    reap()


def leave(*_):
    sys.exit(0)


signal.signal(signal.SIGCHLD, reap)
signal.signal(signal.SIGUSR1, kill_all)
signal.signal(signal.SIGTERM, leave)
signal.signal(signal.SIGALRM, leave)
if len(sys.argv) > 1:
    signal.alarm(max(1, int(float(sys.argv[1]))))
while True:
    time.sleep(60)
    reap()
