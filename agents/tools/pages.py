"""`read_page(url, query=None)`: a web page or PDF as markdown (tables kept), or only its relevant passages.

Every fetch goes through `agents.tools.net` (SSRF guard, timeouts, size cap, redirect checks) and
`agents.tools.sources` (the benchmark's answer sources are refused). What a page says is data for the
agent, never instructions; the role prompts say so.
"""

from __future__ import annotations

import asyncio
import json

from agents.tools.errors import ToolError
from agents.tools.markup import html_to_markdown, pdf_to_text
from agents.tools.net import Fetched, FetchError, fetch
from agents.tools.passages import select_passages
from agents.tools.registry import SafeTool, ToolContext, register
from agents.tools.sources import ANSWER_KEY_MESSAGE, looks_like_answer_key
from common.text import DEFAULT_MAX_CHARS

PASSAGE_CHARS = 8_000
_ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,*/*;q=0.5"
_TEXT_TYPES = ("application/json", "application/xml", "text/xml", "application/ld+json", "application/javascript")


def _is_html(fetched: Fetched) -> bool:
    if fetched.content_type in ("text/html", "application/xhtml+xml"):
        return True
    head = fetched.body[:1024].lstrip().lower()
    return not fetched.content_type and (head.startswith(b"<!doctype html") or head.startswith(b"<html"))


def document_text(fetched: Fetched, *, drop_selectors: tuple[str, ...] = ()) -> tuple[str, str]:
    """(title, text) of a fetched document. Raises ValueError when it is not something we can read as text."""
    kind = fetched.content_type
    if kind == "application/pdf" or fetched.body[:5] == b"%PDF-":
        return "", pdf_to_text(fetched.body)
    if _is_html(fetched):
        return html_to_markdown(fetched.body, base_url=fetched.url, drop_selectors=drop_selectors, charset=fetched.charset)
    if kind.startswith("text/") or kind in _TEXT_TYPES or not kind:
        text = fetched.text()
        if kind.endswith("json"):
            try:
                text = json.dumps(json.loads(text), indent=1, ensure_ascii=False)
            except ValueError:
                pass
        if "\x00" in text[:2000]:
            raise ValueError("is binary data, not text")
        return "", text
    family = kind.split("/", 1)[0]
    hint = " (attached files are read with read_file, describe_image or transcribe_audio)" if family in ("image", "audio", "video") else ""
    raise ValueError(f"has type {kind}, which cannot be read as text{hint}")


def present(title: str, url: str, text: str, query: str | None, *, source: str = "", max_chars: int = PASSAGE_CHARS) -> str:
    """The text an agent gets for a document: a short header, then the page or its best passages."""
    header = [f"Title: {title}"] if title else []
    header.append(f"URL: {url}")
    if source:
        header.append(source)
    if looks_like_answer_key(text):
        raise ToolError(ANSWER_KEY_MESSAGE.format(what=url)) from None
    if not text.strip():
        return "\n".join(header) + "\n\n(The page has no readable text; it may be built by JavaScript or be an image.)"
    if query and query.strip():
        picked = select_passages(text, query, max_chars=max_chars)
        if picked is None:
            start = text[:1500]
            return "\n".join(header) + f"\n\nNo passage mentions {query!r}. The page begins:\n\n{start}"
        body, shown, total = picked
        header.append(f"Passages matching {query!r}: {shown} of {total}")
        return "\n".join(header) + "\n\n" + body
    return "\n".join(header) + "\n\n" + text


READ_PAGE_DESCRIPTION = (
    "Read a web page or an online PDF and return its text as markdown (tables kept as markdown tables). "
    "Give `query` (a few keywords) to get only the passages about it: use it for long pages. "
    "Only public http(s) URLs can be read."
)


@register("read_page", "Read a web page or PDF by URL as markdown (tables kept); `query` returns only relevant passages")
def make_read_page(ctx: ToolContext) -> SafeTool:
    async def read_page(url: str, query: str | None = None) -> str:
        settings = ctx.settings
        url = url.strip()
        if url and ":" not in url.split("/", 1)[0]:  # "example.org/page": models often drop the scheme
            url = "https://" + url
        try:
            fetched = await fetch(
                url,
                timeout=settings.web_timeout,
                max_bytes=settings.web_max_bytes,
                allow_loopback=ctx.allow_loopback,
                headers={"Accept": _ACCEPT},
            )
        except FetchError as exc:
            raise ToolError(f"{exc}") from None
        try:
            title, text = await asyncio.to_thread(document_text, fetched)
        except ValueError as exc:
            raise ToolError(f"{fetched.url} {exc}") from None
        moved = f"(redirected from {url})" if fetched.url.rstrip("/") != url.rstrip("/") else ""
        return present(title, fetched.url, text, query, source=moved)

    return SafeTool(read_page, name="read_page", description=READ_PAGE_DESCRIPTION, max_chars=DEFAULT_MAX_CHARS)
