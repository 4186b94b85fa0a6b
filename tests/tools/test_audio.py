"""transcribe_audio through the real openai client against a local /v1/audio/transcriptions."""

from __future__ import annotations

import os
import sys
import types

import pytest

from agents.tools import audio
from tests.fakes.openai_audio import FakeOpenAIAudio
from tests.fakes.web import Reply
from tests.tools import documents
from tests.tools.conftest import call, tool_settings

KEY = "sk-test-audio-key-000000"


@pytest.fixture
def whisper_api(started) -> FakeOpenAIAudio:
    return started(FakeOpenAIAudio("The ferry leaves at seven and returns at five.", key=KEY))


def _ctx(make_ctx, api: FakeOpenAIAudio, **overrides):
    return make_ctx(tool_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=api.base_url, **overrides))


async def test_mp3_and_wav_are_uploaded_and_transcribed(make_ctx, workdir, whisper_api) -> None:
    mp3 = documents.mp3(workdir / "voicemail.mp3")
    documents.wav(workdir / "memo.wav")
    ctx = _ctx(make_ctx, whisper_api, TRANSCRIBE_MODEL="whisper-1")
    out = await call(ctx, "transcribe_audio", file="voicemail.mp3")
    assert out == "Transcript of voicemail.mp3 (whisper-1 via the transcription API):\nThe ferry leaves at seven and returns at five."
    upload = whisper_api.uploads[0]
    assert upload.file_name == "voicemail.mp3" and upload.content == mp3.read_bytes() and upload.model == "whisper-1"
    wav = await call(ctx, "transcribe_audio", file="memo.wav")
    assert wav.startswith("Transcript of memo.wav") and whisper_api.uploads[1].content[:4] == b"RIFF"


async def test_default_model_and_empty_speech(make_ctx, workdir, whisper_api) -> None:
    documents.mp3(workdir / "silence.mp3")
    whisper_api.text = ""
    out = await call(_ctx(make_ctx, whisper_api), "transcribe_audio", file="silence.mp3")
    assert out == "Transcript of silence.mp3 (gpt-4o-transcribe via the transcription API): (empty: no speech was recognised)"
    assert whisper_api.uploads[0].model == "gpt-4o-transcribe"


async def test_api_failures_are_clear_and_never_show_the_key(make_ctx, workdir, whisper_api) -> None:
    documents.mp3(workdir / "clip.mp3")
    ctx = _ctx(make_ctx, whisper_api, LLM_REQUEST_TIMEOUT=1.0)
    whisper_api.fault = Reply(500, {"error": {"message": "The server had an error processing your request.", "type": "server_error"}})
    out = await call(ctx, "transcribe_audio", file="clip.mp3")
    assert out.startswith("Error: the transcription API answered HTTP 500") and KEY not in out
    whisper_api.fault = Reply(200, {"text": "late"}, delay=4)
    assert "timed out after 1s" in await call(ctx, "transcribe_audio", file="clip.mp3")
    whisper_api.fault = None
    wrong = await call(make_ctx(tool_settings(OPENAI_API_KEY="sk-wrong-key-99999999", OPENAI_BASE_URL=whisper_api.base_url)), "transcribe_audio", file="clip.mp3")
    assert "HTTP 401" in wrong and "sk-wrong-key-99999999" not in wrong


async def test_bad_files(make_ctx, workdir, whisper_api) -> None:
    ctx = _ctx(make_ctx, whisper_api)
    (workdir / "empty.mp3").write_bytes(b"")
    (workdir / "notes.txt").write_text("not audio")
    (workdir / "huge.mp3").write_bytes(b"\x00")
    assert (await call(ctx, "transcribe_audio", file="empty.mp3")) == "Error: empty.mp3 is empty (0 bytes)"
    assert (await call(ctx, "transcribe_audio", file="notes.txt")).startswith("Error: notes.txt is not an audio file")
    assert (await call(ctx, "transcribe_audio", file="nope.mp3")).startswith("Error: no file named 'nope.mp3'")
    assert (await call(ctx, "transcribe_audio", file="../../etc/passwd")).startswith("Error: refused:")
    os.truncate(workdir / "huge.mp3", audio.API_MAX_BYTES + 1)  # sparse: no 25 MB written
    assert "too large for the transcription API" in await call(ctx, "transcribe_audio", file="huge.mp3")
    assert len(whisper_api.uploads) == 0


async def test_no_transcriber_configured(make_ctx, workdir, monkeypatch) -> None:
    documents.mp3(workdir / "clip.mp3")
    monkeypatch.setattr(audio, "local_whisper_available", lambda: False)
    out = await call(make_ctx(), "transcribe_audio", file="clip.mp3")
    assert out == f"Error: {audio.NO_TRANSCRIBER}"
    assert "OPENAI_API_KEY" in out and "[audio]" in out


async def test_local_whisper_path_joins_segments(make_ctx, workdir, monkeypatch) -> None:
    # faster-whisper (the [audio] extra) is not installed here and its weights need a download, so this
    # stands a module in for it: it checks our wiring (model size, file path, segment joining), not Whisper.
    seen: dict[str, object] = {}

    class FakeWhisperModel:
        def __init__(self, name: str, device: str, compute_type: str) -> None:
            seen["model"] = (name, device, compute_type)

        def transcribe(self, path: str, beam_size: int):
            seen["path"] = path
            return iter([types.SimpleNamespace(text=" Hello there."), types.SimpleNamespace(text=" General greeting. ")]), None

    monkeypatch.setitem(sys.modules, "faster_whisper", types.SimpleNamespace(WhisperModel=FakeWhisperModel))
    monkeypatch.setattr(audio, "local_whisper_available", lambda: True)
    monkeypatch.setattr(audio, "_WHISPER_MODELS", {})
    documents.wav(workdir / "hello.wav")
    out = await call(make_ctx(tool_settings(WHISPER_MODEL="tiny")), "transcribe_audio", file="hello.wav")
    assert out == "Transcript of hello.wav (faster-whisper tiny, local):\nHello there. General greeting."
    assert seen["model"] == ("tiny", "cpu", "int8") and str(seen["path"]).endswith("hello.wav")
