"""``driftloop rollout``: candidate versions in front of live traffic beside the champion.

``canary`` starts a canary (one version, a growing share), ``ab`` an A/B test (one or more
versions on fixed shares), ``status`` shows where the newest stands and
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

app = typer.Typer(help="Roll versions out by canary or A/B test beside the champion, rolled back by their guards.",
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
    versions: Annotated[
        list[str] | None,
        typer.Argument(help="The versions to test against the champion, one or more (default: the challenger)."),
    ] = None,
    percent: Annotated[
        float | None,
        typer.Option(
            help="Each version's share of traffic (percent; default: equal shares for all, the champion "
            "included); the champion has the rest."
        ),
    ] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Start an A/B test: the VERSIONS and the champion answer fixed, sticky shares of requests until an
    always-valid sequential test (mSPRT) on the decisive metric of their labelled rows finds one better than every
    other with 1 - [rollout] metric_alpha confidence, however often it is looked at (with more than two versions,
    every pair is tested at alpha over the number of pairs); the verdict is an event and an alert."""
    from driftloop.rollout.canary import start_ab

    _started(start_ab(Project.load(project_dir), versions or (), percent), as_json)


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
    out.print(f"{rollout.kind} of {rollout.named} beside champion {rollout.champion}: "
              f"[{colour}]{rollout.status}[/]"
              + (f", {rollout.traffic}" if rollout.running else ""))  # fmt: skip
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
    """End the running rollout: every request goes to the champion again (the servers within their next check)."""
    from driftloop.rollout.canary import abort as abort_rollout

    rollout = abort_rollout(Project.load(project_dir), reason)
    if as_json:
        emit_json(_as_dict(rollout))
    else:
        out.print(f"[red]aborted[/] the {rollout.kind} of {rollout.named}: {reason}")


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
    out.print("The servers take it within their next check (\\[rollout] guard_seconds); `driftloop rollout status`.")


def _as_dict(rollout: Rollout) -> dict[str, object]:
    return {**asdict(rollout), "percent": rollout.percent}
