"""A local replica of the Wayback Machine: the availability API and the snapshot pages.

`GET /wayback/available?url=<u>&timestamp=<YYYYMMDDhhmmss>` answers, as archive.org does,
`{"url": u, "archived_snapshots": {"closest": {"status": "200", "available": true, "url": ..., "timestamp": ...}}}`
(or `"archived_snapshots": {}`), choosing the snapshot closest to the timestamp; `GET /web/<ts>[id_]/<u>`
serves the snapshot. Set WAYBACK_API_URL to `fake.api_url`.
"""

from __future__ import annotations

import re

from tests.fakes.web import FakeWeb, Reply, Request

_SNAPSHOT = re.compile(r"^/web/(\d{14})(id_)?/(.+)$")


class FakeWayback(FakeWeb):
    def __init__(self) -> None:
        super().__init__()
        self.snapshots: dict[str, dict[str, str | Reply]] = {}  # original url -> timestamp -> html (or a Reply)
        self.api_fault: Reply | None = None  # served by the availability API instead of its answer

    @property
    def api_url(self) -> str:
        return f"{self.url}/wayback/available"

    def add(self, url: str, timestamp: str, page: str | Reply) -> None:
        self.snapshots.setdefault(url, {})[timestamp] = page

    def handle(self, request: Request) -> Reply:
        if request.path == "/wayback/available":
            if self.api_fault is not None:
                return self.api_fault
            url = request.param("url") or ""
            wanted = int((request.param("timestamp") or "0").ljust(14, "0")[:14])
            stamps = self.snapshots.get(url, {})
            if not stamps:
                return Reply(200, {"url": url, "archived_snapshots": {}})
            best = min(stamps, key=lambda s: abs(int(s) - wanted))
            closest = {"status": "200", "available": True, "url": f"{self.url}/web/{best}/{url}", "timestamp": best}
            return Reply(200, {"url": url, "archived_snapshots": {"closest": closest}})
        if m := _SNAPSHOT.match(request.path):
            page = self.snapshots.get(m.group(3), {}).get(m.group(1))
            if page is None:
                return Reply(404, "<html><body>Wayback Machine doesn't have that page archived.</body></html>")
            if isinstance(page, Reply):
                return page
            banner = "" if m.group(2) else "<div id='wm-ipp'>Wayback toolbar</div>"
            return Reply(200, page.replace("<body>", "<body>" + banner, 1))
        return super().handle(request)
