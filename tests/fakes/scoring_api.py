"""A local replica of the Agents Course scoring API (FastAPI, uvicorn on 127.0.0.1), serving INVENTED questions.

Same routes, fields and error shapes as the real Space (agents-course-unit4-scoring.hf.space, as it answered in 2026):
`GET /questions` (`task_id`, `question`, `Level` as a string, `file_name` "" when none), `GET /random-question`,
`GET /files/{task_id}` (raw bytes, or 404 `{"detail": "No file path associated with task_id <id>"}` — the
live server answers that for every attachment, so a question may name a file this server does not serve),
`POST /submit` (FastAPI's 422 `{"detail": [...]}` on a bad body; exact-match scoring after stripping; the
score is a percentage of all questions; the leaderboard keeps each user's best).

Faults for tests: `fail(route, status, times)` answers the next `times` requests of a route with `status`;
`questions_override` replaces the /questions body with any JSON (or raw text when it is a `str`);
`delay[route]` sleeps before answering. Every request is recorded in `requests` (method, path, headers),
every accepted submission in `submissions`.

CLI (used by the UI's browser tests): `python -m tests.fakes.scoring_api [--questions FILE.json] [--port N]`
prints the base URL on stdout. FILE.json is a list of question objects; an item may carry `final_answer`
(used for scoring, never served) and `file_path` or `file_text` (the attachment to serve).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mimetypes
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

# Invented questions (never GAIA's): the default set of the CLI and a handy fixture.
SAMPLE_QUESTIONS: list[dict[str, Any]] = [
    {"task_id": "inv-0001", "question": "A lighthouse keeper logs 7 ships on Monday and 5 on Tuesday. How many ships did he log?", "Level": "1", "file_name": "", "final_answer": "12"},
    {"task_id": "inv-0002", "question": "In the fictional town of Quillby the bakery opens at 6 and the library at 9. Which opens first?", "Level": "1", "file_name": "", "final_answer": "bakery"},
    {"task_id": "inv-0003", "question": "List the invented colours teal-ish, amberine and blusk in alphabetical order, comma separated.", "Level": "1", "file_name": "", "final_answer": "amberine, blusk, teal-ish"},
    {"task_id": "inv-0004", "question": "The attached note names a secret code word. What is it?", "Level": "1", "file_name": "inv-0004.txt", "final_answer": "marmalade", "file_text": "The code word is marmalade.\n"},
    {"task_id": "inv-0005", "question": "A recipe for the imaginary dish florp needs 3 eggs per batch. How many eggs do 4 batches need?", "Level": "1", "file_name": "", "final_answer": "12"},
]


class AnswerItem(BaseModel):
    task_id: str
    submitted_answer: str | int | float


class Submission(BaseModel):
    username: str
    agent_code: str
    answers: list[AnswerItem]


@dataclass
class ServedRequest:
    method: str
    path: str
    headers: dict[str, str]


class ScoringServer:
    def __init__(
        self,
        questions: list[dict[str, Any]] | None = None,
        answers: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        raw = [dict(q) for q in (SAMPLE_QUESTIONS if questions is None else questions)]
        self.answers: dict[str, str] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        for q in raw:  # a question may carry its own truth/attachment (CLI files); both stay private
            if "final_answer" in q:
                self.answers[str(q["task_id"])] = str(q.pop("final_answer"))
            if "file_text" in q:
                self.files[str(q["task_id"])] = (str(q.get("file_name")), str(q.pop("file_text")).encode())
            if "file_path" in q:
                path = Path(q.pop("file_path"))
                self.files[str(q["task_id"])] = (str(q.get("file_name") or path.name), path.read_bytes())
        self.answers.update(answers or {})
        self.files.update(files or {})
        self.questions = raw
        self.questions_override: Any = None  # replaces the /questions body (str = raw text)
        self.delay: dict[str, float] = {}  # route name -> seconds before answering
        self.requests: list[ServedRequest] = []
        self.submissions: list[dict[str, Any]] = []
        self.leaderboard: dict[str, float] = {}  # username -> best score
        self._faults: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- faults --------------------------------------------------------------------------------------
    def fail(self, route: str, status: int = 503, times: int = 1, detail: Any = None) -> None:
        """Answer the next `times` requests of `route` ("questions", "files", "submit", "random") with `status`:
        5xx as a sleeping Space's HTML page, 4xx as FastAPI's `{"detail": ...}` (422: a validation error list)."""
        with self._lock:
            self._faults.setdefault(route, []).extend([(status, detail)] * times)

    def _fault(self, route: str) -> tuple[int, Any] | None:
        with self._lock:
            queue = self._faults.get(route)
            return queue.pop(0) if queue else None

    def requests_to(self, prefix: str) -> list[ServedRequest]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    # --- the app -------------------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Agents Course Unit 4 scoring API (local replica)")
        server = self

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            with server._lock:
                server.requests.append(ServedRequest(request.method, request.url.path, dict(request.headers)))
            return await call_next(request)

        async def gate(route: str) -> Response | None:
            if server.delay.get(route):
                await asyncio.sleep(server.delay[route])
            fault = server._fault(route)
            if fault is None:
                return None
            status, detail = fault
            if status >= 500:
                return Response("<html><body>Space is restarting</body></html>", status_code=status, media_type="text/html")
            if detail is None:
                detail = (
                    [{"type": "missing", "loc": ["body", "answers"], "msg": "Field required", "input": None}]
                    if status == 422
                    else f"scripted error {status}"
                )
            return JSONResponse({"detail": detail}, status_code=status)

        @app.get("/questions")
        async def get_questions() -> Response:
            if (early := await gate("questions")) is not None:
                return early
            if isinstance(server.questions_override, str):
                return Response(server.questions_override, media_type="application/json")
            body = server.questions if server.questions_override is None else server.questions_override
            return JSONResponse(body)

        @app.get("/random-question")
        async def get_random_question() -> Response:
            if (early := await gate("random")) is not None:
                return early
            if not server.questions:
                raise HTTPException(status_code=404, detail="No questions available.")
            return JSONResponse(random.choice(server.questions))

        @app.get("/files/{task_id}")
        async def get_task_file(task_id: str) -> Response:
            if (early := await gate("files")) is not None:
                return early
            if task_id not in server.files:
                raise HTTPException(status_code=404, detail=f"No file path associated with task_id {task_id}")
            name, content = server.files[task_id]
            media = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

        @app.post("/submit")
        async def submit(data: Submission) -> Response:
            if (early := await gate("submit")) is not None:
                return early
            if not data.username.strip():
                raise HTTPException(status_code=400, detail="Username must be provided and not be empty.")
            with server._lock:
                server.submissions.append(data.model_dump())
            known = {str(q.get("task_id")) for q in server.questions}
            valid = [a for a in data.answers if a.task_id in known]
            correct = sum(
                1 for a in valid if str(a.submitted_answer).strip() == server.answers.get(a.task_id, "\0").strip()
            )
            total = len(server.questions)
            score = round(100.0 * correct / total, 2) if total else 0.0
            user = data.username.strip()
            improved = score > server.leaderboard.get(user, -1.0)
            if valid and improved:
                server.leaderboard[user] = score
            board = "High score updated on leaderboard." if valid and improved else "Score did not improve previous record, leaderboard not updated."
            if valid:
                message = f"Score calculated successfully: {correct}/{total} total questions answered correctly ({len(valid)} valid tasks attempted). {board}"
            else:
                message = f"Submission received, but no valid/matching task IDs were found in the {len(data.answers)} answers provided. {board}"
            return JSONResponse(
                {
                    "username": user,
                    "score": score,
                    "correct_count": correct,
                    "total_attempted": len(valid),
                    "message": message,
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )

        return app

    # --- lifecycle -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None and self._server.servers, "server not started"
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScoringServer:
        config = uvicorn.Config(self.app, host=self._host, port=self._port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake scoring API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # do not wait for slow (delayed) requests still in flight
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ScoringServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a local replica of the scoring API with invented questions.")
    parser.add_argument("--questions", type=Path, help="JSON list of questions (default: the built-in invented set)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    questions = None
    if args.questions:
        questions = json.loads(args.questions.read_text(encoding="utf-8"))
        if not isinstance(questions, list):
            parser.error(f"{args.questions}: expected a JSON list of questions")
        base = args.questions.parent
        for q in questions:  # file paths are relative to the questions file
            if isinstance(q, dict) and "file_path" in q and not Path(q["file_path"]).is_absolute():
                q["file_path"] = str(base / q["file_path"])
    server = ScoringServer(questions, host=args.host, port=args.port).start()
    print(server.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
