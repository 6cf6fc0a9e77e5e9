"""The layout's rules, read from the source: no import cycles, and data flows one way.

Every ``import`` statement counts, at module level or inside a function, since a function-level
import is an edge all the same (it only moves the moment the cycle bites).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> import name, as pyproject.toml installs them
PACKAGES = {
    "recllmsim_hf": "recllmsim_hf",
    "generation": "recllmsim_hf.generation",
    "loading_script": "recllmsim_hf.loading_script",
    "dataset_card": "recllmsim_hf.dataset_card",
}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([name, *parts])] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            # the longest known module that the name is or lies in
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
    return edges


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: _imports(m, p, known) for m, p in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _is_package_init(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def test_the_graph_is_read():
    graph = _graph()
    assert "recllmsim_hf.analysis.intent_data" in graph["recllmsim_hf.analysis.baselines"]
    assert "recllmsim_hf.generation.llm.runner" in graph["recllmsim_hf.generation.llm"]
    assert "recllmsim_hf.dataset.configs" in graph["recllmsim_hf.loading_script.recllmsim"]


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ re-exporting its modules is not a cycle of the modules themselves
    edges = {
        m: {n for n in targets if not (_is_package_init(n) and m.startswith(n + "."))}
        for m, targets in graph.items()
    }
    assert _cycle(edges) is None


def test_recllmsim_hf_imports_generation_only_from_its_cli():
    offenders = sorted(
        (m, n)
        for m, targets in _graph().items()
        if m.startswith("recllmsim_hf.")
        and not m.startswith(("recllmsim_hf.generation", "recllmsim_hf.cli"))
        for n in targets
        if n.startswith("recllmsim_hf.generation")
    )
    assert offenders == []


def test_the_wheel_lists_every_package():
    """pyproject names the wheel's packages one by one: a new subpackage left out of that list
    installs as missing (an editable install would not show it)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {m for m, p in _modules().items() if p.name == "__init__.py"}
    assert found == listed
