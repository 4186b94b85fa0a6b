"""Files of stored chats on the local disk: Chainlit's storage client for the history's elements.

Chainlit 2.12's SQLAlchemy data layer keeps an element (an uploaded attachment, a chart) only through a
`BaseStorageClient`, and ships S3/GCS/Azure ones only; without one a resumed thread has lost its files.
`LocalFileStore` keeps them under one root directory and serves them through a route on Chainlit's app.

- **Keys never become paths.** Chainlit's object key is `<user id>/<element id>/<element name>` and the name is
  whatever the user called the file (`../../x`, markup, NUL bytes, very long). A file is stored as
  `<root>/<d[:2]>/<d>` with `d = sha256(key)`; a sidecar `<d>.json` keeps the key (for the name shown in a
  download), so nothing of the name reaches the file system.
- **Read URLs are signed and expire**, like S3's presigned URLs: `/history-files/<d>?exp=<unix time>&sig=<hmac>`,
  the HMAC-SHA256 of `<d>.<exp>` under a key derived from CHAINLIT_AUTH_SECRET. Chainlit hands them only to the
  thread's author (it checks authorship before it reads a thread); a forged, altered or expired URL gets 403.
- **Never rendered as a page.** Every answer has `nosniff` and a CSP of `default-src 'none'; sandbox`. A PNG,
  JPEG, GIF or WebP (by its declared type and its first bytes both) is served inline as that image so
  `cl.Image` shows; anything else, SVG and HTML included, is `application/octet-stream` as an attachment.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chainlit.data.storage_clients.base import BaseStorageClient
from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response

ROUTE = "/history-files"
URL_TTL_S = 3600
DEFAULT_MAX_MB = 100  # when Chainlit's features.spontaneous_file_upload.max_size_mb cannot be read
SECRET_ENV = "CHAINLIT_AUTH_SECRET"
_KEY_CONTEXT = b"roundtable history files v1"  # the JWT key signs logins; this derived key signs read URLs only
_HEX64 = re.compile(r"[0-9a-f]{64}")  # a digest, a signature
_EXP = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() would pass "²", which int() refuses
_RASTER = {  # the image types that may be shown inline: never svg (script) or anything a browser renders as a page
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),  # and "WEBP" at offset 8, checked below
}
NAME_MAX = 200  # characters of the original name kept for a download's file name
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",  # a deleted thread's files must not live on in a cache
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


class FileStoreError(ValueError):
    """A file the store refuses (too large, a bad key) or a store that cannot work (no secret)."""


def upload_limit_bytes() -> int:
    """Chainlit's own upload limit (config.toml), so a stored chat keeps every file the chat accepted."""
    try:
        from chainlit.config import config

        upload = config.features.spontaneous_file_upload
        mb = upload.max_size_mb if upload is not None and upload.max_size_mb else DEFAULT_MAX_MB
    except Exception:  # no readable config (a test, another app root): the documented default
        mb = DEFAULT_MAX_MB
    return int(mb) * 1024 * 1024


def digest(object_key: str) -> str:
    return hashlib.sha256(object_key.encode("utf-8", "surrogatepass")).hexdigest()


def display_name(object_key: str) -> str:
    """The file name as the user gave it (the key's part after `<user id>/<element id>/`), made harmless for
    a header: no control characters or path separators, at most NAME_MAX characters."""
    parts = object_key.split("/", 2)
    name = parts[2] if len(parts) == 3 else parts[-1]
    name = "".join("_" if unicodedata.category(c).startswith("C") or c in "/\\" else c for c in name).strip()
    return name[:NAME_MAX] or "file"


def content_disposition(name: str, inline: bool = False) -> str:
    """RFC 6266 with RFC 5987's `filename*` for the real name, and a plain ASCII fallback for old clients."""
    fallback = re.sub(r'[^A-Za-z0-9._ ()+,=@-]', "_", unicodedata.normalize("NFKD", name)).strip() or "file"
    return f"{'inline' if inline else 'attachment'}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def sniff_raster(declared: str, head: bytes) -> str | None:
    """The image type to serve inline, only when the declared type and the file's first bytes agree."""
    declared = declared.split(";", 1)[0].strip().lower()
    if declared == "image/jpg":
        declared = "image/jpeg"
    magics = _RASTER.get(declared)
    if magics is None or not head.startswith(magics):
        return None
    if declared == "image/webp" and head[8:12] != b"WEBP":
        return None
    return declared


@dataclass(frozen=True)
class Stored:
    path: Path
    key: str
    mime: str


class LocalFileStore(BaseStorageClient):
    """Chainlit's storage client on a local directory (see the module's doc)."""

    def __init__(self, root: Path, secret: str | None = None, *, url_prefix: str = "", ttl_s: int = URL_TTL_S,
                 max_bytes: int | None = None, clock: Any = time.time) -> None:
        secret = secret if secret is not None else os.environ.get(SECRET_ENV)
        if not secret:
            raise FileStoreError(f"{SECRET_ENV} is not set: the history's files cannot be served without it "
                                 "(it signs their read URLs)")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = hmac.new(secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()
        self.url_prefix = url_prefix.rstrip("/")
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes if max_bytes is not None else upload_limit_bytes()
        self._clock = clock

    # --- where a key lives ----------------------------------------------------------------------------------
    def _paths(self, d: str) -> tuple[Path, Path]:
        folder = self.root / d[:2]
        return folder / d, folder / f"{d}.json"

    def path_of(self, object_key: str) -> Path:
        return self._paths(digest(object_key))[0]

    # --- BaseStorageClient ----------------------------------------------------------------------------------
    async def upload_file(self, object_key: str, data: bytes | str, mime: str = "application/octet-stream",
                          overwrite: bool = True, content_disposition: str | None = None) -> dict[str, Any]:
        if not isinstance(object_key, str) or not object_key:
            raise FileStoreError("a stored file needs a non-empty object key")
        body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if len(body) > self.max_bytes:
            raise FileStoreError(f"{display_name(object_key)!r} is {len(body) / 1e6:.1f} MB: the history keeps files "
                                 f"up to {self.max_bytes / 1e6:.0f} MB (features.spontaneous_file_upload.max_size_mb)")
        await asyncio.to_thread(self._write, object_key, body, mime or "application/octet-stream", overwrite)
        return {"object_key": object_key, "url": await self.get_read_url(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        return await asyncio.to_thread(self._delete, object_key)

    async def get_read_url(self, object_key: str) -> str:
        d = digest(object_key)
        exp = int(self._clock()) + self.ttl_s
        return f"{self.url_prefix}{ROUTE}/{d}?exp={exp}&sig={self.sign(d, exp)}"

    async def close(self) -> None:
        return None

    # --- signatures -----------------------------------------------------------------------------------------
    def sign(self, d: str, exp: int) -> str:
        return hmac.new(self._key, f"{d}.{exp}".encode(), hashlib.sha256).hexdigest()

    def verify(self, d: str, exp: str, sig: str) -> bool:
        if not (_HEX64.fullmatch(d) and _HEX64.fullmatch(sig) and _EXP.fullmatch(exp)):
            return False
        if not hmac.compare_digest(self.sign(d, int(exp)), sig):
            return False
        return int(exp) >= self._clock()

    def lookup(self, d: str) -> Stored | None:
        """The stored file of a digest already checked by `verify` (so it is 64 hex digits)."""
        path, meta = self._paths(d)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not path.is_file():
            return None
        return Stored(path, str(info.get("key", "")), str(info.get("mime", "")))

    # --- the disk -------------------------------------------------------------------------------------------
    def _write(self, object_key: str, body: bytes, mime: str, overwrite: bool) -> None:
        path, meta = self._paths(digest(object_key))
        if not overwrite and path.exists():
            raise FileStoreError(f"{display_name(object_key)!r} is already stored")
        path.parent.mkdir(parents=True, exist_ok=True)
        # the data first, then its sidecar: a reader finds a file only once both are whole
        _atomic_write(path, body)
        _atomic_write(meta, json.dumps({"key": object_key, "mime": mime, "size": len(body)}).encode())

    def _delete(self, object_key: str) -> bool:
        path, meta = self._paths(digest(object_key))
        existed = path.exists()
        for p in (meta, path):  # the sidecar first: a half-deleted file is then no longer served
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        with contextlib.suppress(OSError):  # not empty (another file shares the folder): keep it
            path.parent.rmdir()
        return existed


def _atomic_write(path: Path, body: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- the route ----------------------------------------------------------------------------------------------
def _refuse(status: int, text: str) -> Response:
    return PlainTextResponse(text, status_code=status, headers=SECURITY_HEADERS)


def serve(store: LocalFileStore, d: str, exp: str, sig: str) -> Response:
    if not store.verify(d, exp, sig):
        return _refuse(403, "this link is not valid or has expired: reopen the chat for a fresh one\n")
    stored = store.lookup(d)
    if stored is None:
        return _refuse(404, "this file is no longer stored\n")
    with open(stored.path, "rb") as f:
        head = f.read(16)
    image = sniff_raster(stored.mime, head)
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = content_disposition(display_name(stored.key), inline=image is not None)
    return FileResponse(stored.path, media_type=image or "application/octet-stream", headers=headers)


def mount(store: LocalFileStore, app: FastAPI | None = None, root_path: str = "") -> None:
    """Serve `store` at `<root_path>/history-files/<digest>` on `app` (Chainlit's by default), ahead of
    Chainlit's catch-all `/{full_path:path}`, which would otherwise answer with its page. Mounting again
    replaces the route, so the newest store is the one served."""
    if app is None:
        from chainlit.server import app as chainlit_app

        app = chainlit_app
    path = f"{root_path.rstrip('/')}{ROUTE}/{{d}}"

    async def history_file(d: str, exp: str = "", sig: str = "") -> Response:
        return await asyncio.to_thread(serve, store, d, exp, sig)

    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != path]
    app.add_api_route(path, history_file, methods=["GET"], include_in_schema=False)
    # first of all: Chainlit's router (and its catch-all in it) may be one entry of the list, not found by path
    app.router.routes.insert(0, app.router.routes.pop())


def install(root: Path) -> LocalFileStore:
    """The store for the app's history, served on Chainlit's app under its root path."""
    from chainlit.config import config

    root_path = config.run.root_path or ""
    store = LocalFileStore(root, url_prefix=os.environ.get("CHAINLIT_PARENT_ROOT_PATH", "") + root_path)
    mount(store, root_path=root_path)
    return store
