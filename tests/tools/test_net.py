"""The guarded fetch under every web tool: what it refuses, where it checks, and how it fails."""

from __future__ import annotations

import asyncio
import functools
import gzip
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable

import pytest

from agents.tools import net
from agents.tools.net import FetchError, address_problem, fetch
from tests.fakes.web import FakeWeb, Reply, redirect
from tests.tools.conftest import call, tool_settings


@pytest.mark.parametrize(
    "address, problem",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("169.254.1.1", "link-local"),
        ("100.100.100.200", "carrier-grade NAT"),
        ("100.64.3.4", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 spelling of 169.254.169.254
        ("2002:0a00:0001::", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b:1:a00:0:100::", "private"),  # local-use NAT64 (RFC 8215, a /48 prefix) wrapping 10.0.0.1
        ("2606:4700::200:5efe:a00:1", "private"),  # ISATAP wrapping 10.0.0.1 under a public prefix
        ("::ffff:0:a00:1", "private"),  # IPv4-translated (RFC 2765) 10.0.0.1
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("240.0.0.1", "private"),  # reserved
        ("255.255.255.255", "private"),
        ("198.18.0.1", "private"),  # benchmarking
        ("ff02::1", "multicast"),
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


# The endpoints a page must never make us read: the clouds' metadata and platform services (Azure's wireserver
# is a public address) and the IETF protocol block 192.0.0.0/24 (Python calls 192.0.0.9 and .10 global).
METADATA_V4 = ["169.254.169.254", "168.63.129.16", "192.0.0.192", "100.100.100.200", "169.254.170.2"]
METADATA_V6 = ["fd00:ec2::254", "fd20:ce::254"]


def spellings(v4: str) -> list[str]:
    """`v4` as the IPv6 forms that dual-stack hosts and translators deliver to it."""
    a, b, c, d = (int(x) for x in v4.split("."))
    hi, lo = f"{a << 8 | b:x}", f"{c << 8 | d:x}"
    return [
        v4,
        f"::ffff:{v4}",  # IPv4-mapped
        f"::{v4}",  # IPv4-compatible
        f"::ffff:0:{v4}",  # IPv4-translated
        f"64:ff9b::{v4}",  # NAT64, well-known prefix
        f"64:ff9b:1:{hi}:{c:x}:{d:x}00::",  # NAT64, local-use /48 prefix (the u octet skipped)
        f"2002:{hi}:{lo}::",  # 6to4
        f"2606:4700::200:5efe:{hi}:{lo}",  # ISATAP under a public prefix
    ]


@pytest.mark.parametrize("address", [s for a in METADATA_V4 for s in spellings(a)] + METADATA_V6)
def test_cloud_metadata_endpoints_are_refused_in_every_spelling_even_with_loopback_allowed(address: str) -> None:
    for allow_loopback in (False, True):
        found = address_problem(address, allow_loopback=allow_loopback)
        assert found is not None, address
        if address.endswith(("168.63.129.16", "a83f:8110::", "a83f:8110")):  # a public address: only the table knows it
            assert found.startswith("a cloud metadata endpoint"), (address, found)


@pytest.mark.parametrize("address", [s for a in ("192.0.0.9", "192.0.0.10", "192.0.0.255") for s in spellings(a)])
def test_the_whole_ietf_protocol_block_192_0_0_0_24_is_refused(address: str) -> None:
    found = address_problem(address)
    assert found is not None, address
    if "." in address and ":" not in address:
        assert found == "a non-public address"


@pytest.mark.parametrize("address", ["168.63.129.15", "168.63.129.17", "192.0.1.1", "192.0.3.4", "2606:4700::6810:85e5"])
def test_the_public_neighbours_of_refused_endpoints_stay_readable(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize("address", ["168.63.129.16", "::ffff:168.63.129.16", "192.0.0.192", "192.0.0.9", "fd00:ec2::254",
                                     "64:ff9b::a9fe:a9fe"])
async def test_a_name_that_resolves_to_a_metadata_endpoint_is_refused_before_dialling(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    async def fake_dns(host: str, port: int) -> list[str]:
        return [address] if host == "assets.example" else []

    monkeypatch.setattr(net, "resolve", fake_dns)
    with pytest.raises(FetchError) as err:
        await fetch("http://assets.example/logo.png", timeout=2, max_bytes=10_000, allow_loopback=True)
    assert f"assets.example resolves to {address}, a " in str(err.value)
    assert str(err.value).endswith(EXPECTED_REASON[address])


EXPECTED_REASON = {
    "168.63.129.16": "a cloud metadata endpoint",
    "::ffff:168.63.129.16": "a cloud metadata endpoint (168.63.129.16)",
    "192.0.0.192": "a non-public address",
    "192.0.0.9": "a non-public address",
    "fd00:ec2::254": "a private address",
    "64:ff9b::a9fe:a9fe": "a link-local address (where cloud metadata services live)",
}


@pytest.mark.parametrize(
    "url, words",
    [
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.org/", "only http and https"),
        ("http://user:secret@example.org/", "user name or password"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://168.63.129.16/machine?comp=goalstate", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "private"),
        ("http://[::ffff:168.63.129.16]/", "cloud metadata"),
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


# --- compressed bodies: capped while they are inflated ------------------------------------------------------
BOMB_CAP = 2_000_000
_MIB = 1 << 20


@functools.cache
def _compressed_zeros(wbits: int, mib: int) -> bytes:
    """`mib` MiB of zeros compressed as gzip (wbits 31), zlib (15) or raw deflate (-15): about 1 KiB per MiB."""
    z = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(_MIB)
    return b"".join([z.compress(block) for _ in range(mib)] + [z.flush()])


def _bombs() -> dict[str, tuple[bytes, str, int]]:
    """path -> (body, Content-Encoding, inflated size). The gzip bomb is 16 members (RFC 1952 allows a
    sequence): about 1 MB on the wire that inflates to 1 GiB."""
    gzip_member = _compressed_zeros(31, 64)
    return {
        "/gzip-bomb": (gzip_member * 16, "gzip", 16 * 64 * _MIB),
        "/deflate-bomb": (_compressed_zeros(15, 64), "deflate", 64 * _MIB),
        "/raw-deflate-bomb": (_compressed_zeros(-15, 64), "deflate", 64 * _MIB),
    }


def _peak_bytes_while(coro_factory: Callable[[], Awaitable[object]]) -> tuple[int, BaseException | None]:
    """Peak Python heap use (tracemalloc) while the coroutine runs on a fresh loop."""
    error: BaseException | None = None
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        asyncio.run(coro_factory())  # type: ignore[arg-type]
    except BaseException as exc:  # noqa: BLE001  (the caller asserts on it)
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize("path", ["/gzip-bomb", "/deflate-bomb", "/raw-deflate-bomb"])
def test_a_compression_bomb_stops_at_the_cap_with_bounded_memory(path: str) -> None:
    body, coding, inflated = _bombs()[path]
    assert len(body) < BOMB_CAP < inflated // 30  # small on the wire, far over the cap once inflated
    with FakeWeb({path: Reply(200, body, "text/html", headers={"Content-Encoding": coding})}) as site:
        peak, error = _peak_bytes_while(
            lambda: fetch(f"{site.url}{path}", timeout=30, max_bytes=BOMB_CAP, allow_loopback=True)
        )
    assert isinstance(error, FetchError), error
    assert f"too large (more than {BOMB_CAP:,} bytes once decompressed)" in str(error)
    # The body may hold the cap and a read chunk; inflating a whole 64 KiB chunk at once would be 64 MiB.
    assert peak < 3 * BOMB_CAP, f"peak {peak:,} bytes while refusing a {inflated:,}-byte bomb"


async def test_read_page_refuses_a_gzip_bomb_naming_the_cap(make_ctx) -> None:  # type: ignore[no-untyped-def]
    body, coding, _ = _bombs()["/gzip-bomb"]
    with FakeWeb({"/bomb": Reply(200, body, "text/html", headers={"Content-Encoding": coding})}) as site:
        out = await call(make_ctx(tool_settings(WEB_MAX_BYTES=BOMB_CAP, WEB_TIMEOUT=30)), "read_page", url=f"{site.url}/bomb")
    assert out.startswith("Error: ") and f"too large (more than {BOMB_CAP:,} bytes once decompressed)" in out


async def test_compressed_pages_within_the_cap_decode_whole() -> None:
    page = ("<p>" + "Mossy river, Larkwater and Brindle. " * 3000 + "</p>").encode()
    members = gzip.compress(page[:50_000]) + gzip.compress(page[50_000:])  # two gzip members, one body
    routes = {
        "/gzip": Reply(200, gzip.compress(page), "text/html", headers={"Content-Encoding": "gzip"}),
        "/members": Reply(200, members, "text/html", headers={"Content-Encoding": "gzip"}),
        "/zlib": Reply(200, zlib.compress(page), "text/html", headers={"Content-Encoding": "deflate"}),
        "/raw": Reply(200, _deflate_raw(page), "text/html", headers={"Content-Encoding": "deflate"}),
        "/exact": Reply(200, gzip.compress(page[:20_000]), "text/html", headers={"Content-Encoding": "x-gzip"}),
    }
    with FakeWeb(routes) as site:
        for path in ("/gzip", "/members", "/zlib", "/raw"):
            got = await fetch(f"{site.url}{path}", timeout=10, max_bytes=len(page), allow_loopback=True)
            assert got.body == page, path
            assert "content-encoding" not in got.headers  # the headers describe the decoded body
        exact = await fetch(f"{site.url}/exact", timeout=10, max_bytes=20_000, allow_loopback=True)
        assert exact.body == page[:20_000]  # exactly the cap is allowed
        with pytest.raises(FetchError, match="more than 19,999 bytes once decompressed"):
            await fetch(f"{site.url}/exact", timeout=10, max_bytes=19_999, allow_loopback=True)


def _deflate_raw(data: bytes) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


async def test_codings_that_cannot_be_capped_while_decoding_and_broken_bodies_are_clear_errors() -> None:
    page = gzip.compress(b"<p>hello</p>" * 100)
    routes = {
        "/br": Reply(200, b"\x1b\x03\x00\xf8\xa5\x00\x00", "text/html", headers={"Content-Encoding": "br"}),
        "/zstd": Reply(200, b"\x28\xb5\x2f\xfd\x00\x58\x00\x00", "text/html", headers={"Content-Encoding": "zstd"}),
        "/stacked": Reply(200, gzip.compress(page), "text/html", headers={"Content-Encoding": "gzip, gzip"}),
        "/cut": Reply(200, page[: len(page) // 2], "text/html", headers={"Content-Encoding": "gzip"}),
        "/garbage": Reply(200, b"this is not gzip at all", "text/html", headers={"Content-Encoding": "gzip"}),
    }
    cases = {
        "/br": "compressed as br; only gzip and deflate are accepted",
        "/zstd": "compressed as zstd; only gzip and deflate are accepted",
        "/stacked": "compressed as gzip, gzip; only gzip and deflate are accepted",
        "/cut": "compressed body is broken (the gzip body is cut short)",
        "/garbage": "compressed body is broken",
    }
    with FakeWeb(routes) as site:
        for path, expected in cases.items():
            with pytest.raises(FetchError) as err:
                await fetch(f"{site.url}{path}", timeout=10, max_bytes=100_000, allow_loopback=True)
            assert expected in str(err.value) and "\n" not in str(err.value), (path, str(err.value))
        assert all(r.headers.get("accept-encoding") == "gzip, deflate" for r in site.requests)  # br/zstd never offered
