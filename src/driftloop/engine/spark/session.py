"""The Spark session of a project, made in one place from ``[spark]``.

A project names where Spark runs: a master (``local[*]``, ``spark://host:7077``, ``yarn``) for
a classic session, or ``remote`` (``sc://host:15002``) for Spark Connect, as Databricks Connect
and Sail speak it. A session already running in the process (a notebook's, a Databricks job's,
classic or Connect) is used as it is. driftloop's conventions are set on every session it makes
or reuses: instants are naive UTC (the session's time zone is UTC, so Spark neither shifts
stored times nor reads them in the driver's zone), and Arrow carries batches between the JVM
and Python. Which Delta writer takes Spark's rows (``delta``) is the project lake's to know,
not the session's: a Databricks serverless session accepts no conf it does not list.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from driftloop.errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Set on every session: what driftloop's frames assume. A user's conf may add to them, not undo them.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# Defaults of a classic session a user's conf may change (a Connect server has its own).
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}
_lock = threading.Lock()


class SparkOptions(BaseModel):
    """``[spark]``: where the Spark engine runs, how its rows reach Delta, and the Spark conf it adds."""

    model_config = ConfigDict(extra="forbid")

    master: str = Field("local[*]", min_length=1, description="A classic session's master: local[*], spark://…, yarn.")
    remote: str | None = Field(
        None, description="A Spark Connect server (sc://host:port); when set, `master` is not used."
    )
    app_name: str = Field("driftloop", min_length=1)
    delta: Literal["delta-rs", "native"] = Field(
        "delta-rs",
        description="How Spark's rows become Delta commits: Parquet written by Spark and committed by delta-rs "
        "(no Delta jars needed), or Spark's own Delta writer (Databricks, delta-spark, Sail).",
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark conf, e.g. spark.executor.memory.")

    @field_validator("remote")
    @classmethod
    def _connect_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith("sc://"):
            raise ValueError(f"a Spark Connect address starts with sc:// (got {url!r}), e.g. sc://localhost:15002")
        return url

    @field_validator("conf")
    @classmethod
    def _keeps_conventions(cls, conf: dict[str, str]) -> dict[str, str]:
        for key, value in conf.items():
            if key in REQUIRED_CONF and value != REQUIRED_CONF[key]:
                raise ValueError(f"{key} must stay {REQUIRED_CONF[key]!r}: driftloop's tables hold naive UTC instants")
        return conf


def spark_session(options: SparkOptions | None = None) -> SparkSession:
    """The Spark session ``options`` describe: with ``remote``, the Connect session to that
    server; otherwise the session running in the process when there is one (Spark allows one
    classic session per process; a notebook's or a job's is reused, a Databricks runtime's
    Connect session too), else a new classic one."""
    options = options or SparkOptions()
    try:
        import pyspark.sql  # noqa: F401  (said here, before any session is asked for)
    except ModuleNotFoundError as exc:
        raise MissingDependency.of(exc, extra="spark", purpose="the Spark engine") from exc
    with _lock:
        try:
            session = _connect(options) if options.remote else _classic(options)
            for key, value in REQUIRED_CONF.items():
                session.conf.set(key, value)
        except Exception as exc:  # the JVM or the server did not start: say which, and how to fix it
            where = options.remote or options.master
            raise ConfigError(
                f"cannot start a Spark session on {where}: {exc}. Check [spark] in driftloop.toml "
                "(a local master needs Java 17 or later; a remote one, its server running)"
            ) from exc
        return session


def _connect(options: SparkOptions) -> SparkSession:
    from pyspark.sql import SparkSession

    assert options.remote is not None
    builder = SparkSession.builder.remote(options.remote).appName(options.app_name)
    for key, value in options.conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _classic(options: SparkOptions) -> SparkSession:
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # A Connect session made earlier in this process leaves PySpark in "connect mode" (a flag in
    # the environment, kept after that session stops), in which this builder would ask for a URL.
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    if options.master.startswith("local"):
        # Local workers are Python processes of this machine: they must be this interpreter
        # (its environment holds driftloop, Polars and Arrow), not whichever `python` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(options.master).appName(options.app_name)
    for key, value in {**DEFAULT_CONF, **options.conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
