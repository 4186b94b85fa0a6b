"""A local replica of the MediaWiki Action API (what Wikipedia serves at /w/api.php), in its real formats.

Served per language edition at `/{lang}/w/api.php` (set WIKIPEDIA_API_URL to `fake.api_url`):
- `action=query&list=search` (formatversion 1, as the `wikipedia` package asks), with `srinfo=suggestion`;
- `action=query&prop=info|pageprops` (redirects, `missing`, disambiguation pageprops) and `prop=extracts`;
- `action=query&prop=revisions&rvprop=content&rvparse` (the package's disambiguation listing);
- `action=query&prop=revisions&rvstart=...&rvdir=older&rvlimit=1` (formatversion 2: the revision in force);
- `action=parse&page=...&redirects=1` and `action=parse&oldid=...` (formatversion 2), with the API's
  `missingtitle` / `nosuchrevid` errors.
Shapes follow en.wikipedia.org's answers; articles are invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.web import FakeWeb, Reply, Request


@dataclass
class Revision:
    revid: int
    timestamp: str  # "2021-05-01T10:00:00Z"
    html: str  # the body of the rendered page (inside mw-parser-output)


@dataclass
class Article:
    title: str
    revisions: list[Revision]  # oldest first
    extract: str = ""  # the plain-text intro served by prop=extracts
    redirects: list[str] = field(default_factory=list)  # titles that redirect here
    disambiguation: list[str] = field(default_factory=list)  # non-empty: a disambiguation page listing these
    pageid: int = 0


class FakeMediaWiki(FakeWeb):
    def __init__(self) -> None:
        super().__init__()
        self.articles: dict[str, dict[str, Article]] = {}  # lang -> title -> article
        self.suggestions: dict[str, str] = {}
        self.fault: Reply | None = None  # served instead of every answer while set
        self._next_id = 1000

    @property
    def api_url(self) -> str:
        return f"{self.url}/{{lang}}/w/api.php"

    def add(self, article: Article, lang: str = "en") -> Article:
        self._next_id += 1
        article.pageid = article.pageid or self._next_id
        self.articles.setdefault(lang, {})[article.title] = article
        return article

    def api_calls(self, **match: str) -> list[Request]:
        return [r for r in self.requests if all(r.param(k) == v for k, v in match.items())]

    # --- routing -------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[1:] != ["w", "api.php"]:
            return Reply(404, "<html><body>Not Found</body></html>")
        if self.fault is not None:
            return self.fault
        lang = parts[0]
        action = request.param("action", "query")
        fv2 = request.param("formatversion") == "2"
        if action == "parse":
            return Reply(200, self._parse(lang, request))
        if request.param("list") == "search":
            return Reply(200, self._search(lang, request))
        prop = request.param("prop", "")
        if prop == "revisions" and request.param("rvprop") == "content":
            return Reply(200, self._disambiguation_content(lang, request))
        if prop == "revisions":
            return Reply(200, self._revisions(lang, request) if fv2 else {"error": {"code": "unsupported"}})
        if prop == "extracts":
            return Reply(200, self._extracts(lang, request))
        if "info" in prop:
            return Reply(200, self._info(lang, request))
        return Reply(200, {"error": {"code": "badvalue", "info": f"Unrecognized parameters: {request.query}"}})

    def _find(self, lang: str, title: str) -> tuple[Article | None, list[dict[str, str]]]:
        pages = self.articles.get(lang, {})
        if title in pages:
            return pages[title], []
        for article in pages.values():
            if title in article.redirects:
                return article, [{"from": title, "to": article.title}]
        return None, []

    def _search(self, lang: str, request: Request) -> dict[str, Any]:
        words = {w.lower() for w in (request.param("srsearch") or "").split()}
        limit = int(request.param("srlimit") or 10)
        hits = []
        for article in self.articles.get(lang, {}).values():
            text = (article.title + " " + article.extract + " " + article.revisions[-1].html).lower()
            score = sum(1 for w in words if w in text)
            if score:
                hits.append((score, article))
        hits.sort(key=lambda h: -h[0])
        # `srinfo` picks what `searchinfo` holds (default totalhits|suggestion); it is absent when empty.
        wanted = (request.param("srinfo") or "totalhits|suggestion").split("|")
        info: dict[str, Any] = {}
        if "totalhits" in wanted:
            info["totalhits"] = len(hits)
        if "suggestion" in wanted and (s := self.suggestions.get(request.param("srsearch") or "")):
            info["suggestion"] = s
            info["suggestionsnippet"] = s
        query: dict[str, Any] = {"search": [{"ns": 0, "title": a.title, "pageid": a.pageid} for _, a in hits[:limit]]}
        if info:
            query = {"searchinfo": info, **query}
        return {"batchcomplete": "", "continue": {"sroffset": limit, "continue": "-||"}, "query": query}

    def _info(self, lang: str, request: Request) -> dict[str, Any]:
        title = request.param("titles") or ""
        article, redirects = self._find(lang, title)
        query: dict[str, Any] = {}
        if article is None:
            query["pages"] = {"-1": {"ns": 0, "title": title, "missing": ""}}
            return {"batchcomplete": "", "query": query}
        if redirects:
            query["redirects"] = redirects
        page: dict[str, Any] = {
            "pageid": article.pageid,
            "ns": 0,
            "title": article.title,
            "contentmodel": "wikitext",
            "pagelanguage": lang,
            "lastrevid": article.revisions[-1].revid,
            "fullurl": f"https://{lang}.wikipedia.org/wiki/{article.title.replace(' ', '_')}",
        }
        if article.disambiguation:
            page["pageprops"] = {"disambiguation": ""}
        query["pages"] = {str(article.pageid): page}
        return {"batchcomplete": "", "query": query}

    def _extracts(self, lang: str, request: Request) -> dict[str, Any]:
        article, _ = self._find(lang, request.param("titles") or "")
        if article is None:
            return {"batchcomplete": "", "query": {"pages": {"-1": {"ns": 0, "title": request.param("titles"), "missing": ""}}}}
        page = {"pageid": article.pageid, "ns": 0, "title": article.title, "extract": article.extract}
        return {"batchcomplete": "", "query": {"pages": {str(article.pageid): page}}}

    def _disambiguation_content(self, lang: str, request: Request) -> dict[str, Any]:
        article, _ = self._find(lang, request.param("titles") or "")
        assert article is not None
        items = "".join(f'<li><a href="/wiki/{o}" title="{o}">{o}</a>, an invented place</li>' for o in article.disambiguation)
        html = f'<div class="mw-parser-output"><p><b>{article.title}</b> may refer to:</p><ul>{items}</ul></div>'
        page = {"pageid": article.pageid, "ns": 0, "title": article.title, "revisions": [{"*": html}]}
        return {"batchcomplete": "", "query": {"pages": {str(article.pageid): page}}}

    def _revisions(self, lang: str, request: Request) -> dict[str, Any]:
        title = request.param("titles") or ""
        article, redirects = self._find(lang, title)
        query: dict[str, Any] = {}
        if redirects:
            query["redirects"] = redirects
        if article is None:
            query["pages"] = [{"ns": 0, "title": title, "missing": True}]
            return {"batchcomplete": True, "query": query}
        start = request.param("rvstart")
        older = request.param("rvdir", "older") == "older"
        revs = article.revisions
        if start:
            revs = [r for r in revs if (r.timestamp <= start if older else r.timestamp >= start)]
        revs = list(reversed(revs)) if older else revs
        limit = int(request.param("rvlimit") or 1)
        page: dict[str, Any] = {"pageid": article.pageid, "ns": 0, "title": article.title}
        if revs:
            page["revisions"] = [
                {"revid": r.revid, "parentid": self._parent(article, r), "timestamp": r.timestamp} for r in revs[:limit]
            ]
        query["pages"] = [page]
        return {"batchcomplete": True, "query": query}

    @staticmethod
    def _parent(article: Article, rev: Revision) -> int:
        i = article.revisions.index(rev)
        return article.revisions[i - 1].revid if i else 0

    def _parse(self, lang: str, request: Request) -> dict[str, Any]:
        oldid = request.param("oldid")
        if oldid:
            for article in self.articles.get(lang, {}).values():
                for rev in article.revisions:
                    if str(rev.revid) == oldid:
                        return self._parsed(article, rev, lang)
            return {"error": {"code": "nosuchrevid", "info": f"There is no revision with ID {oldid}."}, "servedby": "mw-api-fake"}
        title = request.param("page") or ""
        article, _ = self._find(lang, title) if request.param("redirects") else (self.articles.get(lang, {}).get(title), [])
        if article is None:
            return {
                "error": {
                    "code": "missingtitle",
                    "info": "The page you specified doesn't exist.",
                    "docref": "See https://en.wikipedia.org/w/api.php for API usage.",
                },
                "servedby": "mw-api-fake",
            }
        return self._parsed(article, article.revisions[-1], lang)

    @staticmethod
    def _parsed(article: Article, rev: Revision, lang: str) -> dict[str, Any]:
        html = f'<div class="mw-content-ltr mw-parser-output" lang="{lang}" dir="ltr">{rev.html}</div>'
        return {
            "parse": {
                "title": article.title,
                "pageid": article.pageid,
                "revid": rev.revid,
                "text": html,
                "displaytitle": f'<span class="mw-page-title-main">{article.title}</span>',
            }
        }
