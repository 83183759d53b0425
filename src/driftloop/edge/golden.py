"""A version's golden pairs, run on the device before it serves: the inputs its bundle carries
through its network as loaded here, against the outputs recorded where it was packaged, for a
table model and an image model alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from driftloop.errors import BundleError
from driftloop.runtime.backends.onnx import IMAGE_OUTPUTS
from driftloop.runtime.package import ModelPackage

if TYPE_CHECKING:
    from driftloop.runtime.kinds import AnyPackage

# How far a device's outputs may be from the golden ones (relative to 1 + |golden|): the graph
# and ONNX Runtime are the ones the golden pairs were made with, so only rounding separates them.
GOLDEN_TOLERANCE = 1e-4


def golden_check(package: AnyPackage, version: str) -> None:
    """Run the package's golden inputs through its network as loaded here; a BundleError with the
    numbers when an output strays from its golden value (a runtime that computes differently)."""
    exported = package.exported
    golden = exported.golden if exported is not None else {}
    if isinstance(package, ModelPackage):
        wanted = ["expected_outputs"]
        has_inputs = "numbers" in golden and "categories" in golden
        found = {wanted[0]: package.network(golden["numbers"], golden["categories"])} if has_inputs else {}
    else:
        wanted = [f"expected_{name}" for name in IMAGE_OUTPUTS]
        found = dict(zip(wanted, package.network(golden["pixels"]), strict=True)) if "pixels" in golden else {}
    if not found or any(name not in golden for name in wanted):
        raise BundleError(f"version {version} carries no golden pairs to check it against: it cannot serve here")
    worst = max(_gap(found[name], golden[name]) for name in wanted)
    if not worst <= GOLDEN_TOLERANCE:
        raise BundleError(
            f"version {version} does not reproduce its golden outputs here: largest difference "
            f"{worst:.3g} (tolerance {GOLDEN_TOLERANCE:g}); it stays out of service"
        )


def _gap(found: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference relative to 1 + |expected|; infinite for another shape or a NaN."""
    if found.shape != expected.shape:
        return float("inf")
    gap = np.abs(found - expected) / (1.0 + np.abs(expected))
    return float(gap.max(initial=0.0)) if np.all(np.isfinite(gap)) else float("inf")


__all__ = ["GOLDEN_TOLERANCE", "golden_check"]
