"""``POST /v1/labels`` on a device: the truth about its own predictions, kept on the device.

A body names predictions by id with their targets' true values, ``{"labels": [{"prediction_id":
"...", "y": 3.2}, ...]}``; each value is checked against what the model predicts (a number, or one
of a label's classes), and all are kept in one transaction or none is. The
device reports only the outcomes (:mod:`driftloop.edge.reports`), never the labels.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from driftloop.edge.logbook import DeviceLog
from driftloop.errors import RequestRefused
from driftloop.serve.routes import refusal_responses

# Labels one request may carry.
MAX_LABELS = 10_000


class Labels(BaseModel):
    """Predictions of this device, by id, with their targets' true values."""

    labels: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LABELS)


def add_label_route(app: FastAPI, log: DeviceLog, targets: dict[str, list[str] | None]) -> None:
    """Add ``POST /v1/labels`` to ``app``, keeping labels in ``log``; ``targets`` are what the
    model predicts, each with its classes (None for a number: :func:`~driftloop.runtime.kinds.targets_of`)."""

    @app.post("/v1/labels", summary="Labels for this device's predictions, kept on the device",
              responses=refusal_responses("409", "422", "503"))  # fmt: skip
    async def labels(body: Labels) -> dict[str, int]:
        truth = checked(body.labels, targets)
        return {"received": len(truth), "new": await asyncio.to_thread(log.add_labels, truth)}


def checked(items: list[dict[str, Any]], targets: dict[str, list[str] | None]) -> dict[str, dict[str, Any]]:
    """Prediction id -> target values, each checked against ``targets`` (a number, or one of the
    classes); a 422 naming every label that is not."""
    truth: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        identifier = item.get("prediction_id")
        values = {k: v for k, v in item.items() if k != "prediction_id"}
        problem = _problem(identifier, values, targets, truth)
        if problem:
            errors.append({"label": position, "detail": problem})
        else:
            truth[str(identifier)] = values
    if errors:
        raise RequestRefused(f"{len(errors)} of {len(items)} labels are not valid; none was kept", errors=errors[:50])
    return truth


def _problem(
    identifier: Any, values: dict[str, Any], targets: dict[str, list[str] | None], seen: dict[str, Any]
) -> str | None:
    if not isinstance(identifier, str) or not identifier:
        return "each label needs its prediction's 'prediction_id' (text)"
    if identifier in seen:
        return f"the prediction {identifier!r} is labelled twice in this request"
    unknown = [k for k in values if k not in targets]
    if unknown or not values:
        return f"a label gives values of the targets {list(targets)}, not {unknown or 'none'}"
    for target, value in values.items():
        classes = targets[target]
        if value is None:
            return f"{target} is null: leave out a target whose true value is not known yet"
        if classes is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)  # JSON's true is "true"
            if text not in classes:
                return f"{target} is one of {classes}, not {value!r}"
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{target} is a finite number, not {value!r}"
    return None


__all__ = ["MAX_LABELS", "add_label_route", "checked"]
