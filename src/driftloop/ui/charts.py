"""The dashboard's charts, drawn with Plotly (each a figure's JSON, rendered in the page by the
plotly.js the package ships)."""

from __future__ import annotations

import itertools

import polars as pl

from driftloop.errors import MissingDependency
from driftloop.profiles import CategoryProfile, ColumnProfile, NumericProfile

try:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
except ModuleNotFoundError as missing:  # the reports extra draws the charts
    raise MissingDependency.of(missing, extra="reports", purpose="the dashboard") from missing

PERFORMANCE = "performance"
# Bars a number's distribution is drawn with, at most (its profile has up to 100 bins).
DISPLAY_BINS = 25
# The statistics a monitored window's performance rows hold that are metrics (not residuals).
METRICS = ("mae", "rmse", "smape", "r2", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss", "brier")


def timeline(events: pl.DataFrame) -> str:
    """Every decision as a point, in the order they were taken: which version, what kind (hover:
    when, and the reason). In order, not on a time axis: a replay's decisions are days apart in
    its data's past and a promotion today years after them, and several decisions of one
    instant (retrained, gated, crowned) would be one point; each date labels its decisions."""
    ordered = events.sort("at", maintain_order=True).with_row_index("order", offset=1)
    figure = go.Figure()
    for kind in ordered["kind"].unique(maintain_order=True).to_list():
        these = ordered.filter(pl.col("kind") == kind)
        hover = [f"{at:%Y-%m-%d %H:%M} UTC, version {version}<br>{_wrapped(reason)}"
                 for at, version, reason in these.select("at", "version", "reason").iter_rows()]  # fmt: skip
        figure.add_trace(go.Scatter(x=these["order"].to_list(), y=these["version"].to_list(), mode="markers",
                                    name=kind, text=hover, hovertemplate="%{text}<extra>" + kind + "</extra>",
                                    marker={"size": 11}))  # fmt: skip
    firsts = ordered.group_by(pl.col("at").dt.date().alias("day"), maintain_order=True).first()
    step = max(1, firsts.height // TIMELINE_TICKS)  # a label per day, thinned to stay legible
    figure.update_layout(
        title="Decisions, in order",
        xaxis={"title": "decision (labelled with its day, UTC)", "tickvals": firsts["order"].to_list()[::step],
               "ticktext": [f"{day:%Y-%m-%d}" for day in firsts["day"].to_list()[::step]]},
        yaxis={"title": "version", "type": "category", "categoryorder": "array",
               "categoryarray": sorted(ordered["version"].unique().to_list(), key=_version_order)},
        height=420,
    )  # fmt: skip
    return str(figure.to_json())


# Day labels the timeline's axis shows, at most.
TIMELINE_TICKS = 12


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def _wrapped(text: str, width: int = 80) -> str:
    """``text`` in lines of about ``width`` characters, for a hover box."""
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def metric_over_time(monitoring: pl.DataFrame) -> str:
    """Each target's metrics over its monitored windows: a panel per target and metric (their
    scales differ, an error in the target's units beside a share or a percentage, and one axis
    flattened all but the largest), a line per stream (batch, online, shadow), one colour each."""
    performance = monitoring.filter(pl.col("section").str.ends_with(PERFORMANCE), pl.col("statistic").is_in(METRICS))
    panels = sorted(performance.select("column", "statistic").unique().iter_rows(),
                    key=lambda panel: (panel[0], METRICS.index(panel[1])))  # fmt: skip
    if not panels:
        return str(go.Figure().update_layout(title="No metric yet: no monitored window had labels").to_json())
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[f"{target}: {metric}" for target, metric in panels],
                           vertical_spacing=min(0.12, 0.5 / rows))  # fmt: skip
    streams = sorted(performance["section"].unique().to_list(), key=lambda section: section != PERFORMANCE)
    colours = dict(zip(streams, itertools.cycle(COLOURS), strict=False))
    for (section, target, metric), points in performance.sort("window_end").group_by(
        ["section", "column", "statistic"], maintain_order=True
    ):
        place = panels.index((target, metric))
        stream = "batch" if section == PERFORMANCE else section.removesuffix(f" {PERFORMANCE}")
        figure.add_trace(
            go.Scatter(x=points["window_end"].to_list(), y=points["value"].to_list(), mode="lines+markers", name=stream,
                       legendgroup=stream, showlegend=not _drawn(figure, stream),
                       line={"color": colours[section]}),
            row=place // columns + 1, col=place % columns + 1,
        )  # fmt: skip
    figure.update_layout(title="Metrics over time, per stream (window end)", height=140 + 230 * rows)
    return str(figure.to_json())


# The streams' colours: Plotly's own, one per stream in every panel.
COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def _drawn(figure: go.Figure, stream: str) -> bool:
    """Whether ``figure`` has a trace of ``stream`` in its legend already."""
    return any(trace.legendgroup == stream and trace.showlegend is not False for trace in figure.data)


def drift_latest(monitoring: pl.DataFrame) -> tuple[str, str | None]:
    """The newest window's drift per input: each column's test statistic against its threshold;
    and which window that is."""
    tested = monitoring.filter(pl.col("section") == "input", pl.col("threshold").is_not_null())
    if tested.is_empty():
        return str(go.Figure().update_layout(title="Drift per input: no window monitored yet").to_json()), None
    newest = str(tested["window_end"].max())
    latest = tested.filter(pl.col("window_end") == tested["window_end"].max()).sort("value", descending=True)
    colours = ["#d62728" if flagged else "#1f77b4" for flagged in latest["flagged"].to_list()]
    figure = go.Figure(go.Bar(x=latest["column"].to_list(), y=latest["value"].to_list(), marker_color=colours,
                              name="statistic", hovertext=latest["statistic"].to_list()))  # fmt: skip
    figure.add_trace(go.Scatter(x=latest["column"].to_list(), y=latest["threshold"].to_list(), mode="markers",
                                name="threshold", marker={"symbol": "line-ew-open", "size": 18}))  # fmt: skip
    figure.update_layout(title=f"Drift per input, window ending {newest}", height=460)
    return str(figure.to_json()), newest


def reference_against_current(name: str, reference: ColumnProfile, current: ColumnProfile) -> str:
    """One input's distribution in training against the window's: for a number, the density of
    rows on the training profile's bins (the open outer bins drawn as wide as their neighbours);
    for a category, the share of rows per category."""
    widths: list[float] | None = None
    labels: list[float] | list[str]
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        inner = reference.edges[1:-1] or [0.0]
        step = (inner[-1] - inner[0]) / max(len(inner) - 1, 1) or 1.0
        bounds = [inner[0] - step, *inner, inner[-1] + step]
        # Neighbouring bins drawn together, DISPLAY_BINS at most: a window of a day is a few dozen rows.
        group = max(1, -(-(len(bounds) - 1) // DISPLAY_BINS))
        drawn = bounds[::group] if (len(bounds) - 1) % group == 0 else [*bounds[::group], bounds[-1]]
        widths = [b - a for a, b in itertools.pairwise(drawn)]
        labels = [(a + b) / 2 for a, b in itertools.pairwise(drawn)]
        counts = [[sum(p.counts[i : i + group]) for i in range(0, len(p.counts), group)] for p in (reference, current)]
        heights = [[s / w for s, w in zip(_shares(c), widths, strict=True)] for c in counts]
        axis = "share of rows per unit"
    else:
        assert isinstance(reference, CategoryProfile) and isinstance(current, CategoryProfile)
        names = sorted(set(reference.counts) | set(current.counts))
        labels, heights = names, [_shares([p.counts.get(c, 0) for c in names]) for p in (reference, current)]
        axis = "share of rows"
    figure = go.Figure([go.Bar(x=labels, y=heights[0], width=widths, name="training", opacity=0.55),
                        go.Bar(x=labels, y=heights[1], width=widths, name="window", opacity=0.55)])  # fmt: skip
    figure.update_layout(barmode="overlay", bargap=0, title=name, yaxis_title=axis, height=300,
                         margin={"t": 40, "b": 30})  # fmt: skip
    return str(figure.to_json())


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def drift_over_time(monitoring: pl.DataFrame) -> str:
    """Each input's drift statistic over the windows, over its threshold (1: at the threshold),
    the colour capped at :data:`RATIO_CAP` times it: a threshold near zero makes ratios in the
    billions, which took the whole scale and left every other cell white. The hover has the
    numbers."""
    tested = monitoring.filter(pl.col("section") == "input", pl.col("threshold") > 0).sort("window_end")
    ratio = tested.with_columns((pl.col("value") / pl.col("threshold")).alias("ratio"))
    wide = ratio.pivot(on="window_end", index="column", values="ratio", aggregate_function="max")
    windows = [c for c in wide.columns if c != "column"]
    ratios = wide.select(windows).to_numpy()
    hover = "%{y}, window ending %{x}<br>statistic / threshold %{customdata:.3g}<extra></extra>"
    heat = go.Heatmap(z=ratios.clip(max=RATIO_CAP).tolist(), x=windows, y=wide["column"].to_list(),
                      customdata=ratios.tolist(), zmin=0.0, zmid=1.0, zmax=RATIO_CAP, colorscale="RdBu_r",
                      hovertemplate=hover,
                      colorbar={"title": "statistic / threshold", "tickvals": [0, 1, 2, RATIO_CAP],
                                "ticktext": ["0", "1 (threshold)", "2", f"{RATIO_CAP:g} or more"]})  # fmt: skip
    figure = go.Figure(heat)
    figure.update_layout(title="Drift per input over the windows", height=180 + 18 * wide.height,
                         yaxis={"dtick": 1})  # every input named  # fmt: skip
    return str(figure.to_json())


# Statistic over threshold at which the drift heatmap's colour stops deepening.
RATIO_CAP = 3.0


def quarantine(quality: pl.DataFrame) -> str:
    """Quarantined rows per ingest batch, stacked by the rule they broke."""
    figure = go.Figure()
    broken = quality.filter(pl.col("rows") > 0)
    for rule in broken["rule"].unique(maintain_order=True).to_list():
        these = broken.filter(pl.col("rule") == rule)
        figure.add_trace(go.Bar(x=these["batch_id"].to_list(), y=these["rows"].to_list(), name=rule))
    figure.update_layout(barmode="stack", title="Quarantined rows by batch and rule", xaxis_title="batch", height=420)
    return str(figure.to_json())


def traffic(requests: pl.DataFrame) -> str:
    """Requests a minute, per arm (the champion's online answers, each canary's, a shadow's, by version)."""
    figure = go.Figure()
    span = requests.select(pl.datetime_range(pl.col("minute").min(), pl.col("minute").max(), "1m").alias("minute"))
    for arm in requests["arm"].unique().sort().to_list():
        # Every minute of the range, none sent being 0: a line must not bridge a quiet minute.
        sent = requests.filter(pl.col("arm") == arm).select("minute", "requests")
        these = span.join(sent, on="minute", how="left").with_columns(pl.col("requests").fill_null(0))
        figure.add_trace(go.Scatter(x=these["minute"].to_list(), y=these["requests"].to_list(), mode="lines+markers",
                                    name=arm))  # fmt: skip
    figure.update_layout(title="Requests a minute, per arm", xaxis_title="minute (UTC)", height=420)
    return str(figure.to_json())


__all__ = [
    "drift_latest",
    "drift_over_time",
    "metric_over_time",
    "quarantine",
    "reference_against_current",
    "timeline",
    "traffic",
]
