"""watch_video's cost per minute of video: wall-clock seconds, vision tokens and frames sent, on videos this
script makes with ffmpeg (1280x720, 25 fps, red squares whose number changes every 7 s, a dark flash every
23 s), read as an attached file and through yt-dlp from a local server, seen by a scripted vision model that
counts the squares in each frame (so the answer is checked too).

Tokens are estimated as a vision model would bill them: text at 1.3 tokens a word, each frame by OpenAI's
rule for GPT-4.1-class models (85 + 170 per 512-px tile after scaling to fit 2048 and 768 on the short side);
the reply at 1.3 tokens a word. Seconds exclude the model's own latency (the scripted model answers at once),
so they are ffmpeg's and yt-dlp's work: what the tool adds on top of the model.

    python bench/video.py [--lengths 30,120,600] [--skip-url]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger  # noqa: E402

from agents.tools import video as video_tool  # noqa: E402
from agents.tools.registry import ToolContext  # noqa: E402
from tests.fakes.function_model import Call, FunctionModel, count_tokens  # noqa: E402
from tests.fakes.video import VideoSite, counting_reply, frames_in, make_video, video_settings  # noqa: E402

QUESTION = "What is the highest number of red squares visible on screen at the same time?"
WIDTH, HEIGHT = 1280, 720


def _image_tokens(width: int, height: int) -> int:
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    short = min(w, h)
    if short > 768:
        w, h = w * 768 / short, h * 768 / short
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def _usage(call: Call, reply: Any) -> tuple[int, int]:
    images = frames_in(call)
    text = sum(count_tokens(p) for m in call.messages for p in (m.content if isinstance(m.content, list) else [m.content])
               if isinstance(p, str))
    tokens = round(text * 1.3) + sum(_image_tokens(*image.image.size) for _, image in images)
    return tokens, round(count_tokens(str(reply)) * 1.3)


def _segments(length: float) -> tuple[list[tuple[float, float, int]], list[tuple[float, float]], int]:
    segments, t, n = [], 0.0, 0
    while t < length:
        count = (n * 3 + 1) % 5  # 1, 4, 2, 0, 3, 1, ...
        segments.append((t, min(t + 7, length), count))
        t += 7
        n += 1
    dark = [(float(t), t + 0.4) for t in range(11, int(length), 23)]
    return segments, dark, max(c for _, _, c in segments)


async def _one(ctx: ToolContext, source: str) -> tuple[float, video_tool.Watched]:
    started = time.perf_counter()
    watched = await video_tool.watch(ctx, source, QUESTION)
    return time.perf_counter() - started, watched


async def main(lengths: list[int], skip_url: bool) -> None:
    logger.remove()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        folder = Path(tmp)
        for length in lengths:
            segments, dark, most = _segments(length)
            path = folder / f"squares-{length}s.mp4"
            made = time.perf_counter()
            make_video(path, segments, duration=length, voice=None, dark=dark, fps=25, size=(WIDTH, HEIGHT))
            made = time.perf_counter() - made
            sources = [("file", path.name)]
            site = None
            if not skip_url:
                site = VideoSite(path).start()
                sources.append(("url (yt-dlp)", f"{site.url}/clip.mp4"))
            try:
                for kind, source in sources:
                    vision = FunctionModel(counting_reply, agent="vision", vision=True, usage=_usage)
                    ctx = ToolContext(settings=video_settings(VIDEO_TIMEOUT=900), workdir=folder, vision_client=vision,
                                      allow_loopback=True)
                    seconds, watched = await _one(ctx, source)
                    found = "Highest count in one frame: " + str(most) in watched.text
                    rows.append((length, kind, path.stat().st_size, made, seconds, watched, found))
            finally:
                if site is not None:
                    site.stop()
    print(f"watch_video, frames path, scripted vision model; videos {WIDTH}x{HEIGHT} at 25 fps (frames scaled to "
          f"{video_tool.DEFAULTS['video_frame_width']} px wide, at most {video_tool.DEFAULTS['video_max_frames']}, "
          f"{video_tool.DEFAULTS['video_frames_per_call']} per call)\n")
    head = ("| video | source | size | seconds | s / min of video | frames sent | vision calls | tokens in / out | "
            "tokens / min of video | highest count right |")
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for length, kind, size, _made, seconds, w, found in rows:
        minutes = length / 60
        print(f"| {length // 60}:{length % 60:02d} | {kind} | {size / 1e6:.1f} MB | {seconds:.1f} | {seconds / minutes:.1f} | "
              f"{w.frames_sent} | {w.vision_calls} | {w.prompt_tokens:,} / {w.completion_tokens:,} | "
              f"{round((w.prompt_tokens + w.completion_tokens) / minutes):,} | {'yes' if found else 'NO'} |")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="30,120,600", help="video lengths in seconds, comma-separated")
    parser.add_argument("--skip-url", action="store_true", help="only the attached-file source (no yt-dlp)")
    return parser.parse_args()


if __name__ == "__main__":
    args = _parse()
    asyncio.run(main([int(x) for x in args.lengths.split(",") if x.strip()], args.skip_url))
