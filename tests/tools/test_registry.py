"""Every tool is registered, buildable from the team YAMLs, described to the model, and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from autogen_core import CancellationToken

from agents.tools.registry import ToolContext, build_tools, entries, tool_names
from teams import load_team
from tests.tools.conftest import tool_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = [
    "calculator", "chess_position", "describe_image", "read_file", "read_page", "run_python", "transcribe_audio", "watch_video", "wayback",
    "web_search", "wikipedia_page", "wikipedia_search", "youtube_transcript",
]


def test_every_tool_is_registered() -> None:
    assert tool_names() == TOOLS


@pytest.mark.parametrize("team", ["debate", "solo", "small"])
def test_team_yamls_name_only_real_tools_and_they_build(team: str, tmp_path: Path) -> None:
    cfg = load_team(team)
    ctx = ToolContext(settings=tool_settings(), workdir=tmp_path)
    for agent in cfg.agents:
        tools = build_tools(agent.tools, ctx)
        assert [t.name for t in tools] == agent.tools
        for tool in tools:
            schema = tool.schema
            assert schema["description"].strip(), f"{tool.name} has no description for the model"
            assert schema["parameters"]["properties"], f"{tool.name} takes no arguments"


def test_researchers_get_the_research_tools_and_the_coder_keeps_run_python() -> None:
    debate = {a.name: a.tools for a in load_team("debate").agents}
    assert {"web_search", "read_page", "wikipedia_page", "youtube_transcript", "transcribe_audio", "describe_image", "read_file"} <= set(debate["researcher"])
    assert debate["coder"][0] == "run_python" and "read_file" in debate["coder"]
    solo = load_team("solo").agents[0].tools
    assert set(TOOLS) == set(solo)


def test_readme_documents_every_tool_and_its_settings() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"<!-- section:tools -->(.*?)<!-- /section:tools -->", readme, re.DOTALL)
    assert section, "README.md has no tools section"
    text = section.group(1)
    for name in TOOLS:
        assert f"`{name}" in text, f"README tools section does not document {name}"
    for variable in ("SERPER_API_KEY", "TAVILY_API_KEY", "BRAVE_API_KEY", "WIKIPEDIA_API_URL", "WAYBACK_API_URL", "OPENAI_API_KEY", "HF_TOKEN", "[audio]"):
        assert variable in text, f"README tools section does not mention {variable}"
    for entry in entries():
        if entry.needs:
            assert entry.name in text


async def test_nonsense_arguments_are_one_error_line_that_autogen_marks_as_an_error(tmp_path: Path) -> None:
    from autogen_core.tools import StaticWorkbench

    ctx = ToolContext(settings=tool_settings(), workdir=tmp_path)
    tools = build_tools(TOOLS, ctx)
    bench = StaticWorkbench(tools)  # what AutoGen's AssistantAgent calls tools through
    for tool in tools:
        result = await bench.call_tool(tool.name, {"unexpected": 1}, CancellationToken(), call_id="c1")
        text = result.to_text()
        assert result.is_error, (tool.name, text)
        assert text.startswith(f"Error: bad arguments for {tool.name}: ") and "\n" not in text, (tool.name, text)
