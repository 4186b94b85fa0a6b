"""`GET /healthz`: proof that the app is up and can serve a question (the container's health check); `GET /metrics`:
the Prometheus metrics (observability/metrics.py).

It answers 200 only once the app module has loaded and the default team config parses; it also says which
models the team would use and which sandbox backend `auto` picks, without calling any model.
Chainlit registers a catch-all route for its frontend at import time, so this route is moved before it.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from config.settings import get_settings
from observability import metrics

_STARTED = time.time()


async def healthz() -> JSONResponse:
    from teams.loader import TeamConfigError, load_team
    from ui.preflight import plan_models

    settings = get_settings()
    body: dict[str, Any] = {"status": "ok", "uptime_s": round(time.time() - _STARTED, 1)}
    try:
        team = load_team(settings.team)
    except TeamConfigError as exc:
        return JSONResponse({"status": "error", "team_error": str(exc)}, status_code=503)
    plan = plan_models(team, settings)
    body.update(team=team.name, models=plan.summary() or None, model_problems=plan.problems)
    return JSONResponse(body)


async def metrics_route(request: Request) -> Response:
    """`GET /metrics`: the process's Prometheus metrics (observability/metrics.py), classic text format.

    Costs and model names are the owner's business: with ROUNDTABLE_METRICS_TOKEN set, a scraper must send it as a
    bearer token; on a Space (SPACE_ID set) without that token the route is off, since a Space is public."""
    settings = get_settings()
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is None and settings.space_id:
        return PlainTextResponse("metrics are off on a public Space: set ROUNDTABLE_METRICS_TOKEN and scrape with it\n",
                                 status_code=404)
    if token is not None and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
        return PlainTextResponse("send ROUNDTABLE_METRICS_TOKEN as a bearer token\n", status_code=401)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


def install() -> None:
    from chainlit.server import app

    for path, route in (("/healthz", healthz), ("/metrics", metrics_route)):
        if any(getattr(r, "path", None) == path for r in app.router.routes):
            continue
        app.add_api_route(path, route, methods=["GET"], include_in_schema=False)
        app.router.routes.insert(0, app.router.routes.pop())  # ahead of Chainlit's "/{full_path:path}"
