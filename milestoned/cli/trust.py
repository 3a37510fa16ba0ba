"""``milestoned trust``: approve the commands of ``config.yaml`` that run by themselves."""

from __future__ import annotations

import click

from milestoned.cli.base import cli, json_option, open_engine, print_json, say


@cli.command()
@click.option("--list", "only_list", is_flag=True, help="Show the commands and whether they are approved; change nothing.")
@json_option
def trust(only_list: bool, as_json: bool) -> None:
    """Approve exactly the command .milestones/config.yaml names now that runs by itself (tests.command).

    The daemon runs the test command by itself only once it is approved on this clone,
    so that a command arriving with a pull never runs unseen; a changed command waits
    for approval again.  `execute` and `blockers --recheck` run what you started.
    """
    # start-up: loaded only when this command runs
    from milestoned.engine import trust as trusting
    from milestoned.model.config import load_config

    engine = open_engine()
    config = load_config(engine.ws.config_path)
    approved = [] if only_list else trusting.approve(engine, config)
    rows = trusting.commands(engine.ws, config)
    if as_json:
        print_json({"schema": 1, "config": str(engine.ws.config_path), "approved_now": [c.setting for c in approved],
                    "commands": [{"setting": c.setting, "command": list(c.argv), "approved": c.approved} for c in rows]})
        return
    if not rows:
        say("config.yaml names no command: nothing to approve")
    now = {c.setting for c in approved}
    for command in rows:
        state = ("approved now" if command.setting in now else "approved" if command.approved
                 else "awaits approval (run `milestoned trust`)")
        say(f"{command.setting}: {command.shown}: {state}")
