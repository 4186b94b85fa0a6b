"""A local replica of the three YouTube endpoints youtube-transcript-api reads, in YouTube's formats.

1. `GET /watch?v=<id>`: the watch page, carrying `"INNERTUBE_API_KEY":"..."`;
2. `POST /youtubei/v1/player?key=...`: the innertube player JSON (`playabilityStatus`, and
   `captions.playerCaptionsTracklistRenderer.captionTracks[]` with `baseUrl`, `name.runs`, `kind: asr`);
3. `GET /api/timedtext?v=<id>&lang=..`: the caption track as `<transcript><text start dur>` XML.
Caption `baseUrl`s point at https://www.youtube.com, as YouTube's do: the tool's session must rewrite them
to YOUTUBE_BASE_URL, or the test fails. Set YOUTUBE_BASE_URL to `fake.url`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.web import FakeWeb, Reply, Request

API_KEY = "fake-innertube-key-0001"


@dataclass
class Video:
    video_id: str
    lines: list[tuple[float, float, str]] = field(default_factory=list)  # (start, duration, text)
    language: str = "en"
    generated: bool = False
    captions: bool = True
    status: str = "OK"  # "ERROR" with reason "This video is unavailable" for a removed video
    reason: str = ""
    track_override: bytes | None = None  # a broken caption track


class FakeYouTube(FakeWeb):
    def __init__(self) -> None:
        super().__init__()
        self.videos: dict[str, Video] = {}
        self.fault: Reply | None = None

    def add(self, video: Video) -> Video:
        self.videos[video.video_id] = video
        return video

    def handle(self, request: Request) -> Reply:
        if self.fault is not None:
            return self.fault
        if request.path == "/watch":
            page = (
                "<!DOCTYPE html><html><head><title>Video - YouTube</title></head><body>"
                f'<script>var ytcfg = {{"INNERTUBE_API_KEY":"{API_KEY}","INNERTUBE_CLIENT_NAME":"WEB"}};</script>'
                "</body></html>"
            )
            return Reply(200, page)
        if request.path == "/youtubei/v1/player" and request.method == "POST":
            if request.param("key") != API_KEY:
                return Reply(400, {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}})
            return Reply(200, self._player(str(request.json().get("videoId", ""))))
        if request.path == "/api/timedtext":
            video = self.videos.get(request.param("v") or "")
            if video is None:
                return Reply(404, b"", "text/html")
            if video.track_override is not None:
                return Reply(200, video.track_override, "text/xml; charset=UTF-8")
            items = "".join(
                f'<text start="{s:g}" dur="{d:g}">{html.escape(html.escape(t))}</text>' for s, d, t in video.lines
            )
            return Reply(200, f'<?xml version="1.0" encoding="utf-8" ?><transcript>{items}</transcript>', "text/xml; charset=UTF-8")
        return super().handle(request)

    def _player(self, vid: str) -> dict[str, Any]:
        video = self.videos.get(vid)
        if video is None or video.status != "OK":
            reason = video.reason if video else "This video is unavailable"
            return {"playabilityStatus": {"status": "ERROR", "reason": reason}}
        data: dict[str, Any] = {
            "playabilityStatus": {"status": "OK", "playableInEmbed": True},
            "videoDetails": {"videoId": vid, "title": "An invented video", "lengthSeconds": "42"},
        }
        if video.captions:
            track: dict[str, Any] = {
                "baseUrl": f"https://www.youtube.com/api/timedtext?v={vid}&ei=fake&caps=asr&lang={video.language}&fmt=srv3",
                "name": {"runs": [{"text": "English (auto-generated)" if video.generated else "English"}]},
                "vssId": ("a." if video.generated else ".") + video.language,
                "languageCode": video.language,
                "isTranslatable": True,
                "trackName": "",
            }
            if video.generated:
                track["kind"] = "asr"
            data["captions"] = {
                "playerCaptionsTracklistRenderer": {
                    "captionTracks": [track],
                    "audioTracks": [{"captionTrackIndices": [0]}],
                    "translationLanguages": [{"languageCode": "fr", "languageName": {"runs": [{"text": "French"}]}}],
                    "defaultAudioTrackIndex": 0,
                }
            }
        return data
