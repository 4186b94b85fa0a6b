"""`web_search(query)`: title, URL and snippet of the best results, from ddgs or a keyed search API.

Provider: WEB_SEARCH_PROVIDER when set, else the first key present among SERPER_API_KEY (Google results via
Serper), TAVILY_API_KEY, BRAVE_API_KEY, else `ddgs` (no key). There is no silent fallback from a failed
keyed provider to another one: the agent gets the error and can retry, and a test can never reach a real
engine by accident. Results pointing at the benchmark's answer sources are dropped (and counted).

`ddgs` does its own HTTP (a Rust client, outside Python's sockets); DDGS_URL sends its DuckDuckGo HTML engine
to another endpoint instead of the metasearch, which is how tests serve it a results page locally.
"""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agents.tools.errors import ToolError
from agents.tools.net import API_USER_AGENT, FetchError, fetch
from agents.tools.registry import SafeTool, ToolContext, register
from agents.tools.sources import blocked_source
from common.text import one_line
from config.settings import Settings

SNIPPET_CHARS = 300
_TAG = re.compile(r"<[^>]{0,200}>")


def _plain(text: str) -> str:
    """Snippets carry highlighting markup (Brave's <strong>, Google's <b>): keep the words only."""
    return html.unescape(_TAG.sub("", text))


@dataclass
class Hit:
    title: str
    url: str
    snippet: str


class SearchError(ToolError):
    """One line for the agent."""


def provider_for(settings: Settings) -> str:
    if settings.web_search_provider != "auto":
        return settings.web_search_provider
    for name, key in (("serper", settings.serper_api_key), ("tavily", settings.tavily_api_key), ("brave", settings.brave_api_key)):
        if key is not None:
            return name
    return "ddgs"


def _key(settings: Settings, provider: str) -> str:
    secret = getattr(settings, f"{provider}_api_key")
    if secret is None:
        raise SearchError(f"WEB_SEARCH_PROVIDER={provider} needs {provider.upper()}_API_KEY, which is not set")
    return secret.get_secret_value()


async def _api(ctx: ToolContext, provider: str, url: str, **kwargs: Any) -> Any:
    try:
        answer = await fetch(
            url,
            timeout=ctx.settings.web_timeout,
            max_bytes=2_000_000,
            allow_loopback=ctx.allow_loopback,
            what=f"the {provider} search API",
            **kwargs,
        )
        return answer.json()
    except FetchError as exc:
        raise SearchError(str(exc)) from None


def _items(data: Any, *path: str) -> list[dict[str, Any]]:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    if data is None:
        return []
    if not isinstance(data, list):
        raise SearchError(f"unexpected search API answer: {'.'.join(path)} is not a list")
    return [d for d in data if isinstance(d, dict)]


async def _serper(ctx: ToolContext, query: str, n: int) -> list[Hit]:
    data = await _api(
        ctx,
        "Serper",
        ctx.settings.serper_url,
        method="POST",
        json={"q": query, "num": n},
        headers={"X-API-KEY": _key(ctx.settings, "serper"), "Content-Type": "application/json", "User-Agent": API_USER_AGENT},
    )
    hits = []
    box = data.get("answerBox") if isinstance(data, dict) else None
    if isinstance(box, dict) and (box.get("answer") or box.get("snippet")):
        hits.append(Hit(f"Answer box: {box.get('title', '')}".strip(), str(box.get("link", "")), str(box.get("answer") or box.get("snippet"))))
    for item in _items(data, "organic"):
        hits.append(Hit(str(item.get("title", "")), str(item.get("link", "")), str(item.get("snippet", ""))))
    return hits


async def _tavily(ctx: ToolContext, query: str, n: int) -> list[Hit]:
    data = await _api(
        ctx,
        "Tavily",
        ctx.settings.tavily_url,
        method="POST",
        json={"query": query, "max_results": n, "search_depth": "basic"},
        headers={"Authorization": f"Bearer {_key(ctx.settings, 'tavily')}", "User-Agent": API_USER_AGENT},
    )
    return [Hit(str(i.get("title", "")), str(i.get("url", "")), str(i.get("content", ""))) for i in _items(data, "results")]


async def _brave(ctx: ToolContext, query: str, n: int) -> list[Hit]:
    data = await _api(
        ctx,
        "Brave",
        ctx.settings.brave_url,
        params={"q": query, "count": n},
        headers={"X-Subscription-Token": _key(ctx.settings, "brave"), "Accept": "application/json", "User-Agent": API_USER_AGENT},
    )
    return [Hit(str(i.get("title", "")), str(i.get("url", "")), str(i.get("description", ""))) for i in _items(data, "web", "results")]


def _ddgs_sync(settings: Settings, query: str, n: int) -> list[Hit]:
    from ddgs import DDGS
    from ddgs.exceptions import DDGSException, TimeoutException

    timeout = max(1, int(settings.web_timeout))
    try:
        if settings.ddgs_url:
            from ddgs.engines.duckduckgo import Duckduckgo

            engine = Duckduckgo(timeout=timeout)
            engine.search_url = settings.ddgs_url
            rows = [{"title": r.title, "href": r.href, "body": r.body} for r in engine.search(query) or []]
        else:
            rows = DDGS(timeout=timeout).text(query, max_results=n, backend=settings.ddgs_backend)
    except TimeoutException:
        raise SearchError(f"the ddgs search timed out after {timeout}s") from None
    except DDGSException as exc:
        if "no results" in str(exc).lower():
            return []
        raise SearchError(f"the ddgs search failed: {one_line(str(exc), 200)}") from None
    return [Hit(str(r.get("title", "")), _unwrap_redirect(str(r.get("href", ""))), str(r.get("body", ""))) for r in rows[:n]]


def _unwrap_redirect(href: str) -> str:
    """DuckDuckGo sometimes links through its redirector (//duckduckgo.com/l/?uddg=<target>)."""
    parts = urlsplit(href if "://" in href else "https:" + href if href.startswith("//") else href)
    if parts.hostname and parts.hostname.endswith("duckduckgo.com") and parts.path.startswith("/l/"):
        target = parse_qs(parts.query).get("uddg")
        if target:
            return target[0]
    return href


async def search(ctx: ToolContext, query: str) -> tuple[str, list[Hit]]:
    settings = ctx.settings
    n = settings.web_search_results
    provider = provider_for(settings)
    if provider == "serper":
        hits = await _serper(ctx, query, n)
    elif provider == "tavily":
        hits = await _tavily(ctx, query, n)
    elif provider == "brave":
        hits = await _brave(ctx, query, n)
    else:
        hits = await asyncio.to_thread(_ddgs_sync, settings, query, n)
    return provider, hits


def format_hits(query: str, provider: str, hits: list[Hit], limit: int) -> str:
    kept = [h for h in hits if h.url and blocked_source(h.url) is None]
    hidden = sum(1 for h in hits if h.url and blocked_source(h.url) is not None)
    kept += [h for h in hits if not h.url]  # an answer box without a link
    if not kept:
        note = f" ({hidden} result(s) from the benchmark's answer sources were hidden)" if hidden else ""
        return f"No results for {query!r} ({provider}){note}. Try fewer or different words."
    lines = [f"Results for {query!r} ({provider}):"]
    for rank, hit in enumerate(kept[:limit], start=1):
        snippet = one_line(_plain(hit.snippet), SNIPPET_CHARS)
        lines.append(f"{rank}. {one_line(_plain(hit.title), 150) or '(no title)'}\n   {hit.url or '(no link)'}\n   {snippet}")
    if hidden:
        lines.append(f"({hidden} result(s) from the benchmark's answer sources were hidden.)")
    lines.append("Snippets are not evidence: open a page with read_page before relying on it.")
    return "\n".join(lines)


@register(
    "web_search",
    "Web search: title, URL and snippet of the best results",
    needs="nothing (ddgs); SERPER_API_KEY, TAVILY_API_KEY or BRAVE_API_KEY select those APIs",
)
def make_web_search(ctx: ToolContext) -> SafeTool:
    async def web_search(query: str) -> str:
        """Search the web; returns the title, URL and snippet of the best results. Open pages with read_page."""
        if not query.strip():
            raise ToolError("give a search query") from None
        try:
            provider, hits = await search(ctx, query.strip())
        except SearchError as exc:
            raise ToolError(f"{exc}") from None
        return format_hits(query.strip(), provider, hits, ctx.settings.web_search_results)

    return SafeTool(web_search, name="web_search", description=web_search.__doc__ or "", max_chars=8_000)
