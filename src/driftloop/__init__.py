"""driftloop: the closed-loop MLOps pipeline for deep-learning models.

ingest -> validate -> versioned features (Delta) -> train (PyTorch, MLflow) -> registry ->
batch and online inference -> monitoring -> retraining, and the replay of a history through
that loop to backtest it. Every stage is a function here and a command of the ``driftloop``
CLI; docs/architecture.md says which package holds what.
"""

import sys
import types
from typing import TYPE_CHECKING

from driftloop.about import VERSION
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
from driftloop.lazy import lazy_names

if TYPE_CHECKING:  # the names' types for type checkers; at run time they come from __getattr__
    from driftloop.data.contract import Column, ColumnType, Contract, Role
    from driftloop.data.draft import draft_contract
    from driftloop.data.validate import CheckResult, RuleCount, check_batch
    from driftloop.engine import Engine, resolve_engine
    from driftloop.feature_table import FeatureRun, materialize
    from driftloop.features import DatetimeFeature, ExpressionFeature, FeatureSet
    from driftloop.ingest import BatchStatus, IngestSummary, ingest, ingest_batch
    from driftloop.lake import TABLES, Lake, PredictionSource, Table, TableVersion, Where
    from driftloop.loop.tick import tick
    from driftloop.model.trainer import train_project
    from driftloop.monitor import Stream
    from driftloop.monitor.verdict import VerdictLevel
    from driftloop.monitor.window import monitor_window
    from driftloop.predict import predict_window
    from driftloop.project import Project, init_project
    from driftloop.registry.decisions import Alias, Decision, DecisionKind, Stage
    from driftloop.registry.mlflow.tracking import MlflowTracker
    from driftloop.registry.registry import Registry
    from driftloop.replay import replay
    from driftloop.runtime.package import ModelPackage
    from driftloop.serve.app import create_app
    from driftloop.settings import Settings

__version__ = VERSION

# Everything but the errors is imported on first use: `import driftloop` stays light, and a
# device with only driftloop[edge] (no Delta, MLflow or PyTorch) imports the runtime it has
# without the rest of the package being pulled in.
_LAZY = {
    "Column": "driftloop.data.contract",
    "ColumnType": "driftloop.data.contract",
    "Contract": "driftloop.data.contract",
    "Role": "driftloop.data.contract",
    "draft_contract": "driftloop.data.draft",
    "CheckResult": "driftloop.data.validate",
    "RuleCount": "driftloop.data.validate",
    "check_batch": "driftloop.data.validate",
    "Engine": "driftloop.engine",
    "resolve_engine": "driftloop.engine",
    "FeatureRun": "driftloop.feature_table",
    "materialize": "driftloop.feature_table",
    "DatetimeFeature": "driftloop.features",
    "ExpressionFeature": "driftloop.features",
    "FeatureSet": "driftloop.features",
    "BatchStatus": "driftloop.ingest",
    "IngestSummary": "driftloop.ingest",
    "ingest": "driftloop.ingest",
    "ingest_batch": "driftloop.ingest",
    "Lake": "driftloop.lake",
    "PredictionSource": "driftloop.lake",
    "TABLES": "driftloop.lake",
    "Table": "driftloop.lake",
    "TableVersion": "driftloop.lake",
    "Where": "driftloop.lake",
    "tick": "driftloop.loop.tick",
    "train_project": "driftloop.model.trainer",
    "Stream": "driftloop.monitor",
    "VerdictLevel": "driftloop.monitor.verdict",
    "monitor_window": "driftloop.monitor.window",
    "predict_window": "driftloop.predict",
    "Project": "driftloop.project",
    "init_project": "driftloop.project",
    "Alias": "driftloop.registry.decisions",
    "Decision": "driftloop.registry.decisions",
    "DecisionKind": "driftloop.registry.decisions",
    "Stage": "driftloop.registry.decisions",
    "MlflowTracker": "driftloop.registry.mlflow.tracking",
    "Registry": "driftloop.registry.registry",
    "replay": "driftloop.replay",
    "ModelPackage": "driftloop.runtime.package",
    "create_app": "driftloop.serve.app",
    "Settings": "driftloop.settings",
}


__getattr__ = lazy_names(__name__, _LAZY)


class _Package(types.ModuleType):
    """driftloop's module type. Loading a submodule binds it to its package's attribute of the
    same name; ``ingest`` is a function the API exports under its module's name, so there the
    function keeps the name (as when it was imported eagerly). (``replay`` is a package whose
    submodules are imported by their dotted names, so its module keeps the attribute once loaded.)"""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _FUNCTIONS_NAMED_AS_MODULES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


_FUNCTIONS_NAMED_AS_MODULES = frozenset({"ingest"})
sys.modules[__name__].__class__ = _Package


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
