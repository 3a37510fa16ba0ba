"""``milestoned blockers``: what blocks a milestone, and with ``--recheck`` a fresh look."""

from __future__ import annotations

import click

from milestoned.cli.base import cli, json_option, milestone_argument, open_engine, print_json, say, warn


@cli.command("blockers")
@milestone_argument
@json_option
@click.option("--recheck", is_flag=True, help="Look again now: clear what is resolved, escalate what is new.")
def blockers_command(milestone: str | None, as_json: bool, recheck: bool) -> None:
    """What blocks a milestone (default: the current one, else every active milestone)."""
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine import blockers
    from milestoned.model.plan import NotAMilestone
    from milestoned.model.statuses import describe

    engine = open_engine()
    if milestone is None and engine.current_id() is None:
        mids = [p.stem for p in engine.milestone_paths() if p.parent.name != "completed"]
    else:
        mids = [engine.resolve(milestone)]
    chosen = []
    for mid in mids:
        try:
            if recheck:
                run, outcome = blockers.look_again(engine, mid)
                if run is not None:
                    say(f"test command {run.outcome} on {run.commit[:12]}", err=as_json)  # --json keeps stdout
                for cleared in outcome.cleared:
                    say(f"{mid}: cleared {cleared.get('type')}: {cleared.get('detail')}", err=as_json)
                if outcome.message:
                    say(outcome.message, err=as_json)
            chosen.append(blockers.quick_look(engine, engine.load(mid)))
        except NotAMilestone:
            continue
        except UserError as exc:
            if len(mids) == 1:
                raise
            warn(str(exc))
    view = blockers.view(chosen)
    if as_json:
        print_json(view)
        return
    for row in view["milestones"]:
        if not row["blockers"] and not row["blocked_tasks"]:
            say(f"{row['milestone_id']} ({row['status']}): no blockers")
            continue
        say(f"{row['milestone_id']} ({row['status']})")
        for blocker, step in zip(row["blockers"], row["next"]):
            since = f"  (since {blocker['since']})" if blocker.get("since") else ""
            say(f"  {describe(blocker)}{since}")
            say(f"    then: {step}")
        for task in row["blocked_tasks"]:
            say(f"  task {task['id']} blocked: {task.get('reason', '')}")
            say(f"    then: {task['then']}")
