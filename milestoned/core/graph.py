"""Pure functions over a task dependency graph.

``deps`` maps each task id to the ids it depends on; ``status`` maps each task id to
its status.  There is one definition of *ready* (pending, every dependency completed)
and every door (``next``, the runner, claims, the daemon) uses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Deps = Mapping[str, Sequence[str]]


def find_cycle(deps: Deps) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]`` (each depends on the next), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in deps:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(deps.get(start, ())))]
        state[start] = 1
        path.append(start)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in deps:
                    continue
                if state.get(child) == 1:
                    return path[path.index(child):] + [child]
                if not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(deps.get(child, ()))))
                    break
            else:
                state[node] = 2
                path.pop()
                stack.pop()
    return None


def topological_order(deps: Deps) -> list[str]:
    """Tasks ordered so that each comes after its dependencies (ties keep plan order)."""
    order: list[str] = []
    seen: set[str] = set()
    for start in deps:
        if start in seen:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(deps.get(start, ())))]
        seen.add(start)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child in deps and child not in seen:
                    seen.add(child)
                    stack.append((child, iter(deps.get(child, ()))))
                    break
            else:
                order.append(node)
                stack.pop()
    return order


def dependents(deps: Deps) -> dict[str, list[str]]:
    """The reverse graph: for each task, the tasks that depend on it."""
    reverse: dict[str, list[str]] = {task: [] for task in deps}
    for task, needs in deps.items():
        for need in needs:
            reverse.setdefault(need, []).append(task)
    return reverse


def is_ready(task: str, deps: Deps, status: Mapping[str, str]) -> bool:
    return status.get(task) == "pending" and all(status.get(d) == "completed" for d in deps.get(task, ()))


def ready(deps: Deps, status: Mapping[str, str]) -> list[str]:
    """Pending tasks whose dependencies are all completed, in plan order."""
    return [task for task in deps if is_ready(task, deps, status)]


def waiting_on_blocked(deps: Deps, status: Mapping[str, str]) -> set[str]:
    """Unfinished tasks that cannot finish because a task they need (transitively) is blocked."""
    reverse = dependents(deps)
    stuck: set[str] = set()
    frontier = [task for task, st in status.items() if st == "blocked" and task in deps]
    while frontier:
        for child in reverse.get(frontier.pop(), ()):
            if child not in stuck and status.get(child) != "completed":
                stuck.add(child)
                frontier.append(child)
    return stuck


def critical_path(deps: Deps, weight: Mapping[str, float]) -> tuple[float, list[str]]:
    """The heaviest dependency chain: (its total weight, its tasks in order)."""
    best: dict[str, tuple[float, str | None]] = {}
    for task in topological_order(deps):
        prior = max(
            ((best[d][0], d) for d in deps.get(task, ()) if d in best),
            default=(0.0, None),
        )
        best[task] = (prior[0] + weight.get(task, 1.0), prior[1])
    if not best:
        return 0.0, []
    end = max(best, key=lambda t: best[t][0])
    chain: list[str] = []
    node: str | None = end
    while node is not None:
        chain.append(node)
        node = best[node][1]
    return best[end][0], chain[::-1]


def progress(status: Mapping[str, str]) -> tuple[int, int, int]:
    """(completed, total, percentage rounded down) — 100 only when everything is done."""
    total = len(status)
    done = sum(1 for s in status.values() if s == "completed")
    return done, total, (done * 100 // total) if total else 0
