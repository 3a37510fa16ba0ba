"""Changes to the plan itself (``task add``), made in the user's file without reformatting it.

A plan edit is the one thing milestoned writes into the working tree, and only because the
user asked for it: the task's id, title, dependencies and command; never a status.
"""

from __future__ import annotations

import shlex

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from milestoned.core.errors import UserError
from milestoned.core.ids import id_problem
from milestoned.engine.engine import Transaction
from milestoned.files import yamlroundtrip
from milestoned.model.milestone import Milestone


def add_task(txn: Transaction, milestone: Milestone, task_id: str, *, title: str, depends_on: list[str],
             run: str | None = None, shell: bool = False, prompt: str | None = None) -> None:
    problem = id_problem(task_id, "task id")
    if problem:
        raise UserError(problem)
    if milestone.plan.has_task(task_id):
        raise UserError(f"milestone {milestone.id} already has a task {task_id}",
                        path=milestone.path, line=milestone.plan.line_of("tasks", milestone.plan.task(task_id).index),
                        hint="give the new task another id")
    if run is not None and prompt is not None:
        raise UserError("a task has either --run or --prompt, not both")
    for dep in depends_on:  # said of the command, not of a line of a file that does not exist yet
        problem = id_problem(dep, "dependency")
        if problem:
            raise UserError(f"--depends-on {dep!r}: {problem}", hint="repeat --depends-on for each task: "
                            "--depends-on T1 --depends-on T2")
        if not milestone.plan.has_task(dep):
            known = ", ".join(t.id for t in milestone.plan.tasks[:10]) or "none yet"
            raise UserError(f"--depends-on {dep}: milestone {milestone.id} has no task {dep} (tasks: {known})",
                            hint="add that task first, or drop --depends-on")
    doc = yamlroundtrip.rt_load(milestone.plan.text)
    tasks = doc.get("tasks")
    if not isinstance(tasks, list):
        tasks = CommentedSeq()
        doc["tasks"] = tasks
    if not tasks:
        tasks.fa.set_block_style()  # `tasks: []` grows into a block list, as a person writes it
    entry = CommentedMap()
    entry["id"] = task_id
    entry["title"] = title
    deps = CommentedSeq(depends_on)
    deps.fa.set_flow_style()
    entry["dependencies"] = deps
    if run is not None:
        try:
            argv = [run] if shell else shlex.split(run)
        except ValueError as exc:
            raise UserError(f"cannot split --run: {exc}", hint="check the quotes") from None
        command = CommentedSeq(argv)
        command.fa.set_flow_style()
        entry["run"] = run if shell else command
        if shell:
            entry["shell"] = True
    if prompt is not None:
        entry["prompt"] = prompt
    tasks.append(entry)
    txn.replace_plan(milestone, yamlroundtrip.rt_dump(doc, milestone.plan.text))
    txn.record(milestone, "task_added", task_id=task_id)
    txn.catch_up(milestone)  # a completed milestone is in progress again, the new task ready
