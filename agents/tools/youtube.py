"""`youtube_transcript(url, lang="en")`: the captions of a YouTube video, with timestamps.

youtube-transcript-api does its own HTTP through a `requests.Session` it accepts from the caller. Ours adds
what the library leaves out: a timeout on every request, a size cap, redirects only within YouTube/Google,
and a base URL (`settings.youtube_base_url`) that every www.youtube.com request is rewritten to, which is how
tests serve the watch page, the player API and the caption track from a local fake. When a video has no
captions the agent is told so, and pointed at `transcribe_audio` when an audio transcriber is configured.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import ParseError

import requests

from agents.tools.audio import transcriber
from agents.tools.errors import ToolError
from agents.tools.registry import SafeTool, ToolContext, register
from common.text import one_line

YOUTUBE = "https://www.youtube.com"
MAX_BYTES = 8_000_000
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_ALLOWED_REDIRECT_HOSTS = re.compile(r"(?:.+\.)?(?:youtube\.com|google\.com|youtu\.be|googlevideo\.com)$")


def video_id(url: str) -> str | None:
    text = url.strip()
    if _VIDEO_ID.match(text):
        return text
    parts = urlsplit(text if "://" in text else "https://" + text)
    host = (parts.hostname or "").lower()
    if host.endswith("youtu.be"):
        candidate = parts.path.strip("/").split("/")[0]
        return candidate if _VIDEO_ID.match(candidate) else None
    if host.endswith("youtube.com") or host.endswith("youtube-nocookie.com"):
        if (v := parse_qs(parts.query).get("v")) and _VIDEO_ID.match(v[0]):
            return v[0]
        m = re.match(r"^/(?:shorts|embed|live|v|e)/([A-Za-z0-9_-]{11})", parts.path)
        if m:
            return m.group(1)
    return None


class _YouTubeSession(requests.Session):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._base_host = (urlsplit(self.base_url).hostname or "").lower()

    def _rewrite(self, url: str) -> str:
        if self.base_url != YOUTUBE and url.startswith(YOUTUBE):
            return self.base_url + url[len(YOUTUBE) :]
        return url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs["stream"] = True
        verb = method.decode() if isinstance(method, bytes) else method
        response = super().request(verb, self._rewrite(str(url)), *args, **kwargs)
        content = response.raw.read(MAX_BYTES + 1, decode_content=True)
        response.close()
        if len(content) > MAX_BYTES:
            raise _TooLarge(f"YouTube's answer is too large (more than {MAX_BYTES:,} bytes)")
        # requests keeps a read body here; setting it lets the library use .text/.json() as usual.
        response._content = content
        return response

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target:
            host = (urlsplit(requests.compat.urljoin(resp.url, target)).hostname or "").lower()
            if host != self._base_host and not _ALLOWED_REDIRECT_HOSTS.match(host):
                raise _Refused(f"refused: YouTube redirected to {host}, outside YouTube")
        return target


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    pass


def _timestamp(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _fetch_sync(vid: str, lang: str, base_url: str, timeout: float) -> str:
    from youtube_transcript_api import YouTubeTranscriptApi

    api = YouTubeTranscriptApi(http_client=_YouTubeSession(base_url, timeout))
    listing = api.list(vid)
    wanted = [lang] if lang == "en" else [lang, "en"]
    try:
        chosen = listing.find_transcript(wanted)
    except Exception:
        first = next(iter(listing), None)
        if first is None:
            raise
        chosen = first
    fetched = chosen.fetch()
    kind = "auto-generated" if fetched.is_generated else "manual"
    lines = [f"[{_timestamp(s.start)}] {' '.join(s.text.split())}" for s in fetched if s.text.strip()]
    head = f"Transcript of https://www.youtube.com/watch?v={vid} ({fetched.language}, {kind} captions):"
    if not lines:
        return head + "\n(the caption track is empty)"
    return head + "\n" + "\n".join(lines)


def _no_captions(vid: str, ctx: ToolContext) -> str:
    msg = f"The video {vid} has no captions, so there is no transcript to read."
    which = transcriber(ctx.settings)
    if which is not None:
        msg += (
            f" An audio transcriber is configured ({which}): if the question attaches the video's audio, "
            "transcribe_audio(file) can transcribe it."
        )
    msg += " Otherwise look for the video's title, description or a page quoting it with web_search."
    return msg


@register("youtube_transcript", "The captions of a YouTube video, with timestamps (youtube-transcript-api)")
def make_youtube_transcript(ctx: ToolContext) -> SafeTool:
    async def youtube_transcript(url: str, lang: str = "en") -> str:
        """The transcript (captions) of a YouTube video, with timestamps. `url` is the video's URL or id."""
        from youtube_transcript_api import _errors as yt

        vid = video_id(url)
        if vid is None:
            raise ToolError(f"{one_line(url, 100)!r} is not a YouTube video URL or id") from None
        settings = ctx.settings
        try:
            return await asyncio.to_thread(_fetch_sync, vid, lang.strip() or "en", settings.youtube_base_url, settings.web_timeout)
        except (yt.TranscriptsDisabled, yt.NoTranscriptFound):
            return _no_captions(vid, ctx)
        except (yt.VideoUnavailable, yt.InvalidVideoId):
            raise ToolError(f"the YouTube video {vid} is unavailable (removed, private or a wrong id)") from None
        except yt.AgeRestricted:
            raise ToolError(f"the YouTube video {vid} is age-restricted; its captions cannot be read without signing in") from None
        except yt.RequestBlocked:
            raise ToolError("YouTube is blocking requests from this machine; search the web for the video's content instead") from None
        except yt.YouTubeRequestFailed as exc:
            raise ToolError(f"YouTube request failed: {one_line(exc.reason, 200)}") from None
        except yt.VideoUnplayable as exc:
            raise ToolError(f"the YouTube video {vid} cannot be played: {one_line(str(exc.reason), 160)}") from None
        except yt.CouldNotRetrieveTranscript as exc:
            raise ToolError(f"no transcript for {vid}: {one_line(exc.cause or type(exc).__name__, 200)}") from None
        except requests.Timeout:
            raise ToolError(f"YouTube did not answer within {settings.web_timeout:g}s") from None
        except requests.RequestException as exc:
            raise ToolError(f"cannot reach YouTube: {one_line(str(exc), 200)}") from None
        except (_TooLarge, _Refused) as exc:
            raise ToolError(f"{exc}") from None
        except (ValueError, KeyError, TypeError, IndexError, ParseError) as exc:  # a malformed player answer or track
            raise ToolError(f"YouTube's answer could not be read ({type(exc).__name__}: {one_line(str(exc), 160)})") from None

    return SafeTool(youtube_transcript, name="youtube_transcript", description=youtube_transcript.__doc__ or "")
