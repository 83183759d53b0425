"""Engines: the dataframe engine a project's stages run on, chosen by name in ``[project] engine``.

``base`` is the interface (the contract check, features, batch scoring, profiles); ``polars``
runs them in this process, ``spark`` on a Spark session (``[spark]``), each a module of its own
behind the same interface.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from driftloop.engine.base import Engine, Scorer
from driftloop.engine.polars import PolarsEngine
from driftloop.engine.spark import SparkEngine, SparkOptions
from driftloop.errors import ConfigError, MissingDependency


def _spark(options: SparkOptions | None) -> Engine:
    if importlib.util.find_spec("pyspark") is None:  # said when the engine is chosen, not at the first job
        raise MissingDependency("pyspark", extra="spark", purpose="the Spark engine ([project] engine = 'spark')")
    return SparkEngine(options)


# Engine name -> what makes one from the project's ``[spark]`` options (which only Spark reads).
ENGINES: dict[str, Callable[[SparkOptions | None], Engine]] = {
    PolarsEngine.name: lambda _: PolarsEngine(),
    SparkEngine.name: _spark,
}
DEFAULT_ENGINE = PolarsEngine.name


def resolve_engine(engine: str | Engine | None = None, *, spark: SparkOptions | None = None) -> Engine:
    """The engine named ``engine`` (or ``engine`` itself; the default engine for None); a Spark
    engine runs where ``spark`` says (default: ``local[*]``)."""
    if engine is None:
        engine = DEFAULT_ENGINE
    if not isinstance(engine, str):
        return engine
    if engine not in ENGINES:
        raise ConfigError(f"no engine named {engine!r} in this driftloop; the engines are {sorted(ENGINES)}")
    return ENGINES[engine](spark)


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "PolarsEngine", "Scorer", "SparkEngine", "SparkOptions",
           "resolve_engine"]  # fmt: skip
