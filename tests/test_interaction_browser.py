"""The theme's scripts run on the reader's first interaction (initdocs.book.weight and its
interaction.js), checked in the browser the other browser tests use (tests/test_browser.py):
none of them runs at load, all of them after a pointer move, a first click on a menu and the
search shortcut as the first key are not lost, the "auto" theme follows the system before any
script, code blocks and tables are keyboard tab stops before any script, and the prose below a
chapter's first screen is laid out once the page has loaded, a few blocks at a time."""

# ruff: noqa: F811  (server and browser are test_browser's fixtures, passed by name)

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import CHAPTERS
from playwright.sync_api import Browser, Page
from test_browser import (  # noqa: F401  (browser and server: fixtures)
    DESKTOP,
    DRAWN,
    PHONE,
    THEME_SCRIPT,
    browser,
    first_interaction,
    server,
)

from initdocs.book.weight import ON_INTERACTION, THEME_SCROLLABLE

CHAPTER = "sessions/04-ssd.html"
TABLE_CHAPTER = "sessions/01-xception.html"  # has a table in its prose
#: The page as the reader has it: the loader's state, what the scripts add, the theme, and
#: which files the page fetched as scripts and which it only prefetched.
STATE = """() => ({
    interactive: window.initdocsInteractive,
    bootstrap: typeof window.bootstrap,
    copyButtons: document.querySelectorAll('button.copybtn').length,
    codeBlocks: document.querySelectorAll('div.highlight pre').length,
    theme: document.documentElement.dataset.theme,
    scripts: performance.getEntriesByType('resource')
        .filter(e => e.initiatorType === 'script').map(e => new URL(e.name).pathname),
    prefetched: performance.getEntriesByType('resource')
        .filter(e => e.initiatorType === 'link' && /\\.js$/.test(new URL(e.name).pathname))
        .map(e => new URL(e.name).pathname),
})"""
#: Every script prefetch started after the page's load event.
PREFETCHED_AFTER_LOAD = """() => {
    const loaded = performance.getEntriesByType('navigation')[0].loadEventEnd;
    const prefetches = performance.getEntriesByType('resource')
        .filter(e => e.initiatorType === 'link' && /\\.js$/.test(new URL(e.name).pathname));
    return loaded > 0 && prefetches.length > 0 && prefetches.every(e => e.startTime >= loaded);
}"""
#: The reader scrolls to each code block in turn, a frame or two apart.
SCROLL_THROUGH_CODE = """async () => {
    for (const block of document.querySelectorAll('pre')) {
        block.scrollIntoView();
        await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
    }
}"""

#: Idle callbacks are held (window.initdocsIdle) until the test runs them.
HOLD_IDLE_CALLBACKS = """window.initdocsIdle = [];
window.requestIdleCallback = callback => window.initdocsIdle.push(callback);"""
#: Runs the idle callbacks held so far (each may ask for another); returns how many ran.
RUN_IDLE_CALLBACKS = """() => {
    const waiting = window.initdocsIdle.splice(0);
    for (const callback of waiting) callback({didTimeout: false, timeRemaining: () => 50});
    return waiting.length;
}"""
#: The article's blocks (what is not a section) as laid out now: deferred (content-visibility
#: auto), skipped (its content not laid out: checkVisibility on its first element), and where.
BLOCKS = """() => [...document.querySelectorAll('.bd-article section > :not(section)')]
    .filter(b => !b.matches('div.cell')).map(b => ({
        deferred: getComputedStyle(b).contentVisibility === 'auto',
        skipped: !!b.firstElementChild
            && !b.firstElementChild.checkVisibility({contentVisibilityAuto: true}),
        drawn: b.classList.contains('initdocs-drawn'),
        top: b.getBoundingClientRect().top + scrollY,
    }))"""
LARGE_SCREEN = {"width": 1920, "height": 1200}


@contextmanager
def opened(
    browser: Browser,
    server: str,
    name: str,
    *,
    scheme: str = "light",
    stored: str | None = None,
    viewport: dict[str, int] = DESKTOP,
    init: str | None = None,
) -> Iterator[tuple[Page, list[str]]]:
    """A fresh reader's page (nothing stored unless ``stored``), with the errors it logs;
    ``init`` is a script that runs before the page's own."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    if stored:
        context.add_init_script(THEME_SCRIPT.format(stored))
    if init:
        context.add_init_script(init)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + name, wait_until="load")
    try:
        yield page, errors
    finally:
        context.close()


def held_back(paths: list[str]) -> list[str]:
    """The paths that are scripts of ON_INTERACTION."""
    return sorted(p for p in paths if p.endswith(ON_INTERACTION))


def test_no_theme_script_runs_before_the_reader_interacts(browser: Browser, server: str):
    with opened(browser, server, CHAPTER) as (page, errors):
        # They are fetched into the cache once the page has loaded and the browser is idle,
        # not with the page (where they took bandwidth from the first screen), and not run.
        page.wait_for_function(
            f"() => ({STATE})().prefetched.length >= {len(ON_INTERACTION)}", timeout=10_000
        )
        page.wait_for_timeout(500)  # an idle page stays as it is
        state = page.evaluate(STATE)
        assert state["interactive"] == "waiting"
        assert state["bootstrap"] == "undefined" and state["copyButtons"] == 0
        assert held_back(state["scripts"]) == []
        assert len(held_back(state["prefetched"])) == len(ON_INTERACTION)
        assert page.evaluate(PREFETCHED_AFTER_LOAD)
        assert any(p.endswith("/_static/doctools.js") for p in state["scripts"])  # not held
        assert errors == []


def test_a_pointer_move_runs_every_one_of_them(browser: Browser, server: str):
    with opened(browser, server, CHAPTER) as (page, errors):
        first_interaction(page)
        state = page.evaluate(STATE)
        assert len(held_back(state["scripts"])) == len(ON_INTERACTION)
        assert state["bootstrap"] == "object"
        assert state["copyButtons"] == state["codeBlocks"] > 0  # copybutton.js ran
        assert page.locator('script[type="initdocs/on-interaction"]').count() == 0
        assert errors == []


def test_a_first_click_on_a_menu_is_not_lost(browser: Browser, server: str):
    with opened(browser, server, CHAPTER) as (page, errors):
        assert page.evaluate("() => window.initdocsInteractive") == "waiting"
        page.click("button[aria-label='Download this page']")  # Bootstrap's dropdown
        page.wait_for_selector(".dropdown-download-buttons .dropdown-menu.show", timeout=5000)
        assert errors == []
    with opened(browser, server, CHAPTER) as (page, errors):
        page.click(".theme-switch-button")
        page.click(".theme-change-button[data-mode='dark']")
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        assert page.evaluate("() => localStorage.getItem('mode')") == "dark"
        assert errors == []


def test_the_search_shortcut_works_as_the_first_key(browser: Browser, server: str):
    with opened(browser, server, CHAPTER) as (page, errors):
        page.keyboard.press("Control+k")
        page.wait_for_function("() => document.getElementById('pst-search-dialog').open")
        assert page.evaluate("() => document.activeElement.name") == "q"
        assert errors == []


def test_the_auto_theme_follows_the_system_before_any_script(browser: Browser, server: str):
    with opened(browser, server, CHAPTER, scheme="dark") as (page, _):
        assert page.evaluate(STATE)["interactive"] == "waiting"
        assert page.evaluate("() => document.documentElement.dataset.mode") == "auto"
        assert page.evaluate(STATE)["theme"] == "dark"
        page.emulate_media(color_scheme="light")  # the system changes: so does the page
        page.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
        assert page.evaluate(STATE)["interactive"] == "waiting"
    with opened(browser, server, CHAPTER, scheme="dark", stored="light") as (page, _):
        assert page.evaluate(STATE)["theme"] == "light"  # the reader's choice wins


def test_code_blocks_and_tables_are_tab_stops_before_any_script(browser: Browser, server: str):
    # The theme's list of what may scroll sideways; its script, which sets the tab stops, has
    # not run yet.
    scrollable = ", ".join(THEME_SCROLLABLE)
    with opened(browser, server, TABLE_CHAPTER) as (page, _):
        stops = page.evaluate(
            """selector => [...document.querySelectorAll(selector)].map(e => ({
                tag: e.tagName.toLowerCase(), stop: e.getAttribute('tabindex'),
                table: e.matches('.pst-scrollable-table-container'),
                preStop: e.querySelector('pre')?.getAttribute('tabindex')}))""",
            scrollable,
        )
        assert page.evaluate(STATE)["interactive"] == "waiting"
        assert any(s["table"] for s in stops) and any(s["tag"] == "pre" for s in stops)
        for element in stops:
            # a cell's output box holds a <pre>, and the <pre> is what scrolls
            assert element["stop"] == "0" or element["preStop"] == "0", element
        # Once the theme's script runs, a block near the screen that does not scroll is no stop
        # (and every one that is no stop indeed does not scroll).
        first_interaction(page)
        page.evaluate(SCROLL_THROUGH_CODE)
        page.wait_for_function(
            "() => [...document.querySelectorAll('pre')].some(e => e.tabIndex < 0)"
        )
        assert (
            page.evaluate(
                """() => [...document.querySelectorAll('pre')].filter(e => e.tabIndex < 0)
                .filter(e => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight)
                .length"""
            )
            == 0
        )


def test_the_prose_below_the_first_screen_is_laid_out_when_the_browser_is_idle(
    browser: Browser, server: str
):
    with opened(browser, server, CHAPTER, viewport=PHONE, init=HOLD_IDLE_CALLBACKS) as (
        page,
        errors,
    ):
        # Loaded, before any idle time: the blocks far down are deferred, most of them not laid
        # out; none on the first screen is.
        assert page.evaluate("() => window.initdocsDrawn") is False
        blocks = page.evaluate(BLOCKS)
        deferred = [b for b in blocks if b["deferred"]]
        assert len(deferred) >= 20, len(deferred)
        assert sum(b["skipped"] for b in deferred) >= len(deferred) // 2
        assert min(b["top"] for b in deferred) > PHONE["height"]
        # Idle time: a few blocks a step (more than one step), then every block is laid out
        # and drawn like any other (nothing deferred, nothing skipped).
        steps = 0
        while not page.evaluate("() => window.initdocsDrawn"):
            assert page.evaluate(RUN_IDLE_CALLBACKS) > 0, "the page stopped before it was drawn"
            steps += 1
        assert 1 < steps <= len(deferred)
        blocks = page.evaluate(BLOCKS)
        assert sum(b["drawn"] for b in blocks) == len(deferred)
        assert [b for b in blocks if b["deferred"] or b["skipped"]] == []
        assert errors == []


@pytest.mark.parametrize(
    "viewport", [PHONE, DESKTOP, LARGE_SCREEN], ids=lambda v: f"{v['width']}x{v['height']}"
)
def test_what_waits_for_idle_time_starts_below_the_first_screen(
    browser: Browser, server: str, viewport: dict[str, int]
):
    # A deferred block on screen at the first paint is first laid out at its placeholder size,
    # and what follows it jumps (Chromium, with stylesheets still arriving as the HTML is
    # parsed); so the deferral starts at a chapter's fourth section, checked here on every
    # chapter up to a 1920x1200 screen.
    names = [f"sessions/{chapter.stem}.html" for chapter in CHAPTERS]
    assert len(names) == 11, names
    first = {}
    for name in names:
        with opened(browser, server, name, viewport=viewport) as (page, errors):
            page.wait_for_function(DRAWN, timeout=20_000)
            drawn = [b["top"] for b in page.evaluate(BLOCKS) if b["drawn"]]
            assert drawn and errors == [], (name, errors)
            first[name] = min(drawn)
    assert {n: top for n, top in first.items() if top <= viewport["height"]} == {}


def test_a_link_to_a_section_far_down_lands_on_it(browser: Browser, server: str):
    # The sections above it are laid out after the browser has scrolled to it; the reader
    # still sees it at the top of the screen, where the browser puts it on a laid-out page.
    with opened(browser, server, CHAPTER, viewport=PHONE) as (page, _):
        target = page.evaluate(
            "() => [...document.querySelectorAll('.bd-article > section > section')].at(-2).id"
        )
    with opened(browser, server, f"{CHAPTER}#{target}", viewport=PHONE) as (page, _):
        page.wait_for_function(DRAWN, timeout=20_000)
        where = f"document.getElementById('{target}').getBoundingClientRect().top"
        landed = page.evaluate(f"() => {where}")
        laid_out = page.evaluate(
            f"() => {{ document.getElementById('{target}').scrollIntoView(); return {where}; }}"
        )
        assert page.evaluate("() => scrollY") > 5 * PHONE["height"]
        assert abs(landed - laid_out) <= 1, (landed, laid_out)
