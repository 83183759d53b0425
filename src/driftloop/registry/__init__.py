"""The registry: where versions of the model are judged and moved, dev -> qa -> prod.

``decisions`` holds the state as types (stages, aliases, decision kinds) and the decision
record; ``gates`` the checks a version must pass (results, not decisions); ``registry`` the
policy that acts on them; ``mlflow`` the boundary to MLflow, the only code that imports it
(the registered model, training runs, the pyfunc flavour, the fresh-process check).
"""

from driftloop.registry.decisions import Alias, Decision, DecisionKind, Stage
from driftloop.registry.gates import GateResult
from driftloop.registry.mlflow.store import VersionInfo
from driftloop.registry.registry import Registry

__all__ = ["Alias", "Decision", "DecisionKind", "GateResult", "Registry", "Stage", "VersionInfo"]
