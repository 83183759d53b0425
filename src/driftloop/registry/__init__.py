"""The registry: where versions of the model are judged and moved, dev -> qa -> prod.

``decisions`` holds the state as types (stages, aliases, decision kinds) and the decision
record; ``gates`` the checks a version must pass (results, not decisions); ``registry`` the
policy that acts on them; ``mlflow`` the boundary to MLflow, the only code that imports it
(the registered model, training runs, the pyfunc flavour, the fresh-process check).
"""

from typing import TYPE_CHECKING

from driftloop.lazy import lazy_names
from driftloop.registry.decisions import Alias, Decision, DecisionKind, GateResult, Stage

if TYPE_CHECKING:
    from driftloop.registry.mlflow.store import VersionInfo
    from driftloop.registry.registry import Registry

# The state's types load with the package; what talks to MLflow on first use (a server that only
# names the champion's alias, or a device, does not need it).
__getattr__ = lazy_names(
    __name__, {"VersionInfo": "driftloop.registry.mlflow.store", "Registry": "driftloop.registry.registry"}
)

__all__ = ["Alias", "Decision", "DecisionKind", "GateResult", "Registry", "Stage", "VersionInfo"]
