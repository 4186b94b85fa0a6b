"""`GET /healthz`: proof that the app is up and can serve a question (the container's health check).

It answers 200 only once the app module has loaded and the default team config parses; it also says which
models the team would use and which sandbox backend `auto` picks, without calling any model.
Chainlit registers a catch-all route for its frontend at import time, so this route is moved before it.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse

from config.settings import get_settings

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


def install() -> None:
    from chainlit.server import app

    if any(getattr(r, "path", None) == "/healthz" for r in app.router.routes):
        return
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of Chainlit's "/{full_path:path}"
