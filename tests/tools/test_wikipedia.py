"""wikipedia_search (the `wikipedia` package) and wikipedia_page (MediaWiki API) against a local MediaWiki."""

from __future__ import annotations

import pytest

from tests.fakes.mediawiki import Article, FakeMediaWiki, Revision
from tests.fakes.web import Reply, redirect
from tests.tools.conftest import call, tool_settings

CASTLE_2019 = """<p><b>Alderbrook Castle</b> is an invented castle in Quillshire.</p>
<h2>Towers</h2><table class="wikitable"><tr><th>Tower</th><th>Built</th></tr>
<tr><td>North</td><td>1302</td></tr><tr><td>South</td><td>1340</td></tr></table>
<p>The castle had <b>2</b> towers.<sup class="reference" id="cite_ref-1"><a href="#cite_note-1">[1]</a></sup></p>
<span class="mw-editsection">[edit]</span><div class="navbox">Castles of Quillshire navigation</div>"""
CASTLE_2022 = CASTLE_2019.replace("<b>2</b> towers", "<b>3</b> towers").replace(
    "</table>", "<tr><td>Gate</td><td>2021</td></tr></table>"
)
CASTLE_2024 = CASTLE_2022.replace("<b>3</b> towers", "<b>4</b> towers")


@pytest.fixture
def wiki(started) -> FakeMediaWiki:
    fake = started(FakeMediaWiki())
    fake.add(
        Article(
            "Alderbrook Castle",
            [
                Revision(9001, "2019-04-02T08:00:00Z", CASTLE_2019),
                Revision(9002, "2022-11-20T17:30:00Z", CASTLE_2022),
                Revision(9003, "2024-02-01T09:15:00Z", CASTLE_2024),
            ],
            extract="Alderbrook Castle is an invented castle in Quillshire, with towers added over the centuries.",
            redirects=["Alderbrook Keep"],
        )
    )
    fake.add(Article("Birchwell", [Revision(7001, "2020-01-01T00:00:00Z", "<p>Birchwell may refer to places.</p>")], disambiguation=["Birchwell (village)", "Birchwell (river)"]))
    fake.add(Article("Burg Alderbrook", [Revision(5001, "2021-06-01T00:00:00Z", "<p>Die <b>Burg Alderbrook</b> hat drei Türme.</p>")], extract="Die Burg Alderbrook ist eine erfundene Burg."), lang="de")
    return fake


def _ctx(make_ctx, wiki: FakeMediaWiki, **overrides):
    return make_ctx(tool_settings(WIKIPEDIA_API_URL=wiki.api_url, **overrides))


async def test_page_as_of_a_year_is_the_revision_in_force_at_its_end(make_ctx, wiki) -> None:
    ctx = _ctx(make_ctx, wiki)
    as_2022 = await call(ctx, "wikipedia_page", title="Alderbrook Castle", as_of="2022")
    assert "Revision: 9002 of 2022-11-20T17:30:00Z" in as_2022 and "2022-12-31T23:59:59Z" in as_2022
    assert "The castle had **3** towers." in as_2022 and "| Gate | 2021 |" in as_2022
    as_2020 = await call(ctx, "wikipedia_page", title="Alderbrook Castle", as_of="2020-06")
    assert "The castle had **2** towers." in as_2020 and "Gate" not in as_2020
    current = await call(ctx, "wikipedia_page", title="Alderbrook Castle")
    assert "The castle had **4** towers." in current and "Revision: 9003 (the current one)" in current
    # the revision lookup asked for the newest revision at or before the end of the period
    lookup = wiki.api_calls(prop="revisions", rvdir="older")[0]
    assert lookup.param("rvstart") == "2022-12-31T23:59:59Z" and lookup.param("rvlimit") == "1"
    assert wiki.api_calls(action="parse", oldid="9002")


async def test_page_keeps_tables_drops_furniture_and_follows_redirects(make_ctx, wiki) -> None:
    out = await call(_ctx(make_ctx, wiki), "wikipedia_page", title="Alderbrook Keep")
    assert out.startswith("Title: Alderbrook Castle (en Wikipedia)")
    assert "| Tower | Built |" in out and "| North | 1302 |" in out
    assert "[1]" in out and "[edit]" not in out and "navigation" not in out
    assert "URL: " + wiki.url + "/en/w/index.php?oldid=9003" in out


async def test_page_in_another_language_and_with_a_query(make_ctx, wiki) -> None:
    ctx = _ctx(make_ctx, wiki)
    german = await call(ctx, "wikipedia_page", title="Burg Alderbrook", lang="de")
    assert "hat drei Türme" in german and "(de Wikipedia)" in german
    towers = await call(ctx, "wikipedia_page", title="Alderbrook Castle", query="towers built")
    assert "| South | 1340 |" in towers and "Passages matching" in towers


async def test_page_errors_are_clear(make_ctx, wiki) -> None:
    ctx = _ctx(make_ctx, wiki)
    missing = await call(ctx, "wikipedia_page", title="Castle That Never Was")
    assert missing.startswith("Error: no Wikipedia page has that title") and "wikipedia_search" in missing
    missing_then = await call(ctx, "wikipedia_page", title="Castle That Never Was", as_of="2020")
    assert missing_then.startswith("Error: no Wikipedia page is titled")
    too_early = await call(ctx, "wikipedia_page", title="Alderbrook Castle", as_of="2015")
    assert too_early == "Error: the page 'Alderbrook Castle' did not exist yet at 2015-12-31T23:59:59Z"
    bad_date = await call(ctx, "wikipedia_page", title="Alderbrook Castle", as_of="sometime soon")
    assert bad_date.startswith("Error: cannot read the date 'sometime soon'")
    bad_lang = await call(ctx, "wikipedia_page", title="Alderbrook Castle", lang="../etc")
    assert bad_lang.startswith("Error: '../etc' is not a Wikipedia language code")


async def test_page_server_failures(make_ctx, wiki) -> None:
    ctx = _ctx(make_ctx, wiki, WEB_TIMEOUT=1.0)
    wiki.fault = Reply(503, "<html><body>Wikimedia Error</body></html>")
    assert "answered HTTP 503" in await call(ctx, "wikipedia_page", title="Alderbrook Castle")
    wiki.fault = Reply(200, "<html>not json</html>", "text/html")
    assert "did not answer JSON" in await call(ctx, "wikipedia_page", title="Alderbrook Castle")
    wiki.fault = Reply(200, {"batchcomplete": True})
    assert "unexpected format" in await call(ctx, "wikipedia_page", title="Alderbrook Castle")
    wiki.fault = Reply(200, {"parse": {}}, delay=3)
    assert "timed out after 1s" in await call(ctx, "wikipedia_page", title="Alderbrook Castle")
    wiki.fault = Reply(200, {"parse": {"title": "x", "text": "<p>" + "y" * 30_000 + "</p>"}})
    assert "too large" in await call(ctx, "wikipedia_page", title="Alderbrook Castle")


async def test_search_lists_titles_links_and_summaries(make_ctx, wiki) -> None:
    out = await call(_ctx(make_ctx, wiki), "wikipedia_search", query="Alderbrook castle towers")
    assert out.startswith("Wikipedia results for 'Alderbrook castle towers':")
    assert "1. Alderbrook Castle — " + wiki.url + "/en/wiki/Alderbrook_Castle" in out
    assert "with towers added over the centuries" in out
    searches = wiki.api_calls(list="search")
    assert searches and searches[0].param("srsearch") == "Alderbrook castle towers"


async def test_search_disambiguation_empty_and_other_editions(make_ctx, wiki) -> None:
    ctx = _ctx(make_ctx, wiki)
    dab = await call(ctx, "wikipedia_search", query="Birchwell")
    assert "a disambiguation page; it may refer to: Birchwell (village), Birchwell (river)" in dab
    wiki.suggestions["Aldrebrook"] = "alderbrook"
    empty = await call(ctx, "wikipedia_search", query="Aldrebrook")
    assert empty == "No Wikipedia page matches 'Aldrebrook'. Did you mean 'alderbrook'?"
    german = await call(ctx, "wikipedia_search", query="Burg", lang="de")
    assert "Burg Alderbrook" in german and "erfundene Burg" in german
    # the package's process-wide cache must not serve the English answer for the German edition
    english = await call(ctx, "wikipedia_search", query="Burg")
    assert "Burg Alderbrook" not in english


async def test_search_failures(make_ctx, wiki) -> None:
    ctx = _ctx(make_ctx, wiki, WEB_TIMEOUT=1.0)
    wiki.fault = Reply(500, "<html>Internal error</html>")
    assert (await call(ctx, "wikipedia_search", query="castle")) == "Error: the Wikipedia API answered HTTP 500 Internal Server Error"
    wiki.fault = Reply(200, {"error": {"code": "internal", "info": "Pool queue is full"}})
    assert "Wikipedia search failed" in await call(ctx, "wikipedia_search", query="castle")
    wiki.fault = Reply(200, "<<garbage>>", "text/html")
    assert "did not answer JSON" in await call(ctx, "wikipedia_search", query="castle")
    wiki.fault = Reply(200, {"query": {"search": []}}, delay=3)
    assert "timed out after 1s" in await call(ctx, "wikipedia_search", query="castle")
    wiki.fault = Reply(200, {"query": {"search": [{"title": "z" * 30_000}]}})
    assert "too large" in await call(ctx, "wikipedia_search", query="castle")


async def test_the_package_is_left_as_it_was(make_ctx, wiki) -> None:
    import wikipedia

    before = wikipedia.wikipedia.API_URL, wikipedia.wikipedia.requests
    await call(_ctx(make_ctx, wiki), "wikipedia_search", query="castle")
    assert (wikipedia.wikipedia.API_URL, wikipedia.wikipedia.requests) == before


async def test_page_requests_go_through_the_ssrf_guard(make_ctx, wiki) -> None:
    wiki.fault = redirect("http://169.254.169.254/latest/meta-data/")
    out = await call(_ctx(make_ctx, wiki), "wikipedia_page", title="Alderbrook Castle")
    assert out == "Error: refused: 169.254.169.254 is a link-local address (where cloud metadata services live)"
    private = make_ctx(tool_settings(WIKIPEDIA_API_URL="http://10.1.1.1/{lang}/w/api.php"))
    assert (await call(private, "wikipedia_page", title="Alderbrook Castle")) == "Error: refused: 10.1.1.1 is a private address"


async def test_concurrent_searches_run_at_once_not_one_after_another(make_ctx, started) -> None:
    import asyncio
    import threading

    class MeetingWiki(FakeMediaWiki):
        """Each search waits until the other one has arrived: searches serialised behind a lock never meet."""

        def __init__(self) -> None:
            super().__init__()
            self.meeting = threading.Barrier(2, timeout=5)

        def handle(self, request):  # type: ignore[no-untyped-def]
            if request.param("list") == "search":
                try:
                    self.meeting.wait()
                except threading.BrokenBarrierError:
                    return Reply(503, "<html>the other search never came</html>")
            return super().handle(request)

    wiki = started(MeetingWiki())
    wiki.add(Article("Alderbrook Castle", [Revision(1, "2020-01-01T00:00:00Z", "<p>x</p>")], extract="An invented castle."))
    wiki.add(Article("Burg Alderbrook", [Revision(2, "2020-01-01T00:00:00Z", "<p>y</p>")], extract="Eine Burg."), lang="de")
    ctx = _ctx(make_ctx, wiki)
    english, german = await asyncio.gather(
        call(ctx, "wikipedia_search", query="Alderbrook"),
        call(ctx, "wikipedia_search", query="Alderbrook", lang="de"),
    )
    assert "Alderbrook Castle" in english and "Burg Alderbrook" not in english, english
    assert "Burg Alderbrook" in german, german
