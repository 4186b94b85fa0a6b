"""A local HTTP proxy that puts every connection yt-dlp makes under the URL policy of `agents/tools/net.py`.

yt-dlp does its own HTTP (the page, the extractor's API calls, each redirect, every format, HLS/DASH segment
URL), so checking the URL we hand it is not enough. `watch_video` starts one `PolicyProxy` per call on
127.0.0.1 and runs yt-dlp with `--proxy` pointing at it. For each request the proxy:

- refuses what `net.check_url` refuses (schemes, user names in URLs, local names, literal private addresses,
  benchmark answer sources; for HTTPS only the host can be seen, so the path-level source rules cannot apply);
- resolves the host once, refuses it if any address is not public (`net.address_problem`, loopback only with
  `allow_loopback`), and dials the checked address itself, so DNS rebinding gains nothing;
- counts the bytes it relays back and cuts every connection once they pass `max_bytes` (a download with no
  Content-Length cannot outgrow the size cap);
- records each refusal, so the tool can say which URL was refused and why.

With an upstream proxy (the YTDLP_PROXY setting, for hosts YouTube refuses), connections are forwarded to it
(CONNECT for HTTPS, absolute-form requests for HTTP, `Proxy-Authorization` from the proxy URL's user and
password). The target's name is still checked; its addresses are checked when this machine can resolve it
(otherwise only the upstream proxy can, and it is the operator's choice of network).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from loguru import logger

from agents.tools import net
from agents.tools.net import FetchError, address_problem, check_url
from common.text import one_line

_HEAD_LIMIT = 64 * 1024
_PIECE = 64 * 1024
_HOP_HEADERS = ("proxy-connection", "proxy-authorization", "connection", "keep-alive")


class PolicyProxy:
    """`async with PolicyProxy(...) as proxy:` then give yt-dlp `--proxy proxy.url`."""

    def __init__(
        self,
        *,
        allow_loopback: bool,
        max_bytes: int,
        timeout: float,
        upstream: str | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.upstream = _parse_upstream(upstream) if upstream else None
        self.refusals: list[str] = []  # one line per refused request, in order
        self.received = 0  # bytes relayed back to the client, all connections together
        self.over_cap = False
        self.requests: list[str] = []  # "CONNECT host:port" or "GET http://..." (shortened), for diagnostics
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> PolicyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # --- one client connection ------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        except Exception as exc:  # a bug must cost one connection, never the proxy (yt-dlp then reports the failure)
            logger.warning("video proxy: {}: {}", type(exc).__name__, one_line(str(exc), 200))
        finally:
            self._writers.discard(writer)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _answer(writer, 400, "a malformed request line")
            return
        method, target, version = parts
        headers = [line for line in lines[1:] if line]
        self.requests.append(one_line(f"{method} {target}", 200))
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
            if not host or not port_text.isdigit():
                await _answer(writer, 400, f"a malformed CONNECT target {target!r}")
                return
            port = int(port_text)
            shown = f"https://{host}" + ("" if port == 443 else f":{port}") + "/"
            address = await self._check(shown, host, port, writer)
            if address is None:
                return
            upstream = await self._open(address, host, port, writer, connect=True)
            if upstream is None:
                return
            up_reader, up_writer = upstream
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._relay(reader, writer, up_reader, up_writer)
            return
        split = urlsplit(target)
        if split.scheme != "http" or not split.hostname:
            await _answer(writer, 400, f"only absolute http:// URLs and CONNECT are proxied (got {one_line(target, 80)!r})")
            return
        port = split.port or 80
        address = await self._check(target, split.hostname, port, writer)
        if address is None:
            return
        upstream = await self._open(address, split.hostname, port, writer, connect=False)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
        if self.upstream is not None:
            line = f"{method} {target} {version}"  # the upstream proxy wants the absolute form
            if self.upstream.auth:
                kept.append(f"Proxy-Authorization: Basic {self.upstream.auth}")
        else:
            path = split.path or "/"
            line = f"{method} {path}{'?' + split.query if split.query else ''} {version}"
        # One request per connection: the next request may be for another host. The server is asked to close, and
        # the client is told the connection closes (else it would send its next request on a closed connection).
        request = "\r\n".join([line, *kept, "Connection: close", "", ""]).encode("latin-1")
        up_writer.write(request)
        await up_writer.drain()
        try:
            answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), self.timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            up_writer.close()
            await _answer(writer, 502, f"{split.hostname} sent no valid answer ({type(exc).__name__})")
            return
        head_lines = [h for h in answer.decode("latin-1").split("\r\n") if h]
        kept_head = [head_lines[0]] + [h for h in head_lines[1:] if h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
        head = "\r\n".join([*kept_head, "Connection: close", "", ""]).encode("latin-1")
        self.received += len(head)
        writer.write(head)
        await writer.drain()
        await self._relay(reader, writer, up_reader, up_writer)

    async def _check(self, url: str, host: str, port: int, writer: asyncio.StreamWriter) -> str | None:
        """The address to dial, or None after answering 403 with the reason (recorded in `refusals`)."""
        try:
            check_url(url, allow_loopback=self.allow_loopback)
        except FetchError as exc:
            return await self._refuse(writer, str(exc))
        try:
            addresses = await asyncio.wait_for(net.resolve(host, port), self.timeout)
        except (socket.gaierror, UnicodeError, TimeoutError, OSError) as exc:
            if self.upstream is not None:
                return host  # only the upstream proxy can resolve it
            await _answer(writer, 502, f"cannot resolve host {host!r}: {exc}")
            return None
        if not addresses:
            await _answer(writer, 502, f"host {host!r} has no address")
            return None
        for address in addresses:
            if (problem := address_problem(address, allow_loopback=self.allow_loopback)) is not None:
                return await self._refuse(writer, f"refused: {host} resolves to {address}, {problem}")
        return addresses[0]

    async def _refuse(self, writer: asyncio.StreamWriter, reason: str) -> str | None:
        """Answer 403 with `reason`; None, the address `_check` returns for a refusal."""
        self.refusals.append(one_line(reason, 300))
        await _answer(writer, 403, reason)
        return None

    async def _open(
        self, address: str, host: str, port: int, writer: asyncio.StreamWriter, *, connect: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            if self.upstream is None:
                return await asyncio.wait_for(asyncio.open_connection(address, port), self.timeout)
            up = self.upstream
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(up.host, up.port), self.timeout)
            if connect:
                auth = f"Proxy-Authorization: Basic {up.auth}\r\n" if up.auth else ""
                up_writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode("latin-1"))
                await up_writer.drain()
                answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), self.timeout)
                status = answer.split(b" ", 2)[1:2]
                if status != [b"200"]:
                    up_writer.close()
                    first = one_line(answer.decode("latin-1").split("\r\n")[0], 120)
                    await _answer(writer, 502, f"the upstream proxy refused CONNECT {host}:{port}: {first}")
                    return None
            return up_reader, up_writer
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            via = " through the upstream proxy" if self.upstream else ""
            await _answer(writer, 502, f"cannot connect to {host}:{port}{via}: {type(exc).__name__}: {exc}")
            return None

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        self._writers.add(up_writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(_PIECE):
                    if count:
                        self.received += len(data)
                        if self.received > self.max_bytes:
                            self.over_cap = True
                            break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if count or src is reader:
                    # The server finished (or the cap hit): close both ways. The client finishing sending
                    # only half-closes towards the server.
                    with contextlib.suppress(OSError, RuntimeError):
                        if count:
                            dst.close()
                            up_writer.close()
                        elif dst.can_write_eof():
                            dst.write_eof()

        try:
            await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()


def check_upstream(url: str | None) -> None:
    """Raises ValueError when `url` (YTDLP_PROXY) is not an HTTP proxy URL."""
    if url:
        _parse_upstream(url)


class _Upstream:
    def __init__(self, host: str, port: int, auth: str | None) -> None:
        self.host, self.port, self.auth = host, port, auth


def _parse_upstream(url: str) -> _Upstream:
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"YTDLP_PROXY must be an http:// proxy URL (got {parts.scheme or 'no'} scheme)")
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = base64.b64encode(pair.encode()).decode()
    return _Upstream(parts.hostname, parts.port or 80, auth)


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    text = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
    body = (one_line(reason, 300) + "\n").encode("utf-8")
    writer.write(
        f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\nX-Roundtable-Refused: {'1' if status == 403 else '0'}\r\n\r\n".encode("latin-1") + body
    )
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
