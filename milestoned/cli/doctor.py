"""``milestoned doctor``: hooks, daemon, config, milestones, refs — and what to fix."""

from __future__ import annotations

import click

from milestoned.cli.base import cli, json_option, open_engine, print_json, say


@cli.command()
@json_option
@click.option("--offline", is_flag=True, help="Do not ask the remote which refs are not synced.")
def doctor(as_json: bool, offline: bool) -> None:
    """Check the setup and say what to fix.  Exits 1 when something is broken."""
    # start-up: loaded only when this command runs
    from milestoned.cli import checks

    rows = checks.diagnose(open_engine(), offline=offline)
    if as_json:
        print_json(checks.as_json(rows))
    else:
        for row in rows:
            say(f"{row.status:<4}  {row.area}: {row.detail}" + (f"\n      fix: {row.fix}" if row.fix else ""))
    if any(row.status == "fail" for row in rows):
        raise click.exceptions.Exit(1)
