"""Commands of the daily loop: predict, monitor, run (one tick) and schedule (a tick a day)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from driftloop.cli.common import (
    JsonOption,
    ProjectOption,
    emit_json,
    handled,
    metrics_table,
    out,
    progress_bar,
    show_verdict,
)
from driftloop.cli.images import monitor_image_window, predict_image_window
from driftloop.data.clock import day_span, local_day, today, zone
from driftloop.errors import ConfigError
from driftloop.ingest import BatchStatus
from driftloop.monitor import Stream
from driftloop.project import Project

if TYPE_CHECKING:
    from driftloop.loop import TickReport
    from driftloop.monitor.drift import DriftReport
    from driftloop.monitor.fleet import DeviceView

# The fleet view's window when none is given: the reports of the last day, up to now.
FLEET_HOURS = 24


@handled
def predict(
    day: Annotated[str | None, typer.Option("--date", help="Score this day (YYYY-MM-DD).")] = None,
    since: Annotated[str | None, typer.Option(help="Start of the window (ISO date or date-time).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the window, exclusive (ISO).")] = None,
    version: Annotated[str | None, typer.Option(help="Model version (default: the champion).")] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Score a window of the features table (an image project's: of its images) and write the predictions table
    (reruns replace)."""
    from driftloop.predict import predict_window

    project = Project.load(project_dir)
    start, end = window(day, since, until, project.contract.timezone)
    if project.settings.images is not None:
        predict_image_window(project, start, end, version, as_json)
        return
    total_days = (local_day(end, project.contract.timezone) - local_day(start, project.contract.timezone)).days + 1
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


@handled
def monitor(
    day: Annotated[str | None, typer.Option("--date", help="Monitor this day (YYYY-MM-DD).")] = None,
    since: Annotated[str | None, typer.Option(help="Start of the window (ISO date or date-time).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the window, exclusive (ISO).")] = None,
    version: Annotated[
        str | None, typer.Option(help="Model version (default: the one that scored the window).")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Folder of the HTML+PNG report (default: PROJECT/reports).")
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip the HTML and PNG report.")] = False,
    source: Annotated[
        Stream, typer.Option(help="Stream to monitor: batch (features, batch predictions) or online (served requests).")
    ] = Stream.BATCH,
    devices: Annotated[
        bool,
        typer.Option(
            "--devices",
            help="The fleet view: what devices reported in the window (default: the last "
            f"{FLEET_HOURS} hours), drift per device.",
        ),
    ] = False,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Drift of inputs and predictions, performance where labels exist, and a verdict for a window (in an image
    project: the window's images scored and watched three ways; with --devices: the devices' reports)."""
    from driftloop.monitor.window import monitor_window

    project = Project.load(project_dir)
    if devices and day is None and since is None and until is None:  # the fleet now: what came in lately
        end = datetime.now(UTC).replace(tzinfo=None)
        start = end - timedelta(hours=FLEET_HOURS)
    else:
        start, end = window(day, since, until, project.contract.timezone)
    if devices:
        show_fleet(project, start, end, as_json)
        return
    if project.settings.images is not None:
        if source is not Stream.BATCH:
            raise ConfigError("an image project's windows are monitored from its images table: --source batch")
        folder = None if no_report else report_dir or project.root / "reports"
        monitor_image_window(project, start, end, version, as_json, folder)
        return
    if not no_report:  # before the work: a missing plotting library is said at once, not after it
        from driftloop.monitor.report import write_report
    pages: tuple[Path, Path] | None = None
    with progress_bar(as_json) as progress:
        progress.add_task("profiling and testing the window", total=None)
        report = monitor_window(project, start, end, version=version, source=source)
        if not no_report:
            pages = write_report(project, report, report_dir or project.root / "reports")
    if as_json:
        emit_json(
            {
                "since": start,
                "until": end,
                "model_version": report.model_version,
                "rows": report.rows,
                "verdict": report.verdict.level,
                "reasons": report.verdict.reasons,
                "drifted_inputs": report.inputs.drifted,
                "drift_share": report.inputs.drift_share,
                "drifted_predictions": report.predictions.drifted if report.predictions else [],
                "performance": [p.to_dict() for p in report.performance],
                "estimates": [asdict(e) for e in report.estimates],
                "source": report.source,
                "shadow": [c.to_dict() for c in report.shadow],
                "report": [str(p) for p in pages] if pages else None,
            }
        )
        return
    verdict, watched = report.verdict, f"{report.rows:,} {report.source} rows"
    show_verdict(verdict.level, verdict.reasons, start, end, watched, report.model_version)
    table = Table("input", "test", "statistic", "threshold", "drifted", title="Input drift")
    for column in sorted(report.inputs.columns, key=lambda c: -c.result.statistic)[:15]:
        r = column.result
        table.add_row(
            column.column, r.test, f"{r.statistic:.4g}", f"{r.threshold:g}", "[red]yes[/]" if r.drifted else "no"
        )
    out.print(table)
    if report.performance:
        rows = [(f"{p.target} ({p.rows:,} rows)", p.metrics, [f"{p.worsening:+.0%} {p.metric} vs test"], "")
                for p in report.performance]  # fmt: skip
        out.print(metrics_table("Performance", "target", rows))
    if report.estimates:
        estimated = Table("target", "rows", "metric", "estimate", "95% interval", "expected", "vs expected",
                          title="Estimated performance (every row, no labels needed)")  # fmt: skip
        for e in report.estimates:
            expected = "-" if e.expected is None else f"{e.expected:.4g}"
            interval = f"{e.estimate.low:.4g} to {e.estimate.high:.4g}"
            estimated.add_row(e.target, f"{e.rows:,}", e.metric, f"{e.estimate.value:.4g}", interval, expected,
                              f"{e.worsening:+.0%}")  # fmt: skip
        out.print(estimated)
    if report.shadow:
        decisive = project.decisive_metrics
        shadow = Table("target", "challenger", "requests", "mean |diff|", "labelled", "metric", "champion",
                       "challenger", title="Shadow: the challenger on the same requests")  # fmt: skip
        for c in report.shadow:
            metric = decisive[c.target]
            shadow.add_row(c.target, c.challenger_version, f"{c.rows:,}", f"{c.mean_abs_difference:.4g}",
                           f"{c.labelled_rows:,}", metric, f"{c.champion.get(metric, float('nan')):.4g}",
                           f"{c.challenger.get(metric, float('nan')):.4g}")  # fmt: skip
        out.print(shadow)
    if pages:
        out.print(f"report: {pages[0]} (summary: {pages[1].name})")


@handled
def run(
    day: Annotated[
        str | None, typer.Option("--date", help="The tick's day (default: today in the contract's timezone).")
    ] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """One tick of the loop: ingest the inbox, features, score, monitor, retrain if the policy says so (in an image
    project: images and late labels from the inbox, then the same)."""
    project = Project.load(project_dir)
    tick = _tick_of(project)
    when = _parse_day(day) if day else today(project.contract.timezone)
    with progress_bar(as_json) as progress:
        task = progress.add_task("tick", total=None)
        report = tick(project, when, on_step=lambda step: progress.update(task, description=f"{when}: {step}"))
    report.wait_for_alerts(project.settings.loop.webhook_timeout_seconds * project.settings.loop.webhook_attempts)
    summary = {
        "day": str(report.day),
        "ingested": [s.to_dict() for s in report.ingested],
        "labels": [s.to_dict() for s in report.labels],
        "features_rows": report.features.rows if report.features else 0,
        "predicted_rows": report.predicted.rows if report.predicted else 0,
        "compacted": [c.__dict__ for c in report.compacted],
        "verdict": report.monitored.verdict.level if report.monitored else None,
        "reasons": report.monitored.verdict.reasons if report.monitored else [],
        "retrain": report.retrain.__dict__ if report.retrain else None,
        "trained_version": report.trained_version,
        "decisions": [d.to_dict() for d in report.decisions],
        "notes": report.notes,
    }
    if as_json:
        emit_json(summary)
        return
    new = sum(1 for s in report.ingested if s.status is BatchStatus.INGESTED)
    out.print(f"[bold]tick {report.day}[/]: {new} new file(s), {summary['features_rows']:,} new feature rows, "
              f"{summary['predicted_rows']:,} rows scored")  # fmt: skip
    for c in report.compacted:
        out.print(f"  compacted {c.table}: {c.files_removed} files into {c.files_added} (version {c.version})")
    if report.monitored:
        out.print(
            f"  verdict {report.monitored.verdict.level}"
            + "".join(f"\n  - {r}" for r in report.monitored.verdict.reasons)
        )
    if report.retrain:
        out.print(f"  retrain: {'yes' if report.retrain.retrain else 'no'} ({report.retrain.reason})")
    for decision in report.decisions:
        out.print(f"  version {decision.version}: {decision.kind} ({decision.reason})")
    for note in report.notes:
        out.print(f"  [yellow]{note}[/]")


@handled
def schedule(project_dir: ProjectOption = Path()) -> None:
    """Run a tick every day at [loop] schedule_at (in the contract's timezone) in the foreground; SIGTERM/SIGINT
    stop it cleanly."""
    project = Project.load(project_dir)
    tick = _tick_of(project)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    hour, minute = (int(part) for part in project.settings.loop.schedule_at.split(":"))
    zone_name = project.contract.timezone
    out.print(
        f"driftloop schedule: a tick every day at {hour:02d}:{minute:02d} {zone_name} for {project.root}; SIGTERM stops"
    )
    while not stop.is_set():
        due = next_run(datetime.now(UTC), hour, minute, zone_name)
        if stop.wait((due - datetime.now(UTC)).total_seconds()):
            break
        # The project file is reread for each tick.
        report = tick(Project.load(project_dir), due.astimezone(zone(zone_name)).date())
        verdict = report.monitored.verdict.level if report.monitored else "not monitored"
        out.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} tick {report.day}: {verdict}")
    out.print("driftloop schedule: stopped")


def _tick_of(project: Project) -> Callable[..., TickReport]:
    """The tick of the project's kind (imported here: a tick loads the model machinery)."""
    if project.settings.images is not None:
        from driftloop.loop.image_tick import image_tick

        return image_tick
    from driftloop.loop import tick

    return tick


def show_fleet(project: Project, start: datetime, end: datetime, as_json: bool) -> None:
    """The devices' reports of the window, merged per device and version, then for the fleet."""
    from driftloop.monitor.fleet import FLEET, fleet_view

    views = fleet_view(project, start, end)
    if as_json:
        emit_json({"since": start, "until": end, "devices": [v.to_dict() for v in views]})
        return
    title = f"devices of {project.model_name}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if out.width >= FLEET_TABLE_WIDTH:
        out.print(fleet_table(title, views))
        return
    out.print(f"[bold]{title}[/]")  # a narrow terminal: a few lines per device and version, not a squeezed table
    for view in views:
        seen = f"last seen {view.last_seen.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        serving = f", serving {_serving(view)}" if view.device != FLEET else ""
        out.print(f"[bold]{view.device}[/] version {view.version}: {view.rows:,} rows in {view.reports} report(s), "
                  f"{view.labelled:,} labelled; {seen}{serving}", highlight=False)  # fmt: skip
        out.print(f"  input drift: {drift_cell(view.inputs)}\n  prediction drift: {drift_cell(view.predictions)}")
        if view.metrics:
            out.print(f"  metrics: {_metrics(view)}", highlight=False)


# Columns a terminal needs for the fleet view as a table; a narrower one gets it as lines.
FLEET_TABLE_WIDTH = 150


def fleet_table(title: str, views: list[DeviceView]) -> Table:
    """The fleet view as a table, a row per device and version."""
    from driftloop.monitor.fleet import FLEET

    table = Table("device", "version", "reports", "rows", "last seen (UTC)", "serving", "input drift",
                  "prediction drift", "labelled", "metrics", title=title)  # fmt: skip
    for view in views:
        fleet = view.device == FLEET
        table.add_row(view.device, view.version, str(view.reports), str(view.rows),
                      f"{view.last_seen.astimezone(UTC):%Y-%m-%d %H:%M}", "" if fleet else _serving(view),
                      drift_cell(view.inputs), drift_cell(view.predictions), str(view.labelled), _metrics(view),
                      style="bold" if fleet else None)  # fmt: skip
    return table


def _serving(view: DeviceView) -> str:
    """The version a device said it serves in its newest report, and whether it was ready."""
    serving = view.status.get("serving")
    return ("-" if serving is None else str(serving)) + ("" if view.status.get("ready") in (None, True) else
                                                         " (not ready)")  # fmt: skip


def _metrics(view: DeviceView) -> str:
    return "; ".join(f"{t}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()) for t, m in view.metrics.items())


def drift_cell(drift: DriftReport | None) -> str:
    """A drift report in a cell: the share of columns drifted and which."""
    if drift is None:
        return "no rows"
    mark = "[red]drift[/] " if drift.dataset_drift else ""
    named = f": {', '.join(drift.drifted[:4])}" if drift.drifted else ""
    return f"{mark}{drift.drift_share:.0%}{named}"


def window(day: str | None, since: str | None, until: str | None, zone_name: str) -> tuple[datetime, datetime]:
    """The [start, end) window of ``--date`` (a day of the zone) or ``--since``/``--until``, as
    naive UTC instants."""
    if day is not None:
        if since or until:
            raise ConfigError("give either --date or --since/--until, not both")
        return day_span(_parse_day(day), zone_name)
    if since is None or until is None:
        raise ConfigError("say which window: --date YYYY-MM-DD, or both --since and --until")
    return _parse(since, "--since", zone_name), _parse(until, "--until", zone_name)


def next_run(now: datetime, hour: int, minute: int, zone_name: str) -> datetime:
    """The next ``hour:minute`` of the zone after ``now`` (aware), as an aware UTC time."""
    local = now.astimezone(zone(zone_name))
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due <= local:
        due += timedelta(days=1)  # wall-clock arithmetic: the same hour:minute the next day
    return due.astimezone(UTC)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--date {text!r} is not an ISO date such as 2016-03-01") from exc


def _parse(text: str, option: str, zone_name: str) -> datetime:
    """An ISO date or date-time as a naive UTC instant: one with an offset says its own, a naive
    one is a wall-clock time of the zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not an ISO date or date-time, e.g. 2016-03-01, 2016-03-01T06:00 or 2016-03-01T06:00Z"
        ) from exc
    local = value if value.tzinfo else value.replace(tzinfo=zone(zone_name))
    return local.astimezone(UTC).replace(tzinfo=None)
