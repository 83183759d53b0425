"""``driftloop rollout``: a candidate version in front of a growing share of live traffic.

``canary`` starts one, ``ab`` starts an A/B test, ``status`` shows where the newest stands and
its history, ``abort`` ends it by hand, ``promote`` skips a canary's remaining steps to the
promotion gates. The servers (``driftloop
serve``) route by the state these write to the lake, step the canary up as its arm earns it,
and roll it back by themselves when a guard breaks (``[rollout]``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from driftloop.cli.common import JsonOption, ProjectOption, emit_json, handled, out
from driftloop.project import Project
from driftloop.rollout.state import Rollout

app = typer.Typer(help="Roll a version out by canary: a growing share of traffic, rolled back by its guards.",
                  no_args_is_help=True)  # fmt: skip


@app.command("canary")
@handled
def canary(
    version: Annotated[
        str | None, typer.Argument(help="The version to roll out (default: the challenger in qa).")
    ] = None,
    percent: Annotated[
        float | None,
        typer.Option(help="The share of traffic (percent) it takes first (default: the first of [rollout] steps)."),
    ] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Start a canary: VERSION answers a sticky share of requests (by entity id, else by request) beside the
    champion, then the later steps of [rollout] as its arm earns them; past the last, the promotion gates. A dev
    version goes through the qa gates first."""
    from driftloop.rollout.canary import start_canary

    _started(start_canary(Project.load(project_dir), version, percent), as_json)


@app.command("ab")
@handled
def ab(
    version: Annotated[
        str | None, typer.Argument(help="The version to test against the champion (default: the challenger).")
    ] = None,
    percent: Annotated[float, typer.Option(help="Its share of traffic (percent); the champion has the rest.")] = 50.0,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Start an A/B test: VERSION and the champion answer fixed, sticky shares of requests until an always-valid
    sequential test (mSPRT) on the decisive metric of their labelled rows tells them apart with 1 - [rollout]
    metric_alpha confidence, however often it is looked at; the verdict is an event and an alert."""
    from driftloop.rollout.canary import start_ab

    _started(start_ab(Project.load(project_dir), version, percent), as_json)


@app.command("status")
@handled
def status(project_dir: ProjectOption = Path(), as_json: JsonOption = False) -> None:
    """Where the newest rollout stands, and every change it went through."""
    from driftloop.rollout.state import current, history

    project = Project.load(project_dir)
    rollout = current(project.lake, project.model_name)
    if rollout is None:
        if as_json:
            emit_json(None)
        else:
            out.print(f"No rollout of {project.model_name!r} yet: `driftloop rollout canary VERSION`.")
        return
    changes = history(project.lake, project.model_name).filter(rollout_id=rollout.rollout_id)
    if as_json:
        emit_json({**_as_dict(rollout), "history": changes.drop("details").to_dicts()})
        return
    colour = {"running": "yellow", "promoted": "green", "decided": "green"}.get(rollout.status, "red")
    out.print(f"{rollout.kind} of version {rollout.candidate} beside champion {rollout.champion}: "
              f"[{colour}]{rollout.status}[/]"
              + (f", {rollout.percent:g}% of traffic" if rollout.running else ""))  # fmt: skip
    table = Table("at (UTC)", "status", "share", "reason", title=f"rollout {rollout.rollout_id}")
    for change in changes.iter_rows(named=True):
        share = f"{change['steps'][change['step']]:g}%" if change["status"] == "running" else ""
        table.add_row(f"{change['at']:%Y-%m-%d %H:%M:%S}", change["status"], share, change["reason"])
    out.print(table)


@app.command("abort")
@handled
def abort(
    reason: Annotated[str, typer.Option(help="Why, for the timeline and the alert.")] = "aborted by hand",
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """End the running canary: every request goes to the champion again (the servers within their next check)."""
    from driftloop.rollout.canary import abort as abort_rollout

    rollout = abort_rollout(Project.load(project_dir), reason)
    if as_json:
        emit_json(_as_dict(rollout))
    else:
        out.print(f"[red]aborted[/] the canary of version {rollout.candidate}: {reason}")


@app.command("promote")
@handled
def promote(project_dir: ProjectOption = Path(), as_json: JsonOption = False) -> None:
    """Skip the running canary's remaining steps: judge its version by the promotion gates now."""
    from driftloop.rollout.canary import finish, running_rollout

    project = Project.load(project_dir)
    rollout = finish(project, running_rollout(project))
    if as_json:
        emit_json(_as_dict(rollout))
    else:
        out.print(f"version {rollout.candidate}: {rollout.status} ({rollout.reason})")


def _started(rollout: Rollout, as_json: bool) -> None:
    if as_json:
        emit_json(_as_dict(rollout))
        return
    out.print(f"[green]{rollout.kind}[/] {rollout.reason}")
    out.print("The servers take it within their next check ([rollout] guard_seconds); `driftloop rollout status`.")


def _as_dict(rollout: Rollout) -> dict[str, object]:
    return {**asdict(rollout), "percent": rollout.percent}
