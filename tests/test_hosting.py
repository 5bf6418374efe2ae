"""The hosting configuration: the Pages workflow and Read the Docs build the book with nox."""

from __future__ import annotations

import importlib.util
import shlex
from types import ModuleType
from typing import Any

import nox.registry
import pytest
import yaml
from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
READTHEDOCS = ROOT / ".readthedocs.yaml"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def load_yaml(path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: expected a mapping at the top level"
    return data


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load_yaml(WORKFLOW)


@pytest.fixture(scope="module")
def readthedocs() -> dict[str, Any]:
    return load_yaml(READTHEDOCS)


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    """noxfile.py, imported: its sessions register themselves in nox's registry."""
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nox_sessions(noxfile) -> set[str]:
    """Names of the sessions noxfile.py defines, from nox's own registry."""
    return set(nox.registry.get())


def nox_calls(command: str) -> list[tuple[str, dict[str, str]]]:
    """Each ``nox -s NAME`` in a shell command, with the VAR=value assignments before it."""
    calls = []
    for line in command.replace("\\\n", " ").splitlines():
        if "nox" not in line:
            continue
        words = shlex.split(line, comments=True)
        env = {}
        while words and "=" in words[0] and not words[0].startswith("-"):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        if words[:2] == ["python", "-m"]:
            words = words[2:]
        if words[:1] == ["nox"] and "-s" in words:
            calls.append((words[words.index("-s") + 1], env))
    return calls


def workflow_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def uses(step: dict[str, Any]) -> str:
    return step.get("uses", "").split("@")[0]


def test_workflow_runs_on_push_to_main_and_by_hand(workflow):
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers


def test_workflow_builds_with_an_existing_nox_session_and_cpu_torch(workflow, nox_sessions):
    steps = [s for s in workflow_steps(workflow) if nox_calls(s.get("run", ""))]
    assert steps, "no step runs `nox -s ...`"
    for step in steps:
        for name, _ in nox_calls(step["run"]):
            assert name in nox_sessions, f"nox session {name!r} is not in noxfile.py"
        env = step.get("env", {})
        assert env.get("INITDOCS_TORCH_INDEX") == TORCH_INDEX
        assert "github.repository" in env["INITDOCS_REPOSITORY_URL"]
        assert "steps.pages.outputs.base_url" in env["INITDOCS_BASE_URL"]
    assert [name for s in steps for name, _ in nox_calls(s["run"])] == ["docs"]


def test_workflow_caches_execution_and_deploys_the_html(workflow):
    steps = workflow_steps(workflow)
    by_action = {uses(s): s for s in steps if "uses" in s}
    assert by_action["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert by_action["actions/cache"]["with"]["path"] == "docs/_build/.jupyter_cache"
    assert by_action["actions/upload-pages-artifact"]["with"]["path"] == "docs/_build/html"
    assert "actions/configure-pages" in by_action and "actions/deploy-pages" in by_action
    for step in steps:
        if "uses" in step:
            version = step["uses"].split("@")[1]
            assert version.startswith("v") and version[1:].isdigit(), step["uses"]
    deploy = next(
        j for j in workflow["jobs"].values() if "actions/deploy-pages" in map(uses, j["steps"])
    )
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert workflow["concurrency"]["group"]


def test_workflow_publishes_the_notebooks_branch_only_if_built(workflow):
    publish = next(s for s in workflow_steps(workflow) if "notebooks" in s.get("run", ""))
    assert 'if [ ! -d "$folder" ]' in publish["run"] and "exit 0" in publish["run"]
    assert "docs/_build/html/_notebooks" in publish["run"]
    assert "push --force" in publish["run"]
    build = next(j for j in workflow["jobs"].values() if publish in j["steps"])
    assert build["permissions"]["contents"] == "write"


def test_readthedocs_builds_with_nox_and_publishes_the_html(readthedocs, nox_sessions):
    assert readthedocs["version"] == 2
    build = readthedocs["build"]
    assert build["os"].startswith("ubuntu-")
    assert build["tools"]["python"] == "3.11"
    calls = [call for command in build["commands"] for call in nox_calls(command)]
    assert [name for name, _ in calls] == ["docs"]
    assert all(name in nox_sessions for name, _ in calls)
    assert all(env.get("INITDOCS_TORCH_INDEX") == TORCH_INDEX for _, env in calls)
    assert any(
        '"$READTHEDOCS_OUTPUT/html' in c and "docs/_build/html" in c for c in build["commands"]
    )


def test_the_docs_session_fails_on_warnings(noxfile, nox_sessions):
    assert "docs" in nox_sessions
    assert "-W" in noxfile.SPHINX_ARGS and "--keep-going" in noxfile.SPHINX_ARGS
