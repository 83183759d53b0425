"""``POST /v1/devices/reports``: where devices send what they saw, as profiles and outcomes.

A body holds a device's reports of one round, ``{"reports": [...]}`` (each a
:class:`~driftloop.profiles.device_report.DeviceReport`); each is checked (its shape, that it is
about this server's model and a version the registry knows), then all are upserted into the
lake's ``device_reports`` by id in one commit: a device that sends a round again, its answer
lost on the way back, changes nothing. Writing to the lake takes the admin bearer token.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime

import polars as pl
from fastapi import FastAPI, Request

from driftloop.errors import RegistryError, RequestRefused
from driftloop.lake import TABLES, Table
from driftloop.profiles.device_report import DeviceReport
from driftloop.project import Project
from driftloop.serve.operations import authorise
from driftloop.serve.routes import refusal_responses

# Bytes a round's reports may have: a version's profiles are a few kB; beyond this, it is not a report.
MAX_REPORT_BYTES = 2_000_000
# Reports one round may hold (one per model version the device served since the last).
MAX_REPORTS = 100


def add_device_route(app: FastAPI, project: Project, admin_token: str | None, token_variable: str) -> None:
    """Add ``POST /v1/devices/reports`` to ``app``, storing reports in ``project``'s lake."""
    writing = threading.Lock()  # one upsert at a time: two devices' commits would race for the same version

    def store(reports: list[DeviceReport]) -> None:
        with writing:
            store_reports(project, reports)

    @app.post("/v1/devices/reports", summary="A device's report: profiles and outcomes, never rows (bearer token)",
              responses=refusal_responses("401", "403", "413", "422"))  # fmt: skip
    async def device_reports(request: Request) -> dict[str, list[str]]:
        authorise(request.headers.get("authorization"), admin_token, token_variable)
        body = await request.body()
        if len(body) > MAX_REPORT_BYTES:
            raise RequestRefused(f"a round of device reports is at most {MAX_REPORT_BYTES} bytes", status=413)
        try:  # Python's JSON: a profile's outer bin edges are infinite, and JSON proper has no Infinity
            reports = parsed(json.loads(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestRefused(f"the body is not JSON: {exc}") from exc
        await asyncio.to_thread(store, reports)
        return {"stored": [r.report_id for r in reports]}


def parsed(body: object) -> list[DeviceReport]:
    """The reports of a body ``{"reports": [...]}``; a 422 naming the first that is not one."""
    items = body.get("reports") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_REPORTS:
        raise RequestRefused(f'the body is {{"reports": [...]}} with 1 to {MAX_REPORTS} device reports')
    reports = []
    for position, item in enumerate(items):
        try:
            reports.append(DeviceReport.from_dict(item))
        except ValueError as exc:
            raise RequestRefused(f"report {position} is not a device report: {exc}") from exc
    return reports


def store_reports(project: Project, reports: list[DeviceReport]) -> None:
    """Check each report is about ``project``'s model and a version it has, and upsert them all."""
    from driftloop.registry import Registry

    registry = Registry(project)
    for report in reports:
        if report.model != project.model_name:
            raise RequestRefused(f"this server's model is {project.model_name!r}, not {report.model!r}")
        try:
            registry.version(report.version)
        except RegistryError as exc:
            raise RequestRefused(f"a report is about a version the registry does not have: {exc}") from exc
    schema = dict(TABLES[Table.DEVICE_REPORTS].columns)
    frame = pl.DataFrame([_row(r) for r in reports], schema=schema)
    project.lake.merge(Table.DEVICE_REPORTS, frame, key=["report_id"])


def _row(report: DeviceReport) -> dict[str, object]:
    return {
        "report_id": report.report_id,
        "device": report.device,
        "model_name": report.model,
        "model_version": report.version,
        "made_at": report.made_at.astimezone(UTC),
        "received_at": datetime.now(UTC),
        "since": report.since.astimezone(UTC) if report.since else None,
        "until": report.until.astimezone(UTC) if report.until else None,
        "rows": report.rows,
        "labelled": report.labelled,
        "report": json.dumps(report.to_dict()),
    }


__all__ = ["MAX_REPORTS", "MAX_REPORT_BYTES", "add_device_route", "store_reports"]
