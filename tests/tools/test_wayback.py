"""wayback(url, date) against a local availability API and snapshot server."""

from __future__ import annotations

import pytest

from tests.fakes.wayback import FakeWayback
from tests.fakes.web import Reply, redirect
from tests.tools.conftest import call, tool_settings

PAGE_2021 = "<html><head><title>Quillby Ferry timetable</title></head><body><p>Ferries leave at 07:10 and 17:40.</p></body></html>"
PAGE_2023 = "<html><head><title>Quillby Ferry timetable</title></head><body><p>Ferries leave at 06:55 only.</p></body></html>"
TARGET = "https://ferry.example/timetable"


@pytest.fixture
def archive(started) -> FakeWayback:
    fake = started(FakeWayback())
    fake.add(TARGET, "20211115120000", PAGE_2021)
    fake.add(TARGET, "20230301080000", PAGE_2023)
    return fake


def _ctx(make_ctx, archive: FakeWayback, **overrides):
    return make_ctx(tool_settings(WAYBACK_API_URL=archive.api_url, **overrides))


async def test_snapshot_nearest_the_end_of_the_period_is_read_without_the_toolbar(make_ctx, archive) -> None:
    out = await call(_ctx(make_ctx, archive), "wayback", url=TARGET, date="2021")
    assert "Ferries leave at 07:10 and 17:40." in out
    assert "Archived copy of https://ferry.example/timetable taken 2021-11-15 12:00 UTC" in out
    assert "Wayback toolbar" not in out  # the id_ form was fetched
    ask = [r for r in archive.requests if r.path == "/wayback/available"][0]
    assert ask.param("url") == TARGET and ask.param("timestamp") == "20211231235959"
    assert any(p.startswith("/web/20211115120000id_/") for p in archive.paths())


async def test_a_snapshot_after_the_date_is_flagged(make_ctx, archive) -> None:
    out = await call(_ctx(make_ctx, archive), "wayback", url=TARGET, date="2023-02")
    # 2023-02-28 is nearer to the March 2023 copy than to the 2021 one: the answer must say it is later
    assert "Ferries leave at 06:55 only." in out and "AFTER the date asked (2023-02-28 23:59 UTC)" in out


async def test_nothing_archived_bad_dates_and_blocked_targets(make_ctx, archive) -> None:
    ctx = _ctx(make_ctx, archive)
    none = await call(ctx, "wayback", url="https://never.example/", date="2020")
    assert none.startswith("No archived copy of https://never.example/ is known")
    assert (await call(ctx, "wayback", url=TARGET, date="the old days")).startswith("Error: cannot read the date")
    blocked = await call(ctx, "wayback", url="https://huggingface.co/datasets/gaia-benchmark/GAIA", date="2023")
    assert blocked.startswith("Error: refused:") and "GAIA" in blocked
    assert not any("gaia" in p.lower() for p in archive.paths())


async def test_api_and_snapshot_failures(make_ctx, archive) -> None:
    ctx = _ctx(make_ctx, archive, WEB_TIMEOUT=1.0)
    archive.add("https://slow.example/", "20200101000000", Reply(200, PAGE_2021, delay=3))
    archive.add("https://big.example/", "20200101000000", Reply(200, stream_bytes=300_000))
    archive.add("https://bounce.example/", "20200101000000", redirect("http://169.254.169.254/latest/"))
    assert "timed out after 1s" in await call(ctx, "wayback", url="https://slow.example/", date="2020")
    assert "too large" in await call(ctx, "wayback", url="https://big.example/", date="2020")
    assert "refused: 169.254.169.254 is a link-local address" in await call(ctx, "wayback", url="https://bounce.example/", date="2020")
    archive.api_fault = Reply(503, "<html>Service Unavailable</html>")
    assert "availability API answered HTTP 503" in await call(ctx, "wayback", url=TARGET, date="2021")
    archive.api_fault = Reply(200, "<html>not json</html>")
    assert "did not answer JSON" in await call(ctx, "wayback", url=TARGET, date="2021")
