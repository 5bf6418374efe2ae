"""How fast the book's pages are on a phone: the targets, and the README's table.

``tests/test_browser.py`` weighs each page with everything it loads, and its ``pagespeed``
test (run by ``nox -s pagespeed``, minutes long, so not part of ``nox -s tests``) measures the
home page and every chapter with Lighthouse (mobile, simulated throttling) on the built book
served gzip-compressed; it fails a page that misses :data:`TARGETS` and writes what it
measured to ``docs/_build/pagespeed/pagespeed.json`` and ``pagespeed.md``. ``python -m
initdocs.book.pagespeed --update-readme`` puts that table into the README, between
``<!-- pagespeed:start -->`` and ``<!-- pagespeed:end -->``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from initdocs.book.bench import update_readme

#: Per page, from Lighthouse: performance score at least, largest contentful paint and total
#: blocking time at most (ms), cumulative layout shift at most, the accessibility,
#: best-practices and SEO scores at least; and the page's weight with everything it loads, as
#: a compressing host sends it (bytes), at most.
TARGETS = {
    "score": 95,
    "lcp": 2500.0,
    "tbt": 100.0,
    "cls": 0.0,
    "accessibility": 100,
    "bestPractices": 100,
    "seo": 100,
    "weight": 400_000,
}
LABELS = {
    "score": "score",
    "lcp": "LCP",
    "tbt": "TBT",
    "cls": "CLS",
    "accessibility": "accessibility",
    "bestPractices": "best practices",
    "seo": "SEO",
    "weight": "weight",
}
#: Scores (0-100), whose targets are least values; every other target is a most value.
SCORES = ("score", "accessibility", "bestPractices", "seo")
RESULTS = Path("docs/_build/pagespeed/pagespeed.json")


def misses(page: dict) -> list[str]:
    """What one page's measurement misses, e.g. ``"LCP 3.1 s > 2.5 s"``; empty if none."""
    found = []
    for key, target in TARGETS.items():
        value = page[key]
        if value < target if key in SCORES else value > target:
            relation = "<" if key in SCORES else ">"
            found.append(f"{LABELS[key]} {_format(key, value)} {relation} {_format(key, target)}")
    return found


def _format(key: str, value: float) -> str:
    if key in ("lcp", "tbt", "fcp"):
        return f"{value / 1000:.1f} s" if key != "tbt" else f"{value:.0f} ms"
    if key == "weight":
        return f"{value / 1000:.0f} kB"
    if key == "cls":
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    return f"{value:.0f}"


def markdown(results: dict) -> str:
    """The measurement as the Markdown table shown in the README."""
    runs = max((page.get("runs", 1) for page in results["pages"].values()), default=1)
    lines = [
        f"Measured {results['date']} with Lighthouse {results['lighthouse']} (mobile, simulated "
        f"throttling) driving {results['chromium']}, on {results['machine']}; "
        f"{results['seconds']:.0f} s for {len(results['pages'])} pages"
        + (f", each run {runs} times, the median run shown." if runs > 1 else "."),
        "",
        "| Page | Weight | FCP | LCP | TBT (each run) | CLS | Score | A11y / BP / SEO | Targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, page in results["pages"].items():
        missed = misses(page)
        cells = [_format(key, page[key]) for key in ("weight", "fcp", "lcp", "tbt", "cls", "score")]
        if len(page.get("tbtRuns", ())) > 1:  # the median run's TBT, then every run's
            cells[3] += " (" + ", ".join(f"{tbt:.0f}" for tbt in page["tbtRuns"]) + ")"
        cells.append(" / ".join(_format(key, page[key]) for key in SCORES[1:]))
        verdict = "✓" if not missed else "✗ " + ", ".join(missed)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initdocs.book.pagespeed", description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the repository")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    source = args.repo / RESULTS
    if not source.is_file():
        raise SystemExit(f"{source} is missing: measure first (nox -s pagespeed)")
    table = markdown(json.loads(source.read_text(encoding="utf-8")))
    print(table)
    if args.update_readme:
        update_readme(args.repo / "README.md", table, marker="pagespeed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
