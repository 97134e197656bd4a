"""The layout's numbers: import cycles among webapp's modules and the length of route handlers.

    .venv/bin/python bench/layout.py

A cycle is a group of modules that reach each other through imports (at the top of a file or inside a
function; not those only the type checker reads); a handler is a function under a blueprint's route
decorator, counted from `def` to its last line.
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "webapp"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:`, which only the type checker reads."""
    found: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The webapp modules one module imports; `from pkg import sub` counts as importing pkg.sub."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def is_route(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else None
    return isinstance(call, ast.Attribute) and call.attr in {"route", "get", "post", "put", "delete"}


def handlers() -> list[tuple[str, int]]:
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and any(is_route(d) for d in node.decorator_list):
                found.append((f"{name}.{node.name}", node.end_lineno - node.lineno + 1))
    return found


def main() -> None:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    groups = cycles(graph)
    print(f"modules: {len(known)}; import cycles: {len(groups)}")
    for group in groups:
        print("  cycle:", " <-> ".join(group))
    lengths = handlers()
    sizes = [n for _, n in lengths]
    print(
        f"handlers: {len(sizes)}; median {statistics.median(sizes):g} lines; "
        f"over 15: {sum(n > 15 for n in sizes)}; over 25: {sum(n > 25 for n in sizes)}"
    )
    for name, n in sorted(lengths, key=lambda x: -x[1]):
        if n > 15:
            print(f"  {n:3d} {name}")


if __name__ == "__main__":
    main()
