"""web_search through ddgs (DuckDuckGo's HTML page) and the Serper, Tavily and Brave APIs, served locally."""

from __future__ import annotations

import pytest

from tests.fakes.search_engines import FakeSearch, Hit
from tests.fakes.web import Reply, redirect
from tests.tools.conftest import call, tool_settings

KEY = "test-search-key-0001"
HITS = [
    Hit("Quillby lighthouse - Invented Encyclopedia", "https://encyclopedia.example/quillby-lighthouse", "The Quillby lighthouse was lit in 1871 and automated in 1989."),
    Hit("GAIA validation answers", "https://huggingface.co/datasets/someone/gaia-answers", "All the final answers, one per task."),
    Hit("Visiting Quillby", "https://travel.example/quillby", "Ferries, beaches and the <b>lighthouse</b> tour."),
]


@pytest.fixture
def engines(started) -> FakeSearch:
    return started(FakeSearch(HITS, key=KEY))


def _settings(engines: FakeSearch, **overrides):
    values = {
        "SERPER_URL": engines.serper_url,
        "TAVILY_URL": engines.tavily_url,
        "BRAVE_URL": engines.brave_url,
        "DDGS_URL": engines.ddg_url,
        **overrides,
    }
    return tool_settings(**values)


@pytest.mark.parametrize(
    "overrides, provider, path",
    [
        ({}, "ddgs", "/ddg/html/"),
        ({"SERPER_API_KEY": KEY}, "serper", "/serper/search"),
        ({"TAVILY_API_KEY": KEY}, "tavily", "/tavily/search"),
        ({"BRAVE_API_KEY": KEY}, "brave", "/brave/res/v1/web/search"),
        ({"SERPER_API_KEY": KEY, "BRAVE_API_KEY": KEY, "WEB_SEARCH_PROVIDER": "brave"}, "brave", "/brave/res/v1/web/search"),
    ],
)
async def test_each_provider_returns_titles_urls_and_snippets(make_ctx, engines, overrides, provider, path) -> None:
    out = await call(make_ctx(_settings(engines, **overrides)), "web_search", query="quillby lighthouse")
    assert out.startswith(f"Results for 'quillby lighthouse' ({provider}):")
    assert "1. Quillby lighthouse - Invented Encyclopedia\n   https://encyclopedia.example/quillby-lighthouse\n   The Quillby lighthouse was lit in 1871" in out
    assert "2. Visiting Quillby" in out and "lighthouse tour" in out
    # the answer sheet in the results is hidden, and the agent is told
    assert "gaia-answers" not in out and "1 result(s) from the benchmark's answer sources were hidden" in out
    assert engines.paths() == [path]
    request = engines.requests[0]
    if provider == "serper":
        assert request.json() == {"q": "quillby lighthouse", "num": 8}
    if provider == "brave":
        assert request.param("q") == "quillby lighthouse" and request.param("count") == "8"


async def test_the_number_of_results_is_bounded(make_ctx, engines) -> None:
    engines.hits = [Hit(f"Result {i}", f"https://site{i}.example/", f"snippet {i}") for i in range(30)]
    out = await call(make_ctx(_settings(engines, SERPER_API_KEY=KEY, WEB_SEARCH_RESULTS=3)), "web_search", query="x")
    assert "3. Result 2" in out and "4. Result" not in out
    assert engines.requests[0].json()["num"] == 3


async def test_empty_results(make_ctx, engines) -> None:
    engines.hits = []
    for overrides in ({}, {"SERPER_API_KEY": KEY}, {"TAVILY_API_KEY": KEY}, {"BRAVE_API_KEY": KEY}):
        out = await call(make_ctx(_settings(engines, **overrides)), "web_search", query="nothing matches this")
        assert out.startswith("No results for 'nothing matches this'"), out


async def test_only_blocked_results(make_ctx, engines) -> None:
    engines.hits = [HITS[1]]
    out = await call(make_ctx(_settings(engines, TAVILY_API_KEY=KEY)), "web_search", query="answers")
    assert out == "No results for 'answers' (tavily) (1 result(s) from the benchmark's answer sources were hidden). Try fewer or different words."


@pytest.mark.parametrize("overrides", [{"SERPER_API_KEY": KEY}, {"TAVILY_API_KEY": KEY}, {"BRAVE_API_KEY": KEY}])
async def test_api_failures_are_one_line_errors(make_ctx, engines, overrides) -> None:
    ctx = make_ctx(_settings(engines, WEB_TIMEOUT=1.0, **overrides))
    engines.fault = Reply(503, "<html>Service Unavailable</html>")
    assert "search API answered HTTP 503" in await call(ctx, "web_search", query="q")
    engines.fault = Reply(200, "<html>maintenance</html>", "text/html")
    assert "did not answer JSON" in await call(ctx, "web_search", query="q")
    engines.fault = Reply(200, {"organic": "nope", "results": "nope", "web": {"results": "nope"}})
    assert "unexpected search API answer" in await call(ctx, "web_search", query="q")
    engines.fault = Reply(200, {"organic": []}, delay=3)
    assert "timed out after 1s" in await call(ctx, "web_search", query="q")
    engines.fault = Reply(200, stream_bytes=3_000_000)
    assert "too large" in await call(ctx, "web_search", query="q")


async def test_a_wrong_key_is_reported_without_echoing_it(make_ctx, engines) -> None:
    for name in ("SERPER_API_KEY", "TAVILY_API_KEY", "BRAVE_API_KEY"):
        out = await call(make_ctx(_settings(engines, **{name: "wrong-key-123456"})), "web_search", query="q")
        assert out.startswith("Error: the ") and ("HTTP 401" in out or "HTTP 403" in out)
        assert "wrong-key-123456" not in out


async def test_ddgs_failures(make_ctx, engines) -> None:
    engines.fault = Reply(200, "<html><body>", delay=3)
    out = await call(make_ctx(_settings(engines, WEB_TIMEOUT=1.0)), "web_search", query="q")
    assert out.startswith("Error: the ddgs search") and "\n" not in out
    engines.fault = Reply(500, "<html>error</html>")
    assert (await call(make_ctx(_settings(engines)), "web_search", query="q")).startswith("No results for 'q' (ddgs)")
    closed = await call(make_ctx(tool_settings(DDGS_URL="http://127.0.0.1:9/html/")), "web_search", query="q")
    assert closed.startswith("Error: the ddgs search failed")


async def test_a_forced_provider_without_its_key(make_ctx, engines) -> None:
    out = await call(make_ctx(_settings(engines, WEB_SEARCH_PROVIDER="tavily")), "web_search", query="q")
    assert out == "Error: WEB_SEARCH_PROVIDER=tavily needs TAVILY_API_KEY, which is not set"
    assert engines.requests == []


async def test_search_api_calls_go_through_the_ssrf_guard(make_ctx, engines) -> None:
    engines.fault = redirect("http://169.254.169.254/latest/meta-data/", 307)
    out = await call(make_ctx(_settings(engines, SERPER_API_KEY=KEY)), "web_search", query="q")
    assert out == "Error: refused: 169.254.169.254 is a link-local address (where cloud metadata services live)"
    private = make_ctx(tool_settings(SERPER_API_KEY=KEY, SERPER_URL="http://192.168.7.7/search"))
    assert (await call(private, "web_search", query="q")) == "Error: refused: 192.168.7.7 is a private address"
