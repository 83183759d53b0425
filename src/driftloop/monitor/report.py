"""The monitoring report: one self-contained HTML page (Plotly inlined, no CDN) and a PNG summary.

The first chart answers "is the model still good?": each target's decisive metric over every
monitored window, with retrains and promotions marked on the time axis. Then the verdict and
its reasons, performance (numbers and labels apart, each label with its confusion matrix and
calibration curve on the window), the drift tables of inputs and predictions, and
reference-vs-current distributions of the inputs that moved most. A window of images reads the
same, its images' statistics as the inputs, with the test of the network's embeddings. Everything is read from the
``monitoring`` and ``events`` tables and the window's profiles, so a report can be made again
at any time.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import polars as pl

from driftloop.errors import MissingDependency

try:  # the reports' plotting libraries are an extra: say which
    import plotly.graph_objects as go
    from matplotlib.figure import Figure
    from plotly.io import to_html
    from plotly.subplots import make_subplots
except ModuleNotFoundError as missing:
    raise MissingDependency.of(missing, extra="reports", purpose="the monitoring report") from missing

from driftloop.lake import Table
from driftloop.model.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from driftloop.monitor import Stream
from driftloop.monitor.drift import ColumnDrift, DriftReport
from driftloop.monitor.estimates import TargetEstimate
from driftloop.monitor.images import ImageDrift
from driftloop.monitor.performance import TargetPerformance
from driftloop.monitor.verdict import VerdictLevel
from driftloop.monitor.window import WindowReport, section_of
from driftloop.profiles import CategoryProfile, NumericProfile
from driftloop.project import Project
from driftloop.registry import Registry

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
td:first-child{text-align:left}.drifted{background:#fdecea}.verdict{color:VERDICT;font-size:1.6rem;font-weight:700}"""
# The label metrics' column headings, in the order of CLASSIFICATION_METRICS.
CLASSIFICATION_HEADINGS = ("accuracy", "balanced accuracy", "macro F1", "ROC AUC", "log loss", "Brier")
# Inputs whose distributions are drawn: the most drifted ones.
DISTRIBUTIONS_SHOWN = 6


def write_report(
    project: Project, report: WindowReport, folder: Path, *, images: ImageDrift | None = None
) -> tuple[Path, Path]:
    """Write ``monitor_<start>_<end>.html`` and ``.png`` into ``folder``; returns both paths. A
    window of images brings its ``images`` drift: the statistics stand as its inputs, and the
    embeddings' test is shown where a table's estimates are."""
    folder.mkdir(parents=True, exist_ok=True)
    stream = "" if report.source is Stream.BATCH else f"{report.source}_"
    stem = f"monitor_{stream}{report.since:%Y%m%dT%H%M}_{report.until:%Y%m%dT%H%M}"
    history = _history(project, section_of(report.source, "performance"))
    estimated = _history(project, section_of(report.source, "estimate"))
    decisive = project.decisive_metrics
    events = Registry(project).events()
    over_time = _metric_over_time(history, estimated, events, decisive)
    figures = [over_time, _drift_bars(report), _distributions(report)]
    labels = [p for p in report.performance if p.confusion is not None]
    if labels:
        figures.append(_label_views(labels))
    parts = [to_html(f, include_plotlyjs="inline" if i == 0 else False, full_html=False) for i, f in enumerate(figures)]
    page = folder / f"{stem}.html"
    page.write_text(_page(report, decisive, parts, images), encoding="utf-8")
    picture = folder / f"{stem}.png"
    _summary_png(report, history, estimated, decisive, picture)
    return page, picture


def _history(project: Project, section: str) -> pl.DataFrame:
    lake = project.lake
    if not lake.exists(Table.MONITORING):
        return pl.DataFrame(
            schema={"window_end": pl.Datetime("us"), "column": pl.String, "statistic": pl.String, "value": pl.Float64}
        )
    rows = lake.read(Table.MONITORING).filter(pl.col("section") == section)
    # The latest computation of each window counts.
    latest = rows.group_by("window_start", "window_end", "model_version").agg(pl.col("computed_at").max())
    return rows.join(latest, on=["window_start", "window_end", "model_version", "computed_at"]).sort("window_end")


def _decisive_history(history: pl.DataFrame, decisive: dict[str, str]) -> list[tuple[str, pl.DataFrame]]:
    """Each target's decisive metric per window, labelled "target metric"."""
    found = []
    for target, metric in decisive.items():
        series = history.filter((pl.col("column") == target) & (pl.col("statistic") == metric))
        if series.height:
            found.append((f"{target} {metric}", series))
    return found


def _estimated_history(estimated: pl.DataFrame, decisive: dict[str, str]) -> list[tuple[str, pl.DataFrame]]:
    """Each target's estimated decisive metric per window, with its interval (``low``, ``high``)."""
    found = []
    for name, series in _decisive_history(estimated, decisive):
        target, metric = name.rsplit(" ", 1)
        bounds = estimated.filter(pl.col("column") == target).pivot(
            "statistic", index="window_end", values="value", aggregate_function="last"
        )
        if {f"{metric}_low", f"{metric}_high"} <= set(bounds.columns):
            band = bounds.select("window_end", low=pl.col(f"{metric}_low"), high=pl.col(f"{metric}_high"))
            found.append((f"{name}, estimated", series.join(band, on="window_end", how="left")))
    return found


def _metric_over_time(
    history: pl.DataFrame, estimated: pl.DataFrame, events: pl.DataFrame, decisive: dict[str, str]
) -> go.Figure:
    figure = go.Figure()
    for name, series in _decisive_history(history, decisive):
        figure.add_trace(go.Scatter(x=series.get_column("window_end").to_list(), y=series.get_column("value").to_list(),
                                    mode="lines+markers", name=name))  # fmt: skip
    for name, series in _estimated_history(estimated, decisive):
        ends = series.get_column("window_end").to_list()
        figure.add_trace(go.Scatter(x=ends + ends[::-1], y=series.get_column("high").to_list()
                                    + series.get_column("low").to_list()[::-1], fill="toself", mode="none",
                                    opacity=0.25, name=f"{name}, 95% interval"))  # fmt: skip
        figure.add_trace(go.Scatter(x=ends, y=series.get_column("value").to_list(), mode="lines",
                                    line={"dash": "dash"}, name=name))  # fmt: skip
    for event in events.filter(pl.col("kind").is_in(["retrain", "champion", "rollback"])).iter_rows(named=True):
        figure.add_vline(x=event["at"].replace(tzinfo=None), line_dash="dot", line_color="grey")
        figure.add_annotation(x=event["at"].replace(tzinfo=None), y=1, yref="paper", showarrow=False,
                              text=f"{event['kind']} v{event['version']}", textangle=-90, xanchor="left")  # fmt: skip
    metrics = "/".join(sorted(set(decisive.values())))
    figure.update_layout(title=f"{metrics} per monitored window: realised on labelled rows, estimated on every row "
                         "(no labels needed), with retrains and promotions",
                         xaxis_title="window end", yaxis_title=metrics, height=420)  # fmt: skip
    return figure


def _label_views(labels: list[TargetPerformance]) -> go.Figure:
    """Per label: the window's confusion matrix, and its calibration curve beside it."""
    titles = [t for p in labels for t in (f"{p.target}: confusion (rows)", f"{p.target}: calibration")]
    figure = make_subplots(rows=len(labels), cols=2, subplot_titles=titles)
    for row, performance in enumerate(labels, start=1):
        classes = performance.classes or []
        figure.add_trace(go.Heatmap(z=performance.confusion, x=classes, y=classes, colorscale="Blues",
                                    showscale=False, texttemplate="%{z}", hovertemplate="actual %{y}, predicted %{x}:"
                                    " %{z}<extra></extra>"), row, 1)  # fmt: skip
        figure.update_xaxes(title_text="predicted", row=row, col=1)
        figure.update_yaxes(title_text="actual", autorange="reversed", row=row, col=1)
        for name, curve in (performance.calibration or {}).items():
            figure.add_trace(go.Scatter(x=[b[0] for b in curve], y=[b[1] for b in curve], mode="lines+markers",
                                        name=f"{performance.target} = {name}",
                                        hovertext=[f"{b[2]:.0f} rows" for b in curve]), row, 2)  # fmt: skip
        figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "black"},
                                    showlegend=False), row, 2)  # fmt: skip
        figure.update_xaxes(title_text="predicted probability", range=[0, 1], row=row, col=2)
        figure.update_yaxes(title_text="observed share", range=[0, 1], row=row, col=2)
    figure.update_layout(title="Labels on the window: confusion and calibration", height=420 * len(labels))
    return figure


def _threshold(column: ColumnDrift) -> str:
    """A column's threshold as the report shows it, saying where a calibrated one came from."""
    limit = f"{column.result.threshold:.4g}"
    return f"{limit}, calibrated" if column.result.calibrated else limit


def severity(column: ColumnDrift) -> float:
    """How far past its threshold a column is (above 1: drifted): statistic / threshold for a
    distance or a calibrated threshold (which is on the statistic), threshold / p for a
    hypothesis test's fixed one."""
    result = column.result
    if result.p_value is not None and not result.calibrated:
        return result.threshold / max(result.p_value, 1e-300)
    return result.statistic / max(result.threshold, 1e-12)


def _drift_bars(report: WindowReport) -> go.Figure:
    columns = sorted(report.inputs.columns, key=severity, reverse=True)
    names = [c.column for c in columns]
    ratio = [min(severity(c), 1e6) for c in columns]
    colours = ["crimson" if c.drifted else "steelblue" for c in columns]
    figure = go.Figure(go.Bar(x=names, y=ratio, marker_color=colours,
                              hovertext=[_describe(c) for c in columns]))  # fmt: skip
    figure.add_hline(y=1.0, line_dash="dash", line_color="black")
    figure.update_layout(title="Drift per input: statistic / threshold, or threshold / p-value (above 1: drifted)",
                         yaxis_title="severity", yaxis_type="log", height=380)  # fmt: skip
    return figure


def _describe(column: ColumnDrift) -> str:
    return f"{column.result.test} = {column.result.statistic:.4g} (threshold {_threshold(column)})"


def _distributions(report: WindowReport) -> go.Figure:
    moved = sorted(report.inputs.columns, key=severity, reverse=True)[:DISTRIBUTIONS_SHOWN]
    figure = make_subplots(rows=max(1, (len(moved) + 1) // 2), cols=2, subplot_titles=[c.column for c in moved])
    for i, column in enumerate(moved):
        row, col = i // 2 + 1, i % 2 + 1
        ref, cur = report.reference.columns[column.column], report.current.columns[column.column]
        labels, ref_share, cur_share = _shares(ref, cur)
        figure.add_trace(
            go.Bar(x=labels, y=ref_share, name="reference", marker_color="steelblue", showlegend=i == 0), row, col
        )
        figure.add_trace(
            go.Bar(x=labels, y=cur_share, name="current", marker_color="darkorange", showlegend=i == 0), row, col
        )
    figure.update_layout(title="Reference (training) vs current distribution of the inputs that moved most",
                         barmode="overlay", height=300 * max(1, (len(moved) + 1) // 2))  # fmt: skip
    figure.update_traces(opacity=0.6)
    return figure


def _shares(
    ref: NumericProfile | CategoryProfile, cur: NumericProfile | CategoryProfile
) -> tuple[list[str], list[float], list[float]]:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        # Merge the reference's ~100 bins into 20 for reading; label each by its lower edge.
        step = max(1, len(ref.counts) // 20)
        starts = list(range(0, len(ref.counts), step))
        ref_counts = np.add.reduceat(np.asarray(ref.counts, dtype=float), starts)
        cur_counts = np.add.reduceat(np.asarray(cur.counts, dtype=float), starts)
        labels = ["below" if s == 0 else f"≥{ref.edges[s]:.3g}" for s in starts]
    else:
        assert isinstance(ref, CategoryProfile) and isinstance(cur, CategoryProfile)
        labels = sorted(set(ref.counts) | set(cur.counts))
        ref_counts = np.asarray([ref.counts.get(k, 0) for k in labels], dtype=float)
        cur_counts = np.asarray([cur.counts.get(k, 0) for k in labels], dtype=float)
    return labels, list(ref_counts / max(ref_counts.sum(), 1)), list(cur_counts / max(cur_counts.sum(), 1))


def _embeddings(drift: ImageDrift) -> str:
    """The embeddings' two-sample test, said in a sentence."""
    test = drift.embeddings
    p_value = "" if test.p_value is None else f", permutation p = {test.p_value:.3g}"
    verdict = "<b>drifted</b>" if test.drifted else "not drifted"
    return (
        f"<p>The network's pooled features of the window's images against those of held-out training images: "
        f"{html.escape(test.test)} = {test.statistic:.4g}{p_value} (threshold {test.threshold:g}): {verdict}.</p>"
    )


def _page(report: WindowReport, decisive: dict[str, str], charts: list[str], images: ImageDrift | None) -> str:
    colour = {VerdictLevel.OK: "#2e7d32", VerdictLevel.WARN: "#f9a825"}.get(report.verdict.level, "#c62828")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.verdict.reasons) or "<li>nothing to report</li>"
    numbers = [p for p in report.performance if p.classes is None]
    labels = [p for p in report.performance if p.classes is not None]
    performance = _performance_table(numbers, REGRESSION_METRICS, ("MAE", "RMSE", "SMAPE %", "R²"))
    performance += _performance_table(labels, CLASSIFICATION_METRICS, CLASSIFICATION_HEADINGS)
    drift = _drift_rows(report.inputs)
    predictions = _drift_rows(report.predictions) if report.predictions is not None else ""
    title = f"driftloop monitoring {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}"
    stream = "batch predictions" if report.source is Stream.BATCH else "online traffic"
    unit, inputs = ("images", "Image statistics drift") if images is not None else ("rows", "Input drift")
    looked = (
        f"<h2>Embedding drift</h2>{_embeddings(images)}"
        if images is not None
        else "<h2>Estimated performance (every row, no labels needed)</h2>"
        + (_estimates_table(report.estimates) or "<p>this model carries no estimators (trained before them)</p>")
    )
    shadow_columns = ("target", "challenger", "requests", "mean |difference|", "labelled", "metric", "champion",
                      "challenger")  # fmt: skip
    shadow_head = "".join(f"<th>{h}</th>" for h in shadow_columns)
    shadow = "".join(
        f"<tr><td>{html.escape(c.target)}</td><td>{html.escape(c.challenger_version)}</td><td>{c.rows:,}</td>"
        f"<td>{c.mean_abs_difference:.4g}</td><td>{c.labelled_rows:,}</td><td>{decisive[c.target]}</td>"
        f"<td>{c.champion.get(decisive[c.target], float('nan')):.4g}</td>"
        f"<td>{c.challenger.get(decisive[c.target], float('nan')):.4g}</td></tr>"
        for c in report.shadow
    )
    shadow_part = (
        f"<h2>Shadow: the challenger on the same requests</h2><table><tr>{shadow_head}</tr>{shadow}</table>"
        if shadow
        else ""
    )
    drift_head = "".join(
        f"<th>{h}</th>" for h in ("input", "test", "statistic", "threshold", "drifted", "null rate", "new categories")
    )
    style = STYLE.replace("VERDICT", colour)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>
<body><h1>Monitoring: {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M}</h1>
<p>{stream}: {report.rows:,} {unit}, model version {html.escape(report.model_version)}</p>
{charts[0]}
<p class="verdict">{report.verdict.level}</p><ul>{reasons}</ul>
<h2>Performance (labelled {unit})</h2>
{performance or f"<p>no labelled {unit} in this window yet</p>"}
{looked}
{"".join(charts[3:])}
{shadow_part}
<h2>{inputs}</h2>{charts[1]}
<table><tr>{drift_head}</tr>{drift}</table>
{charts[2]}
{
        f"<h2>Prediction drift (values, classes and probabilities)</h2>"
        f"<table><tr>{drift_head}</tr>{predictions}</table>"
        if predictions
        else ""
    }
</body></html>"""


def _performance_table(rows: list[TargetPerformance], metrics: tuple[str, ...], headings: tuple[str, ...]) -> str:
    """One table of the targets of one kind: their window metrics, then the decisive one's test value."""
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("target", "rows", *headings, "decisive", "test", "vs test"))
    body = "".join(
        f"<tr><td>{html.escape(p.target)}</td><td>{p.rows:,}</td>"
        + "".join(f"<td>{p.metrics.get(m, float('nan')):.4g}</td>" for m in metrics)
        + f"<td>{p.metric}</td><td>{p.test_metrics.get(p.metric, float('nan')):.4g}</td>"
        + f"<td>{p.worsening:+.0%}</td></tr>"
        for p in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _estimates_table(estimates: list[TargetEstimate]) -> str:
    """Each target's estimated decisive metric, its interval and how it reads against expected."""
    if not estimates:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("target", "rows", "metric", "estimate", "95% interval", "expected",
                                              "vs expected", "at least"))  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(e.target)}</td><td>{e.rows:,}</td><td>{e.metric}</td><td>{e.estimate.value:.4g}</td>"
        f"<td>{e.estimate.low:.4g} to {e.estimate.high:.4g}</td>"
        f"<td>{e.expected if e.expected is None else f'{e.expected:.4g}'}</td><td>{e.worsening:+.0%}</td>"
        f"<td>{e.sure_worsening:+.0%}</td></tr>"
        for e in estimates
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _drift_rows(drift: DriftReport) -> str:
    return "".join(
        f"<tr{' class=drifted' if c.drifted else ''}><td>{html.escape(c.column)}</td><td>{c.result.test}</td>"
        f"<td>{c.result.statistic:.4g}</td><td>{_threshold(c)}</td><td>{'yes' if c.drifted else 'no'}</td>"
        f"<td>{c.null_rate_current:.1%}</td><td>{html.escape(', '.join(c.new_categories))}</td></tr>"
        for c in sorted(drift.columns, key=severity, reverse=True)
    )


def _summary_png(
    report: WindowReport, history: pl.DataFrame, estimated: pl.DataFrame, decisive: dict[str, str], path: Path
) -> None:
    figure = Figure(figsize=(13, 4.5))
    left, right = figure.subplots(1, 2)
    shown = _decisive_history(history, decisive)
    for name, series in shown:
        left.plot(
            series.get_column("window_end").to_list(), series.get_column("value").to_list(), marker="o", label=name
        )
    for name, series in _estimated_history(estimated, decisive):
        ends = series.get_column("window_end").to_list()
        (line,) = left.plot(ends, series.get_column("value").to_list(), linestyle="--", label=name)
        left.fill_between(ends, series.get_column("low").to_list(), series.get_column("high").to_list(),
                          color=line.get_color(), alpha=0.2)  # fmt: skip
        shown.append((name, series))
    metrics = "/".join(sorted(set(decisive.values())))
    left.set(title=f"{metrics} per monitored window", xlabel="window end", ylabel=metrics)
    if shown:
        left.legend()
    left.tick_params(axis="x", rotation=30)
    columns = sorted(report.inputs.columns, key=severity, reverse=True)[:15]
    ratio = [min(severity(c), 1e6) for c in columns]
    right.barh([c.column for c in columns][::-1], ratio[::-1],
               color=["crimson" if c.drifted else "steelblue" for c in columns][::-1])  # fmt: skip
    right.axvline(1.0, color="black", linestyle="--")
    right.set_xscale("log")
    right.set(title=f"verdict: {report.verdict.level}: drift severity (above 1: drifted)", xlabel="severity")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
