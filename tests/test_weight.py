"""What the book leaves out of its pages or loads later (initdocs.book.weight, .icons), and the
page-speed table (initdocs.book.pagespeed); the built book is checked in test_browser.py."""

from __future__ import annotations

import json
import os
import re

import pytest
from docutils import core, frontend, nodes
from docutils.utils import new_document
from docutils.writers import html5_polyglot
from fontTools.ttLib import TTFont
from sphinx.errors import ExtensionError

from initdocs.book import icons, pagespeed, weight

HEAD = """\
    <script src="../_static/documentation_options.js?v=a1637f0b"></script>
    <script src="../_static/doctools.js?v=fd6eb6e6"></script>
    <script data-sd-tabs-storage-prefix="tab-" src="../_static/design-tabs.js"></script>
    <script defer="defer" src="../_static/already.js"></script>
    <script async src="../_static/async.js"></script>
    <script>DOCUMENTATION_OPTIONS.pagename = 'index';</script>
"""


def test_script_files_are_deferred_but_the_options_they_share():
    out = str(weight.deferred(HEAD))
    assert '<script src="../_static/documentation_options.js?v=a1637f0b">' in out
    assert '<script defer src="../_static/doctools.js?v=fd6eb6e6">' in out
    assert '<script defer data-sd-tabs-storage-prefix="tab-" src=' in out
    assert '<script defer="defer" src="../_static/already.js">' in out  # untouched
    assert '<script async src="../_static/async.js">' in out
    assert "<script>DOCUMENTATION_OPTIONS.pagename = 'index';</script>" in out  # inline
    assert out.count("<script") == HEAD.count("<script")


def test_the_search_index_and_its_scripts_are_left_out():
    head = (
        '<meta name="docsearch:language" content="en"/>\n'
        '    <script src="../_static/searchtools.js"></script>\n'
        '    <script src="../_static/language_data.js"></script>\n'
        '    <script src="../searchindex.js"></script>\n'
        '<script src="../_static/mysearchtools.js"></script>\n'
    )
    out = str(weight.without_search_index(head))
    assert out == (
        '<meta name="docsearch:language" content="en"/>\n'
        '<script src="../_static/mysearchtools.js"></script>\n'
    )


def test_the_icon_script_and_script_preloads_are_left_out_of_the_head():
    css = (
        '<link href="../_static/styles/theme.css?digest=9" rel="stylesheet" />\n'
        '<script src="../_static/scripts/fontawesome.js?digest=9"></script>\n'
        '  <link rel="preload" as="script" href="../_static/scripts/bootstrap.js?digest=9" />\n'
        '<link rel="preload" as="font" href="x.woff2" />\n'
    )
    assert str(weight.lighter_head(css)) == (
        '<link href="../_static/styles/theme.css?digest=9" rel="stylesheet" />\n'
        '<link rel="preload" as="font" href="x.woff2" />\n'
    )


THEME_CSS = (
    '.a{color:red}.fa-github{--fa:"\\f09b"}.fa-magnifying-glass,.fa-search{--fa:"\\f002"}'
    '.fa-0{--fa:"\\30 "}.fa-moon{--fa:"\\f186"}.x:after{content:var(--pst-icon-bell)}'
    ':root{--pst-icon-bell:"\uf0f3"}'
    "@font-face{font-family:Font Awesome\\ 7 Free;"
    "src:url(../vendor/fontawesome/webfonts/fa-solid-900.woff2)}\n"
    "/*# sourceMappingURL=pydata-sphinx-theme.css.map*/"
)


def test_only_the_rules_of_icons_in_use_are_kept():
    out = icons.prune_stylesheet(THEME_CSS, {"fa-search", "fa-github", "fa-unrelated"})
    assert '.fa-github{--fa:"\\f09b"}' in out
    assert '.fa-magnifying-glass,.fa-search{--fa:"\\f002"}' in out  # kept through an alias
    assert ".fa-0{" not in out and ".fa-moon{" not in out
    assert ".a{color:red}" in out and "--pst-icon-bell" in out
    assert 'url(../vendor/fontawesome/webfonts/fa-solid-900.subset.woff) format("woff")' in out
    assert "sourceMappingURL" not in out


def test_icon_names_and_characters_are_read_from_pages_and_stylesheets():
    page = '<i class="fa-solid fa-magnifying-glass"></i><span class="btn__icon fa-brands">'
    assert icons.icon_names([page, "e.classList='fa-solid fa-xmark'"]) == {
        "fa-solid",
        "fa-magnifying-glass",
        "fa-brands",
        "fa-xmark",
    }
    found = icons.css_characters(THEME_CSS)
    assert {0xF09B, 0xF002, 0x30, 0xF186, 0xF0F3} <= found
    assert ord("\\") not in found


def test_a_font_subset_holds_exactly_the_characters_asked_for(tmp_path):
    source = icons.theme_static() / icons.WEBFONTS / "fa-solid-900.woff2"
    full = TTFont(source)
    assert 0xF002 in full.getBestCmap() and 0xF186 in full.getBestCmap()
    target = tmp_path / "solid.woff"
    icons.subset_font(source, target, {0xF002, 0xF186, 0x10FFFF})  # the last is no icon
    subset = TTFont(target)
    assert subset.flavor == "woff"
    assert set(subset.getBestCmap()) == {0xF002, 0xF186}
    assert target.stat().st_size < source.stat().st_size / 10
    assert "Font Awesome" in subset["name"].getDebugName(1)


#: Lighthouse's accessibility, best-practices and SEO scores of a page that loses no point.
PERFECT = {"accessibility": 100, "bestPractices": 100, "seo": 100}


def test_a_missed_target_is_named_with_its_metric_and_values():
    fast = {"score": 99, "fcp": 900.0, "lcp": 1200.0, "tbt": 0.0, "cls": 0.0, **PERFECT}
    assert pagespeed.misses({**fast, "weight": 150_000}) == []
    slow = {**fast, "score": 80, "lcp": 3140.0, "tbt": 240.4, "cls": 0.02, "weight": 410_000}
    assert pagespeed.misses({**slow, "accessibility": 97, "seo": 92}) == [
        "score 80 < 95",
        "LCP 3.1 s > 2.5 s",
        "TBT 240 ms > 100 ms",
        "CLS 0.02 > 0",
        "accessibility 97 < 100",
        "SEO 92 < 100",
        "weight 410 kB > 400 kB",
    ]


def test_the_readme_table_is_written_from_the_measurement(tmp_path):
    page = {"score": 99, "fcp": 900.0, "lcp": 1200.0, "tbt": 0.0, "cls": 0.0, **PERFECT}
    page["weight"] = 150_000
    results = {
        "date": "2026-12-03",
        "lighthouse": "12.2.3",
        "chromium": "Chromium 140",
        "machine": "2 CPU cores",
        "seconds": 12.2,
        "pages": {"index.html": page, "sessions/04-ssd.html": {**page, "tbt": 240.0}},
    }
    three = {**page, "tbt": 120.4, "runs": 3, "tbtRuns": [95.2, 120.4, 310.0]}
    ran_three = pagespeed.markdown({**results, "pages": {"sessions/06-x.html": three}})
    assert "12 s for 1 pages, each run 3 times, the median run shown." in ran_three
    median = "| 120 ms (95, 120, 310) | 0 | 99 | 100 / 100 / 100 | ✗ TBT 120 ms > 100 ms |"
    assert median in ran_three
    table = pagespeed.markdown(results)
    assert "| index.html | 150 kB | 0.9 s | 1.2 s | 0 ms | 0 | 99 | 100 / 100 / 100 | ✓ |" in table
    ssd = "| sessions/04-ssd.html | 150 kB | 0.9 s | 1.2 s | 240 ms | 0 | 99 | 100 / 100 / 100 |"
    assert ssd + " ✗ TBT 240 ms > 100 ms |" in table
    (tmp_path / pagespeed.RESULTS).parent.mkdir(parents=True)
    (tmp_path / pagespeed.RESULTS).write_text(json.dumps(results))
    (tmp_path / "README.md").write_text("<!-- pagespeed:start -->\nold\n<!-- pagespeed:end -->\n")
    assert pagespeed.main(["--repo", str(tmp_path), "--update-readme"]) == 0
    assert (tmp_path / "README.md").read_text() == (
        f"<!-- pagespeed:start -->\n{table}<!-- pagespeed:end -->\n"
    )
    with pytest.raises(SystemExit, match=r"measure first \(nox -s pagespeed\)"):
        pagespeed.main(["--repo", str(tmp_path / "elsewhere")])


def test_the_theme_checks_tab_stops_near_the_screen_not_all_on_load():
    source = icons.theme_static() / weight.THEME_SCRIPT
    script = source.read_text(encoding="utf-8")
    assert script.count(weight.TAB_STOPS) == 1  # the installed theme has the expected code
    out = weight.tab_stops_near_the_screen(script)
    assert weight.TAB_STOPS not in out and weight.TAB_STOPS_NEAR_THE_SCREEN in out
    assert out.count("new IntersectionObserver(") == script.count("new IntersectionObserver(") + 1
    assert "sourceMappingURL" not in out
    assert len(out) - len(script) < 300  # the rest of the script is untouched
    with pytest.raises(ExtensionError, match="update TAB_STOPS"):
        weight.tab_stops_near_the_screen("a theme script without the tab-stop code")


def test_images_load_when_the_reader_nears_them():
    doctree = new_document("page.md", frontend.get_default_settings(html5_polyglot.Writer))
    doctree += [nodes.image(uri="figure.png"), nodes.image(uri="logo.png", loading="embed")]
    weight.lazy_images(None, doctree, "page")
    assert [image["loading"] for image in doctree.findall(nodes.image)] == ["lazy", "embed"]
    writer = html5_polyglot.Writer()
    html = core.publish_from_doctree(doctree, writer=writer).decode()
    assert 'src="figure.png"' in html and 'loading="lazy"' in html


def test_scripts_that_wire_up_controls_wait_for_the_first_interaction():
    head = (
        '<script src="../_static/documentation_options.js?v=1"></script>\n'
        '<script defer src="../_static/doctools.js?v=2"></script>\n'
        '<script defer src="../_static/copybutton.js?v=3"></script>\n'
        '<script defer data-sd-tabs-storage-prefix="tab-" src="../_static/design-tabs.js?v=4">'
        "</script>\n"
        "<script>DOCUMENTATION_OPTIONS.pagename = 'index';</script>\n"
        '<script defer src="../_static/scripts/bootstrap.js?digest=5"></script>\n'
        '<script defer src="../_static/scripts/pydata-sphinx-theme.js?digest=5"></script>\n'
    )
    out = str(weight.on_interaction(head)).splitlines()
    assert out == [
        '<script src="../_static/documentation_options.js?v=1"></script>',
        '<script defer src="../_static/doctools.js?v=2"></script>',  # needed at load
        '<script type="initdocs/on-interaction" src="../_static/copybutton.js?v=3"></script>',
        '<script type="initdocs/on-interaction" data-sd-tabs-storage-prefix="tab-" '
        'src="../_static/design-tabs.js?v=4"></script>',
        "<script>DOCUMENTATION_OPTIONS.pagename = 'index';</script>",
        '<script type="initdocs/on-interaction" src="../_static/scripts/bootstrap.js?digest=5">'
        "</script>",
        '<script type="initdocs/on-interaction" '
        'src="../_static/scripts/pydata-sphinx-theme.js?digest=5"></script>',
    ]
    # a file of the same name elsewhere is not the theme's
    assert str(weight.on_interaction('<script src="x/my-bootstrap.js"></script>')) == (
        '<script src="x/my-bootstrap.js"></script>'
    )


def test_the_script_that_runs_them_is_inlined_from_the_package():
    inline = str(weight.interaction_script())
    assert inline.startswith("<script>\n") and inline.endswith("</script>\n")
    assert weight.INTERACTION_SCRIPT.read_text(encoding="utf-8") in inline
    assert 'script[type="initdocs/on-interaction"]' in inline  # what on_interaction writes
    assert "</script" not in inline[len("<script>") : -len("</script>\n")]


def test_an_edited_script_counts_as_a_changed_template(tmp_path):
    class Templates:  # the two methods Sphinx's HTML builder asks of its templates
        def newest_template_mtime(self) -> float:
            return 1_000.0

        def newest_template_name(self) -> str:
            return "layout.html"

    script = tmp_path / "interaction.js"
    script.write_text("// the script", encoding="utf-8")
    templates = Templates()
    weight.count_as_a_template(templates, script)
    for seconds, newest, name in [(500, 1_000.0, "layout.html"), (2_000, 2_000.0, script.name)]:
        os.utime(script, (seconds, seconds))
        assert templates.newest_template_mtime() == newest
        assert templates.newest_template_name() == name


def test_code_blocks_and_tables_are_tab_stops_in_the_html():
    context = {
        "body": '<pre>a</pre><pre class="x">b</pre><pre tabindex="-1">c</pre><preview>'
        '<div class="pst-scrollable-table-container"><table></table></div>'
    }
    weight.tab_stops(None, "page", "page.html", context, None)
    assert context["body"] == (
        '<pre tabindex="0">a</pre><pre tabindex="0" class="x">b</pre>'
        '<pre tabindex="-1">c</pre><preview>'
        '<div class="pst-scrollable-table-container" tabindex="0"><table></table></div>'
    )
    no_body = {"title": "x"}
    weight.tab_stops(None, "page", "page.html", no_body, None)
    assert no_body == {"title": "x"}


def test_the_themes_list_of_scrollable_elements_is_the_one_tab_stops_was_written_for():
    """The theme's own list (addTabStopsToScrollableElements), read from its script, against
    weight.THEME_SCROLLABLE: a theme update that changes it fails here. The browser test
    (test_interaction_browser.py) checks every element of the list on a built page."""
    script = (icons.theme_static() / weight.THEME_SCRIPT).read_text(encoding="utf-8")
    listed = re.search(r'querySelectorAll\(\[("pre",[^\]]*)\]\.join\(", "\)\)', script)
    selectors = json.loads(f"[{listed.group(1)}]")
    assert selectors == list(weight.THEME_SCROLLABLE)
