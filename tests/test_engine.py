"""One suite for every engine: each must give what the Polars implementations beside the
descriptions give (the contract check, features, scoring, profiles), on the same rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from driftloop.data.contract import Contract
from driftloop.data.validate import check_batch
from driftloop.engine import DEFAULT_ENGINE, ENGINES, Engine, PolarsEngine, resolve_engine
from driftloop.errors import ConfigError, DriftloopError, FeatureError
from driftloop.features import DatetimeFeature, ExpressionFeature, FeatureSet
from driftloop.lake import ROW, RULES
from driftloop.profiles import NumericProfile, profile
from driftloop.settings import parse_settings
from tests.conftest import small_frame


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Engine:
    return resolve_engine(str(request.param))


def test_the_check_splits_rows_as_the_contract_says(engine: Engine, small_contract: Contract) -> None:
    frame = small_frame(6).with_columns(pl.Series("x", ["1", "oops", "3", "400", "5", "6"]))
    result = engine.check(frame, small_contract)
    expected = check_batch(frame, small_contract)
    assert result.valid.equals(expected.valid)
    assert dict(zip(result.rejected.get_column(ROW), result.rejected.get_column(RULES).to_list(), strict=True)) == {
        2: ["x:type"],
        4: ["x:max"],
    }
    refused = engine.check(frame.drop("x"), small_contract)
    assert not refused.ok and refused.problems[0].column == "x"


def test_features_are_the_definitions_own(engine: Engine, small_contract: Contract) -> None:
    features = FeatureSet(
        [ExpressionFeature(name="ratio", expr="x / n"), DatetimeFeature(column="ts", parts=["minute"])], small_contract
    )
    typed = check_batch(small_frame(6), small_contract).valid
    added = engine.add_features(typed, features)
    assert added.equals(features.apply(typed))
    assert added.get_column("ratio")[0] is None  # 0 / 0: null, not NaN
    with pytest.raises(FeatureError, match="lacks a column"):
        engine.add_features(typed.drop("n"), features)


def test_scoring_puts_each_rows_outputs_beside_it(engine: Engine) -> None:
    rows = pl.DataFrame({"k": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    scored = engine.score(rows, lambda batch: batch.select((pl.col("x") * 10).alias("y")))
    assert scored.select("k", "y").rows() == [("a", 10.0), ("b", 20.0), ("c", 30.0)]
    with pytest.raises(DriftloopError, match="2 output rows for 3 input rows"):
        engine.score(rows, lambda batch: batch.head(2).select(pl.col("x").alias("y")))
    with pytest.raises(DriftloopError, match="names of input columns"):
        engine.score(rows, lambda batch: batch.select("x"))


def test_profiles_share_the_references_bins_and_merge(engine: Engine) -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"x": rng.normal(0, 1, 4000), "c": rng.choice(["p", "q", "r"], 4000)})
    reference = engine.profile(frame, ["x"], ["c"])
    assert reference == profile(frame, ["x"], ["c"])
    halves = [engine.profile(part, ["x"], ["c"], like=reference) for part in (frame.head(1500), frame.tail(2500))]
    whole = halves[0].merge(halves[1])
    x = whole.columns["x"]
    assert isinstance(x, NumericProfile) and isinstance(reference.columns["x"], NumericProfile)
    assert x.counts == reference.columns["x"].counts and whole.columns["c"] == reference.columns["c"]


def test_an_engine_is_chosen_by_name_or_object_in_one_place() -> None:
    assert isinstance(resolve_engine(None), PolarsEngine) and resolve_engine(None).name == DEFAULT_ENGINE
    mine = PolarsEngine()
    assert resolve_engine(mine) is mine
    with pytest.raises(ConfigError, match=r"no engine named 'duckdb'.*\['polars'\]"):
        resolve_engine("duckdb")
    raw = {"project": {"name": "p", "engine": "duckdb"}, "contract": {"columns": {}}}
    with pytest.raises(ConfigError, match=r"project.engine: .*no engine named 'duckdb'"):
        parse_settings(raw)
