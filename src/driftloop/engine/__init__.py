"""Engines: the dataframe engine a project's stages run on, chosen by name in ``[project] engine``.

``base`` is the interface (the contract check, features, batch scoring, profiles); ``polars`` is
the first engine; a Spark engine is the next, as a module of its own behind the same interface.
"""

from __future__ import annotations

from collections.abc import Callable

from driftloop.engine.base import Engine, Scorer
from driftloop.engine.polars import PolarsEngine
from driftloop.errors import ConfigError

# Engine name -> what makes one.
ENGINES: dict[str, Callable[[], Engine]] = {PolarsEngine.name: PolarsEngine}
DEFAULT_ENGINE = PolarsEngine.name


def resolve_engine(engine: str | Engine | None = None) -> Engine:
    """The engine named ``engine`` (or ``engine`` itself; the default engine for None)."""
    if engine is None:
        engine = DEFAULT_ENGINE
    if not isinstance(engine, str):
        return engine
    if engine not in ENGINES:
        raise ConfigError(f"no engine named {engine!r} in this driftloop; the engines are {sorted(ENGINES)}")
    return ENGINES[engine]()


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "PolarsEngine", "Scorer", "resolve_engine"]
