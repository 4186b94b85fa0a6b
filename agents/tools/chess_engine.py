"""Stockfish on the host, under limits: the engine half of `chess_position`.

Why the host binary and not the question's sandbox: the engine is never given code, only a FEN that
python-chess validated and wrote itself (`Board.fen()`: piece letters, digits, `/`, the side, castling and
en passant fields), so there is no model-written program to contain, only an engine to bound. And the
sandbox cannot always run it: the wasm backend (what a Hugging Face Space gets) has no processes at all, and
a team on a host without an isolated backend has no sandbox. So the engine runs as a child process
(python-chess's `chess.engine` over UCI) with the sandbox's kind of limits:
- wall clock: `seconds` of thinking, and the whole exchange killed `GRACE_S` later at the latest;
- rlimits set between fork and exec: address space `memory_mb`, CPU seconds, no file writes, no core
  dumps, a few open files; lower priority; one search thread and a 16 MB hash table;
- an environment built from scratch (no API key reaches it) and an empty temporary working directory;
- no network where the host allows it: its own network namespace via `unshare` (root: `unshare --net`;
  otherwise a user namespace too); where the kernel or a container refuses that (a Space's seccomp
  profile), it runs without and says so in its result.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import chess
import chess.engine

from agents.tools.errors import ToolError
from common.text import one_line

# Where stockfish is looked for when STOCKFISH_PATH is not set: PATH first, then Debian's package location
# (/usr/games is not on the PATH of a service or of the app image).
STOCKFISH_CANDIDATES: tuple[str, ...] = ("stockfish", "/usr/games/stockfish")
INSTALL_HINT = (
    "install it with `apt-get install stockfish` (Debian/Ubuntu; the binary is /usr/games/stockfish) or set "
    "STOCKFISH_PATH to a UCI engine binary"
)
ENGINE_SECONDS = 2.0  # thinking time per position (CHESS_ENGINE_SECONDS)
ENGINE_MEMORY_MB = 512  # address space of the engine process (Stockfish 15.1 needs ~150 MB with a 16 MB hash)
HASH_MB = 16
GRACE_S = 15.0  # start-up, options and shutdown on top of the thinking time, before the engine is killed


@dataclass(frozen=True)
class Analysis:
    engine: str  # "Stockfish 15.1"
    best: chess.Move
    best_san: str
    pv_san: str  # "1... Qxf7#"
    pv_uci: str  # "h5f7"
    mate: int | None  # > 0: the side to move mates in N; < 0: it is mated in N with best defence
    centipawns: int | None  # from the side to move's view, when there is no mate
    depth: int | None
    seconds: float
    isolation: str  # what bounded the engine, for the model and the log


def find_stockfish(configured: str | None) -> str:
    """The engine binary to run. Raises ToolError saying what to install when there is none."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise ToolError(f"no chess engine at STOCKFISH_PATH={configured!r}: {INSTALL_HINT}")
        return found
    for candidate in STOCKFISH_CANDIDATES:
        found = shutil.which(candidate)
        if found is not None:
            return found
    raise ToolError(f"Stockfish is not installed on this host: {INSTALL_HINT}")


@lru_cache(maxsize=1)
def _no_network_prefix() -> tuple[tuple[str, ...], str]:
    """The command prefix that gives the engine its own, empty network namespace, or () when refused here."""
    unshare = shutil.which("unshare")
    true = shutil.which("true")
    if unshare is None or true is None:
        return (), "network not isolated (no `unshare` command here)"
    if os.geteuid() == 0:
        prefix: tuple[str, ...] = (unshare, "--net", "--")
    else:
        prefix = (unshare, "--user", "--map-root-user", "--net", "--")
    try:
        subprocess.run([*prefix, true], capture_output=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        return (), f"network not isolated (this host refuses a network namespace: {one_line(detail, 120)})"
    return prefix, "no network (own network namespace)"


def _limit_engine(memory_mb: int, cpu_seconds: int) -> None:
    """Runs in the child between fork and exec."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    os.nice(10)


async def analyse(
    board: chess.Board,
    *,
    binary: str,
    seconds: float = ENGINE_SECONDS,
    memory_mb: int = ENGINE_MEMORY_MB,
) -> Analysis:
    """Stockfish's best move, score and principal variation for `board` (legal, with a move to make)."""
    prefix, network = await asyncio.to_thread(_no_network_prefix)
    cpu = int(seconds + GRACE_S) + 5  # a backstop: the wall-clock limit below comes first
    isolation = f"host binary, {seconds:g} s, {memory_mb} MB, 1 thread, {network}"
    with tempfile.TemporaryDirectory(prefix="roundtable-engine-") as cwd:
        transport: asyncio.SubprocessTransport | None = None
        try:
            async with asyncio.timeout(seconds + GRACE_S):
                transport, engine = await chess.engine.popen_uci(
                    [*prefix, binary],
                    cwd=cwd,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": cwd, "TMPDIR": cwd},
                    preexec_fn=lambda: _limit_engine(memory_mb, cpu),
                    start_new_session=True,
                    stderr=subprocess.DEVNULL,
                )
                options = {name: value for name, value in (("Threads", 1), ("Hash", HASH_MB)) if name in engine.options}
                await engine.configure(options)
                info = await engine.analyse(board, chess.engine.Limit(time=seconds))
                name = engine.id.get("name", Path(binary).name)
                try:
                    async with asyncio.timeout(2):
                        await engine.quit()
                except (TimeoutError, chess.engine.EngineError):
                    pass
        except TimeoutError:
            raise ToolError(
                f"the chess engine did not answer within {seconds + GRACE_S:g} s and was stopped"
            ) from None
        except chess.engine.EngineTerminatedError as exc:
            raise ToolError(
                f"the chess engine ({Path(binary).name}) stopped unexpectedly ({exc}); its limits are {memory_mb} MB "
                f"of memory and {cpu} CPU seconds"
            ) from None
        except chess.engine.EngineError as exc:
            raise ToolError(f"the chess engine ({Path(binary).name}) failed: {one_line(str(exc), 200)}") from None
        except OSError as exc:
            raise ToolError(f"cannot start the chess engine {binary}: {exc.strerror or exc}; {INSTALL_HINT}") from None
        finally:
            if transport is not None:
                transport.close()  # kills the engine if it is still running
    pv = list(info.get("pv") or [])
    if not pv:
        raise ToolError(f"the chess engine ({name}) returned no move for this position")
    score = info.get("score")
    pov = score.pov(board.turn) if score is not None else None
    return Analysis(
        engine=name,
        best=pv[0],
        best_san=board.san(pv[0]),
        pv_san=board.variation_san(pv),
        pv_uci=" ".join(move.uci() for move in pv),
        mate=pov.mate() if pov is not None else None,
        centipawns=pov.score() if pov is not None and not pov.is_mate() else None,
        depth=info.get("depth"),
        seconds=seconds,
        isolation=isolation,
    )
