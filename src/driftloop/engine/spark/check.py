"""The contract check on Spark: the batch is split into valid and rejected rows on the
executors, with the rule names, reasons and original text the Polars check gives.

Two kinds of work, each where it is exact:

- **Typing** (text to values: null words, number forms, a time's formats, zones and epochs) is
  the Polars code itself (:func:`~driftloop.data.validate.typed_columns`), run on each Arrow
  batch by ``mapInArrow``: a value depends on its own row, so running it in parts changes
  nothing, and the two engines cannot read a cell differently. The one batch-wide choice, which
  of a time column's formats the batch is written in, is made once on the driver from the
  batch's first values and handed to every part.
- **Rules** (bounds, allowed values, nulls, key duplicates, keys already stored, and the order
  of rows sharing a wall-clock hour the zone repeats or a made id) are Spark expressions and
  windows over the typed rows, so rules that look at other rows see the whole batch.

A row's position (``_row``) is its place in the order Spark reads the batch, partition by
partition. The typed rows are checkpointed on the executors, not collected: only counts, a
sample of a time column and a few example values per broken rule come to the driver.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl
import pyspark.sql.functions as sf
from pyspark.sql import Window
from pyspark.sql.types import StringType, StructField, StructType

from driftloop.data.clock import UTC_ZONE, later_instants
from driftloop.data.contract import Column, ColumnType, Contract
from driftloop.data.parse import SAMPLE_FOR_FORMAT, clean_text, time_parsers
from driftloop.data.row_id import row_digests
from driftloop.data.validate import (
    EXAMPLES_PER_RULE,
    CheckResult,
    RuleCount,
    batch_problems,
    empty_rejected,
    empty_valid,
    source_columns,
    typed_columns,
    unparsed_flag,
)
from driftloop.engine.spark.frames import arrow_for, spark_schema, to_polars, to_spark
from driftloop.errors import BatchProblem
from driftloop.lake import COLUMNS, ROW, RULES

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame

# Working columns of the typed rows: where a row was read, its text as given, the later
# instant of a repeated wall-clock time, a made id's hash, a rule's flag.
PART, AT = "__part__", "__at__"
TEXT, LATER, DIGEST, FLAG, BAD = "__text__", "__later__", "__digest__", "__rule_", "__bad__"
STORED = "__stored__"


def check_on_spark(
    frame: DataFrame, contract: Contract, *, seen_keys: DataFrame | None = None, check_keys: bool = True
) -> CheckResult[DataFrame]:
    """:func:`~driftloop.data.validate.check_batch` on a Spark frame; ``seen_keys`` is a Spark
    frame of the rows already stored (their key columns are read)."""
    spark = frame.sparkSession
    stored = contract.stored_columns
    ignored = [c for c in frame.columns if c not in contract.columns]
    given = set(frame.columns) | _assembled(contract, frame.columns)
    problems = [
        BatchProblem(c, "required", "the column is missing from the batch")
        for c in stored
        if c not in given and contract.columns[c].required
    ]
    if frame.isEmpty():
        problems.append(BatchProblem(None, "no rows", "the batch holds no rows"))
    if problems:
        return _refused(frame, contract, problems, ignored)

    typed = _typed_rows(frame, contract)
    problems = _batch_problems(typed, contract)
    if problems:
        return _refused(frame, contract, problems, ignored)

    if seen_keys is not None and check_keys and contract.key and contract.duplicates == "reject":
        typed = _mark_stored(typed, contract, seen_keys)
    rules = _violations(typed, contract, seen_keys, check_keys)
    names = list(rules)
    flagged = _with_flags(typed, rules)
    counts = _counts(flagged, len(names))
    if not counts[-1]:  # no row broke a rule: the common case
        return CheckResult(flagged.select(ROW, *stored), to_spark(spark, empty_rejected(contract)), [], [], ignored)
    valid = flagged.where(~_col(BAD)).select(ROW, *stored)
    reasons = _reasons(names)
    rejected = flagged.where(_col(BAD)).select(
        ROW,
        *(_col(TEXT + c).alias(c) for c in stored),
        reasons.alias(RULES),
        sf.array_distinct(sf.transform(reasons, lambda rule: sf.split(rule, ":").getItem(0))).alias(COLUMNS),
    )
    rule_counts = [
        RuleCount(column, rule, rows, _examples(flagged, f"{FLAG}{i}", f"{column}:{rule}", contract))
        for i, ((column, rule), rows) in enumerate(zip((n.split(":", 1) for n in names), counts, strict=False))
        if rows
    ]
    return CheckResult(valid, rejected, sorted(rule_counts, key=lambda c: -c.rows), [], ignored)


def _refused(
    frame: DataFrame, contract: Contract, problems: list[BatchProblem], ignored: list[str]
) -> CheckResult[DataFrame]:
    spark = frame.sparkSession
    return CheckResult(
        to_spark(spark, empty_valid(contract)), to_spark(spark, empty_rejected(contract)), [], problems, ignored
    )


def _assembled(contract: Contract, present: list[str]) -> set[str]:
    """The times the batch gives as parts (year, month, ...) that the check assembles."""
    return {
        name
        for name, column in contract.columns.items()
        if column.parts and name not in present and all(p in present for p in column.parts)
    }


def _col(name: str) -> SparkColumn:
    return sf.col(f"`{name}`")


# --- typing: the Polars code on each part of the batch --------------------------------------


def typed_part(chunk: pl.DataFrame, contract: Contract, samples: dict[str, pl.Series]) -> pl.DataFrame:
    """One part of a batch typed as the Polars check types it, with each column's text as given
    and, for a wall-clock time of the zone, the later instant of a repeated hour."""
    source = source_columns(chunk, contract)
    typed = pl.DataFrame(typed_columns(source, contract, samples=samples))
    later = [later_instants(pl.col(n), contract.timezone).alias(LATER + n) for n in _local_times(contract)]
    text = source.select(pl.col(c).cast(pl.String).alias(TEXT + c) for c in contract.stored_columns)
    return pl.concat([typed.with_columns(later), text], how="horizontal")


def _local_times(contract: Contract) -> list[str]:
    """Datetime columns given as wall-clock times of a zone that repeats an hour each autumn."""
    if contract.timezone == UTC_ZONE:
        return []
    return [
        n
        for n in contract.stored_columns
        if contract.columns[n].type is ColumnType.DATETIME and contract.columns[n].unit is None
    ]


def _type_batches(
    batches: Iterator[pa.RecordBatch], contract: Contract, samples: dict[str, pl.Series], schema: Any
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function: each batch of a partition typed, with where its rows were read."""
    from pyspark import TaskContext

    context = TaskContext.get()
    part = context.partitionId() if context is not None else 0
    at = 0
    for batch in batches:
        chunk = pl.from_arrow(batch)
        assert isinstance(chunk, pl.DataFrame)
        typed = typed_part(chunk, contract, samples).with_columns(
            pl.lit(part, pl.Int64).alias(PART), (pl.int_range(chunk.height, dtype=pl.Int64) + at).alias(AT)
        )
        at += chunk.height
        yield from arrow_for(typed, schema).to_batches()


def _typed_rows(frame: DataFrame, contract: Contract) -> DataFrame:
    """The batch typed on the executors, numbered, with repeated hours and made ids settled."""
    empty = to_polars(frame.limit(0))  # what each part's batches look like in Polars
    samples = _format_samples(frame, contract, empty)
    layout = typed_part(empty, contract, samples).with_columns(pl.lit(0, pl.Int64).alias(PART), pl.lit(0).alias(AT))
    schema = spark_schema(layout)
    parts = frame.mapInArrow(partial(_type_batches, contract=contract, samples=samples, schema=schema), schema)
    parts = parts.localCheckpoint(eager=True)  # read once: numbering needs the parts' sizes first
    sizes = sorted(tuple(r) for r in parts.groupBy(PART).count().collect())
    offsets, total = {}, 0
    for part, rows in sizes:
        offsets[part], total = total, total + rows
    start = sf.create_map(*(sf.lit(x) for pair in offsets.items() for x in pair))
    typed = parts.withColumn(ROW, (start[sf.col(PART)] + sf.col(AT) + 1).cast("long")).drop(PART, AT)
    typed = _repeated_hours_in_order(typed, contract)
    return _with_row_ids(typed, contract)


def _format_samples(frame: DataFrame, contract: Contract, empty: pl.DataFrame) -> dict[str, pl.Series]:
    """For each time column of text with several formats: its first values, which pick the
    format the batch is written in (as the Polars check picks it from the whole batch)."""
    samples = {}
    for name in contract.stored_columns:
        column = contract.columns[name]
        if not column.type.is_temporal or name not in frame.columns or empty.schema[name] != pl.String:
            continue
        if len(time_parsers(column, contract.timezone)) < 2:
            continue
        text = sf.col(f"`{name}`")
        first = frame.select(text.alias(name)).where(sf.length(sf.regexp_replace(text, r"^\s+|\s+$", "")) > 0)
        values = to_polars(first.limit(SAMPLE_FOR_FORMAT)).get_column(name)
        samples[name] = clean_text(values)
    return samples


def _repeated_hours_in_order(typed: DataFrame, contract: Contract) -> DataFrame:
    """A wall-clock time the zone repeats: its rows in batch order per entity take the earlier
    instant, then the later (:func:`~driftloop.data.clock.repeats_in_order`, over the whole batch)."""
    entity = [i for i in contract.id_columns if i in typed.columns]
    for name in _local_times(contract):
        value, later = _col(name), _col(LATER + name)
        again = sf.row_number().over(Window.partitionBy(value, *map(_col, entity)).orderBy(ROW)) > 1
        typed = typed.withColumn(name, sf.when(again & (later != value), later).otherwise(value))
    return typed.drop(*(LATER + n for n in _local_times(contract)))


def _digest_batches(batches: Iterator[pa.RecordBatch], contract: Contract, schema: Any) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows = pl.from_arrow(batch)
        assert isinstance(rows, pl.DataFrame)
        yield from arrow_for(rows.with_columns(row_digests(rows, contract).alias(DIGEST)), schema).to_batches()


def _with_row_ids(typed: DataFrame, contract: Contract) -> DataFrame:
    """Made ids (:func:`~driftloop.data.row_id.with_row_ids`): each row's hash from the Polars
    code, its place among identical rows of the batch from a window."""
    name = contract.row_id_column
    if name is None:
        return typed

    schema = StructType([*typed.schema.fields, StructField(DIGEST, StringType())])
    hashed = typed.mapInArrow(partial(_digest_batches, contract=contract, schema=schema), schema)
    place = sf.row_number().over(Window.partitionBy(DIGEST).orderBy(ROW)) - 1
    made = sf.concat(_col(DIGEST), sf.lit("-"), place.cast("string"))
    return hashed.withColumn(name, sf.coalesce(_col(name).cast("string"), made)).drop(DIGEST)


# --- rules: Spark expressions over the typed rows -------------------------------------------


def _batch_problems(typed: DataFrame, contract: Contract) -> list[BatchProblem]:
    """The batch-level rules (:func:`~driftloop.data.validate.batch_problems`) from one aggregation."""
    stored = contract.stored_columns
    parsed = [n for n in stored if unparsed_flag(n) in typed.columns]
    numbers = typed.agg(
        sf.count(sf.lit(1)).alias("rows"),
        *(sf.count(_col(n)).alias(f"present_{i}") for i, n in enumerate(stored)),
        *(sf.count(_col(TEXT + n)).alias(f"given_{i}") for i, n in enumerate(parsed)),
        *(sf.sum(_col(unparsed_flag(n)).cast("long")).alias(f"failed_{i}") for i, n in enumerate(parsed)),
    ).first()
    assert numbers is not None
    height = numbers["rows"]
    null_rates = {n: 1 - numbers[f"present_{i}"] / height for i, n in enumerate(stored)}
    unparseable = {}
    for i, name in enumerate(parsed):
        given, failed = numbers[f"given_{i}"], numbers[f"failed_{i}"] or 0
        rate = failed / given if given else 0.0
        shown = rate > contract.max_unparseable_rate
        failures = typed.where(_col(unparsed_flag(name)))
        unparseable[name] = (rate, _first_distinct(failures, _col(TEXT + name)) if shown else ())
    return batch_problems(contract, unparseable, null_rates)


def spark_column_rules(name: str, column: Column, present: list[str]) -> dict[str, SparkColumn]:
    """The rules of one column (``_column_rules`` of :mod:`~driftloop.data.validate`) as Spark
    expressions: true where a row breaks the rule."""
    value = _col(name)
    flag = unparsed_flag(name)
    unparsed = _col(flag) if flag in present else sf.lit(False)
    rules: dict[str, SparkColumn] = {}
    if flag in present:
        rules["type"] = unparsed
    if not column.nullable:
        rules["not_null"] = value.isNull() & ~unparsed
    if column.type is ColumnType.FLOAT:
        rules["finite"] = value.isin(float("inf"), float("-inf"))
    if column.min is not None:
        rules["min"] = value < sf.lit(column.min)
    if column.max is not None:
        rules["max"] = value > sf.lit(column.max)
    if column.allowed is not None:
        rules["allowed"] = value.isNotNull() & ~value.isin(list(column.allowed))
    if column.classes is not None:
        rules["class"] = value.isNotNull() & ~value.cast("string").isin(list(column.classes))
    return {rule: sf.coalesce(expr, sf.lit(False)) for rule, expr in rules.items()}


def _violations(
    typed: DataFrame, contract: Contract, seen_keys: DataFrame | None, check_keys: bool
) -> dict[str, SparkColumn]:
    rules: dict[str, SparkColumn] = {}
    for name in contract.stored_columns:
        for rule, expr in spark_column_rules(name, contract.columns[name], typed.columns).items():
            rules[f"{name}:{rule}"] = expr
    key = contract.key
    if key and check_keys:
        usable = sf.lit(True)
        for k in key:
            usable = usable & _col(k).isNotNull()
        columns = [_col(k) for k in key]
        if contract.duplicates == "reject":
            later = sf.row_number().over(Window.partitionBy(*columns).orderBy(ROW)) > 1
            rules["key:duplicate"] = usable & later
            if seen_keys is not None:
                rules["key:already_stored"] = sf.coalesce(_col(STORED), sf.lit(False))
        else:
            earlier = sf.row_number().over(Window.partitionBy(*columns).orderBy(sf.col(ROW).desc())) > 1
            rules["key:superseded"] = usable & earlier
    return rules


def _with_flags(typed: DataFrame, rules: dict[str, SparkColumn]) -> DataFrame:
    """The typed rows with one flag per rule and whether any is set, checkpointed (the split and
    the counts read them)."""
    flags = [expr.alias(f"{FLAG}{i}") for i, expr in enumerate(rules.values())]
    bad = sf.lit(False)
    for i in range(len(flags)):
        bad = bad | _col(f"{FLAG}{i}")
    return typed.select("*", *flags).withColumn(BAD, bad).localCheckpoint(eager=True)


def _mark_stored(typed: DataFrame, contract: Contract, seen_keys: DataFrame) -> DataFrame:
    """``typed`` with ``STORED`` set on rows whose key is already stored (only the batch's own
    time span of the stored rows is read)."""
    key = contract.key
    candidates = seen_keys.select(*map(_col, key))
    clock = contract.event_time_column
    if clock is not None:
        low, high = typed.agg(sf.min(_col(clock)), sf.max(_col(clock))).first() or (None, None)
        if low is None or high is None:
            return typed.withColumn(STORED, sf.lit(False))
        candidates = candidates.where(_col(clock).between(low, high))
    return typed.join(candidates.distinct().withColumn(STORED, sf.lit(True)), on=key, how="left")


def _counts(flagged: DataFrame, rules: int) -> list[int]:
    """Rows breaking each rule, then rows breaking any: one aggregation."""
    sums = [sf.count(sf.when(_col(f"{FLAG}{i}"), 1)) for i in range(rules)] + [sf.count(sf.when(_col(BAD), 1))]
    row = flagged.agg(*(s.alias(f"n{i}") for i, s in enumerate(sums))).first()
    assert row is not None
    return [int(v) for v in row]


def _reasons(names: list[str]) -> SparkColumn:
    """Each row's broken rules, in the order of the contract (``"column:rule"``)."""
    named = [sf.when(_col(f"{FLAG}{i}"), sf.lit(name)) for i, name in enumerate(names)]
    return sf.filter(sf.array(*named), lambda rule: rule.isNotNull())


def _examples(flagged: DataFrame, flag: str, name: str, contract: Contract) -> tuple[str, ...]:
    """The first few distinct values (as given) of the rows breaking a rule; for a key rule, the key."""
    column = name.split(":", 1)[0]
    # A key is shown as "sensor-7|2016-01-11 17:00:00".
    key = sf.concat_ws("|", *(_col(TEXT + k) for k in contract.key))
    value = key if column == "key" else _col(TEXT + column)
    return _first_distinct(flagged.where(_col(flag)), value)


def _first_distinct(rows: DataFrame, value: SparkColumn) -> tuple[str, ...]:
    """The first ``EXAMPLES_PER_RULE`` distinct values of ``value`` in batch order, a missing one as ``<null>``."""
    firsts = rows.groupBy(value.alias("value")).agg(sf.min(ROW).alias("first")).orderBy("first")
    return tuple("<null>" if r["value"] is None else str(r["value"]) for r in firsts.limit(EXAMPLES_PER_RULE).collect())
