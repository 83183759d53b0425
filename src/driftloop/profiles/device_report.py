"""What a device sends home instead of its rows: the profiles of the inputs it answered and of
its answers, on its model version's reference bins, and the outcomes of the predictions it got
labels for. Two reports of the same version merge exactly, which is what makes a fleet view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from driftloop.profiles.outcomes import Outcome, from_dict, to_dict
from driftloop.profiles.profile import Profile

# Longest a device's name may be: it keys the central table and titles the fleet view.
MAX_NAME = 200


@dataclass(frozen=True)
class DeviceReport:
    """One report of a device about one model version. ``report_id`` names the rows it covers,
    so a report sent twice (the answer lost on the way back) is stored once."""

    report_id: str
    device: str
    model: str
    version: str
    made_at: datetime
    rows: int  # predictions profiled
    since: datetime | None  # the first and last of them, when they were scored
    until: datetime | None
    inputs: Profile | None
    predictions: Profile | None
    labelled: int = 0  # predictions whose labels came in since the last report
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)  # of the version serving: its health, the versions kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "device": self.device,
            "model": self.model,
            "version": self.version,
            "made_at": self.made_at.isoformat(),
            "rows": self.rows,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "inputs": self.inputs.to_dict() if self.inputs else None,
            "predictions": self.predictions.to_dict() if self.predictions else None,
            "labelled": self.labelled,
            "outcomes": {target: to_dict(o) for target, o in self.outcomes.items()},
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """A report from :meth:`to_dict`'s JSON; a ValueError naming what is missing or wrong."""
        if not isinstance(data, dict):
            raise ValueError("a device report is a JSON object")
        try:
            names = {k: str(data[k]) for k in ("report_id", "device", "model", "version")}
            too_long = [k for k, v in names.items() if not v or len(v) > MAX_NAME]
            if too_long:
                raise ValueError(f"{too_long} must be 1 to {MAX_NAME} characters")
            report = cls(
                **names,
                made_at=_instant(data["made_at"]),
                rows=int(data["rows"]),
                since=_instant(data["since"]) if data.get("since") else None,
                until=_instant(data["until"]) if data.get("until") else None,
                inputs=Profile.from_dict(data["inputs"]) if data.get("inputs") else None,
                predictions=Profile.from_dict(data["predictions"]) if data.get("predictions") else None,
                labelled=int(data.get("labelled", 0)),
                outcomes={str(t): from_dict(o) for t, o in (data.get("outcomes") or {}).items()},
                status=dict(data.get("status") or {}),
            )
        except KeyError as exc:
            raise ValueError(f"a device report needs {exc}") from exc
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"a device report has a field of the wrong type: {exc}") from exc
        if report.rows < 0 or report.labelled < 0:
            raise ValueError("a device report's rows and labelled are counts, not negative")
        return report


def _instant(text: Any) -> datetime:
    """An ISO 8601 time with its offset (a device's clock says which zone it means)."""
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"the time {text!r} has no UTC offset")
    return moment


__all__ = ["MAX_NAME", "DeviceReport"]
