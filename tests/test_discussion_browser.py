"""Every chapter's discussion view (initdocs.book.discussion) in the browser the book's other
browser tests use (tests/test_browser.py, whose server, browser, audit and weighing this
reuses): no accessibility violations in the light and the dark theme, one prompt at a time
driven by the keyboard with its position announced, all prompts readable without JavaScript,
no sideways scrolling on a phone, and within the page-weight budget."""

# ruff: noqa: F811  (server and browser are test_browser's fixtures, passed by name)

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import CHAPTERS
from playwright.sync_api import Browser, Page
from test_browser import (  # noqa: F401  (browser and server: fixtures)
    DESKTOP,
    FONTS_READY,
    PAGE_WIDTH,
    PHONE,
    THEMES,
    Session,
    _axe_violations,
    browser,
    load_axe,
    server,
    weigh,
)
from test_discussion import source_prompts

from initdocs.book.discussion import FOLDER
from initdocs.book.pagespeed import TARGETS

#: What the reader sees: the slides shown, the announced position, the address, the theme.
STATE = """() => ({
    shown: [...document.querySelectorAll('.discussion-slide')]
        .filter(s => s.getBoundingClientRect().height > 0).map(s => s.id),
    position: document.querySelector('.discussion-position').textContent,
    hash: location.hash,
    theme: document.documentElement.dataset.theme,
})"""
SHOW_ALL = (
    "() => document.querySelectorAll('.discussion-slide').forEach(s => { s.hidden = false; })"
)
#: The focused element's outline, to see that keyboard focus is visible.
FOCUS = """() => { const e = document.activeElement, s = getComputedStyle(e);
    return {tag: e.tagName.toLowerCase(), text: e.textContent.trim(), style: s.outlineStyle,
            width: parseFloat(s.outlineWidth)}; }"""


def views() -> list[str]:
    return [f"{FOLDER}/{chapter.stem}.html" for chapter in CHAPTERS]


def prompts_of(view: str) -> int:
    """How many prompts the chapter's source has (independently of the build)."""
    source = next(c for c in CHAPTERS if view.endswith(f"/{c.stem}.html"))
    return len(source_prompts(source.read_text(encoding="utf-8")))


def test_every_chapter_has_a_view_with_one_slide_per_prompt(html: Path):
    assert len(views()) == len(CHAPTERS) >= 11
    for view in views():
        page = BeautifulSoup((html / view).read_text(encoding="utf-8"), "html.parser")
        slides = page.select("main .discussion-slide")
        assert len(slides) == prompts_of(view) >= 5, view
        assert all(slide.select_one(".discussion-prompt p") for slide in slides), view
        assert page.select("header .discussion-key math"), f"{view}: no key equation"


@pytest.mark.parametrize("theme", THEMES)
def test_no_accessibility_violations_in_either_theme(html, server, browser: Browser, theme):
    """axe-core's WCAG A/AA rules on each view as it opens (first prompt and controls), then
    with every prompt shown, in the theme the reader stored."""
    axe = load_axe()
    session = Session(browser, server, theme, DESKTOP)
    found, problems = {}, {}
    for view in views():
        page, visit = session.open(view)
        page.evaluate(FONTS_READY)
        assert page.evaluate(STATE)["theme"] == theme, view
        violations = _axe_violations(axe, page)
        page.evaluate(SHOW_ALL)
        violations += _axe_violations(axe, page)
        found[view] = violations
        problems[view] = visit.console_errors + visit.failed + visit.outside
        page.close()
    session.close()
    assert {view: v for view, v in found.items() if v} == {}
    assert {view: p for view, p in problems.items() if p} == {}


def _press(page: Page, key: str) -> dict:
    page.keyboard.press(key)
    return page.evaluate(STATE)


def test_keys_move_one_prompt_at_a_time_and_announce_the_position(server, browser: Browser):
    view = views()[0]
    count = prompts_of(view)
    session = Session(browser, server, "light", DESKTOP)
    page, _ = session.open(view)
    live = page.locator(".discussion-position")
    assert live.get_attribute("aria-live") == "polite" and live.get_attribute("role") == "status"
    state = page.evaluate(STATE)
    assert state["shown"] == ["prompt-1"] and state["position"] == f"Prompt 1 of {count}"
    steps = [
        ("ArrowRight", 2),
        ("PageDown", 3),
        ("Space", 4),
        ("Shift+Space", 3),
        ("ArrowLeft", 2),
        ("PageUp", 1),
        ("ArrowLeft", 1),  # the first stays
        ("End", count),
        ("ArrowRight", count),  # the last stays
        ("Home", 1),
    ]
    for key, expected in steps:
        state = _press(page, key)
        assert state["shown"] == [f"prompt-{expected}"], (key, state)
        assert state["position"] == f"Prompt {expected} of {count}", (key, state)
        assert state["hash"] == f"#prompt-{expected}", (key, state)
    # the buttons: focus is visible, and Space or Enter on one moves one prompt, not two
    for _ in range(10):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        assert focus["style"] != "none" and focus["width"] >= 2, focus
        if focus["text"] == "Next":
            break
    assert focus["text"] == "Next"
    assert _press(page, "Enter")["shown"] == ["prompt-2"]
    assert _press(page, "Space")["shown"] == ["prompt-3"]
    # the address keeps the prompt across a reload
    page.reload()
    assert page.evaluate(STATE)["shown"] == ["prompt-3"]
    page.close()
    session.close()


def test_the_theme_switch_is_stored_for_the_whole_book(server, browser: Browser):
    session = Session(browser, server, None, DESKTOP)  # a first visit: the system's light
    page, _ = session.open(views()[0])
    button = page.get_by_role("button", name="Dark theme")
    button.click()
    assert page.evaluate(STATE)["theme"] == "dark"
    assert page.get_by_role("button", name="Light theme").is_visible()
    chapter, _ = session.open(f"sessions/{CHAPTERS[0].stem}.html")
    assert chapter.evaluate("() => document.documentElement.dataset.theme") == "dark"
    session.close()


def test_without_javascript_every_prompt_is_readable(server, browser: Browser):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    for view in views():
        page.goto(server + view)
        slides = page.locator(".discussion-slide")
        assert slides.count() == prompts_of(view), view
        for i in range(slides.count()):
            assert slides.nth(i).is_visible(), (view, i)
        assert not page.locator(".discussion-controls").is_visible()  # they need the script
        assert not page.locator(".discussion-theme").is_visible()
        assert page.get_by_role("link", name="Back to the chapter").is_visible()
    context.close()


def test_no_view_scrolls_sideways_on_a_phone(server, browser: Browser):
    session = Session(browser, server, "light", PHONE)
    widths = {}
    for view in views():
        page, _ = session.open(view)
        page.evaluate(FONTS_READY)
        assert page.evaluate("() => scrollY") == 0, f"{view} opens scrolled down"
        first = page.evaluate(PAGE_WIDTH)
        page.evaluate(SHOW_ALL)
        widths[view] = [first, page.evaluate(PAGE_WIDTH)]
        page.close()
    session.close()
    too_wide = {
        view: w for view, w in widths.items() if any(s["document"] > s["viewport"] for s in w)
    }
    assert too_wide == {}
    assert all(s["viewport"] <= PHONE["width"] for w in widths.values() for s in w)


def test_every_view_weighs_less_than_the_budget(html: Path, server, browser: Browser):
    for view in views():
        weight = weigh(html, server, browser, view)
        assert weight["missing"] == [], view
        assert weight["files"] >= 5, (view, weight)  # page, styles, script, math font
        assert weight["sent"] <= TARGETS["weight"], (view, weight)
