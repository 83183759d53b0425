"""Feature definitions as they are declared in ``driftloop.toml`` and carried in a model package.

Two kinds, told apart by their keys::

    [[features]]                      # a derived column: arithmetic over columns of the same row
    name = "temp_gap"
    expr = "clip(T_out - T1, -30, 30)"

    [[features]]                      # parts of a date or datetime, optionally sin/cos encoded
    column = "date"
    parts = ["hour", "day_of_week", "month"]
    cyclic = true
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from driftloop.errors import FeatureError

Part = Literal["hour", "minute", "minute_of_day", "day_of_week", "day_of_month", "day_of_year", "month", "year"]
# The period of each cyclic part, and what its first value is (so sin/cos start at angle 0).
CYCLES: dict[str, tuple[int, int]] = {
    "hour": (24, 0),
    "minute": (60, 0),
    "minute_of_day": (1440, 0),
    "day_of_week": (7, 1),
    "day_of_month": (31, 1),
    "day_of_year": (366, 1),
    "month": (12, 1),
}
# A namespace the compiler builds with: narwhals (any backend) or polars itself (the fast path


class ExpressionFeature(BaseModel):
    """A derived column computed from columns of the same row."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    expr: str = Field(min_length=1, description="e.g. '(T1 + T2) / 2', 'clip(x, 0, 100)', 'log1p(a / b)'")

    @property
    def outputs(self) -> list[str]:
        return [self.name]


class DatetimeFeature(BaseModel):
    """Calendar parts of a date or datetime column, as numbers or as sin/cos pairs."""

    model_config = ConfigDict(extra="forbid")

    column: str
    parts: list[Part] = Field(min_length=1)
    cyclic: bool = Field(True, description="Encode each cyclic part as a sin/cos pair.")
    name: str | None = Field(None, description="Prefix of the output columns (default: the column).")

    @property
    def outputs(self) -> list[str]:
        prefix = self.name or self.column
        names = []
        for part in self.parts:
            if self.cyclic and part in CYCLES:
                names += [f"{prefix}_{part}_sin", f"{prefix}_{part}_cos"]
            else:
                names.append(f"{prefix}_{part}")
        return names


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "expression" if "expr" in value else "datetime"
    return "expression" if isinstance(value, ExpressionFeature) else "datetime"


FeatureDef = Annotated[
    Annotated[ExpressionFeature, Tag("expression")] | Annotated[DatetimeFeature, Tag("datetime")],
    Discriminator(_kind),
]
_DEFS = TypeAdapter(list[FeatureDef])


def parse_definitions(raw: Any) -> list[ExpressionFeature | DatetimeFeature]:
    """Validate feature definitions from the project file or a model package."""
    try:
        return _DEFS.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FeatureError(f"feature definition {where}: {first['msg']} (got {first.get('input')!r})") from exc
