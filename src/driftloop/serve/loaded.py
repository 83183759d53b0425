"""A model version loaded to answer requests (from the registry, or from a bundle on a device):
the package's contract check, with every broken rule as a field-level error (row, column, rule,
value) for the 422 answer, and its outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from driftloop.data.validate import CheckResult
from driftloop.errors import RequestRefused
from driftloop.runtime import ModelPackage

# Field-level errors listed in one 422 answer; a request with more says how many there were.
ERRORS_SHOWN = 50


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, ready to score."""

    name: str
    version: str
    run_id: str
    package: ModelPackage

    def check(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows typed to the contract; RequestRefused (422) naming every broken rule otherwise."""
        result = self.package.check(frame)
        if result.ok and not result.rejected.height:
            return result.valid
        errors = field_errors(result)
        shown = "; ".join(_describe(e) for e in errors[:5])
        raise RequestRefused(f"the input breaks the data contract: {shown}", errors[:ERRORS_SHOWN])

    def predict(self, typed: pl.DataFrame) -> pl.DataFrame:
        return self.package.predict_valid(typed)


def field_errors(result: CheckResult[pl.DataFrame]) -> list[dict[str, Any]]:
    """One error per broken rule: batch-level ones by column, row-level ones by row and column."""
    errors: list[dict[str, Any]] = []
    for problem in result.problems:
        where = ["body", problem.column] if problem.column else ["body"]
        errors.append({"loc": where, "column": problem.column, "rule": problem.rule, "msg": problem.detail,
                       "examples": list(problem.examples)})  # fmt: skip
    for row in result.rejected.head(ERRORS_SHOWN).iter_rows(named=True):
        for rule in row["_rules"]:
            column, _, name = rule.partition(":")
            errors.append({"loc": ["body", row["_row"] - 1, column], "row": row["_row"] - 1, "column": column,
                           "rule": name, "value": row.get(column)})  # fmt: skip
    return errors


def _describe(error: dict[str, Any]) -> str:
    where = f"row {error['row']} " if "row" in error else ""
    return f"{where}{error.get('column') or 'request'}: {error['rule']}" + (
        f" (got {error['value']!r})" if error.get("value") is not None else ""
    )
