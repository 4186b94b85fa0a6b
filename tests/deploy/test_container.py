"""The shipped image (built by `.ci/app-image.sh`, `make image` locally): it starts as uid 1000, passes its
health check, answers a question through the browser with a scripted model on the host, keeps secrets out
of the image, and runs the coder's code isolated (bubblewrap where namespaces are allowed, wasm where they
are not; never the unisolated subprocess backend unless someone opts in). tests/deploy/test_space.py runs
it as a Space does. CI sets ROUNDTABLE_REQUIRE_SYSTEM=1, so a missing engine or image fails here."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import OPENAI_STRONG, skip_or_fail
from tests.deploy.docker_cli import IMAGE, docker, require_image
from tests.fakes.scripted_llm import ScriptedLLM
from tests.test_debate import QUESTION, debate_script
from tests.ui.harness import ask, chromium_missing, final_answers, launch, new_context, open_chat

KEY = "sk-container-test-key-0001"


def _wait_healthy(name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", name, check=False).stdout.strip()
        if status == "healthy":
            return
        if status in ("", "unhealthy") and docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip() != "true":
            break
        time.sleep(1)
    logs = docker("logs", "--tail", "60", name, check=False)
    pytest.fail(f"container {name} did not become healthy (last status: {status or 'gone'}):\n{logs.stdout}\n{logs.stderr}")


@pytest.fixture(scope="module")
def app() -> Iterator[dict[str, Any]]:
    require_image()
    llm = ScriptedLLM(debate_script(), host="0.0.0.0").start()
    port = llm.url.rsplit(":", 1)[1].split("/")[0]
    name = f"roundtable-test-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--name", name, "-p", "127.0.0.1::7860",
        "--add-host", "host.docker.internal:host-gateway",
        "-e", f"OPENAI_API_KEY={KEY}", "-e", f"OPENAI_BASE_URL=http://host.docker.internal:{port}/v1",
        "-e", "LLM_PROVIDER=openai",
        "-e", "CI=true",  # as in CI; the image's command must keep Chainlit's CI mode from replacing the key
        IMAGE,
    )
    try:
        _wait_healthy(name)
        mapped = docker("port", name, "7860").stdout.strip().splitlines()[0]
        yield {"name": name, "url": f"http://{mapped}", "llm": llm}
    finally:
        docker("rm", "-f", name, check=False)
        llm.stop()


def test_health_endpoint_proves_the_app_is_up(app: dict[str, Any]) -> None:
    with urllib.request.urlopen(app["url"] + "/healthz", timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "ok" and body["team"] == "debate"
    assert f"openai/{OPENAI_STRONG}" in body["models"] and body["model_problems"] == []
    test = json.loads(docker("image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", IMAGE).stdout)
    assert any("/healthz" in part for part in test)


def test_runs_as_uid_1000_with_a_writable_app_root(app: dict[str, Any]) -> None:
    assert docker("exec", app["name"], "id", "-u").stdout.strip() == "1000"
    assert docker("exec", app["name"], "sh", "-c", "test -w . && test -d .files && pwd").stdout.strip() == "/home/user/app"


def test_answers_a_question_in_the_browser(app: dict[str, Any]) -> None:
    if (missing := chromium_missing()) is not None:
        skip_or_fail(missing)
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = new_context(browser).new_page()
            open_chat(page, app["url"], timeout_ms=60_000)
            ask(page, QUESTION)
            expect(final_answers(page).filter(has_text="Final answer: 4600")).to_be_visible(timeout=90_000)
        finally:
            browser.close()
    requests = app["llm"].requests
    assert requests and {r.headers["authorization"] for r in requests} == {f"Bearer {KEY}"}  # not Chainlit's fake key
    assert {r.agent for r in requests} == {"planner", "researcher", "coder", "critic"}


LEAK_PROBE = (
    "import glob\n"
    "hits = []\n"
    "for p in glob.glob('/proc/[0-9]*/environ'):\n"
    "    try:\n"
    "        hits += [p] if b'KEYMARK' in open(p, 'rb').read() else []\n"
    "    except OSError:\n"
    "        pass\n"
    "print('LEAKED' if hits else 'CLEAN', hits)\n"
)


def test_code_run_by_the_app_cannot_read_its_secrets(app: dict[str, Any], tmp_path) -> None:
    probe = tmp_path / "leak.py"
    probe.write_text(LEAK_PROBE.replace("KEYMARK", KEY))
    docker("cp", str(probe), f"{app['name']}:/tmp/leak.py")
    # No shell in between: every process in the container is then the app's own (PID 1, chainlit, the host
    # of this sandbox run), as when the coder runs code.
    isolated = docker("exec", app["name"], "python", "-m", "sandbox", "run", "/tmp/leak.py", check=False)
    assert isolated.returncode == 0, isolated.stderr
    assert "CLEAN" in isolated.stdout, isolated.stdout
    assert "ran with wasm" in isolated.stderr, isolated.stderr  # Docker's default seccomp: no bwrap here
    # The unisolated backend is refused unless asked for...
    refused = docker("exec", app["name"], "python", "-m", "sandbox", "run", "--backend", "subprocess", "/tmp/leak.py", check=False)
    assert refused.returncode == 125 and "CLEAN" not in refused.stdout, refused.stdout + refused.stderr
    assert "not isolated" in refused.stderr
    # ...and where a developer opts in, PID 1, the app and the sandbox host are all non-dumpable, so even
    # same-user code cannot read the keys from /proc/<pid>/environ.
    opted = docker("exec", "-e", "SANDBOX_ALLOW_SUBPROCESS=1", app["name"],
                   "python", "-m", "sandbox", "run", "--backend", "subprocess", "/tmp/leak.py", check=False)
    assert opted.returncode == 0, opted.stderr
    assert "CLEAN" in opted.stdout, opted.stdout
    assert "NOT isolated" in opted.stdout + opted.stderr


def test_no_secret_is_baked_into_the_image() -> None:
    require_image()
    history = docker("history", "--no-trunc", IMAGE).stdout
    config = docker("image", "inspect", IMAGE).stdout
    for text in (history, config):
        assert "sk-" not in text and "hf_" not in text and "OPENAI_API_KEY=" not in text
    files = docker("run", "--rm", "--entrypoint", "sh", IMAGE, "-c", "ls -a /home/user/app").stdout.split()
    assert ".env" not in files and ".git" not in files and ".venv" not in files and "tests" not in files


def test_the_image_does_not_allow_the_unisolated_backend() -> None:
    require_image()
    env = json.loads(docker("image", "inspect", "-f", "{{json .Config.Env}}", IMAGE).stdout)
    assert not any(e.startswith("SANDBOX_ALLOW_SUBPROCESS=") for e in env), env
    assert "SANDBOX_BACKEND=auto" in env


def test_auto_takes_bubblewrap_where_namespaces_are_allowed() -> None:
    require_image()
    # Docker's default profile (tests/deploy/test_space.py) forbids bubblewrap's namespaces, and its masked
    # /proc paths keep bwrap from mounting a new /proc; without both the same image isolates with bwrap,
    # which `auto` prefers to wasm.
    probe = "print(sum(range(10)))"
    allowed = docker(
        "run", "--rm", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--security-opt", "systempaths=unconfined",
        "--entrypoint", "sh", IMAGE, "-c", f"echo '{probe}' > /tmp/p.py && python -m sandbox run /tmp/p.py", check=False,
    )
    assert allowed.returncode == 0 and "45" in allowed.stdout, allowed.stdout + allowed.stderr
    assert "ran with bwrap" in allowed.stderr, allowed.stderr
