"""Commands of the daily loop: predict."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import JsonOption, ProjectOption, emit_json, handled, out, progress_bar
from driftloop.config import Project
from driftloop.errors import ConfigError


@handled
def predict(
    day: Annotated[str | None, typer.Option("--date", help="Score this day (YYYY-MM-DD).")] = None,
    since: Annotated[str | None, typer.Option(help="Start of the window (ISO date or date-time).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the window, exclusive (ISO).")] = None,
    version: Annotated[str | None, typer.Option(help="Model version (default: the champion).")] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Score a window of the features table and write the predictions table (reruns replace)."""
    from driftloop.predict import predict_window

    start, end = window(day, since, until)
    project = Project.load(project_dir)
    total_days = (end.date() - start.date()).days + 1
    with progress_bar(as_json, bar=True) as progress:
        task = progress.add_task("scoring", total=total_days)

        def on_chunk(days: list[date], rows: int) -> None:
            progress.update(task, advance=len(days), description=f"up to {days[-1]}: {rows:,} rows")

        run = predict_window(project, start, end, version=version, on_chunk=on_chunk)
    if as_json:
        emit_json(run.__dict__)
        return
    out.print(
        f"[green]scored[/] {run.rows:,} rows over {len(run.days)} day(s) with version {run.model_version} "
        f"(job {run.job_id}); predictions table version {run.table_version}"
    )


def window(day: str | None, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The [start, end) window of ``--date`` or ``--since``/``--until``."""
    if day is not None:
        if since or until:
            raise ConfigError("give either --date or --since/--until, not both")
        start = _parse(day, "--date")
        return start, start + timedelta(days=1)
    if since is None or until is None:
        raise ConfigError("say which rows to score: --date YYYY-MM-DD, or both --since and --until")
    return _parse(since, "--since"), _parse(until, "--until")


def _parse(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not an ISO date or date-time, e.g. 2016-03-01 or 2016-03-01T06:00"
        ) from exc
    return value.replace(tzinfo=None)
