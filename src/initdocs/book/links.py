"""The broken links found by ``nox -s linkcheck``, as the Markdown list the weekly workflow
puts into one issue.

Sphinx's linkcheck builder writes one JSON object per link to ``output.json`` (file, line,
status, URL, message). ``python -m initdocs.book.links FOLDER`` writes ``broken.md`` next to
it, listing every link whose status is ``broken`` or ``timeout`` (what makes Sphinx's
linkcheck fail), and exits 1 if there is any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAILING = ("broken", "timeout")
REPORT = "broken.md"


def broken_links(output_json: Path) -> list[dict]:
    """The failing links of a linkcheck run, sorted by file and line."""
    if not output_json.is_file():
        raise SystemExit(f"{output_json} is missing: run `nox -s linkcheck` first")
    links = []
    for number, line in enumerate(output_json.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            link = json.loads(line)
        except ValueError as error:
            raise SystemExit(f"{output_json}:{number}: not a JSON line ({error})") from error
        if link.get("status") in FAILING:
            links.append(link)
    return sorted(links, key=lambda link: (link["filename"], link.get("lineno") or 0))


def markdown(links: list[dict]) -> str:
    """A table of the failing links (one row each), or a sentence saying there is none."""
    if not links:
        return "Every external link of the book works.\n"
    rows = [
        f"{len(links)} external link(s) of the book failed the weekly `nox -s linkcheck`. "
        "Fix or replace each one (an archived copy on web.archive.org is a fair replacement), "
        "or add it to `linkcheck_ignore` in docs/conf.py if the site refuses robots.",
        "",
        "| File | Line | Link | Status | Message |",
        "|---|---:|---|---|---|",
    ]
    for link in links:
        message = str(link.get("info") or "").replace("|", "\\|").replace("\n", " ")[:200]
        rows.append(
            f"| `docs/{link['filename']}` | {link.get('lineno') or ''} | <{link['uri']}> | "
            f"{link['status']} | {message} |"
        )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m initdocs.book.links docs/_build/linkcheck", file=sys.stderr)
        return 2
    folder = Path(args[0])
    links = broken_links(folder / "output.json")
    (folder / REPORT).write_text(markdown(links), encoding="utf-8")
    print(f"{len(links)} broken link(s); the list is in {folder / REPORT}")
    return 1 if links else 0


if __name__ == "__main__":
    raise SystemExit(main())
