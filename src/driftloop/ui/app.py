"""The dashboard's web app: five pages read from the lake and the registry as they stand, the
plotly.js the installed package ships, and two admin actions (end a rollout, roll the champion
back) that take the admin bearer token, as the server's ``POST /admin/reload`` does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import polars as pl
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from driftloop.errors import DriftloopError, RequestRefused
from driftloop.project import Project
from driftloop.serve.operations import authorise
from driftloop.serve.routes import refusal_responses
from driftloop.ui import charts, data
from driftloop.ui.pages import chart, page, paragraph, table

# What the admin actions answer to, and where their token is set.
TOKEN_VARIABLE = "DRIFTLOOP_ADMIN_TOKEN"


def create_ui(
    project: Project, *, admin_token: str | None = None, refresh_seconds: float = 30.0, metrics_url: str | None = None
) -> FastAPI:
    """The dashboard of ``project``; ``admin_token`` enables the admin actions; ``metrics_url`` is
    a server's Prometheus ``/metrics``, whose latency the Traffic page shows."""
    import plotly.offline

    app = FastAPI(title=f"driftloop dashboard: {project.settings.project.name}", docs_url=None, redoc_url=None)

    @app.exception_handler(DriftloopError)
    async def refused(_: Request, exc: DriftloopError) -> JSONResponse:
        # A refused request as the server answers it; an action that cannot be done now (no rollout
        # running, no previous champion) is a conflict with the state, said as it is.
        if isinstance(exc, RequestRefused):
            return JSONResponse(exc.payload(), status_code=exc.status)
        return JSONResponse({"detail": str(exc), "errors": []}, status_code=409)

    script = plotly.offline.get_plotlyjs()
    model = project.model_name

    def served(title: str, path: str, body: Callable[[], str]) -> Callable[[], Awaitable[HTMLResponse]]:
        async def show() -> HTMLResponse:
            content = await asyncio.to_thread(body)  # the lake and the registry are read off the event loop
            return HTMLResponse(page(title, path, model, content, refresh_seconds))

        return show

    for path, title, body in (
        ("/", "Overview", lambda: overview(project)),
        ("/timeline", "Timeline", lambda: timeline(project)),
        ("/metrics", "Metrics", lambda: metrics(project)),
        ("/drift", "Drift", lambda: drift(project)),
        ("/quality", "Data quality", lambda: quality(project)),
        ("/traffic", "Traffic", lambda: traffic(project, metrics_url)),
    ):
        app.get(path, response_class=HTMLResponse, summary=title)(served(title, path, body))

    @app.get("/plotly.js", include_in_schema=False)
    async def plotly_js() -> Response:
        return Response(script, media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.post("/admin/rollout/abort", summary="End the running rollout (bearer token)",
              responses=refusal_responses("401", "403", "409"))  # fmt: skip
    async def abort(request: Request) -> dict[str, str | list[str]]:
        from driftloop.rollout.canary import abort as abort_rollout

        authorise(request.headers.get("authorization"), admin_token, TOKEN_VARIABLE)
        ended = await asyncio.to_thread(abort_rollout, project, "aborted from the dashboard")
        return {"status": str(ended.status), "candidates": list(ended.candidates)}

    @app.post("/admin/rollback", summary="Make the previous champion the champion again (bearer token)",
              responses=refusal_responses("401", "403", "409"))  # fmt: skip
    async def rollback(request: Request) -> dict[str, str | None]:
        from driftloop.registry import Registry

        authorise(request.headers.get("authorization"), admin_token, TOKEN_VARIABLE)
        decision = await asyncio.to_thread(Registry(project).rollback)
        return {"champion": decision.champion_after, "reason": decision.reason}

    return app


def overview(project: Project) -> str:
    """The champion, every version with its stage and aliases, the rollout and its guards, and the
    newest monitored window's verdict."""
    versions = data.versions(project)
    champion = next((v["version"] for v in versions if "champion" in v["aliases"]), None)
    parts = [paragraph(f"Champion: version {champion}" if champion else "No champion yet: `driftloop promote`.")]
    rows = [(v["version"], v["stage"], ", ".join(v["aliases"]), f"{v['created']:%Y-%m-%d %H:%M}",
             ", ".join(f"{k.removeprefix('test_')} {m:.4g}" for k, m in sorted(v["metrics"].items())))
            for v in versions]  # fmt: skip
    parts.append(table(["version", "stage", "aliases", "created (UTC)", "test metrics"], rows, table_id="versions"))
    rollout, changes = data.rollout(project)
    parts.append("<h2>Rollout</h2>")
    if rollout is None:
        parts.append(paragraph("No rollout yet: `driftloop rollout canary VERSION`.", "muted"))
    else:
        state = f"{rollout.kind} of {rollout.named} beside champion {rollout.champion}: {rollout.status}"
        share = f", {rollout.traffic}" if rollout.running else ""
        parts.append(paragraph(state + share, "bad" if rollout.status == "rolled back" else ""))
        parts.append(table(["at (UTC)", "status", "share", "reason"], [
            (f"{c['at']:%Y-%m-%d %H:%M:%S}", c["status"],
             f"{c['steps'][c['step']]:g}%" if c["status"] == "running" else "", c["reason"])
            for c in changes.iter_rows(named=True)], table_id="rollout"))  # fmt: skip
        guards = sorted(rollout.details.items())
        if guards:
            parts.append(table(["guard", "value"], guards, table_id="guards"))
    verdicts = data.monitoring(project).filter(pl.col("section").str.ends_with("verdict"))
    parts.append("<h2>Newest verdict</h2>")
    if verdicts.is_empty():
        parts.append(paragraph("No window monitored yet: `driftloop monitor`.", "muted"))
    else:
        newest = verdicts.sort("window_end").tail(1).row(0, named=True)
        parts.append(paragraph(f"{newest['section']}: {newest['statistic']} for the window ending "
                               f"{newest['window_end']} ({newest['detail']})"))  # fmt: skip
    return "".join(parts)


def timeline(project: Project) -> str:
    """Every decision: trained, gated, promoted, rejected, rolled back, canaries, with the reasons."""
    events = data.events(project)
    if events.is_empty():
        return paragraph("No decision yet: `driftloop train`, then `driftloop promote`.", "muted")
    rows = [(f"{e['at']:%Y-%m-%d %H:%M:%S}", e["version"], e["kind"], e["champion_after"], e["reason"])
            for e in events.reverse().iter_rows(named=True)]  # fmt: skip
    return chart("timeline-chart", charts.timeline(events)) + table(
        ["at (UTC)", "version", "decision", "champion after", "reason"], rows, table_id="events"
    )


def metrics(project: Project) -> str:
    """Each stream's metrics over its monitored windows."""
    monitoring = data.monitoring(project)
    if monitoring.is_empty():
        return paragraph("No window monitored yet: `driftloop monitor`.", "muted")
    return chart("metric-chart", charts.metric_over_time(monitoring))


def drift(project: Project) -> str:
    """Drift per input: the newest window against its thresholds, and every window."""
    monitoring = data.monitoring(project)
    if monitoring.is_empty():
        return paragraph("No window monitored yet: `driftloop monitor`.", "muted")
    latest, _ = charts.drift_latest(monitoring)
    parts = [chart("drift-latest", latest), chart("drift-over-time", charts.drift_over_time(monitoring))]
    window = data.newest_window(project)
    if window is not None:
        parts.append(f"<h2>Training against the window ending {window.until} (version {window.version})</h2>")
        for number, (name, reference) in enumerate(window.reference.columns.items()):
            current = window.current.columns.get(name)
            if current is not None:
                parts.append(chart(f"input-{number}", charts.reference_against_current(name, reference, current)))
    return "".join(parts)


def quality(project: Project) -> str:
    """Quarantined rows by rule and batch."""
    rows = data.quality(project)
    if rows.is_empty():
        return paragraph("Nothing ingested yet: `driftloop ingest FILE`.", "muted")
    broken = rows.filter(pl.col("rows") > 0)
    listing = [(b["batch_id"], f"{b['ingested_at']:%Y-%m-%d %H:%M}", b["rule"], b["rows"], b["rows_in"])
               for b in broken.reverse().iter_rows(named=True)]  # fmt: skip
    total = int(broken["rows"].sum()) if not broken.is_empty() else 0
    summary = paragraph(f"{total} rows quarantined in {broken['batch_id'].n_unique()} of "
                        f"{rows['batch_id'].n_unique()} batches")  # fmt: skip
    return (
        summary
        + chart("quarantine-chart", charts.quarantine(rows))
        + table(
            ["batch", "ingested (UTC)", "rule", "rows quarantined", "rows in batch"], listing, table_id="quarantine"
        )
    )


def traffic(project: Project, metrics_url: str | None) -> str:
    """Requests a minute per source over the last hour (from the prediction log), and each
    endpoint's latency since its server started (from its metrics)."""
    since = datetime.now(UTC) - timedelta(hours=TRAFFIC_HOURS)
    requests = data.traffic(project, since)
    parts = [chart("traffic-chart", charts.traffic(requests))] if not requests.is_empty() else [
        paragraph(f"No request answered in the last {TRAFFIC_HOURS:g} hour(s).", "muted")
    ]  # fmt: skip
    parts.append("<h2>Latency</h2>")
    if metrics_url is None:
        parts.append(paragraph("Give the server (`driftloop ui --server URL`, or `driftloop serve --ui`) to see it.",
                               "muted"))  # fmt: skip
        return "".join(parts)
    try:
        endpoints = data.latency(metrics_url)
    except DriftloopError as exc:
        return "".join([*parts, paragraph(str(exc), "bad")])
    rows = [(e.endpoint, e.requests, e.p50_ms, e.p99_ms) for e in endpoints]
    parts.append(table(["endpoint", "requests since start", "p50 ms", "p99 ms"], rows, table_id="latency"))
    return "".join(parts)


# Hours of traffic the Traffic page shows.
TRAFFIC_HOURS = 1.0

__all__ = ["create_ui"]
