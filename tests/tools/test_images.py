"""describe_image: an attached image goes to the team's vision model as a multimodal message."""

from __future__ import annotations

import base64

from models.providers import build_client
from models.spec import Capabilities, ModelSpec
from models.usage import UsageLedger
from tests.conftest import settings_for
from tests.tools import documents
from tests.tools.conftest import call

VISION = ModelSpec(provider="openai", model="gpt-4.1", capabilities=Capabilities(vision=True))
BLIND = ModelSpec(provider="openai", model="gpt-4.1-nano", capabilities=Capabilities(vision=False))


def _client(server, spec=VISION, ledger=None):
    return build_client(spec, settings_for(server, LLM_MAX_RETRIES=0), agent="planner", ledger=ledger)


async def test_the_image_and_the_question_reach_the_vision_model(llm_server, make_ctx, workdir) -> None:
    server = llm_server({"image_reader": ["A red rectangle on the left half of a white card; no text."]})
    documents.png(workdir / "card.png", size=(64, 32))
    ledger = UsageLedger()
    ctx = make_ctx(vision_client=_client(server, ledger=ledger))
    out = await call(ctx, "describe_image", file="card.png", question="What colour is the shape?")
    assert out == "Image card.png (64x32), as seen by the vision model:\nA red rectangle on the left half of a white card; no text."
    request = server.requests_for("image_reader")[0]
    user = request.messages[-1]["content"]
    texts = [part["text"] for part in user if part["type"] == "text"]
    images = [part["image_url"]["url"] for part in user if part["type"] == "image_url"]
    assert "Question: What colour is the shape?" in texts[0]
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,")
    assert base64.b64decode(images[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert request.body["model"] == "gpt-4.1"
    assert ledger.by_agent()["planner"].calls == 1  # booked like any other call of that model


async def test_large_images_are_scaled_down_before_sending(llm_server, make_ctx, workdir) -> None:
    from PIL import Image

    server = llm_server({"image_reader": ["A big red block."]})
    documents.png(workdir / "poster.png", size=(4000, 1000))
    out = await call(make_ctx(vision_client=_client(server)), "describe_image", file="poster.png", question="What is shown?")
    assert "(4000x1000, scaled to 2048x512)" in out
    url = server.requests[0].messages[-1]["content"][1]["image_url"]["url"]
    import io

    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (2048, 512)


async def test_no_vision_model_is_a_clear_message(llm_server, make_ctx, workdir) -> None:
    server = llm_server({"image_reader": ["unused"]})
    documents.png(workdir / "card.png")
    for client in (None, _client(server, BLIND)):
        out = await call(make_ctx(vision_client=client), "describe_image", file="card.png", question="?")
        assert out.startswith("Error: no model of this team can see images") and "vision: true" in out
    assert server.requests == []


async def test_bad_image_files_and_model_failures(llm_server, make_ctx, workdir) -> None:
    server = llm_server({"image_reader": [{"status": 500}]})
    (workdir / "fake.png").write_bytes(b"this is not a png")
    (workdir / "notes.txt").write_text("text")
    documents.png(workdir / "card.png")
    ctx = make_ctx(vision_client=_client(server))
    assert (await call(ctx, "describe_image", file="fake.png", question="?")).startswith("Error: fake.png is not a readable image")
    assert (await call(ctx, "describe_image", file="notes.txt", question="?")).startswith("Error: notes.txt is not an image file")
    assert (await call(ctx, "describe_image", file="/etc/hostname", question="?")).startswith("Error: refused:")
    failed = await call(ctx, "describe_image", file="card.png", question="?")
    assert failed.startswith("Error: the vision model failed") and "\n" not in failed


async def test_a_slow_vision_model_and_a_huge_image(llm_server, make_ctx, workdir) -> None:
    import os

    from models.providers import build_client as build

    server = llm_server({"image_reader": [{"delay": 3, "content": "too late"}]})
    documents.png(workdir / "card.png")
    slow = build(VISION, settings_for(server, LLM_MAX_RETRIES=0, LLM_REQUEST_TIMEOUT=1), agent="planner")
    out = await call(make_ctx(vision_client=slow), "describe_image", file="card.png", question="?")
    assert out.startswith("Error: the vision model failed") and "\n" not in out
    (workdir / "huge.png").write_bytes(b"")
    os.truncate(workdir / "huge.png", 30_000_001)
    assert (await call(make_ctx(vision_client=slow), "describe_image", file="huge.png", question="?")).startswith("Error: huge.png is too large")
