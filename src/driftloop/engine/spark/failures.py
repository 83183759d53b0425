"""Spark's failures as driftloop's errors: the one place a Spark exception is translated.

Work on the executors runs driftloop's own code (typing, scoring); when it raises, Spark
reports a Python traceback inside its own exception. The driftloop error at its end (or named
by a Spark expression's ``raise_error``, as the CSV reader's) is raised again here with its
message, so a user reads "the scorer gave 2 output rows for 3 input rows",
not a JVM stack; any other Spark failure becomes an :class:`~driftloop.errors.EngineError`
that says what was being done.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from driftloop import errors
from driftloop.errors import DriftloopError, EngineError

# The last line of a Python traceback that names one of driftloop's errors, or a Spark
# expression's ``raise_error`` with a message that starts with one's name.
_RAISED = re.compile(
    r"^(?:\[USER_RAISED_EXCEPTION\] )?(?:driftloop\.errors\.)?(\w+): (.+?)(?: SQLSTATE: \w+)?$", re.MULTILINE
)


@cache
def failure_types() -> tuple[type[Exception], ...]:
    """The exceptions a Spark call raises: PySpark's own, and the JVM's as Py4J carries them
    (looked up at the first Spark call: importing PySpark cost every process that imported the
    engines ~70 ms and its memory, Spark or not)."""
    try:
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException
    except ModuleNotFoundError:  # pragma: no cover - the engine is only made with pyspark installed
        return ()
    return (PySparkException, Py4JError)


@contextmanager
def spark_failures(doing: str) -> Iterator[None]:
    """Run Spark work, raising a failure as the driftloop error behind it or as an EngineError."""
    try:
        yield
    except failure_types() as exc:
        raise _translated(exc, doing) from exc


def failure_line(exc: Exception) -> str:
    """The line of a Spark failure that says what went wrong (the JVM's message, not its stack)."""
    text = str(exc).strip()
    causes = re.findall(r"(?:Exception|Error): (?:\[[A-Z_.]+\] )?(.+)", text)
    return causes[0].strip() if causes else (text.splitlines()[0] if text else type(exc).__name__)


def _translated(exc: Exception, doing: str) -> DriftloopError:
    text = str(exc)
    for name, message in reversed(_RAISED.findall(text)):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, DriftloopError) and kind.__init__ is Exception.__init__:
            return kind(message.strip())
    return EngineError(f"Spark failed while {doing}: {failure_line(exc)}")
