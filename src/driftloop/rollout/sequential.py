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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


__all__ = ["SequentialResult", "msprt"]
