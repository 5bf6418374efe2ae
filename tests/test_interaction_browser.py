"""The theme's scripts run on the reader's first interaction (initdocs.book.weight and its
interaction.js), checked in the browser the other browser tests use (tests/test_browser.py):
none of them runs at load, all of them after a pointer move, a first click on a menu and the
search shortcut as the first key are not lost, the "auto" theme follows the system before any
script, and code blocks and tables are keyboard tab stops before any script."""

# ruff: noqa: F811  (server and browser are test_browser's fixtures, passed by name)

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page
from test_browser import (  # noqa: F401  (browser and server: fixtures)
    DESKTOP,
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


@contextmanager
def opened(
    browser: Browser, server: str, name: str, *, scheme: str = "light", stored: str | None = None
) -> Iterator[tuple[Page, list[str]]]:
    """A fresh reader's page (nothing stored unless ``stored``), with the errors it logs."""
    context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
    if stored:
        context.add_init_script(THEME_SCRIPT.format(stored))
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
