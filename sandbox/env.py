"""The whole environment a sandboxed program gets. Nothing is inherited from the host process, whose
environment holds API keys and tokens; this is the only place that decides what a program may see."""

from __future__ import annotations

import math


def program_env(*, home: str, tmp: str, cpus: float, path: str | None = None) -> dict[str, str]:
    threads = str(max(1, math.floor(cpus)))
    env = {
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONPATH": home,  # an attached module imports like one next to the script
        "PYTHONUNBUFFERED": "1",  # output reaches the host even when the program is killed
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{tmp}/matplotlib",
        # BLAS and OpenMP size their thread pools (and memory) by the host's cores unless told otherwise.
        "OPENBLAS_NUM_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "NUMEXPR_MAX_THREADS": threads,
    }
    if path is not None:
        env["PATH"] = path
    return env
