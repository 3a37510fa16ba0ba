"""``execute`` and ``demo``: running a milestone's tasks (the runner does the work)."""

from __future__ import annotations

import click

from milestoned.cli.base import cli, milestone_argument, open_engine

WORKERS_HELP = ("Tasks run at once (default: with --resume, as many as the run it resumes; else execute.workers "
                "in .milestones/config.yaml).")


@cli.command()
@milestone_argument
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None, help=WORKERS_HELP)
@click.option("--resume", is_flag=True,
              help="Continue a run that was interrupted (even by kill -9) or stopped on blocked tasks.")
@click.option("--force", is_flag=True, help="Execute even if its status or required milestones say no (logged).")
@click.pass_context
def execute(ctx: click.Context, milestone: str | None, workers: int | None, resume: bool, force: bool) -> None:
    """Run a milestone's tasks in parallel, each in its own git worktree.

    Every task whose dependencies are completed runs at once, up to --workers: its
    `run:` command, or the configured agent command with its `prompt:`.  Each works on
    branch milestone/<id>/<task>; its work is merged into milestone/<id>/_milestone,
    never into your branch or your checkout.  A failing command or a merge conflict
    blocks that task only.  Ctrl-C stops cleanly; `--resume` continues without running
    completed tasks again.  Exits 0 when nothing is blocked, 1 otherwise, 130 on Ctrl-C.
    """
    # start-up: loaded only when this command runs
    import sys

    from milestoned.runner.scheduler import execute_with_display

    engine = open_engine()
    outcome = execute_with_display(engine, engine.resolve(milestone), workers=workers, resume=resume,
                                   force=force, tty=sys.stdout.isatty(), echo=click.echo)
    ctx.exit(outcome.exit_code)


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to make the demo repository (new or empty; default: a fresh temporary directory).")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Tasks run at once.")
@click.pass_context
def demo(ctx: click.Context, directory: str | None, workers: int) -> None:
    """Show milestoned at work: a scratch repository, a sample milestone, a parallel run.

    Needs nothing but git and Python: no git identity, no configuration.  Prints where
    everything is and which commands to try next.
    """
    # start-up: loaded only when this command runs
    import sys

    from milestoned.cli.demo import run_demo

    ctx.exit(run_demo(directory, workers=workers, tty=sys.stdout.isatty(), echo=click.echo))
