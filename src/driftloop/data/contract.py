"""The data contract: what a valid row looks like, column by column.

A contract names each column's type, role and rules. Row-level rules (type, nullability,
range, allowed values, key uniqueness) send a breaking row to quarantine; batch-level rules
(required column missing, a column mostly unparseable, too many nulls, no rows) refuse the
whole batch. ``driftloop.draft`` writes a first contract from a sample for a person to edit.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftloop.data.clock import UTC_ZONE, EventClock, as_sent, zone
from driftloop.errors import ContractError

DEFAULT_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    # With an offset ("Z", "+01:00", "+0530"): the text says its own instant.
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%d %H:%M%#z",
    # Slashes, year first, as spreadsheets and many exports write them ("2012/01/31 06:00").
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")
# Columns an event time can be assembled from, in this order (the first three are required).
TIME_PARTS = ("year", "month", "day", "hour", "minute", "second")
EpochUnit = Literal["s", "ms", "us"]


class ColumnType(StrEnum):
    """The type a column's values must parse to."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    DATE = "date"
    DATETIME = "datetime"

    @property
    def polars(self) -> pl.DataType:
        """The Polars type values of this column are stored as."""
        return {
            "int": pl.Int64(),
            "float": pl.Float64(),
            "bool": pl.Boolean(),
            "string": pl.String(),
            "date": pl.Date(),
            "datetime": pl.Datetime("us"),
        }[self.value]

    @property
    def is_numeric(self) -> bool:
        return self in (ColumnType.INT, ColumnType.FLOAT)

    @property
    def is_temporal(self) -> bool:
        return self in (ColumnType.DATE, ColumnType.DATETIME)


# Target types whose values are labels: always a classification target.
LABEL_TYPES = (ColumnType.STRING, ColumnType.BOOL)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


class Role(StrEnum):
    """What a column is for."""

    ID = "id"
    EVENT_TIME = "event_time"
    FEATURE = "feature"
    TARGET = "target"
    SEGMENT = "segment"
    IGNORE = "ignore"


class Column(BaseModel):
    """One column of the contract."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    type: ColumnType
    role: Role = Role.FEATURE
    nullable: bool = True
    required: bool = Field(True, description="A batch without this column is refused.")
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = Field(None, description="Allowed values of a string column.")
    classes: list[str] | None = Field(
        None,
        description="The labels of a classification target, as text (a string, int or bool target); a label "
        "outside them is quarantined. A string or bool target is a classification target, an int one when it "
        "names its classes.",
    )
    formats: list[str] | None = Field(None, description="strptime formats tried in order (date/datetime).")
    unit: EpochUnit | None = Field(
        None,
        description="A datetime written as a number of seconds (s), milliseconds (ms) or microseconds (us) "
        "since 1970-01-01 UTC.",
    )
    parts: list[str] | None = Field(
        None,
        description="Assemble this date or datetime from these columns of the input, holding the year, then "
        "optionally the month, day, hour, minute and second, in that order (a date of a year alone is its "
        "1 January); a datetime names at least the hour.",
    )
    max_null_rate: float | None = Field(None, ge=0.0, le=1.0, description="Refuse a batch above this.")
    from_row: bool = Field(
        False,
        description="An id made from the row itself, for an event log where no column tells rows apart: a "
        "hash of its values (targets aside) and its place among identical rows of its batch.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if (self.min is not None or self.max is not None) and not self.type.is_numeric:
            raise ValueError(f"min/max apply to int and float columns, not {self.type.value}")
        if self.allowed is not None and self.type is not ColumnType.STRING:
            raise ValueError(f"allowed values apply to string columns, not {self.type.value}")
        if self.formats is not None and not self.type.is_temporal:
            raise ValueError(f"formats apply to date and datetime columns, not {self.type.value}")
        if self.classes is not None or (self.role is Role.TARGET and self.type in LABEL_TYPES):
            self._check_classes()
        if self.unit is not None and self.type is not ColumnType.DATETIME:
            raise ValueError(f"an epoch unit applies to datetime columns, not {self.type.value}")
        if self.parts is not None:
            self._check_parts()
        if self.role is Role.EVENT_TIME and not self.type.is_temporal:
            raise ValueError(f"an event_time column must be date or datetime, not {self.type.value}")
        if self.from_row and (self.role is not Role.ID or self.type is not ColumnType.STRING):
            raise ValueError("an id made from the row (from_row) is a string column with the role id")
        if self.role in (Role.ID, Role.EVENT_TIME) and self.nullable:
            self.nullable = False  # a key column can never be null; say so rather than fail later
        return self

    def _check_classes(self) -> None:
        if self.role is not Role.TARGET or self.type not in (*LABEL_TYPES, ColumnType.INT):
            raise ValueError(
                f"classes belong to a string, bool or int target, not a {self.type.value} {self.role.value}"
            )
        if self.type is ColumnType.BOOL:
            self.classes = self.classes or ["false", "true"]
        if self.classes is None:
            raise ValueError('a string target is a classification target: list its labels in classes = ["a", "b"]')
        if len(self.classes) < 2 or len(set(self.classes)) < len(self.classes):
            raise ValueError(f"classes need at least two different labels, got {self.classes}")
        if self.type is ColumnType.INT and not all(_is_int(c) for c in self.classes):
            raise ValueError(f"the classes of an int target are whole numbers, got {self.classes}")
        if self.type is ColumnType.BOOL and sorted(self.classes) != ["false", "true"]:
            raise ValueError(f'the classes of a bool target are ["false", "true"], got {self.classes}')
        if self.allowed is not None:
            raise ValueError("a classification target lists its labels in classes, not allowed")

    @property
    def is_classification(self) -> bool:
        """Whether this column is a target with labels (classes) rather than a number to predict."""
        return self.classes is not None

    def _check_parts(self) -> None:
        parts = self.parts or []
        if not self.type.is_temporal or self.unit is not None or self.formats is not None:
            raise ValueError("parts assemble a date or datetime column; they go without unit and formats")
        fewest, most = (1, 3) if self.type is ColumnType.DATE else (4, len(TIME_PARTS))
        if not fewest <= len(parts) <= most or len(set(parts)) < len(parts):
            raise ValueError(
                f"the parts of a {self.type.value} name its {', '.join(TIME_PARTS[:fewest])} and optionally "
                f"{', '.join(TIME_PARTS[fewest:most])}, in that order, each a different column; got {parts}"
            )

    @property
    def parse_formats(self) -> tuple[str, ...]:
        if self.formats:
            return tuple(self.formats)
        return DEFAULT_DATE_FORMATS if self.type is ColumnType.DATE else DEFAULT_DATETIME_FORMATS


class Contract(BaseModel):
    """The columns of a dataset and the rules rows and batches must follow."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, Column]
    duplicates: Literal["reject", "keep_latest"] = Field(
        "reject",
        description="A row whose key (id and/or event time) was already seen: quarantine it (reject), "
        "or accept it and let it replace the earlier one (keep_latest).",
    )
    max_unparseable_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="Refuse a batch if more than this share of a column fails to parse."
    )
    timezone: str = Field(
        UTC_ZONE,
        description="IANA zone of the data's local time: naive times are read in it, and the loop's day runs "
        "from its midnight. Times are stored in UTC.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zone(name)
        except ContractError as exc:
            raise ValueError(str(exc)) from exc
        return name

    @model_validator(mode="after")
    def _one_key_each(self) -> Self:
        for name, column in self.columns.items():
            absent = [p for p in column.parts or () if p not in self.columns]
            if absent:
                raise ValueError(f"column {name!r} is assembled from {absent}, which the contract does not list")
        clocks = self.with_role(Role.EVENT_TIME)
        if len(clocks) > 1:
            raise ValueError(f"at most one event_time column, found {clocks}")
        return self

    def with_role(self, *roles: Role) -> list[str]:
        """Names of the columns with any of these roles, in contract order."""
        return [n for n, c in self.columns.items() if c.role in roles]

    @property
    def id_columns(self) -> list[str]:
        """The columns that together name an entity (a flight is its carrier, number and origin)."""
        return self.with_role(Role.ID)

    @property
    def row_id_column(self) -> str | None:
        """The id made from each row's values (``from_row``), if the contract has one."""
        return next((n for n, c in self.columns.items() if c.from_row), None)

    def entity_id(self) -> pl.Expr:
        """A row's entity as the text ``predictions.entity_id`` holds: the id's value, or a JSON
        object of the id columns when several name an entity together (null without an id)."""
        ids = self.id_columns
        if not ids:
            return pl.lit(None, pl.String)
        if len(ids) == 1:
            return pl.col(ids[0]).cast(pl.String)
        return pl.struct(
            pl.col(n).cast(pl.String) if self.columns[n].type.is_temporal else pl.col(n) for n in ids
        ).struct.json_encode()

    def ids_from_entity(self, entity: pl.Expr) -> list[pl.Expr]:
        """The id columns, typed, read back from an :meth:`entity_id` expression."""
        ids = self.id_columns
        if not ids:
            return []
        if len(ids) == 1:
            return [_from_text(entity, self.columns[ids[0]].type).alias(ids[0])]
        # JSON has no date type: a temporal id was written as text.
        shape = pl.Struct({n: pl.String if self.columns[n].type.is_temporal else self.columns[n].type.polars
                           for n in ids})  # fmt: skip
        decoded = entity.str.json_decode(shape)
        return [_from_text(decoded.struct.field(n), self.columns[n].type).alias(n) for n in ids]

    @property
    def event_time_column(self) -> str | None:
        return next(iter(self.with_role(Role.EVENT_TIME)), None)

    @property
    def clock(self) -> EventClock | None:
        """The event time's mapping to instants and days, in the contract's zone (None without one)."""
        name = self.event_time_column
        if name is None:
            return None
        return EventClock(name, self.columns[name].type is ColumnType.DATE, self.timezone)

    @property
    def key(self) -> list[str]:
        """The columns that identify a row: entity id and event time, whichever exist."""
        return self.with_role(Role.ID, Role.EVENT_TIME)

    @property
    def targets(self) -> list[str]:
        return self.with_role(Role.TARGET)

    @property
    def class_targets(self) -> list[str]:
        """The targets that are labels (classification), in contract order."""
        return [t for t in self.targets if self.columns[t].is_classification]

    @property
    def stored_columns(self) -> list[str]:
        """Columns kept in the lake (every column not marked ignore)."""
        return [n for n, c in self.columns.items() if c.role is not Role.IGNORE]

    def as_sent(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Stored rows as a caller would send them: their datetimes on the zone's wall clock (see
        :func:`driftloop.data.clock.as_sent`)."""
        datetimes = [n for n, c in self.columns.items() if c.type is ColumnType.DATETIME]
        return as_sent(rows, datetimes, self.timezone)

    def polars_schema(self) -> dict[str, pl.DataType]:
        """Polars schema of the stored columns."""
        return {n: self.columns[n].type.polars for n in self.stored_columns}


def _from_text(values: pl.Expr, ctype: ColumnType) -> pl.Expr:
    """``values`` (text, or already typed) as ``ctype``: dates and datetimes are parsed from ISO text."""
    if ctype is ColumnType.DATE:
        return values.cast(pl.String).str.to_date()
    if ctype is ColumnType.DATETIME:
        return values.cast(pl.String).str.to_datetime(time_unit="us")
    if ctype is ColumnType.BOOL:
        return values.cast(pl.String) == "true"
    return values.cast(ctype.polars)
