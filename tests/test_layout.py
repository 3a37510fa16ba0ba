"""The package's shape: layers that only look down, no import cycle, deferred imports that say why.

The layers, lowest first (README, "How the code is laid out"): ``core``, ``files``,
``model``, ``git``, ``engine``; then the doors ``cli``, ``daemon``, ``runner``, ``remote``
(and ``mcp``), and the few modules at the top.  Imports are read with ``ast``, those
inside functions included (a cycle held together by a function-level import is still a
cycle); only ``if TYPE_CHECKING:`` blocks, which never run, are left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "milestoned"
LAYERS = {"core": 0, "files": 1, "model": 2, "git": 3, "engine": 4}
DOORS = ("cli", "daemon", "runner", "remote", "mcp")
TOP_LEVEL_LIMIT = 10
DEFERRED_REASON = "start-up"  # the word a function-level import's comment carries


@dataclass(frozen=True)
class Import:
    source: str  # dotted module that imports
    target: str  # dotted module (or package) imported
    line: int
    in_function: bool
    commented: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[Import] = []

    def commented(node: ast.stmt) -> bool:
        """A reason on the import's line, or on the line above the run of imports it is in (isort's
        blank line between the standard library and our own modules does not end a run)."""
        if DEFERRED_REASON in lines[node.lineno - 1].partition("#")[2]:
            return True
        above = node.lineno - 2
        while above >= 0 and (lines[above].strip().startswith(("from ", "import ", ")"))
                              or lines[above].rstrip().endswith(",") or not lines[above].strip()):
            above -= 1
        return above >= 0 and lines[above].strip().startswith("#") and DEFERRED_REASON in lines[above]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, in_function)
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                targets = [f"{child.module}.{alias.name}" for alias in child.names]
            for target in targets:
                resolved = _resolve(target, known) if target.startswith("milestoned") else target
                if resolved is not None:
                    found.append(Import(name, resolved, child.lineno, in_function,
                                        commented(child)))  # type: ignore[arg-type]
            visit(child, nested)

    visit(ast.parse(source), False)
    return found


def all_imports() -> list[Import]:
    known = modules()
    return [imp for name, path in known.items() for imp in imports_of(name, path, known)]


def layer_of(name: str) -> tuple[int, str]:
    """(rank, label): the layers by rank, every door one rank above the engine, the top above all."""
    parts = name.split(".")
    if name == "milestoned":
        return -1, "the package (its version)"
    if name == "milestoned.hook_scripts":
        return 9, "top"
    if parts[1] in LAYERS:
        return LAYERS[parts[1]], parts[1]
    if parts[1] in DOORS:
        return 5, parts[1]
    return 9, "top"


def test_at_most_ten_modules_sit_directly_in_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= TOP_LEVEL_LIMIT, top


def test_no_layer_imports_a_layer_above_it_or_a_door() -> None:
    wrong = []
    for imp in all_imports():
        if not imp.target.startswith("milestoned.") or imp.target == "milestoned":
            continue
        (source_rank, source), (target_rank, target) = layer_of(imp.source), layer_of(imp.target)
        if target_rank > source_rank or (source_rank < 5 and target in DOORS):
            wrong.append(f"{imp.source}:{imp.line} ({source}) imports {imp.target} ({target})")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle_counting_imports_inside_functions() -> None:
    graph: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target.startswith("milestoned") and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_every_import_inside_a_function_says_why() -> None:
    silent = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in all_imports()
              if imp.in_function and not imp.commented]
    assert not silent, f"function-level imports without a '# {DEFERRED_REASON}: ...' comment:\n" + "\n".join(silent)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                strong(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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
            strong(node)
    return found


def test_no_test_module_imports_another() -> None:
    """What tests share lives in conftest.py; a test module is never a library for another."""
    tests = Path(__file__).resolve().parent
    names = {p.stem for p in tests.glob("test_*.py")}
    found = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in names:
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Import):
                found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if a.name in names]
    assert not found, "\n".join(found)


def test_only_the_engine_records_events_or_takes_the_state_lock() -> None:
    """The doors call the engine's verbs; none of them writes an event or locks the state itself."""
    found = []
    for name, path in modules().items():
        if name.startswith("milestoned.engine"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func.value)
                if node.func.attr == "record" and target.endswith("txn"):
                    found.append(f"{name}:{node.lineno} records an event itself")
                if node.func.attr == "held" and target.endswith("lock"):
                    found.append(f"{name}:{node.lineno} takes the state lock itself")
    assert not found, "\n".join(found)
