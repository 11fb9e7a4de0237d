"""MkDocs hooks for genlab's docs site (named in mkdocs.yml): numbers come from the results files, not from typing.

1. Every ``benchmarks/results/*.md`` becomes a page ``results/<name>.md`` of the site (listed under
   Benchmarks → Results files in the navigation), its picture links rewritten to the site's ``images/``
   folder.
2. Pages link to results files where they are in the repository (``../../benchmarks/results/X.md`` from a
   guide), so the links work on GitHub; the site points them at its own ``results/X.md`` pages.
3. Pages may quote a results file instead of copying a number out of it:

   ``{{ result: vae_vs_gan; sharpness (Laplacian energy ÷ real); genlab VAE }}``
       the cell of that row (first column) and column (header) of a table in
       ``benchmarks/results/vae_vs_gan.md`` (or of any Markdown file named by its path from the
       repository root, e.g. ``docs/demo_report/report.md``); the row is named by its first cell, its
       second, or its first cells joined by " / " (``dcgan / 28 / 64``), left of the column asked for, or
       by the sub-heading row above it and its first cell (``hole PSNR (dB) / vae-optimize``); ``vae_vs_gan#2`` looks only in the file's
       second table (needed when a row and column name appear in more than one). Bold marks and a
       trailing ↑/↓ are ignored when matching; the cell is inserted without its bold marks.
   ``{{ table: inpainting; 1 }}``
       the file's first table, as it stands.
   ``{{ results-index }}``
       a table of every results file: its page, title, date and command.

   Arguments are separated by ``;`` (not ``|``, so a reference inside a Markdown table leaves the table
   readable on GitHub too).

   A reference that does not resolve (a renamed row, a missing file) stops the build with its page
   and text, and ``tests/test_docs.py`` checks every reference without building the site.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RESULT_PAGES = "results"  # site folder of the generated pages
MACRO = re.compile(r"\{\{\s*(results-index|result|table)\b\s*:?\s*(.*?)\s*\}\}")
MEASURED = re.compile(r"^Measured (\S+?)T\S* on (.*?)\.\s*$", re.MULTILINE)
RESULTS_LINK = re.compile(r"\]\((?:\.\./)+benchmarks/results/(?P<name>[\w.-]+\.md)(?P<anchor>#[^)\s]*)?\)")
COMMAND = re.compile(r"^Command \(from the repository root\): `(.*)`\s*$", re.MULTILINE)


class UnresolvedReference(ValueError):
    """A ``{{ ... }}`` reference to a results file that does not resolve."""


# ------------------------------------------------------------------------------------------ tables


def result_files() -> list[Path]:
    return sorted(RESULTS.glob("*.md"))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _normalise(text: str) -> str:
    return " ".join(text.replace("**", "").rstrip("↑↓ ").split())


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """The Markdown tables of a text: (header cells, rows of cells), in order."""
    found, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2 and set(block[1].replace("|", "").strip()) <= set("-: "):
            found.append((_cells(block[0]), [_cells(row) for row in block[2:]]))
        block = []
    return found


def raw_tables(text: str) -> list[str]:
    """The Markdown tables of a text as they stand, in order."""
    found, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            found.append("\n".join(block))
        block = []
    return found


def _read(name: str) -> str:
    """A results file by name (``vae_vs_gan``), or any Markdown file by its path from the repository root."""
    path = (ROOT / name) if "/" in name else RESULTS / (name if name.endswith(".md") else f"{name}.md")
    if not path.is_file():
        raise UnresolvedReference(f"no results file {path.relative_to(ROOT)}")
    return path.read_text(encoding="utf-8")


def _row_names(cells: list[str], column: int, section: str = "") -> set[str]:
    """What a row may be called: its first cell, its second, its first k cells joined by " / ", or
    "SUB-HEADING / first cell" under a sub-heading row."""
    names = {cells[0]} | ({cells[1]} if column > 1 else set())
    names |= {" / ".join(cells[:k]) for k in range(2, column + 1)}
    names |= {f"{section} / {_normalise(cells[0])}"} if section else set()
    return {_normalise(name) for name in names}


def result_cell(source: str, row: str, column: str) -> str:
    """The cell at (row, column) of a results file's tables; ``name#k`` looks only in table k (from 1)."""
    name, _, number = source.partition("#")
    candidates = list(enumerate(tables(_read(name)), start=1))
    if number:
        candidates = [(k, t) for k, t in candidates if k == int(number)]
    hits = []
    for k, (header, rows) in candidates:
        columns = [i for i, cell in enumerate(header) if _normalise(cell) == _normalise(column)]
        section = ""
        for cells in rows:
            if cells[0] and not any(cells[1:]):  # a sub-heading row, e.g. "**hole PSNR (dB) ↑**"
                section = _normalise(cells[0])
            elif columns and len(cells) > columns[0] and _normalise(row) in _row_names(cells, columns[0], section):
                hits.append((k, cells[columns[0]]))
    if not hits:
        raise UnresolvedReference(f"{source}: no table has a row {row!r} and a column {column!r}")
    if len({k for k, _ in hits}) > 1:
        raise UnresolvedReference(f"{source}: row {row!r}, column {column!r} is in tables {sorted({k for k, _ in hits})}: "
                             f"write {name}#K")
    if len(hits) > 1:
        raise UnresolvedReference(f"{source}: {len(hits)} rows {row!r} have a column {column!r}: name the row by its "
                             "sub-heading too, 'SUB-HEADING / ROW'")
    return hits[0][1].replace("**", "")


def result_table(source: str, number: str) -> str:
    found = raw_tables(_read(source))
    if not number.isdigit() or not 1 <= int(number) <= len(found):
        raise UnresolvedReference(f"{source}: table {number!r} asked for, the file has {len(found)}")
    return found[int(number) - 1]


def results_index() -> str:
    lines = ["| results file | what it measures | measured | command |", "|---|---|---|---|"]
    for path in result_files():
        text = path.read_text(encoding="utf-8")
        title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), path.stem)
        measured, command = MEASURED.search(text), COMMAND.search(text)
        lines.append(f"| [{path.name}]({RESULT_PAGES}/{path.name}) | {title} | {measured.group(1) if measured else '—'} | "
                     f"`{command.group(1) if command else '—'}` |")
    return "\n".join(lines)


def expand(markdown: str) -> str:
    """Every ``{{ result: ... }}``, ``{{ table: ... }}`` and ``{{ results-index }}`` replaced by what it names."""
    def replace(match: re.Match) -> str:
        kind, arguments = match.group(1), [part.strip() for part in match.group(2).split(";")]
        if kind == "results-index":
            return results_index()
        if kind == "table" and len(arguments) == 2:
            return result_table(*arguments)
        if kind == "result" and len(arguments) == 3:
            return result_cell(*arguments)
        raise UnresolvedReference(f"malformed reference {match.group(0)!r}")
    return MACRO.sub(replace, markdown)


def result_page(path: Path) -> str:
    """A results file as a page of the site: its pictures linked from the site's images/ folder."""
    return path.read_text(encoding="utf-8").replace("../../docs/images/", "../images/")


# ------------------------------------------------------------------------------------------ hooks


def on_config(config, **kwargs):
    """Lists every results page in a "Results files" sub-section of the navigation's Benchmarks section."""
    for entry in config.nav or []:
        if isinstance(entry, dict) and isinstance(entry.get("Benchmarks"), list):
            entry["Benchmarks"].append({"Results files": [{path.stem: f"{RESULT_PAGES}/{path.name}"} for path in result_files()]})
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    for path in result_files():
        files.append(File.generated(config, f"{RESULT_PAGES}/{path.name}", content=result_page(path)))
    return files


def site_links(markdown: str, src_uri: str) -> str:
    """Links to ``benchmarks/results/X.md`` (which work on GitHub) pointed at the site's ``results/X.md`` page."""
    prefix = "../" * src_uri.count("/")
    return RESULTS_LINK.sub(lambda m: f"]({prefix}{RESULT_PAGES}/{m['name']}{m['anchor'] or ''})", markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    from mkdocs.exceptions import PluginError

    try:
        return site_links(expand(markdown), page.file.src_uri)
    except UnresolvedReference as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from error
