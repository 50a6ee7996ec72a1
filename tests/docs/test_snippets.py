"""Every Python block in README.md and docs/ runs as written.

The rule: **a page is one module.** Its ```` ```python ```` blocks run in the order they
appear, in one fresh namespace (a new module, registered in ``sys.modules`` while the page
runs, so pydantic and dataclasses see a real module). A block may use what an earlier
block on the same page defined, as a reader following the page would; nothing carries
over from one page to another.

- A block that is a snippet include (``--8<-- "examples/petstore/main.py"``) runs the
  included file's text, resolved as ``pymdownx.snippets`` does with the ``base_path`` of
  ``mkdocs.yml`` (the repository root). A missing file fails, as ``check_paths`` does.
- Code runs with the repository root as the working directory and every ``examples/<app>/``
  folder on ``sys.path``, so examples import as their entry files do.
- Blocks are compiled on their own, without this file's ``from __future__`` imports, so an
  annotation naming something undefined fails as it would for the reader.
- After the page has run, every global name a function or class body uses must exist, so
  a handler cannot hide a missing import until the day it is called.

Pages are found by globbing, so a new page is checked without being listed here.
"""

from __future__ import annotations

import builtins
import logging
import re
import symtable
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from polyserve import App

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
SNIPPET_BASE = ROOT  # mkdocs.yml: pymdownx.snippets base_path ["."]
PYTHON_TAGS = {"python", "py", "python3"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
# pymdownx.snippets: a line holding only "--8<--" (any number of dashes on either side of
# "8<") and a path, quoted or not. A line escaped with a leading ";" is shown, not included.
_INCLUDE = re.compile(r"^[ \t]*-+8<-+[ \t]+(?P<quote>[\"']?)(?P<path>[^\"']+?)(?P=quote)[ \t]*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: the page, the line its code starts on, its language and code."""

    page: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{_display(self.page)}:{self.line}"


def _display(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, dedented to their fence (tabs nest them)."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].split()[0].lstrip(".").lower() if opening["info"] else ""
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        else:
            raise AssertionError(f"{_display(page)}: a code fence is never closed")
        start = i - len(body) + 1
        blocks.append(Block(page, start, language, "\n".join(body) + "\n"))
        i += 1
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [b for b in fenced_blocks(page) if b.language in PYTHON_TAGS]


@dataclass(frozen=True)
class Chunk:
    """Code to run, the file it comes from (for tracebacks) and its first line there."""

    code: str
    filename: str
    line: int


def resolve(block: Block) -> list[Chunk]:
    """What a block shows: its own lines, with each snippet include replaced by the file."""
    chunks: list[Chunk] = []
    pending: list[str] = []
    first = block.line

    def flush(next_line: int) -> None:
        nonlocal pending, first
        if any(line.strip() for line in pending):
            chunks.append(Chunk("\n".join(pending) + "\n", _display(block.page), first))
        pending, first = [], next_line

    for offset, line in enumerate(block.code.splitlines()):
        include = _INCLUDE.match(line)
        if include is None:
            pending.append(line)
            continue
        flush(block.line + offset + 1)
        path = SNIPPET_BASE / include["path"]
        assert path.is_file(), f"{block.where}: the snippet {include['path']!r} does not exist"
        chunks.append(Chunk(path.read_text(encoding="utf-8"), _display(path), 1))
    flush(first)
    return chunks


def undefined_globals(code: str, filename: str, namespace: dict[str, object]) -> set[str]:
    """Global names that a function or class body in ``code`` uses and nothing defines."""
    missing: set[str] = set()
    tables = list(symtable.symtable(code, filename, "exec").get_children())
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if (
                symbol.is_referenced()
                and symbol.is_global()
                and name not in namespace
                and not hasattr(builtins, name)
            ):
                missing.add(name)
    return missing


def _failing_line(exc: BaseException, chunk: Chunk, block: Block) -> str:
    """Where in the page (or the included file) ``exc`` was raised."""
    line = block.line
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == chunk.filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == chunk.filename and exc.lineno:
        line = exc.lineno
    where = f"{chunk.filename}:{line}"
    return (
        where if chunk.filename == _display(block.page) else f"{where} (included by {block.where})"
    )


def run_page(page: Path, module_name: str) -> dict[str, object]:
    """Run the page's Python blocks in order in one new module; return its namespace."""
    module = types.ModuleType(module_name, f"The Python blocks of {page.name}.")
    namespace = module.__dict__
    sources: list[tuple[str, str]] = []
    sys.modules[module_name] = module
    try:
        for block in python_blocks(page):
            for chunk in resolve(block):
                # Leading blank lines put tracebacks on the page's (or the file's) own lines.
                source = "\n" * (chunk.line - 1) + chunk.code
                try:
                    exec(compile(source, chunk.filename, "exec", dont_inherit=True), namespace)
                except Exception as exc:
                    where = _failing_line(exc, chunk, block)
                    raise AssertionError(
                        f"{where} does not run: {type(exc).__name__}: {exc}"
                    ) from exc
                sources.append((source, chunk.filename))
    finally:
        del sys.modules[module_name]
    for source, filename in sources:
        missing = undefined_globals(source, filename, namespace)
        assert not missing, f"{filename}: nothing on the page defines {sorted(missing)}"
    return namespace


PAGES_WITH_PYTHON = [page for page in pages() if python_blocks(page)]


@pytest.fixture
def docs_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    for app_dir in sorted((ROOT / "examples").iterdir()):
        if app_dir.is_dir():
            monkeypatch.syspath_prepend(str(app_dir))
    # A page may configure logging as a user would (a level, a handler): the loggers
    # are put back as they were so that no page changes what later tests see.
    loggers = {name: logging.getLogger(name) for name in ("", "polyserve")}
    kept = {name: (log.level, list(log.handlers)) for name, log in loggers.items()}
    yield
    for name, (level, handlers) in kept.items():
        loggers[name].setLevel(level)
        loggers[name].handlers[:] = handlers


@pytest.mark.usefixtures("docs_environment")
@pytest.mark.parametrize(
    "page", PAGES_WITH_PYTHON, ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_PYTHON]
)
def test_page_runs_as_written(page: Path) -> None:
    slug = re.sub(r"\W", "_", str(page.relative_to(ROOT).with_suffix("")))
    run_page(page, f"docs_page_{slug}")


def test_pages_are_found_by_glob_including_nested_ones() -> None:
    # The pages known to carry Python today; a new page joins through the glob.
    assert {
        "README.md",
        "docs/getting-started.md",
        "docs/providers/cloudflare.md",
    } <= {str(p.relative_to(ROOT)) for p in PAGES_WITH_PYTHON}


def test_no_python_block_is_empty() -> None:
    for page in PAGES_WITH_PYTHON:
        for block in python_blocks(page):
            assert resolve(block), f"{block.where} is an empty Python block"


# The checker itself: each rule above fails when it should.

FENCE = "```"


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text.replace("~~~", FENCE))
    return page


def test_blocks_nested_in_tabs_and_longer_fences_are_found(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "# T\n\n"
        '=== "Tab"\n\n    ~~~python\n    x = 1\n\n    y = x + 1\n    ~~~\n\n'
        "````python\n~~~\nnot the end\n~~~\n````\n\n"
        '~~~bash\necho hi\n~~~\n\n~~~ python title="t.py"\nz = 3\n~~~\n',
    )
    blocks = python_blocks(page)
    assert [(b.line, b.code) for b in blocks] == [
        (6, "x = 1\n\ny = x + 1\n"),
        (12, f"{FENCE}\nnot the end\n{FENCE}\n"),
        (22, "z = 3\n"),
    ]


def test_blocks_of_a_page_share_one_namespace_and_pages_do_not(tmp_path: Path) -> None:
    first = _page(
        tmp_path, "~~~python\nfrom polyserve import App\n~~~\n\n~~~python\napp = App('a')\n~~~\n"
    )
    app = run_page(first, "docs_page_first")["app"]
    assert isinstance(app, App)
    assert app.name == "a"
    second = tmp_path / "second.md"
    second.write_text(f"{FENCE}python\napp = App('b')\n{FENCE}\n")
    with pytest.raises(AssertionError, match=r"second.md:2 does not run: NameError: name 'App'"):
        run_page(second, "docs_page_second")


def test_an_annotation_naming_nothing_fails(tmp_path: Path) -> None:
    page = _page(tmp_path, "~~~python\ndef handler(order: Order) -> None: ...\n~~~\n")
    with pytest.raises(AssertionError, match="NameError: name 'Order' is not defined"):
        run_page(page, "docs_page_annotation")


def test_a_body_using_an_undefined_name_fails(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "~~~python\nimport json\n\n\ndef send(x: int) -> None:\n"
        "    mailer.send(json.dumps(x), [len(y) for y in x])\n~~~\n",
    )
    with pytest.raises(AssertionError, match=r"nothing on the page defines \['mailer'\]"):
        run_page(page, "docs_page_body")


def test_a_snippet_runs_the_included_file(tmp_path: Path) -> None:
    page = _page(tmp_path, '~~~python\n--8<-- "examples/shop/shop.py"\n~~~\n')
    assert [c.filename for b in python_blocks(page) for c in resolve(b)] == [
        "examples/shop/shop.py"
    ]
    assert callable(run_page(page, "docs_page_snippet")["pages_to_reindex"])


def test_a_missing_snippet_fails(tmp_path: Path) -> None:
    page = _page(tmp_path, "~~~python\n--8<-- 'examples/nowhere.py'\n~~~\n")
    with pytest.raises(
        AssertionError, match=re.escape("the snippet 'examples/nowhere.py' does not exist")
    ):
        run_page(page, "docs_page_missing")


def test_an_unclosed_fence_fails(tmp_path: Path) -> None:
    page = _page(tmp_path, "~~~python\nx = 1\n")
    with pytest.raises(AssertionError, match="a code fence is never closed"):
        fenced_blocks(page)
