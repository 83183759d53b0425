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

from driftloop.edge.logbook import DeviceLog
from driftloop.errors import RequestRefused
from driftloop.serve.routes import Call, Route, json_body

# Labels one request may carry.
MAX_LABELS = 10_000


LABELS_BODY = {
    "type": "object",
    "properties": {"labels": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": MAX_LABELS}},
    "required": ["labels"],
}
RECEIVED = {
    "type": "object",
    "properties": {"received": {"type": "integer"}, "new": {"type": "integer"}},
    "required": ["received", "new"],
}


def label_route(log: DeviceLog, targets: dict[str, list[str] | None]) -> Route:
    """``POST /v1/labels``, keeping labels in ``log``; ``targets`` are what the model predicts,
    each with its classes (None for a number: :func:`~driftloop.runtime.kinds.targets_of`)."""

    async def labels(call: Call) -> dict[str, int]:
        truth = checked(items_of(call.body), targets)
        return {"received": len(truth), "new": await asyncio.to_thread(log.add_labels, truth)}

    return Route(method="POST", path="/v1/labels", handler=labels, summary="Labels for this device's predictions, "
                 "kept on the device", answer_schema=RECEIVED, refusals=("409", "413", "422", "503"),
                 body_schema=LABELS_BODY, parse=json_body)  # fmt: skip


def items_of(body: Any) -> list[dict[str, Any]]:
    """The labels of a body ``{"labels": [{...}, ...]}``; a 422 saying the shape when it is not."""
    items = body.get("labels") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LABELS or not all(isinstance(i, dict) for i in items):
        raise RequestRefused(f'the body is {{"labels": [{{"prediction_id": "...", "<target>": value}}, ...]}} with '
                             f"1 to {MAX_LABELS} labels")  # fmt: skip
    return items


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


__all__ = ["MAX_LABELS", "checked", "items_of", "label_route"]
