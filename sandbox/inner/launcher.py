"""PID 1 of a bwrap sandbox: drop to the sandbox user, apply limits, run the program, end with it.

When PID 1 of a pid namespace exits, the kernel kills every other process in it, so a child that a
program leaves behind (daemonised, setsid, double fork) dies with the run.
argv: uid gid nproc address_space_bytes cpu_seconds file_size_bytes nofile nice program [args...]
Started as root (bwrap without a user namespace, on a root host) it switches to uid/gid; otherwise it
already is the sandbox user. Limits are set here, after the namespaces exist, because the kernel counts
RLIMIT_NPROC per user namespace, and so that bwrap itself is not bound by them.
"""

import ctypes
import os
import resource
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38


def main():
    uid, gid, nproc, address_space, cpu, fsize, nofile, nice = (int(a) for a in sys.argv[1:9])
    argv = sys.argv[9:]
    libc = ctypes.CDLL(None, use_errno=True)
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        # Changing credentials cleared bwrap's parent-death signal: ask for it again.
        libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for limit, value in (
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, fsize),
        (resource.RLIMIT_NOFILE, nofile),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))
    os.nice(nice)
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    while True:
        try:
            child, status = os.wait()  # also reaps orphans, which are re-parented to us
        except ChildProcessError:
            sys.exit(1)
        if child == pid:
            if os.WIFSIGNALED(status):
                sys.exit(128 + os.WTERMSIG(status))
            sys.exit(os.WEXITSTATUS(status))


main()
