"""Spark's failures as driftloop's errors: the one place a Spark exception is translated.

Work on the executors runs driftloop's own code (typing, scoring); when it raises, Spark
reports a Python traceback inside its own exception. The driftloop error at its end is raised
again here with its message, so a user reads "the scorer gave 2 output rows for 3 input rows",
not a JVM stack; any other Spark failure becomes an :class:`~driftloop.errors.EngineError`
that says what was being done.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from driftloop import errors
from driftloop.errors import DriftloopError, EngineError

# The last line of a Python traceback that names one of driftloop's errors.
_RAISED = re.compile(r"^(?:driftloop\.errors\.)?(\w+): (.+)$", re.MULTILINE)


@contextmanager
def spark_failures(doing: str) -> Iterator[None]:
    """Run Spark work, raising a failure as the driftloop error behind it or as an EngineError."""
    try:
        from pyspark.errors import PySparkException
    except ModuleNotFoundError:  # pragma: no cover - the engine is only made with pyspark installed
        yield
        return
    try:
        yield
    except PySparkException as exc:
        raise _translated(exc, doing) from exc


def _translated(exc: Exception, doing: str) -> DriftloopError:
    text = str(exc)
    for name, message in reversed(_RAISED.findall(text)):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, DriftloopError) and kind.__init__ is Exception.__init__:
            return kind(message.strip())
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return EngineError(f"Spark failed while {doing}: {first}")
