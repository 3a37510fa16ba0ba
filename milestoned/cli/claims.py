"""Agents' commands: ``next`` (and ``next --claim``), ``heartbeat``, ``release``, ``done``.

Each prints one JSON object with ``--json`` for agents, a line for people.  A task
an agent holds carries a lease; without a heartbeat it goes back to the ready set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from milestoned.cli import answers
from milestoned.cli.base import (
    cli,
    json_option,
    milestone_argument,
    milestone_option,
    open_engine,
    task_argument,
)

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine

agent_option = click.option("--agent", required=True, help="The agent's name, as given to `next --claim`.")
lease_option = click.option("--lease", default=None,
                            help="How long the claim holds without a heartbeat (default: claims.lease, 30m).")


@cli.command("next")
@milestone_argument
@json_option
@click.option("--claim", is_flag=True, help="Take one ready task for --agent, atomically.")
@click.option("--agent", default=None, help="Who takes the task (with --claim).")
@lease_option
@click.option("--remote", default=None, help="Claim through this git remote, so that no other clone takes the task.")
def next_(milestone: str | None, as_json: bool, claim: bool, agent: str | None, lease: str | None,
          remote: str | None) -> None:
    """Tasks ready to start now: pending, every dependency completed.

    With --claim, give one of them to --agent (or the task it already holds): two
    agents never get the same task, on one machine or, with --remote, across clones.
    """
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.model import views

    engine = open_engine()
    mid = engine.resolve(milestone)
    if claim:
        _claim(engine, mid, agent, lease, remote, as_json)
        return
    if agent or lease or remote:
        raise UserError("--agent, --lease and --remote go with --claim", hint="add --claim to take a task")
    # start-up: loaded only when this command runs
    from milestoned.engine import claims

    answers.ready(views.ready_view(claims.load(engine, mid)), as_json)


def _claim(engine: Engine, mid: str, agent: str | None, lease: str | None, remote: str | None, as_json: bool) -> None:
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine import claims
    from milestoned.git import remotes

    if not agent:
        raise UserError("--claim needs --agent NAME", hint="say who takes the task, e.g. --agent claude-1")
    answer = claims.claim_next(engine, mid, agent, lease=claims.lease_seconds(engine, lease),
                               remote=remotes.check_remote(engine.ws, remote) if remote else None)
    answers.claimed(answer, as_json)


@cli.command()
@task_argument(required=False)
@milestone_option
@agent_option
@lease_option
@json_option
def heartbeat(task_id: str | None, milestone: str | None, agent: str, lease: str | None, as_json: bool) -> None:
    """Renew the lease on the task(s) AGENT holds (default: all of them)."""
    # start-up: loaded only when this command runs
    from milestoned.core.errors import RuntimeFailure
    from milestoned.engine import claims

    engine = open_engine()
    answer = claims.heartbeat(engine, engine.resolve(milestone), agent, task_id,
                              lease=claims.lease_seconds(engine, lease))
    lost = answers.renewed(answer, as_json)
    if lost is not None:
        raise RuntimeFailure(lost[0], hint=lost[1])


@cli.command()
@task_argument(required=False)
@milestone_option
@agent_option
@json_option
def release(task_id: str | None, milestone: str | None, agent: str, as_json: bool) -> None:
    """Give the task(s) AGENT holds back to the ready set."""
    # start-up: loaded only when this command runs
    from milestoned.engine import claims

    engine = open_engine()
    answer = claims.release(engine, engine.resolve(milestone), agent, task_id)
    answers.released(answer, as_json)


@cli.command()
@task_argument(required=False)
@milestone_option
@agent_option
@json_option
def done(task_id: str | None, milestone: str | None, agent: str, as_json: bool) -> None:
    """Mark the task AGENT holds completed (the milestone completes with its last task)."""
    # start-up: loaded only when this command runs
    from milestoned.engine import claims

    engine = open_engine()
    answers.completed(claims.done(engine, engine.resolve(milestone), agent, task_id), as_json)
