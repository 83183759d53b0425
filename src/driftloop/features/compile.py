"""Feature expressions compiled from their text: :mod:`ast` into Narwhals expressions (so the same
definitions run on Polars now and Spark later) or into Polars ones (the fast path for a Polars
frame, which a one-row request notices).

Only arithmetic, numbers, column names and a short list of row-wise functions are accepted.
Anything that needs other rows (lags, rolling windows, aggregates) is refused, because a single
online request could not compute it the same way. Division by zero and other non-finite results
give null, which preprocessing imputes.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

import narwhals as nw

from driftloop.data.clock import UTC_ZONE
from driftloop.errors import FeatureError, NotOnlineComputable
from driftloop.features.definitions import CYCLES, DatetimeFeature

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


def datetime_parts(definition: DatetimeFeature, ns: Namespace, zone_name: str = UTC_ZONE) -> list[Any]:
    """The calendar parts of a date or datetime column; a datetime (a naive UTC instant) is read
    on the wall clock of ``zone_name``."""
    column = ns.col(definition.column)
    if zone_name != UTC_ZONE:
        column = column.dt.replace_time_zone(UTC_ZONE).dt.convert_time_zone(zone_name).dt.replace_time_zone(None)
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
