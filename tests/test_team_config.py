"""Team YAMLs: the shipped ones load; each kind of broken config fails at load, naming file, key path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from teams import TeamConfigError, available_teams, load_team

VALID = {
    "name": "t",
    "agents": [
        {"name": "planner", "role": "planner"},
        {"name": "researcher", "role": "researcher", "tools": ["calculator"]},
        {"name": "critic", "role": "critic"},
    ],
    "selection": {"mode": "rules", "first": "planner", "reviewer": "critic"},
    "termination": {"approver": "critic"},
}


def write(tmp_path: Path, data: object, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(TeamConfigError) as info:
        load_team(path)
    return str(info.value).splitlines()


def mutate(**changes: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        target = data
        keys = dotted.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return data


def test_shipped_teams_load() -> None:
    names = {p.stem for p in available_teams()}
    assert {"debate", "solo", "small"} <= names
    debate = load_team("teams/debate.yaml")
    assert [a.role for a in debate.agents] == ["planner", "researcher", "coder", "critic"]
    assert debate.termination.approver == "critic"
    assert load_team("solo").agents[0].tools  # the baseline has every tool


def test_unknown_tool_names_the_file_the_key_path_and_a_suggestion(tmp_path: Path) -> None:
    data = mutate(agents__1__tools=["calculator", "calculater"])
    assert problems_of(write(tmp_path, data)) == [
        f"{tmp_path / 'x.yaml'}: agents[1].tools[1]: unknown tool 'calculater' (did you mean 'calculator'?)"
    ]


def test_the_issue_example_message_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "teams").mkdir()
    data = mutate()
    data["agents"].append({"name": "coder", "role": "coder", "tools": ["serch"]})
    write(tmp_path / "teams", data)
    assert problems_of(Path("teams/x.yaml"))[0].startswith("teams/x.yaml: agents[3].tools[0]: unknown tool 'serch'")


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nagents:\n  - name: planner\n    role: [planner\n")
    [line] = problems_of(path)
    assert "invalid YAML" in line and "line " in line and "column" in line


@pytest.mark.parametrize("text,expected", [("", "the file is empty"), ("- a\n- b\n", "the file is a list")])
def test_a_file_that_is_not_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problems_of(write(tmp_path, text))[0]


def test_missing_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: file not found"]


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    data = mutate()
    data["agents"][1]["toolz"] = ["calculator"]
    assert problems_of(write(tmp_path, data))[0].endswith("agents[1]: unknown key 'toolz' (did you mean 'tools'?)")


def test_wrong_type_and_bad_choice(tmp_path: Path) -> None:
    data = mutate(termination__max_turns="many", selection__mode="democracy")
    lines = problems_of(write(tmp_path, data))
    assert any(ln.endswith("termination.max_turns: Input should be a valid integer, unable to parse string as an integer") for ln in lines)
    assert any("selection.mode: 'democracy' is not allowed: expected 'rules', 'llm' or 'round_robin'" in ln for ln in lines)


def test_missing_required_key(tmp_path: Path) -> None:
    data = mutate()
    del data["agents"][0]["role"]
    assert problems_of(write(tmp_path, data))[0].endswith("agents[0].role: required key is missing")


def test_unknown_agent_reference(tmp_path: Path) -> None:
    data = mutate(selection__reviewer="critik")
    assert problems_of(write(tmp_path, data)) == [
        f"{tmp_path / 'x.yaml'}: selection.reviewer: unknown agent 'critik' (did you mean 'critic'?)"
    ]


def test_unknown_model_profile(tmp_path: Path) -> None:
    data = mutate(agents__0__model="strong")
    assert problems_of(write(tmp_path, data))[0].endswith("agents[0].model: unknown model profile 'strong' (defined: default)")


def test_duplicate_and_invalid_agent_names(tmp_path: Path) -> None:
    data = mutate()
    data["agents"][2]["name"] = "planner"
    assert problems_of(write(tmp_path, data))[0].endswith("agents[2].name: duplicate agent name 'planner'")
    data["agents"][2]["name"] = "the critic"
    assert "agents[2].name: String should match pattern" in problems_of(write(tmp_path, data))[0]


def test_rules_need_two_agents(tmp_path: Path) -> None:
    data = {"name": "one", "agents": [{"name": "solo", "role": "solo"}], "selection": {"mode": "rules"}}
    assert problems_of(write(tmp_path, data))[0].endswith("selection.mode: 'rules' needs at least two agents; use 'round_robin'")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = mutate(selection__first="boss", agents__1__tools=["nope"])
    assert len(problems_of(write(tmp_path, data))) == 2


def test_model_spec_keys_are_checked(tmp_path: Path) -> None:
    data = mutate()
    data["models"] = {"default": {"provider": "openai", "temprature": 0.2}}
    assert problems_of(write(tmp_path, data))[0].endswith("models.default: unknown key 'temprature' (did you mean 'temperature'?)")


def test_an_agent_without_tools_gets_its_roles_default_tools_and_an_empty_list_means_none(tmp_path: Path) -> None:
    from agents.roles import default_tools

    data = yaml.safe_load(yaml.safe_dump(VALID))
    data["agents"].append({"name": "coder", "role": "coder"})
    data["agents"][1].pop("tools")
    data["agents"][0]["tools"] = []
    team = load_team(write(tmp_path, data))
    assert team.agent("coder").tools == default_tools("coder") == ["run_python", "read_file"]
    assert "web_search" in team.agent("researcher").tools and "wikipedia_page" in team.agent("researcher").tools
    assert team.agent("planner").tools == [] and team.agent("critic").tools == []
