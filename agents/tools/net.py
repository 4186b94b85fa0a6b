"""Guarded HTTP for every tool that opens a URL: timeouts, a size cap, and an SSRF guard.

A model picks the URLs, and a page or a search result can be written by anyone, so a fetch must never reach
the machine's own network: not loopback, private, link-local, CGNAT, reserved or multicast addresses, and never
a cloud metadata or platform endpoint (169.254.169.254, Azure's wireserver 168.63.129.16, which is a public
address, Oracle's 192.0.0.192, AWS's fd00:ec2::254, ...), in any spelling (IPv4-mapped/compatible/translated
IPv6, 6to4, Teredo, NAT64 with the well-known or a local-use prefix, ISATAP, decimal hosts). The tables follow
pydantic-ai's `_ssrf.py`.

The check runs where it cannot be dodged: in the connection layer, on the address actually dialled. The host
is resolved once, every address is checked, and the socket connects to a checked address (so a DNS answer
that changes between check and connect, "DNS rebinding", gains nothing). Redirects are followed by hand so
each hop's URL is checked too (scheme, benchmark answer sources), and its connection goes through the same
layer. Proxy variables are ignored on purpose: through a proxy the dialled address could not be checked.

Bodies are capped while they are decoded, not after: the raw stream is read and inflated with zlib's
`max_length`, so a compression bomb (a megabyte that inflates to gigabytes) stops at the cap with bounded
memory. httpx's own decoders inflate each received chunk whole (64 KiB of gzip is 64 MiB out, and brotli or
zstd far more), so they are not used. Only gzip and deflate are accepted and decoded; a server that answers
with any other coding (br, zstd, compress, or two codings stacked) is refused, as pydantic-ai does.

Loopback is allowed only with `allow_loopback` (tests serving fixtures on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from agents.tools.errors import ToolError
from agents.tools.sources import blocked_source
from common.text import one_line

MAX_REDIRECTS = 5
# Sites that refuse unknown clients still serve a browser-like agent; the suffix says who we are.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Roundtable/0.1"
)
# Wikimedia and other APIs ask for an honest agent string.
API_USER_AGENT = "Roundtable/0.1 (GAIA research agent; python-httpx)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Refused on top of what `ipaddress` calls non-global: Python counts 192.0.0.9 and 192.0.0.10 of the IETF
# protocol block as global, but nothing a page may name lives there, and Oracle's metadata is 192.0.0.192.
_ALSO_REFUSED = (ipaddress.ip_network("192.0.0.0/24"),)
# Cloud metadata and credential endpoints, refused in every spelling. Most sit in ranges refused anyway, but
# Azure's wireserver is a public address: this table is the only thing between a page and it.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, Hetzner, OpenStack, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity
        "168.63.129.16",  # Azure wireserver (a public address)
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud Classic
        "169.254.42.42",  # Scaleway
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity over IPv6
        "fd20:ce::254",  # GCP, IPv6-only instances
        "fd00:42::42",  # Scaleway over IPv6
    )
)
# Where an IPv6 address may carry an IPv4 one (byte offsets in the 16 packed bytes), RFC 6052 and RFC 3056.
_NAT64_OFFSETS = {32: (4, 5, 6, 7), 40: (5, 6, 7, 9), 48: (6, 7, 9, 10), 56: (7, 9, 10, 11), 64: (9, 10, 11, 12)}
_LOW32 = (12, 13, 14, 15)
_SIXTOFOUR = (2, 3, 4, 5)
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, subnetted by the operator
_TEREDO = ipaddress.ip_network("2001::/32")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765
_ISATAP_IDS = (b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")


class FetchError(ToolError):
    """A fetch failed or was refused. The message is one line meant for the agent."""


class _RefusedAddress(Exception):
    pass


def _ipv4_at(ip: ipaddress.IPv6Address, offsets: tuple[int, ...]) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(bytes(ip.packed[i] for i in offsets))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> set[ipaddress.IPv4Address]:
    """The IPv4 addresses a transition mechanism delivers `ip` to (dual-stack hosts and translators do)."""
    found: set[ipaddress.IPv4Address] = set()
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        found.add(ip.ipv4_mapped)
    if ip in _IPV4_TRANSLATED:  # ::ffff:0:a.b.c.d
        found.add(_ipv4_at(ip, _LOW32))
    if ip.sixtofour is not None:  # 2002:aabb:ccdd::
        found.add(ip.sixtofour)
    if ip.teredo is not None:  # 2001:0:server:...:~client (the client is stored inverted)
        found.update(ip.teredo)
    if ip in _NAT64_WELL_KNOWN:
        found.add(_ipv4_at(ip, _LOW32))
    if ip in _NAT64_LOCAL_USE:
        found.update(_ipv4_at(ip, _NAT64_OFFSETS[n]) for n in (48, 56, 64))
        found.add(_ipv4_at(ip, _LOW32))
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        found.add(_ipv4_at(ip, _LOW32))
    if ip.packed[8:12] in _ISATAP_IDS:  # ...:0:5efe:a.b.c.d and ...:200:5efe:a.b.c.d
        found.add(_ipv4_at(ip, _LOW32))
    return found


def _metadata_spelling(ip: IPAddress) -> IPAddress | None:
    """The metadata endpoint `ip` names, in any spelling. Every embedding position is tried, not only the
    recognised prefixes (an operator's NAT64 prefix cannot be listed); the table is small enough that a
    public address matching by chance is not a concern."""
    if ip in _METADATA:
        return ip
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    spellings = {_ipv4_at(ip, o) for o in (*_NAT64_OFFSETS.values(), _LOW32, _SIXTOFOUR)} | _embedded_ipv4(ip)
    return next((a for a in spellings if a in _METADATA), None)


def _range_problem(ip: IPAddress, allow_loopback: bool) -> str | None:
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global or any(ip in net for net in _ALSO_REFUSED):
        return "a non-public address"
    return None


def address_problem(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why connecting to `address` is refused ("a private address"), or None when it is a public one."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if (endpoint := _metadata_spelling(ip)) is not None:
        # Most endpoints sit in a refused range, whose reason says more; Azure's wireserver is public.
        named = "" if endpoint == ip else f" ({endpoint})"
        return _range_problem(endpoint, False) or "a cloud metadata endpoint" + named
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        # The wrapped IPv4 address says best what is really reached; 0.0.0.0 only means "no address at that
        # offset" (a local-use NAT64 prefix is tried at several), and the wrapper itself is checked after.
        candidates[:0] = sorted(a for a in _embedded_ipv4(ip) if not a.is_unspecified)
    for cand in candidates:
        if (problem := _range_problem(cand, allow_loopback)) is not None:
            return problem
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


_PIECE = 64 * 1024  # the most one inflate call may produce


class _Inflater:
    """One gzip or deflate body, inflated piece by piece with zlib's `max_length`: however small the
    compressed piece, what comes out of one call never exceeds the room left under the cap."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._z: Any = zlib.decompressobj(zlib.MAX_WBITS | 16) if self._gzip else None
        self._head = b""  # deflate: the first bytes, until the two that tell zlib-wrapped from raw arrive

    def feed(self, data: bytes, body: bytearray, limit: int) -> None:
        """Inflate `data` onto `body`, stopping as soon as `body` holds more than `limit` bytes."""
        if self._z is None:  # RFC 9110 says deflate is zlib-wrapped; some servers send it raw
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        while data and len(body) <= limit:
            if self._z.eof:
                if not self._gzip:
                    break  # bytes after the end of a deflate stream mean nothing
                data = data.lstrip(b"\0")  # gzip allows padding, and members one after another
                if not data:
                    break
                self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
            # At most one byte past the limit (that tells "over" from "exactly full"), in pieces of at most
            # _PIECE, so no temporary copy of the body is ever made. (max_length 0 would mean "no limit".)
            body += self._z.decompress(data, min(limit + 1 - len(body), _PIECE))
            data = self._z.unconsumed_tail or self._z.unused_data

    def finish(self) -> bytes:
        if self._z is None:
            if self._head:
                raise zlib.error("the deflate body is cut short")
            return b""
        # Everything fed was consumed (feed stops early only past the cap), so only zlib's few pending bytes remain.
        rest = self._z.flush()
        if not self._z.eof:
            raise zlib.error(f"the {'gzip' if self._gzip else 'deflate'} body is cut short")
        return rest


def _codings(headers: httpx.Headers) -> list[str]:
    found = []
    for value in headers.get_list("content-encoding"):
        found += [c for part in value.split(",") if (c := part.strip().lower()) and c != "identity"]
    return found


async def _read(response: httpx.Response, url: str, max_bytes: int, label: str, timeout: float) -> Fetched:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{label} is too large ({int(declared):,} bytes; the limit is {max_bytes:,})")
    codings = _codings(response.headers)
    if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
        raise FetchError(f"refused: {label} is compressed as {', '.join(codings)}; only gzip and deflate are accepted")
    inflater = _Inflater(codings[0]) if codings else None
    too_large = FetchError(
        f"{label} is too large (more than {max_bytes:,} bytes{' once decompressed' if inflater else ''})"
    )
    body = bytearray()
    received = 0
    try:
        async for raw in response.aiter_raw():  # raw: httpx's decoders would inflate each piece whole
            received += len(raw)
            if received > max_bytes:  # the compressed stream counts too: no slow drip of a huge body
                raise too_large
            if inflater:
                inflater.feed(raw, body, max_bytes)
            else:
                body += raw
            if len(body) > max_bytes:
                raise too_large
        if inflater:
            body += inflater.finish()
    except httpx.TimeoutException:
        raise FetchError(f"{label} timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"reading {label} failed: {one_line(f'{type(exc).__name__}: {exc}', 200)}") from None
    except zlib.error as exc:
        raise FetchError(f"reading {label} failed: its compressed body is broken ({exc})") from None
    if len(body) > max_bytes:
        raise too_large
    kind, charset = _content_type(response.headers)
    if response.status_code >= 400:
        snippet = one_line(body.decode("utf-8", errors="replace"), 160)
        reason = response.reason_phrase or ""
        raise FetchError(f"{label} answered HTTP {response.status_code} {reason}".rstrip() + (f": {snippet}" if snippet else ""))
    return Fetched(url, response.status_code, kind, charset, bytes(body), _decoded_headers(response.headers))


def _decoded_headers(headers: httpx.Headers) -> httpx.Headers:
    """The headers as they describe the decoded body (no coding, no length of the compressed one)."""
    return httpx.Headers([(k, v) for k, v in headers.multi_items() if k.lower() not in ("content-encoding", "content-length")])
