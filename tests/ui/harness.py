"""The browser harness shared by the UI tests, `make screenshots` and `bench/ui_latency.py`.

- `ChainlitApp`: the real app, `chainlit run chainlit_app.py --headless` on 127.0.0.1 (started without
  CI in its environment: chainlit's CI mode would replace OPENAI_API_KEY), in a scratch app root that
  holds copies of the committed `.chainlit/config.toml` and `chainlit.md`; ready when `/auth/config`
  answers. Its environment is built from scratch (no developer keys, no `.env`, HOME in the scratch dir
  so no cached `hf auth login` token is found) and any proxy-aware HTTP client is sent to a dead proxy,
  so the app can only reach the 127.0.0.1 servers a test gives it.
- `Scenarios`: scripted model replies chosen by the question a request is about, so several tests can
  share one scripted server without consuming each other's scripts.
- Playwright with Debian's chromium (never a downloaded browser), requests to anything but 127.0.0.1
  aborted, and the waits that make typing reliable (see chainlit-notes.md §3c).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.fakes.scripted_llm import RecordedRequest, ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
WELCOME_TEXT = "Ask anything"
FAKE_KEY = "sk-test-not-a-real-key-0000"
DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, so a stray internet request fails at once

Step = Any  # a scripted_llm step, or a callable (RecordedRequest) -> step


# --- scripted model ----------------------------------------------------------------------------------------
class Scenarios:
    """Replies keyed by a phrase of the question, then by agent; each (phrase, agent) has its own cursor."""

    def __init__(self) -> None:
        self._scripts: dict[str, dict[str, list[Step]]] = {}
        self._cursor: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, phrase: str, script: dict[str, list[Step]]) -> None:
        self._scripts[phrase.lower()] = script

    def respond(self, req: RecordedRequest) -> Step | None:
        question = req.question.lower()
        phrase = next((p for p in self._scripts if p in question), None)
        if phrase is None:
            return None
        steps = self._scripts[phrase].get(req.agent)
        if steps is None:
            return None
        with self._lock:
            i = self._cursor.get((phrase, req.agent), 0)
            if i >= len(steps):
                return None
            self._cursor[(phrase, req.agent)] = i + 1
        step = steps[i]
        return step(req) if callable(step) else step

    def server(self, *, token_delay: float = 0.0) -> ScriptedLLM:
        return ScriptedLLM({"default": self.respond}, token_delay=token_delay).start()


def last_tool_output(req: RecordedRequest) -> str:
    """The content of the newest tool message the model was sent (what its last tool call returned)."""
    for message in reversed(req.messages):
        if message.get("role") == "tool":
            content = message.get("content")
            return content if isinstance(content, str) else str(content)
    return ""


# --- the app -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(root: Path, llm: ScriptedLLM | None = None, **extra: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        HF_HOME=str(home / "hf"),
        ROUNDTABLE_ENV_FILE="",
        ROUNDTABLE_CACHE_DIR=str(root / "cache"),
        SANDBOX_ALLOW_SUBPROCESS="1",
        LLM_RETRY_BASE_DELAY="0.01",
        LLM_MAX_RETRIES="1",
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        ALL_PROXY=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        # No data layer unless a test asks for one (ROUNDTABLE_HISTORY=on, see test_browser_history.py): a stored
        # chat adds a login and a thread list the other tests do not expect.
        ROUNDTABLE_HISTORY="off",
    )
    if llm is not None:
        env.update(OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL=llm.url, LLM_PROVIDER="openai")
    env.update(extra)
    return env


class ChainlitApp:
    def __init__(self, env: dict[str, str], root: Path, *, port: int | None = None) -> None:
        self.env = dict(env)
        self.root = root
        self.port = port or free_port()
        self.log_path = root / "chainlit.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _prepare_root(self) -> Path:
        app_root = self.root / "app"
        (app_root / ".chainlit").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / ".chainlit" / "config.toml", app_root / ".chainlit" / "config.toml")
        shutil.copyfile(REPO / "chainlit.md", app_root / "chainlit.md")
        return app_root

    def start(self, timeout: float = 60.0) -> ChainlitApp:
        app_root = self._prepare_root()
        env = {k: v for k, v in self.env.items() if k not in ("CI", "HEADLESS", "DEBUG", "WATCH")}
        env["CHAINLIT_APP_ROOT"] = str(app_root)
        cmd = [sys.executable, "-m", "chainlit", "run", str(REPO / "chainlit_app.py"), "--headless",
               "--host", "127.0.0.1", "--port", str(self.port)]
        log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self._log = log
        self.proc = subprocess.Popen(cmd, cwd=app_root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chainlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{self.url}/auth/config", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chainlit did not become ready within {timeout:.0f}s:\n{self.log()}")

    def restart(self, timeout: float = 60.0) -> ChainlitApp:
        """Stop the app process and start a new one on the same port and root (an app restart: what is on
        disk stays, what was in memory is gone). The previous log is kept as chainlit.log.<n>."""
        self.stop()
        n = 1
        while self.log_path.with_name(f"chainlit.log.{n}").exists():
            n += 1
        if self.log_path.exists():
            self.log_path.rename(self.log_path.with_name(f"chainlit.log.{n}"))
        return self.start(timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: chainlit and the sandboxes it started
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> ChainlitApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def scratch_dir(prefix: str = "roundtable-ui-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stop_all(*servers: Any) -> None:
    """Stop the app and the fake servers of a browser stack, in order (None: one that never started)."""
    for server in servers:
        if server is not None:
            server.stop()


# --- the browser ---------------------------------------------------------------------------------------------
def chromium_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)


def _only_loopback(route: Any) -> None:
    if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def new_context(browser: Any, **kwargs: Any) -> Any:
    context = browser.new_context(**kwargs)
    context.route("**/*", _only_loopback)
    return context


def open_chat(page: Any, url: str, timeout_ms: int = 30_000) -> None:
    """Load the app and wait for the welcome message: typing before it arrives gets wiped (notes §3c)."""
    from playwright.sync_api import expect

    page.goto(url + "/")
    expect(page.locator(".step").filter(has_text=WELCOME_TEXT).first).to_be_visible(timeout=timeout_ms)


def ask(page: Any, text: str, files: list[Path] | None = None) -> None:
    from playwright.sync_api import expect

    if files:
        page.locator("#upload-button-input").set_input_files([str(f) for f in files])
        for f in files:
            expect(page.get_by_text(f.name).first).to_be_visible(timeout=10_000)
    box = page.locator("#chat-input")
    box.fill(text)
    expect(page.locator("#chat-submit")).to_be_enabled(timeout=10_000)
    page.locator("#chat-submit").click()


_FINAL = re.compile(r"Final answer|No answer")  # case-sensitive: the debate itself says "FINAL ANSWER:"


def final_answers(page: Any) -> Any:
    """The final-answer messages (the run step's own text never matches)."""
    return page.locator('.step[data-step-type="assistant_message"]').filter(has_text=_FINAL)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def evaluation_table(page: Any, url: str, timeout_ms: int = 120_000) -> Any:
    """Open the chat, run the course evaluation and wait for its table."""
    from playwright.sync_api import expect

    open_chat(page, url)
    page.get_by_role("button", name="Run the course evaluation").click()
    table = page.locator(".step").filter(has_text="Evaluation finished")
    expect(table).to_be_visible(timeout=timeout_ms)
    return table


# --- the README's screenshots (tests/ui/screenshots.py, screenshots_replay.py) --------------------------------
SHOT_WIDTH = 1280
SHOT_MARGIN = 24


def shoot_span(page: Any, top: Any, bottom: Any, path: Path) -> None:
    """Save the part of the page from `top` to `bottom` where they stand now (scroll them into place first)."""
    a, b = top.bounding_box(), bottom.bounding_box()
    y0 = max(0, a["y"] - SHOT_MARGIN)
    y1 = b["y"] + b["height"] + SHOT_MARGIN
    x0 = max(0, min(a["x"], b["x"]) - 120)
    page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": min(SHOT_WIDTH - x0, 1000), "height": y1 - y0})
    print(f"wrote {path}")


def screenshots_main(doc: str, take: Callable[[Path], None], argv: list[str] | None = None) -> int:
    """The command line of a screenshot script: `--out DIR` (default docs); exit 2 without the browser."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    if reason := chromium_missing():
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    take(args.out)
    return 0


# --- a client that skips the page's own script ----------------------------------------------------------------
_RAW_SOCKET_JS = """
async ({url, messages, until, timeoutMs}) => {
  // Chainlit's socket.io protocol spoken by hand (engine.io v4 over a WebSocket), with the page's cookies:
  // what a client without the page's composer script can send.
  const frames = [];
  let connected = false, closed = false, matched = false;
  const ws = new WebSocket(url.replace(/^http/, "ws") + "/ws/socket.io/?EIO=4&transport=websocket");
  const queue = [...messages];
  const sendNext = () => {
    const text = queue.shift();
    if (text === undefined) return;
    ws.send("42" + JSON.stringify(["client_message", {message: {id: crypto.randomUUID(), threadId: "", name: "User",
      type: "user_message", output: text, createdAt: new Date().toISOString()}, fileReferences: []}]));
  };
  return await new Promise((resolve) => {
    const done = () => { try { ws.close(); } catch (e) {} resolve({frames, connected, closed, matched}); };
    const timer = setTimeout(done, timeoutMs);
    ws.onmessage = (event) => {
      const data = String(event.data);
      frames.push(data.slice(0, 4000));
      if (data.startsWith("0{")) {
        ws.send("40" + JSON.stringify({sessionId: crypto.randomUUID(), clientType: "webapp", userEnv: "{}"}));
      } else if (data === "2") {
        ws.send("3");
      } else if (data.startsWith("40")) {
        connected = true;
        ws.send('42["connection_successful"]');
      } else if (data.startsWith('42["task_end"') && connected) {
        sendNext();  // the previous message (or the welcome) is done: send the next one
      }
      if (until && data.includes(until)) { matched = true; clearTimeout(timer); done(); }
    };
    ws.onclose = () => { closed = true; clearTimeout(timer); resolve({frames, connected, closed, matched}); };
  });
}
"""


def raw_socket(page: Any, url: str, messages: list[str], until: str, timeout_ms: int = 30_000) -> dict[str, Any]:
    """Connect to the app's socket from `page` without its frontend, send `messages` one after the other
    (each after the previous task ended), and return the frames received until one contains `until`."""
    return page.evaluate(_RAW_SOCKET_JS, {"url": url, "messages": messages, "until": until, "timeoutMs": timeout_ms})
