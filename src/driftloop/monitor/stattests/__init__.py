"""Drift tests over profiles, one per module, all behind :class:`DriftTest`.

A test compares a current profile with a reference profile of the same column and returns a
:class:`TestResult`: a statistic, and whether it says the column drifted at the given
threshold (a p-value below it for hypothesis tests, a distance above it for distances).
Adding a test is adding a module that defines one ``DriftTest`` and listing it in ``TESTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from driftloop.profiles import CategoryProfile, NumericProfile


@dataclass(frozen=True)
class TestResult:
    """What one test says about one column."""

    test: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None
    calibrated: bool = False  # the threshold is on the statistic, from the reference's own windows


class DriftTest(Protocol):
    """Compares a current profile of a column with its reference profile."""

    name: str
    applies_to: Literal["numeric", "category"]
    default_threshold: float

    def __call__(
        self, reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile, threshold: float
    ) -> TestResult: ...


def tests() -> dict[str, DriftTest]:
    """Every drift test by name."""
    from driftloop.monitor.stattests import chisquare, jensenshannon, ks, psi, wasserstein

    found: list[DriftTest] = [ks.TEST, wasserstein.TEST, psi.TEST, chisquare.TEST, jensenshannon.TEST]
    return {t.name: t for t in found}
