"""watch_video on videos the tests make with ffmpeg (red squares in counted numbers, an espeak-ng voice),
served by a local site through yt-dlp's generic extractor, seen by a vision model that really counts the
squares in the frames it gets; the speech path with the transcription API's double; Gemini's native API
double; every refusal and failure path. YouTube's own refusals are replayed by a stand-in yt-dlp (what
only the live YouTube can show is documented in the README)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from autogen_core import CancellationToken

from agents.tools import audio, net
from agents.tools import video as video_tool
from agents.tools.errors import ToolFailed
from agents.tools.registry import SafeTool, build_tools
from models.usage import UsageLedger
from teams import Run
from teams import events as ev
from tests.conftest import skip_or_fail
from tests.fakes.function_model import Call, Reply, tool
from tests.fakes.openai_audio import FakeOpenAIAudio
from tests.fakes.video import (
    VOICE,
    FakeGemini,
    UpstreamProxy,
    VideoSite,
    VisionScripts,
    calls_of,
    count_squares,
    counting_vision,
    fake_ytdlp,
    make_video,
    video_settings,
)
from tests.tools import documents
from tests.tools.conftest import call
from tests.tools.media_fixtures import researcher_team

COUNT_Q = "What is the highest number of red squares visible on screen at the same time?"
AUDIO_KEY = "sk-test-audio-key-000000"
GEMINI_KEY = "gemini-test-key-000000"
YOUTUBE = "https://www.youtube.com/watch?v=AbCdEfGhIjK"


@pytest.fixture(autouse=True)
def _needs_media() -> None:
    missing = [p for p in ("ffmpeg", "ffprobe", "espeak-ng") if shutil.which(p) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (apt-get install ffmpeg espeak-ng)")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s: 1 square (0-2 s), 3 (2-4 s), 2 (4-6 s), none (6-8 s), and a spoken sentence."""
    if shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None:
        skip_or_fail("ffmpeg or espeak-ng not installed (apt-get install ffmpeg espeak-ng)")
    return make_video(tmp_path_factory.mktemp("video") / "squares.mp4")


@pytest.fixture
def site(started, clip: Path) -> VideoSite:
    return started(VideoSite(clip))


def _ctx(make_ctx, settings=None, vision=True, **kwargs):
    return make_ctx(settings or video_settings(), vision_client=counting_vision() if vision else None, **kwargs)


def _duration(data: bytes, tmp: Path) -> float:
    path = tmp / "sent.bin"
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=30)
    return float(json.loads(out.stdout)["format"]["duration"])


def _mean_volume(data: bytes, tmp: Path) -> float:
    path = tmp / "speech.bin"
    path.write_bytes(data)
    out = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(path), "-af", "volumedetect", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=30)
    line = next(line for line in out.stderr.splitlines() if "mean_volume" in line)
    return float(line.split("mean_volume:")[1].split("dB")[0])


# --- frames and the vision model --------------------------------------------------------------------------

async def test_a_served_video_is_downloaded_through_yt_dlp_and_its_highest_count_found(make_ctx, site) -> None:
    ctx = _ctx(make_ctx)
    out = await call(ctx, "watch_video", source=f"{site.url}/watch.html", question=COUNT_Q)
    assert out.startswith(f"Video: {site.url}/watch.html"), out
    assert "(0:08 long, 320x240)" in out and "Path: frames + the team's vision model" in out
    assert "Highest count in one frame: 3, in frame 3 at 0:02.0" in out
    assert "0:00.0=1, 0:01.0=1, 0:02.0=3, 0:03.0=3, 0:04.0=2, 0:05.0=2, 0:06.0=0, 0:07.0=0" in out
    # the page was read, then the video it embeds (yt-dlp's generic extractor), all through the policy proxy
    assert site.paths()[:1] == ["/watch.html"] and "/clip.mp4" in site.paths()
    vision = ctx.vision_client
    sent = [image for c in vision.calls for image in _images(c)]
    assert len(sent) == 8 and [count_squares(i.image) for i in sent] == [1, 1, 3, 3, 2, 2, 0, 0]
    assert "count=K" in vision.calls[0].question and COUNT_Q in vision.calls[0].question
    # a second call on the same video (another part) reuses the download instead of fetching it again
    fetched = len(site.requests)
    again = await call(ctx, "watch_video", source=f"{site.url}/watch.html", question=COUNT_Q, start=4)
    assert "Highest count in one frame: 2, in frame 1 at 0:04.0" in again and len(site.requests) == fetched
    assert "Note: the video was downloaded by an earlier call for this question and reused" in again


def _images(c: Call) -> list:
    from tests.fakes.video import frames_in

    return [image for _, image in frames_in(c)]


async def test_a_direct_link_and_an_attached_file_with_an_odd_name(make_ctx, workdir, site, clip) -> None:
    direct = await call(_ctx(make_ctx), "watch_video", source=f"{site.url}/clip.mp4", question=COUNT_Q)
    assert "Highest count in one frame: 3" in direct
    odd = "-concat:odd name [v1] ü.mp4"
    shutil.copyfile(clip, workdir / odd)
    attached = await call(_ctx(make_ctx), "watch_video", source=odd, question=COUNT_Q)
    assert attached.startswith(f"Video: {odd} (0:08 long") and "Highest count in one frame: 3" in attached


async def test_start_and_end_limit_the_frames_and_their_timestamps(make_ctx, workdir, clip) -> None:
    shutil.copyfile(clip, workdir / "clip.mp4")
    ctx = _ctx(make_ctx)
    out = await call(ctx, "watch_video", source="clip.mp4", question=COUNT_Q, start=4, end=7)
    assert "watched 0:04.0–0:07.0" in out
    assert "Highest count in one frame: 2, in frame 1 at 0:04.0 (counts by frame: 0:04.0=2, 0:05.0=2, 0:06.0=0)" in out
    bad = await call(ctx, "watch_video", source="clip.mp4", question=COUNT_Q, start=5, end=3)
    assert bad == "Error: end (3s) must be after start (5s)"
    past = await call(ctx, "watch_video", source="clip.mp4", question=COUNT_Q, start=30)
    assert past == "Error: start (30s) is past the end of the video (0:08 long)"


async def test_a_brief_scene_between_even_steps_is_caught_by_scene_detection(make_ctx, workdir) -> None:
    # 4 squares on black for 0.4 s between the 1 s steps: only a scene-change frame can show it
    make_video(workdir / "flash.mp4", [(0, 2.3, 1), (2.3, 2.7, 4), (2.7, 6, 1)], dark=[(2.3, 2.7)], voice=None)
    out = await call(_ctx(make_ctx), "watch_video", source="flash.mp4", question=COUNT_Q)
    assert "Highest count in one frame: 4, in frame 4 at 0:02.3" in out, out
    assert "frame 4 at 0:02.3, scene change:" in out and "2 at scene changes" in out  # into the flash and out of it


async def test_the_frame_cap_and_batches(make_ctx, workdir, clip) -> None:
    shutil.copyfile(clip, workdir / "clip.mp4")
    settings = video_settings(VIDEO_MAX_FRAMES=3, VIDEO_FRAMES_PER_CALL=2)
    ctx = _ctx(make_ctx, settings)
    out = await call(ctx, "watch_video", source="clip.mp4", question=COUNT_Q)
    assert "Frames: 3 sent in 2 call(s)" in out
    assert sorted(len(_images(c)) for c in ctx.vision_client.calls) == [1, 2]  # the batches run side by side
    assert "frame 4 at" not in out


async def test_many_scene_changes_are_thinned_to_the_cap_keeping_the_strongest(make_ctx, workdir) -> None:
    # the background flips between white and black every half second: a scene change each time
    flips = [(t / 2, t / 2 + 0.5) for t in range(1, 12, 2)]
    make_video(workdir / "flicker.mp4", [(0, 6, 2)], dark=flips, voice=None)
    ctx = _ctx(make_ctx, video_settings(VIDEO_MAX_FRAMES=4))
    out = await call(ctx, "watch_video", source="flicker.mp4", question=COUNT_Q)
    assert "Frames: 4 sent in 1 call(s)" in out and "thinned to the cap of 4, VIDEO_MAX_FRAMES" in out, out
    assert out.count("scene change:") >= 2 and sum(len(_images(c)) for c in ctx.vision_client.calls) == 4


async def test_a_failing_vision_call_is_reported_and_the_others_kept(make_ctx, workdir, clip) -> None:
    from tests.fakes.function_model import FunctionModel
    from tests.fakes.video import counting_reply, frames_in

    def flaky(c: Call) -> Reply:
        if any(n == 1 for n, _ in frames_in(c)):
            return RuntimeError("HTTP 529 overloaded")
        return counting_reply(c)

    shutil.copyfile(clip, workdir / "clip.mp4")
    settings = video_settings(VIDEO_FRAMES_PER_CALL=4)
    out = await call(make_ctx(settings, vision_client=FunctionModel(flaky, agent="v", vision=True)), "watch_video",
                     source="clip.mp4", question=COUNT_Q)
    assert "Note: 1 of 2 vision call(s) failed (the vision model failed: RuntimeError: HTTP 529 overloaded)" in out
    assert "frame 1 at 0:00.0: (not seen: the vision model failed" in out
    assert "Highest count in one frame: 2, in frame 5 at 0:04.0 (counts by frame: 0:04.0=2, 0:05.0=2, 0:06.0=0, 0:07.0=0)" in out
    down = await call(make_ctx(settings, vision_client=FunctionModel(lambda c: RuntimeError("HTTP 500"), agent="v", vision=True)),
                      "watch_video", source="clip.mp4", question=COUNT_Q)
    assert down == "Error: the vision model failed: RuntimeError: HTTP 500"


async def test_without_a_vision_model_the_tool_says_what_to_set(make_ctx, workdir, clip) -> None:
    shutil.copyfile(clip, workdir / "clip.mp4")
    out = await call(_ctx(make_ctx, vision=False), "watch_video", source="clip.mp4", question=COUNT_Q)
    assert out.startswith("Error: no model of this team can see images") and "vision: true" in out


# --- speech -----------------------------------------------------------------------------------------------

async def test_a_question_about_what_is_said_transcribes_the_audio_track(make_ctx, workdir, clip, started, tmp_path) -> None:
    api = started(FakeOpenAIAudio(VOICE, key=AUDIO_KEY))
    shutil.copyfile(clip, workdir / "clip.mp4")
    settings = video_settings(OPENAI_API_KEY=AUDIO_KEY, OPENAI_BASE_URL=api.base_url)
    ctx = _ctx(make_ctx, settings)
    out = await call(ctx, "watch_video", source="clip.mp4", question="What does the narrator say?")
    assert "Path: speech (the audio track, transcribed)" in out
    assert f"Speech (gpt-4o-transcribe via the transcription API, 0:00.0–0:08.0):\n{VOICE}" in out
    assert ctx.vision_client.calls == []  # a speech question sends no frames
    upload = api.uploads[0]
    assert upload.file_name == "speech.mp3" and abs(_duration(upload.content, tmp_path) - 8) < 0.3
    assert _mean_volume(upload.content, tmp_path) > -45  # espeak's voice, not silence
    both = await call(ctx, "watch_video", source="clip.mp4", question="How many squares are shown while the narrator speaks?", start=2, end=5)
    assert "Path: frames + the team's vision model, and speech" in both and "Highest count in one frame: 3" in both
    assert abs(_duration(api.uploads[1].content, tmp_path) - 3) < 0.3


async def test_speech_without_a_transcriber_or_an_audio_track(make_ctx, workdir, monkeypatch) -> None:
    monkeypatch.setattr(audio, "local_whisper_available", lambda: False)
    make_video(workdir / "silent.mp4", voice=None)
    ctx = _ctx(make_ctx)
    out = await call(ctx, "watch_video", source="silent.mp4", question="What is said in the video?")
    assert "Speech: the video has no audio track." in out
    shutil.copyfile(workdir / "silent.mp4", workdir / "again.mp4")
    make_video(workdir / "voiced.mp4", [(0, 1, 1)])
    none = await call(ctx, "watch_video", source="voiced.mp4", question="What is said in the video?")
    assert f"Speech: not transcribed: {audio.NO_TRANSCRIBER}." in none


# --- Gemini -----------------------------------------------------------------------------------------------

def _gemini_settings(fake: FakeGemini, **extra):
    return video_settings(GEMINI_API_KEY=GEMINI_KEY, GEMINI_BASE_URL=fake.base_url, **extra)


async def test_with_a_gemini_key_the_attached_video_goes_to_gemini_inline(make_ctx, workdir, clip, started, tmp_path) -> None:
    gemini = started(FakeGemini("Three red squares are visible at once, from 0:02 to 0:04.", key=GEMINI_KEY))
    shutil.copyfile(clip, workdir / "clip.mp4")
    ledger = UsageLedger()
    ctx = _ctx(make_ctx, _gemini_settings(gemini), ledger=ledger)
    out = await call(ctx, "watch_video", source="clip.mp4", question=COUNT_Q)
    assert "Path: Gemini gemini-3.5-flash, native video input (the video inline, 0.0 MB); 2,345 tokens in, 42 out." in out
    # what Gemini charged is in the question's usage and cost, like any model call
    [booked] = ledger.records
    assert (booked.agent, booked.provider, booked.model) == ("watch_video", "gemini", "gemini-3.5-flash")
    assert (booked.prompt_tokens, booked.completion_tokens) == (2_345, 42)
    assert out.endswith("Gemini's answer:\nThree red squares are visible at once, from 0:02 to 0:04.")
    sent = gemini.calls[0]
    assert sent.model == "gemini-3.5-flash" and sent.video()["inline_data"]["mime_type"] == "video/mp4"
    assert sent.inline_bytes() == clip.read_bytes()
    assert COUNT_Q in sent.parts[-1]["text"] and "highest number visible at the same time" in sent.parts[-1]["text"]
    assert ctx.vision_client.calls == [] and GEMINI_KEY not in out
    part = await call(ctx, "watch_video", source="clip.mp4", question=COUNT_Q, start=2, end=5)
    assert "0:02.0–0:05.0" in part and abs(_duration(gemini.calls[1].inline_bytes(), tmp_path) - 3) < 0.3


async def test_with_a_gemini_key_a_youtube_url_is_fetched_by_google_not_here(make_ctx, started, tmp_path, monkeypatch) -> None:
    gemini = started(FakeGemini("The presenter holds up two cards.", key=GEMINI_KEY))
    command, log = fake_ytdlp(tmp_path, says="bot")
    monkeypatch.setattr(video_tool, "YTDLP", command)
    ctx = _ctx(make_ctx, _gemini_settings(gemini, VIDEO_GEMINI_MODEL="gemini-3.6-flash"))
    out = await call(ctx, "watch_video", source="youtu.be/AbCdEfGhIjK", question="What does the presenter hold?", start=30, end=95)
    assert out.startswith("Video: https://www.youtube.com/watch?v=AbCdEfGhIjK\nPath: Gemini gemini-3.6-flash")
    assert "(the YouTube URL, fetched by Google, 0:30.0–1:35.0)" in out and "two cards" in out
    part = gemini.calls[0].video()
    assert part["file_data"]["file_uri"] == YOUTUBE and part["video_metadata"] == {"start_offset": "30s", "end_offset": "95s"}
    assert calls_of(log) == []  # yt-dlp never ran
    from tests.fakes.web import Reply as WebReply

    gemini.fault = WebReply(403, {"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}})
    both = await call(ctx, "watch_video", source=YOUTUBE, question="What does the presenter hold?")
    assert both.startswith("Error: Gemini could not watch the YouTube URL (the Gemini API answered HTTP 403"), both
    assert "watched it here instead; then: YouTube refused this server (bot check)" in both and len(calls_of(log)) == 1


async def test_a_gemini_failure_falls_back_to_the_frames_and_says_why(make_ctx, workdir, clip, started) -> None:
    from tests.fakes.web import Reply as WebReply

    gemini = started(FakeGemini(key=GEMINI_KEY))
    gemini.fault = WebReply(400, {"error": {"code": 400, "message": "Request payload size exceeds the limit.", "status": "INVALID_ARGUMENT"}})
    shutil.copyfile(clip, workdir / "clip.mp4")
    out = await call(_ctx(make_ctx, _gemini_settings(gemini)), "watch_video", source="clip.mp4", question=COUNT_Q)
    assert "Note: Gemini could not watch it (the Gemini API answered HTTP 400" in out and "payload size exceeds" in out
    assert "Path: frames + the team's vision model" in out and "Highest count in one frame: 3" in out
    wrong = await call(_ctx(make_ctx, video_settings(GEMINI_API_KEY="gemini-wrong-key-99999", GEMINI_BASE_URL=gemini.base_url)),
                       "watch_video", source="clip.mp4", question=COUNT_Q)
    assert "API key not valid" in wrong and "gemini-wrong-key-99999" not in wrong


# --- refusals and failures --------------------------------------------------------------------------------

@pytest.mark.parametrize(("says", "expected"), [
    ("bot", "Error: YouTube refused this server (bot check)"),
    ("private", "Error: the video is private"),
    ("removed", "Error: the video is unavailable: removed, or a wrong URL or id (yt-dlp: [youtube] AbCdEfGhIjK: Video unavailable."),
])
async def test_youtube_refusals_name_the_cause(make_ctx, tmp_path, monkeypatch, says, expected) -> None:
    command, log = fake_ytdlp(tmp_path, says=says)
    monkeypatch.setattr(video_tool, "YTDLP", command)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    settings = video_settings(YTDLP_COOKIES_FILE=str(cookies))
    out = await call(_ctx(make_ctx, settings), "watch_video", source=YOUTUBE, question=COUNT_Q)
    assert out.startswith(expected), out
    if says == "bot":
        assert "YTDLP_COOKIES_FILE" in out and "YTDLP_PROXY" in out and "GEMINI_API_KEY" in out
    argv = calls_of(log)[0]
    assert argv[-1] == YOUTUBE and "--ignore-config" in argv and argv[argv.index("--proxy") + 1].startswith("http://127.0.0.1:")
    assert argv[argv.index("--cookies") + 1] != str(cookies)  # a copy: yt-dlp writes cookies back


async def test_too_long_is_refused_before_downloading_unless_a_part_is_asked_for(make_ctx, tmp_path, monkeypatch) -> None:
    command, log = fake_ytdlp(tmp_path, info={"id": "AbCdEfGhIjK", "title": "A long lecture", "duration": 7200})
    monkeypatch.setattr(video_tool, "YTDLP", command)
    ctx = _ctx(make_ctx)
    out = await call(ctx, "watch_video", source=YOUTUBE, question=COUNT_Q)
    assert out == ("Error: the video is too long (2:00:00; the limit is 30:00, VIDEO_MAX_SECONDS): give start and end "
                   "(in seconds) for a part of at most 30:00")
    assert len(calls_of(log)) == 1  # no download attempted
    part = await call(ctx, "watch_video", source=YOUTUBE, question=COUNT_Q, start=600, end=900)
    assert "too long" not in part and "--load-info-json" in calls_of(log)[-1]  # it went on to download
    wide = await call(ctx, "watch_video", source=YOUTUBE, question=COUNT_Q, start=0, end=3600)
    assert wide.startswith("Error: the video is too long (2:00:00; the limit is 30:00")


async def test_a_served_video_over_the_duration_or_size_caps(make_ctx, site, workdir, clip) -> None:
    long = await call(_ctx(make_ctx, video_settings(VIDEO_MAX_SECONDS=5)), "watch_video", source=f"{site.url}/clip.mp4", question=COUNT_Q)
    assert long.startswith("Error: the video is too long (0:08; the limit is 0:05, VIDEO_MAX_SECONDS)")
    small = video_settings(VIDEO_MAX_BYTES=10_000)
    big = await call(_ctx(make_ctx, small), "watch_video", source=f"{site.url}/clip.mp4", question=COUNT_Q)
    assert big.startswith("Error: the video is too large to download"), big
    # no Content-Length: only the proxy's byte count can stop it
    streamed = await call(_ctx(make_ctx, small), "watch_video", source=f"{site.url}/stream.mp4", question=COUNT_Q)
    assert streamed.startswith("Error: the video is too large to download (more than 10,000 bytes"), streamed
    shutil.copyfile(clip, workdir / "clip.mp4")
    os.truncate(workdir / "huge.mp4", 0) if (workdir / "huge.mp4").exists() else (workdir / "huge.mp4").write_bytes(b"\0")
    os.truncate(workdir / "huge.mp4", 400_000_000)  # sparse: nothing written
    huge = await call(_ctx(make_ctx), "watch_video", source="huge.mp4", question=COUNT_Q)
    assert huge == "Error: huge.mp4 is too large (400,000,000 bytes; the limit is 300,000,000, VIDEO_MAX_BYTES)"


async def test_what_is_not_a_video(make_ctx, site, workdir) -> None:
    ctx = _ctx(make_ctx)
    page = await call(ctx, "watch_video", source=f"{site.url}/page.html", question=COUNT_Q)
    assert page.startswith(f"Error: no video was found at {site.url}/page.html"), page
    text = await call(ctx, "watch_video", source=f"{site.url}/text.mp4", question=COUNT_Q)
    assert text.startswith(f"Error: what {site.url}/text.mp4 serves is not a video ffmpeg can read"), text
    missing = await call(ctx, "watch_video", source=f"{site.url}/missing.mp4", question=COUNT_Q)
    assert missing == f"Error: {site.url}/missing.mp4 answered HTTP 404 (not found: removed or a wrong URL)"
    (workdir / "notes.mp4").write_text("not a video")
    documents.mp3(workdir / "song.mp3")
    assert (await call(ctx, "watch_video", source="notes.mp4", question=COUNT_Q)).startswith("Error: notes.mp4 is not a video ffmpeg can read")
    assert (await call(ctx, "watch_video", source="song.mp3", question=COUNT_Q)) == "Error: song.mp3 is not a video ffmpeg can read (no video stream)"
    documents.png(workdir / "card.png")
    assert (await call(ctx, "watch_video", source="card.png", question=COUNT_Q)) == "Error: card.png is a still image, not a video (describe_image reads images)"
    assert (await call(ctx, "watch_video", source="nothing.mp4", question=COUNT_Q)).startswith("Error: no file named 'nothing.mp4'")
    assert (await call(ctx, "watch_video", source="../../etc/passwd", question=COUNT_Q)).startswith("Error: refused:")


async def test_the_url_policy_covers_the_url_and_every_url_yt_dlp_opens(make_ctx, site, monkeypatch) -> None:
    ctx = _ctx(make_ctx)
    private = await call(ctx, "watch_video", source="http://10.1.2.3/clip.mp4", question=COUNT_Q)
    assert private == "Error: refused: 10.1.2.3 is a private address"
    loopback = await call(_ctx(make_ctx, allow_loopback=False), "watch_video", source=f"{site.url}/clip.mp4", question=COUNT_Q)
    assert loopback == "Error: refused: 127.0.0.1 is a loopback address"
    real_resolve = net.resolve

    async def dns(host: str, port: int) -> list[str]:
        return ["10.9.8.7"] if host == "cdn.video-example.org" else await real_resolve(host, port)

    monkeypatch.setattr(net, "resolve", dns)
    site.redirect_to = "http://cdn.video-example.org/clip.mp4"
    hop = await call(ctx, "watch_video", source=f"{site.url}/away", question=COUNT_Q)
    assert hop == ("Error: refused: cdn.video-example.org resolves to 10.9.8.7, a private address (a URL yt-dlp "
                   "tried to open while reading the video)")
    site.redirect_to = "http://169.254.169.254/latest/meta-data/"
    metadata = await call(ctx, "watch_video", source=f"{site.url}/away", question=COUNT_Q)
    assert metadata.startswith("Error: refused: 169.254.169.254 is a link-local address")


async def test_the_policy_proxy_tunnels_https_to_checked_addresses_only(site, clip) -> None:
    from agents.tools.video_proxy import PolicyProxy

    port = int(site.url.rsplit(":", 1)[1])

    async def connect(proxy: PolicyProxy, target: str) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
        host, proxy_port = proxy.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(proxy_port))
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        return await reader.readuntil(b"\r\n\r\n"), reader, writer

    async with PolicyProxy(allow_loopback=True, max_bytes=10_000_000, timeout=5) as proxy:
        head, reader, writer = await connect(proxy, f"127.0.0.1:{port}")
        assert head.startswith(b"HTTP/1.1 200")
        # what goes through the tunnel is the client's own (TLS, for https): here plain HTTP to the site
        writer.write(f"GET /clip.mp4 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(clip.read_bytes())
        refused, reader, writer = await connect(proxy, "10.1.2.3:443")
        body = await reader.read()
        writer.close()
        assert refused.startswith(b"HTTP/1.1 403") and b"refused: 10.1.2.3 is a private address" in body
        assert proxy.refusals == ["refused: 10.1.2.3 is a private address"]
    async with PolicyProxy(allow_loopback=True, max_bytes=1_000, timeout=5) as small:
        head, reader, writer = await connect(small, f"127.0.0.1:{port}")
        writer.write(f"GET /clip.mp4 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        cut = await reader.read()
        writer.close()
        assert small.over_cap and len(cut) <= 1_000 < len(clip.read_bytes())  # nothing past the cap is relayed


async def test_an_operators_proxy_carries_the_downloads_with_its_credentials(make_ctx, site, started) -> None:
    upstream = started(UpstreamProxy())
    host = upstream.url.removeprefix("http://")
    settings = video_settings(YTDLP_PROXY=f"http://video%20user:s3cret-pass@{host}")
    out = await call(_ctx(make_ctx, settings), "watch_video", source=f"{site.url}/clip.mp4", question=COUNT_Q)
    assert "Highest count in one frame: 3" in out, out
    auth = "Basic " + base64.b64encode(b"video user:s3cret-pass").decode()
    assert upstream.seen and all(line.startswith(("GET http://127.0.0.1:", "HEAD http://127.0.0.1:")) for line, _ in upstream.seen)
    assert {a for _, a in upstream.seen} == {auth} and any("/clip.mp4" in line for line, _ in upstream.seen)
    refused = await call(_ctx(make_ctx, settings), "watch_video", source="http://10.1.2.3/clip.mp4", question=COUNT_Q)
    assert refused == "Error: refused: 10.1.2.3 is a private address"  # the policy still applies
    bad = await call(_ctx(make_ctx, video_settings(YTDLP_PROXY="socks5://127.0.0.1:1080")), "watch_video",
                     source=f"{site.url}/clip.mp4", question=COUNT_Q)
    assert bad == "Error: YTDLP_PROXY must be an http:// proxy URL (got socks5 scheme)"


async def test_yt_dlp_is_killed_when_the_run_stops_or_its_time_is_up(make_ctx, tmp_path, monkeypatch) -> None:
    command, log = fake_ytdlp(tmp_path, says="sleep")
    monkeypatch.setattr(video_tool, "YTDLP", command)
    abort = CancellationToken()
    ctx = _ctx(make_ctx, abort=abort)
    tool_ = build_tools(["watch_video"], ctx)[0]
    assert isinstance(tool_, SafeTool)
    tool_.cache = None
    started = time.monotonic()
    task = asyncio.ensure_future(tool_.run_json({"source": YOUTUBE, "question": COUNT_Q}, CancellationToken()))
    pid = await _pid(log)
    abort.cancel()
    with pytest.raises(ToolFailed) as stopped:
        await task
    assert stopped.value.text == "Error: watch_video was stopped because the run was cancelled"
    assert time.monotonic() - started < 10 and not _alive(pid)
    _forget_pid(log)
    timed = await call(_ctx(make_ctx, video_settings(VIDEO_TIMEOUT=2)), "watch_video", source=YOUTUBE, question=COUNT_Q)
    assert "time limit" in timed and not _alive(_read_pid(log) or -1)


async def test_a_program_is_killed_when_the_abort_token_fires() -> None:
    from agents.tools.video_media import Stopped, run_program

    abort = CancellationToken()
    asyncio.get_running_loop().call_later(0.3, abort.cancel)
    started = time.monotonic()
    with pytest.raises(Stopped):
        await run_program(["sleep", "30"], timeout=60, abort=abort)
    assert time.monotonic() - started < 5
    with pytest.raises(TimeoutError):
        await run_program(["sleep", "30"], timeout=0.3)
    done = await run_program(["sh", "-c", "yes | head -c 5000000"], timeout=30, max_stdout=1000)
    assert len(done.stdout) == 1000 and done.stdout_cut


def _read_pid(log: Path) -> int | None:
    marker = Path(str(log) + ".pid")
    text = marker.read_text() if marker.exists() else ""
    return int(text) if text else None


def _forget_pid(log: Path) -> None:
    Path(str(log) + ".pid").unlink()


async def _pid(log: Path) -> int:
    for _ in range(200):
        if (pid := _read_pid(log)) is not None:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("the stand-in yt-dlp never started")


def _alive(pid: int) -> bool:
    time.sleep(0.2)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its parent is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


# --- a scripted debate --------------------------------------------------------------------------------------

async def test_a_scripted_debate_answers_a_counting_question_about_the_generated_video(site) -> None:
    import re

    url = f"{site.url}/watch.html"
    question = f"The video at {url} shows red squares. What is the highest number of them on screen at the same time?"

    def researcher(c: Call) -> Reply:
        if video_tool.VIDEO_SYSTEM in c.system:  # the tool's own call to the vision model (this agent's model)
            from tests.fakes.video import counting_reply

            return counting_reply(c)
        if c.tools and not c.last_tool_results:
            return tool("watch_video", source=url, question="How many red squares are on screen at once, at most?")
        result = c.last_tool_results[-1] if c.last_tool_results else c.transcript
        m = re.search(r"Highest count in one frame: (\d+), in frame \d+ at (\S+)", result)
        assert m is not None, result
        return f"watch_video counted {m.group(1)} squares at most, at {m.group(2)}.\nFINAL ANSWER: {m.group(1)}"

    def critic(c: Call) -> Reply:
        proposed = re.findall(r"FINAL ANSWER: (\S+)", c.transcript)
        return f"The tool's per-frame counts support it.\nAPPROVED\nFINAL ANSWER: {proposed[-1]}"

    models = VisionScripts({
        "planner": ["Researcher: watch the video and count the squares in each frame.\nNEXT: researcher"],
        "researcher": [researcher] * 6,
        "critic": [critic],
    }, seeing={"researcher"})
    team = researcher_team("watchers", "watch_video")
    r = Run(question, team, settings=video_settings(), client_factory=models.factory, allow_loopback=True)
    events = [e async for e in r.events()]
    assert r.result is not None
    assert r.result.answer == "3" and r.result.approved, (r.result.stop_reason, r.result.stop_detail)
    outputs = [e.output for e in events if isinstance(e, ev.ToolResult) and e.name == "watch_video"]
    assert len(outputs) == 1 and "Highest count in one frame: 3, in frame 3 at 0:02.0" in outputs[0]
    assert models.unexpected == []
