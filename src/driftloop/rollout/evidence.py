"""The decisive metric of a rollout's arms, row by row, as labels arrive.

Each arm's answers since the rollout began (the champion's ``online`` rows, each candidate's
``canary`` rows of its version) are joined to the truth the lake holds (the latest label, else the features
row's own target), and each labelled row gets its loss under ``[promote]``'s decisive metric:
the absolute error for ``mae``, the squared error for ``rmse`` and ``r2``, the row's SMAPE; for
a label, minus the log of the true class's probability for ``log_loss``, the Brier score for
``brier``, and being wrong for the others. A row's loss is the mean over the targets it has a
truth for, each over the champion arm's mean loss of that target (so 1.0 is the champion's level
and targets in other units weigh alike). :func:`~driftloop.rollout.sequential.msprt` compares
the arms' losses, pair by pair.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from driftloop.engine.polars import PolarsEngine
from driftloop.lake import PredictionSource, Table
from driftloop.monitor.logged import key_columns
from driftloop.monitor.performance import ACTUAL, actuals, labelled_pairs
from driftloop.project import Project
from driftloop.rollout.state import Rollout, history
from driftloop.runtime.targets import prediction_columns, probability_column


def arm_losses(project: Project, rollout: Rollout) -> dict[str, np.ndarray]:
    """The per-row losses of each arm (by version, the champion's first) on the labelled rows it
    answered since ``rollout`` began."""
    lake, contract = project.lake, project.contract
    if not lake.exists(Table.PREDICTIONS) or not lake.exists(Table.FEATURES):
        return {version: np.zeros(0) for version in rollout.versions}
    began = history(lake, rollout.model).filter(pl.col("rollout_id") == rollout.rollout_id)["at"].min()
    sources = dict.fromkeys(rollout.candidates, PredictionSource.CANARY)
    sources[rollout.champion] = PredictionSource.ONLINE
    outputs = [c for columns in prediction_columns(contract).values() for c in columns]
    answered = (
        lake.scan(Table.PREDICTIONS)
        .filter(pl.col("model_name") == rollout.model, pl.col("scored_at") >= began,
                pl.col("model_version").is_in(list(sources)), pl.col("source").is_in(list(set(sources.values()))))
        .select("entity_id", "event_time", "source", "model_version", *outputs)  # not the logged inputs: the bulk
        .collect()
    )  # fmt: skip
    truth = _truth(project, answered)
    engine = PolarsEngine()
    pairs = [
        labelled_pairs(engine, answered.filter(pl.col("source") == sources[v], pl.col("model_version") == v), truth,
                       contract)
        for v in rollout.versions
    ]  # fmt: skip
    return dict(zip(rollout.versions, _normalised(pairs, project), strict=True))


def _truth(project: Project, answered: pl.DataFrame) -> pl.DataFrame:
    """The truth of the rows ``answered`` (the latest label, else the features row's target): only
    their keys' rows, and only the key and target columns, are read; each look of a long rollout
    would otherwise read the whole features table."""
    lake, contract = project.lake, project.contract
    key = contract.key
    wanted = answered.select(key_columns(contract)).unique().lazy() if key else None
    features = lake.scan(Table.FEATURES).select(*key, *contract.targets)
    labels = lake.scan(Table.LABELS) if lake.exists(Table.LABELS) else None
    if wanted is not None:
        features = features.join(wanted, on=key, how="semi")
        labels = None if labels is None else labels.join(wanted, on=key, how="semi")
    truth: pl.DataFrame = actuals(contract, features.collect(), None if labels is None else labels.collect())
    return truth


def _normalised(arms: list[pl.DataFrame], project: Project) -> list[np.ndarray]:
    """Each arm's per-row loss: the mean over the targets a row has a truth for, each target's
    loss over the first arm's (the champion's) mean loss of it."""
    contract, promote = project.contract, project.settings.promote
    per_target: list[list[np.ndarray]] = []
    for target in contract.targets:
        column = contract.columns[target]
        metric = promote.class_metric if column.is_classification else promote.metric
        classes = [str(c) for c in column.classes or ()]
        losses = [row_losses(pairs, target, metric, classes) for pairs in arms]
        scale = float(np.nanmean(losses[0])) if np.isfinite(losses[0]).any() else 0.0
        per_target.append([loss / scale for loss in losses] if scale > 0 else losses)
    if not per_target:
        return [np.zeros(0) for _ in arms]
    normalised = []
    for side in range(len(arms)):
        stacked = np.vstack([losses[side] for losses in per_target])
        known = np.isfinite(stacked).any(axis=0)
        normalised.append(np.nanmean(stacked[:, known], axis=0) if known.any() else np.zeros(0))
    return normalised


def row_losses(pairs: pl.DataFrame, target: str, metric: str, classes: list[str]) -> np.ndarray:
    """Each labelled row's loss for ``target`` under ``metric`` (NaN where its truth is unknown)."""
    truth = pairs[ACTUAL + target]
    if classes:
        actual = truth.cast(pl.String).to_numpy()
        if metric in ("log_loss", "brier"):
            probabilities = pairs.select(probability_column(target, c) for c in classes).to_numpy().astype(float)
            index = np.array([classes.index(a) if a in classes else -1 for a in actual])
            known = index >= 0
            loss = np.full(len(actual), np.nan)
            if metric == "log_loss":
                loss[known] = -np.log(np.clip(probabilities[known, index[known]], 1e-15, 1.0))
            else:
                onehot = np.eye(len(classes))[index[known]]
                loss[known] = ((probabilities[known] - onehot) ** 2).sum(axis=1)
            return loss
        predicted = pairs[target].cast(pl.String).to_numpy()
        return np.where(truth.is_null().to_numpy(), np.nan, (predicted != actual).astype(float))
    actual_values = truth.cast(pl.Float64).to_numpy()
    predicted_values = pairs[target].cast(pl.Float64).to_numpy()
    error = predicted_values - actual_values
    if metric == "mae":
        return np.asarray(np.abs(error), dtype=np.float64)
    if metric == "smape":
        scale = (np.abs(actual_values) + np.abs(predicted_values)) / 2
        return np.asarray(np.divide(100 * np.abs(error), scale, out=np.zeros_like(scale), where=scale > 0))
    return np.asarray(error**2, dtype=np.float64)  # rmse, r2: the squared error orders the arms as both do


__all__ = ["arm_losses", "row_losses"]
