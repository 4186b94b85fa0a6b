"""read_page against a local site: HTML with tables, PDFs, query passages, and every way a fetch can fail."""

from __future__ import annotations

import uuid

from tests.fakes.web import FakeWeb, Reply, redirect
from tests.tools import documents
from tests.tools.conftest import call, tool_settings

ARTICLE = """<!DOCTYPE html><html><head><title>Rivers of Quillshire</title><style>p{color:red}</style>
<script>document.write('tracking')</script></head><body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<main><h1>Rivers of Quillshire</h1>
<p>The invented county of Quillshire is drained by three rivers. The <a href="/wiki/Mossy">Mossy</a> is the longest.</p>
<table class="wikitable"><caption>Rivers by length</caption>
<tr><th>River</th><th>Length (km)</th><th>Mouth</th></tr>
<tr><td>Mossy</td><td>212</td><td rowspan="2">Grey Sea</td></tr>
<tr><td>Larkwater</td><td>97</td></tr>
<tr><td>Brindle</td><td>41</td><td>Mossy</td></tr>
</table>
<h2>Fishing</h2><p>Trout fishing on the Larkwater opens every April and closes in late September.</p>
<h2>Bridges</h2><p>Seventeen stone bridges cross the Mossy between its source and the sea.</p>
</main><footer>Copyright nobody</footer></body></html>"""


def _site() -> FakeWeb:
    return FakeWeb(
        {
            "/rivers": Reply(200, ARTICLE),
            "/moved": redirect("/rivers", 301),
            "/to-private": redirect("http://10.0.0.8/admin"),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/iam"),
            "/report.pdf": Reply(200, documents.pdf_bytes(["Annual report of the Quillshire ferry", "Ferries carried 5123 riders"]), "application/pdf"),
            "/broken.pdf": Reply(200, b"%PDF-1.4\n1 0 obj <<< this is not a pdf", "application/pdf"),
            "/empty": Reply(200, "<html><body><script>render()</script></body></html>"),
            "/slow": Reply(200, ARTICLE, delay=4),
            "/down": Reply(502, "<html><body>Bad Gateway</body></html>"),
            "/missing": Reply(404, "<html><body>Nope</body></html>"),
            "/huge": Reply(200, stream_bytes=400_000),
            "/photo.png": Reply(200, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png"),
            "/data.json": Reply(200, {"river": "Mossy", "length_km": 212}),
            # an answer key under an innocent name; ids made at run time (no UUID may sit in the repository)
            "/key.txt": Reply(200, f"task_id,Final answer\n{uuid.uuid4()},alpha\n{uuid.uuid4()},beta\n", "text/plain"),
        }
    )


async def test_html_becomes_markdown_with_tables_and_without_chrome(make_ctx, started) -> None:
    site = started(_site())
    out = await call(make_ctx(), "read_page", url=f"{site.url}/rivers")
    assert out.startswith("Title: Rivers of Quillshire\nURL: ")
    assert "# Rivers of Quillshire" in out and "[Mossy](" in out
    assert "| River | Length (km) | Mouth |" in out
    assert "| Larkwater | 97 | Grey Sea |" in out  # the rowspan is repeated where it applies
    assert "Table: Rivers by length" in out
    assert "tracking" not in out and "Copyright" not in out and "Home" not in out and "color:red" not in out


async def test_query_returns_only_the_relevant_passages(make_ctx, started) -> None:
    site = started(_site())
    out = await call(make_ctx(), "read_page", url=f"{site.url}/rivers", query="trout fishing season")
    assert "Trout fishing on the Larkwater opens every April" in out
    assert "Seventeen stone bridges" not in out
    assert "Passages matching 'trout fishing season'" in out and "[section: Fishing]" in out
    nothing = await call(make_ctx(), "read_page", url=f"{site.url}/rivers", query="volcano eruption")
    assert "No passage mentions 'volcano eruption'" in nothing and "The page begins" in nothing


async def test_pdf_redirect_json_and_empty_pages(make_ctx, started) -> None:
    site = started(_site())
    ctx = make_ctx()
    pdf = await call(ctx, "read_page", url=f"{site.url}/report.pdf")
    assert "--- page 2 ---" in pdf and "Ferries carried 5123 riders" in pdf
    moved = await call(ctx, "read_page", url=f"{site.url}/moved")
    assert f"URL: {site.url}/rivers" in moved and "(redirected from" in moved
    data = await call(ctx, "read_page", url=f"{site.url}/data.json")
    assert '"length_km": 212' in data
    empty = await call(ctx, "read_page", url=f"{site.url}/empty")
    assert "no readable text" in empty


async def test_failures_are_one_clear_line(make_ctx, started) -> None:
    site = started(_site())
    ctx = make_ctx(tool_settings(WEB_TIMEOUT=1.0))
    cases = {
        "/slow": "timed out after 1s",
        "/down": "answered HTTP 502",
        "/missing": "answered HTTP 404",
        "/huge": "too large",
        "/broken.pdf": "not a readable PDF",
        "/photo.png": "has type image/png, which cannot be read as text",
        "/to-private": "refused: 10.0.0.8 is a private address",
        "/to-metadata": "refused: 169.254.169.254 is a link-local address",
    }
    for path, expected in cases.items():
        out = await call(ctx, "read_page", url=f"{site.url}{path}")
        assert out.startswith("Error: ") and expected in out, (path, out)
        assert "\n" not in out
    assert "/admin" not in " ".join(site.paths()) and len([p for p in site.paths() if p == "/to-private"]) == 1


async def test_private_and_loopback_urls_are_refused_without_the_test_switch(make_ctx, started) -> None:
    site = started(_site())
    ctx = make_ctx(allow_loopback=False)
    out = await call(ctx, "read_page", url=f"{site.url}/rivers")
    assert out == "Error: refused: 127.0.0.1 is a loopback address"
    assert site.requests == []  # refused before connecting
    for url in ("http://192.168.1.1/", "http://[fd12::1]/", "ftp://example.org/x", "javascript:alert(1)"):
        assert (await call(ctx, "read_page", url=url)).startswith("Error: ")


async def test_an_answer_key_served_under_an_unknown_name_is_refused(make_ctx, started) -> None:
    site = started(_site())
    out = await call(make_ctx(), "read_page", url=f"{site.url}/key.txt")
    assert out.startswith("Error: refused:") and "answer file" in out
    assert "alpha" not in out


async def test_long_pages_are_cut_with_a_note(make_ctx, started) -> None:
    long_page = "<html><body>" + "".join(f"<p>Paragraph {i} about invented weather.</p>" for i in range(2000)) + "</body></html>"
    site = started(FakeWeb({"/long": Reply(200, long_page)}))
    out = await call(make_ctx(tool_settings(WEB_MAX_BYTES=500_000)), "read_page", url=f"{site.url}/long")
    assert "[... truncated:" in out and len(out) < 13_000
