"""The pull-request, sharded-publishing and weekly link-check workflows, and Dependabot's
configuration: parsed, and checked against the noxfile's sessions and .ci/run."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from typing import Any

import pytest
from conftest import ROOT
from test_hosting import (
    CODE_RUNNERS,
    WORKFLOWS,
    commands,
    job_steps,
    load_yaml,
    nox_calls,
    step_using,
    uses,
)

from initdocs.book import links

SHARDED = ["pages.yml", "pr.yml"]
CI_RUN = ROOT / ".ci" / "run"


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as True


@pytest.fixture(scope="module")
def pr() -> dict[str, Any]:
    return load_yaml(WORKFLOWS / "pr.yml")


@pytest.fixture(scope="module")
def linkcheck() -> dict[str, Any]:
    return load_yaml(WORKFLOWS / "linkcheck.yml")


@pytest.mark.parametrize("name", SHARDED)
def test_shards_run_as_a_matrix_and_the_render_merges_them(name, nox_sessions):
    workflow = load_yaml(WORKFLOWS / name)
    count = int(workflow["env"]["SHARDS"])
    execute = workflow["jobs"]["execute"]
    assert execute["strategy"]["matrix"]["shard"] == list(range(1, count + 1))
    assert execute["strategy"]["fail-fast"] is False
    run = next(s["run"] for s in execute["steps"] if nox_calls(s.get("run", "")))
    shard = "${{ matrix.shard }}/${SHARDS}"
    assert shlex.split(run) == ["nox", "-s", "execute", "--", "--shard", shard]
    upload = step_using(execute["steps"], "actions/upload-artifact")
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}"
    assert upload["with"]["path"].split() == [
        "docs/_build/shards/*/manifest.json",
        "docs/_build/shards/*/cache",
    ]
    restore = step_using(execute["steps"], "actions/cache/restore")
    assert "docs/_build/.jupyter_cache" in restore["with"]["path"].split()

    (render_job,) = [j for j in workflow["jobs"].values() if j.get("needs") == "execute"]
    download = step_using(render_job["steps"], "actions/download-artifact")
    assert download["with"] == {
        "pattern": "shard-*",
        "merge-multiple": True,
        "path": "docs/_build/shards",
    }
    later = render_job["steps"][render_job["steps"].index(download) :]
    sessions = [n for s in later for n, _ in nox_calls(s.get("run", ""))]
    assert sessions[0] in ("merge", "render")  # merge (render merges first) before any build
    assert set(sessions) <= nox_sessions
    # One Python for the shards and the render: it is part of every chapter's cache key.
    # 3.11, the Python the lock is made for and Read the Docs builds with.
    assert execute["container"] == render_job["container"]
    assert execute["container"].startswith("python:3.11-")


def test_pr_workflow_runs_ci_on_pull_requests_read_only(pr):
    assert set(triggers(pr)) == {"pull_request"}
    assert pr["permissions"] == {"contents": "read"}
    for name, job in pr["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
        checkout = step_using(job["steps"], "actions/checkout")
        assert checkout["with"]["persist-credentials"] is False, name
        pip = next(s for s in job["steps"] if s.get("with", {}).get("path") == "~/.cache/pip")
        assert uses(pip) == "actions/cache", name
    assert "secrets." not in (WORKFLOWS / "pr.yml").read_text(encoding="utf-8")


def test_pr_workflow_runs_what_ci_runs_with_no_execution(pr):
    steps = job_steps(pr, "test")
    (ci,) = [s for s in steps if ".ci/run" in s.get("run", "")]
    assert ci["run"].strip() == ".ci/run"  # exactly CI's script: the same nox command
    assert ci["env"] == {"INITDOCS_CACHE_ONLY": "1"}  # the tests' build executes nothing
    ci_calls = [words for words in commands(CI_RUN.read_text(encoding="utf-8")) if words]
    assert ["nox", "-s", "lint", "tests"] in ci_calls
    merge = next(s for s in steps if nox_calls(s.get("run", "")))
    assert steps.index(merge) < steps.index(ci)
    html = [s for s in steps if uses(s) == "actions/upload-artifact"]
    assert [s["with"]["path"] for s in html] == ["docs/_build/html"]
    assert steps.index(html[0]) > steps.index(ci) and html[0]["if"] == "${{ !cancelled() }}"


def test_linkcheck_runs_weekly_and_reports_in_one_issue(linkcheck, nox_sessions):
    on = triggers(linkcheck)
    assert "workflow_dispatch" in on
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    _minute, _hour, day, month, weekday = cron.split()
    assert (day, month) == ("*", "*") and weekday.isdigit()  # once a week
    assert linkcheck["permissions"] == {"contents": "read"}
    check_job = linkcheck["jobs"]["linkcheck"]
    assert check_job["permissions"] == {"contents": "read"}
    check = next(s for s in check_job["steps"] if s.get("id") == "check")
    assert [n for n, _ in nox_calls(check["run"])] == ["linkcheck"] and "linkcheck" in nox_sessions
    assert check["continue-on-error"] is True
    assert check_job["outputs"]["outcome"] == "${{ steps.check.outcome }}"
    upload = step_using(check_job["steps"], "actions/upload-artifact")
    assert upload["with"]["path"] == f"docs/_build/linkcheck/{links.REPORT}"

    issue = linkcheck["jobs"]["issue"]
    assert issue["permissions"] == {"issues": "write"}
    assert issue["if"] == "${{ !cancelled() }}"  # runs when the check failed, too
    assert [uses(s) for s in issue["steps"] if "uses" in s] == ["actions/download-artifact"]
    words = {w for s in issue["steps"] for line in commands(s.get("run", "")) for w in line}
    assert not words & CODE_RUNNERS  # never runs the repository's code
    assert "gh" in words


def issue_script(linkcheck: dict[str, Any]) -> str:
    return next(s["run"] for s in job_steps(linkcheck, "issue") if "run" in s)


@pytest.fixture
def fake_gh(tmp_path):
    """A `gh` on PATH that logs its arguments and lists an open issue if told to."""
    tool = tmp_path / "bin" / "gh"
    tool.parent.mkdir()
    tool.write_text(
        '#!/bin/sh\necho "$*" >> "$GH_LOG"\n'
        'if [ "$1 $2" = "issue list" ]; then printf "%s" "$OPEN_ISSUE"; fi\n'
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool.parent


def run_issue_script(linkcheck, tmp_path, fake_gh, outcome, open_issue="", report=None):
    if report is not None:
        (tmp_path / "linkcheck").mkdir(exist_ok=True)
        (tmp_path / "linkcheck" / links.REPORT).write_text(report)
    log, summary = tmp_path / "gh.log", tmp_path / "summary.md"
    for path in (log, summary):
        path.write_text("")
    env = dict(
        os.environ,
        PATH=f"{fake_gh}:{os.environ['PATH']}",
        GH_LOG=str(log),
        OPEN_ISSUE=open_issue,
        OUTCOME=outcome,
        RUN_URL="https://example.org/run/1",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    script = issue_script(linkcheck)
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True)
    return result.returncode, log.read_text().splitlines(), tmp_path / "body.md"


def test_the_issue_is_opened_updated_and_closed(linkcheck, tmp_path, fake_gh):
    table = links.markdown([{"filename": "a.md", "lineno": 3, "status": "broken", "uri": "u"}])
    code, calls, body = run_issue_script(linkcheck, tmp_path, fake_gh, "failure", "", table)
    assert code == 1  # broken links fail the run
    assert calls[0].startswith("issue list --state open")
    assert calls[1].startswith("issue create --title Broken links")
    assert "--body-file body.md" in calls[1]
    assert body.read_text().startswith(table) and "https://example.org/run/1" in body.read_text()

    code, calls, _ = run_issue_script(linkcheck, tmp_path, fake_gh, "failure", "7", table)
    assert code == 1
    assert calls[1] == "issue edit 7 --body-file body.md" and calls[2].startswith("issue comment 7")

    code, calls, _ = run_issue_script(linkcheck, tmp_path, fake_gh, "success", "7")
    assert code == 0
    assert calls[1] == "issue close 7 --comment Every link works again: https://example.org/run/1"

    code, calls, _ = run_issue_script(linkcheck, tmp_path, fake_gh, "success", "")
    assert code == 0 and len(calls) == 1  # nothing to close


def test_a_link_check_that_did_not_run_is_reported_not_silent(linkcheck, tmp_path, fake_gh):
    code, calls, body = run_issue_script(linkcheck, tmp_path, fake_gh, "failure")
    assert code == 1
    assert calls[1].startswith("issue create")
    assert "The link check did not finish" in body.read_text()


def test_dependabot_updates_the_lock_the_actions_and_npm_weekly():
    config = load_yaml(ROOT / ".github" / "dependabot.yml")
    assert config["version"] == 2
    updates = {entry["package-ecosystem"]: entry for entry in config["updates"]}
    assert set(updates) == {"pip", "github-actions", "npm"}
    for entry in updates.values():
        assert entry["directory"] == "/" and entry["schedule"]["interval"] == "weekly"
    assert (ROOT / "constraints.txt").is_file() and (ROOT / "package.json").is_file()
    # torch's version lives in pyproject.toml's [tool.initdocs]; `nox -s lock` pins it.
    assert {"dependency-name": "torch"} in updates["pip"]["ignore"]


def test_link_report_lists_broken_and_timed_out_links(tmp_path):
    results = [
        {"filename": "b.md", "lineno": 9, "status": "broken", "uri": "https://x/1", "info": "404"},
        {"filename": "a.md", "lineno": 2, "status": "working", "uri": "https://x/2", "info": ""},
        {"filename": "a.md", "lineno": 5, "status": "timeout", "uri": "https://x/3", "info": "t|o"},
        {"filename": "a.md", "lineno": 1, "status": "redirected", "uri": "https://x/4"},
    ]
    folder = tmp_path / "linkcheck"
    folder.mkdir()
    (folder / "output.json").write_text("\n".join(json.dumps(r) for r in results) + "\n")
    assert links.main([str(folder)]) == 1
    report = (folder / links.REPORT).read_text().splitlines()
    assert report[0].startswith("2 external link(s)")
    assert report[-2:] == [
        "| `docs/a.md` | 5 | <https://x/3> | timeout | t\\|o |",
        "| `docs/b.md` | 9 | <https://x/1> | broken | 404 |",
    ]
    (folder / "output.json").write_text(json.dumps(results[1]) + "\n")
    assert links.main([str(folder)]) == 0
    assert (folder / links.REPORT).read_text() == "Every external link of the book works.\n"


def test_the_sharding_sessions_exist(nox_sessions):
    assert {"execute", "merge", "render", "linkcheck"} <= nox_sessions
