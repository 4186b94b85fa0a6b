"""Prompt tokens of one scripted 8-turn debate: our debate.yaml against AutoGen's stock SelectorGroupChat.

Both runs use the same four agents (same prompts, tools, models, tool reflection) on the same scripted model
server, and must reach the same final answer. What differs is what the team sends:
  ours  - rule-based speaker selection (no selector calls) and bounded contexts (old tool results cut,
          recent turns only);
  stock - an LLM picks every speaker from the full shared history, and every agent resends its whole
          history (every tool result in full) on every call.
Target: ours <= 0.5x the stock baseline's prompt tokens.

    python bench/debate_cost.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination  # noqa: E402
from autogen_agentchat.teams import SelectorGroupChat  # noqa: E402

from agents.build import system_prompt  # noqa: E402
from agents.roles import describe  # noqa: E402
from agents.tools import registry  # noqa: E402
from agents.tools.registry import SafeTool, ToolContext, ToolEntry, build_tools  # noqa: E402
from config.settings import Settings  # noqa: E402
from models.providers import build_client  # noqa: E402
from teams import load_team, solve  # noqa: E402
from teams.answer import extract_answer, normalise_answer  # noqa: E402
from tests.fakes.scripted_llm import ScriptedLLM  # noqa: E402

QUESTION = "How many people live in Alderbrook and Birchwell together, according to the regional archive?"
ARCHIVE_PAGE = " ".join(f"Record {i}: parish entry, harvest notes, weather, tithe rolls and boundary disputes." for i in range(220))


def archive_lookup(query: str) -> str:
    """Read the regional archive's page about a query (a long page, as real pages are)."""
    return f"Archive page for {query!r}:\n{ARCHIVE_PAGE}\nCensus line: Alderbrook 1,200; Birchwell 3,400."


LONG_PRINT = "print('\\n'.join(f'row {i}: ' + 'x' * 60 for i in range(60))); print(1200 + 3400)"


def script() -> dict:
    call = lambda name, **args: {"tool_calls": [{"name": name, "arguments": args}]}  # noqa: E731
    return {
        "planner": [
            "1. Find both populations in the archive. 2. Check a second record. 3. Add them.\nNEXT: researcher",
            "Check the second record for Birchwell too.\nNEXT: researcher",
            "The critic is right.\nFINAL ANSWER: 4600",
        ],
        "researcher": [
            call("archive_lookup", query="Alderbrook"),
            call("archive_lookup", query="Birchwell"),
            "Archive: Alderbrook 1,200; Birchwell 3,400.\nNEXT: planner",
            call("archive_lookup", query="Birchwell census"),
            "The second record agrees: Birchwell 3,400.\nNEXT: coder",
        ],
        "coder": [call("run_python", code=LONG_PRINT), "The sum is 4600.\nFINAL ANSWER: 4,600 people"],
        "critic": [
            "REJECTED: a bare number, without the unit or separator.\nNEXT: planner",
            "APPROVED\nFINAL ANSWER: 4600",
        ],
        # only the stock team asks a selector: the same order of speakers
        "selector": ["planner", "researcher", "planner", "researcher", "coder", "critic", "planner", "critic"],
    }


def settings(server: ScriptedLLM) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, OPENAI_API_KEY="sk-bench-0000", OPENAI_BASE_URL=server.url, LLM_PROVIDER="openai",
        SANDBOX_ALLOW_SUBPROCESS=True,
    )


def bench_team():
    team = load_team("debate").model_copy(deep=True)
    team.agent("researcher").tools = ["archive_lookup"]
    return team


async def run_ours() -> tuple[ScriptedLLM, str]:
    with ScriptedLLM(script()) as server:
        result = await solve(QUESTION, bench_team(), settings=settings(server))
        return server, result.answer


async def run_stock() -> tuple[ScriptedLLM, str]:
    """The same agents in AutoGen's stock SelectorGroupChat: LLM selection, default (unbounded) contexts."""
    team = bench_team()
    with ScriptedLLM(script()) as server:
        s = settings(server)
        import tempfile

        from sandbox import create_executor

        executor = create_executor("subprocess", allow_subprocess=True)
        ctx = ToolContext(settings=s, workdir=Path(tempfile.mkdtemp()), executor=lambda: _started(executor))
        agents = [
            AssistantAgent(
                spec.name,
                model_client=build_client(team.model_spec(spec.model), s, agent=spec.name),
                tools=build_tools(spec.tools, ctx) or None,  # type: ignore[arg-type]
                description=describe(spec.role),
                system_message=system_prompt(team, spec),
                model_client_stream=spec.stream,
                reflect_on_tool_use=bool(spec.tools),
                max_tool_iterations=spec.max_tool_iterations,
            )
            for spec in team.agents
        ]
        selector = build_client(team.model_spec("default"), s, agent="selector")
        stock = SelectorGroupChat(
            agents,
            model_client=selector,
            selector_prompt="You are the selector of a group chat.\n" + SelectorGroupChat.__init__.__kwdefaults__["selector_prompt"],
            termination_condition=TextMentionTermination("APPROVED", sources=["critic"]) | MaxMessageTermination(40),
        )
        last = ""
        async for item in stock.run_stream(task=QUESTION):
            if getattr(item, "source", "") == "critic":
                last = item.to_text()
        await executor.stop()
        return server, normalise_answer(extract_answer(last) or "")


async def _started(executor):  # type: ignore[no-untyped-def]
    await executor.start()
    return executor


def main() -> None:
    from loguru import logger

    logger.remove()  # the comparison, not the debate, is the output
    registry._REGISTRY["archive_lookup"] = ToolEntry(
        "archive_lookup", "bench tool", lambda ctx: SafeTool(archive_lookup, name="archive_lookup", description=archive_lookup.__doc__ or "")
    )
    ours, ours_answer = asyncio.run(run_ours())
    stock, stock_answer = asyncio.run(run_stock())
    rows = []
    for label, server in (("ours (debate.yaml)", ours), ("stock SelectorGroupChat", stock)):
        calls = len(server.requests)
        prompt = sum(r.prompt_tokens for r in server.requests)
        selector = sum(r.prompt_tokens for r in server.requests_for("selector"))
        rows.append((label, calls, prompt, selector))
    print(f"{'team':<26}{'model calls':>12}{'prompt tokens':>15}{'of which selector':>19}")
    for label, calls, prompt, selector in rows:
        print(f"{label:<26}{calls:>12}{prompt:>15}{selector:>19}")
    for label, server in (("ours", ours), ("stock", stock)):
        per_agent = {}
        for r in server.requests:
            per_agent.setdefault(r.agent, []).append(r.prompt_tokens)
        print(f"  {label:<6}" + "  ".join(f"{a}: {len(v)} calls/{sum(v)} tok" for a, v in per_agent.items()))
    ratio = rows[0][2] / rows[1][2]
    print(f"final answers: ours={ours_answer!r} stock={stock_answer!r} (same: {ours_answer == stock_answer})")
    print(f"prompt-token ratio ours/stock: {ratio:.2f} (target <= 0.50: {'met' if ratio <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
