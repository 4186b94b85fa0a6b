"""A question's attached file, fetched once and cached on disk by task id.

Order (docs/dev/CONTRACTS.md): `GET {scoring_api_url}/files/{task_id}` first; on a 404 or any failure, the gated
Hugging Face dataset `gaia-benchmark/GAIA`, exactly the one file `2023/validation/{file_name}` (the scoring
API has been answering 404 for every attachment). The dataset also holds every answer (its metadata files),
so nothing but that one named file is ever asked for: names that are not a plain file name, and the
dataset's answer files (metadata*, *.jsonl, *.parquet), are refused before any request.

The cache is `settings.cache_dir / "attachments" / task_id / file_name`; a cached non-empty file means no
network at all. A zero-byte download is an error, never cached. The HF token goes only to
`hf_hub_download`; every message is masked so the token cannot reach a log, a trace or the UI.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx
from loguru import logger

from agents.tools.sources import is_answer_file_name
from common.text import one_line
from config.log import mask
from config.settings import Settings

GAIA_REPO = "gaia-benchmark/GAIA"
GAIA_FOLDER = "2023/validation"
MAX_BYTES = 200_000_000
SCORING_TIMEOUT_S = 30.0
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class AttachmentError(Exception):
    """What failed and what to set or do, in one message (never containing a secret)."""


def _check(task_id: str, file_name: str) -> None:
    if not _TASK_ID.match(task_id or "") or ".." in task_id:
        raise AttachmentError(f"refused: {task_id!r} is not a task id (letters, digits, '.', '_', '-')")
    name = file_name or ""
    if not name or name != Path(name).name or "\\" in name or name.startswith(".") or name in ("..", "."):
        raise AttachmentError(f"refused: {file_name!r} is not a plain file name")
    if is_answer_file_name(name):
        raise AttachmentError(f"refused: {file_name!r} is one of the benchmark's answer files, which are never downloaded")


def cached_path(task_id: str, file_name: str, settings: Settings) -> Path:
    _check(task_id, file_name)
    return settings.cache_dir / "attachments" / task_id / file_name


def _secret_free(text: str, settings: Settings) -> str:
    if settings.hf_token is not None:
        text = text.replace(settings.hf_token.get_secret_value(), "***")
    return mask(one_line(text, 400))


def _store(dest: Path, data: bytes) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, dest)  # atomic: a concurrent reader sees the whole file or none
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


async def _from_scoring_api(task_id: str, settings: Settings) -> tuple[bytes | None, str]:
    """(content, "") when the API serves the file, else (None, why not)."""
    url = f"{settings.scoring_api_url.rstrip('/')}/files/{quote(task_id, safe='')}"
    try:
        async with httpx.AsyncClient(timeout=SCORING_TIMEOUT_S, follow_redirects=True) as client:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    body = (await response.aread())[:300].decode("utf-8", errors="replace")
                    return None, f"the scoring API answered HTTP {response.status_code} ({one_line(body, 160)})"
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        return None, f"the scoring API's file is larger than {MAX_BYTES:,} bytes"
                    chunks.append(chunk)
    except httpx.HTTPError as exc:
        return None, f"the scoring API could not be reached ({type(exc).__name__}: {one_line(str(exc), 160)})"
    data = b"".join(chunks)
    if not data:
        return None, "the scoring API served an empty (0-byte) file"
    return data, ""


def _from_hub(file_name: str, settings: Settings, work: Path) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    token = settings.hf_token.get_secret_value() if settings.hf_token is not None else None
    dataset_page = f"{settings.hf_endpoint.rstrip('/')}/datasets/{GAIA_REPO}"
    try:
        return Path(
            hf_hub_download(
                GAIA_REPO,
                repo_type="dataset",
                filename=f"{GAIA_FOLDER}/{file_name}",  # exactly this file; checked by _check above
                token=token,
                endpoint=settings.hf_endpoint,
                local_dir=work,
            )
        )
    except GatedRepoError:
        who = "the account of HF_TOKEN" if token else "your account, then set HF_TOKEN to one of its tokens"
        raise AttachmentError(f"the dataset {GAIA_REPO} is gated: accept its terms at {dataset_page} with {who}") from None
    except RepositoryNotFoundError:
        hint = "HF_TOKEN is invalid or has no access to it" if token else "set HF_TOKEN (the dataset is gated)"
        raise AttachmentError(f"the Hub refused {GAIA_REPO}: {hint}") from None
    except EntryNotFoundError:
        raise AttachmentError(f"the dataset {GAIA_REPO} has no file {GAIA_FOLDER}/{file_name}") from None
    except HfHubHTTPError as exc:
        raise AttachmentError(f"the Hub answered an error: {_secret_free(str(exc), settings)}") from None
    except (OSError, ValueError, httpx.HTTPError) as exc:
        raise AttachmentError(f"the Hub download failed: {_secret_free(f'{type(exc).__name__}: {exc}', settings)}") from None


async def fetch_attachment(task_id: str, file_name: str, *, settings: Settings) -> Path:
    """The cached path of the task's attachment, downloading it the first time. Raises AttachmentError."""
    dest = cached_path(task_id, file_name, settings)
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    data, api_problem = await _from_scoring_api(task_id, settings)
    if data is not None:
        logger.info("attachment {} of task {}: from the scoring API ({} bytes)", file_name, task_id, len(data))
        return _store(dest, data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".hub-", dir=dest.parent))
    try:
        try:
            downloaded = await asyncio.to_thread(_from_hub, file_name, settings, work)
        except AttachmentError as exc:
            raise AttachmentError(
                f"cannot get the attachment {file_name} of task {task_id}: {api_problem}, "
                f"and the Hugging Face fallback failed: {_secret_free(str(exc), settings)}"
            ) from None
        if downloaded.stat().st_size == 0:
            raise AttachmentError(
                f"the attachment {file_name} of task {task_id} is empty (0 bytes) on the Hub; {api_problem}"
            )
        dest.unlink(missing_ok=True)
        os.replace(downloaded, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("attachment {} of task {}: from the {} dataset ({})", file_name, task_id, GAIA_REPO, api_problem)
    return dest
