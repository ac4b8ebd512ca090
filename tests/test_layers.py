"""The import graph of src/streamrec keeps its layers: each layer imports only itself and the
layers below it, and no modules import each other in a cycle.

Every import statement counts: module level, inside functions, and under
``if TYPE_CHECKING:`` (a type-only import still ties the layers together).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests._paths import SRC

ROOT = "streamrec"

#: the layers, lowest first: a module may import from its own layer and the ones before it.
#: ``streamrec`` is the package root (its ``__version__``); ``factorization`` (iALS),
#: ``retrieval`` (top-k, ANN indexes, co-visitation) and ``metrics`` (the metrics and the
#: ranking kernels early stopping needs) sit below the models that use them; ``plots``
#: draws model outputs for eval's studies; ``testing`` (the conformance suites) and
#: ``quickstart`` sit near the top, under the CLI that runs them.
LAYERS: tuple[str, ...] = (
    "streamrec",
    "data",
    "factorization",
    "features",
    "retrieval",
    "metrics",
    "models",
    "plots",
    "eval",
    "serve",
    "testing",
    "quickstart",
    "cli",
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / ROOT).rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ``streamrec`` that ``name`` denotes (its longest module prefix)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in MODULES:
            return candidate
    return None


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The streamrec modules one import statement imports."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the module's package, up level - 1 more
            package = module.split(".")[: None if is_package else -1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        # ``from pkg import sub`` imports the submodule when there is one
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                 for a in node.names]
    else:
        return []
    return [r for n in names if n.split(".")[0] == ROOT and (r := _resolve(n)) is not None]


def _edges() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}."""
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target != module:
                    graph[module].setdefault(target, node.lineno)
    return graph


EDGES = _edges()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _rank(module: str) -> int:
    return LAYERS.index(_layer(module))


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


# ---------------------------------------------------------------------------- tests
def test_every_module_belongs_to_a_layer():
    unplaced = sorted({_layer(m) for m in MODULES} - set(LAYERS))
    assert not unplaced, (f"top-level modules/packages without a layer: {unplaced}; "
                          "add them to LAYERS in tests/test_layers.py")


def test_imports_follow_the_layer_order():
    upward = {(src, dst): line for src, targets in EDGES.items()
              for dst, line in targets.items() if _rank(dst) > _rank(src)}
    assert not upward, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + \
        "\n".join(f"  {MODULES[s].relative_to(SRC)}:{upward[s, d]}  {s} ({_layer(s)}) imports "
                  f"{d} ({_layer(d)})" for s, d in sorted(upward))


def test_no_cycle_between_layers():
    graph: dict[str, set[str]] = defaultdict(set)
    for src, targets in EDGES.items():
        for dst in targets:
            if _layer(src) != _layer(dst):
                graph[_layer(src)].add(_layer(dst))
    assert not _cycles(graph)


def test_no_import_cycle_between_modules():
    graph = {src: set(targets) for src, targets in EDGES.items()}
    cycles = [sorted(c) for c in _cycles(graph)]
    assert not cycles, f"import cycles between modules: {cycles}"


def test_the_checker_sees_imports_inside_functions_and_type_checking_blocks():
    # features/streamrec.py imports factorization inside a function; models.base imports the
    # registry at module level; serve/engine.py imports models under TYPE_CHECKING or lazily
    assert "streamrec.factorization" in EDGES["streamrec.features.streamrec"]
    assert "streamrec.models.zoo" in EDGES["streamrec.models.base"]
    assert any(d.startswith("streamrec.models") for d in EDGES["streamrec.serve.engine"])


def test_the_checker_flags_an_upward_import(tmp_path):
    tree = ast.parse("def f():\n    from streamrec.eval.protocol import evaluate\n")
    node = tree.body[0].body[0]  # type: ignore[attr-defined]
    [target] = _targets(node, "streamrec.models.base", False)
    assert _rank(target) > _rank("streamrec.models.base")
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
