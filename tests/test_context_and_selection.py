"""What each agent's model is sent, and who speaks next under the rules."""

from __future__ import annotations

from autogen_agentchat.messages import TextMessage
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    UserMessage,
)

from agents.context import BoundedContext
from teams.loader import load_team
from teams.selection import RuleSelector


def call(i: int) -> AssistantMessage:
    return AssistantMessage(content=[FunctionCall(id=f"c{i}", name="read_page", arguments="{}")], source="researcher")


def result(i: int, size: int) -> FunctionExecutionResultMessage:
    return FunctionExecutionResultMessage(content=[FunctionExecutionResult(content="x" * size, name="read_page", call_id=f"c{i}")])


async def test_old_tool_results_shrink_but_the_current_turns_stay_whole() -> None:
    ctx = BoundedContext(keep_last=20, old_tool_result_chars=500, message_chars=50_000)
    for m in [UserMessage(content="the question", source="user"), call(1), result(1, 20_000),
              AssistantMessage(content="summary of page one", source="researcher"),
              UserMessage(content="read page two", source="planner"), call(2), result(2, 20_000)]:
        await ctx.add_message(m)
    sent = await ctx.get_messages()
    sizes = [len(m.content[0].content) for m in sent if isinstance(m, FunctionExecutionResultMessage)]
    assert sizes[0] < 700 and "truncated" in sent[2].content[0].content  # an earlier turn: cut, and says so
    assert sizes[1] == 20_000  # the result the model must read now
    assert sent[0].content == "the question"


async def test_the_question_stays_and_no_tool_result_is_orphaned() -> None:
    ctx = BoundedContext(keep_last=3, old_tool_result_chars=500, message_chars=5_000)
    await ctx.add_message(UserMessage(content="the question", source="user"))
    for i in range(5):
        await ctx.add_message(call(i))
        await ctx.add_message(result(i, 10))
    sent = await ctx.get_messages()
    assert sent[0].content == "the question"
    assert "earlier messages omitted" in sent[1].content
    body = sent[2:]
    assert not isinstance(body[0], FunctionExecutionResultMessage)  # providers reject a result without its call
    assert len(body) <= 3


def msg(source: str, text: str) -> TextMessage:
    return TextMessage(source=source, content=text)


def test_rule_selection_for_the_debate_team() -> None:
    select = RuleSelector(load_team("debate"))
    assert select([msg("user", "question")]) == "planner"
    assert select([msg("planner", "Plan.\nNEXT: coder")]) == "coder"
    assert select([msg("planner", "Plan without a handoff")]) == "researcher"  # default_next
    assert select([msg("researcher", "Found it.\nFINAL ANSWER: 3\nNEXT: coder")]) == "critic"  # proposals go to review
    assert select([msg("critic", "REJECTED: wrong unit.\nNEXT: researcher")]) == "researcher"
    assert select([msg("critic", "REJECTED: wrong unit.")]) == "planner"
    assert select([msg("coder", "**NEXT:** @Planner")]) == "planner"  # markdown and case tolerated
    assert select([msg("coder", "NEXT: coder")]) == "planner"  # handing to oneself is ignored
    assert select([msg("coder", "NEXT: nobody")]) == "planner"


def test_llm_mode_falls_through_only_where_no_rule_applies() -> None:
    team = load_team("debate").model_copy(deep=True)
    team.selection.mode = "llm"
    select = RuleSelector(team, fall_through=True)
    assert select([msg("user", "q")]) == "planner"
    assert select([msg("coder", "FINAL ANSWER: 1")]) == "critic"
    assert select([msg("coder", "done")]) is None
    assert "coder" not in select.candidates([msg("coder", "done")])
