"""Draft a data contract from a sample, for a person to review and edit.

The draft records what the sample shows: each column's narrowest type, a range around the
observed one, its categories when there are few, and whether it had nulls. A range is a
validity bound, not a description of today's data: values that merely drift (a warmer month)
must pass and be caught by monitoring, so the observed span is widened by itself on each side
(a count, or a measure that reaches zero and never goes below, stays non-negative: one seen
only above zero may cross it later). Tighten ranges to what the domain allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from driftloop.data.clock import UTC_ZONE
from driftloop.data.contract import LABEL_TYPES, TIME_PARTS, Column, ColumnType, Contract, EpochUnit, Role
from driftloop.data.parse import assemble_time, clean_text, epoch_instants, parse_column, unparsed
from driftloop.data.validate import check_batch
from driftloop.errors import ContractError

# A sample column with at most this many distinct strings is drafted as a category with allowed values.
MAX_DRAFTED_CATEGORIES = 50
# A drafted range reaches this many observed spans beyond the observed min and max.
RANGE_MARGIN = 1.0
# Name of an event time assembled from parts (``--time year,month,day,hour``).
ASSEMBLED_TIME = "event_time"
# Name of the id made from each row's values when rows share their event time and nothing names them.
ROW_ID = "row_id"
# Numbers read as an epoch event time: the largest magnitude of each unit (seconds up to the year
# 5138, milliseconds and microseconds the same span) and the smallest (1973) of any.
EPOCH_LIMITS: tuple[tuple[float, EpochUnit], ...] = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
EPOCH_FLOOR = 1e8
# An int event-time column whose values all lie in this range holds years.
MIN_YEAR, MAX_YEAR = 1000, 2999
# A feature whose values are all different over at least this many rows looks like an id.
MIN_ROWS_FOR_ID = 20
# A numeric feature this correlated with a target looks like a copy of it.
COPY_CORRELATION = 0.999


def spread_sample(frame: pl.DataFrame, rows: int) -> pl.DataFrame:
    """At most ``rows`` rows taken evenly over the whole of ``frame``, in its order: a file sorted
    by time then gives every season to the draft, not only its first."""
    if frame.height <= rows:
        return frame
    step = frame.height / rows
    return frame[[int(i * step) for i in range(rows)]]


def draft_contract(
    sample: pl.DataFrame,
    *,
    ids: tuple[str, ...] = (),
    time_column: str | None = None,
    targets: tuple[str, ...] = (),
    labels: tuple[str, ...] = (),
    timezone: str = UTC_ZONE,
) -> Contract:
    """Draft a contract from a sample: types, observed ranges, categories and nullability.

    ``sample`` may hold strings (a CSV read as text) or typed columns. The ranges drafted are
    the sample's own min and max; widen them to what the domain allows before production.
    ``ids`` name the columns that together identify an entity (one, or several such as carrier,
    flight and origin); without them, rows that share their event time get a ``row_id`` made
    from their values (:mod:`driftloop.data.row_id`). ``time_column`` may name several columns,
    comma-separated, holding the year, then optionally the month, day, hour, minute and second,
    or one column of years: the event time is then assembled from them. A numeric time column
    is read as seconds, milliseconds or microseconds since the epoch, by magnitude. A string or
    bool target is a label (classification), and so is an int target holding only 0 and 1 or
    named in ``labels`` (grades 1 to 5); any other number is a regression target.
    """
    targets = (*targets, *(label for label in labels if label not in targets))
    parts = _time_parts(time_column) or _year_part(sample, time_column)
    if parts:
        time_column = ASSEMBLED_TIME
    for name in (*ids, *parts, *targets, *([] if parts else [time_column])):
        if name is not None and name not in sample.columns:
            raise ContractError(
                f"column {name!r} given as a role is not in the sample; its columns are {sample.columns}"
            )
    inferred = {name: _infer(sample.get_column(name)) for name in sample.columns}
    if parts:
        inferred = {ASSEMBLED_TIME: _assembled(sample, parts), **inferred}
    unit = _epoch_unit(*inferred[time_column]) if time_column in sample.columns else None
    if unit is not None:
        numbers = inferred[str(time_column)][0]
        inferred[str(time_column)] = (
            numbers.to_frame().select(epoch_instants(pl.all(), unit)).to_series(),
            ColumnType.DATETIME,
        )
    if time_column is None:
        clocks = [n for n, (_, t) in inferred.items() if t.is_temporal and n not in ids and n not in targets]
        if len(clocks) == 1:  # one obvious clock: make it the event time
            time_column = clocks[0]
    columns = {
        name: _draft_column(values, ctype, _role(name, ctype, ids, time_column, targets), name in labels)
        for name, (values, ctype) in inferred.items()
    }
    if parts:  # the parts are read to build the time, not stored beside it
        columns[ASSEMBLED_TIME] = columns[ASSEMBLED_TIME].model_copy(update={"parts": parts})
        columns.update({p: columns[p].model_copy(update={"role": Role.IGNORE}) for p in parts})
    if unit is not None:
        columns[str(time_column)] = columns[str(time_column)].model_copy(update={"unit": unit})
    if not ids and time_column in inferred and inferred[str(time_column)][0].is_duplicated().any():
        # Rows share their event time and nothing names them: each is named by its values.
        made = Column(type=ColumnType.STRING, role=Role.ID, from_row=True, required=False)
        columns = {_free_name(ROW_ID, columns): made, **columns}
    return Contract(columns=columns, timezone=timezone)


def _free_name(name: str, taken: dict[str, Column]) -> str:
    """``name``, or with underscores before it until no column of ``taken`` has it."""
    while name in taken:
        name = f"_{name}"
    return name


@dataclass(frozen=True)
class DraftReview:
    """What a person should know about a drafted contract: each column's share of missing
    values in the sample, and columns that look wrong for their role."""

    null_rates: dict[str, float]
    warnings: list[str]


def review_draft(sample: pl.DataFrame, contract: Contract) -> DraftReview:
    """Read ``sample`` through ``contract`` and point out columns that look like an id, are
    constant, or copy a target (a feature known only with the label leaks it)."""
    typed = check_batch(sample, contract, check_keys=False).valid
    present = [n for n in contract.stored_columns if n in typed.columns]
    null_rates = {n: typed.get_column(n).null_count() / max(typed.height, 1) for n in present}
    warnings = _repeated_keys(typed, contract)
    if contract.row_id_column is not None:
        warnings.append(
            f"{contract.row_id_column}: rows share their event time and no column tells them apart, so each row "
            "is named by a hash of its values and its place among identical rows of its batch; labels then "
            "come with their rows (pass --id if a column does tell rows apart)"
        )
    features = [n for n in present if contract.columns[n].role is Role.FEATURE]
    for name in features:
        values = typed.get_column(name).drop_nulls()
        distinct = values.n_unique()
        if distinct <= 1:
            shown = repr(values[0]) if values.len() else "no value"
            warnings.append(
                f"{name}: constant in the sample ({shown}); it teaches the model nothing: "
                'set role = "ignore" unless it varies later'
            )
        elif values.len() >= MIN_ROWS_FOR_ID and distinct == values.len() and not values.dtype.is_float():
            warnings.append(
                f"{name}: every value is different, like an id; pass it as --id, or set role = "
                '"ignore": a model cannot learn from a name it never sees again'
            )
        for target in contract.targets:
            if target in typed.columns and _copies(typed, name, target):
                warnings.append(
                    f"{name}: a copy of the target {target!r} in the sample; a feature known only with the "
                    'label leaks it: set role = "ignore"'
                )
    return DraftReview(null_rates, warnings)


def _repeated_keys(typed: pl.DataFrame, contract: Contract) -> list[str]:
    """A warning when the key (id and event time) repeats: ingest would quarantine the repeats."""
    key = [k for k in contract.key if k in typed.columns]
    if not key or typed.is_empty():
        return []
    repeats = typed.height - typed.select(key).n_unique()
    if not repeats:
        return []
    how = (
        "pass --id with the column, or comma-separated columns, that tell rows apart"
        if not contract.id_columns
        else "add the columns that tell them apart to --id, comma-separated"
    )
    return [
        f"{' + '.join(key)}: the key of a row repeats in {repeats:,} of {typed.height:,} sample rows; ingest "
        f'quarantines a repeated key (duplicates = "reject") or keeps the latest row ("keep_latest"): {how}'
    ]


def _copies(typed: pl.DataFrame, feature: str, target: str) -> bool:
    """Whether ``feature`` equals ``target`` (or is a linear function of it) wherever both are known."""
    both = typed.select(feature, target).drop_nulls()
    if both.height < 2:
        return False
    left, right = both.get_column(feature), both.get_column(target)
    if left.dtype.is_numeric() and right.dtype.is_numeric():
        correlation = both.select(pl.corr(feature, target)).item()
        return correlation is not None and abs(correlation) > COPY_CORRELATION
    return bool((left.cast(pl.String) == right.cast(pl.String)).all())


def _time_parts(time_column: str | None) -> list[str]:
    """The columns an event time is assembled from, when ``time_column`` names several."""
    if time_column is None or "," not in time_column:
        return []
    parts = [p.strip() for p in time_column.split(",") if p.strip()]
    if not 1 <= len(parts) <= len(TIME_PARTS):
        raise ContractError(
            f"--time {time_column!r}: an event time assembled from columns names the year column, then "
            f"optionally the month, day, hour, minute and second columns, comma-separated"
        )
    return parts


def _year_part(sample: pl.DataFrame, time_column: str | None) -> list[str]:
    """``[time_column]`` when it holds whole years (2016): the event time is then its 1 January."""
    if time_column is None or time_column not in sample.columns:
        return []
    values, ctype = _infer(sample.get_column(time_column))
    years = values.drop_nulls()
    is_year = ctype is ColumnType.INT and years.len() > 0 and bool(years.is_between(MIN_YEAR, MAX_YEAR).all())
    return [time_column] if is_year else []


def _assembled(sample: pl.DataFrame, parts: list[str]) -> tuple[pl.Series, ColumnType]:
    ctype = ColumnType.DATETIME if len(parts) > 3 else ColumnType.DATE
    column = Column(type=ctype, parts=parts)
    text = assemble_time(sample, ASSEMBLED_TIME, column)
    parsed = parse_column(text, Column(type=ctype))
    if unparsed(text, parsed, ctype).any() or parsed.is_null().all():
        shown = text.filter(unparsed(text, parsed, ctype)).head(3).to_list()
        raise ContractError(f"the columns {parts} do not make a valid {ctype.value} on every row, e.g. {shown}")
    return parsed, ctype


def _epoch_unit(values: pl.Series, ctype: ColumnType) -> EpochUnit | None:
    """The epoch unit a numeric event-time column is written in, judged by the size of its
    numbers; None for a column that is not numbers of an epoch's size."""
    largest = values.abs().max() if ctype.is_numeric else None
    if not isinstance(largest, int | float) or largest < EPOCH_FLOOR:
        return None
    return next((unit for limit, unit in EPOCH_LIMITS if largest < limit), None)


def _role(
    name: str, ctype: ColumnType, ids: tuple[str, ...], time_column: str | None, targets: tuple[str, ...]
) -> Role:
    if name in ids:
        return Role.ID
    if name == time_column:
        if not ctype.is_temporal:
            raise ContractError(
                f"column {name!r} was given as the event time but its values do not parse as dates "
                "or datetimes; pass another column with --time, or fix the sample"
            )
        return Role.EVENT_TIME
    if name in targets:
        return Role.TARGET
    return Role.FEATURE


def _draft_column(values: pl.Series, ctype: ColumnType, role: Role, label: bool = False) -> Column:
    nulls = values.null_count()
    spec: dict[str, object] = {"type": ctype, "role": role, "nullable": nulls > 0}
    if role is Role.TARGET:
        spec.update(nullable=True, required=False)  # labels may arrive later than features
    if ctype.is_numeric and role is not Role.ID and values.len() > nulls:
        finite = values.filter(values.is_finite()) if ctype is ColumnType.FLOAT else values.drop_nulls()
        if finite.len():
            low, high = float(finite.min()), float(finite.max())  # type: ignore[arg-type]
            spec.update(_widened(low, high, floor_at_zero=low == 0 or (ctype is ColumnType.INT and low >= 0)))
    if label and ctype not in (*LABEL_TYPES, ColumnType.INT):
        raise ContractError(
            f"--label {values.name}: a label is text, a bool or a whole number, but the sample's values are "
            f"{ctype.value}; pass it as --target to predict the number"
        )
    if role is Role.TARGET and (ctype in LABEL_TYPES or label or _is_binary(values, ctype)):
        # labels: the classes the model predicts among; they bound the values, not a range
        spec = {k: v for k, v in spec.items() if k not in ("min", "max")}
        spec["classes"] = sorted(_labels(values), key=int if ctype is ColumnType.INT else None)
    elif ctype is ColumnType.STRING and role not in (Role.ID,):
        distinct = values.drop_nulls().unique()
        if distinct.len() <= MAX_DRAFTED_CATEGORIES:
            spec["allowed"] = sorted(distinct.to_list())
    return Column.model_validate(spec)


def _is_binary(values: pl.Series, ctype: ColumnType) -> bool:
    """Whether an int column holds 0 and 1 and nothing else: a yes/no label written as a number."""
    return ctype is ColumnType.INT and set(values.drop_nulls().unique().to_list()) == {0, 1}


def _labels(values: pl.Series) -> list[str]:
    labels = values.drop_nulls().cast(pl.String).unique().to_list()
    if values.dtype == pl.Boolean:
        return ["false", "true"]
    if len(labels) < 2:
        raise ContractError(
            f"target {values.name!r} holds {len(labels)} label(s) in the sample ({labels}); a classification "
            "target needs at least two: draft from a sample that holds every class"
        )
    return labels


def _widened(low: float, high: float, *, floor_at_zero: bool) -> dict[str, float]:
    """The observed range widened by its own span on each side (at least 1 when the span is 0),
    not below zero with ``floor_at_zero``."""
    span = (high - low) or max(abs(high), 1.0)
    wide_low = low - RANGE_MARGIN * span
    if floor_at_zero:
        wide_low = max(wide_low, 0.0)
    return {"min": _round(wide_low), "max": _round(high + RANGE_MARGIN * span)}


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _infer(values: pl.Series) -> tuple[pl.Series, ColumnType]:
    """The narrowest contract type every non-null value of ``values`` parses to."""
    if values.dtype == pl.Boolean:
        return values, ColumnType.BOOL
    if values.dtype.is_integer():
        return values.cast(pl.Int64), ColumnType.INT
    if values.dtype.is_float():
        return values.cast(pl.Float64).fill_nan(None), ColumnType.FLOAT
    if values.dtype == pl.Date:
        return values, ColumnType.DATE
    if isinstance(values.dtype, pl.Datetime):  # an aware time is drafted as its UTC instant
        aware = values.dt.convert_time_zone("UTC") if values.dtype.time_zone else values
        return aware.dt.replace_time_zone(None).cast(pl.Datetime("us")), ColumnType.DATETIME
    text = clean_text(values)
    if text.null_count() < text.len():
        for ctype in (ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL, ColumnType.DATE, ColumnType.DATETIME):
            parsed = parse_column(text, Column(type=ctype))
            if not unparsed(text, parsed, ctype).any():
                return parsed.fill_nan(None) if ctype is ColumnType.FLOAT else parsed, ctype
    # A string column keeps words like "NA" as values: only empty cells are missing.
    return text, ColumnType.STRING
