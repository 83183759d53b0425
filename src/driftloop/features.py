"""Feature definitions: declared in the project, computed identically in training and serving.

Two kinds, told apart by their keys in ``driftloop.toml``::

    [[features]]                      # a derived column: arithmetic over columns of the same row
    name = "temp_gap"
    expr = "clip(T_out - T1, -30, 30)"

    [[features]]                      # parts of a date or datetime, optionally sin/cos encoded
    column = "date"
    parts = ["hour", "day_of_week", "month"]
    cyclic = true

Expressions are parsed with :mod:`ast` into Narwhals expressions (so the same definitions run
on Polars now and Spark later); only arithmetic, numbers, column names and a short list of
row-wise functions are accepted. Anything that needs other rows (lags, rolling windows,
aggregates) is refused, because a single online request could not compute it the same way.
Division by zero and other non-finite results give null, which preprocessing imputes.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

import narwhals as nw
import polars as pl
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from driftloop.contract import Contract, Role
from driftloop.errors import FeatureError, NotOnlineComputable, TableNotFound
from driftloop.lake import BATCH_ID, EVENT_DATE, INGESTED_AT, Lake, Table, Where
from driftloop.validate import ROW

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
# for Polars frames). Narwhals mirrors Polars' API, so one compiler serves both.
Namespace = Any
ROW_WISE: dict[str, Callable[..., Any]] = {  # each takes the namespace first
    "abs": lambda ns, x: x.abs(),
    "sqrt": lambda ns, x: x.sqrt(),
    "log": lambda ns, x: x.log(),
    "log1p": lambda ns, x: (x + 1).log(),
    "exp": lambda ns, x: x.exp(),
    "sin": lambda ns, x: x.sin(),
    "cos": lambda ns, x: x.cos(),
    "clip": lambda ns, x, low, high: x.clip(low, high),
    "min": lambda ns, *xs: ns.min_horizontal(*xs),
    "max": lambda ns, *xs: ns.max_horizontal(*xs),
}
ACROSS_ROWS = frozenset(
    {"lag", "lead", "shift", "diff", "pct_change", "rolling_mean", "rolling_sum", "rolling_std", "rolling_min",
     "rolling_max", "ewm_mean", "cumsum", "cum_sum", "cumprod", "rank", "mean", "sum", "std", "var", "median",
     "count", "first", "last", "quantile", "over", "zscore", "normalize"}
)  # fmt: skip
ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Pow: lambda a, b: a**b,
}


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


class FeatureSet:
    """The project's feature definitions, checked against the contract and ready to apply."""

    def __init__(self, definitions: Sequence[ExpressionFeature | DatetimeFeature], contract: Contract) -> None:
        self.definitions = list(definitions)
        self.contract = contract
        self._steps = self._compile(nw)

    @property
    def derived(self) -> list[str]:
        """Columns the definitions add."""
        return [name for d in self.definitions for name in d.outputs]

    @property
    def inputs(self) -> list[str]:
        """The model's input columns: contract features and segments that are not dates, then derived ones."""
        raw = [
            n
            for n in self.contract.with_role(Role.FEATURE, Role.SEGMENT)
            if not self.contract.columns[n].type.is_temporal
        ]
        return raw + self.derived

    @property
    def table_columns(self) -> list[str]:
        """Columns of the features table, before bookkeeping columns."""
        contract = self.contract
        kept = contract.with_role(Role.ID, Role.EVENT_TIME, Role.SEGMENT, Role.FEATURE, Role.TARGET)
        return kept + [c for c in self.derived if c not in kept]

    def apply(self, frame: Any) -> Any:
        """Add the derived columns to ``frame`` (any frame Narwhals supports); returns the same kind.

        A Polars frame gets the same definitions compiled to Polars directly: Narwhals would
        produce the same expressions, but building them anew costs milliseconds a call, which
        a one-row request notices.
        """
        if isinstance(frame, pl.DataFrame | pl.LazyFrame):
            try:
                for exprs in self._polars_steps:
                    frame = frame.with_columns(*exprs)
            except pl.exceptions.ColumnNotFoundError as exc:
                raise FeatureError(f"cannot compute features, the input lacks a column: {exc}") from exc
            return frame
        data = nw.from_native(frame)
        try:
            for exprs in self._steps:
                data = data.with_columns(*exprs)
        except nw.exceptions.ColumnNotFoundError as exc:
            raise FeatureError(f"cannot compute features, the input lacks a column: {exc}") from exc
        return data.to_native()

    @cached_property
    def _polars_steps(self) -> list[list[pl.Expr]]:
        return self._compile(pl)

    def to_json(self) -> str:
        """The definitions as JSON, to travel inside a model package."""
        return json.dumps([d.model_dump(exclude_none=True) for d in self.definitions])

    @classmethod
    def from_json(cls, text: str, contract: Contract) -> FeatureSet:
        return cls(parse_definitions(json.loads(text)), contract)

    def _compile(self, ns: Namespace) -> list[list[Any]]:
        """The definitions as steps of expressions; a step uses only columns of earlier steps.

        Definitions that do not depend on each other share a step, so applying them costs one
        pass per level of dependency rather than one per definition (it matters for one row).
        """
        known = {n: c for n, c in self.contract.columns.items() if c.role is not Role.IGNORE}
        available = set(known)
        level_of = dict.fromkeys(known, -1)
        steps: list[list[Any]] = []
        for d in self.definitions:
            clash = [o for o in d.outputs if o in available]
            if clash:
                raise FeatureError(f"feature output(s) {clash} would overwrite an existing column; rename them")
            if isinstance(d, DatetimeFeature):
                column = known.get(d.column)
                if column is None or not column.type.is_temporal:
                    raise FeatureError(
                        f"datetime feature on {d.column!r}: needs a date or datetime column of the contract"
                    )
                exprs, used = _datetime_parts(d, ns), {d.column}
            else:
                exprs, used = [compile_expression(d.expr, available, ns).alias(d.name)], referenced_columns(d.expr)
            level = 1 + max((level_of.get(name, -1) for name in used), default=-1)
            if level == len(steps):
                steps.append([])
            steps[level] += exprs
            level_of.update(dict.fromkeys(d.outputs, level))
            available |= set(d.outputs)
        return steps


def parse_definitions(raw: Any) -> list[ExpressionFeature | DatetimeFeature]:
    """Validate feature definitions from the project file or a model package."""
    try:
        return _DEFS.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FeatureError(f"feature definition {where}: {first['msg']} (got {first.get('input')!r})") from exc


def compile_expression(text: str, columns: set[str], ns: Namespace = nw) -> Any:
    """Compile a row-wise arithmetic expression over ``columns`` into an expression of ``ns``
    (Narwhals by default; Polars for the fast path)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise FeatureError(f"feature expression {text!r} is not valid: {exc.msg}") from exc
    value = _compile(tree.body, text, columns, ns)
    if not isinstance(value, ns.Expr):
        raise FeatureError(f"feature expression {text!r} uses no column; a constant is not a feature")
    return ns.when(value.is_finite()).then(value)


def referenced_columns(text: str) -> set[str]:
    """The column names an expression (already compiled once, so valid) reads."""
    names = set()
    for node in ast.walk(ast.parse(text, mode="eval")):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "col":
            names.add(str(node.args[0].value))  # type: ignore[attr-defined]
    return names


def _compile(node: ast.AST, text: str, columns: set[str], ns: Namespace) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in columns:
            raise FeatureError(f"feature expression {text!r}: unknown column {node.id!r}; known: {sorted(columns)}")
        return ns.col(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _compile(node.operand, text, columns, ns)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _compile(node.left, text, columns, ns), _compile(node.right, text, columns, ns)
        if isinstance(node.op, ast.Div):
            return _divide(left, right, ns)
        operation = ARITHMETIC.get(type(node.op))
        if operation is None:
            raise FeatureError(f"feature expression {text!r}: operator {type(node.op).__name__} is not supported")
        return operation(left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call(node, text, columns, ns)
    raise FeatureError(
        f"feature expression {text!r}: {ast.unparse(node)!r} is not allowed; use column names, numbers, "
        f"+ - * / ** and the functions {sorted(ROW_WISE)}"
    )


def _call(node: ast.Call, text: str, columns: set[str], ns: Namespace) -> Any:
    assert isinstance(node.func, ast.Name)
    name = node.func.id
    if name == "col" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
        column = str(node.args[0].value)  # col("name with spaces")
        if column not in columns:
            raise FeatureError(f"feature expression {text!r}: unknown column {column!r}")
        return ns.col(column)
    if name in ACROSS_ROWS:
        raise NotOnlineComputable(
            f"feature expression {text!r}: {name}() depends on other rows, so a single online request "
            "could not compute it the same way as training did (training/serving skew). Compute it "
            "upstream and ingest it as a column, or use a row-wise expression."
        )
    function = ROW_WISE.get(name)
    if function is None or node.keywords:
        raise FeatureError(f"feature expression {text!r}: unknown function {name}(); available: {sorted(ROW_WISE)}")
    args = [_compile(a, text, columns, ns) for a in node.args]
    try:
        result = function(ns, *[ns.lit(a) if isinstance(a, float) and name in ("min", "max") else a for a in args])
    except TypeError as exc:
        raise FeatureError(f"feature expression {text!r}: wrong arguments for {name}(): {exc}") from exc
    if not isinstance(result, ns.Expr):
        raise FeatureError(f"feature expression {text!r}: {name}() needs a column argument")
    return result


def _divide(left: Any, right: Any, ns: Namespace) -> Any:
    if isinstance(right, float):
        if right == 0:
            raise FeatureError("feature expression divides by the constant 0")
        return left / right
    return ns.when(right != 0).then(left / right)


def _datetime_parts(definition: DatetimeFeature, ns: Namespace) -> list[Any]:
    column = ns.col(definition.column)
    exprs = []
    values: dict[str, Any] = {
        "hour": column.dt.hour(),
        "minute": column.dt.minute(),
        "minute_of_day": column.dt.hour().cast(ns.Int32) * 60 + column.dt.minute(),
        "day_of_week": column.dt.weekday(),
        "day_of_month": column.dt.day(),
        "day_of_year": column.dt.ordinal_day(),
        "month": column.dt.month(),
        "year": column.dt.year(),
    }
    names = iter(definition.outputs)
    for part in definition.parts:
        value = values[part].cast(ns.Float64)
        if definition.cyclic and part in CYCLES:
            period, first = CYCLES[part]
            angle = (value - first) * (2 * math.pi / period)
            exprs += [angle.sin().alias(next(names)), angle.cos().alias(next(names))]
        else:
            exprs.append(value.alias(next(names)))
    return exprs


# -- the features table ----------------------------------------------------------------------

RAW_VERSION = "driftloop.raw_version"


@dataclass(frozen=True)
class FeatureRun:
    """What one materialisation did: the table version it made and from which raw version."""

    version: int | None
    raw_version: int | None
    batches: list[str]
    rows: int


def materialize(lake: Lake, features: FeatureSet) -> FeatureRun:
    """Bring ``features`` up to date with ``raw``, computing only batches added since the last run.

    Rows are upserted by the contract's key (id and/or event time), so a later batch that
    re-sends a key replaces the earlier row and a rerun changes nothing. The raw version read
    is recorded in the commit, which is how the next run knows where to start.
    """
    raw_version = lake.version(Table.RAW)
    if raw_version is None:
        raise TableNotFound("table 'raw' is empty: run `driftloop ingest` before `driftloop features`")
    done = _watermark(lake)
    if done == raw_version or (done is not None and _only_compacted(lake, done, raw_version)):
        return FeatureRun(lake.version(Table.FEATURES), raw_version, [], 0)
    batches = _batch_ids(lake, raw_version) - (_batch_ids(lake, done) if done is not None else set())
    if not batches:
        return FeatureRun(lake.version(Table.FEATURES), raw_version, [], 0)
    new = sorted(batches)
    rows = lake.scan(Table.RAW, version=raw_version).filter(pl.col(BATCH_ID).is_in(new)).collect()
    key = features.contract.key
    if key:  # a key sent twice among the new batches: the last one ingested wins
        rows = rows.sort(INGESTED_AT, ROW).unique(subset=key, keep="last", maintain_order=True)
    table = features.apply(rows).select(*features.table_columns, BATCH_ID, EVENT_DATE)
    metadata = {RAW_VERSION: str(raw_version), "driftloop.batches": str(len(new))}
    if not table.height:
        return FeatureRun(lake.version(Table.FEATURES), raw_version, new, 0)
    if key:
        version = lake.merge(Table.FEATURES, table, key=key, metadata=metadata)
    else:
        version = lake.replace(Table.FEATURES, table, where=Where(one_of={BATCH_ID: new}), metadata=metadata)
    return FeatureRun(version, raw_version, new, table.height)


def _watermark(lake: Lake) -> int | None:
    if not lake.exists(Table.FEATURES):
        return None
    for commit in lake.history(Table.FEATURES, limit=20, counts=False):
        if RAW_VERSION in commit.metadata:
            return int(commit.metadata[RAW_VERSION])
    return None


def _only_compacted(lake: Lake, since: int, until: int) -> bool:
    """Whether every commit to raw after version ``since``, up to ``until``, was a compaction.

    OPTIMIZE rewrites files and adds no row, so there is nothing new to materialize; saying so
    from the log spares two scans of raw's batch ids every tick after the loop compacts raw.
    A commit racing in after ``until`` is left out by version (and more than a few such make
    the answer "no", and the batch ids are compared as usual).
    """
    window = until - since
    commits = [c for c in lake.history(Table.RAW, limit=window + 8, counts=False) if since < c.version <= until]
    return len(commits) == window and all(c.operation == "OPTIMIZE" for c in commits)


def _batch_ids(lake: Lake, version: int) -> set[str]:
    ids = lake.scan(Table.RAW, version=version).select(pl.col(BATCH_ID).unique()).collect().to_series()
    return set(ids.to_list())
