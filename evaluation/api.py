"""Client for the Agents Course scoring API (`GET /questions`, `GET /files/{id}`, `POST /submit`).

The API has no authentication: nothing but the username, the agent_code URL and the answers is ever
sent (never a token or any other header of ours). Every payload is validated here, so a sleeping Space
(HTML error page, 5xx) or a malformed list becomes one `ScoringAPIError` sentence instead of a traceback.

Retries: GETs are retried on connection errors, timeouts and 5xx; `POST /submit` only on connection
errors and 5xx — a submit that timed out may have been recorded, so it is reported, not resent.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import httpx

SUBMIT_MIN_TIMEOUT_S = 60.0  # the course template's submit timeout; scoring 20 answers can take a while


@dataclass(frozen=True)
class TaskItem:
    task_id: str
    question: str
    level: str
    file_name: str  # "" when the question has no attachment

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskItem:
        return cls(str(data["task_id"]), str(data["question"]), str(data.get("level", "")), str(data.get("file_name") or ""))


@dataclass
class SubmitResult:
    username: str
    score: float  # a percentage, as the API reports it
    correct_count: int
    total_attempted: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScoringAPIError(Exception):
    """What went wrong with the scoring API, in one sentence a user can act on."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every call: building one (loading the CA bundle) costs more than a local request."""
    return httpx.create_ssl_context()


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(response: httpx.Response) -> str:
    """FastAPI's error body is `{"detail": str | [{"loc": [...], "msg": ...}]}`; fall back to the raw text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _short(response.text) or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        parts = []
        for err in detail[:5]:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", []) if p != "body")
                parts.append(f"{loc}: {err.get('msg', '?')}" if loc else str(err.get("msg", "?")))
            else:
                parts.append(str(err))
        more = f" (and {len(detail) - 5} more)" if len(detail) > 5 else ""
        return "; ".join(parts) + more
    if detail is not None:
        return _short(str(detail))
    return _short(response.text)


def parse_questions(payload: Any, source: str) -> tuple[list[TaskItem], list[str]]:
    """Valid questions plus one problem line per item that had to be skipped. Raises when none is usable."""
    if not isinstance(payload, list):
        kind = "null" if payload is None else type(payload).__name__
        raise ScoringAPIError(f"{source} returned a JSON {kind} instead of a list of questions")
    if not payload:
        raise ScoringAPIError(f"{source} returned an empty list of questions; the scoring Space may be restarting, try again later")
    items: list[TaskItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(payload):
        where = f"question #{i + 1}"
        if not isinstance(raw, dict):
            problems.append(f"{where} is a JSON {type(raw).__name__}, not an object; skipped")
            continue
        task_id, question = raw.get("task_id"), raw.get("question")
        if not isinstance(task_id, str) or not task_id.strip():
            hint = f" (question: {_short(str(question), 60)!r})" if question else ""
            problems.append(f"{where} has no task_id{hint}; skipped, it cannot be submitted")
            continue
        task_id = task_id.strip()
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{where} ({task_id}) has no question text; skipped")
            continue
        if task_id in seen:
            problems.append(f"{where} repeats task_id {task_id}; the repeat is skipped")
            continue
        file_name = raw.get("file_name") or ""
        if not isinstance(file_name, str):
            problems.append(f"{where} ({task_id}) has a file_name that is not a string; its attachment is ignored")
            file_name = ""
        level = raw.get("Level", raw.get("level", ""))
        seen.add(task_id)
        items.append(TaskItem(task_id, question, "" if level is None else str(level), file_name.strip()))
    if not items:
        raise ScoringAPIError(f"{source} returned no usable question: " + "; ".join(problems[:5]))
    return items, problems


class ScoringAPI:
    """One scoring API base URL. Each call opens its own connection, so an instance is safe in any event loop."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        submit_timeout: float | None = None,
        retries: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.submit_timeout = submit_timeout if submit_timeout is not None else max(timeout, SUBMIT_MIN_TIMEOUT_S)
        self.retries = max(1, retries)
        self.backoff_s = backoff_s
        self.last_problems: list[str] = []  # items `questions()` had to skip, for the caller to show

    # --- plumbing ------------------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        retry_timeouts: bool,
        send: Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]],
    ) -> httpx.Response:
        url = f"{self.base_url}{path}"
        what = f"{method} {url}"
        last: ScoringAPIError | None = None
        for attempt in range(self.retries):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, verify=_tls()) as client:
                    response = await send(client, url)
            except httpx.TimeoutException as exc:
                connect = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                last = ScoringAPIError(
                    f"{what}: no answer within {timeout:g}s" + ("" if connect or retry_timeouts else
                    "; the submission may or may not have been recorded, check the leaderboard before resending"),
                    retryable=connect or retry_timeouts,
                )
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                last = ScoringAPIError(f"{what}: cannot connect ({_short(str(exc) or type(exc).__name__, 120)})", retryable=True)
            except httpx.HTTPError as exc:
                raise ScoringAPIError(f"{what}: {_short(str(exc) or type(exc).__name__)}") from None
            else:
                if response.status_code < 500:
                    return response
                last = ScoringAPIError(
                    f"{what} answered HTTP {response.status_code}: {_detail(response)} "
                    "(the scoring Space may be asleep or restarting; try again in a minute)",
                    status=response.status_code,
                    retryable=True,
                )
            if not last.retryable:
                break
        assert last is not None
        if self.retries > 1 and last.retryable:
            last.args = (f"{last.args[0]} [after {self.retries} tries]",)
        raise last

    async def _get_json(self, path: str) -> Any:
        response = await self._request(
            "GET", path, timeout=self.timeout, retry_timeouts=True, send=lambda c, url: c.get(url)
        )
        source = f"GET {self.base_url}{path}"
        if response.status_code >= 400:
            raise ScoringAPIError(f"{source} answered HTTP {response.status_code}: {_detail(response)}", status=response.status_code)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            kind = response.headers.get("content-type", "no content type")
            raise ScoringAPIError(
                f"{source} did not return JSON (HTTP {response.status_code}, {kind}): {_short(response.text, 120)!r}"
            ) from None

    # --- the routes ----------------------------------------------------------------------------------
    async def questions(self) -> list[TaskItem]:
        """The current question list, validated. Skipped items are described in `last_problems`."""
        payload = await self._get_json("/questions")
        items, self.last_problems = parse_questions(payload, f"GET {self.base_url}/questions")
        return items

    async def random_question(self) -> TaskItem:
        payload = await self._get_json("/random-question")
        items, _ = parse_questions([payload], f"GET {self.base_url}/random-question")
        return items[0]

    async def file_available(self, task_id: str) -> bool:
        """Whether `GET /files/{task_id}` serves the attachment (reads only the status line)."""

        async def head_of(client: httpx.AsyncClient, url: str) -> httpx.Response:
            async with client.stream("GET", url) as response:
                return response

        response = await self._request(
            "GET", f"/files/{task_id}", timeout=self.timeout, retry_timeouts=True, send=head_of
        )
        return response.status_code == 200

    async def submit(self, username: str, agent_code: str, answers: list[dict[str, str]]) -> SubmitResult:
        payload = {"username": username, "agent_code": agent_code, "answers": answers}
        response = await self._request(
            "POST",
            "/submit",
            timeout=self.submit_timeout,
            retry_timeouts=False,
            send=lambda c, url: c.post(url, json=payload),
        )
        source = f"POST {self.base_url}/submit"
        if response.status_code == 422:
            raise ScoringAPIError(
                f"the scoring API rejected the submission as malformed (HTTP 422): {_detail(response)}", status=422
            )
        if response.status_code >= 400:
            raise ScoringAPIError(f"{source} answered HTTP {response.status_code}: {_detail(response)}", status=response.status_code)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ScoringAPIError(f"{source} did not return JSON: {_short(response.text, 120)!r}") from None
        return _submit_result(body, username, source)


def _submit_result(body: Any, username: str, source: str) -> SubmitResult:
    if not isinstance(body, dict):
        raise ScoringAPIError(f"{source} returned a JSON {type(body).__name__} instead of a result object")
    try:
        score = float(body["score"])
    except (KeyError, TypeError, ValueError):
        raise ScoringAPIError(f"{source} returned no numeric score: {_short(json.dumps(body), 200)}") from None

    def count(key: str) -> int:
        try:
            return int(body.get(key) or 0)
        except (TypeError, ValueError):
            return 0

    return SubmitResult(
        username=str(body.get("username") or username),
        score=score,
        correct_count=count("correct_count"),
        total_attempted=count("total_attempted"),
        message=str(body.get("message") or ""),
    )
