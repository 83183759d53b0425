"""driftloop: the closed-loop MLOps pipeline for deep-learning models.

ingest -> validate -> versioned features (Delta) -> train (PyTorch, MLflow) -> registry ->
batch and online inference -> monitoring -> retraining, and the replay of a history through
that loop to backtest it. Every stage is a function here and a command of the ``driftloop``
CLI; docs/architecture.md says which package holds what.
"""

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.draft import draft_contract
from driftloop.data.validate import CheckResult, RuleCount, check_batch
from driftloop.engine import Engine, resolve_engine
from driftloop.errors import (
    BatchProblem,
    BatchRejected,
    BundleError,
    ConfigError,
    ContractError,
    DemoDataError,
    DriftloopError,
    EngineError,
    FeatureError,
    LakeError,
    MissingDependency,
    ModelPackageError,
    MonitorError,
    NotOnlineComputable,
    PredictError,
    PreprocessError,
    RegistryError,
    ReplayError,
    RequestRefused,
    SourceError,
    TableChanged,
    TableNotFound,
    TrainingError,
)
from driftloop.feature_table import FeatureRun, materialize
from driftloop.features import DatetimeFeature, ExpressionFeature, FeatureSet
from driftloop.ingest import BatchStatus, IngestSummary, ingest, ingest_batch
from driftloop.lake import TABLES, Lake, PredictionSource, Table, TableVersion, Where
from driftloop.project import Project, init_project
from driftloop.settings import Settings

__version__ = "0.1.0"

# Entry points whose modules load torch or MLflow: imported on first use, so that
# `import driftloop` (and every CLI command that does not train or serve) stays light.
_LAZY = {
    "Alias": "driftloop.registry.decisions",
    "Decision": "driftloop.registry.decisions",
    "DecisionKind": "driftloop.registry.decisions",
    "MlflowTracker": "driftloop.registry.mlflow.tracking",
    "ModelPackage": "driftloop.runtime.package",
    "Registry": "driftloop.registry.registry",
    "Stage": "driftloop.registry.decisions",
    "Stream": "driftloop.monitor",
    "VerdictLevel": "driftloop.monitor.verdict",
    "create_app": "driftloop.serve.app",
    "monitor_window": "driftloop.monitor.window",
    "predict_window": "driftloop.predict",
    "replay": "driftloop.replay",
    "tick": "driftloop.loop.tick",
    "train_project": "driftloop.model.trainer",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'driftloop' has no attribute {name!r}")


__all__ = [
    "TABLES",
    "Alias",
    "BatchProblem",
    "BatchRejected",
    "BatchStatus",
    "BundleError",
    "CheckResult",
    "Column",
    "ColumnType",
    "ConfigError",
    "Contract",
    "ContractError",
    "DatetimeFeature",
    "Decision",
    "DecisionKind",
    "DemoDataError",
    "DriftloopError",
    "Engine",
    "EngineError",
    "ExpressionFeature",
    "FeatureError",
    "FeatureRun",
    "FeatureSet",
    "IngestSummary",
    "Lake",
    "LakeError",
    "MissingDependency",
    "MlflowTracker",
    "ModelPackage",
    "ModelPackageError",
    "MonitorError",
    "NotOnlineComputable",
    "PredictError",
    "PredictionSource",
    "PreprocessError",
    "Project",
    "Registry",
    "RegistryError",
    "ReplayError",
    "RequestRefused",
    "Role",
    "RuleCount",
    "Settings",
    "SourceError",
    "Stage",
    "Stream",
    "Table",
    "TableChanged",
    "TableNotFound",
    "TableVersion",
    "TrainingError",
    "VerdictLevel",
    "Where",
    "__version__",
    "check_batch",
    "create_app",
    "draft_contract",
    "ingest",
    "ingest_batch",
    "init_project",
    "materialize",
    "monitor_window",
    "predict_window",
    "replay",
    "resolve_engine",
    "tick",
    "train_project",
]
