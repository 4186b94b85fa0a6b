"""`transcribe_audio(file)`: speech in an attached recording as text.

OpenAI's transcription API when OPENAI_API_KEY is set (OPENAI_BASE_URL is honoured, so a compatible server
or a test's local fake can stand in; TRANSCRIBE_MODEL picks the model); otherwise local faster-whisper when
the optional `[audio]` extra is installed (WHISPER_MODEL picks its size; the weights download on first use);
otherwise a clear message saying what to set. Secrets never appear in the messages.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path
from typing import Any

from agents.tools.errors import ToolError
from agents.tools.files import AUDIO_SUFFIXES
from agents.tools.registry import SafeTool, ToolContext, register
from agents.tools.workdir import FileRefused, resolve_attachment
from common.text import one_line
from config.log import mask
from config.settings import Settings

API_MAX_BYTES = 25_000_000  # OpenAI's upload limit for transcriptions
_WHISPER_MODELS: dict[str, Any] = {}
_WHISPER_LOCK = threading.Lock()

NO_TRANSCRIBER = (
    "no audio transcriber is configured: set OPENAI_API_KEY (OpenAI's transcription API; OPENAI_BASE_URL for a "
    "compatible server) or install the [audio] extra (pip install -e '.[audio]') for local faster-whisper"
)


def local_whisper_available() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


def transcriber(settings: Settings) -> str | None:
    """Which transcriber would run ("openai" or "faster-whisper"), or None when there is none."""
    if settings.openai_api_key is not None:
        return "openai"
    if local_whisper_available():
        return "faster-whisper"
    return None


def _clean(text: str, settings: Settings) -> str:
    if settings.openai_api_key is not None:
        text = text.replace(settings.openai_api_key.get_secret_value(), "***")
    return mask(one_line(text, 300))


async def _openai_transcribe(path: Path, settings: Settings) -> str:
    import openai

    assert settings.openai_api_key is not None
    kwargs: dict[str, Any] = {
        "api_key": settings.openai_api_key.get_secret_value(),
        "timeout": settings.llm_request_timeout,
        "max_retries": 1,
    }
    if settings.openai_base_url:
        kwargs["base_url"] = settings.openai_base_url
    content = await asyncio.to_thread(path.read_bytes)
    client = openai.AsyncOpenAI(**kwargs)
    try:
        result = await client.audio.transcriptions.create(
            model=settings.transcribe_model, file=(path.name, content), response_format="json"
        )
    except openai.APITimeoutError:
        raise RuntimeError(f"the transcription API timed out after {settings.llm_request_timeout:g}s") from None
    except openai.APIStatusError as exc:
        detail = exc.message if isinstance(exc.message, str) else str(exc)
        raise RuntimeError(f"the transcription API answered HTTP {exc.status_code}: {_clean(detail, settings)}") from None
    except openai.APIConnectionError as exc:
        raise RuntimeError(f"cannot reach the transcription API: {_clean(str(exc), settings)}") from None
    finally:
        await client.close()
    text = getattr(result, "text", None)
    if not isinstance(text, str):
        raise RuntimeError("the transcription API answered without a text field")
    return text


def _whisper_transcribe(path: Path, model_name: str) -> str:
    from faster_whisper import WhisperModel

    with _WHISPER_LOCK:  # loading a model is slow and large: once per process and size
        model = _WHISPER_MODELS.get(model_name)
        if model is None:
            model = WhisperModel(model_name, device="cpu", compute_type="int8")
            _WHISPER_MODELS[model_name] = model
    segments, _info = model.transcribe(str(path), beam_size=5)
    return " ".join(segment.text.strip() for segment in segments).strip()


@register(
    "transcribe_audio",
    "Transcribe speech in an attached audio file",
    needs="OPENAI_API_KEY (transcription API) or the [audio] extra (local faster-whisper)",
)
def make_transcribe_audio(ctx: ToolContext) -> SafeTool:
    async def transcribe_audio(file: str) -> str:
        """Transcribe the speech in an attached audio file (mp3, wav, m4a, ...), given by its file name."""
        try:
            path = resolve_attachment(ctx, file)
        except FileRefused as exc:
            raise ToolError(f"{exc}") from None
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise ToolError(f"{path.name} is not an audio file (expected one of {', '.join(sorted(AUDIO_SUFFIXES))})") from None
        size = path.stat().st_size
        if size == 0:
            raise ToolError(f"{path.name} is empty (0 bytes)") from None
        settings = ctx.settings
        which = transcriber(settings)
        if which is None:
            raise ToolError(f"{NO_TRANSCRIBER}") from None
        try:
            if which == "openai":
                if size > API_MAX_BYTES:
                    raise ToolError(f"{path.name} is too large for the transcription API ({size:,} bytes; limit {API_MAX_BYTES:,})") from None
                text, label = await _openai_transcribe(path, settings), f"{settings.transcribe_model} via the transcription API"
            else:
                text = await asyncio.to_thread(_whisper_transcribe, path, settings.whisper_model)
                label = f"faster-whisper {settings.whisper_model}, local"
        except RuntimeError as exc:
            raise ToolError(f"{exc}") from None
        except Exception as exc:  # a decoder failing on a broken file, a model that cannot load
            raise ToolError(f"cannot transcribe {path.name}: {_clean(f'{type(exc).__name__}: {exc}', settings)}") from None
        if not text.strip():
            return f"Transcript of {path.name} ({label}): (empty: no speech was recognised)"
        return f"Transcript of {path.name} ({label}):\n{text.strip()}"

    return SafeTool(transcribe_audio, name="transcribe_audio", description=transcribe_audio.__doc__ or "")
