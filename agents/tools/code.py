"""`run_python`: the coder's tool. Runs a program in the question's sandbox and returns what it printed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from autogen_core.code_executor import CodeBlock

from agents.tools.errors import ToolError
from agents.tools.registry import SafeTool, ToolContext, register
from observability import metrics
from observability.tracing import maybe_span

RUN_PYTHON_DESCRIPTION = (
    "Run a complete Python 3 program in the question's sandbox and return its exit code and output. "
    "Do not rely on network access. The question's attached files are in the current working directory. "
    "Always print() the values you need; nothing else is returned."
)


@dataclass(frozen=True)
class CodeOutput:
    """What one program did: the run keeps the structure, the model reads `render()`."""

    exit_code: int
    output: str
    backend: str  # e.g. "docker", or "subprocess (NOT isolated)"
    isolated: bool

    def render(self) -> str:
        output = self.output if self.output.strip() else "(no output; print() what you need)"
        return f"exit code {self.exit_code}\n{output}"


@register("run_python", "Run Python in the question's sandbox (attachments in the working directory)",
          code_argument="code")
def make_run_python(ctx: ToolContext) -> SafeTool:
    async def run_python(code: str) -> CodeOutput:
        if ctx.executor is None:
            raise ToolError("no sandbox is configured for this team")
        executor = await ctx.executor()
        with maybe_span(ctx.telemetry, "sandbox run", None, **{"roundtable.sandbox.backend": getattr(executor, "backend", "")}) as span:
            started = time.monotonic()
            result = await executor.execute_code_blocks([CodeBlock(code=code, language="python")], ctx.abort)
            metrics.sandbox_run(str(getattr(executor, "backend", "") or type(executor).__name__), time.monotonic() - started)
            if span is not None:
                span.set_attribute("roundtable.sandbox.exit_code", result.exit_code)
        describe = getattr(executor, "describe", None)
        return CodeOutput(result.exit_code, result.output, describe() if callable(describe) else type(executor).__name__,
                          bool(getattr(executor, "isolated", True)))

    # timeout=None: the sandbox enforces the team's own time limit (sandbox.timeout_seconds, up to an hour)
    return SafeTool(run_python, name="run_python", description=RUN_PYTHON_DESCRIPTION, max_chars=8_000, timeout=None)
