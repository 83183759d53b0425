"""The runtime: scoring a model package (contract check, features, preprocessing, network) with
nothing of MLflow or training. ``package`` reads, writes and scores the package folder, ``spec``
is the network's shape, ``preprocess`` the fitted transforms, ``targets`` what the heads predict
(a number's scale, a label's classes), ``backends`` the networks' scoring
functions (the folded PyTorch one first). Batch prediction, the server and the edge all score
through it, so the same rows give the same outputs everywhere."""

from driftloop.runtime.backends import BACKENDS, Backend, resolve_backend
from driftloop.runtime.package import MANIFEST, WEIGHTS, ModelPackage
from driftloop.runtime.preprocess import Preprocessor
from driftloop.runtime.spec import NetworkSpec
from driftloop.runtime.targets import Targets

__all__ = [
    "BACKENDS",
    "MANIFEST",
    "WEIGHTS",
    "Backend",
    "ModelPackage",
    "NetworkSpec",
    "Preprocessor",
    "Targets",
    "resolve_backend",
]
