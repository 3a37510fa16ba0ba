"""``land`` and ``gc``: the milestone's work into its branch, whole; then what is merged, cleaned up."""

from __future__ import annotations

import shlex
from typing import Any

import click

from milestoned.cli.base import cli, complete_milestones, json_option, open_engine, print_json, say


@cli.command()
@click.argument("milestone", required=False, shell_complete=complete_milestones)
@click.option("--into", default=None, help="The branch to land in (default: the one it was activated from).")
@click.option("--no-test", "no_test", is_flag=True, help="Do not run tests.command on the merge result first.")
@json_option
@click.pass_context
def land(ctx: click.Context, milestone: str | None, into: str | None, no_test: bool, as_json: bool) -> None:
    """Bring the milestone branch into its target branch, whole or not at all.

    The merge is made off to the side and tests.command of config.yaml runs on it; then
    the target moves by compare-and-swap, and a worktree that shows it (clean, or land
    refuses) is brought along.  A conflict or a failing test changes nothing and exits 1.
    """
    # start-up: loaded only when this command runs
    from milestoned.engine import cleanup, landing

    engine = open_engine()
    mid = engine.resolve(milestone)
    answer = landing.land(engine, mid, into=into, test=not no_test)
    if answer["landed"]:
        answer["gc"] = cleanup.gc(engine, dry_run=True, only=mid)["milestones"]
    if as_json:
        print_json(answer)
    else:
        for line in _summary(answer, no_test):
            say(line)
    failed = answer["conflicts"] or (answer["tests"] and answer["tests"]["outcome"] != "passed")
    ctx.exit(1 if failed else 0)


def _summary(answer: dict[str, Any], no_test: bool) -> list[str]:
    mid, target = answer["milestone"], answer["target"]
    tests = answer["tests"]
    if answer["conflicts"]:
        return [f"not landed: milestone/{mid}/_milestone conflicts with {target} in "
                f"{', '.join(answer['conflicts'])}; nothing was changed",
                f"to resolve: {answer['resolve']}"]
    if tests and tests["outcome"] != "passed":
        return [f"not landed: `{shlex.join(tests['command'])}` {tests['outcome']} on the merge result "
                f"(log: {tests['log']}); nothing was changed"]
    if not answer["landed"]:
        already = answer.get("already")
        where = f"in {already['target']} since {already['at']}" if already else f"in {target} already"
        return [f"nothing to land: {mid}'s work is {where}"]
    moved = (f"{answer['new'][:12]} (was {answer['old'][:12]})" if answer["old"] != answer["new"]
             else answer["new"][:12])
    how = {"fast-forward": "fast-forward", "merge": "merge commit", "up-to-date": "already there, now recorded"}
    lines = [f"landed {mid} into {target}: {how[answer['kind']]} {moved}, "
             f"{answer['tasks_completed']}/{answer['tasks_total']} tasks"
             + (f" ({answer['finished']})" if answer.get("finished") else "")]
    if answer["milestone_status"] != "completed":
        lines.append(f"note: {mid} is {answer['milestone_status']}: only its completed tasks' work landed; "
                     f"land again once the rest is done")
    if tests:
        lines.append(f"tests: `{shlex.join(tests['command'])}` passed on it (log: {tests['log']})")
    elif answer["kind"] != "up-to-date":
        lines.append("tests: not run (--no-test)" if no_test else "tests: none configured (tests.command)")
    going = [row for group in answer.get("gc", []) for row in group["items"] if row["action"] == "would remove"]
    lines.append(f"`milestoned gc` would now remove {_count(going)}" if going else "nothing left for gc")
    return lines


def _count(rows: list[dict[str, Any]]) -> str:
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    return ", ".join(f"{n} {kind}{'' if n == 1 else 'es' if kind.endswith('h') else 's'}" for kind, n in kinds.items())


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would go, remove nothing.")
@json_option
def gc(dry_run: bool, as_json: bool) -> None:
    """Remove task worktrees and branches whose work is merged, and what killed runs left.

    A branch goes only when every commit on it is reachable from the milestone branch, the
    branch it landed in, or a checkpoint; a worktree only when it holds no change.
    Everything else stays, with the reason.
    """
    # start-up: loaded only when this command runs
    from milestoned.engine import cleanup

    answer = cleanup.gc(open_engine(), dry_run=dry_run)
    if as_json:
        print_json(answer)
        return
    rows = [(group["milestone"], row) for group in answer["milestones"] for row in group["items"]]
    if not rows:
        say("nothing to clean up")
    for mid, row in rows:
        why = f": {row['why']}" if row["why"] else ""
        what = "all of it" if row["kind"] == "milestone" else f"{row['kind']} {row['name']}"
        tree = f" (worktree {row['worktree']})" if row.get("worktree") else ""
        say(f"{row['action']:<12} {mid}: {what}{tree}{why}")
