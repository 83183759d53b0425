"""The fleet view: what the devices reported over a window, merged per device and for the whole
fleet, with drift per device against the model version's training profile.

A device reports profiles and outcomes, never rows (:mod:`driftloop.edge.reports`); they merge
exactly, so a device's week is the sum of its reports, and the fleet's the sum of its devices'.
The drift tests, thresholds and calibration are the project's ``[monitor]``, as for a window of
the lake's own rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from driftloop.errors import MonitorError
from driftloop.lake import Table
from driftloop.monitor.drift import DriftReport, compare
from driftloop.monitor.thresholds import CALIBRATION
from driftloop.profiles import Profile
from driftloop.profiles.device_report import DeviceReport
from driftloop.profiles.outcomes import Outcome
from driftloop.project import Project
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.kinds import AnyPackage
from driftloop.runtime.package import ModelPackage

FLEET = "(fleet)"  # the device name of a version's row over every device
# What a device report's parts are called in an image package's reference.
IMAGE_PARTS = {"inputs": "images", "predictions": "outputs"}


@dataclass(frozen=True)
class DeviceView:
    """One device's reports about one model version over the window, merged and tested."""

    device: str
    version: str
    reports: int
    rows: int
    labelled: int
    last_seen: datetime
    status: dict[str, Any]  # the newest report's: the version serving, ready, the versions kept (none for the fleet)
    inputs: DriftReport | None
    predictions: DriftReport | None
    metrics: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "version": self.version,
            "reports": self.reports,
            "rows": self.rows,
            "labelled": self.labelled,
            "last_seen": self.last_seen.isoformat(),
            "status": self.status,
            "input_drift": _summary(self.inputs),
            "prediction_drift": _summary(self.predictions),
            "metrics": self.metrics,
        }


def fleet_view(project: Project, since: datetime, until: datetime) -> list[DeviceView]:
    """Every device's view of each version it reported about in [since, until) (naive UTC, when
    the reports were received), then each version over the whole fleet (device ``(fleet)``)."""
    lake = project.lake
    if not lake.exists(Table.DEVICE_REPORTS):
        raise MonitorError("no device has reported yet: devices report through `driftloop edge agent --report-to`")
    window = lake.read(Table.DEVICE_REPORTS).filter(
        pl.col("model_name") == project.model_name,
        pl.col("received_at").dt.replace_time_zone(None).is_between(since, until, closed="left"),
    )
    if window.is_empty():
        raise MonitorError(f"no device reported about {project.model_name!r} between {since} and {until} (UTC)")
    reports = [DeviceReport.from_dict(json.loads(text)) for text in window.sort("made_at")["report"]]
    from driftloop.registry import Registry

    registry = Registry(project)
    packages = {version: registry.package(version) for version in sorted({r.version for r in reports})}
    by_device: dict[tuple[str, str], list[DeviceReport]] = {}
    for report in reports:
        by_device.setdefault((report.device, report.version), []).append(report)
    views = [_view(project, packages[v], d, v, members) for (d, v), members in sorted(by_device.items())]
    views += [_view(project, packages[v], FLEET, v, [r for r in reports if r.version == v]) for v in packages]
    return views


def _view(project: Project, package: AnyPackage, device: str, version: str, reports: list[DeviceReport]) -> DeviceView:
    inputs = _merged([r.inputs for r in reports])
    predictions = _merged([r.predictions for r in reports])
    outcomes: dict[str, Outcome] = {}
    for report in reports:
        for target, outcome in report.outcomes.items():
            held = outcomes.get(target)
            outcomes[target] = outcome if held is None else held.merge(outcome)  # type: ignore[arg-type]
    return DeviceView(
        device=device,
        version=version,
        reports=len(reports),
        rows=sum(r.rows for r in reports),
        labelled=sum(r.labelled for r in reports),
        last_seen=max(r.made_at for r in reports),
        status={} if device == FLEET else max(reports, key=lambda r: r.made_at).status,
        inputs=_drift(project, package, "inputs", inputs),
        predictions=_drift(project, package, "predictions", predictions),
        metrics={target: outcome.metrics() for target, outcome in outcomes.items()},
    )


def _merged(profiles: list[Profile | None]) -> Profile | None:
    present = [p for p in profiles if p is not None and p.rows]
    if not present:
        return None
    total = present[0]
    for other in present[1:]:
        total = total.merge(other)
    return total


def _drift(project: Project, package: AnyPackage, part: str, current: Profile | None) -> DriftReport | None:
    """``current`` against the version's training profile of ``part``: a table model's inputs
    (without the targets) or predictions, an image model's images' statistics or outputs."""
    if current is None:
        return None
    key = IMAGE_PARTS[part] if isinstance(package, ImagePackage) else part
    reference = Profile.from_dict(package.reference[key])
    if isinstance(package, ModelPackage) and part == "inputs":
        reference = Profile(reference.rows, {n: p for n, p in reference.columns.items() if n not in package.targets})
    calibration = package.reference.get(CALIBRATION, {}).get(key)
    importance = package.reference.get("importance") if part == "inputs" else None
    return compare(reference, current, project.settings.monitor, calibration, importance)


def _summary(drift: DriftReport | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    return {
        "drift_share": drift.drift_share,
        "dataset_drift": drift.dataset_drift,
        "drifted": drift.drifted,
        "statistics": {c.column: {"test": c.result.test, "statistic": c.result.statistic,
                                  "threshold": c.result.threshold} for c in drift.columns},
    }  # fmt: skip


__all__ = ["FLEET", "DeviceView", "fleet_view"]
