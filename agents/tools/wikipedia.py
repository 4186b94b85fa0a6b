"""`wikipedia_search` and `wikipedia_page(title, as_of=None, lang="en", query=None)`.

Search and summaries come from the `wikipedia` package; full pages from the MediaWiki API directly
(`action=parse`), because only the API gives the rendered tables, any language edition, and above all
**the revision in force on a given date** (`prop=revisions` with `rvstart`/`rvdir=older`, then
`action=parse&oldid=`): many questions say "as of 2022" and today's page may say something else.

The API base is `settings.wikipedia_api_url` (a `{lang}` placeholder picks the edition), so tests point both
paths at a local MediaWiki replica. The `wikipedia` package keeps its endpoint in a module global, caches
results without the endpoint in the key, and calls `requests.get` with no timeout. Rather than set those
globals around each call (which needs a process-wide lock and serialises every concurrent question's search),
each endpoint gets its own instance of the package's module, loaded once with that endpoint and a stand-in for
`requests` that adds a timeout and a size cap; concurrent searches never share one's settings.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import threading
import warnings
from types import ModuleType
from typing import Any
from urllib.parse import quote

import requests
from bs4 import GuessedAtParserWarning
from wikipedia import exceptions as wiki_errors

from agents.tools.dates import ACCEPTED, end_of_period, mediawiki_timestamp
from agents.tools.errors import ToolError
from agents.tools.markup import WIKI_DROP_SELECTORS, html_to_markdown
from agents.tools.net import API_USER_AGENT, FetchError, fetch
from agents.tools.pages import present
from agents.tools.registry import SafeTool, ToolContext, register
from common.text import one_line
from config.settings import Settings

_LANG = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
SUMMARIES = 3  # search results that get a summary; the rest are listed by title
SUMMARY_CHARS = 500
_INSTANCES: dict[tuple[str, float, int], ModuleType] = {}
_INSTANCES_LOCK = threading.Lock()  # guards the dict only, never a search
_MAX_INSTANCES = 16

# The package parses disambiguation pages with BeautifulSoup without naming a parser (lxml is used). Set once:
# `warnings.catch_warnings()` around each call is not thread-safe.
warnings.filterwarnings("ignore", category=GuessedAtParserWarning)


class WikiError(ToolError):
    """One line for the agent."""


def api_url(settings: Settings, lang: str) -> str:
    lang = (lang or "en").strip().lower()
    if not _LANG.match(lang):
        raise WikiError(f"{lang!r} is not a Wikipedia language code (use e.g. 'en', 'de', 'pt', 'zh')")
    return settings.wikipedia_api_url.replace("{lang}", lang)


def site_url(api: str) -> str:
    """https://en.wikipedia.org from https://en.wikipedia.org/w/api.php (where article links point)."""
    return re.sub(r"/w/api\.php$", "", api.split("?", 1)[0]).rstrip("/")


def article_url(api: str, title: str) -> str:
    return f"{site_url(api)}/wiki/{quote(title.replace(' ', '_'), safe='()_,:/')}"


# --- search and summaries through the `wikipedia` package ------------------------------------------------


class _Reply:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def json(self) -> Any:
        try:
            return json.loads(self._content)
        except ValueError:
            raise WikiError(f"the Wikipedia API did not answer JSON: {one_line(self._content[:200].decode('utf-8', 'replace'), 120)!r}") from None


class _TimedRequests:
    """Stands in for the `requests` module inside the `wikipedia` package (it only calls `requests.get`)."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> _Reply:
        try:
            with requests.get(url, params=params, headers=headers, timeout=self.timeout, stream=True) as response:
                if response.status_code >= 400:
                    raise WikiError(f"the Wikipedia API answered HTTP {response.status_code} {response.reason or ''}".rstrip())
                content = response.raw.read(self.max_bytes + 1, decode_content=True)
        except requests.Timeout:
            raise WikiError(f"the Wikipedia API timed out after {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise WikiError(f"cannot reach the Wikipedia API: {one_line(str(exc), 160)}") from None
        if len(content) > self.max_bytes:
            raise WikiError(f"the Wikipedia API answer is too large (more than {self.max_bytes:,} bytes)")
        return _Reply(content)


def _package_for(api: str, timeout: float, max_bytes: int) -> ModuleType:
    """The `wikipedia` package's module, loaded as a private instance that talks to `api` only."""
    key = (api, timeout, max_bytes)
    with _INSTANCES_LOCK:
        module = _INSTANCES.get(key)
        if module is None:
            spec = importlib.util.find_spec("wikipedia.wikipedia")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.requests = _TimedRequests(timeout, max_bytes)  # type: ignore[attr-defined]
            module.API_URL = api  # type: ignore[attr-defined]
            module.USER_AGENT = API_USER_AGENT  # type: ignore[attr-defined]
            if len(_INSTANCES) >= _MAX_INSTANCES:
                _INSTANCES.pop(next(iter(_INSTANCES)))
            _INSTANCES[key] = module
        return module


def _search_sync(api: str, query: str, results: int, timeout: float, max_bytes: int) -> str:
    package = _package_for(api, timeout, max_bytes)
    # Results are cached by arguments for the life of the module; a search must see today's index.
    package.search.clear_cache()
    try:
        try:
            titles, suggestion = package.search(query, results=results, suggestion=True)
        except KeyError:  # the package assumes `searchinfo` always carries a suggestion when present
            titles, suggestion = package.search(query, results=results), None
        lines: list[str] = []
        for rank, title in enumerate(titles, start=1):
            line = f"{rank}. {title} — {article_url(api, title)}"
            if rank <= SUMMARIES:
                line += _summary_line(package, title)
            lines.append(line)
    except wiki_errors.WikipediaException as exc:
        raise WikiError(f"Wikipedia search failed: {one_line(str(getattr(exc, 'error', exc)), 200)}") from None
    if not lines:
        hint = f" Did you mean {suggestion!r}?" if suggestion else " Try other words or another language edition."
        return f"No Wikipedia page matches {query!r}.{hint}"
    head = f"Wikipedia results for {query!r}:"
    tail = "Open a page with wikipedia_page(title, as_of=<date the question names>, lang=...)."
    return "\n".join([head, *lines, tail])


def _summary_line(package: ModuleType, title: str) -> str:
    try:
        page = package.page(title, auto_suggest=False, redirect=True)
        summary = " ".join((page.summary or "").split())
    except wiki_errors.DisambiguationError as exc:
        options = ", ".join(exc.options[:8])
        return f"\n   (a disambiguation page; it may refer to: {options})"
    except (wiki_errors.PageError, KeyError):
        return ""
    if not summary:
        return ""
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"
    return f"\n   {summary}"


# --- full pages and past revisions through the MediaWiki API ----------------------------------------------


async def _api(ctx: ToolContext, api: str, params: dict[str, Any]) -> dict[str, Any]:
    settings = ctx.settings
    data = (
        await fetch(
            api,
            params={**params, "format": "json", "formatversion": "2"},
            timeout=settings.web_timeout,
            max_bytes=settings.web_max_bytes,
            allow_loopback=ctx.allow_loopback,
            headers={"User-Agent": API_USER_AGENT, "Accept": "application/json"},
            what="the Wikipedia API",
        )
    ).json()
    if not isinstance(data, dict):
        raise WikiError("the Wikipedia API answered something that is not a JSON object")
    if "error" in data:
        error = data["error"] if isinstance(data["error"], dict) else {"info": str(data["error"])}
        code, info = error.get("code", "error"), error.get("info", "")
        if code == "missingtitle":
            raise WikiError(f"no Wikipedia page has that title ({info}); find the exact title with wikipedia_search")
        raise WikiError(f"the Wikipedia API refused the request: {code}: {one_line(info, 200)}")
    return data


async def _revision_at(ctx: ToolContext, api: str, title: str, as_of: str) -> tuple[int, str, str, str]:
    """(revid, timestamp, resolved title, cutoff) of the revision in force at the end of `as_of`."""
    try:
        cutoff = mediawiki_timestamp(end_of_period(as_of))
    except ValueError as exc:
        raise WikiError(f"{exc} (as_of accepts {ACCEPTED})") from None
    data = await _api(
        ctx,
        api,
        {
            "action": "query",
            "prop": "revisions",
            "titles": title,
            "rvlimit": "1",
            "rvdir": "older",  # newest first, starting at rvstart: the first one is the revision in force then
            "rvstart": cutoff,
            "rvprop": "ids|timestamp",
            "redirects": "1",
        },
    )
    pages = (data.get("query") or {}).get("pages") or []
    if not isinstance(pages, list) or not pages:
        raise WikiError("the Wikipedia API answer has no page (unexpected format)")
    page = pages[0]
    if page.get("missing") or page.get("invalid"):
        raise WikiError(f"no Wikipedia page is titled {title!r}; find the exact title with wikipedia_search")
    revisions = page.get("revisions") or []
    if not revisions:
        raise WikiError(f"the page {page.get('title', title)!r} did not exist yet at {cutoff}")
    rev = revisions[0]
    return int(rev["revid"]), str(rev.get("timestamp", "")), str(page.get("title", title)), cutoff


async def wikipedia_page_text(ctx: ToolContext, title: str, as_of: str | None, lang: str, query: str | None) -> str:
    api = api_url(ctx.settings, lang)
    title = title.strip()
    if not title:
        raise WikiError("give a page title")
    parse: dict[str, Any] = {
        "action": "parse",
        "prop": "text|revid|displaytitle",
        "disableeditsection": "1",
        "disablelimitreport": "1",
        "disabletoc": "1",
    }
    revision_note = ""
    if as_of and str(as_of).strip():
        revid, stamp, resolved, cutoff = await _revision_at(ctx, api, title, str(as_of))
        parse["oldid"] = str(revid)
        revision_note = f"Revision: {revid} of {stamp}, the revision in force at {cutoff} (as_of={as_of!r})"
    else:
        parse.update(page=title, redirects="1")
    data = await _api(ctx, api, parse)
    parsed = data.get("parse")
    if not isinstance(parsed, dict) or not isinstance(parsed.get("text"), str):
        raise WikiError("the Wikipedia API answer has no page text (unexpected format)")
    page_title = str(parsed.get("title") or title)
    if not revision_note:
        current = parsed.get("revid")
        revision_note = f"Revision: {current} (the current one)" if current else "Revision: current"
        revid = int(current) if current else 0
    html = parsed["text"]
    _, markdown = await asyncio.to_thread(
        html_to_markdown, html, base_url=site_url(api) + "/wiki/", drop_selectors=WIKI_DROP_SELECTORS, keep_links=False
    )
    url = f"{site_url(api)}/w/index.php?oldid={revid}" if revid else article_url(api, page_title)
    return present(f"{page_title} ({lang} Wikipedia)", url, markdown, query, source=revision_note)


WIKIPEDIA_PAGE_DESCRIPTION = (
    "Read a Wikipedia article in full, tables included, as markdown. `title` is the article title. "
    "`as_of` (e.g. '2022', '2021-06', '2019-03-15') returns the revision in force at the END of that period: "
    "use it whenever the question names a date or year. `lang` picks the edition ('en', 'de', ...). "
    "`query` (a few keywords) returns only the relevant passages of a long article."
)


@register(
    "wikipedia_search",
    "Search Wikipedia: titles, links and short summaries of the best matches (the `wikipedia` package)",
)
def make_wikipedia_search(ctx: ToolContext) -> SafeTool:
    async def wikipedia_search(query: str, lang: str = "en") -> str:
        """Search Wikipedia (edition `lang`, default English); returns titles, links and summaries of the best matches."""
        if not query.strip():
            raise ToolError("give a search query") from None
        try:
            api = api_url(ctx.settings, lang)
            return await asyncio.to_thread(
                _search_sync, api, query.strip(), 8, ctx.settings.web_timeout, ctx.settings.web_max_bytes
            )
        except WikiError as exc:
            raise ToolError(f"{exc}") from None

    return SafeTool(wikipedia_search, name="wikipedia_search", description=wikipedia_search.__doc__ or "")


@register(
    "wikipedia_page",
    "A Wikipedia article with its tables, in any language edition, as it stood on a given date (MediaWiki API)",
)
def make_wikipedia_page(ctx: ToolContext) -> SafeTool:
    async def wikipedia_page(title: str, as_of: str | None = None, lang: str = "en", query: str | None = None) -> str:
        try:
            return await wikipedia_page_text(ctx, title, as_of, lang, query)
        except (WikiError, FetchError) as exc:
            raise ToolError(f"{exc}") from None

    return SafeTool(wikipedia_page, name="wikipedia_page", description=WIKIPEDIA_PAGE_DESCRIPTION, max_chars=16_000)
