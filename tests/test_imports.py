"""The package's import graph: no cycles among module-level imports, and every
import made inside a function says why (start-up time is the only reason).

The graph is built from the source with ``ast``: an edge for each ``import`` /
``from … import`` at module level (``if TYPE_CHECKING:`` blocks excluded: they are
never executed), from the importing module to the module imported — and, for
``from pkg import name``, to ``pkg.name`` when that is a module. Importing a
submodule runs its package's ``__init__`` first, so that is an edge too — except
from a module to its own packages, which are always imported before it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "broadcaster"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: at module level, in ``try``/``if``
    blocks (except ``if TYPE_CHECKING:``), not inside functions or classes."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody,
                              *(h.body for h in node.handlers)):
                    walk(block)

    walk(tree.body)
    return found


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules its module-level imports load."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _top_level_imports(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = _resolve(name, node, path.name == "__init__.py")
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        for target in targets:
            # importing a.b.c runs a, then a.b, then a.b.c
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and not (name == prefix or name.startswith(prefix + ".")):
                    graph[name].add(prefix)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}   # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and graph["broadcaster.cli"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    # importing a submodule of another package runs that package's __init__ first
    assert "broadcaster.config" in graph["broadcaster.sources.news"]
    # an import under ``if TYPE_CHECKING:`` is never executed
    assert "broadcaster.config.groups" not in graph["broadcaster.sources.kinds"]


def deferred_imports() -> list[tuple[str, int, str]]:
    """Imports made inside a function or method with no comment saying why: (file, line,
    statement). The reason is start-up time, said on the import's line or on the line
    above its block of imports (``# start-up time: …``)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), filename=str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in _direct_body_imports(fn):
                if not _says_start_up(lines, node):
                    found.append((str(path.relative_to(REPO)), node.lineno,
                                  lines[node.lineno - 1].strip()))
    return sorted(set(found))


def _direct_body_imports(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    """The imports in ``fn``'s own body (nested functions are walked on their own)."""
    out = []
    stack = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return out


def _says_start_up(lines: list[str], node: ast.stmt) -> bool:
    """A ``start-up`` comment on the import's lines, or above it past the imports before it."""
    end = node.end_lineno or node.lineno
    if any("start-up" in lines[i - 1] for i in range(node.lineno, end + 1)):
        return True
    i = node.lineno - 1
    while i >= 1:
        text = lines[i - 1].strip()
        if "start-up" in text and text.startswith("#"):
            return True
        if text.startswith(("import ", "from ")) or text.startswith("#") or text == "":
            if "start-up" in text:
                return True
            i -= 1
            continue
        return False
    return False


def test_every_import_made_in_a_function_says_it_is_for_start_up_time():
    missing = deferred_imports()
    assert missing == [], "in-function imports without a start-up comment:\n" + "\n".join(
        f"{f}:{n}: {s}" for f, n, s in missing)
