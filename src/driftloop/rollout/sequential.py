"""An always-valid test of two arms' mean per-row loss: the mixture sequential probability
ratio test (mSPRT) of Johari, Pekelis and Walsh, "Always Valid Inference" (2017).

After each look, the likelihood ratio of "the means differ" (a normal mixture over the
difference, of variance ``tau2``) against "they are equal" is

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ² / (2 V (V + τ²)))

with θ the difference of the arms' means and V = s₁²/n₁ + s₂²/n₂ its variance. Under equal
means Λ is a martingale, so by Ville's inequality it ever reaches 1/α with probability at most
α, however often it is looked at: "B is better with 95% confidence" is not inflated by peeking,
as a t-test's p-value checked every minute would be. ``p_value`` is 1/Λ capped at 1 (the
always-valid p-value at this look; keep the smallest seen).

With more than two arms every pair is tested, each at α over the number of pairs (Bonferroni):
the chance that any pair is ever wrongly told apart stays within α, at every look, so "the best
of three with 95% confidence" means what it says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np


@dataclass(frozen=True)
class SequentialResult:
    """One look at two arms: their sizes and means, the difference (second minus first), the
    likelihood ratio and its always-valid p-value."""

    n_first: int
    n_second: int
    mean_first: float
    mean_second: float
    difference: float
    ratio: float
    p_value: float

    def decided(self, alpha: float) -> bool:
        """Whether the means differ with confidence ``1 - alpha``."""
        return self.p_value <= alpha

    def swapped(self) -> SequentialResult:
        """The same look with the arms the other way round."""
        return SequentialResult(self.n_second, self.n_first, self.mean_second, self.mean_first, -self.difference,
                                self.ratio, self.p_value)  # fmt: skip


def msprt(first: np.ndarray, second: np.ndarray, tau2: float) -> SequentialResult:
    """The mSPRT of the two arms' per-row values (losses), with mixing variance ``tau2`` (the
    squared size of difference the test finds quickest); arms with fewer than 2 rows decide nothing."""
    n1, n2 = int(first.size), int(second.size)
    if n1 < 2 or n2 < 2:
        mean1 = float(first.mean()) if n1 else math.nan
        mean2 = float(second.mean()) if n2 else math.nan
        return SequentialResult(n1, n2, mean1, mean2, mean2 - mean1, 1.0, 1.0)
    mean1, mean2 = float(first.mean()), float(second.mean())
    variance = float(first.var(ddof=1)) / n1 + float(second.var(ddof=1)) / n2
    difference = mean2 - mean1
    if variance <= 0:  # both arms constant: they differ surely, or not at all
        ratio = math.inf if difference else 1.0
    else:
        exponent = tau2 * difference**2 / (2 * variance * (variance + tau2))
        ratio = math.sqrt(variance / (variance + tau2)) * math.exp(min(exponent, 700.0))
    return SequentialResult(n1, n2, mean1, mean2, difference, ratio, min(1.0, 1.0 / ratio))


Pairs = dict[tuple[str, str], SequentialResult]  # each pair of arms' look, by the arms' names


def facing(pairs: Pairs, arm: str) -> dict[str, SequentialResult]:
    """Each comparison of ``arm`` with another, by the other's name, ``arm`` as the first."""
    faced = {}
    for (first, second), result in pairs.items():
        if arm == first:
            faced[second] = result
        elif arm == second:
            faced[first] = result.swapped()
    return faced


def compare(losses: Mapping[str, np.ndarray], tau2: float) -> Pairs:
    """The mSPRT of every pair of arms (by name, in the order given: the first is ``first``)."""
    return {(a, b): msprt(losses[a], losses[b], tau2) for a, b in combinations(losses, 2)}


def best_arm(pairs: Pairs, alpha: float, min_rows: int) -> str | None:
    """The arm whose mean loss is lower than every other arm's with confidence ``1 - alpha`` over
    all the pairs (each decided at ``alpha`` over their number), each arm with ``min_rows`` at
    least; None while no arm is."""
    level = alpha / max(len(pairs), 1)
    for arm in sorted({name for pair in pairs for name in pair}):
        faced = facing(pairs, arm).values()
        if all(r.decided(level) and min(r.n_first, r.n_second) >= min_rows and r.difference > 0 for r in faced):
            return arm
    return None


__all__ = ["Pairs", "SequentialResult", "best_arm", "compare", "facing", "msprt"]
