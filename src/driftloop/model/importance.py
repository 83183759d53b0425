"""How much the model relies on each input: permutation importance, measured at training time.

Each input (as the features make it, derived ones included) is shuffled in turn across a
sample of the rows the model was fitted on, and the network's outputs are compared with
those of the unshuffled rows: the mean absolute change, in units of each output's spread,
averaged over the outputs. No labels are needed, and an input the model ignores moves
nothing. The shares sum to 1; monitoring weighs the dataset's drift verdict by them, so a
drifting input the model does not use does not call for a retrain.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from driftloop.runtime.package import ModelPackage

# Rows sampled for the measurement: enough for stable shares, cheap beside training.
SAMPLE_ROWS = 2000


def permutation_importance(package: ModelPackage, rows: pl.DataFrame, *, seed: int = 0) -> dict[str, float]:
    """Each input's share of the model's reliance on its inputs, measured on ``rows``."""
    sample = rows.sample(min(rows.height, SAMPLE_ROWS), seed=seed) if rows.height > SAMPLE_ROWS else rows
    inputs = package.features.apply(sample)
    used = [*package.preprocessor.numeric, *package.preprocessor.categorical]
    if not used or inputs.height < 2:
        return {}
    base = _outputs(package, inputs)
    spread = base.std(axis=0)
    spread[spread == 0] = 1.0
    rng = np.random.default_rng(seed)
    raw = {}
    for name in used:
        shuffled = inputs.with_columns(inputs.get_column(name).gather(rng.permutation(inputs.height)))
        raw[name] = float(np.mean(np.abs(_outputs(package, shuffled) - base) / spread))
    total = sum(raw.values())
    return {name: (value / total if total > 0 else 1 / len(raw)) for name, value in raw.items()}


def _outputs(package: ModelPackage, inputs: pl.DataFrame) -> np.ndarray:
    numbers, categories = package.preprocessor.transform(inputs)
    return np.asarray(package.network(numbers, categories), dtype=np.float64)
