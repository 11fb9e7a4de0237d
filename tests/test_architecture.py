"""The house lets data flow one way: every import of a genlab module points down the layers below,
and no two modules import each other, directly or round a circle (imports inside functions count).

    errors, version → config, io → data, nn, metrics → models → runs → training
        → tools, evaluation → reporting → genlab (the public API) → cli

Each test reads the source with ``ast``; nothing is imported, so a circle cannot hide behind import order.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "genlab"

# Lowest first. A module may import from its own layer or any layer below, never from above.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "version"),
    ("config", "io"),
    ("data", "nn", "metrics"),
    ("models",),
    ("runs",),
    ("training",),
    ("tools", "evaluation"),
    ("reporting",),
    ("web",),  # genlab serve: the explorer over tools, evaluation and reporting
    ("",),  # genlab/__init__.py: the public API re-exports from everything above
    ("cli", "__main__"),
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
MAX_LINES = 450  # a module is read whole; past this it has two jobs


def module_name(path: Path, root: Path = SOURCE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    """The rank of a genlab module: its first part below ``genlab`` (the root package is "")."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top not in RANK:
        raise KeyError(f"{module}: in no layer; add {top!r} to LAYERS in tests/test_architecture.py")
    return RANK[top]


def imports_of(path: Path, module: str) -> dict[str, tuple[int, bool]]:
    """genlab modules ``path`` imports → (line, whether the import sits inside a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, tuple[int, bool]] = {}

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in child.names]  # a module, or an attribute of base
            for name in names:
                if name == "genlab" or name.startswith("genlab."):
                    found.setdefault(name, (child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def import_graph(root: Path = SOURCE) -> tuple[dict[str, dict[str, tuple[int, bool]]], dict[str, Path]]:
    """module → {imported genlab module → (line, deferred)}, keeping only names that are modules."""
    paths = {module_name(path, root): path for path in root.rglob("*.py")}
    graph: dict[str, dict[str, tuple[int, bool]]] = {}
    for module, path in paths.items():
        edges = {}
        for name, where in imports_of(path, module).items():
            while name not in paths and "." in name:  # `from genlab.x import name` names a module or an attribute
                name = name.rpartition(".")[0]
            if name in paths and name != module:
                edges.setdefault(name, where)
        graph[module] = edges
    return graph, paths


def upward_edges(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[str]:
    """Every import that points to a higher layer, as 'a (layer) → b (layer), line N'."""
    found = []
    for module, edges in sorted(graph.items()):
        for target, (line, _) in sorted(edges.items()):
            if layer(target) > layer(module):
                found.append(f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)}) at line {line}")
    return found


def cycles(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan 1972), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


# ----------------------------------------------------------------------------- the real house

GRAPH, PATHS = import_graph()


def test_every_module_sits_in_a_layer():
    for module in GRAPH:
        layer(module)  # raises, naming the module, when a new top-level package is not placed


def test_imports_point_down_the_layers():
    assert upward_edges(GRAPH) == []


def test_no_import_circles():
    assert cycles(GRAPH) == []


def test_no_genlab_import_is_deferred_into_a_function():
    """A deferred import hides a circle or an upward edge from a reader; every one sits at the top."""
    deferred = [f"{module} imports {target} inside a function at line {line}"
                for module, edges in sorted(GRAPH.items()) for target, (line, inside) in sorted(edges.items()) if inside]
    assert deferred == []


def test_models_never_import_training_or_anything_above():
    for module, edges in GRAPH.items():
        if module.startswith("genlab.models"):
            assert not [t for t in edges if layer(t) > RANK["models"]], module


def test_modules_are_short_enough_to_read_whole():
    long = {module: n for module, path in PATHS.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# ----------------------------------------------------------------- the checks catch what they claim

def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "genlab"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_planted_upward_import_is_named(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "",
        "models/__init__.py": "",
        "models/vae.py": "import torch\n\ndef fit():\n    from genlab.training.loop import train\n    return train\n",
        "training/__init__.py": "",
        "training/loop.py": "from genlab.models.vae import fit\n",
    })
    graph, _ = import_graph(root)
    assert upward_edges(graph) == ["genlab.models.vae (layer 3) imports genlab.training.loop (layer 5) at line 4"]
    assert graph["genlab.models.vae"]["genlab.training.loop"] == (4, True)  # seen inside the function
    assert cycles(graph) == [["genlab.models.vae", "genlab.training.loop"]]


def test_a_clean_fake_house_passes_and_relative_imports_resolve(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "from genlab.training import train\n",
        "errors.py": "",
        "models/__init__.py": "from .base import Model\n",
        "models/base.py": "from ..errors import *\n",
        "training/__init__.py": "from genlab.training.loop import train\n",
        "training/loop.py": "from genlab.models import Model\nfrom genlab import errors\n",
    })
    graph, _ = import_graph(root)
    assert graph["genlab.models.base"] == {"genlab.errors": (1, False)}
    assert graph["genlab.models"] == {"genlab.models.base": (1, False)}
    assert upward_edges(graph) == [] and cycles(graph) == []


def test_a_module_in_no_layer_is_named():
    with pytest.raises(KeyError, match=r"genlab\.webui\.app: in no layer"):
        layer("genlab.webui.app")
