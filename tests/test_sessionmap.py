"""The map of how the sessions build on each other: the records' ``builds_on`` field, its
validation messages, the generated SVG, and the page of the built book."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bs4 import BeautifulSoup
from conftest import BIB, RECORDS

from initdocs.book.bibtex import parse_bibtex
from initdocs.book.records import SessionRecordError, load_sessions
from initdocs.book.sessionmap import Work, layout, render_svg, session_id, work_id

SVG = "{http://www.w3.org/2000/svg}"

RECORD = """\
[[session]]
number = {number}
date = 2021-0{number}-10
topic = "Topic {number}"
paper = "Paper {number}"
title = "Paper number {number}"
paper_key = "key{number}"
paper_url = "https://arxiv.org/abs/1610.0235{number}"
chapter = "0{number}-paper"
presenter = {{ name = "Jane Doe" }}
"""

BIBTEX = """\
@misc{he2016deep,
  author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  title = {Deep Residual Learning for Image Recognition},
  year = {2016},
  eprint = {1512.03385},
}
"""


def records(tmp_path: Path, second: str, bib: bool = True) -> Path:
    """Two sessions; ``second`` is the builds_on line of session 2 (``""``: none)."""
    text = RECORD.format(number=1) + "\n" + RECORD.format(number=2) + second + "\n"
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "docs" / "sessions.toml"
    path.write_text(text, encoding="utf-8")
    if bib:
        (tmp_path / "references.bib").write_text(BIBTEX, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SessionRecordError) as info:
        load_sessions(path)
    return [str(p) for p in info.value.problems]


def line_of(path: Path, start: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith(start))


# -- the records ------------------------------------------------------------------------------


def test_builds_on_loads_sessions_and_keys(tmp_path):
    sessions = load_sessions(records(tmp_path, 'builds_on = [1, "he2016deep"]'))
    second = sessions.by_chapter("02-paper")
    assert second.builds_on == (1, "he2016deep")
    assert second.builds_on_sessions == (1,) and second.builds_on_works == ("he2016deep",)
    assert sessions.by_chapter("01-paper").builds_on == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "builds_on = [2]",
            "names session 2, which is not earlier than session 2; a session builds only on "
            "earlier ones",
        ),
        ("builds_on = [0]", "names session 0, which has no [[session]] record"),
        (
            'builds_on = ["he2016resnet"]',
            "names 'he2016resnet', which is not a key in references.bib; add its entry there or "
            "write the key as it is spelled there",
        ),
        (
            'builds_on = "he2016deep"',
            "must be a list of earlier session numbers and references.bib keys, e.g. "
            "builds_on = [6, \"he2016deep\"] (got 'he2016deep')",
        ),
        (
            "builds_on = [1.5]",
            "must be a list of earlier session numbers and references.bib keys, e.g. "
            'builds_on = [6, "he2016deep"]; 1.5 is neither',
        ),
        ("builds_on = [1, 1]", "lists 1 more than once; name each work once"),
    ],
    ids=["not-earlier", "no-such-session", "unknown-key", "not-a-list", "float", "repeated"],
)
def test_bad_builds_on_names_file_line_session_and_field(tmp_path, line, message):
    path = records(tmp_path, line)
    assert problems(path) == [
        f"{path}:{line_of(path, 'builds_on')}: session 2: field 'builds_on' {message}"
    ]


def test_a_key_without_references_bib_says_where_it_belongs(tmp_path):
    path = records(tmp_path, 'builds_on = ["he2016deep"]', bib=False)
    [problem] = problems(path)
    assert problem.endswith(
        "session 2: field 'builds_on' names 'he2016deep' but the repository has no "
        "references.bib to look it up in; add the entry to references.bib at the repository's "
        "root"
    )


def test_every_session_of_the_book_builds_on_something_that_exists():
    sessions = load_sessions(RECORDS)  # validates numbers and keys against references.bib
    keys = {entry.key for entry in parse_bibtex(BIB)[0]}
    for session in sessions:
        assert session.builds_on, f"session {session.number} has no builds_on"
        assert set(session.builds_on_works) <= keys
        assert all(n < session.number for n in session.builds_on_sessions)
    by_number = {s.number: s for s in sessions}
    assert 6 in by_number[7].builds_on_sessions  # ViT builds on the Transformer
    assert 5 in by_number[6].builds_on_sessions  # the Transformer on the RNN encoder-decoder
    assert "he2016deep" in by_number[3].builds_on_works  # SE on ResNet
    assert {"he2016deep", "simonyan2015very"} <= set(by_number[2].builds_on_works)


# -- the drawing ------------------------------------------------------------------------------


def relations(sessions) -> set[tuple[str, str]]:
    """Every (session, what it builds on) pair of the records, as the map's node ids."""
    return {
        (session_id(s.number), session_id(n) if isinstance(n, int) else work_id(n))
        for s in sessions
        for n in s.builds_on
    }


def parse_svg(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return root


def check_svg(root: ET.Element, sessions) -> None:
    """One node per session and per work, every arrow a builds_on relation and vice versa."""
    nodes = [g.get("data-node") for g in root.iter(f"{SVG}g") if g.get("data-node")]
    works = {key for s in sessions for key in s.builds_on_works}
    assert sorted(nodes) == sorted(
        [session_id(s.number) for s in sessions] + [work_id(k) for k in works]
    )
    edges = [
        (p.get("data-from"), p.get("data-to"))
        for p in root.iter(f"{SVG}path")
        if p.get("data-from")
    ]
    assert len(edges) == len(set(edges))
    assert set(edges) == relations(sessions)
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    assert set(root.get("aria-labelledby").split()) <= ids
    assert root.get("role") == "group"  # "img" may not contain links (axe nested-interactive)


def test_render_svg_is_well_formed_and_matches_the_records():
    sessions = load_sessions(RECORDS)
    works = {
        key: Work(key, f"{key} & co", f"Title of {key}", f"bibliography.html#{key}")
        for s in sessions
        for key in s.builds_on_works
    }
    hrefs = {s.number: f"sessions/{s.chapter}.html" for s in sessions if s.number != 3}
    svg = render_svg(layout(sessions, works, hrefs), "test-map")
    root = parse_svg(svg)
    check_svg(root, sessions)
    links = {a.get("href") for a in root.iter(f"{SVG}a")}
    assert "sessions/03-squeeze-excitation.html" not in links  # no chapter, no link
    assert "sessions/07-vision-transformer.html" in links
    assert all(a.get("tabindex") == "-1" for a in root.iter(f"{SVG}a"))  # the list has them
    # The label's "&" is escaped, so the XML parser reads it back intact.
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert "he2016deep & co" in texts


def test_nodes_do_not_overlap_and_stay_inside_the_drawing():
    sessions = load_sessions(RECORDS)
    works = {k: Work(k, k, k, None) for s in sessions for k in s.builds_on_works}
    result = layout(sessions, works, {})
    for kind in ("session", "work"):
        boxes = sorted((b for b in result.boxes if b.kind == kind), key=lambda b: b.y)
        for upper, lower in itertools.pairwise(boxes):
            assert upper.y + upper.height < lower.y
        assert all(b.y + b.height <= result.height for b in boxes)
    session_rows = [b.node_id for b in result.boxes if b.kind == "session"]
    dates = [session_id(s.number) for s in sorted(sessions, key=lambda s: s.date)]
    assert session_rows == dates


# -- the built book ---------------------------------------------------------------------------


def page(html: Path, name: str) -> tuple[str, BeautifulSoup]:
    text = (html / name).read_text(encoding="utf-8")
    return text, BeautifulSoup(text, "html.parser")


def resolves(html: Path, base: str, href: str) -> bool:
    """Whether a relative link from page ``base`` reaches an existing file and anchor."""
    parts = urlsplit(href)
    assert not parts.scheme, f"map link leaves the book: {href}"
    target = (html / base).parent / unquote(parts.path) if parts.path else html / base
    if not target.resolve().is_file():
        return False
    if not parts.fragment:
        return True
    return (
        BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser").find(id=parts.fragment)
        is not None
    )


def test_map_page_svg_matches_the_records(html):
    text, _ = page(html, "map.html")
    [svg] = re.findall(r"<svg\b.*?</svg>", text, flags=re.S)
    check_svg(parse_svg(svg), load_sessions(RECORDS))


def test_map_links_resolve_in_the_built_book(html):
    text, _ = page(html, "map.html")
    root = parse_svg(re.search(r"<svg\b.*?</svg>", text, flags=re.S).group(0))
    sessions = load_sessions(RECORDS)
    links = {
        g.get("data-node"): g.find(f"{SVG}a").get("href")
        for g in root.iter(f"{SVG}g")
        if g.get("data-node")
    }
    for s in sessions:
        assert links[session_id(s.number)] == f"sessions/{s.chapter}.html"
    for node, href in links.items():
        assert resolves(html, "map.html", href), f"{node}: {href} does not resolve"
        if node.startswith("work-"):
            assert href.startswith("bibliography.html#")
    # The bibliography entry a work links to is that work's entry.
    _, bib = page(html, "bibliography.html")
    entry = bib.find(id=links[work_id("he2016deep")].split("#")[1])
    assert "Deep residual learning for image recognition" in entry.get_text(" ")


def test_map_page_is_accessible_and_scrolls_inside_its_box(html):
    _, soup = page(html, "map.html")
    box = soup.select_one("div.initdocs-map-box")
    assert box.get("tabindex") == "0" and box.get("role") == "region" and box.get("aria-label")
    css = html / "_static" / "initdocs-map.css"
    assert soup.find("link", href=re.compile(r"_static/initdocs-map\.css"))
    rules = css.read_text(encoding="utf-8")
    assert re.search(r"\.initdocs-map-box\s*\{[^}]*overflow-x:\s*auto", rules)
    assert "var(--pst-color-text-base)" in rules  # follows the light and the dark theme


def test_map_page_says_the_same_in_words(html):
    _, soup = page(html, "map.html")
    items = soup.select("ul.initdocs-map-list > li")
    sessions = load_sessions(RECORDS)
    assert len(items) == len(sessions)
    for item, session in zip(items, sorted(sessions, key=lambda s: s.date), strict=True):
        words = item.get_text(" ", strip=True)
        assert words.startswith(f"Session {session.number} ({session.paper})")
        for number in session.builds_on_sessions:
            assert f"session {number} (" in words
        cited = {
            a["href"].split("#")[1]
            for a in item.select("a[href^='../bibliography.html#'], a[href^='bibliography.html#']")
        }
        assert len(cited) == len(session.builds_on_works)
    seventh = items[6].get_text(" ", strip=True)
    assert "builds on session 6 (Attention Is All You Need)" in seventh


def test_home_page_and_navigation_link_the_map(html):
    _, home = page(html, "index.html")
    assert home.select_one("article a[href='map.html']"), "the home page links the map"
    nav = home.select_one("nav.bd-docs-nav")
    assert nav.find("a", href="map.html")
