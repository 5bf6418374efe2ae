"""The ``initdocs`` command as a contributor meets it: every mistake gets a clear message,
a non-zero exit, and nothing written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import BIB, DOCS, RECORDS, ROOT

from initdocs.book.check import check_paths
from initdocs.book.cli import main, slugify
from initdocs.book.files import Repository

XCEPTION = DOCS / "sessions" / "01-xception.md"
NEW = [
    "new",
    "--date",
    "2021-12-12",
    "--title",
    "Deep Residual Learning for Image Recognition",
    "--paper",
    "ResNet",
    "--topic",
    "CV: Residual Networks",
    "--key",
    "he2016deep",
    "--paper-url",
    "https://arxiv.org/abs/1512.03385",
    "--presenter",
    "Jane Doe",
    "--link",
    "Slides=https://example.org/slides.pdf",
]


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """A copy of the book's sources: the records, the bibliography and the Xception chapter."""
    (tmp_path / "docs" / "sessions").mkdir(parents=True)
    shutil.copy(BIB, tmp_path / "references.bib")
    shutil.copy(RECORDS, tmp_path / "docs" / "sessions.toml")
    shutil.copy(XCEPTION, tmp_path / "docs" / "sessions" / "01-xception.md")
    return Repository(tmp_path)


def snapshot(repo: Repository) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(repo.root.rglob("*")) if p.is_file()}


def run(repo: Repository, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(repo.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


# -- the real book --------------------------------------------------------------------------


def test_the_book_passes_its_own_check():
    problems, checked = check_paths(Repository(ROOT))
    assert [str(p) for p in problems] == []
    assert checked >= 3  # the records, the bibliography, at least one chapter


def test_check_without_problems_exits_zero(repo, capsys):
    code, out, err = run(repo, capsys, "check")
    assert (code, out) == (0, "")
    assert "3 file(s) checked, no problems" in err


def test_sessions_table_and_json(repo, capsys):
    code, out, _ = run(repo, capsys, "sessions")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 12 and lines[1].split()[:3] == ["1", "2021-01-10", "Xception"]
    assert "(not written)" in lines[2]
    code, out, _ = run(repo, capsys, "sessions", "--json")
    rows = json.loads(out)
    assert [r["number"] for r in rows] == list(range(1, 12))
    assert rows[0]["chapter_written"] is True and rows[1]["chapter_written"] is False
    assert rows[0]["start"] == "2021-01-10T17:00:00+09:00"


# -- initdocs new ---------------------------------------------------------------------------


def test_new_creates_record_and_template_chapter_that_fails_check(repo, capsys):
    code, out, _ = run(repo, capsys, *NEW)
    assert code == 0
    chapter = repo.chapters_dir / "12-resnet.md"
    assert "created docs/sessions/12-resnet.md and session 12" in out
    code, out, _ = run(repo, capsys, "sessions", "--json")
    record = json.loads(out)[-1]
    assert record["chapter"] == "12-resnet" and record["date"] == "2021-12-12"
    assert record["links"] == [{"label": "Slides", "url": "https://example.org/slides.pdf"}]
    text = chapter.read_text(encoding="utf-8")
    for part in ("## In one paragraph", "## Method", "## Discussion prompts", "## References"):
        assert part in text
    code, out, _ = run(repo, capsys, "check", str(chapter))
    assert code == 1
    assert f"{chapter}:12: template marker left" in out


@pytest.mark.parametrize("in_bibliography", [True, False])
def test_new_asks_for_the_bibtex_entry_only_when_references_bib_lacks_it(
    repo, capsys, in_bibliography
):
    args = list(NEW)
    if not in_bibliography:
        args[args.index("he2016deep")] = "nobody2099absent"
    code, out, _ = run(repo, capsys, *args)
    assert code == 0
    next_line = next(line for line in out.splitlines() if line.startswith("next: "))
    asks = "add the BibTeX entry" in next_line
    assert asks is not in_bibliography, next_line
    assert "replace every [[write: ...]] in the chapter" in next_line
    assert next_line.endswith("then run: initdocs check docs/sessions/12-resnet.md")
    assert "preview it as you write, markers and all: nox -s preview -- 12-resnet" in out


def test_new_with_builds_on_records_sessions_and_keys(repo, capsys):
    code, _, _ = run(repo, capsys, *NEW, "--builds-on", "1, he2016deep")
    assert code == 0
    assert 'builds_on = [1, "he2016deep"]\n' in repo.records.read_text(encoding="utf-8")
    code, out, _ = run(repo, capsys, "sessions", "--json")
    rows = json.loads(out)
    assert rows[-1]["builds_on"] == [1, "he2016deep"]
    assert rows[6]["builds_on"][0] == 6  # ViT builds on the Transformer


def filled_in_chapter(repo, capsys) -> Path:
    """A new chapter from ``initdocs new`` with every marker replaced (mechanically)."""
    run(repo, capsys, *NEW)
    chapter = repo.chapters_dir / "12-resnet.md"
    text = chapter.read_text(encoding="utf-8")
    text = text.replace(
        "[[write: one sentence of 50 to 200 characters: Session 12 of MLT __init__, the paper,"
        " what the chapter shows]]",
        "Session 12 of MLT __init__: residual learning, with code you can run on a CPU.",
    )
    text = re.sub(r"\[\[write:[^\]]*\]\]", "Text written by the contributor.", text)
    text = text.replace("Text written by the contributor.", "See {cite:p}`he2016deep`.", 1)
    chapter.write_text(text, encoding="utf-8")
    return chapter


def test_template_filled_in_passes(repo, capsys):
    """Replacing every marker is all a new chapter needs to pass."""
    chapter = filled_in_chapter(repo, capsys)
    code, out, _ = run(repo, capsys, "check", str(chapter))
    assert (code, out) == (0, "")


#: Sentences about the chapter's own run, and the numbers check finds typed in them.
TYPED_RESULTS = {
    "decimal": ("The separable net reaches 0.858 against 0.833.", ["'0.858'", "'0.833'"]),
    "one-decimal-gap": ("The gap is 9.1 points.", ["'9.1'"]),
    "percentage": ("Pruning 40% of the filters costs 2.5 % accuracy.", ["'40%'", "'2.5 %'"]),
    "in-a-list": ("- the CRF raises mIoU from 0.847 to 0.873", ["'0.847'", "'0.873'"]),
}
#: Where a number may stand in the experiment: inserted, code, math, a role, a link target.
NOT_TYPED = (
    "It reaches {glue:text}`rn_acc:.3f` ({glue:text}`rn_pct:.1f`%), with `lr=0.1`, "
    "$\\alpha = 0.2$, {eq}`eq-0.5` and [a link](https://example.org/v1.5/)."
)


@pytest.mark.parametrize("case", sorted(TYPED_RESULTS))
def test_check_finds_numbers_typed_in_the_experiment(repo, capsys, case):
    sentence, numbers = TYPED_RESULTS[case]
    chapter = filled_in_chapter(repo, capsys)
    edit(chapter, "## A small experiment\n", f"## A small experiment\n\n{sentence}\n")
    before = snapshot(repo)
    code, out, _ = run(repo, capsys, "check", str(chapter))
    assert code == 1
    line = line_of(chapter, sentence)
    assert [ln.split(" is typed")[0] for ln in out.splitlines()] == [
        f"{chapter}:{line}: {number}" for number in numbers
    ]
    assert "glue" in out and "'## Results in the paper'" in out
    assert snapshot(repo) == before


def test_check_finds_a_number_typed_in_an_alt_text(repo, capsys):
    chapter = filled_in_chapter(repo, capsys)
    edit(chapter, 'alt: "Text written by the contributor."', 'alt: "Accuracy rises to 0.97."')
    code, out, _ = run(repo, capsys, "check", str(chapter))
    assert code == 1
    assert out.startswith(f"{chapter}:") and "'0.97' is typed in '## A small experiment'" in out


def test_check_accepts_inserted_numbers_and_numbers_outside_the_experiment(repo, capsys):
    chapter = filled_in_chapter(repo, capsys)
    edit(chapter, "## A small experiment\n", f"## A small experiment\n\n{NOT_TYPED}\n")
    for part in ("## Method\n", "## Results in the paper\n", "## Further reading\n"):
        edit(chapter, part, f"{part}\nThe paper reports 76.3% and 0.858 (Table 3).\n")
    code, out, _ = run(repo, capsys, "check", str(chapter))
    assert (code, out) == (0, "")


def test_slugify():
    assert slugify("Squeeze-and-Excitation Networks") == "squeeze-and-excitation-networks"
    assert slugify("An Image is Worth 16x16 Words: Transformers for Image Recognition") == (
        "an-image-is-worth-16x16-words"
    )


# -- mistakes: a clear message, a non-zero exit, nothing written ------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["--number", "1"], "session 1 already exists (Xception, 2021-01-10)"),
        (["--date", "2021-11-25"], "session 11 (ResNet strikes back) is already on 2021-11-25"),
        (["--date", "2021-01-01"], "field 'date' 2021-01-01 is not after session 11's date"),
        (["--paper-url", "arxiv.org/abs/1512.03385"], "field 'paper_url' must be a web address"),
        (["--key", "chollet2017xception"], "field 'paper_key' repeats 'chollet2017xception'"),
        (
            ["--builds-on", "6,he2016resnet"],
            "session 12: field 'builds_on' names 'he2016resnet', which is not a key in "
            "references.bib",
        ),
        (
            ["--builds-on", "12"],
            "session 12: field 'builds_on' names session 12, which is not earlier than session 12",
        ),
    ],
    ids=[
        "duplicate-number",
        "duplicate-date",
        "date-out-of-order",
        "bad-url",
        "duplicate-key",
        "builds-on-unknown-key",
        "builds-on-not-earlier",
    ],
)
def test_new_refuses_and_writes_nothing(repo, capsys, change, expected):
    before = snapshot(repo)
    args = list(NEW)
    option = change[0]
    if option in args:
        args[args.index(option) + 1] = change[1]
    else:
        args += change
    code, _, err = run(repo, capsys, *args)
    assert code == 2
    assert expected in err
    assert snapshot(repo) == before


def test_new_with_a_malformed_date_is_a_usage_error(repo, capsys):
    before = snapshot(repo)
    args = list(NEW)
    args[args.index("--date") + 1] = "12/Dec/2021"
    with pytest.raises(SystemExit) as info:
        main(["--root", str(repo.root), *args])
    assert info.value.code == 2
    assert "'12/Dec/2021' is not a date: write YYYY-MM-DD" in capsys.readouterr().err
    assert snapshot(repo) == before


def test_new_never_overwrites_an_existing_chapter(repo, capsys):
    existing = repo.chapters_dir / "12-resnet.md"
    existing.write_bytes(b"# My draft\n\nWork in progress \xe2\x9c\x8f\n")
    before = snapshot(repo)
    code, _, err = run(repo, capsys, *NEW)
    assert code == 2
    assert "12-resnet.md already exists and initdocs new never overwrites" in err
    assert snapshot(repo) == before  # byte for byte, the records included


def test_new_without_options_and_no_terminal_says_what_is_missing(repo, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(repo, capsys, "new", "--paper", "ResNet")
    assert code == 2
    assert "missing --date, --title, --topic, --key, --paper-url, --presenter" in err


CHAPTER_MISTAKES = {
    "missing-front-matter": (
        lambda t: t.split("---\n", 2)[2],
        "1: missing front matter: the file must start with a '---' line",
    ),
    "yaml-syntax-error": (
        lambda t: t.replace("  language: python", "  language: [python"),
        "front matter is not valid YAML",
    ),
    "unknown-front-matter-key": (
        lambda t: t.replace("kernelspec:", "autor: me\nkernelspec:"),
        "front matter: unknown key 'autor'",
    ),
    "missing-rubric-part": (
        lambda t: t.replace("## Motivation", "## Why"),
        "missing part '## Motivation' (the rubric's part 3 of 10)",
    ),
    "parts-out-of-order": (
        lambda t: (
            t.replace("## Contributions", "## Tmp")
            .replace("## Motivation", "## Contributions")
            .replace("## Tmp", "## Motivation")
        ),
        "'## Contributions' must come after '## Motivation'",
    ),
    "leftover-marker": (
        lambda t: t.replace("## Motivation\n", "## Motivation\n\n[[write: the problem]]\n"),
        "template marker left: replace '[[write: the problem]]' with your text",
    ),
    "too-few-prompts": (
        lambda t: t.replace("\n5. Xception", "\n- Xception").replace("\n6. The", "\n- The"),
        "only 4 discussion prompt(s); write at least 5",
    ),
    "unknown-citation-key": (
        lambda t: t.replace("{cite:p}`ioffe2015batch`", "{cite:p}`ioffe2015batchnorm`"),
        "cites 'ioffe2015batchnorm', which is not in references.bib",
    ),
    "own-paper-not-cited": (
        lambda t: t.replace("{cite:p}`chollet2017xception`", "Chollet"),
        "the session's own paper is never cited",
    ),
    "figure-without-alt": (
        lambda t: t.replace("  image:\n    alt:", "  imagex:\n    alt:"),
        "this cell draws a figure but has no alt text",
    ),
    "image-without-alt": (
        lambda t: t.replace("## Motivation\n", "## Motivation\n\n![](diagram.png)\n"),
        "image without alt text",
    ),
    "no-initdocs-import": (
        lambda t: t.replace("from initdocs", "from somewhere_else"),
        "no code cell imports from initdocs",
    ),
    "no-session-card": (lambda t: t.replace("{session-card}", "{note}"), "the session card"),
    "cell-options-not-yaml": (
        lambda t: t.replace("mystnb:\n  image:", "mystnb:\n  image: [\n", 1),
        "the cell's option block is not valid YAML",
    ),
    "code-cell-in-colon-fence": (
        lambda t: re.sub(
            r"```(\{code-cell\} ipython3\n.*?\n)```", r":::\1:::", t, count=1, flags=re.S
        ),
        "myst-nb does not execute this {code-cell}: open it with ``` or ~~~",
    ),
}


@pytest.mark.parametrize("mistake", sorted(CHAPTER_MISTAKES))
def test_chapter_mistake_is_reported_with_its_line(repo, capsys, mistake):
    change, expected = CHAPTER_MISTAKES[mistake]
    chapter = repo.chapters_dir / "01-xception.md"
    chapter.write_text(change(chapter.read_text(encoding="utf-8")), encoding="utf-8")
    before = snapshot(repo)
    code, out, err = run(repo, capsys, "check", str(chapter))
    assert code == 1
    assert expected in out
    assert all(line.startswith(f"{chapter}:") for line in out.splitlines())
    assert "problem(s) in 1 file(s)" in err
    assert snapshot(repo) == before  # check never writes


def test_problem_lines_point_at_the_mistake(repo, capsys):
    chapter = repo.chapters_dir / "01-xception.md"
    edit(chapter, "{cite:p}`ioffe2015batch`", "{cite:p}`nobody2020`")
    _, out, _ = run(repo, capsys, "check", str(chapter))
    assert out.startswith(f"{chapter}:{line_of(chapter, 'nobody2020')}: cites 'nobody2020'")


def test_all_problems_are_reported_in_one_run(repo, capsys):
    chapter = repo.chapters_dir / "01-xception.md"
    edit(chapter, "## Motivation", "## Why")
    edit(chapter, "{cite:p}`ioffe2015batch`", "{cite:p}`nobody2020`")
    # An entry no session record builds on (renaming one that is would flag the records too).
    edit(repo.bibliography, "@inproceedings{ioffe2015batch,", "@inproceedings{he2019filter,")
    code, out, err = run(repo, capsys, "check")
    assert code == 1
    assert "missing part '## Motivation'" in out and "cites 'nobody2020'" in out
    assert "duplicate key" in out
    assert "problem(s) in 2 file(s)" in err


def test_records_building_on_a_removed_entry(repo, capsys):
    edit(repo.bibliography, "@phdthesis{sifre2014rigid,", "@phdthesis{sifre2014,")
    code, out, _ = run(repo, capsys, "check", str(repo.records))
    assert code == 1
    line = line_of(repo.records, '"sifre2014rigid"')
    assert out.startswith(
        f"{repo.records}:{line}: session 1: field 'builds_on' names 'sifre2014rigid', which is "
        "not a key in references.bib"
    )


def test_records_unknown_field(repo, capsys):
    edit(
        repo.records,
        'video = "https://www.youtube.com/watch?v=GIXDyJnFM5w"',
        'vidoe = "https://www.youtube.com/watch?v=GIXDyJnFM5w"',
    )
    code, out, _ = run(repo, capsys, "check", str(repo.records))
    assert code == 1
    line = line_of(repo.records, "vidoe =")
    assert f"sessions.toml:{line}: session 1: field 'vidoe' is not a known field" in out


def test_records_impossible_date(repo, capsys):
    edit(repo.records, "date = 2021-02-14", "date = 2021-02-30")
    code, out, _ = run(repo, capsys, "check", str(repo.records))
    assert code == 1
    line = line_of(repo.records, "date = 2021-02-30")
    assert f"sessions.toml:{line}: not valid TOML: Invalid date" in out
    assert "a real calendar day" in out


def test_bibtex_syntax_error_and_duplicate_key(repo, capsys):
    edit(
        repo.bibliography,
        "  title         = {Going Deeper with Convolutions},",
        "  title         = {Going Deeper with Convolutions,",
    )
    code, out, _ = run(repo, capsys, "check", str(repo.bibliography))
    assert code == 1
    assert f"{repo.bibliography}:" in out and "szegedy2015going" in out


def test_file_that_is_not_utf8(repo, capsys):
    chapter = repo.chapters_dir / "01-xception.md"
    chapter.write_bytes(chapter.read_bytes().replace(b"Xception", b"X\xe7eption", 1))
    code, out, _ = run(repo, capsys, "check", str(chapter))
    assert code == 1
    assert "is not UTF-8 text (byte 0xe7); save the file with UTF-8 encoding" in out


def test_path_that_does_not_exist(repo, capsys):
    code, out, _ = run(repo, capsys, "check", str(repo.root / "docs/sessions/99-typo.md"))
    assert code == 1
    assert "99-typo.md: no such file or folder" in out


def test_root_without_records_is_a_usage_error(tmp_path, capsys):
    code = main(["--root", str(tmp_path), "check"])
    assert code == 2
    assert "no docs/sessions.toml here" in capsys.readouterr().err


def test_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'initdocs = "initdocs.book.cli:main"' in text


def test_chapter_for_an_existing_record(repo, capsys):
    code, out, _ = run(repo, capsys, "chapter", "2")
    assert code == 0
    chapter = repo.chapters_dir / "02-deeplabv2.md"
    assert "created" in out and "02-deeplabv2.md for session 2 (DeepLabv2)" in out
    assert chapter.read_text(encoding="utf-8").count("# Session 2: DeepLabv2") == 1
    before = snapshot(repo)
    code, _, err = run(repo, capsys, "chapter", "2")  # a second time: refused, untouched
    assert code == 2 and "already exists and is never overwritten" in err
    assert snapshot(repo) == before
    code, _, err = run(repo, capsys, "chapter", "42")
    assert code == 2 and "no session 42" in err


def test_check_prints_paths_relative_to_the_current_folder(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo.root)
    edit(repo.chapters_dir / "01-xception.md", "## Motivation", "## Why")
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("docs/sessions/01-xception.md:")


def test_github_issue_forms_and_pull_request_template():
    import yaml

    forms = ROOT / ".github" / "ISSUE_TEMPLATE"
    for name in ("new-session", "erratum", "bug"):
        form = yaml.safe_load((forms / f"{name}.yml").read_text(encoding="utf-8"))
        assert form["name"] and form["description"] and form["body"]
        ids = [item["id"] for item in form["body"] if "id" in item]
        assert len(ids) == len(set(ids)) >= 3
        for item in form["body"]:
            assert item["type"] in {"markdown", "input", "textarea", "dropdown", "checkboxes"}
    config = yaml.safe_load((forms / "config.yml").read_text(encoding="utf-8"))
    assert config["blank_issues_enabled"] is False
    template = (ROOT / ".github" / "PULL_REQUEST_TEMPLATE.md").read_text(encoding="utf-8")
    assert "initdocs check" in template and "nox -s lint tests" in template
