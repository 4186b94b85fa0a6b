"""Role prompts tell an agent about a tool only when it has it."""

from __future__ import annotations

import pytest

from agents.prompts import render_prompt

KW = dict(name="r", team="t", roster="", marker="FINAL ANSWER:", handoff="NEXT:", approval="APPROVED", rejection="REJECTED")


@pytest.mark.parametrize("role", ["researcher", "solo"])
def test_the_chess_line_is_there_only_for_an_agent_with_chess_position(role: str) -> None:
    without = render_prompt(role, tools=["web_search"], **KW)  # type: ignore[arg-type]
    with_tool = render_prompt(role, tools=["web_search", "chess_position"], **KW)  # type: ignore[arg-type]
    assert "chess_position" not in without
    assert "call chess_position" in with_tool
    assert "[if " not in with_tool and "[if " not in without


def test_an_override_prompt_gets_the_same_rule() -> None:
    text = render_prompt("researcher", tools=["calculator"], override="Hi $name.\n[if calculator] Use it.\n[if run_python] Code.\n",
                         **KW)  # type: ignore[arg-type]
    assert text == "Hi r.\nUse it.\n"


def test_the_video_line_is_there_only_for_an_agent_with_watch_video() -> None:
    assert "watch_video" not in render_prompt("researcher", tools=["web_search"], **KW)  # type: ignore[arg-type]
    assert "call watch_video" in render_prompt("researcher", tools=["watch_video"], **KW)  # type: ignore[arg-type]
