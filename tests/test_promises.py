"""The promise that needs no run to check: genlab never unpickles what a user hands it."""
from __future__ import annotations

import ast
import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "genlab"
UNPICKLERS = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(node: ast.AST) -> str:
    return f"{_name(node.value)}.{node.attr}" if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def test_no_module_imports_an_unpickler_or_calls_torch_load_and_numpy_never_allows_pickle():
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                offenders += [f"{path.name}: imports {n}" for n in names if n.split(".")[0] in UNPICKLERS]
        for call in _calls(tree):
            name = _name(call.func)
            if name in ("torch.load", "torch.serialization.load"):
                offenders.append(f"{path.name}:{call.lineno}: {name}")
            if name.endswith(("np.load", "numpy.load", "format.read_array")):
                allow = [k for k in call.keywords if k.arg == "allow_pickle"]
                if not allow or not (isinstance(allow[0].value, ast.Constant) and allow[0].value.value is False):
                    offenders.append(f"{path.name}:{call.lineno}: {name} without allow_pickle=False")
    assert offenders == []


def test_every_test_the_promises_table_names_exists():
    """The promises table (docs/guides/reliability.md) names the tests that check each promise; a renamed test
    must not leave it stale."""
    page = (SOURCE.parents[1] / "docs" / "guides" / "reliability.md").read_text()
    table = page[page.index("## What genlab promises"):]
    table = table[: table.index("\n## ", 3)]
    missing = []
    for row in table.splitlines():
        current = None
        for file, name in re.findall(r"`(?:tests/)?(test_\w+\.py)?(?:::(\w+))?`?", row):
            current = file or current
            if current and name and f"def {name}(" not in (SOURCE.parents[1] / "tests" / current).read_text():
                missing.append(f"{current}::{name}")
            if current and not (SOURCE.parents[1] / "tests" / current).is_file():
                missing.append(current)
    assert missing == []
    assert "kill_soak.py" in table and (SOURCE.parents[1] / "scripts" / "kill_soak.py").is_file()
