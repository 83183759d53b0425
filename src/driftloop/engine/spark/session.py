"""The Spark session of a project, made in one place from ``[spark]``.

A project names where Spark runs: a master (``local[*]``, ``spark://host:7077``, ``yarn``) for
a classic session, or ``remote`` (``sc://host:15002``) for Spark Connect, as Databricks Connect
and Sail speak it. driftloop's conventions are set on every session it makes: instants are
naive UTC (the session's time zone is UTC, so Spark neither shifts stored times nor reads them
in the driver's zone) and Arrow carries batches between the JVM and Python.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from driftloop.errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Set on every session: what driftloop's frames assume. A user's conf may add to them, not undo them.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# Defaults a user's conf may change.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}
_lock = threading.Lock()


class SparkOptions(BaseModel):
    """``[spark]``: where the Spark engine runs and the Spark conf it adds."""

    model_config = ConfigDict(extra="forbid")

    master: str = Field("local[*]", min_length=1, description="A classic session's master: local[*], spark://…, yarn.")
    remote: str | None = Field(
        None, description="A Spark Connect server (sc://host:port); when set, `master` is not used."
    )
    app_name: str = Field("driftloop", min_length=1)
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
    """The Spark session ``options`` describe: the process's active one when it is already
    running (Spark allows one per process; a notebook's or a job's is reused), else a new one."""
    options = options or SparkOptions()
    try:
        from pyspark.sql import SparkSession
    except ModuleNotFoundError as exc:
        raise MissingDependency.of(exc, extra="spark", purpose="the Spark engine") from exc
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        if options.remote is None and options.master.startswith("local"):
            # Local workers are Python processes of this machine: they must be this interpreter
            # (its environment holds driftloop, Polars and Arrow), not whichever `python` is first on PATH.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.appName(options.app_name)
        builder = builder.remote(options.remote) if options.remote else builder.master(options.master)
        for key, value in {**DEFAULT_CONF, **options.conf, **REQUIRED_CONF}.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as exc:  # the JVM or the server did not start: say which, and how to fix it
            where = options.remote or options.master
            raise ConfigError(
                f"cannot start a Spark session on {where}: {exc}. Check [spark] in driftloop.toml "
                "(and that Java 17 or later is installed for a local master)"
            ) from exc
