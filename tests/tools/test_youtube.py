"""youtube_transcript through youtube-transcript-api, with its HTTP redirected to a local YouTube replica."""

from __future__ import annotations

import pytest

from agents.tools.youtube import video_id
from tests.fakes.web import Reply, redirect
from tests.fakes.youtube import FakeYouTube, Video
from tests.tools.conftest import call, tool_settings

VID = "Qu1llbyFerr"  # 11 characters, like every YouTube id


@pytest.fixture
def tube(started) -> FakeYouTube:
    fake = started(FakeYouTube())
    fake.add(Video(VID, [(0.0, 2.5, "Welcome aboard the Quillby ferry"), (2.5, 3.0, "we sail at seven & return at five"), (65.2, 2.0, "mind the gap")]))
    fake.add(Video("NoCaptions1", captions=False))
    fake.add(Video("Removed0001", status="ERROR", reason="This video is unavailable"))
    fake.add(Video("BrokenTrack", track_override=b"<transcript><text start='0'>unclosed"))
    return fake


def _ctx(make_ctx, tube: FakeYouTube, **overrides):
    return make_ctx(tool_settings(YOUTUBE_BASE_URL=tube.url, **overrides))


@pytest.mark.parametrize(
    "url",
    [
        f"https://www.youtube.com/watch?v={VID}",
        f"https://youtu.be/{VID}?t=30",
        f"https://www.youtube.com/shorts/{VID}",
        f"https://m.youtube.com/watch?feature=share&v={VID}",
        f"https://www.youtube.com/embed/{VID}",
        VID,
    ],
)
def test_video_ids_from_every_url_shape(url: str) -> None:
    assert video_id(url) == VID


def test_not_a_video() -> None:
    assert video_id("https://vimeo.com/12345") is None
    assert video_id("https://www.youtube.com/channel/xyz") is None


async def test_transcript_with_timestamps(make_ctx, tube) -> None:
    out = await call(_ctx(make_ctx, tube), "youtube_transcript", url=f"https://www.youtube.com/watch?v={VID}")
    assert out.splitlines() == [
        f"Transcript of https://www.youtube.com/watch?v={VID} (English, manual captions):",
        "[0:00] Welcome aboard the Quillby ferry",
        "[0:02] we sail at seven & return at five",
        "[1:05] mind the gap",
    ]
    # all three YouTube endpoints were served by the replica (the caption URL said www.youtube.com)
    assert tube.paths() == ["/watch", "/youtubei/v1/player", "/api/timedtext"]
    assert tube.requests[1].json()["videoId"] == VID


async def test_no_captions_says_so_and_offers_the_transcriber_only_when_there_is_one(make_ctx, tube) -> None:
    plain = await call(_ctx(make_ctx, tube), "youtube_transcript", url="https://youtu.be/NoCaptions1")
    assert plain.startswith("The video NoCaptions1 has no captions")
    assert "transcribe_audio" not in plain and "web_search" in plain
    offered = await call(_ctx(make_ctx, tube, OPENAI_API_KEY="sk-test-key-for-audio-0000"), "youtube_transcript", url="NoCaptions1")
    assert "An audio transcriber is configured (openai)" in offered and "transcribe_audio(file)" in offered


async def test_failures(make_ctx, tube) -> None:
    ctx = _ctx(make_ctx, tube, WEB_TIMEOUT=1.0)
    assert (await call(ctx, "youtube_transcript", url="Removed0001")).startswith("Error: the YouTube video Removed0001 is unavailable")
    assert (await call(ctx, "youtube_transcript", url="https://vimeo.com/1")).startswith("Error: 'https://vimeo.com/1' is not a YouTube")
    assert "could not be read" in await call(ctx, "youtube_transcript", url="BrokenTrack")
    tube.fault = Reply(503, "<html>Service Unavailable</html>")
    out = await call(ctx, "youtube_transcript", url=VID)
    assert out.startswith("Error: YouTube request failed") and "503" in out
    tube.fault = Reply(200, "<html>late</html>", delay=3)
    assert (await call(ctx, "youtube_transcript", url=VID)) == "Error: YouTube did not answer within 1s"
    tube.fault = Reply(200, "x" * 9_000_000)
    assert "too large" in await call(ctx, "youtube_transcript", url=VID)
    tube.fault = redirect("http://169.254.169.254/latest/meta-data/")
    assert (await call(ctx, "youtube_transcript", url=VID)) == "Error: refused: YouTube redirected to 169.254.169.254, outside YouTube"
    tube.fault = Reply(200, "<html><body>no key in this page</body></html>")
    assert (await call(ctx, "youtube_transcript", url=VID)).startswith("Error: no transcript for")
