"""The always-valid test: looked at after every batch of rows, it wrongly finds a difference
between equal arms no more often than its alpha says (a t-test looked at as often does, many
times over), and it finds a real difference."""

from __future__ import annotations

import numpy as np
from scipy import stats

from driftloop.rollout.sequential import best_arm, compare, facing, msprt

LOOKS = range(20, 1001, 20)  # a look every 20 rows an arm, up to 1,000


def rejected_ever(rng: np.random.Generator, shift: float, alpha: float = 0.05) -> tuple[bool, bool]:
    """Whether the mSPRT, and a t-test, reject at any look of one experiment."""
    first, second = rng.normal(1.0, 1.0, 1000), rng.normal(1.0 + shift, 1.0, 1000)
    always_valid = any(msprt(first[:n], second[:n], tau2=0.1**2).decided(alpha) for n in LOOKS)
    naive = any(stats.ttest_ind(first[:n], second[:n]).pvalue <= alpha for n in LOOKS)
    return always_valid, naive


def test_peeking_does_not_inflate_the_always_valid_test_as_it_does_a_t_test() -> None:
    rng = np.random.default_rng(7)
    runs = [rejected_ever(rng, shift=0.0) for _ in range(300)]
    false_always_valid = sum(a for a, _ in runs) / len(runs)
    false_naive = sum(n for _, n in runs) / len(runs)
    assert false_always_valid <= 0.05 + 0.025  # alpha, with room for 300 experiments' noise
    assert false_naive > 2 * 0.05  # the t-test checked 50 times: far above its alpha


def test_a_real_difference_is_found_and_its_sign_says_which_arm_is_better() -> None:
    rng = np.random.default_rng(11)
    found = [rejected_ever(rng, shift=0.25)[0] for _ in range(50)]
    assert sum(found) / len(found) > 0.9
    result = msprt(rng.normal(1.0, 1.0, 2000), rng.normal(0.8, 1.0, 2000), tau2=0.1**2)
    assert result.decided(0.05) and result.difference < 0 and result.p_value < 0.05


def test_too_few_rows_or_constant_arms_decide_what_they_can() -> None:
    assert msprt(np.array([1.0]), np.array([2.0, 3.0]), 0.01).p_value == 1.0
    assert msprt(np.ones(5), np.ones(5), 0.01).p_value == 1.0
    assert msprt(np.ones(5), np.zeros(5), 0.01).p_value == 0.0


def test_the_best_of_several_arms_is_found_and_equal_arms_are_rarely_told_apart() -> None:
    """Three arms: one with a lower loss is named the best once every comparison is decided; three
    equal arms, looked at 50 times each, name a best in no more of the experiments than alpha
    (each pair is tested at alpha over the number of pairs)."""
    rng = np.random.default_rng(5)
    arms = {"1": rng.normal(1.0, 1.0, 2000), "2": rng.normal(0.7, 1.0, 2000), "3": rng.normal(1.0, 1.0, 2000)}
    pairs = compare(arms, tau2=0.1**2)
    assert best_arm(pairs, 0.05, min_rows=30) == "2"
    assert best_arm(pairs, 0.05, min_rows=3000) is None  # too few rows for the settings: no verdict yet
    assert facing(pairs, "2")["1"].difference > 0 and facing(pairs, "1")["2"].difference < 0

    def named_ever() -> bool:
        equal = {name: rng.normal(1.0, 1.0, 1000) for name in "abc"}
        return any(best_arm(compare({k: v[:n] for k, v in equal.items()}, 0.1**2), 0.05, 2) for n in LOOKS)

    found = [named_ever() for _ in range(150)]
    assert sum(found) / len(found) <= 0.05 + 0.03
