"""The figure and report code stays small and acyclic (issue 12): no import cycle inside htsr.plots and
htsr.report, no module over MAX_MODULE_LINES lines, no function over MAX_FUNCTION_LINES lines."""
import ast
import pathlib

import pytest

import htsr

PACKAGE = pathlib.Path(htsr.__file__).parent
FOLDERS = ("plots", "report")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules():
    return sorted(p for folder in FOLDERS for p in (PACKAGE / folder).glob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path):
    """The htsr modules `path` imports, at any depth (function-level imports count: they are cycles too)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[:len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from . import x` names a module
    return found


def import_graph():
    names = {module_name(p): p for p in modules()}
    return {name: sorted(t for t in imported_modules(p) if t in names and t != name) for name, p in names.items()}


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in graph:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_modules_exist():
    names = {module_name(p) for p in modules()}
    for expected in ("htsr.plots.canvas", "htsr.plots.layer", "htsr.plots.mp", "htsr.plots.deltas",
                     "htsr.plots.overview", "htsr.plots._agg_text", "htsr.report.html", "htsr.report.template",
                     "htsr.report.compare"):
        assert expected in names


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None, find_cycle(import_graph())


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": []}) is None


def test_package_init_imports_are_seen():
    graph = import_graph()
    assert "htsr.plots.canvas" in graph["htsr.plots.layer"]


@pytest.mark.parametrize("path", modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_small_modules_and_functions(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, path
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}:{node.name} has {length} lines"
