"""Check a batch against the contract: which rows are valid, which break which rule, and why.

:func:`check_batch` returns a :class:`CheckResult` and decides nothing: the ingest policy reads
it and refuses the batch when it has batch-level problems. Every input row ends up in exactly
one of ``valid`` and ``rejected``; rejected rows keep their original values as text.
All checks are Polars expressions: one pass for the verdict of every row, then the reasons
are spelled out only for the (few) rejected rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import polars as pl

from driftloop.data.clock import UTC_ZONE, repeats_in_order
from driftloop.data.contract import Column, ColumnType, Contract
from driftloop.data.parse import (
    assemble_time,
    cast_typed,
    clean_text,
    nested_as_text,
    parse_column,
    time_parsers,
    unparsed,
)
from driftloop.data.row_id import with_row_ids
from driftloop.errors import BatchProblem
from driftloop.lake import COLUMNS, ROW, RULES

EXAMPLES_PER_RULE = 3
_TYPE_FLAG = "__unparsed__"


@dataclass(frozen=True)
class RuleCount:
    """How many rows broke one rule of one column, with a few of the offending values."""

    column: str
    rule: str
    rows: int
    examples: tuple[str, ...]


Frame = TypeVar("Frame")


@dataclass(frozen=True)
class CheckResult(Generic[Frame]):
    """What the contract says about one batch. Plain data: the policy acts on it elsewhere.
    The frames are the engine's own (Polars here, Spark on the Spark engine)."""

    valid: Frame
    rejected: Frame
    rule_counts: list[RuleCount] = field(default_factory=list)
    problems: list[BatchProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no batch-level rule was broken (rows may still be rejected)."""
        return not self.problems


def check_batch(
    frame: pl.DataFrame, contract: Contract, *, seen_keys: pl.LazyFrame | None = None, check_keys: bool = True
) -> CheckResult[pl.DataFrame]:
    """Check ``frame`` against ``contract``.

    ``seen_keys`` scans the key columns of rows already stored; a row whose key is among them
    is a duplicate under the ``reject`` policy (only the batch's own time range is read).
    ``valid`` has the stored contract columns, typed, plus ``_row`` (1-based position in the
    input); ``rejected`` has the same columns as text plus ``_rules`` (``"column:rule"``)
    and ``_columns``. ``check_keys=False`` skips key uniqueness (rows to score, not to store).
    """
    stored = contract.stored_columns
    ignored = [c for c in frame.columns if c not in contract.columns]
    frame = with_assembled_times(frame, contract)
    missing = [c for c in stored if c not in frame.columns]
    problems = [
        BatchProblem(c, "required", "the column is missing from the batch")
        for c in missing
        if contract.columns[c].required
    ]
    if frame.height == 0:
        problems.append(BatchProblem(None, "no rows", "the batch holds no rows"))
    if problems:
        return CheckResult(empty_valid(contract), empty_rejected(contract), [], problems, ignored)

    source = source_columns(frame, contract).with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    typed = _repeated_hours_in_order(pl.DataFrame([source.get_column(ROW), *typed_columns(source, contract)]), contract)
    typed = with_row_ids(typed, contract)
    problems = _batch_problems(source, typed, contract)
    if problems:
        return CheckResult(empty_valid(contract), empty_rejected(contract), [], problems, ignored)

    # Every rule becomes a boolean column over the whole batch first: rules such as key
    # duplicates look at other rows, so they must not be evaluated after filtering.
    violations = _violations(typed, contract, seen_keys, check_keys)
    flags = typed.select(expr.alias(name) for name, expr in violations.items())
    bad = (
        flags.select(pl.any_horizontal(pl.all())).to_series()
        if flags.width
        else pl.repeat(False, typed.height, eager=True)
    )
    if not bad.any():  # the common case (every row of a prediction request): nothing to explain
        return CheckResult(typed.select(ROW, *stored), empty_rejected(contract), [], problems, ignored)
    valid = typed.filter(~bad).select(ROW, *stored)
    hits = flags.filter(bad)
    text = source.filter(bad).select(pl.col(ROW), *(pl.col(c).cast(pl.String) for c in stored))
    reasons = (
        hits.select(
            pl.concat_list([pl.when(pl.col(n)).then(pl.lit(n)) for n in hits.columns]).list.drop_nulls().alias(RULES)
        ).to_series()
        if hits.width
        else pl.Series(RULES, [[]] * 0, pl.List(pl.String))
    )
    rejected = text.with_columns(
        reasons,
        reasons.list.eval(pl.element().str.split(":").list.first()).list.unique(maintain_order=True).alias(COLUMNS),
    )
    return CheckResult(valid, rejected, _rule_counts(hits, text, contract.key), problems, ignored)


def source_columns(frame: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """The contract's stored columns of ``frame`` (its assembled times added) as given: a column
    the batch lacks is missing text, a list or record its JSON text (so it breaks its type rule
    and is shown as it came)."""
    frame = with_assembled_times(frame, contract)
    stored = contract.stored_columns
    source = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in stored if c not in frame.columns)
    return source.with_columns(
        nested_as_text(source.get_column(c)) for c in stored if source.schema[c].is_nested()
    ).select(stored)


def with_assembled_times(frame: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """``frame`` with each time the contract assembles from parts (that it does not already hold)
    added as text; a batch without one of the parts leaves it missing, and so refused."""
    assembled = [
        assemble_time(frame, name, column)
        for name, column in contract.columns.items()
        if column.parts and name not in frame.columns and all(p in frame.columns for p in column.parts)
    ]
    return frame.with_columns(assembled) if assembled else frame


class RowChecker:
    """The contract's row rules compiled once per input schema, for rows to score.

    Scoring checks small frames over and over (one request, one row): building and running a
    hundred rule expressions costs more than the check itself. For an input whose columns all
    convert to their contract types without parsing text, the casts are built once per schema
    and the rules run on NumPy arrays (the numeric ones as a few vectorised comparisons);
    anything else (text to parse, a missing column, an invalid row to explain) goes through
    :func:`check_batch`, which gives the same verdicts with every reason.
    """

    # Up to this many rows, allowed values are checked against a Python set; above, by Polars.
    SMALL = 1024

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._plans: dict[tuple[tuple[str, pl.DataType], ...], _Plan | None] = {}
        self._allowed = {n: frozenset(c.allowed) for n, c in contract.columns.items() if c.allowed is not None}
        self._numeric = [n for n in contract.stored_columns if contract.columns[n].type.is_numeric]
        numeric = [contract.columns[n] for n in self._numeric]
        # The numeric rules as arrays over those columns; a rule a column lacks never fires.
        self._low = np.array([-np.inf if c.min is None else c.min for c in numeric], np.float64)
        self._high = np.array([np.inf if c.max is None else c.max for c in numeric], np.float64)
        self._required = np.array([not c.nullable for c in numeric], bool)
        self._float = np.array([c.type is ColumnType.FLOAT for c in numeric], bool)
        self._others = {
            n: c for n, c in contract.columns.items() if n in contract.stored_columns and not c.type.is_numeric
        }
        self._no_rejects = empty_rejected(contract)

    def check(self, frame: pl.DataFrame) -> CheckResult[pl.DataFrame]:
        """The verdict of :func:`check_batch` (keys not checked), by the compiled rules when they suffice."""
        valid = self.valid_rows(frame)
        if valid is not None:
            return CheckResult(valid, self._no_rejects)
        return check_batch(frame, self.contract, check_keys=False)

    def valid_rows(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """``frame`` typed to the contract when every row is valid; None when it needs the full check."""
        key = tuple(frame.schema.items())
        if key not in self._plans:
            self._plans[key] = self._plan(frame.schema)
        plan = self._plans[key]
        if plan is None or frame.height == 0:
            return None
        typed = _repeated_hours_in_order(
            frame.with_columns(plan.conversions) if plan.conversions else frame, self.contract
        )
        typed = with_row_ids(typed, self.contract)
        if any(typed.get_column(n).null_count() != frame.get_column(n).null_count() for n in plan.parsed):
            return None  # a time none of the formats fits (it became null): the full check names it
        numbers = np.empty((typed.height, len(self._numeric)), np.float64)
        for i, name in enumerate(self._numeric):
            numbers[:, i] = typed.get_column(name).to_numpy()  # a missing value is NaN here
        if self._breaks_a_rule(typed, numbers):
            return None
        # NaN means missing, as in check_batch: a float column holding NaN (or null) gets nulls.
        gaps = np.isnan(numbers).any(axis=0) & self._float
        if gaps.any():
            typed = typed.with_columns(
                pl.col([n for n, gap in zip(self._numeric, gaps, strict=True) if gap]).fill_nan(None)
            )
        return pl.DataFrame([typed.get_column(n) for n in self.contract.stored_columns])

    def _breaks_a_rule(self, typed: pl.DataFrame, numbers: np.ndarray) -> bool:
        """Whether any row breaks a rule of :func:`_column_rules` (where a missing value breaks
        nothing but ``not_null``): the numeric rules as a few vectorised NumPy comparisons (the
        demo's 110 rules took 2.2 ms as Polars flag expressions on a one-row frame), the others
        column by column."""
        missing = np.isnan(numbers)
        if missing[:, self._required].any() or np.isinf(numbers[:, self._float]).any():
            return True
        with np.errstate(invalid="ignore"):  # NaN compares false: a missing value breaks no bound
            if (numbers < self._low).any() or (numbers > self._high).any():
                return True
        for name, column in self._others.items():
            values = typed.get_column(name)
            if not column.nullable and values.null_count():
                return True
            if name in self._allowed and self._outside(values, name):
                return True
        return False

    def _outside(self, values: pl.Series, name: str) -> bool:
        """Whether a present value of ``values`` is not among the column's allowed ones."""
        if values.len() <= self.SMALL:
            return not set(values.drop_nulls().to_list()) <= self._allowed[name]
        return not values.drop_nulls().is_in(list(self._allowed[name])).all()

    def _plan(self, schema: pl.Schema) -> _Plan | None:
        """How a frame of ``schema`` becomes typed: expressions only for the columns whose type
        is not already the contract's (a column already typed costs nothing); None when a
        column needs the full check's parsing."""
        plan = _Plan([], [])
        for name in self.contract.stored_columns:
            column = self.contract.columns[name]
            if name not in schema:
                if column.required:
                    return None
                plan.conversions.append(pl.lit(None, column.type.polars).alias(name))  # as check_batch fills it
                continue
            if schema[name] == column.type.polars and not _local_times(column, self.contract):
                continue
            cast = cast_typed(pl.col(name), schema[name], column, self.contract.timezone)
            if cast is None and column.type.is_temporal and schema[name] == pl.String:
                # JSON has no date type: a time arrives as text. Parsed by the column's formats
                # (the first that fits wins); a value none fits sends the request to the full check.
                parsers = time_parsers(column, self.contract.timezone)
                parsed = pl.coalesce([parse(pl.col(name)) for parse in parsers])
                plan.conversions.append(parsed.alias(name))
                plan.parsed.append(name)
                continue
            if cast is None and column.type is ColumnType.INT and schema[name].is_float():
                # pandas holds an int column with gaps as floats: whole numbers cast, and a value
                # that is not one (3.5) becomes null here, which sends the frame to the full check.
                whole = pl.col(name).fill_nan(None)
                plan.conversions.append(pl.when(whole == whole.round()).then(whole.cast(pl.Int64)).alias(name))
                plan.parsed.append(name)
                continue
            if cast is None:
                return None
            plan.conversions.append((cast.fill_nan(None) if column.type is ColumnType.FLOAT else cast).alias(name))
        return plan


def _repeated_hours_in_order(typed: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """``typed`` with the wall-clock times its zone repeats read in row order per entity
    (:func:`~driftloop.data.clock.repeats_in_order`); an epoch number is an exact instant."""
    local = [
        n
        for n in contract.stored_columns
        if n in typed.columns and _local_times(contract.columns[n], contract) and contract.columns[n].unit is None
    ]
    if not local:
        return typed
    entity = [i for i in contract.id_columns if i in typed.columns]
    return typed.with_columns(repeats_in_order(pl.col(n), contract.timezone, entity).alias(n) for n in local)


def _local_times(column: Column, contract: Contract) -> bool:
    """Whether a naive datetime given for ``column`` is a wall-clock time to convert to UTC."""
    return column.type is ColumnType.DATETIME and contract.timezone != UTC_ZONE


@dataclass
class _Plan:
    conversions: list[pl.Expr]  # expressions typing the columns that are not typed yet
    parsed: list[str]  # columns of text parsed into times (a value that did not parse is null)


def typed_columns(
    source: pl.DataFrame, contract: Contract, *, samples: dict[str, pl.Series] | None = None
) -> list[pl.Series]:
    """Each stored column of ``source`` converted to its contract type, and after a column of
    text its flag (``unparsed_flag(name)``) where the text did not parse. A row's values depend
    on that row alone, except a time column's format, picked by the first values of
    ``samples[name]`` (default: the column itself)."""
    casts = {}
    for name in contract.stored_columns:
        cast = cast_typed(pl.col(name), source.schema[name], contract.columns[name], contract.timezone)
        if cast is not None:
            if contract.columns[name].type is ColumnType.FLOAT:
                cast = cast.fill_nan(None)  # NaN means missing, as an empty cell does
            casts[name] = cast.alias(name)
    # Already-typed columns convert in one pass: a small request pays the per-call cost once.
    cast_columns = source.select(casts.values()) if casts else pl.DataFrame()
    columns = []
    for name in contract.stored_columns:
        if name in casts:
            columns.append(cast_columns.get_column(name))
            continue
        column = contract.columns[name]  # no lossless cast: parse the text, and remember where it failed
        text = clean_text(source.get_column(name))
        sample = None if samples is None else samples.get(name)
        typed = parse_column(text, column, contract.timezone, sample=sample)
        columns.append(unparsed(text, typed, column.type).alias(unparsed_flag(name)))
        if column.type is ColumnType.FLOAT:
            typed = typed.fill_nan(None)
        columns.append(typed.alias(name))
    return columns


def unparsed_flag(name: str) -> str:
    """The name of the flag :func:`typed_columns` sets where ``name``'s text did not parse."""
    return _TYPE_FLAG + name


def _violations(
    typed: pl.DataFrame, contract: Contract, seen_keys: pl.LazyFrame | None, check_keys: bool
) -> dict[str, pl.Expr]:
    """One boolean expression per ``column:rule``: true where a row breaks it."""
    rules: dict[str, pl.Expr] = {}
    for name in contract.stored_columns:
        for rule, expr in _column_rules(name, contract.columns[name], typed.columns).items():
            rules[f"{name}:{rule}"] = expr
    key = contract.key
    if key and check_keys:
        usable = pl.all_horizontal(pl.col(k).is_not_null() for k in key)
        row_key = pl.struct(key)
        if contract.duplicates == "reject":
            rules["key:duplicate"] = usable & ~row_key.is_first_distinct()
            if seen_keys is not None:
                stored = _stored_rows(typed, contract, seen_keys)
                rules["key:already_stored"] = pl.col(ROW).is_in(stored.implode())
        else:
            rules["key:superseded"] = usable & ~row_key.is_last_distinct()
    return rules


def _stored_rows(typed: pl.DataFrame, contract: Contract, seen_keys: pl.LazyFrame) -> pl.Series:
    """Positions of the rows whose key is already stored."""
    key = contract.key
    candidates = seen_keys.select(key)
    clock = contract.event_time_column
    if clock is not None:  # keys carry the event time: read only the batch's own span
        low, high = typed.get_column(clock).min(), typed.get_column(clock).max()
        if low is None:
            return pl.Series(ROW, [], pl.Int64)
        candidates = candidates.filter(pl.col(clock).is_between(low, high))
    return typed.lazy().join(candidates.unique(), on=key, how="semi").select(ROW).collect().to_series()


def _column_rules(name: str, column: Column, present: list[str]) -> dict[str, pl.Expr]:
    value = pl.col(name)
    rules: dict[str, pl.Expr] = {}
    flag = unparsed_flag(name)
    unparsed = pl.col(flag) if flag in present else pl.lit(False)
    if flag in present:
        rules["type"] = unparsed
    if not column.nullable:
        rules["not_null"] = value.is_null() & ~unparsed
    if column.type is ColumnType.FLOAT:
        rules["finite"] = value.is_infinite()
    if column.min is not None:
        rules["min"] = value < column.min
    if column.max is not None:
        rules["max"] = value > column.max
    if column.allowed is not None:
        rules["allowed"] = value.is_not_null() & ~value.is_in(column.allowed)
    if column.classes is not None:  # a label the model has no head for
        rules["class"] = value.is_not_null() & ~value.cast(pl.String).is_in(column.classes)  # "true", "3", "ok"
    return {rule: expr.fill_null(False) for rule, expr in rules.items()}


def _batch_problems(source: pl.DataFrame, typed: pl.DataFrame, contract: Contract) -> list[BatchProblem]:
    height = typed.height
    unparseable = {}
    for name in contract.stored_columns:
        flag = unparsed_flag(name)
        if flag in typed.columns:
            failed = typed.get_column(flag)
            present = height - source.get_column(name).null_count()
            rate = float(failed.sum()) / present if present else 0.0
            shown = rate > contract.max_unparseable_rate  # examples only for a problem to report
            unparseable[name] = (rate, _distinct_text(source.filter(failed).get_column(name)) if shown else ())
    nulls = {n: typed.get_column(n).null_count() / height for n in contract.stored_columns}
    return batch_problems(contract, unparseable, nulls)


def batch_problems(
    contract: Contract, unparseable: dict[str, tuple[float, tuple[str, ...]]], null_rates: dict[str, float]
) -> list[BatchProblem]:
    """The batch-level rules a batch broke, from its numbers: per column of text, the share of
    its given values that did not parse and the first of them; per column, the share missing."""
    problems = []
    for name in contract.stored_columns:
        column = contract.columns[name]
        if name in unparseable:
            rate, examples = unparseable[name]
            if rate > contract.max_unparseable_rate:
                problems.append(
                    BatchProblem(
                        name,
                        "unparseable",
                        f"{rate:.0%} of its values are not {column.type.value} "
                        f"(limit {contract.max_unparseable_rate:.0%})",
                        examples,
                    )
                )
        if column.max_null_rate is not None:
            rate = null_rates[name]
            if rate > column.max_null_rate:
                problems.append(
                    BatchProblem(name, "null rate", f"{rate:.1%} missing, limit {column.max_null_rate:.1%}")
                )
    return problems


def _rule_counts(hits: pl.DataFrame, text: pl.DataFrame, key: list[str]) -> list[RuleCount]:
    counts = []
    for name in hits.columns:
        mask = hits.get_column(name)
        rows = int(mask.sum())
        if not rows:
            continue
        column, rule = name.split(":", 1)
        shown = text.filter(mask)
        if column == "key":  # show the key itself, e.g. "sensor-7|2016-01-11 17:00:00"
            values = shown.select(pl.concat_str(key, separator="|", ignore_nulls=True)).to_series()
        else:
            values = shown.get_column(column)
        counts.append(RuleCount(column, rule, rows, _distinct_text(values)))
    return sorted(counts, key=lambda c: -c.rows)


def _distinct_text(values: pl.Series) -> tuple[str, ...]:
    shown = values.cast(pl.String).fill_null("<null>").unique(maintain_order=True).head(EXAMPLES_PER_RULE)
    return tuple(shown.to_list())


def empty_valid(contract: Contract) -> pl.DataFrame:
    """The valid rows of a batch that has none: ``_row`` and the stored columns, typed."""
    return pl.DataFrame(schema={ROW: pl.Int64, **contract.polars_schema()})


def empty_rejected(contract: Contract) -> pl.DataFrame:
    """The rejected rows of a batch that has none: ``_row``, the stored columns as text, the reasons."""
    schema: dict[str, pl.DataType] = {ROW: pl.Int64()}
    schema.update({c: pl.String() for c in contract.stored_columns})
    schema.update({RULES: pl.List(pl.String), COLUMNS: pl.List(pl.String)})
    return pl.DataFrame(schema=schema)
