"""The documentation cannot go stale: every command and snippet in README.md and docs/**/*.md runs.

Per page, in order, in a fresh temporary folder: every ```bash / ```sh / ```console command and every
```python snippet (a page's Python snippets share one namespace, like a notebook's cells). What makes a
page fast is SUBSTITUTIONS below: each row rewrites the text of every command and snippet before it runs
(full data → the bundled 6,000-image subset, 10 epochs → 3 steps, 10,000 samples → 200); nothing else is
changed. A command fails the page when it exits non-zero, or when a file it promises does not appear
(``-o``/``--output``/``--out``/``--json``/``--gif`` of a command; ``out_dir=`` and the path given to
``save_image`` in a snippet).

A block that must not run here (``make``, ``pip install``, several torchrun processes, a GPU, the
benchmarks' hours) carries an explicit marker on the line before its fence, which this test reports
as a skip with its reason:

    <!-- docs-test: skip (the reason) -->

A ```console block shows commands (``$ ...``) with what they print: each line shown must appear in the
output. A block whose commands are meant to fail says so, and with which exit code, the same way:

    <!-- docs-test: exit 2 -->

A fence without a language fails the test: name it (``bash``, ``python``) to run it, or ``text`` for a
diagram or an output sample. ``genlab`` commands run in this process (``genlab.cli.main``: no second
torch import per command); any other command runs in bash with the virtual environment's bin/ first
on PATH. Datasets cannot be downloaded: GENLAB_MIRROR points at a closed port, so a command that escapes
the tiny data fails at once instead of fetching 30 MB.

Also checked here, without running anything: every relative link of every page (README.md included)
names an existing file; every ``{{ result: ... }}`` reference of the docs site resolves to a cell of a
results file (scripts/docs_hooks.py); README.md is the site's front page (docs/index.md, links rewritten
by scripts/front_page.py); and every substitution row is used by some page, so the list cannot rot.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# (pattern, replacement, reason): Python regular expressions, applied in this order to every command and
# snippet before it runs. `\g<0>` is the whole match.
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    (r"\bfashion-mnist(?![-\w])", "fashion-mnist-mini",
     "Fashion-MNIST is a 30 MB download; the bundled subset (6,000 train / 1,000 test images) has the same classes"),
    (r"--data mnist\b", "--data fashion-mnist-mini", "MNIST is a download; any labelled 28×28 set trains a judge"),
    (r"^(genlab train .*?)--epochs \d+", r"\1--epochs 1 --max-steps 3", "training runs: 3 steps, not epochs"),
    (r"--max-steps \d+", "--max-steps 3", "training runs with a step budget: 3 steps"),
    (r"--max-seconds \d+", "--max-steps 3", "training runs with a time budget: 3 steps"),
    (r"^genlab train (vae|gan|encoder|sr)\b(?!.*--epochs)(?!.*--max-steps).*$", r"\g<0> --max-steps 3",
     "training runs that keep the default epochs: 3 steps"),
    (r"^genlab judge train\b.*$", r"\g<0> --epochs 1", "a judge: one epoch"),
    (r"^genlab (evaluate|compare)\b.*$", r"\g<0> -n 200",
     "metrics on 200 samples, not 5,000-10,000 (the least FID, KID and PRDC take is 129)"),
    (r"^genlab edit\b.*$", r"\g<0> --max-per-class 16 --measure 8 --projection-steps 2 -n 4",
     "edits: directions from 16 images a class, measured on 8, GAN inversion in 2 steps, 4 images edited"),
    (r"^genlab interpolate\b.*$", r"\g<0> --projection-steps 2", "GAN inversion in 2 projector steps, not 100-200"),
    (r"^genlab inpaint\b.*$", r"\g<0> --steps 2 --restarts 1", "inpainting: 2 chain or optimiser steps, one start"),
    (r"^genlab inpaint\b(.*) -n \d+", r"genlab inpaint\1 -n 4", "inpainting from a dataset: 4 images"),
    (r"\bepochs=\d+", "epochs=1, max_steps=3", "Python training runs: 3 steps"),
    (r"\bnum_samples=10_000\b", "num_samples=200", "Python metrics on 200 samples"),
    (r"\bnum_samples=1000\b", "num_samples=10", "IWAE bounds with k = 10 importance samples, not 1,000"),
    (r"\bsteps=200\b", "steps=2", "Python GAN inversion in 2 projector steps"),
    (r"\bsteps=(10|25)\b", "steps=2", "Python diffusion sampling: 2 DDIM steps, not 10-25"),
    (r"^(genlab sample .*?)--steps \d+", r"\1--steps 2", "diffusion sampling: 2 DDIM steps, not 50"),
    (r"\bmax_per_class=500\b", "max_per_class=16", "Python edit directions from 16 images a class"),
    (r"^python examples/", f"python {ROOT}/examples/", "the examples run from the repository, the commands from a sandbox"),
]
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
EXIT = re.compile(r"^<!--\s*docs-test:\s*exit\s+(?P<code>\d+)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)")
RUN_LANGUAGES = {"bash", "sh", "console", "python"}
OUTPUT_OPTIONS = {"-o", "--output", "--out", "--json", "--gif"}
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}
COMMAND_TIMEOUT_S = 300
USED: set[int] = set()  # substitution rows some block used (checked by test_every_substitution_is_used)


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # the marker's reason
    exit_code: int = 0  # what every command of the block must exit with (`<!-- docs-test: exit N -->`)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the skip marker that precedes each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, indent, fence = i, len(match["indent"]), match["fence"]
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        previous = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker, exit_marker = SKIP.match(previous), EXIT.match(previous)
        found.append(Block(page, start + 1, match["lang"], "\n".join(body), marker["reason"].strip() if marker else None,
                           int(exit_marker["code"]) if exit_marker else 0))
    return found


def substitute(text: str) -> str:
    """``text`` with every row of SUBSTITUTIONS applied (multi-line: ^ and $ match at each line)."""
    for row, (pattern, replacement, _reason) in enumerate(SUBSTITUTIONS):
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if count:
            USED.add(row)
    return text


def strip_comment(line: str) -> str:
    """``line`` without its shell comment (a ``#`` at the start of a word, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def shell_commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined; comments, blank lines and console output dropped
    (so a substitution that appends an option appends it to the command, not to its comment)."""
    lines = block.code.splitlines()
    if block.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands, current = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        command = strip_comment(current + line).strip()
        current = ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def expected_output(block: Block, command: str) -> list[str]:
    """The output lines a ```console block shows under ``$ command``: each must appear in what it printed."""
    if block.lang != "console":
        return []
    lines, shown = block.code.splitlines(), []
    for i, line in enumerate(lines):
        if line.startswith("$ ") and strip_comment(line[2:]).strip() == command:
            for after in lines[i + 1:]:
                if after.startswith("$ "):
                    break
                shown += [after.strip()] if after.strip() else []
    return shown


def promised_outputs(tokens: list[str]) -> list[str]:
    outputs = []
    for i, token in enumerate(tokens):
        if token in OUTPUT_OPTIONS and i + 1 < len(tokens):
            outputs.append(tokens[i + 1])
        elif "=" in token and token.split("=", 1)[0] in OUTPUT_OPTIONS:
            outputs.append(token.split("=", 1)[1])
    return outputs


def run_genlab(arguments: list[str]) -> tuple[int, str]:
    """``genlab ARGUMENTS`` in this process; (exit code, what it printed)."""
    from genlab.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            code = main(arguments)
        except SystemExit as exit_:  # argparse: a bad option
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, printed.getvalue()


def run_command(command: str, block: Block, folder: Path) -> None:
    run = substitute(command)
    tokens = shlex.split(run, comments=True)
    in_process = tokens[:1] == ["genlab"] and not SHELL_OPERATORS & set(tokens)
    if in_process:
        code, printed = run_genlab(tokens[1:])
    else:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run(["bash", "-c", run], cwd=folder, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        code, printed = done.returncode, done.stdout + done.stderr
    said = f"{block.where}: `{command}`" + (f"\n  (run as `{run}`)" if run != command else "")
    assert code == block.exit_code, f"{said}\n  exited with {code}, not {block.exit_code}:\n{printed[-3000:]}"
    for line in expected_output(block, command):
        assert line in printed, f"{said}\n  did not print {line!r}; it printed:\n{printed[-3000:]}"
    missing = [path for path in promised_outputs(tokens) if not (folder / path).exists()]
    assert block.exit_code or not missing, f"{said}\n  did not write {missing}:\n{printed[-3000:]}"


def snippet_outputs(code: str) -> list[str]:
    """Paths a snippet promises: ``out_dir="..."`` and the literal path given to ``save_image``/``save_gif``."""
    outputs = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name in {"save_image", "save_gif"} and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            outputs.append(node.args[1].value)
        outputs += [k.value.value for k in node.keywords
                    if k.arg == "out_dir" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)]
    return outputs


def run_snippet(block: Block, namespace: dict, folder: Path) -> None:
    run = substitute(block.code)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            exec(compile(run, block.where, "exec"), namespace)
    except Exception as error:
        raise AssertionError(f"{block.where}: the snippet raised {error!r}\n--- as run:\n{run}\n---\n{printed.getvalue()[-3000:]}"
                             ) from error
    missing = [path for path in snippet_outputs(run) if not (folder / path).exists()]
    assert not missing, f"{block.where}: the snippet did not write {missing}"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_is_front_page() -> bool:
    front_page = _load(ROOT / "scripts" / "front_page.py")
    expected = front_page.render((ROOT / "docs" / "index.md").read_text(encoding="utf-8"))
    return (ROOT / "README.md").read_text(encoding="utf-8") == expected


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def runnable(page: Path) -> bool:
    """A page with a block to run; docs/index.md only while README.md is not its rendering (the same blocks)."""
    if page == ROOT / "docs" / "index.md" and _readme_is_front_page():
        return False
    return any(b.lang in RUN_LANGUAGES and b.skip is None for b in blocks(page))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh working folder; datasets found only where genlab ships them, downloads refused at once."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GENLAB_MIRROR", "http://127.0.0.1:9")  # the discard port: a connection refused at once
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return folder


@pytest.mark.docs
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=page_id)
def test_page_runs(page, sandbox):
    namespace: dict = {"__name__": "__docs__"}
    started = time.perf_counter()
    for block in blocks(page):
        if block.skip is not None or block.lang not in RUN_LANGUAGES:
            continue
        if block.lang == "python":
            began = time.perf_counter()
            run_snippet(block, namespace, sandbox)
            print(f"{time.perf_counter() - began:6.1f} s  {block.where} (python)")
        else:
            for command in shell_commands(block):
                began = time.perf_counter()
                run_command(command, block, sandbox)
                print(f"{time.perf_counter() - began:6.1f} s  {block.where} {command}")
    print(f"{page_id(page)}: {time.perf_counter() - started:.1f} s")


@pytest.mark.docs
@pytest.mark.parametrize("block", [b for p in PAGES for b in blocks(p) if b.skip is not None], ids=lambda b: b.where)
def test_skipped_block(block):
    """Each block marked `docs-test: skip (reason)`, listed in the test summary with its reason."""
    assert block.lang in RUN_LANGUAGES, f"{block.where}: a skip marker on a `{block.lang or 'unnamed'}` block, which never runs"
    pytest.skip(f"{block.where}: {block.skip}")


def test_every_block_names_its_language():
    unnamed = [b.where for p in PAGES for b in blocks(p) if not b.lang]
    assert not unnamed, f"fenced blocks without a language (bash/python to run them, text for not): {unnamed}"


def test_every_substitution_is_used():
    USED.clear()
    for page in PAGES:
        for block in blocks(page):
            if block.skip is None and block.lang in RUN_LANGUAGES:
                substitute(block.code if block.lang == "python" else "\n".join(shell_commands(block)))
    unused = [SUBSTITUTIONS[row] for row in range(len(SUBSTITUTIONS)) if row not in USED]
    assert not unused, f"substitutions no page needs any more (remove them): {unused}"


LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_relative_links_name_existing_files():
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for match in LINK.finditer(text):
            target = match["target"].split("#")[0]
            if not target or re.match(r"^[a-z]+:", target) or target.startswith("/"):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists():
                broken.append(f"{page_id(page)}: {match['target']}")
    assert not broken, f"links to files that do not exist: {broken}"


def test_results_references_resolve():
    hooks = _load(ROOT / "scripts" / "docs_hooks.py")
    errors = []
    for page in (ROOT / "docs").rglob("*.md"):
        try:
            text = hooks.expand(page.read_text(encoding="utf-8"))
        except hooks.UnresolvedReference as error:
            errors.append(f"{page_id(page)}: {error}")
            continue
        left = re.findall(r"\{\{.*?\}\}", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
        errors += [f"{page_id(page)}: {reference} is not a reference the hook knows (result, table, results-index)"
                   for reference in left]
    assert not errors, "\n".join(errors)


def _readme_is_front_page() -> bool:
    front_page = _load(ROOT / "scripts" / "front_page.py")
    expected = front_page.render((ROOT / "docs" / "index.md").read_text(encoding="utf-8"))
    return (ROOT / "README.md").read_text(encoding="utf-8") == expected


def test_readme_is_the_front_page():
    assert _readme_is_front_page(), (
        "README.md differs from docs/index.md: edit docs/index.md, then run `python scripts/front_page.py`")


def test_api_reference_covers_the_public_api():
    import genlab

    documented = set(re.findall(r"^::: genlab\.(\w+)\s*$", (ROOT / "docs" / "reference.md").read_text(encoding="utf-8"),
                                re.MULTILINE))
    public = set(genlab.__all__) - {"__version__"}
    assert documented == public, (f"docs/reference.md lacks {sorted(public - documented)}; "
                                  f"documents names not in genlab.__all__: {sorted(documented - public)}")
