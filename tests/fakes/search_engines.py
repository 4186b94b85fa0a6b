"""Local replicas of the web search services, in their real wire formats.

- Serper: `POST /serper/search` (X-API-KEY), Google results as `organic[]` (+ `answerBox`).
- Tavily: `POST /tavily/search` (Authorization: Bearer), `results[]` with `content` and `score`.
- Brave: `GET /brave/res/v1/web/search` (X-Subscription-Token), `web.results[]` with `description`.
- DuckDuckGo's HTML endpoint: `POST /ddg/html/` (form `q=`), the results page that ddgs parses.
Wrong keys get each service's own error body. `hits` is the result list every engine serves.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from tests.fakes.web import FakeWeb, Reply, Request


@dataclass
class Hit:
    title: str
    url: str
    snippet: str


class FakeSearch(FakeWeb):
    def __init__(self, hits: list[Hit] | None = None, *, key: str = "test-search-key-0001") -> None:
        super().__init__()
        self.hits: list[Hit] = list(hits or [])
        self.key = key
        self.fault: Reply | None = None

    @property
    def serper_url(self) -> str:
        return f"{self.url}/serper/search"

    @property
    def tavily_url(self) -> str:
        return f"{self.url}/tavily/search"

    @property
    def brave_url(self) -> str:
        return f"{self.url}/brave/res/v1/web/search"

    @property
    def ddg_url(self) -> str:
        return f"{self.url}/ddg/html/"

    def handle(self, request: Request) -> Reply:
        if self.fault is not None:
            return self.fault
        route = (request.method, request.path)
        if route == ("POST", "/serper/search"):
            return self._serper(request)
        if route == ("POST", "/tavily/search"):
            return self._tavily(request)
        if route == ("GET", "/brave/res/v1/web/search"):
            return self._brave(request)
        if route == ("POST", "/ddg/html/"):
            return self._ddg(request)
        return super().handle(request)

    def _serper(self, request: Request) -> Reply:
        if request.headers.get("x-api-key") != self.key:
            return Reply(403, {"message": "Unauthorized.", "statusCode": 403})
        body = request.json()
        n = int(body.get("num", 10))
        organic = [{"title": h.title, "link": h.url, "snippet": h.snippet, "position": i} for i, h in enumerate(self.hits[:n], 1)]
        payload: dict[str, Any] = {
            "searchParameters": {"q": body.get("q"), "type": "search", "engine": "google", "num": n},
            "organic": organic,
            "relatedSearches": [],
            "credits": 1,
        }
        return Reply(200, payload)

    def _tavily(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
        body = request.json()
        n = int(body.get("max_results", 5))
        results = [
            {"title": h.title, "url": h.url, "content": h.snippet, "score": round(0.9 - i / 100, 3), "raw_content": None}
            for i, h in enumerate(self.hits[:n])
        ]
        payload = {"query": body.get("query"), "follow_up_questions": None, "answer": None, "images": [], "results": results, "response_time": 0.42}
        return Reply(200, payload)

    def _brave(self, request: Request) -> Reply:
        if request.headers.get("x-subscription-token") != self.key:
            error = {"id": "fake-0001", "status": 401, "code": "SUBSCRIPTION_TOKEN_INVALID", "detail": "The provided subscription token is invalid."}
            return Reply(401, {"type": "ErrorResponse", "error": error, "time": 1700000000})
        n = int(request.param("count") or 20)
        results = [
            {
                "title": h.title,
                "url": h.url,
                "description": h.snippet,
                "is_source_local": False,
                "is_source_both": False,
                "language": "en",
                "family_friendly": True,
                "type": "search_result",
            }
            for h in self.hits[:n]
        ]
        payload = {
            "type": "search",
            "query": {"original": request.param("q"), "more_results_available": False},
            "mixed": {"type": "mixed", "main": [{"type": "web", "index": i, "all": False} for i in range(len(results))]},
            "web": {"type": "search", "results": results, "family_friendly": True},
        }
        return Reply(200, payload)

    def _ddg(self, request: Request) -> Reply:
        query = (request.form().get("q") or [""])[0]
        if not self.hits:
            page = f'<html><body><div id="links" class="results"><div class="no-results">No results for {html.escape(query)}.</div></div></body></html>'
            return Reply(200, page)
        blocks = []
        for h in self.hits:
            url, title, snippet = html.escape(h.url), html.escape(h.title), html.escape(h.snippet)
            blocks.append(
                '<div class="result results_links results_links_deep web-result ">'
                '<div class="links_main links_deep result__body">'
                f'<h2 class="result__title"><a rel="nofollow" class="result__a" href="{url}">{title}</a></h2>'
                f'<div class="result__extras"><div class="result__extras__url"><a class="result__url" href="{url}">{url}</a></div></div>'
                f'<a class="result__snippet" href="{url}">{snippet}</a>'
                '<div class="clear"></div></div></div>'
            )
        page = (
            f'<!DOCTYPE html><html><head><title>{html.escape(query)} at DuckDuckGo</title></head>'
            f'<body class="body--html"><div id="links" class="results">{"".join(blocks)}</div></body></html>'
        )
        return Reply(200, page)
