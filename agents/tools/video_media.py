"""Subprocesses for `watch_video`: bounded, killable runs of ffprobe, ffmpeg and yt-dlp, and what they produce.

Every program runs in its own process group (so a yt-dlp that started ffmpeg to merge formats is stopped
whole), with no standard input, a wall-clock limit, a cap on what it may print (stdout is cut, stderr keeps
its last lines) and a kill as soon as the run's abort token fires or the awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken

from common.text import one_line


class MediaError(Exception):
    """A media step failed; the message is one line for the agent."""


@dataclass
class Completed:
    returncode: int
    stdout: bytes
    stderr_tail: list[str]
    stdout_cut: bool = False

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_tail)


class Stopped(Exception):
    """The run's abort token fired while a program ran."""


def which(program: str) -> str | None:
    return shutil.which(program)


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # our child leads its own group (start_new_session)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def run_program(
    argv: list[str],
    *,
    timeout: float,
    abort: CancellationToken | None = None,
    max_stdout: int = 1_000_000,
    tail_lines: int = 60,
    on_stderr_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Completed:
    """Run `argv`; raises TimeoutError past `timeout`, Stopped when `abort` fires. Never leaves it running."""
    if abort is not None and abort.is_cancelled():
        raise Stopped()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        env=env,
        cwd=str(cwd) if cwd else None,
    )
    aborted = False

    def on_abort() -> None:
        nonlocal aborted
        aborted = True
        _kill(proc)

    if abort is not None:
        abort.add_callback(on_abort)
    out = bytearray()
    cut = False
    tail: deque[str] = deque(maxlen=tail_lines)

    async def read_stdout() -> None:
        nonlocal cut
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            if len(out) + len(chunk) > max_stdout:
                out.extend(chunk[: max_stdout - len(out)])
                cut = True
                _kill(proc)
                break
            out.extend(chunk)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while True:
            try:
                raw = await proc.stderr.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                raw = exc.partial
                if not raw:
                    break
            except asyncio.LimitOverrunError as exc:  # a line over 64 KiB: keep its start
                raw = await proc.stderr.read(exc.consumed)
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            # ffmpeg and yt-dlp rewrite progress lines with \r: the last piece is the current state
            line = line.rsplit("\r", 1)[-1]
            tail.append(line)
            if on_stderr_line is not None:
                on_stderr_line(line)

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(read_stdout(), read_stderr())
            await proc.wait()
    except BaseException:
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    if aborted:
        raise Stopped()
    return Completed(proc.returncode if proc.returncode is not None else -1, bytes(out), list(tail), cut)


# --- ffprobe -------------------------------------------------------------------------------------------

@dataclass
class Probe:
    duration: float
    width: int
    height: int
    has_audio: bool
    codec: str
    format_name: str


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _jpgs(folder: Path) -> list[Path]:
    return sorted(folder.glob("f*.jpg"))


def size_of(path: Path) -> int:
    """The file's size in bytes; 0 when it does not exist."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


_size = size_of


def _input(path: Path) -> str:
    # "file:" + an absolute path: a name that starts with "-" or looks like a protocol ("concat:...") is a file.
    return "file:" + str(path.resolve())


async def probe(path: Path, *, timeout: float, abort: CancellationToken | None) -> Probe:
    done = await run_program(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", _input(path)],
        timeout=timeout, abort=abort, max_stdout=2_000_000,
    )
    try:
        data: dict[str, Any] = json.loads(done.stdout or b"{}")
    except ValueError:
        data = {}
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    if done.returncode != 0 or video is None:
        why = one_line(done.stderr.replace(_input(path)[5:], path.name), 160) if done.returncode else "no video stream"
        raise MediaError(f"is not a video ffmpeg can read ({why})")
    duration = _float(data.get("format", {}).get("duration")) or _float(video.get("duration")) or 0.0
    format_name = str(data.get("format", {}).get("format_name") or "?")
    if format_name.startswith("image2") or format_name.endswith("_pipe") or (duration == 0 and int(video.get("nb_frames") or 1) <= 1):
        raise MediaError("is a still image, not a video (describe_image reads images)")
    return Probe(
        duration=duration,
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        codec=str(video.get("codec_name") or "?"),
        format_name=format_name,
    )


def _is_cover(stream: dict[str, Any]) -> bool:
    """An mp3's or m4a's embedded cover picture is a "video" stream of one frame, not a video."""
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None  # not NaN


# --- frames --------------------------------------------------------------------------------------------

@dataclass
class Frame:
    index: int  # 1-based, in time order
    time: float  # seconds from the start of the video
    path: Path
    scene: bool  # picked at a scene change (else: at an even step)
    score: float = 0.0


@dataclass
class FramePlan:
    start: float
    end: float
    step: float  # seconds between even frames
    gap: float  # the least time between two scene-change frames
    threshold: float
    frames: list[Frame] = field(default_factory=list)
    extracted: int = 0  # frames ffmpeg wrote before the cap thinned them


_PTS = re.compile(r"pts_time:\s*([0-9.]+)")
_SCORE = re.compile(r"lavfi\.scene_score=([0-9.]+)")


async def extract_frames(
    path: Path,
    out_dir: Path,
    *,
    start: float,
    end: float,
    max_frames: int,
    min_step: float,
    threshold: float,
    width: int,
    timeout: float,
    abort: CancellationToken | None,
) -> FramePlan:
    """Frames of [start, end): one at the start, one at least every `step` seconds, and one at each scene
    change (at least `gap` apart), then thinned to `max_frames` (scene changes first, by score, half the cap
    at most; the rest evenly in time). One ffmpeg pass; timestamps and scene scores from its metadata lines."""
    span = max(end - start, 0.04)
    step = max(span / max(max_frames, 1), min_step)
    gap = step / 4
    plan = FramePlan(start, end, step, gap, threshold)
    _mkdir(out_dir)
    select = (
        f"isnan(prev_selected_t)+gte(t-prev_selected_t\\,{step:.3f})"
        f"+gt(scene\\,{threshold:.3f})*gte(t-prev_selected_t\\,{gap:.3f})"
    )
    vf = f"scale='min({width}\\,iw)':-2,select='{select}',metadata=print:key=lavfi.scene_score,showinfo"
    times: list[float] = []
    scores: dict[int, float] = {}

    def line(text: str) -> None:
        if "Parsed_showinfo" in text and (m := _PTS.search(text)):
            times.append(float(m.group(1)))
        elif (m := _SCORE.search(text)) is not None:
            scores[len(times)] = float(m.group(1))  # printed before showinfo's line for the same frame

    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info"]
    if start > 0:
        argv += ["-ss", f"{start:.3f}"]
    argv += ["-t", f"{span:.3f}", "-i", _input(path), "-an", "-sn", "-dn", "-vf", vf,
             "-fps_mode", "vfr", "-frames:v", str(4 * max_frames + 8), "-q:v", "4", str(out_dir / "f%05d.jpg")]
    done = await run_program(argv, timeout=timeout, abort=abort, max_stdout=100_000, on_stderr_line=line)
    files = _jpgs(out_dir)
    if done.returncode != 0 and not files:
        raise MediaError(f"ffmpeg could not read frames ({one_line(done.stderr_tail[-1] if done.stderr_tail else '', 160)})")
    frames = []
    for i, file in enumerate(files):
        t = start + (times[i] if i < len(times) else i * step)
        score = scores.get(i, 0.0)
        frames.append(Frame(0, t, file, scene=i > 0 and score > threshold, score=score))
    plan.extracted = len(frames)
    plan.frames = _thin(frames, max_frames)
    for n, frame in enumerate(plan.frames, 1):
        frame.index = n
    return plan


def _thin(frames: list[Frame], cap: int) -> list[Frame]:
    if len(frames) <= cap:
        return frames
    scenes = sorted((f for f in frames if f.scene), key=lambda f: -f.score)[: cap // 2]
    rest = [f for f in frames if f not in scenes]
    room = cap - len(scenes)
    if room > 0 and rest:
        picks = {round(i * (len(rest) - 1) / max(room - 1, 1)) for i in range(room)} if room > 1 else {0}
        chosen = [rest[i] for i in sorted(picks)]
    else:
        chosen = []
    return sorted(scenes + chosen, key=lambda f: f.time)


# --- audio and cutting -----------------------------------------------------------------------------------

async def extract_audio(
    path: Path, out: Path, *, start: float, end: float | None, timeout: float, abort: CancellationToken | None
) -> Path:
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if start > 0:
        argv += ["-ss", f"{start:.3f}"]
    if end is not None:
        argv += ["-t", f"{max(end - start, 0.1):.3f}"]
    argv += ["-i", _input(path), "-vn", "-ac", "1", "-ar", "16000", "-b:a", "48k", str(out)]
    done = await run_program(argv, timeout=timeout, abort=abort, max_stdout=100_000)
    if done.returncode != 0 or _size(out) == 0:
        raise MediaError(f"ffmpeg could not extract the audio track ({one_line(done.stderr, 160)})")
    return out


async def cut(
    path: Path, out: Path, *, start: float, end: float, timeout: float, abort: CancellationToken | None
) -> Path:
    """The window [start, end) as its own small mp4 (re-encoded small: for a model that takes the video)."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{start:.3f}",
            "-t", f"{max(end - start, 0.1):.3f}", "-i", _input(path), "-vf", "scale='min(960\\,iw)':-2",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-c:a", "aac", "-b:a", "64k", str(out)]
    done = await run_program(argv, timeout=timeout, abort=abort, max_stdout=100_000)
    if done.returncode != 0 or _size(out) == 0:
        raise MediaError(f"ffmpeg could not cut the video ({one_line(done.stderr, 160)})")
    return out
