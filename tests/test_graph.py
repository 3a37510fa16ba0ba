"""Property tests of the pure dependency-graph functions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from milestoned.core import graph

STATUSES = ("pending", "in_progress", "completed", "blocked")


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random acyclic graphs: a task may only depend on tasks listed before it."""
    size = draw(st.integers(min_value=0, max_value=25))
    names = [f"T{i}" for i in range(size)]
    return {
        name: sorted(set(draw(st.lists(st.sampled_from(names[:i]), max_size=4)))) if i else []
        for i, name in enumerate(names)
    }


@st.composite
def dag_with_status(draw: st.DrawFn) -> tuple[dict[str, list[str]], dict[str, str]]:
    deps = draw(dags())
    return deps, {t: draw(st.sampled_from(STATUSES)) for t in deps}


@given(dags())
def test_acyclic_graphs_have_no_cycle_and_a_valid_order(deps: dict[str, list[str]]) -> None:
    assert graph.find_cycle(deps) is None
    order = graph.topological_order(deps)
    assert sorted(order) == sorted(deps)
    position = {task: i for i, task in enumerate(order)}
    assert all(position[d] < position[t] for t, ds in deps.items() for d in ds)


@given(dags(), st.data())
def test_an_added_back_edge_makes_a_cycle_that_is_named_in_full(deps: dict[str, list[str]], data: st.DataObject) -> None:
    chains = [(t, d) for t, ds in deps.items() for d in ds]
    if not chains:
        return
    task, dep = data.draw(st.sampled_from(chains))
    cyclic = {t: list(ds) for t, ds in deps.items()}
    cyclic[dep] = [*cyclic[dep], task]
    cycle = graph.find_cycle(cyclic)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert all(b in cyclic[a] for a, b in zip(cycle, cycle[1:]))


@given(dag_with_status())
def test_ready_means_pending_with_every_dependency_completed(case: tuple[dict, dict]) -> None:
    deps, status = case
    ready = set(graph.ready(deps, status))
    for task in deps:
        expected = status[task] == "pending" and all(status[d] == "completed" for d in deps[task])
        assert (task in ready) == expected


@given(dag_with_status())
def test_tasks_waiting_on_a_blocked_task_depend_on_one_transitively(case: tuple[dict, dict]) -> None:
    """Waiting = a chain of unfinished tasks leads to a blocked one (a completed task frees the rest)."""
    deps, status = case
    stuck = graph.waiting_on_blocked(deps, status)

    def reaches_blocked(task: str, seen: set[str]) -> bool:
        return any(
            status[d] == "blocked" or (status[d] != "completed" and d not in seen and reaches_blocked(d, seen | {d}))
            for d in deps[task]
        )

    for task in deps:
        assert (task in stuck) == (status[task] != "completed" and reaches_blocked(task, {task}))


@given(dags(), st.data())
def test_critical_path_is_a_chain_whose_weight_bounds_every_chain(deps: dict, data: st.DataObject) -> None:
    weight = {t: data.draw(st.floats(min_value=0.1, max_value=10)) for t in deps}
    length, chain = graph.critical_path(deps, weight)
    if not deps:
        assert (length, chain) == (0.0, [])
        return
    assert all(a in deps[b] for a, b in zip(chain, chain[1:]))
    assert abs(sum(weight[t] for t in chain) - length) < 1e-6
    longest: dict[str, float] = {}
    for task in graph.topological_order(deps):
        longest[task] = weight[task] + max((longest[d] for d in deps[task]), default=0.0)
    assert abs(max(longest.values()) - length) < 1e-6


@given(st.lists(st.sampled_from(STATUSES), max_size=40))
def test_progress_reaches_100_only_when_everything_is_completed(statuses: list[str]) -> None:
    done, total, percentage = graph.progress({f"T{i}": s for i, s in enumerate(statuses)})
    assert total == len(statuses) and done == statuses.count("completed")
    assert (percentage == 100) == (total > 0 and done == total)
    assert 0 <= percentage <= 100
