"""`wayback(url, date, query=None)`: a web page as the Wayback Machine archived it around a date.

For sites other than Wikipedia (which `wikipedia_page(as_of=...)` reads by revision), "as of <date>" means an
archived snapshot. The availability API (`settings.wayback_api_url`, replaced by a local fake in tests)
names the snapshot closest to the end of the period asked; the snapshot is then fetched in its original
form (the `id_` flag drops the archive's toolbar) through the same guarded fetch as `read_page`. The
availability API may only have a snapshot after the date: the answer says so, so the agent can judge.
"""

from __future__ import annotations

import asyncio
import re

from agents.tools.dates import ACCEPTED, end_of_period, wayback_timestamp
from agents.tools.errors import ToolError
from agents.tools.net import API_USER_AGENT, FetchError, fetch
from agents.tools.pages import document_text, present
from agents.tools.registry import SafeTool, ToolContext, register
from agents.tools.sources import blocked_source

_SNAPSHOT = re.compile(r"/web/(\d{1,14})(?:[a-z]{2}_)?/")


def _raw_snapshot_url(url: str) -> str:
    """The snapshot without the archive's banner and rewritten links: /web/<ts>id_/<original>."""
    return _SNAPSHOT.sub(lambda m: f"/web/{m.group(1)}id_/", url, count=1)


def _readable_stamp(stamp: str) -> str:
    if len(stamp) >= 8 and stamp[:8].isdigit():
        out = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}"
        if len(stamp) >= 12:
            out += f" {stamp[8:10]}:{stamp[10:12]} UTC"
        return out
    return stamp


WAYBACK_DESCRIPTION = (
    "Read a web page as the Wayback Machine archived it at a date (for 'as of <date>' questions about sites "
    "other than Wikipedia). `date` like '2022', '2021-06' or '2019-03-15' means the end of that period. "
    "`query` (a few keywords) returns only the relevant passages."
)


@register("wayback", "A web page as archived by the Wayback Machine at a date (availability API + fetch)")
def make_wayback(ctx: ToolContext) -> SafeTool:
    async def wayback(url: str, date: str, query: str | None = None) -> str:
        settings = ctx.settings
        target = url.strip()
        if not re.match(r"^https?://", target, re.IGNORECASE):
            if "://" in target:
                raise ToolError("refused: only http and https pages are archived") from None
            target = "http://" + target
        if (reason := blocked_source(target)) is not None:
            raise ToolError(f"{reason}") from None
        try:
            moment = end_of_period(date)
        except ValueError as exc:
            raise ToolError(f"{exc} (date accepts {ACCEPTED})") from None
        stamp = wayback_timestamp(moment)
        try:
            found = (
                await fetch(
                    settings.wayback_api_url,
                    params={"url": target, "timestamp": stamp},
                    timeout=settings.web_timeout,
                    max_bytes=1_000_000,
                    allow_loopback=ctx.allow_loopback,
                    headers={"User-Agent": API_USER_AGENT, "Accept": "application/json"},
                    what="the Wayback availability API",
                )
            ).json()
        except FetchError as exc:
            raise ToolError(f"{exc}") from None
        closest = ((found or {}).get("archived_snapshots") or {}).get("closest") if isinstance(found, dict) else None
        if not isinstance(closest, dict) or not closest.get("available", True) or not closest.get("url"):
            return f"No archived copy of {target} is known to the Wayback Machine near {_readable_stamp(stamp)}."
        snapshot = _raw_snapshot_url(str(closest["url"]))
        snap_stamp = str(closest.get("timestamp") or "")
        try:
            page = await fetch(
                snapshot, timeout=settings.web_timeout, max_bytes=settings.web_max_bytes, allow_loopback=ctx.allow_loopback
            )
            title, text = await asyncio.to_thread(document_text, page)
        except FetchError as exc:
            raise ToolError(f"the archived copy could not be read: {exc}") from None
        except ValueError as exc:
            raise ToolError(f"the archived copy {snapshot} {exc}") from None
        note = f"Archived copy of {target} taken {_readable_stamp(snap_stamp)}"
        if snap_stamp and snap_stamp > stamp:
            note += f" — NOTE: this is AFTER the date asked ({_readable_stamp(stamp)}); no earlier copy was offered"
        return present(title, snapshot, text, query, source=note)

    return SafeTool(wayback, name="wayback", description=WAYBACK_DESCRIPTION)
