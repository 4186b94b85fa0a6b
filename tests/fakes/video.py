"""Fixtures for watch_video, made by the tests themselves, and the local servers they need.

- `make_video`: an mp4 drawn by ffmpeg's lavfi: red squares that appear and disappear in counted numbers
  (`segments`: (from, to, how many)), optionally with a voice track spoken by espeak-ng.
- `count_squares`: counts the red squares in a frame image with Pillow, so a scripted vision model can really
  read the frames it is sent (`counting_vision`), and a test proves the frames carry the information.
- `VideoSite`: a FakeWeb serving the video as a direct link, inside an HTML page, without a Content-Length,
  and the refusals a site can answer; yt-dlp's generic extractor reads it.
- `fake_ytdlp`: a stand-in yt-dlp program that replays what yt-dlp prints when YouTube refuses (bot check,
  private, removed) or describes a long video. These messages come from yt-dlp's YouTube extractor (see
  yt_dlp/extractor/youtube/_video.py and common.py `_login_hint`); only the live YouTube can show that they
  are what a given server really gets.
- `FakeGemini`: Gemini's `POST /v1beta/models/{model}:generateContent` in its JSON format.
- `video_settings`: config.settings.Settings with short timeouts, for the VIDEO_* and YTDLP_* cases.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autogen_core import Image as AGImage
from autogen_core.models import UserMessage

from config.settings import Settings
from tests.fakes.function_model import Call, FunctionModel, Reply, ScriptedModels
from tests.fakes.server import LocalServer
from tests.fakes.web import FakeWeb
from tests.fakes.web import Reply as WebReply
from tests.fakes.web import Request as WebRequest

SIZE = (320, 240)
SQUARE = 40
ROW_Y = 100  # squares sit on one row, from ROW_Y to ROW_Y + SQUARE
# 8 seconds: 1 square, then 3, then 2, then none. The highest number at once is 3, from 2 s to 4 s.
SEGMENTS: list[tuple[float, float, int]] = [(0, 2, 1), (2, 4, 3), (4, 6, 2), (6, 8, 0)]
VOICE = "The lighthouse keeper counts three red boats before noon."


def _x(i: int) -> int:
    return 20 + i * 70


def make_video(
    path: Path,
    segments: list[tuple[float, float, int]] | None = None,
    *,
    duration: float | None = None,
    voice: str | None = VOICE,
    dark: list[tuple[float, float]] | None = None,
    fps: int = 10,
    size: tuple[int, int] = SIZE,
) -> Path:
    """An mp4 of red squares on white, `n` of them shown from `a` to `b` seconds for each (a, b, n); during each
    (a, b) of `dark` the background is black (a scene change)."""
    segments = SEGMENTS if segments is None else segments
    length = duration if duration is not None else max((b for _, b, _ in segments), default=1.0)
    boxes = [f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{a})*lt(t,{b})'" for a, b in dark or []]
    sx, sy = size[0] / SIZE[0], size[1] / SIZE[1]  # the geometry is drawn on a 320x240 grid, scaled to `size`
    for a, b, n in segments:
        for i in range(n):
            boxes.append(f"drawbox=x={round(_x(i) * sx)}:y={round(ROW_Y * sy)}:w={round(SQUARE * sx)}:h={round(SQUARE * sy)}"
                         f":color=red:t=fill:enable='gte(t,{a})*lt(t,{b})'")
    video = f"[0:v]{','.join(boxes) if boxes else 'null'}[v]"
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"color=c=white:s={size[0]}x{size[1]}:r={fps}:d={length}"]
    if voice:
        wav = path.with_suffix(".voice.wav")
        subprocess.run(["espeak-ng", "-w", str(wav), voice], check=True, capture_output=True, timeout=60)
        argv += ["-i", str(wav), "-filter_complex", f"{video};[1:a]apad[a]", "-map", "[v]", "-map", "[a]",
                 "-c:a", "aac", "-b:a", "48k"]
    else:
        argv += ["-filter_complex", video, "-map", "[v]"]
    argv += ["-t", f"{length}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    if voice:
        path.with_suffix(".voice.wav").unlink(missing_ok=True)
    return path


def highest(segments: list[tuple[float, float, int]] | None = None) -> int:
    return max(n for _, _, n in (SEGMENTS if segments is None else segments))


def count_squares(image: Any) -> int:
    """How many red squares cross the middle of the squares' row (Pillow image, any size)."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    y = round((ROW_Y + SQUARE / 2) / SIZE[1] * height)
    pixels = rgb.load()
    runs, run = 0, 0
    for x in range(width):
        r, g, b = pixels[x, y]
        if r > 150 and g < 110 and b < 110:
            run += 1
        else:
            runs += run >= width // 40
            run = 0
    return runs + (run >= width // 40)


def frames_in(call: Call) -> list[tuple[int, AGImage]]:
    """(frame number, image) for each image in the call's last user message, numbered by the text before it."""
    message = next((m for m in reversed(call.messages) if isinstance(m, UserMessage)), None)
    found: list[tuple[int, AGImage]] = []
    number = 0
    for part in message.content if message is not None and isinstance(message.content, list) else []:
        if isinstance(part, str) and (m := re.match(r"frame (\d+) at", part)):
            number = int(m.group(1))
        elif isinstance(part, AGImage):
            found.append((number, part))
    return found


def counting_reply(call: Call) -> str:
    """What a careful vision model answers: each frame's squares, counted in the image itself."""
    lines = []
    for number, image in frames_in(call):
        n = count_squares(image.image)
        lines.append(f"frame {number}: {n} red square{'s' if n != 1 else ''} count={n}")
    return "\n".join(lines) or "I was shown no frames."


def counting_vision(usage: Callable[[Call, Any], tuple[int, int]] | None = None) -> FunctionModel:
    return FunctionModel(counting_reply, agent="vision", vision=True, usage=usage)


@dataclass
class VisionScripts(ScriptedModels):
    """ScriptedModels where only `seeing` agents have vision (so the run's vision client is one of theirs)."""

    seeing: set[str] = field(default_factory=set)

    def factory(self, spec: Any, agent: str, ledger: Any, abort: Any) -> Any:
        self.vision = agent in self.seeing
        return super().factory(spec, agent, ledger, abort)


Step = Reply | Callable[[Call], Reply]


# --- the site serving the video -------------------------------------------------------------------------

class VideoSite(FakeWeb):
    """Routes: /clip.mp4 (direct, with a length), /watch.html (a page with <video>), /stream.mp4 (no length),
    /missing.mp4 (404), /page.html (a page with no video), /text.mp4 (bytes that are not a video),
    /away (a redirect to `redirect_to`)."""

    def __init__(self, video: Path, *, stream_bytes: int = 3_000_000) -> None:
        super().__init__()
        self.video = video
        self.redirect_to = "http://127.0.0.1:9/clip.mp4"
        data = video.read_bytes()
        self.routes.update({
            "/clip.mp4": WebReply(200, data, "video/mp4"),
            "/watch.html": WebReply(200, '<!DOCTYPE html><html><head><title>Harbour squares</title></head><body>'
                                         '<video controls src="/clip.mp4"></video></body></html>'),
            "/stream.mp4": WebReply(200, b"", "video/mp4", stream_bytes=stream_bytes),
            "/missing.mp4": WebReply(404, "<html><body>Not Found</body></html>"),
            "/page.html": WebReply(200, "<!DOCTYPE html><html><head><title>Menu</title></head><body><p>Soup of the day.</p></body></html>"),
            "/text.mp4": WebReply(200, b"this is not a video at all\n" * 200, "video/mp4"),
            "/away": lambda _r: WebReply(302, b"", headers={"Location": self.redirect_to}),
        })


# --- a stand-in yt-dlp replaying YouTube's refusals -------------------------------------------------------

_SEE = ("See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass "
        "cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on "
        "effectively exporting YouTube cookies")
YOUTUBE_SAYS = {
    "bot": f"ERROR: [youtube] {{id}}: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies for the authentication. {_SEE}",
    "private": f"ERROR: [youtube] {{id}}: Private video. Sign in if you've been granted access to this video. Use --cookies-from-browser or --cookies for the authentication. {_SEE}",
    "removed": "ERROR: [youtube] {id}: Video unavailable. This video has been removed by the uploader",
}


def fake_ytdlp(folder: Path, *, says: str | None = None, info: dict[str, Any] | None = None) -> tuple[list[str], Path]:
    """A yt-dlp stand-in: the command to run it, and the file where it appends each argv it got (JSON lines).
    `says`: a key of YOUTUBE_SAYS, printed on stderr with exit code 1; `info`: printed as -J's answer."""
    log = folder / "ytdlp-calls.jsonl"
    script = folder / "fake_ytdlp.py"
    script.write_text(
        "import json, sys\n"
        f"log = {str(log)!r}\n"
        "with open(log, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "url = sys.argv[-1]\n"
        "vid = url.rsplit('v=', 1)[-1][:11]\n"
        f"says = {YOUTUBE_SAYS.get(says or '', says or '')!r}\n"
        f"info = {json.dumps(info) if info is not None else ''!r}\n"
        "if says == 'sleep':\n"
        "    import os, time\n"
        "    open(log + '.pid', 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "if says:\n"
        "    sys.stderr.write(says.replace('{id}', vid) + '\\n')\n"
        "    sys.exit(1)\n"
        "if '-J' in sys.argv and info:\n"
        "    print(info)\n"
        "    sys.exit(0)\n"
        "sys.stderr.write('ERROR: the stand-in yt-dlp was not told what to do\\n')\n"
        "sys.exit(2)\n"
    )
    return [sys.executable, str(script)], log


def calls_of(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- an operator's HTTP proxy (YTDLP_PROXY) ----------------------------------------------------------------

class UpstreamProxy(LocalServer):
    """A plain HTTP forward proxy (absolute-form GET/HEAD only) that records each request line and its
    Proxy-Authorization, and fetches the target itself (loopback only: it serves the tests' own sites)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (request line, Proxy-Authorization)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                proxy.seen.append((self.requestline, self.headers.get("Proxy-Authorization", "")))
                target = urlsplit(self.path)
                if target.hostname not in ("127.0.0.1", "localhost"):
                    self.send_error(403, "this test proxy reaches loopback only")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "connection", "host")}
                request = urllib.request.Request(self.path, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback only)
                        status, body, items = answer.status, answer.read(), answer.getheaders()
                except urllib.error.HTTPError as exc:
                    status, body, items = exc.code, exc.read(), list(exc.headers.items())
                self.send_response(status)
                for key, value in items:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _forward

        super().__init__(Handler)


# --- Gemini's native API ----------------------------------------------------------------------------------

@dataclass
class GeminiCall:
    model: str
    key: str
    body: dict[str, Any]

    @property
    def parts(self) -> list[dict[str, Any]]:
        return list(self.body["contents"][0]["parts"])

    def video(self) -> dict[str, Any]:
        return next(p for p in self.parts if "inline_data" in p or "file_data" in p)

    def inline_bytes(self) -> bytes:
        return base64.b64decode(self.video()["inline_data"]["data"])


class FakeGemini(FakeWeb):
    def __init__(self, answer: str = "", *, key: str = "gemini-test-key-000000") -> None:
        super().__init__()
        self.answer = answer
        self.key = key
        self.calls: list[GeminiCall] = []
        self.fault: WebReply | None = None

    @property
    def base_url(self) -> str:
        """What GEMINI_BASE_URL holds: the OpenAI-compatible endpoint, which the tool turns into the native one."""
        return f"{self.url}/v1beta/openai/"

    def handle(self, request: WebRequest) -> WebReply:
        m = re.fullmatch(r"/v1beta/models/([^/:]+):generateContent", request.path)
        if m is None or request.method != "POST":
            return WebReply(404, {"error": {"code": 404, "message": f"no route {request.path}", "status": "NOT_FOUND"}})
        if request.headers.get("x-goog-api-key") != self.key:
            return WebReply(400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}})
        call = GeminiCall(m.group(1), request.headers.get("x-goog-api-key", ""), request.json())
        self.calls.append(call)
        if self.fault is not None:
            return self.fault
        return WebReply(200, {
            "candidates": [{"content": {"role": "model", "parts": [{"text": self.answer}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 2_345, "candidatesTokenCount": 42, "totalTokenCount": 2_387},
            "modelVersion": call.model,
        })


# --- settings ----------------------------------------------------------------------------------------------

FAST = {"WEB_TIMEOUT": 10.0, "LLM_REQUEST_TIMEOUT": 10.0, "VIDEO_TIMEOUT": 60.0}


def video_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{**FAST, **overrides})
