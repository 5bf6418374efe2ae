"""The hosting configuration: the Pages workflow and Read the Docs build the book with nox."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "pages.yml"
READTHEDOCS = ROOT / ".readthedocs.yaml"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
NOTEBOOKS = "docs/_build/html/_notebooks"
#: An action pinned to a full commit SHA: ``owner/repo[/path]@<40 hex digits>``.
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
#: A ``uses:`` line of a workflow file, with its value and its trailing comment (if any).
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<value>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
#: The version comment after a pinned SHA: ``# v4.2.2``.
VERSION_COMMENT = re.compile(r"v\d+(\.\d+)*")
#: Commands the job that can write to the repository must never run (it only runs git).
CODE_RUNNERS = {"nox", "python", "python3", "pip", "pip3", "uv", "uvx", "pipx", "bash", "sh"}


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


def workflow_files() -> list:
    files = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert files, f"no workflow files in {WORKFLOWS}"
    return files


def all_uses(workflow: dict[str, Any]) -> list[str]:
    """Every ``uses:`` value of a workflow: steps' actions and jobs' reusable workflows."""
    values = []
    for job in workflow["jobs"].values():
        if "uses" in job:
            values.append(job["uses"])
        values += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return values


def job_steps(workflow: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return workflow["jobs"][name].get("steps", [])


def step_using(steps: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [step for step in steps if uses(step) == action]
    assert len(found) == 1, f"expected one step using {action}, found {len(found)}"
    return found[0]


def writes_contents(permissions: dict[str, str] | str) -> bool:
    """Whether a ``permissions:`` value lets the job write the repository's contents."""
    if isinstance(permissions, str):
        return permissions == "write-all"
    return permissions.get("contents") == "write"


def commands(script: str) -> list[list[str]]:
    """The words of each line of a shell script, continuation lines joined."""
    return [shlex.split(line, comments=True) for line in script.replace("\\\n", " ").splitlines()]


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
    assert workflow["env"]["INITDOCS_TORCH_INDEX"] == TORCH_INDEX  # every job's nox
    # The chapters execute in shards; the build job renders once, for the published address,
    # then prints the PDF edition from that build.
    assert [name for s in steps for name, _ in nox_calls(s["run"])] == ["execute", "render", "pdf"]
    render = steps[-2]
    assert render in job_steps(workflow, "build")
    assert "github.repository" in render["env"]["INITDOCS_REPOSITORY_URL"]
    assert "steps.pages.outputs.base_url" in render["env"]["INITDOCS_BASE_URL"]


def test_workflow_prints_the_pdf_edition_into_the_published_site(workflow, nox_sessions):
    steps = job_steps(workflow, "build")
    (render,) = [s for s in steps if [n for n, _ in nox_calls(s.get("run", ""))] == ["render"]]
    (pdf,) = [s for s in steps if [n for n, _ in nox_calls(s.get("run", ""))] == ["pdf"]]
    upload = step_using(steps, "actions/upload-pages-artifact")
    assert steps.index(render) < steps.index(pdf) < steps.index(upload)
    assert "pdf" in nox_sessions
    # The pages link the PDFs, and the pdf session's own build of the book (same variables as
    # the render's) has nothing left to do.
    assert render["env"]["INITDOCS_PDF"] == "1"
    assert pdf["env"] == render["env"]
    # Debian's Chromium prints them (the image has none), installed before the session runs.
    (chromium,) = [s for s in steps if "install -y -q chromium" in s.get("run", "")]
    assert steps.index(chromium) < steps.index(pdf)
    # A failing print leaves the merged execution cache saved.
    assert steps.index(step_using(steps, "actions/cache/save")) < steps.index(pdf)


def test_workflow_caches_execution_and_deploys_the_html(workflow):
    restore = step_using(job_steps(workflow, "execute"), "actions/cache/restore")
    save = step_using(job_steps(workflow, "build"), "actions/cache/save")
    for step in (restore, save):
        assert step["with"]["path"].split() == [
            "docs/_build/.jupyter_cache",
            "docs/_build/execution.json",  # the chapters' times balance the next shards
        ]
    assert restore["with"]["restore-keys"] == "jupyter-cache-"
    assert save["with"]["key"] == restore["with"]["key"]
    steps = workflow_steps(workflow)
    by_action = {uses(s): s for s in steps if "uses" in s}
    assert by_action["actions/upload-pages-artifact"]["with"]["path"] == "docs/_build/html"
    assert "actions/configure-pages" in by_action and "actions/deploy-pages" in by_action
    deploy = next(
        j for j in workflow["jobs"].values() if "actions/deploy-pages" in map(uses, j["steps"])
    )
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert workflow["concurrency"]["group"]


def test_every_action_is_pinned_to_a_commit_sha_with_its_version_in_a_comment():
    for path in workflow_files():
        values = all_uses(load_yaml(path))
        assert values, f"{path.name}: no `uses:`"
        text = path.read_text(encoding="utf-8")
        lines = [m for m in map(USES_LINE.match, text.splitlines()) if m]
        assert [m["value"] for m in lines] == values, f"{path.name}: `uses:` lines not as parsed"
        for value, line in zip(values, lines, strict=True):
            assert PINNED.fullmatch(value), f"{path.name}: {value} is not pinned to a commit SHA"
            comment = (line["comment"] or "").strip()
            assert VERSION_COMMENT.fullmatch(comment), f"{path.name}: {value} lacks `# vX.Y.Z`"


def test_the_workflow_permissions_are_read_only(workflow):
    permissions = workflow["permissions"]
    assert isinstance(permissions, dict) and permissions, "set the workflow's permissions"
    assert set(permissions.values()) <= {"read", "none"}, permissions


@pytest.mark.parametrize("name", ["execute", "build"])
def test_the_jobs_running_code_can_write_nothing_and_keep_no_credentials(workflow, name):
    job = workflow["jobs"][name]
    permissions = job["permissions"]
    assert isinstance(permissions, dict), f"the {name} job must list its permissions"
    assert permissions["contents"] == "read"
    assert set(permissions.values()) <= {"read", "none"}, permissions
    checkout = step_using(job["steps"], "actions/checkout")
    assert checkout["with"]["persist-credentials"] is False


def test_only_the_notebooks_job_writes_and_it_runs_only_git(workflow):
    writers = {
        name
        for name, job in workflow["jobs"].items()
        if writes_contents(job.get("permissions", workflow["permissions"]))
    }
    assert writers == {"notebooks"}
    job = workflow["jobs"]["notebooks"]
    assert job["permissions"] == {"contents": "write"}
    assert job["needs"] in ("build", ["build"])
    steps = job["steps"]
    assert [uses(s) for s in steps if "uses" in s] == ["actions/download-artifact"]
    scripts = [s["run"] for s in steps if "run" in s]
    assert scripts, "the notebooks job pushes with a `run:` step"
    words = [word for script in scripts for line in commands(script) for word in line]
    runners = {word.rsplit("/", 1)[-1] for word in words} & CODE_RUNNERS
    assert not runners, f"the notebooks job runs {sorted(runners)}"
    assert "git" in words


def test_the_notebooks_artifact_goes_from_build_to_the_notebooks_job(workflow):
    upload = step_using(job_steps(workflow, "build"), "actions/upload-artifact")
    download = step_using(job_steps(workflow, "notebooks"), "actions/download-artifact")
    assert upload["with"]["path"] == NOTEBOOKS
    assert upload["with"]["name"] == download["with"]["name"]


def test_workflow_publishes_the_notebooks_branch_only_if_built(workflow):
    build = workflow["jobs"]["build"]
    check = next(s for s in build["steps"] if s.get("id") == "notebooks")
    assert NOTEBOOKS in check["run"] and "::notice::" in check["run"]
    assert build["outputs"]["notebooks"] == "${{ steps.notebooks.outputs.built }}"
    upload = step_using(build["steps"], "actions/upload-artifact")
    assert upload["if"] == "steps.notebooks.outputs.built == 'true'"
    assert upload["with"]["if-no-files-found"] == "ignore"
    job = workflow["jobs"]["notebooks"]
    assert job["if"] == "needs.build.outputs.notebooks == 'true'"
    publish = next(s for s in job["steps"] if "push --force" in s.get("run", ""))
    folder = step_using(job["steps"], "actions/download-artifact")["with"]["path"]
    assert f"folder={folder}" in publish["run"]
    assert 'if [ ! -d "$folder" ]' in publish["run"] and "exit 0" in publish["run"]
    assert "--initial-branch=notebooks" in publish["run"]
    assert publish["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert not re.search(r"(echo|printf)[^\n]*GITHUB_TOKEN", publish["run"])


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
