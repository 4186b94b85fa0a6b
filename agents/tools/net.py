"""Guarded HTTP for every tool that opens a URL: timeouts, a size cap, and an SSRF guard.

A model picks the URLs, and a page or a search result can be written by anyone, so a fetch must never reach
the machine's own network: not loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT or
multicast addresses, in any spelling (IPv4-mapped/compatible IPv6, 6to4, Teredo, NAT64, decimal hosts).

The check runs where it cannot be dodged: in the connection layer, on the address actually dialled. The host
is resolved once, every address is checked, and the socket connects to a checked address (so a DNS answer
that changes between check and connect, "DNS rebinding", gains nothing). Redirects are followed by hand so
each hop's URL is checked too (scheme, benchmark answer sources), and its connection goes through the same
layer. Proxy variables are ignored on purpose: through a proxy the dialled address could not be checked.

Loopback is allowed only with `allow_loopback` (tests serving fixtures on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from agents.tools.sources import blocked_source
from agents.tools.text import one_line

MAX_REDIRECTS = 5
# Sites that refuse unknown clients still serve a browser-like agent; the suffix says who we are.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Roundtable/0.1"
)
# Wikimedia and other APIs ask for an honest agent string.
API_USER_AGENT = "Roundtable/0.1 (GAIA research agent; python-httpx)"

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")


class FetchError(Exception):
    """A fetch failed or was refused. The message is one line meant for the agent."""


class _RefusedAddress(Exception):
    pass


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why connecting to `address` is refused ("a private address"), or None when it is a public one."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        candidates.insert(0, inner)  # the wrapped IPv4 address says best what is really reached
    for cand in candidates:
        if cand.is_loopback:
            if not allow_loopback:
                return "a loopback address"
            continue
        if cand.is_unspecified:
            return "an unspecified address"
        if cand.is_multicast:
            return "a multicast address"
        if cand.is_link_local:
            return "a link-local address (where cloud metadata services live)"
        if isinstance(cand, ipaddress.IPv4Address) and cand in _CGNAT:
            return "a carrier-grade NAT address"
        if cand.is_private:
            return "a private address"
        if cand.is_reserved or not cand.is_global:
            return "a non-public address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to (a module function so tests can stand in for DNS)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then dials a checked address."""

    def __init__(self, allow_loopback: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_loopback = allow_loopback

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(resolve(host, port), timeout)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve host {host!r}: {exc}") from None
        except asyncio.TimeoutError:
            raise FetchError(f"resolving {host!r} timed out") from None
        if not addresses:
            raise FetchError(f"host {host!r} has no address")
        for address in addresses:
            if (problem := address_problem(address, allow_loopback=self._allow_loopback)) is not None:
                raise _RefusedAddress(f"refused: {host} resolves to {address}, {problem}")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise _RefusedAddress("refused: unix sockets are never opened")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One verified TLS context for every fetch: loading the CA bundle costs more than a whole local request."""
    return httpx.create_ssl_context()


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, allow_loopback: bool) -> None:  # no super().__init__(): it would build a pool to discard
        # httpx's transport takes no network backend, but its pool is its only state, so we build the pool.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_tls(), network_backend=_GuardedBackend(allow_loopback), max_connections=20
        )


def check_url(url: str, *, allow_loopback: bool = False) -> httpx.URL:
    """Refuse what may not be fetched before any connection is made; returns the parsed URL."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"not a valid URL: {one_line(url, 120)!r} ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"refused: only http and https URLs can be read (got {parsed.scheme or 'no'} scheme)")
    if parsed.userinfo:
        raise FetchError("refused: URLs with a user name or password are not fetched")
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise FetchError(f"not a valid URL (no host): {one_line(url, 120)!r}")
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if literal:
        if (problem := address_problem(host, allow_loopback=allow_loopback)) is not None:
            raise FetchError(f"refused: {host} is {problem}")
    elif host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
        if not (allow_loopback and host == "localhost"):
            raise FetchError(f"refused: {host} is a local network name")
    if (reason := blocked_source(str(parsed))) is not None:
        raise FetchError(reason)
    return parsed


@dataclass
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str  # lower case, without parameters ("" when the server sent none)
    charset: str | None
    body: bytes
    headers: httpx.Headers

    def text(self) -> str:
        for encoding in (self.charset, "utf-8"):
            if encoding:
                try:
                    return self.body.decode(encoding)
                except (LookupError, UnicodeDecodeError):
                    continue
        return self.body.decode("cp1252", errors="replace")

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.text())
        except ValueError as exc:
            raise FetchError(f"{self.url} did not answer JSON ({exc}): {one_line(self.text(), 120)!r}") from None


def _content_type(headers: httpx.Headers) -> tuple[str, str | None]:
    raw = headers.get("content-type", "")
    kind, _, params = raw.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"' ").lower()
    return kind.strip().lower(), charset


async def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_loopback: bool = False,
    method: str = "GET",
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    data: Mapping[str, Any] | None = None,
    what: str | None = None,
) -> Fetched:
    """Fetch `url` under the guard. Raises FetchError (one line) on refusal, timeout, HTTP >= 400, size."""
    label = what or url
    try:
        return await asyncio.wait_for(
            _fetch(url, timeout, max_bytes, allow_loopback, method, params, headers, json, data, label), timeout
        )
    except asyncio.TimeoutError:
        raise FetchError(f"{label} timed out after {timeout:g}s") from None


async def _fetch(
    url: str,
    timeout: float,
    max_bytes: int,
    allow_loopback: bool,
    method: str,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    json_body: Any,
    data: Mapping[str, Any] | None,
    label: str,
) -> Fetched:
    current = check_url(url, allow_loopback=allow_loopback)
    base_headers = {"User-Agent": BROWSER_USER_AGENT, "Accept-Encoding": "gzip, deflate", **(headers or {})}
    async with httpx.AsyncClient(
        transport=_GuardedTransport(allow_loopback), timeout=httpx.Timeout(timeout), headers=base_headers, trust_env=False
    ) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                request = client.build_request(method, current, params=params, json=json_body, data=data)
                response = await client.send(request, stream=True)
            except _RefusedAddress as exc:
                raise FetchError(str(exc)) from None
            except httpx.TimeoutException:
                raise FetchError(f"{label} timed out after {timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"cannot fetch {label}: {one_line(f'{type(exc).__name__}: {exc}', 200)}") from None
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError(f"{label}: HTTP {response.status_code} redirect without a Location")
                    current = check_url(urljoin(str(current), location), allow_loopback=allow_loopback)
                    if response.status_code in (301, 302, 303):
                        method, json_body, data = "GET", None, None
                    params = None  # the Location already carries its own query
                    continue
                return await _read(response, str(current), max_bytes, label, timeout)
            finally:
                await response.aclose()
    raise FetchError(f"{label}: more than {MAX_REDIRECTS} redirects")


async def _read(response: httpx.Response, url: str, max_bytes: int, label: str, timeout: float) -> Fetched:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{label} is too large ({int(declared):,} bytes; the limit is {max_bytes:,})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:  # counts decoded bytes, so a compressed bomb stops here too
                raise FetchError(f"{label} is too large (more than {max_bytes:,} bytes)")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise FetchError(f"{label} timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"reading {label} failed: {one_line(f'{type(exc).__name__}: {exc}', 200)}") from None
    body = b"".join(chunks)
    kind, charset = _content_type(response.headers)
    if response.status_code >= 400:
        snippet = one_line(body.decode("utf-8", errors="replace"), 160)
        reason = response.reason_phrase or ""
        raise FetchError(f"{label} answered HTTP {response.status_code} {reason}".rstrip() + (f": {snippet}" if snippet else ""))
    return Fetched(url, response.status_code, kind, charset, body, response.headers)
