"""The replay's report: one self-contained HTML page (Plotly inlined) and a PNG summary.

The first chart is the one that decides: the decisive metric per day for each strategy (a
7-day rolling mean over the day's own value, which stays visible faintly), one panel per
target, with the loop's retrains and promotions on the time axis. Then the totals per
strategy and the loop's diary, day by day.
"""

from __future__ import annotations

import html
from pathlib import Path

import polars as pl

from driftloop.errors import MissingDependency

try:  # the reports' plotting libraries are an extra: say which
    import plotly.graph_objects as go
    from matplotlib.figure import Figure
    from plotly.io import to_html
    from plotly.subplots import make_subplots
except ModuleNotFoundError as missing:
    raise MissingDependency.of(missing, extra="reports", purpose="the replay report") from missing

from driftloop.model.metrics import HIGHER_IS_BETTER
from driftloop.replay.estimates import agreement, estimated_degraded_days
from driftloop.replay.policies import PolicyFront, PolicyOutcome, relative_error
from driftloop.replay.run import LoopRun
from driftloop.replay.strategies import DAY, StrategyResult

COLOURS = {"driftloop": "#1b5e20", "static": "#c62828", "daily": "#1565c0"}
ROLLING_DAYS = 7
# The scale-free metrics averaged over targets in the totals table, with their headings.
SHARED_HEADINGS = {"smape": "SMAPE %", "r2": "R²", "accuracy": "accuracy"}
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
td:first-child,td.text{text-align:left}.best{font-weight:700;background:#e8f5e9}"""


def write_replay_report(
    results: list[StrategyResult], run: LoopRun, decisive: dict[str, str], folder: Path
) -> tuple[Path, Path]:
    """Write ``replay.html`` and ``replay.png`` into ``folder``; returns both paths. ``decisive``
    names each target's metric (a label's ``class_metric``, a number's ``metric``)."""
    folder.mkdir(parents=True, exist_ok=True)
    targets = sorted({t for r in results for t in r.overall})
    charts = [_per_day_chart(results, run, decisive, targets), _totals_chart(results, decisive, targets)]
    if any(r.estimated for r in run.records):
        charts.append(_estimates_chart(run, targets))
    parts = [to_html(f, include_plotlyjs="inline" if i == 0 else False, full_html=False) for i, f in enumerate(charts)]
    page = folder / "replay.html"
    page.write_text(_page(results, run, decisive, targets, parts), encoding="utf-8")
    picture = folder / "replay.png"
    _summary_png(results, run, decisive, targets, picture)
    return page, picture


def headline(results: list[StrategyResult], decisive: dict[str, str]) -> str:
    """One sentence: how much better or worse the loop's decisive metrics are than each other
    strategy's, averaged over targets as relative changes (targets have their own units)."""
    loop = next(r for r in results if r.name == "driftloop")
    parts = []
    for other in (r for r in results if r.name != "driftloop"):
        changes = [_gain(loop.overall[t][m], other.overall[t][m], m) for t, m in decisive.items() if t in loop.overall]
        mean = sum(changes) / len(changes) if changes else 0.0
        parts.append(f"{abs(mean):.1%} {'better' if mean >= 0 else 'worse'} than {other.name}")
    return f"driftloop's {_named(decisive)}, averaged over targets: " + ", ".join(parts)


def _named(decisive: dict[str, str]) -> str:
    """The decisive metrics as one name ("mae", or "log_loss/mae" when labels and numbers mix)."""
    return "/".join(sorted(set(decisive.values())))


def _gain(loop: float, other: float, metric: str) -> float:
    """Relative improvement of ``loop`` over ``other`` (positive: the loop is better)."""
    if other == 0 or other != other:
        return 0.0
    return (loop - other) / abs(other) * (1 if HIGHER_IS_BETTER[metric] else -1)


def _rolling(per_day: pl.DataFrame, target: str, metric: str) -> pl.DataFrame:
    series = per_day.filter(pl.col("target") == target).sort(DAY)
    return series.with_columns(pl.col(metric).rolling_mean(ROLLING_DAYS, min_samples=1).alias("rolling"))


def _per_day_chart(
    results: list[StrategyResult], run: LoopRun, decisive: dict[str, str], targets: list[str]
) -> go.Figure:
    titles = [f"{t} {decisive[t]}" for t in targets]
    figure = make_subplots(rows=len(targets), cols=1, shared_xaxes=True, subplot_titles=titles)
    for row, target in enumerate(targets, start=1):
        metric = decisive[target]
        for result in results:
            series = _rolling(result.per_day, target, metric)
            days, colour = series.get_column(DAY).to_list(), COLOURS.get(result.name, "grey")
            line = go.Scatter(x=days, y=series.get_column("rolling").to_list(), mode="lines", name=result.name,
                              line={"color": colour, "width": 3}, legendgroup=result.name,
                              showlegend=row == 1)  # fmt: skip
            dots = go.Scatter(x=days, y=series.get_column(metric).to_list(), mode="markers", legendgroup=result.name,
                              marker={"color": colour, "size": 4, "opacity": 0.3}, showlegend=False,
                              hovertemplate=f"{result.name} %{{x}}: %{{y:.4g}}")  # fmt: skip
            figure.add_trace(line, row, 1)
            figure.add_trace(dots, row, 1)
    for record in run.records:
        if record.retrained or record.promoted:
            figure.add_vline(x=str(record.day), line_dash="solid" if record.promoted else "dot",
                             line_color="#1b5e20" if record.promoted else "grey", opacity=0.6)  # fmt: skip
    figure.update_layout(
        title=f"{_named(decisive)} per day ({ROLLING_DAYS}-day mean; dots: each day). Green lines: the loop "
        "promoted a model; grey dotted: it retrained and kept the champion",
        height=320 * len(targets) + 80,
    )
    return figure


def _estimates_chart(run: LoopRun, targets: list[str]) -> go.Figure:
    """Per target: each tick's estimate of its monitored window (every row, with its interval)
    beside the metric realised on the window's rows labelled by then."""
    estimated = [t for t in targets if any(t in r.estimated for r in run.records)]
    figure = make_subplots(rows=len(estimated), cols=1, shared_xaxes=True, subplot_titles=estimated)
    for row, target in enumerate(estimated, start=1):
        ticks = [r for r in run.records if target in r.estimated]
        days = [str(r.day) for r in ticks]
        values = [r.estimated[target] for r in ticks]
        band = go.Scatter(x=days + days[::-1], y=[v["high"] for v in values] + [v["low"] for v in values][::-1],
                          fill="toself", mode="none", fillcolor="rgba(230,81,0,0.2)", name="95% interval",
                          legendgroup="interval", showlegend=row == 1)  # fmt: skip
        guess = go.Scatter(x=days, y=[v["value"] for v in values], mode="lines", name="estimated, every row",
                           line={"color": "#e65100", "dash": "dash"}, legendgroup="estimated",
                           showlegend=row == 1)  # fmt: skip
        labelled = [r for r in ticks if target in r.realised]
        real = go.Scatter(x=[str(r.day) for r in labelled], y=[r.realised[target]["value"] for r in labelled],
                          mode="lines+markers", line={"color": "#0d47a1"}, name="realised, labelled rows",
                          legendgroup="realised", showlegend=row == 1)  # fmt: skip
        for trace in (band, guess, real):
            figure.add_trace(trace, row, 1)
        figure.update_yaxes(title_text=values[0]["metric"], row=row, col=1)
    figure.update_layout(title="The loop's monitored window each day: its metric estimated before the labels, "
                         "and realised on the rows labelled by then", height=300 * len(estimated) + 80)  # fmt: skip
    return figure


def _totals_chart(results: list[StrategyResult], decisive: dict[str, str], targets: list[str]) -> go.Figure:
    titles = [*(f"{t} {decisive[t]}" for t in targets), "training time (s)"]
    figure = make_subplots(rows=1, cols=len(targets) + 1, subplot_titles=titles)
    names = [r.name for r in results]
    colours = [COLOURS.get(n, "grey") for n in names]
    for col, target in enumerate(targets, start=1):
        figure.add_trace(go.Bar(x=names, y=[r.overall[target][decisive[target]] for r in results], marker_color=colours,
                                showlegend=False), 1, col)  # fmt: skip
    figure.add_trace(go.Bar(x=names, y=[r.training_seconds for r in results], marker_color=colours, showlegend=False),
                     1, len(targets) + 1)  # fmt: skip
    figure.update_layout(title=f"Overall {_named(decisive)} over the replayed days, and the training time each "
                         "strategy spent", height=380)  # fmt: skip
    return figure


def _page(
    results: list[StrategyResult], run: LoopRun, decisive: dict[str, str], targets: list[str], charts: list[str]
) -> str:
    best = {t: _best(results, t, decisive[t]) for t in targets}
    head = "".join(f"<th>{html.escape(t)} {decisive[t]}</th>" for t in targets)
    shared = [k for k in ("smape", "r2", "accuracy") if any(k in m for r in results for m in r.overall.values())]
    shared_head = "".join(f"<th>{SHARED_HEADINGS[k]}</th>" for k in shared)
    rows = "".join(
        f"<tr><td class=text>{r.name}</td>"
        + "".join(
            f"<td{' class=best' if best[t] == r.name else ''}>{r.overall[t][decisive[t]]:.4g}</td>" for t in targets
        )
        + "".join(f"<td>{_mean_over_targets(r, k):.4g}</td>" for k in shared)
        + f"<td>{r.trainings}</td><td>{r.promotions}</td><td>{r.rejections}</td><td>{r.drift_days}</td>"
        f"<td>{r.training_seconds:.1f}</td></tr>"
        for r in results
    )
    diary = "".join(
        f"<tr><td class=text>{d.day}</td><td>v{html.escape(str(d.scored_by))}</td><td class=text>{d.verdict}</td>"
        f"<td class=text>{'retrained' if d.retrained else ''} {html.escape('; '.join(map(str, d.decisions)))}</td>"
        f"<td class=text>{html.escape(d.retrain_reason)}</td><td>{d.seconds:.1f}</td></tr>"
        for d in run.records
    )
    title = f"driftloop replay {run.replay_days[0]} to {run.replay_days[-1]}"
    summary = html.escape(headline(results, decisive))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style></head>
<body><h1>Replay: {run.replay_days[0]} to {run.replay_days[-1]}</h1>
<p>{len(run.replay_days)} days replayed after {len(run.history_days)} days of history ({run.history_days[0]} to
{run.history_days[-1]}); labels arrived {run.label_delay} after the rows. {summary}.</p>
{charts[0]}
<h2>Totals</h2>
<table><tr><th>strategy</th>{head}{shared_head}<th>models trained</th><th>promotions</th>
<th>rejections</th><th>drift/degraded days</th><th>training s</th></tr>{rows}</table>
<p>The loop's training time includes tracking and registering each model in MLflow; the daily baseline's is the
training alone.</p>
{charts[1]}
{_estimates_part(run, charts[2:])}
<h2>The loop, day by day</h2>
<table><tr><th>day</th><th>scored by</th><th>verdict</th><th>decisions</th><th>policy</th><th>tick s</th></tr>
{diary}</table>
</body></html>"""


def _estimates_part(run: LoopRun, charts: list[str]) -> str:
    """The estimates' section: how each target's estimate agreed with its realised metric, and the chart."""
    if not charts:
        return ""
    rows = "".join(
        f"<tr><td class=text>{html.escape(a.target)}</td><td class=text>{a.metric}</td><td>{a.windows}</td>"
        f"<td>{a.rank_correlation:.2f}</td><td>{a.mean_abs_error:.4g}</td><td>{a.mean_realised:.4g}</td>"
        f"<td>{a.covered:.0%}</td></tr>"
        for a in agreement(run.records)
    )
    return f"""<h2>Performance estimated before the labels</h2>
<p>Each tick estimates its monitored window's metric on every row, those whose labels have not come included;
ticks estimated degraded: {estimated_degraded_days(run.records)} of {len(run.records)}.</p>
<table><tr><th>target</th><th>metric</th><th>windows</th><th>rank correlation</th><th>mean |estimated -
realised|</th><th>mean realised</th><th>realised inside the 95% interval</th></tr>{rows}</table>
{charts[0]}"""


def _mean_over_targets(result: StrategyResult, metric: str) -> float:
    """A scale-free metric averaged over the targets that have it (SMAPE and R² numbers, accuracy labels)."""
    values = [m[metric] for m in result.overall.values() if metric in m]
    return sum(values) / len(values)


def _best(results: list[StrategyResult], target: str, metric: str) -> str:
    pick = max if HIGHER_IS_BETTER[metric] else min
    return pick(results, key=lambda r: r.overall[target][metric]).name


def _summary_png(
    results: list[StrategyResult], run: LoopRun, decisive: dict[str, str], targets: list[str], path: Path
) -> None:
    figure = Figure(figsize=(12, 3.6 * len(targets)))
    axes = figure.subplots(len(targets), 1, sharex=True, squeeze=False)
    for axis, target in zip(axes[:, 0], targets, strict=True):
        metric = decisive[target]
        for result in results:
            series = _rolling(result.per_day, target, metric)
            axis.plot(series.get_column(DAY).to_list(), series.get_column("rolling").to_list(),
                      color=COLOURS.get(result.name, "grey"), linewidth=2.5,
                      label=f"{result.name} ({result.overall[target][metric]:.4g} overall)")  # fmt: skip
        for record in run.records:
            if record.promoted:
                axis.axvline(record.day, color="#1b5e20", alpha=0.4)
        axis.set(title=f"{target}: {metric} per day ({ROLLING_DAYS}-day mean)", ylabel=metric)
        axis.legend(loc="upper left")
    axes[-1, 0].tick_params(axis="x", rotation=30)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_policies_report(front: PolicyFront, folder: Path) -> Path:
    """Write ``policies.html`` into ``folder``: the front of error against trainings, and the table."""
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "policies.html"
    chart = to_html(_front_chart(front), include_plotlyjs="inline", full_html=False)
    rows = "".join(_policy_row(o, front) for o in sorted(front.outcomes, key=lambda o: (o.trainings, o.error)))
    head = "".join(f"<th>{html.escape(t)} {m}</th>" for t, m in front.metrics.items())
    chosen = (
        f"Recommended within {front.budget} trainings: <b>{html.escape(front.recommended)}</b>."
        if front.recommended
        else f"No policy trained at most {front.budget} times."
    )
    page.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>driftloop policies</title><style>{STYLE}</style></head>
<body><h1>Retrain policies on the same history</h1>
<p>Error: each target's decisive metric relative to the static model's, averaged (below 1 beats never
retraining). {chosen}</p>
{chart}
<table><tr><th>policy</th><th>settings</th><th>models trained</th>{head}<th>error vs static</th><th>on the front</th>
</tr>{rows}</table>
</body></html>""",
        encoding="utf-8",
    )
    return page


def _policy_row(outcome: PolicyOutcome, front: PolicyFront) -> str:
    name = html.escape(outcome.policy.name)
    best = " class=best" if outcome.policy.name == front.recommended else ""
    start = f"<tr{best}><td class=text>{name}</td><td class=text>{html.escape(_settings(outcome))}</td>"
    if outcome.loop is None:
        span = len(front.metrics) + 3
        return f"{start}<td class=text colspan={span}>not replayed: {html.escape(outcome.failed or '')}</td></tr>"
    values = "".join(f"<td>{outcome.loop.overall[t][m]:.4g}</td>" for t, m in front.metrics.items())
    front_mark = "yes" if outcome.on_front else ""
    return f"{start}<td>{outcome.trainings}</td>{values}<td>{outcome.error:.3f}</td><td>{front_mark}</td></tr>"


def _settings(outcome: PolicyOutcome) -> str:
    changed = outcome.policy.changes
    return ", ".join(f"{k} = {v}" for k, v in changed.items()) or "the project's own"


def _front_chart(front: PolicyFront) -> go.Figure:
    figure = go.Figure()
    everything = sorted((o for o in front.outcomes if o.failed is None), key=lambda o: o.trainings)
    colours = ["#1b5e20" if o.on_front else "grey" for o in everything]
    figure.add_trace(go.Scatter(x=[o.trainings for o in everything], y=[o.error for o in everything],
                                mode="markers+text", text=[o.policy.name for o in everything],
                                textposition="top center", marker={"size": 10, "color": colours},
                                name="policies"))  # fmt: skip
    best = [o for o in everything if o.on_front]
    figure.add_trace(go.Scatter(x=[o.trainings for o in best], y=[o.error for o in best], mode="lines",
                                line={"color": "#1b5e20", "dash": "dot"}, name="front"))  # fmt: skip
    figure.add_hline(y=1.0, line_dash="dash", line_color="black", annotation_text="static model")
    if front.daily is not None:
        daily = relative_error(front.daily, front.static, front.metrics)
        figure.add_trace(go.Scatter(x=[front.daily.trainings], y=[daily], mode="markers+text", text=["daily"],
                                    textposition="top center", marker={"size": 10, "color": COLOURS.get("daily")},
                                    name="retrained every day"))  # fmt: skip
    figure.add_vline(x=front.budget, line_dash="dot", line_color="#c62828", annotation_text="budget")
    figure.update_layout(title="Error against trainings, one point per policy (green: on the front)",
                         xaxis_title="models trained", yaxis_title="error relative to the static model",
                         height=480)  # fmt: skip
    return figure
