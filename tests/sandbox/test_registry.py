"""One registry names the sandbox backends: a backend registered there is accepted by SANDBOX_BACKEND, the team
YAML, the CLI's status and `create_executor`, and an unknown name is refused everywhere with the valid ones."""

from __future__ import annotations

import pytest

import sandbox as sandbox_pkg
from config.settings import Settings
from sandbox import BackendInfo, SandboxUnavailable, create_executor
from sandbox.__main__ import status
from sandbox.subprocess_backend import SubprocessSandbox
from teams import load_team
from teams.loader import TeamConfigError
from teams.schema import SandboxSpec

VALID = "auto, docker, bwrap, wasm, subprocess"


class EchoSandbox(SubprocessSandbox):
    """A stand-in for a new backend: runs like subprocess, but declares itself isolated under its own name."""

    backend = "echo"
    isolated = True


ECHO = BackendInfo(
    executor=EchoSandbox,
    protects="nothing (a test double)",
    problem=lambda host: None,
    create=lambda host, files, limits: EchoSandbox(files=files, limits=limits, python=host.python),
)


@pytest.fixture
def echo_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register `echo` ahead of the shipped backends, as a new module first in `_MODULES` would be."""
    monkeypatch.setattr(sandbox_pkg, "REGISTRY", {"echo": ECHO, **sandbox_pkg.REGISTRY})


def test_the_shipped_backends_in_autos_order_and_what_each_protects() -> None:
    assert sandbox_pkg.BACKENDS == ("auto", "docker", "bwrap", "wasm", "subprocess")
    assert [info.isolated for info in sandbox_pkg.REGISTRY.values()] == [True, True, True, False]
    assert all(info.protects for info in sandbox_pkg.REGISTRY.values())


def test_a_registered_backend_is_accepted_everywhere_and_auto_prefers_it_in_its_place(echo_first, capsys) -> None:
    assert Settings(_env_file=None, SANDBOX_BACKEND="echo").sandbox_backend == "echo"  # type: ignore[call-arg]
    assert SandboxSpec(backend="echo").backend == "echo"
    assert isinstance(create_executor("echo"), EchoSandbox)
    picked = create_executor("auto")
    assert isinstance(picked, EchoSandbox) and picked.describe() == "echo"
    status()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "echo       ok" and lines[-1] == "auto       echo"
    with pytest.raises(SandboxUnavailable, match=r"choose one of auto, echo, docker, bwrap, wasm, subprocess\)"):
        create_executor("dokker")


def test_an_unknown_backend_in_a_team_yaml_names_the_key_and_the_valid_backends(tmp_path) -> None:
    team = tmp_path / "x.yaml"
    team.write_text("name: x\nagents:\n  - {name: a, role: solo}\nsandbox: {backend: dokker}\n")
    with pytest.raises(TeamConfigError) as info:
        load_team(team)
    assert f"x.yaml: sandbox.backend: unknown sandbox backend 'dokker' (choose one of {VALID})" in str(info.value)


def test_an_unknown_sandbox_backend_setting_names_the_valid_backends() -> None:
    with pytest.raises(ValueError, match=rf"unknown sandbox backend 'dokker' \(choose one of {VALID}\)"):
        Settings(_env_file=None, SANDBOX_BACKEND="dokker")  # type: ignore[call-arg]
    assert Settings(_env_file=None, SANDBOX_BACKEND="wasm").sandbox_backend == "wasm"  # type: ignore[call-arg]
