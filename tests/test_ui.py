"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a real
uvicorn on 127.0.0.1: each page's content checked against the lake and the registry it reads,
its Plotly charts drawn, screenshots saved beside the test's files; the admin actions refused
without the token and done with it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.cli.serve import with_ui
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.rollout.state import RolloutStatus, current
from driftloop.serve.app import app_of
from driftloop.ui import charts, data
from driftloop.ui.app import create_ui
from tests.conftest import make_synthetic_project
from tests.live import free_port, launch_chromium, running

TOKEN = "dashboard-token"
runner = CliRunner()


def cli(project: Project, *args: str) -> None:
    done = runner.invoke(app, [*args, "--project", str(project.root)])
    assert done.exit_code == 0, done.output


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with a champion, a batch with quarantined rows, two monitored days and a canary running."""
    root = tmp_path_factory.mktemp("dashboard")
    project = make_synthetic_project(root / "p", epochs=5)
    times = ["2024-01-25 00:00:00", "2024-01-25 01:00:00", "2024-01-25 02:00:00"]
    bad = pl.DataFrame({"ts": times, "a": ["0.5", "warm", "1.0"], "b": ["0.1", "0.2", ""], "c": ["x", "y", "q"],
                        "y": ["1", "2", "3"]})  # fmt: skip
    bad.write_csv(root / "bad.csv")
    runner.invoke(app, ["ingest", str(root / "bad.csv"), "--project", str(project.root)])  # some rows refused
    cli(project, "train")
    cli(project, "promote")
    for day in ("2024-01-18", "2024-01-19"):
        cli(project, "predict", "--date", day)
        cli(project, "monitor", "--date", day, "--no-report")
    cli(project, "train")
    cli(project, "rollout", "canary", "2", "--percent", "20")
    return project


@pytest.fixture
def dashboard(watched: Project) -> Iterator[str]:
    with running(create_ui(watched, admin_token=TOKEN, refresh_seconds=45)) as base:
        yield base


def traces(page: Any, chart: str) -> int:
    page.wait_for_function(
        f"document.getElementById('{chart}') && document.getElementById('{chart}').data", timeout=15_000
    )
    return int(page.evaluate(f"document.getElementById('{chart}').data.length"))


def test_every_page_shows_what_the_lake_and_the_registry_hold(watched: Project, dashboard: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    registry = Registry(watched)
    events = registry.events()
    monitoring = data.monitoring(watched)
    quarantined = data.quality(watched).filter(pl.col("rows") > 0)
    assert not quarantined.is_empty() and not monitoring.is_empty()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(dashboard + "/")
            assert "Champion: version 1" in page.inner_text("body")
            assert page.locator("#versions tbody tr").count() == len(registry.versions())
            assert "canary of version 2 beside champion 1: running, 20% of traffic" in page.inner_text("body")
            assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "45"
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

            page.get_by_role("link", name="Timeline", exact=True).click()
            assert page.locator("#events tbody tr").count() == events.height
            assert traces(page, "timeline-chart") == events["kind"].n_unique()
            placed = page.evaluate("document.getElementById('timeline-chart').data.flatMap(trace => trace.x)")
            assert sorted(placed) == list(range(1, events.height + 1))  # every decision a point of its own, in order
            assert "canary" in page.inner_text("#events")
            page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)

            page.get_by_role("link", name="Metrics", exact=True).click()
            assert traces(page, "metric-chart") >= 1
            # A panel per target and metric the lake holds (their scales differ), titled with both.
            measured = monitoring.filter(pl.col("section").str.ends_with("performance"),
                                         pl.col("statistic").is_in(charts.METRICS))  # fmt: skip
            titles = page.evaluate("document.getElementById('metric-chart').layout.annotations.map(a => a.text)")
            panels = measured.select("column", "statistic").unique().rows()
            assert sorted(titles) == sorted(f"{target}: {metric}" for target, metric in panels)
            page.screenshot(path=str(tmp_path / "metrics.png"), full_page=True)

            page.get_by_role("link", name="Drift", exact=True).click()
            newest = monitoring.filter(pl.col("section") == "input", pl.col("threshold").is_not_null())
            columns = newest.filter(pl.col("window_end") == newest["window_end"].max())["column"].to_list()
            assert traces(page, "drift-latest") == 2  # the statistics, and their thresholds
            drawn = page.evaluate("document.getElementById('drift-latest').data[0].x")
            assert sorted(drawn) == sorted(columns)
            heat = page.evaluate("(({z, customdata, y}) => ({z, customdata, y}))"
                                 "(document.getElementById('drift-over-time').data[0])")  # fmt: skip
            tested = newest.filter(pl.col("threshold") > 0)
            ratios = [v for values in heat["customdata"] for v in values if v is not None]
            assert sorted(heat["y"]) == sorted(tested["column"].unique().to_list())  # every input, named
            assert max(ratios) == pytest.approx((tested["value"] / tested["threshold"]).max())  # the hover: the truth
            assert max(v for values in heat["z"] for v in values if v is not None) <= charts.RATIO_CAP  # colour: capped
            window = data.newest_window(watched)
            assert window is not None and page.locator("[id^=input-]").count() == len(window.reference.columns)
            assert traces(page, "input-0") == 2  # training and the window, on the same bins
            page.screenshot(path=str(tmp_path / "drift.png"), full_page=True)

            page.get_by_role("link", name="Data quality", exact=True).click()
            assert page.locator("#quarantine tbody tr").count() == quarantined.height
            assert traces(page, "quarantine-chart") == quarantined["rule"].n_unique()
            page.screenshot(path=str(tmp_path / "quality.png"), full_page=True)

            page.get_by_role("link", name="Traffic", exact=True).click()
            shown = page.inner_text("body")  # no server answered here yet, and none was named for its latency
            assert "No request answered in the last 1 hour(s)." in shown and "driftloop ui --server URL" in shown
        finally:
            browser.close()
    assert all((tmp_path / f"{name}.png").stat().st_size > 5_000 for name in ("overview", "timeline", "quality"))


def test_admin_actions_take_the_token_and_say_what_they_cannot_do(watched: Project, dashboard: str) -> None:
    assert httpx.post(dashboard + "/admin/rollout/abort", timeout=30).status_code == 401
    wrong = httpx.post(dashboard + "/admin/rollout/abort", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 403
    assert current(watched.lake, watched.model_name).status is RolloutStatus.RUNNING  # type: ignore[union-attr]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    done = httpx.post(dashboard + "/admin/rollout/abort", headers=bearer, timeout=30)
    assert done.status_code == 200 and done.json() == {"status": "aborted", "candidates": ["2"]}
    again = httpx.post(dashboard + "/admin/rollout/abort", headers=bearer, timeout=30)
    assert again.status_code == 409 and "no rollout" in again.json()["detail"]
    no_previous = httpx.post(dashboard + "/admin/rollback", headers=bearer, timeout=30)
    assert no_previous.status_code == 409 and "no previous champion" in no_previous.json()["detail"]
    assert "aborted" in httpx.get(dashboard + "/", timeout=30).text


def test_the_dashboard_is_served_under_the_prediction_server_too(watched: Project) -> None:
    port = free_port()
    with running(with_ui(app_of(watched), watched, None, f"http://127.0.0.1:{port}"), port) as base:
        overview = httpx.get(base + "/ui/", timeout=30)
        assert overview.status_code == 200 and "Champion: version 1" in overview.text
        # Relative links and script: they follow the mount.
        assert 'href="timeline"' in overview.text and 'src="plotly.js"' in overview.text
        assert httpx.get(base + "/ui/timeline", timeout=30).status_code == 200
        script = httpx.get(base + "/ui/plotly.js", timeout=30)
        assert script.headers["content-type"].startswith("application/javascript")
        row = watched.lake.read("features").select("ts", "a", "b", "c").head(1)
        answer = httpx.post(base + "/v1/predict", json=row.with_columns(pl.col("ts").cast(pl.String)).to_dicts(),
                            timeout=30)  # fmt: skip
        assert answer.status_code == 200  # the scoring routes answer as before
        deadline = time.monotonic() + 30
        while "traffic-chart" not in (shown := httpx.get(base + "/ui/traffic", timeout=30).text):
            assert time.monotonic() < deadline, shown[-2000:]  # the log reaches the lake every 2 s
            time.sleep(0.5)
        assert '<table id="latency">' in shown and "/v1/predict" in shown  # read from its own /metrics
        assert '"name":"online v1"' in shown  # requests per arm: the champion's online answers
        assert ">/ui/timeline<" in shown  # the dashboard's own routes are named with their mount


def test_the_traffic_chart_shows_a_quiet_minute_as_none_sent() -> None:
    at = [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 3, 0)]
    requests = pl.DataFrame({"minute": at, "arm": ["online v1", "online v1", "canary v2"], "requests": [5, 7, 1]})
    traces = {t["name"]: t["y"] for t in json.loads(charts.traffic(requests))["data"]}
    assert traces == {"canary v2": [1, 0, 0, 0], "online v1": [5, 0, 0, 7]}


def test_latency_quantiles_are_read_from_a_cumulative_histogram_as_prometheus_does() -> None:
    buckets = [(0.005, 50.0), (0.01, 90.0), (0.025, 99.0), (0.05, 100.0), (float("inf"), 100.0)]
    assert data._quantile(buckets, 0.5) == pytest.approx(0.005)  # the 50th of 100 is the top of the first bucket
    assert data._quantile(buckets, 0.95) == pytest.approx(0.01 + 0.015 * 5 / 9)  # interpolated in (0.01, 0.025]
    assert data._quantile([(0.1, 10.0), (float("inf"), 20.0)], 0.99) == 0.1  # beyond the last bound: the bound
