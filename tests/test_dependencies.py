"""What a chapter depends on (initdocs.book.dependencies), the offline guard of the kernels,
the balancing of chapters over parallel readers, and the execution-cache check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import CHAPTERS
from sphinx.util.parallel import make_chunks

from initdocs.book.dependencies import (
    PACKAGE_DIR,
    chapter_dependencies,
    code_cells,
    module_closure,
)
from initdocs.book.execution import balanced_order, check_cache
from initdocs.book.offline import is_local

CHAPTER = """\
# A chapter

Prose with ``from initdocs.ssd import nothing`` in backticks is not code.

```{code-cell} ipython3
:tags: [hide-input]
%matplotlib inline
from initdocs.vit import VisionTransformer
```

````{code-cell} ipython3
---
mystnb:
  image:
    alt: "a plot"
---
import initdocs.pruning as pruning
from initdocs import se
````
"""


def names(files: list[Path], package_dir: Path = PACKAGE_DIR) -> set[str]:
    return {path.relative_to(package_dir).as_posix() for path in files}


def test_code_cells_strip_options_and_keep_code():
    cells = code_cells(CHAPTER)
    assert cells[0] == "%matplotlib inline\nfrom initdocs.vit import VisionTransformer"
    assert cells[1] == "import initdocs.pruning as pruning\nfrom initdocs import se"


def test_closure_follows_absolute_relative_and_from_package_imports():
    found = names(module_closure(CHAPTER))
    # vit imports transformer; pruning imports .data, .resnet, .train (relative);
    # `from initdocs import se` imports the module se, which imports resnet; every import of
    # the package runs __init__.py, which imports counting.
    assert found == {
        "__init__.py",
        "counting.py",
        "vit.py",
        "transformer.py",
        "pruning.py",
        "data.py",
        "resnet.py",
        "train.py",
        "se.py",
    }
    assert "ssd.py" not in found  # mentioned in prose only


def test_every_chapter_depends_on_its_own_module():
    own = {
        "01": "xception.py",
        "02": "deeplab.py",
        "03": "se.py",
        "04": "ssd.py",
        "05": "rnn_encdec.py",
        "06": "transformer.py",
        "07": "vit.py",
        "08": "pruning.py",
        "09": "self_distillation.py",
        "10": "importance_weighting.py",
        "11": "rsb.py",
    }
    assert len(CHAPTERS) == len(own)
    for chapter in CHAPTERS:
        found = names(module_closure(chapter.read_text(encoding="utf-8")))
        assert own[chapter.name[:2]] in found, chapter.name
        assert not any(name.startswith("book/") for name in found)  # tooling never


def test_fingerprint_changes_with_a_dependency_only(tmp_path):
    copy = tmp_path / "initdocs"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = "```{code-cell} ipython3\nfrom initdocs.se import SEBlock\n```\n"
    before = chapter_dependencies(source, copy)
    assert before.fingerprint == chapter_dependencies(source, PACKAGE_DIR).fingerprint
    # se imports resnet and counting; counting measures in train's evaluating().
    assert before.modules == (
        "initdocs",
        "initdocs.counting",
        "initdocs.resnet",
        "initdocs.se",
        "initdocs.train",
    )
    assert any(lib.startswith("torch==") for lib in before.libraries)

    unrelated = copy / "xception.py"
    unrelated.write_text(unrelated.read_text(encoding="utf-8") + "\n# edit\n", "utf-8")
    assert chapter_dependencies(source, copy).fingerprint == before.fingerprint

    used = copy / "resnet.py"  # imported by se.py
    used.write_text(used.read_text(encoding="utf-8") + "\n# edit\n", "utf-8")
    assert chapter_dependencies(source, copy).fingerprint != before.fingerprint


def test_hidden_cell_is_a_removed_code_cell_with_the_fingerprint():
    deps = chapter_dependencies("```{code-cell} ipython3\nimport initdocs\n```\n")
    cell = deps.hidden_cell()
    assert "```{code-cell} ipython3\n:tags: [remove-cell]\n" in cell
    assert deps.fingerprint in cell
    compile(code_cells(cell)[0], "<hidden>", "exec")  # valid Python: comments only


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (None, True),
        (b"localhost", True),
        ("example.com", False),
        ("8.8.8.8", False),
        ("10.0.0.1", False),
        ("2001:db8::1", False),
    ],
)
def test_is_local(host, local):
    assert is_local(host) is local


def test_network_guard_fails_fast_and_allows_loopback():
    """Run in a fresh interpreter: the guard patches the socket module for the whole process."""
    code = textwrap.dedent(
        """
        import json, socket, time, urllib.request
        from initdocs.book.offline import NetworkAccessError, forbid_network
        forbid_network()
        forbid_network()  # idempotent
        result = {}
        start = time.perf_counter()
        try:
            urllib.request.urlopen("http://example.com/data.csv", timeout=600)
        except OSError as error:
            result["remote"] = str(error)
        result["seconds"] = time.perf_counter() - start
        try:
            socket.create_connection(("203.0.113.7", 443), timeout=600)
        except NetworkAccessError as error:
            result["address"] = str(error)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.connect(("203.0.113.8", 53))  # a connected UDP socket (DNS clients use them)
        except NetworkAccessError as error:
            result["udp"] = str(error)
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname(), timeout=5)
        result["loopback"] = client.getpeername()[0]
        print(json.dumps(result))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(run.stdout)
    assert "chapters run offline" in result["remote"] and "example.com:80" in result["remote"]
    assert result["seconds"] < 1.0  # refused at once, no DNS wait or time-out
    assert "203.0.113.7:443" in result["address"]
    assert "203.0.113.8:53" in result["udp"]
    assert result["loopback"] == "127.0.0.1"


def makespan(order: list[str], seconds: dict[str, float], nproc: int) -> float:
    """Finish time when Sphinx reads the chunks in order, nproc at a time (greedy)."""
    workers = [0.0] * nproc
    for chunk in make_chunks(order, nproc):
        i = min(range(nproc), key=lambda k: workers[k])
        workers[i] += sum(seconds.get(d, 0.0) for d in chunk)
    return max(workers)


def test_balanced_order_keeps_every_document_and_balances_two_readers():
    # the book's measured chapter times (seconds) and its other pages
    times = [33.3, 26.2, 21.3, 23.3, 22.5, 16.1, 20.9, 14.2, 12.4, 18.0, 22.0]
    chapters = {f"sessions/{i + 1:02d}": t for i, t in enumerate(times)}
    pages = [f"community/page{i}" for i in range(8)] + ["index", "bibliography", "execution"]
    docnames = sorted(pages + list(chapters))
    order = balanced_order(docnames, chapters, 2)
    assert sorted(order) == docnames
    total = sum(times)
    assert makespan(sorted(docnames), chapters, 2) > 0.6 * total  # Sphinx's own order
    assert makespan(order, chapters, 2) <= total / 2 + max(times) / 2  # near the ideal


def test_balanced_order_with_few_documents():
    order = balanced_order(["a", "b", "c"], {"a": 5.0, "c": 9.0}, 2)
    assert sorted(order) == ["a", "b", "c"]
    assert makespan(order, {"a": 5.0, "c": 9.0}, 2) == 9.0


def test_cache_check_creates_keeps_and_replaces_a_corrupt_cache(tmp_path):
    path = tmp_path / "cache"
    assert check_cache(path) is None  # created
    assert (path / "global.db").is_file()
    assert check_cache(path) is None  # usable
    (path / "global.db").write_bytes(b"this is not a database" * 100)
    reason = check_cache(path)
    assert reason is not None and "DatabaseError" in reason
    assert check_cache(path) is None  # a fresh, working cache
