"""The contributor guide stays short and points to the files that hold the rules, instead of
copying them: every file it names exists, and its glue example is what the check enforces."""

from __future__ import annotations

import re

from conftest import ROOT

from initdocs.book import chapters

GUIDE = ROOT / "CONTRIBUTING.md"
#: A repository path in inline code: ``src/initdocs/xception.py``, ``docs/_build/``.
PATH = re.compile(r"`((?:src|tests|docs|\.github)/[\w./-]*)`")


def test_the_guide_is_at_most_200_lines():
    assert len(GUIDE.read_text(encoding="utf-8").splitlines()) <= 200


def test_the_guide_points_to_the_template_and_the_checks():
    text = GUIDE.read_text(encoding="utf-8")
    for rules in ("src/initdocs/book/chapter_template.md", "src/initdocs/book/chapters.py"):
        assert f"`{rules}`" in text and (ROOT / rules).is_file()
    for command in ("initdocs new", "initdocs check", "nox -s preview", "nox -s lint tests"):
        assert command in text
    for part in chapters.RUBRIC[1:]:  # the parts live in the template, not in the guide
        assert f"## {part}" not in text


def test_every_file_the_guide_names_exists():
    text = GUIDE.read_text(encoding="utf-8")
    named = {path for path in PATH.findall(text) if "<" not in path and "NN" not in path}
    assert len(named) >= 5
    missing = sorted(p for p in named if not (ROOT / p).exists() and not p.startswith("docs/_"))
    assert not missing, f"CONTRIBUTING.md names files that are not in the repository: {missing}"


def test_the_guide_links_nothing_outside_the_repository():
    assert not re.search(r"\]\(https?://", GUIDE.read_text(encoding="utf-8"))


def test_the_glue_example_passes_the_experiment_check():
    """The guide's example, put in a chapter's experiment, has no typed number to report."""
    text = GUIDE.read_text(encoding="utf-8")
    example = text.split("````md\n", 1)[1].split("\n````", 1)[0]
    assert "glue(" in example and "assert " in example and "{glue:text}" in example
    prose = example.rsplit("```\n", 1)[1]
    assert not chapters._TYPED_NUMBER.search(chapters._NOT_PROSE.sub("", prose))
    assert chapters._TYPED_NUMBER.search("The separable net is 2.5 points more accurate.")
