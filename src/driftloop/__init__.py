"""driftloop: the closed-loop MLOps pipeline for deep-learning models.

ingest -> validate -> versioned features (Delta) -> train (PyTorch, MLflow) -> registry ->
batch and online inference -> monitoring -> retraining. Every stage is a function here and a
command of the ``driftloop`` CLI.
"""

from driftloop.config import Project, Settings, init_project
from driftloop.contract import Column, ColumnType, Contract, Role
from driftloop.draft import draft_contract
from driftloop.errors import (
    BatchProblem,
    BatchRejected,
    ConfigError,
    ContractError,
    DemoDataError,
    DriftloopError,
    FeatureError,
    LakeError,
    NotOnlineComputable,
    SourceError,
    TableNotFound,
)
from driftloop.features import DatetimeFeature, ExpressionFeature, FeatureRun, FeatureSet, materialize
from driftloop.ingest import IngestSummary, ingest, ingest_batch
from driftloop.lake import TABLES, Lake, TableVersion
from driftloop.validate import CheckResult, RuleCount, check_batch

__version__ = "0.1.0"

__all__ = [
    "TABLES",
    "BatchProblem",
    "BatchRejected",
    "CheckResult",
    "Column",
    "ColumnType",
    "ConfigError",
    "Contract",
    "ContractError",
    "DatetimeFeature",
    "DemoDataError",
    "DriftloopError",
    "ExpressionFeature",
    "FeatureError",
    "FeatureRun",
    "FeatureSet",
    "IngestSummary",
    "Lake",
    "LakeError",
    "NotOnlineComputable",
    "Project",
    "Role",
    "RuleCount",
    "Settings",
    "SourceError",
    "TableNotFound",
    "TableVersion",
    "__version__",
    "check_batch",
    "draft_contract",
    "ingest",
    "ingest_batch",
    "init_project",
    "materialize",
]
