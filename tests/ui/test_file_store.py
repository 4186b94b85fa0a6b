"""The history's file store (ui/file_store.py): what a user uploads comes back byte for byte through a signed,
expiring link; a forged, borrowed or expired link is refused; a hostile file name reaches neither the disk nor a
header unharmed-looking; a page or an SVG is never served as something the browser renders; deleting a file
(or its thread) removes it from disk."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from chainlit.user import User
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ui import file_store, history
from ui.file_store import FileStoreError, LocalFileStore

SECRET = "test-secret-" + "x" * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
CSV = b"item,amount\napples,120\npears,35\n"
HOSTILE = [
    "../../escaped.csv",
    "../../../../../../tmp/escaped.csv",
    "<img src=x onerror=alert(2)>.csv",
    "✓.csv",
    "a\x00b.csv",
    "quote\".csv\r\nSet-Cookie: x=1",
    "..\\..\\win.csv",
    "/etc/passwd",
    "\u202egpj.exe",
    "long-" + "n" * 5000 + ".csv",
]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> LocalFileStore:
    return LocalFileStore(tmp_path / "root", SECRET, clock=clock, max_bytes=1024 * 1024)


@pytest.fixture
def client(store: LocalFileStore) -> TestClient:
    api = FastAPI()

    @api.get("/{full_path:path}")  # Chainlit's catch-all: the route must be served ahead of it
    async def spa(full_path: str) -> Any:
        from fastapi.responses import HTMLResponse

        return HTMLResponse("<html>the app's page</html>")

    file_store.mount(store, api)
    return TestClient(api)


def key(name: str, user: str = "u-1") -> str:
    return f"{user}/{uuid.uuid4()}/{name}"


def upload(store: LocalFileStore, object_key: str, data: bytes, mime: str = "text/csv") -> str:
    return str(asyncio.run(store.upload_file(object_key, data, mime=mime))["url"])


def url_of(store: LocalFileStore, object_key: str) -> str:
    return asyncio.run(store.get_read_url(object_key))


def served(store: LocalFileStore, client: TestClient, name: str, data: bytes, mime: str) -> Any:
    """Upload `data` as `name`, fetch it through a fresh signed link: the response (the same bytes, 200)."""
    k = key(name)
    upload(store, k, data, mime=mime)
    r = client.get(url_of(store, k))
    assert r.status_code == 200 and r.content == data
    return r


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


def test_an_uploaded_file_comes_back_byte_for_byte_through_its_signed_link(store: LocalFileStore, client: TestClient) -> None:
    r = served(store, client, "sales.csv", CSV, "text/csv")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert r.headers["content-disposition"] == "attachment; filename=\"sales.csv\"; filename*=UTF-8''sales.csv"
    # a text upload (Chainlit passes str for some elements) is stored as UTF-8
    k2 = key("note.txt")
    asyncio.run(store.upload_file(k2, "grüße", mime="text/plain"))
    assert client.get(url_of(store, k2)).content == "grüße".encode()


def test_a_tampered_borrowed_or_expired_link_is_refused(store: LocalFileStore, client: TestClient, clock: Clock) -> None:
    mine, other = key("mine.csv"), key("other.csv", user="u-2")
    upload(store, mine, CSV)
    upload(store, other, b"other")
    url = url_of(store, mine)
    path, query = url.split("?")
    params = dict(p.split("=") for p in query.split("&"))
    flipped = params["sig"][:-1] + ("0" if params["sig"][-1] != "0" else "1")
    assert client.get(f"{path}?exp={params['exp']}&sig={flipped}").status_code == 403
    assert client.get(f"{path}?exp={int(params['exp']) + 86400}&sig={params['sig']}").status_code == 403  # a longer life
    assert client.get(path).status_code == 403  # no signature at all
    assert client.get(f"{path}?exp=%C2%B2&sig={params['sig']}").status_code == 403  # "²" is no expiry time
    # another key's valid signature does not open this key, nor the other way round
    other_query = url_of(store, other).split("?")[1]
    assert client.get(f"{path}?{other_query}").status_code == 403
    # a link signed with another app's secret
    foreign = LocalFileStore(store.root, "another-secret-" + "y" * 40, clock=clock)
    assert client.get(url_of(foreign, mine)).status_code == 403
    # the link works until it expires, then no longer
    assert client.get(url).status_code == 200
    clock.now += file_store.URL_TTL_S + 1
    r = client.get(url)
    assert r.status_code == 403 and r.content != CSV
    assert client.get(url_of(store, mine)).content == CSV  # a fresh link (a reopened chat) works again
    # a path that is not a digest is refused, or is not this route's at all (the app's page answers)
    assert client.get(f"{file_store.ROUTE}/passwd?exp=9999999999&sig={'0' * 64}").status_code == 403
    r = client.get(f"{file_store.ROUTE}/..%2F..%2Fetc%2Fpasswd?exp=9999999999&sig={'0' * 64}")
    assert "content-disposition" not in r.headers and "the app's page" in r.text


def test_a_missing_file_is_404_behind_a_valid_signature(store: LocalFileStore, client: TestClient) -> None:
    assert client.get(url_of(store, key("never-stored.csv"))).status_code == 404


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_stays_inside_the_root_and_makes_a_safe_header(store: LocalFileStore, client: TestClient,
                                                                     tmp_path: Path, name: str) -> None:
    before = files_under(tmp_path)
    k = key(name)
    upload(store, k, CSV)
    written = files_under(tmp_path) - before
    assert written and all(store.root.resolve() in p.resolve().parents for p in written), written
    assert all(len(p.name) <= 69 and set(p.name) <= set("0123456789abcdef.json") for p in written), written
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("*.exe"))

    r = client.get(url_of(store, k))
    assert r.status_code == 200 and r.content == CSV
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; ")
    assert not any(c in cd for c in "\r\n\x00<>\\") and "Set-Cookie" not in r.headers and "set-cookie" not in r.headers
    fallback = cd.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in fallback and fallback.isascii()
    shown = unquote(cd.split("filename*=UTF-8''", 1)[1])
    assert "/" not in shown and "\\" not in shown and "\x00" not in shown and "\u202e" not in shown
    if name in ("✓.csv", "<img src=x onerror=alert(2)>.csv"):
        assert shown == name  # the name as given, only encoded
    assert len(shown) <= file_store.NAME_MAX


@pytest.mark.parametrize(("data", "mime"), [
    (b"<html><script>alert(1)</script></html>", "text/html"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/svg+xml"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/png"),  # a lie about the type
    (b"<html><script>alert(1)</script></html>", "image/gif"),
    (PNG, "text/html"),  # a real PNG declared as a page: not shown inline either
])
def test_a_page_or_an_svg_is_never_served_inline_or_as_html(store: LocalFileStore, client: TestClient, data: bytes,
                                                            mime: str) -> None:
    r = served(store, client, "chart.svg" if "svg" in mime else "page.html", data, mime)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_a_raster_image_is_served_inline_as_its_type_so_the_chat_shows_it(store: LocalFileStore, client: TestClient) -> None:
    r = served(store, client, "chart.png", PNG, "image/png")
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_delete_removes_the_file_and_its_folder(store: LocalFileStore, client: TestClient) -> None:
    k = key("gone.csv")
    upload(store, k, CSV)
    url = url_of(store, k)
    assert client.get(url).status_code == 200
    assert asyncio.run(store.delete_file(k)) is True
    assert files_under(store.root) == set()
    assert not any(p.is_dir() for p in store.root.iterdir())
    assert client.get(url).status_code == 404
    assert asyncio.run(store.delete_file(k)) is False  # again: nothing there, no error


def test_too_large_a_file_is_refused_with_the_limit_and_nothing_is_written(store: LocalFileStore) -> None:
    with pytest.raises(FileStoreError, match=r"sales\.csv.*up to 1 MB"):
        asyncio.run(store.upload_file(key("sales.csv"), b"x" * (store.max_bytes + 1)))
    assert files_under(store.root) == set()


def test_the_limit_is_chainlit_upload_limit_from_config_toml() -> None:
    from chainlit.config import config

    upload_cfg = config.features.spontaneous_file_upload
    assert upload_cfg is not None and upload_cfg.max_size_mb
    assert file_store.upload_limit_bytes() == upload_cfg.max_size_mb * 1024 * 1024


def test_without_chainlit_auth_secret_the_store_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAINLIT_AUTH_SECRET", raising=False)
    with pytest.raises(FileStoreError, match="CHAINLIT_AUTH_SECRET is not set"):
        LocalFileStore(tmp_path / "root")


def test_the_route_is_served_on_chainlit_app_ahead_of_its_page(tmp_path: Path) -> None:
    from chainlit.server import app

    store = LocalFileStore(tmp_path / "root", SECRET)
    routes = list(app.router.routes)
    try:
        file_store.mount(store, app)
        file_store.mount(store, app)  # again (a second data layer): one route, still ahead of the page
        paths = [getattr(r, "path", "") for r in app.router.routes]
        assert paths.count(f"{file_store.ROUTE}/{{d}}") == 1
        k = key("sales.csv")
        upload(store, k, CSV)
        r = TestClient(app).get(url_of(store, k))
        assert r.status_code == 200 and r.content == CSV  # the file, not Chainlit's page from its catch-all
    finally:
        app.router.routes[:] = routes


async def test_the_history_layer_keeps_serves_and_deletes_a_thread_files(tmp_path: Path, clock: Clock) -> None:
    """The wiring in ui/history.py: a thread read back links to its file with a fresh link (the one made at upload
    has expired by then); deleting the thread deletes the file."""
    store = LocalFileStore(tmp_path / "history-files", SECRET, clock=clock)
    api = FastAPI()
    file_store.mount(store, api)
    layer = history.HistoryDataLayer(f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}", storage_provider=store)
    try:
        user = await layer.create_user(User(identifier="alice"))
        assert user is not None
        thread_id, step_id, element_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        await layer.update_thread(thread_id, name="sales", user_id=user.id)
        object_key = f"{user.id}/{element_id}/sales.csv"
        stored = await store.upload_file(object_key, CSV, mime="text/csv")
        await layer.execute_sql(
            'INSERT INTO elements ("id", "threadId", "type", "name", "display", "objectKey", "url", "forId", "mime", "props") '
            "VALUES (:id, :t, 'file', 'sales.csv', 'inline', :k, :u, :f, 'text/csv', '{}')",
            {"id": element_id, "t": thread_id, "k": stored["object_key"], "u": stored["url"], "f": step_id})
        clock.now += file_store.URL_TTL_S + 60  # the user comes back the next day
        client = TestClient(api)
        assert client.get(str(stored["url"])).status_code == 403
        thread = await layer.get_thread(thread_id)
        assert thread is not None
        (element,) = thread["elements"]
        assert element["name"] == "sales.csv"
        assert client.get(str(element["url"])).content == CSV
        single = await layer.get_element(thread_id, element_id)
        assert single is not None and client.get(str(single["url"])).content == CSV
        assert store.path_of(object_key).is_file()
        assert store.path_of(object_key).name == hashlib.sha256(object_key.encode()).hexdigest()

        await layer.delete_thread(thread_id)
        assert not store.path_of(object_key).exists()
        assert files_under(store.root) == set()
        assert client.get(str(element["url"])).status_code == 404
    finally:
        await layer.close()
