"""The guarded fetch under every web tool: what it refuses, where it checks, and how it fails."""

from __future__ import annotations

import pytest

from agents.tools import net
from agents.tools.net import FetchError, address_problem, fetch
from tests.fakes.web import FakeWeb, Reply, redirect


@pytest.mark.parametrize(
    "address, problem",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 spelling of 169.254.169.254
        ("2002:0a00:0001::", "private"),  # 6to4 wrapping 10.0.0.1
        ("fd00:ec2::254", "private"),  # the IPv6 metadata address of one cloud
        ("fe80::1", "link-local"),
    ],
)
def test_non_public_addresses_are_refused_in_every_spelling(address: str, problem: str) -> None:
    found = address_problem(address)
    assert found is not None and problem in found


def test_public_addresses_pass_and_loopback_only_when_allowed() -> None:
    assert address_problem("93.184.215.14") is None
    assert address_problem("2606:4700::6810:85e5") is None
    assert address_problem("127.0.0.1", allow_loopback=True) is None
    assert address_problem("10.0.0.1", allow_loopback=True) is not None  # loopback only, not private


@pytest.mark.parametrize(
    "url, words",
    [
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.org/", "only http and https"),
        ("http://user:secret@example.org/", "user name or password"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]:8080/", "loopback"),
        ("http://localhost/", "local network name"),
        ("http://metadata.google.internal/computeMetadata/v1/", "local network name"),
        ("http://intranet/", "local network name"),
        ("http://2130706433/", "local network name"),  # 127.0.0.1 as one decimal number
    ],
)
async def test_refused_before_any_connection(url: str, words: str) -> None:
    with pytest.raises(FetchError, match=words):
        await fetch(url, timeout=2, max_bytes=10_000)


async def test_a_name_that_resolves_to_a_private_address_is_refused_after_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_dns(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.20.30.40"] if host == "innocent.example" else []

    monkeypatch.setattr(net, "resolve", fake_dns)
    with pytest.raises(FetchError, match=r"innocent.example resolves to 10.20.30.40, a private address"):
        await fetch("http://innocent.example/page", timeout=2, max_bytes=10_000)


async def test_dns_rebinding_gains_nothing_the_checked_address_is_the_one_dialled(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeWeb({"/": Reply(200, "<p>served locally</p>")}) as site:
        port = int(site.url.rsplit(":", 1)[1])
        answers = iter([["127.0.0.1"], ["10.0.0.5"]])  # a second lookup would return a private address

        async def rebinding_dns(host: str, p: int) -> list[str]:
            return next(answers)

        monkeypatch.setattr(net, "resolve", rebinding_dns)
        page = await fetch(f"http://rebind.example:{port}/", timeout=2, max_bytes=10_000, allow_loopback=True)
        assert page.text() == "<p>served locally</p>"


async def test_redirects_are_checked_hop_by_hop() -> None:
    routes = {
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-file": redirect("file:///etc/passwd"),
        "/to-dataset": redirect("https://huggingface.co/datasets/gaia-benchmark/GAIA/resolve/main/2023/validation/metadata.jsonl"),
        "/loop": redirect("/loop"),
        "/hop": redirect("/final", 301),
        "/final": Reply(200, "landed", "text/plain"),
    }
    with FakeWeb(routes) as site:
        ok = await fetch(f"{site.url}/hop", timeout=2, max_bytes=10_000, allow_loopback=True)
        assert ok.url.endswith("/final") and ok.text() == "landed"
        with pytest.raises(FetchError, match="link-local"):
            await fetch(f"{site.url}/to-metadata", timeout=2, max_bytes=10_000, allow_loopback=True)
        with pytest.raises(FetchError, match="only http and https"):
            await fetch(f"{site.url}/to-file", timeout=2, max_bytes=10_000, allow_loopback=True)
        with pytest.raises(FetchError, match="GAIA benchmark"):
            await fetch(f"{site.url}/to-dataset", timeout=2, max_bytes=10_000, allow_loopback=True)
        with pytest.raises(FetchError, match="more than 5 redirects"):
            await fetch(f"{site.url}/loop", timeout=2, max_bytes=10_000, allow_loopback=True)
        assert site.paths().count("/loop") == 6


async def test_timeouts_sizes_and_http_errors_are_one_line_errors() -> None:
    routes = {
        "/slow": Reply(200, "late", delay=3),
        "/declared-big": Reply(200, "x" * 50_000),
        "/streamed-big": Reply(200, stream_bytes=200_000),
        "/down": Reply(503, "<html><body><h1>Service Unavailable</h1></body></html>"),
        "/gone": Reply(404, "<html><body>Not here</body></html>"),
    }
    with FakeWeb(routes) as site:
        cases = {
            "/slow": "timed out after 0.5s",
            "/declared-big": "too large (50,000 bytes; the limit is 20,000)",
            "/streamed-big": "too large (more than 20,000 bytes)",
            "/down": "answered HTTP 503 Service Unavailable",
            "/gone": "answered HTTP 404 Not Found",
        }
        for path, expected in cases.items():
            timeout = 0.5 if path == "/slow" else 10  # only the slow case may time out, even on a busy machine
            with pytest.raises(FetchError) as err:
                await fetch(f"{site.url}{path}", timeout=timeout, max_bytes=20_000, allow_loopback=True)
            assert expected in str(err.value) and "\n" not in str(err.value)


async def test_nothing_listens_means_a_clear_connection_error() -> None:
    with pytest.raises(FetchError, match="cannot fetch"):
        await fetch("http://127.0.0.1:9/", timeout=2, max_bytes=10_000, allow_loopback=True)
