"""Places the web tools refuse to read: the GAIA dataset, its mirrors and the copies of its answers.

A question's words typed into a search engine lead straight to the benchmark's own files (the gated
`gaia-benchmark/GAIA` dataset, its parquet conversion and row viewer) and to other people's answer sheets
(Spaces, repositories and notebooks named after the benchmark or the course exercise). Reading them would be
copying, not answering, so every URL a tool is about to open (the first one, every redirect hop, every
search result, the page an archive serves) is judged here first.

This is a list of *patterns of places*, not of questions: nothing here knows a task, a question or an answer.
Ordinary pages that merely mention Gaia (the hypothesis, the telescope) are not affected: the words only
count on the hosts where repositories and datasets live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# Names of the benchmark and of the course exercise, as they appear in repository, Space and dataset names.
_BENCH = r"gaia|unit[-_ ]?4|final[-_ ]?assignment|agents?[-_ ]course"
_HUB_HOSTS = r"(?:www\.)?(?:huggingface\.co|hf\.co|hf-mirror\.com)"
_CODE_HOSTS = r"(?:www\.)?(?:github\.com|raw\.githubusercontent\.com|gitlab\.com|bitbucket\.org|codeberg\.org|kaggle\.com)"
# Hub sections that are documentation (the course lessons live under /learn) and hold no answers.
_HUB_READING = r"(?:learn|docs|blog|papers|posts|changelog|pricing)"


@dataclass(frozen=True)
class BlockedSource:
    why: str
    host: re.Pattern[str]
    where: re.Pattern[str] | None = None  # matched against "path?query"; None = the whole host

    def matches(self, host: str, rest: str) -> bool:
        return bool(self.host.fullmatch(host)) and (self.where is None or bool(self.where.search(rest)))


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


BLOCKED_SOURCES: tuple[BlockedSource, ...] = (
    BlockedSource(
        "the GAIA benchmark's own repositories on the Hugging Face Hub (dataset files, resolve and parquet URLs)",
        _p(_HUB_HOSTS),
        _p(r"^/(?:api/)?(?:(?:datasets|spaces|models)/)?gaia-benchmark(?:/|$|\?)"),
    ),
    BlockedSource(
        "a Hub mirror serving the GAIA dataset (any host with the Hub's URL layout)",
        _p(r".+"),
        _p(r"^/(?:api/)?datasets/gaia-benchmark/"),
    ),
    BlockedSource(
        "the Hub's dataset viewer serving rows or parquet files of the GAIA dataset",
        _p(r"datasets-server\.huggingface\.co"),
        _p(r"gaia"),
    ),
    BlockedSource(
        "a dataset or Space named after the benchmark or the course exercise (copies of its answers)",
        _p(_HUB_HOSTS),
        _p(rf"^/(?:api/)?(?:datasets|spaces)/[^/?]+/[^/?]*(?:{_BENCH}|answers?(?![a-z]))"),
    ),
    BlockedSource(
        "a repository on the Hub named after the benchmark or the course exercise",
        _p(_HUB_HOSTS),
        _p(rf"^/(?:api/models/)?(?!{_HUB_READING}/)[^/?]+/[^/?]*(?:{_BENCH})"),
    ),
    BlockedSource(
        "a Space app named after the benchmark or the course exercise",
        _p(rf"[a-z0-9-]*(?:{_BENCH})[a-z0-9-]*\.hf\.space"),
    ),
    BlockedSource(
        "a code or notebook repository named after the benchmark or the course exercise",
        _p(_CODE_HOSTS),
        _p(rf"^/(?:(?:datasets|code)/)?(?:[^/?]*(?:{_BENCH})[^/?]*(?:/|$)|[^/?]+/[^/?]*(?:{_BENCH}))"),
    ),
    BlockedSource(
        "a dataset mirror of the benchmark",
        _p(r"(?:www\.)?(?:modelscope\.cn|modelscope\.ai|opendatalab\.com|openxlab\.org\.cn)"),
        _p(r"gaia"),
    ),
    BlockedSource(
        "a forum thread about the benchmark or the course exercise",
        _p(r"discuss\.huggingface\.co"),
        _p(rf"(?:{_BENCH})"),
    ),
)

# A lookahead, so URLs nested in URLs are all found (finditer would swallow the inner one).
_EMBEDDED_URL = re.compile(r"(?=((?:https?:)?//[^\s\"'<>]+|https?:/[^\s\"'<>]+))", re.IGNORECASE)
_ARCHIVE_PREFIX = re.compile(r"^/(?:web/)?[0-9*]{0,14}[a-z_]*/", re.IGNORECASE)
_ARCHIVE_HOSTS = re.compile(r"(?:web\.)?archive\.org|archive\.(?:ph|today|is|li|vn|md)|webcache\.googleusercontent\.com|r\.jina\.ai")


def _split(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    if not host:
        return None
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return host, rest


def _candidates(url: str) -> list[str]:
    """The URL itself and every URL wrapped inside it (archives, proxies, redirectors, percent-encoding)."""
    seen = [url]
    text = url
    for _ in range(3):  # doubly encoded redirector links exist; three rounds is plenty
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
        seen.append(text)
    found: list[str] = []
    for candidate in seen:
        found.append(candidate)
        for m in _EMBEDDED_URL.finditer(candidate, 1):
            inner = m.group(1)
            found.append(inner if inner.lower().startswith("http") else "http:" + inner)
        split = _split(candidate)
        if split and _ARCHIVE_HOSTS.fullmatch(split[0]):
            inner = _ARCHIVE_PREFIX.sub("", split[1], count=1)
            if inner and inner != split[1]:
                found.append(inner if "://" in inner else "http://" + inner.lstrip("/"))
    return found


def blocked_source(url: str) -> str | None:
    """Why `url` may not be read (one line for the agent), or None when it may."""
    for candidate in _candidates(url):
        split = _split(candidate)
        if split is None:
            continue
        for source in BLOCKED_SOURCES:
            if source.matches(*split):
                return f"refused: {url} belongs to {source.why}; the benchmark's answers must be found, not copied"
    return None


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUIDS = re.compile(_UUID, re.IGNORECASE)
_KEYED_UUID = re.compile(
    rf"(?:task[_\s-]?id|submitted[_\s-]?answer|final[_\s-]?answer)[\"']?\s*[:=|,]?\s*[\"']?\s*{_UUID}", re.IGNORECASE
)
_ANSWER_WORDS = re.compile(r"final[_\s-]?answer|submitted[_\s-]?answer", re.IGNORECASE)
_TASK_WORDS = re.compile(r"task[_\s-]?id", re.IGNORECASE)


def looks_like_answer_key(text: str) -> bool:
    """True when `text` reads like the benchmark's answer files (a mirror under a name no pattern knows).

    The fingerprint of those files: task ids introduced by `task_id` / `Final answer` keys (two of them), or
    one task id in a text that also has both the `task_id` and the `final answer` words. A tutorial that
    mentions a task_id, or an article about final answers, is not an answer key.
    """
    if not text:
        return False
    if len(_KEYED_UUID.findall(text)) >= 2:
        return True
    return bool(_UUIDS.search(text) and _ANSWER_WORDS.search(text) and _TASK_WORDS.search(text))


ANSWER_KEY_MESSAGE = "refused: {what} looks like the benchmark's answer file (task ids next to final answers); find the facts elsewhere"

# Attachments and file tools: the dataset's metadata holds every answer; its parquet/jsonl copies too.
_ANSWER_FILE = re.compile(r"^(?:metadata.*|.*\.parquet|.*\.jsonl)$", re.IGNORECASE)


def is_answer_file_name(name: str) -> bool:
    """File names of the GAIA dataset that carry answers (metadata*.jsonl, *.parquet), never to be read."""
    return bool(_ANSWER_FILE.match(name.rsplit("/", 1)[-1]))
