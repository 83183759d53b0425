"""Commands that replay history through the loop: replay (any data) and demo (the bundled data)."""

from __future__ import annotations

import logging
import statistics
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from driftloop.cli.common import JsonOption, ProjectOption, emit_json, err, handled, out, progress_bar
from driftloop.errors import ConfigError
from driftloop.project import Project

# Four weeks of spring: enough for the loop to retrain, promote and reject, in under 3 minutes.
DEMO_DAYS = 28

if TYPE_CHECKING:
    from driftloop.replay import DayRecord, PolicyFront, ReplayResult, StrategyResult
    from driftloop.replay.run import LoopRun


@handled
def replay(
    data: Annotated[Path, typer.Argument(help="The history: a CSV/Parquet/NDJSON file or a folder of them.")],
    start: Annotated[
        str | None, typer.Option(help="First replayed day (default: after the first quarter of the days).")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Days to replay from --start (default: all).", min=1)] = None,
    label_delay: Annotated[str, typer.Option(help="How long after a row its label arrives: 1d, 12h, 0.")] = "1d",
    no_daily: Annotated[
        bool, typer.Option("--no-daily", help="Skip the retrain-every-day baseline (the slow one).")
    ] = False,
    policies: Annotated[
        Path | None,
        typer.Option(
            help="A TOML file of [[policy]] tables (name, [loop] settings, margin): replay each, show the front."
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(help="Trainings a recommended policy may use (default: a fifth of the days + 1).", min=1),
    ] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Feed a history through the loop day by day and compare it with a static model and daily retraining."""
    first = _day(start) if start else None
    project = Project.load(project_dir)
    if policies is not None:
        front = run_policies(
            project, data, policies, first, days, label_delay, budget, daily=not no_daily, quiet=as_json
        )
        if as_json:
            emit_json(front.to_dict())
        else:
            show_front(front)
        return
    result = run_replay(project, data, first, days, label_delay, daily=not no_daily, quiet=as_json)
    if as_json:
        emit_json({k: v for k, v in result.to_dict().items() if k != "loop_days"})
        return
    show_replay(result)


@handled
def demo(
    folder: Annotated[Path | None, typer.Argument(help="Folder of the demo project.", show_default=False)] = None,
    days: Annotated[
        int | None,
        typer.Option(
            help=f"Days to replay: from 1 March 2016, {DEMO_DAYS} by default (88 runs to the end of May); "
            "with --images, 12 (all there are)",
            min=1,
            show_default=False,
        ),
    ] = None,
    images: Annotated[
        bool, typer.Option("--images", help="The camera-line demo: digits photographed under a failing lamp.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the folder if it holds a project.")] = False,
) -> None:
    """Create a project from the UCI Appliances Energy data and replay its spring through the loop (with --images:
    UCI's handwritten digits, photographed on a line whose lamp fails)."""
    from driftloop.demo import HISTORY_DAYS, create_demo_project, replay_start

    if images:
        from driftloop.cli.images import image_demo

        image_demo(folder or Path("driftloop-image-demo"), days, force=force)
        return
    folder = folder or Path("driftloop-demo")
    days = days or DEMO_DAYS

    project, data = create_demo_project(folder, force=force)
    out.print(
        f"[bold]driftloop demo[/] in {project.root}: UCI Appliances Energy data, {HISTORY_DAYS} days of winter "
        "history, then one tick a day of spring with labels a day late"
    )
    result = run_replay(project, data, replay_start(), days, "1d", daily=True, quiet=False)
    show_replay(result)
    out.print(
        f"Next: `driftloop models --project {folder}`, `driftloop serve --project {folder}`, "
        f"`mlflow ui --backend-store-uri {project.tracking_uri}`"
    )


def run_replay(
    project: Project, data: Path, start: date | None, days: int | None, delay: str, *, daily: bool, quiet: bool
) -> ReplayResult:
    """Run a replay with a progress bar over the days, then over the daily baseline's trainings."""
    from driftloop.replay import replay as replay_history

    # Each tick's alert would be a log line a day; a replay's verdicts are in its diary and report.
    logging.getLogger("driftloop.alerts").setLevel(logging.ERROR)
    with progress_bar(quiet, bar=True) as progress:
        ticks = progress.add_task("replaying", total=days)
        baseline = progress.add_task("retrain-every-day baseline", total=days, visible=False)

        def on_day(record: DayRecord) -> None:
            progress.update(ticks, advance=1, description=f"{record.day}: {record.verdict or 'no verdict'}")
            for decision in record.decisions:
                progress.console.print(f"  {record.day}: {escape(str(decision))}", highlight=False)

        def on_baseline_day(day: date) -> None:
            progress.update(baseline, advance=1, visible=True, description=f"daily baseline: trained on {day}")

        return replay_history(
            project,
            data,
            start=start,
            days=days,
            label_delay=delay,
            daily_baseline=daily,
            on_day=on_day,
            on_baseline_day=on_baseline_day,
        )


def run_policies(
    project: Project,
    data: Path,
    path: Path,
    start: date | None,
    days: int | None,
    delay: str,
    budget: int | None,
    *,
    daily: bool,
    quiet: bool,
) -> PolicyFront:
    """Replay the policies of ``path`` together, with a progress line per day."""
    from driftloop.replay import replay_policies
    from driftloop.replay.policies import read_policies

    chosen = read_policies(path)
    logging.getLogger("driftloop.alerts").setLevel(logging.ERROR)
    with progress_bar(quiet, bar=True) as progress:
        ticks = progress.add_task(f"replaying {len(chosen)} policies", total=days)

        def on_day(day: date, projects: int) -> None:
            progress.update(ticks, advance=1, description=f"{day}: {len(chosen)} policies in {projects} project(s)")

        return replay_policies(
            project, data, chosen, start=start, days=days, label_delay=delay, budget=budget, daily_baseline=daily,
            on_day=on_day,
        )  # fmt: skip


def show_front(front: PolicyFront) -> None:
    """The policies by trainings, their error against the static model, the front and the choice."""
    from driftloop.replay.policies import relative_error

    targets = list(front.metrics)
    table = Table("policy", "trained", *(f"{t} {front.metrics[t]}" for t in targets), "vs static", "front",
                  title="Retrain policies on the same history")  # fmt: skip

    def values(result: StrategyResult) -> list[str]:
        return [f"{result.overall[t][front.metrics[t]]:.4g}" for t in targets]

    for o in sorted(front.outcomes, key=lambda o: (o.trainings, o.error)):
        if o.loop is None:
            table.add_row(escape(o.policy.name), "-", *(["-"] * len(targets)), "-", "[yellow]not replayed[/]")
            continue
        mark = "[bold green]recommended[/]" if o.policy.name == front.recommended else ("yes" if o.on_front else "")
        table.add_row(escape(o.policy.name), str(o.trainings), *values(o.loop), f"{o.error:.3f}", mark)
    table.add_row("static", "1", *values(front.static), "1.000", "")
    if front.daily is not None:
        daily = relative_error(front.daily, front.static, front.metrics)
        table.add_row("daily", str(front.daily.trainings), *values(front.daily), f"{daily:.3f}", "")
    out.print(table)
    for o in front.outcomes:
        if o.failed:
            err.print(f"[yellow]{escape(o.policy.name)}: not replayed: {escape(o.failed)}[/]", highlight=False)
    if front.recommended:
        out.print(f"recommended within {front.budget} trainings: [bold]{escape(front.recommended)}[/]")
    else:
        out.print(f"[yellow]no policy trained at most {front.budget} times; raise --budget or add a cheaper one[/]")
    out.print(f"{len(front.outcomes)} policies replayed in {front.projects} project(s), {front.ticks} ticks")
    out.print(f"report: {front.report}")


def show_replay(result: ReplayResult) -> None:
    """The comparison as a table, the headline, and where the report is."""
    from driftloop.replay.report import headline

    decisive = result.metrics
    targets = sorted({t for s in result.strategies for t in s.overall})
    columns = ["trained", "promoted", "rejected", "drift days", "train s"]
    table = Table(
        "strategy", *(f"{t} {decisive[t]}" for t in targets), *columns, title="Replay: the same days, three strategies"
    )
    table.columns[0].no_wrap = True
    for s in result.strategies:
        table.add_row(s.name, *(f"{s.overall[t].get(decisive[t], float('nan')):.4g}" for t in targets),
                      str(s.trainings),
                      str(s.promotions), str(s.rejections), str(s.drift_days), f"{s.training_seconds:.1f}")  # fmt: skip
    out.print(table)
    out.print(headline(result.strategies, decisive))
    run = result.run
    if any(r.estimated for r in run.records):
        out.print(estimates_table(run))
    out.print(tick_costs(run))
    out.print(
        f"replayed {run.replay_days[0]} to {run.replay_days[-1]} ({len(run.replay_days)} days); "
        f"report: {result.report[0]} (summary: {result.report[1].name})"
    )
    for strategy in result.strategies:
        for note in strategy.notes:
            err.print(f"[yellow]{strategy.name}: {escape(note)}[/]", highlight=False)


def estimates_table(run: LoopRun) -> Table:
    """Each target's estimate (every row, no labels) against the metric realised on the same windows."""
    from driftloop.replay.estimates import agreement, estimated_degraded_days

    days = estimated_degraded_days(run.records)
    table = Table("target", "metric", "windows", "rank corr.", "mean |est. - real.|", "mean realised",
                  "inside 95%", title="Estimated before the labels, against realised: each tick's monitored window",
                  caption=f"ticks estimated degraded: {days} of {len(run.records)}")  # fmt: skip
    for a in agreement(run.records):
        table.add_row(a.target, a.metric, str(a.windows), f"{a.rank_correlation:.2f}", f"{a.mean_abs_error:.4g}",
                      f"{a.mean_realised:.4g}", f"{a.covered:.0%}")  # fmt: skip
    return table


def tick_costs(run: LoopRun) -> Table:
    """Where the replayed ticks' time went, step by step: the median day, the slowest, the total."""
    table = Table("step", "median s", "max s", "total s", title=f"Tick cost by step, over {len(run.records)} ticks")
    for name, seconds in run.step_seconds().items():
        table.add_row(name, f"{statistics.median(seconds):.2f}", f"{max(seconds):.2f}", f"{sum(seconds):.1f}")
    totals = [r.seconds for r in run.records]
    if totals:
        table.add_row("whole tick", f"{statistics.median(totals):.2f}", f"{max(totals):.2f}", f"{sum(totals):.1f}")
    return table


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--start {text!r} is not a date like 2016-03-01") from exc
