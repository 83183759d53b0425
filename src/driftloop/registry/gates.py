"""Promotion gates: checks that return results; :mod:`driftloop.registry.registry` decides on them.

dev -> qa: the model loads from the registry in a fresh process, scores contract-valid rows
(or images) with finite outputs, refuses invalid ones with a clear error, meets the p99
single-row latency budget, meets the metric floors and beats its baseline on its test window
(ridge for a number and logistic regression for a label of a table; the training images' class
shares for an image network).

qa -> prod: the champion is scored on the rows of the challenger's test window (the newest
labelled days of its training window, held out of the fit that measured it);
:func:`compare` says whether the challenger improves the decisive metric by the margin
without any target getting worse beyond the tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.model.metrics import HIGHER_IS_BETTER, METRICS, target_metrics
from driftloop.registry.decisions import GateResult
from driftloop.runtime.package import ModelPackage
from driftloop.settings.promote import PromoteSettings

# Single-row predictions timed for the latency gate, and the time the fresh process may take.
LATENCY_ROWS = 200
FRESH_PROCESS_SECONDS = 300
# The module the fresh process runs (by name: the gates themselves import nothing of MLflow).
FRESH_LOAD = "driftloop.registry.mlflow.fresh_load"


@dataclass(frozen=True)
class Candidate:
    """What the dev -> qa gates exercise: the version registered at ``model_uri`` in MLflow at
    ``uris`` (tracking, registry), its recorded ``metrics`` (``{"network"|"baseline": {split:
    {target: {metric: value}}}}``), model inputs it must score (``valid``) and refuse
    (``invalid``), as its pyfunc takes them, and what its baseline is, for people."""

    model_uri: str
    uris: tuple[str, str]
    metrics: dict[str, Any]
    valid: pl.DataFrame
    invalid: pl.DataFrame
    baseline: str = "the linear baseline"
    unit: str = "row"  # what one input is called: a row, or an image


def qa_gates(candidate: Candidate, settings: PromoteSettings) -> list[GateResult]:
    """Every dev -> qa gate for ``candidate``."""
    report = fresh_process_report(candidate)
    return [
        _loads(report),
        _finite(report, candidate.unit),
        _refuses(report),
        _latency(report, settings.latency_budget_ms, candidate.unit),
        _floors(candidate.metrics, settings),
        _beats_baseline(candidate.metrics, settings, candidate.baseline),
    ]


def fresh_process_report(candidate: Candidate) -> dict[str, Any]:
    """Load and exercise the registered model in a new Python process (see ``fresh_load``), from
    MLflow at the candidate's URIs."""
    tracking_uri, registry_uri = candidate.uris
    model_uri = candidate.model_uri
    with tempfile.TemporaryDirectory() as folder:
        valid, invalid = Path(folder) / "valid.parquet", Path(folder) / "invalid.parquet"
        candidate.valid.write_parquet(valid)
        candidate.invalid.write_parquet(invalid)
        request = {
            "model_uri": model_uri,
            "valid": str(valid),
            "invalid": str(invalid),
            "latency_rows": LATENCY_ROWS,
        }
        done = subprocess.run(
            [sys.executable, "-m", FRESH_LOAD],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=FRESH_PROCESS_SECONDS,
            check=False,
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": registry_uri},
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"loaded": False, "error": f"the fresh process failed (exit {done.returncode}): {done.stderr[-2000:]}"}
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def invalid_rows(sample: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Rows that break the contract: a bounded column pushed far out of range, else a required column dropped."""
    rows = sample.head(3)
    for name, column in contract.columns.items():
        if name in rows.columns and column.max is not None and rows.schema[name].is_numeric():
            beyond = column.max + 1000 * (abs(column.max) + 1)
            return rows.with_columns(pl.lit(beyond).cast(rows.schema[name]).alias(name))
    required = [n for n, c in contract.columns.items() if c.required and n in rows.columns]
    return rows.drop(required[:1])


def compare(
    challenger: dict[str, dict[str, float]], champion: dict[str, dict[str, float]], settings: PromoteSettings
) -> GateResult:
    """Is the challenger better on the decisive metric (each target's own: ``metric`` for a
    number, ``class_metric`` for a label; averaged over targets, relative to the champion) by
    at least the margin, with no target worse than the tolerance?"""
    decisive = {t: settings.decisive(champion[t]) for t in champion}
    changes = {t: _relative_gain(challenger[t][m], champion[t][m], HIGHER_IS_BETTER[m]) for t, m in decisive.items()}
    overall = sum(changes.values()) / len(changes)
    worst_target, worst = min(changes.items(), key=lambda item: item[1])
    metric = "/".join(sorted(set(decisive.values())))
    numbers = {
        "metric": metric,
        "metrics": decisive,
        "relative_gain": changes,
        "mean_gain": overall,
        "challenger": challenger,
        "champion": champion,
    }
    if worst < -settings.tolerance:
        detail = (
            f"{worst_target} {metric} is {-worst:.1%} worse than the champion's (tolerance {settings.tolerance:.1%})"
        )
        return GateResult("beats champion", False, detail, numbers)
    if overall < settings.margin:
        detail = f"{metric} improves by {overall:.2%} on average, less than the required margin {settings.margin:.2%}"
        return GateResult("beats champion", False, detail, numbers)
    return GateResult("beats champion", True, f"{metric} improves by {overall:.2%} on average", numbers)


def score(package: ModelPackage, rows: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Metrics per target of ``package`` on typed feature-table ``rows`` that carry the targets."""
    predicted = package.predict_valid(rows)
    contract = package.contract
    return {
        t: target_metrics(
            rows.get_column(t), predicted.select(package.heads.columns(t)), t, contract.columns[t].classes
        )
        for t in package.targets
    }


def _relative_gain(new: float, old: float, higher_is_better: bool) -> float:
    scale = abs(old) if abs(old) > 1e-12 else 1.0
    return (new - old) / scale if higher_is_better else (old - new) / scale


def _loads(report: dict[str, Any]) -> GateResult:
    if report.get("loaded"):
        return GateResult("loads in a fresh process", True, "loaded from the registry and scored rows")
    return GateResult("loads in a fresh process", False, str(report.get("error", "did not load")))


def _finite(report: dict[str, Any], unit: str) -> GateResult:
    bad = report.get("nonfinite_outputs")
    if bad is None:
        return GateResult("finite outputs", False, str(report.get("error", "no rows were scored")))
    numbers = {"rows": report.get("rows_scored"), "nonfinite": bad}
    detail = f"{bad} NaN/inf outputs on {report.get('rows_scored')} {unit}s"
    return GateResult("finite outputs", bad == 0, detail, numbers)


def _refuses(report: dict[str, Any]) -> GateResult:
    refusal = report.get("refusal")
    if "refusal" not in report:
        return GateResult("refuses invalid input", False, str(report.get("error", "not checked")))
    if refusal is None:
        return GateResult("refuses invalid input", False, "rows breaking the contract were scored instead of refused")
    return GateResult("refuses invalid input", True, str(refusal)[:300])


def _latency(report: dict[str, Any], budget_ms: float, unit: str) -> GateResult:
    latency = report.get("latency_ms")
    if not latency:
        return GateResult("latency", False, str(report.get("error", "not measured")))
    passed = latency["p99"] <= budget_ms
    detail = f"p99 {latency['p99']:.1f} ms (p50 {latency['p50']:.1f} ms) for one {unit}, budget {budget_ms:.0f} ms"
    return GateResult("latency", passed, detail, latency)


def _floors(metrics: dict[str, Any], settings: PromoteSettings) -> GateResult:
    test = metrics["network"]["test"]
    failures, numbers = [], {}
    for key, floor in settings.floors.items():
        target, _, metric = key.partition(".")
        if target not in test or metric not in test[target]:
            known = ", ".join(test.get(target, {})) or " ".join(METRICS)
            failures.append(f"{key}: no such target.metric (targets {sorted(test)}, metrics {known})")
            continue
        value = test[target][metric]
        numbers[key] = {"value": value, "floor": floor}
        if (value < floor) if HIGHER_IS_BETTER[metric] else (value > floor):
            failures.append(f"{key} = {value:.4g}, floor {floor:.4g}")
    detail = "; ".join(failures) if failures else f"{len(settings.floors)} floor(s) met"
    return GateResult("metric floors", not failures, detail, numbers)


def _beats_baseline(metrics: dict[str, Any], settings: PromoteSettings, name: str) -> GateResult:
    network, baseline = metrics["network"]["test"], metrics["baseline"]["test"]
    decisive = {t: settings.decisive(network[t]) for t in network}
    gains = {t: _relative_gain(network[t][m], baseline[t][m], HIGHER_IS_BETTER[m]) for t, m in decisive.items()}
    mean = sum(gains.values()) / len(gains)
    metric = "/".join(sorted(set(decisive.values())))
    numbers = {"metric": metric, "metrics": decisive, "network": network, "baseline": baseline, "relative_gain": gains}
    detail = f"test {metric} {mean:+.1%} vs {name} (may fall short by {settings.baseline_margin:.1%})"
    passed = mean > -settings.baseline_margin
    return GateResult("beats baseline", passed, detail, numbers)
