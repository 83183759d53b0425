"""A package's network exported to ONNX, with the golden inputs it was checked on.

Training exports the network (:mod:`driftloop.model.onnx_export`), runs the graph in ONNX
Runtime beside PyTorch on real inputs and keeps the graph only if the two agree; those inputs
and PyTorch's outputs travel with it as golden pairs, so whoever loads the graph later (the
server, an edge device after a download) can check it still gives the same answers. On disk:
``network.onnx``, ``golden.safetensors``, and the check's record in the package's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

GRAPH = "network.onnx"
GOLDEN = "golden.safetensors"
# The ONNX operator set the graphs are written in: what ONNX Runtime 1.16 and later all run.
OPSET = 17
# Largest difference allowed between ONNX Runtime's and PyTorch's outputs, relative to
# 1 + |PyTorch's|: float32 rounding through a few layers stays near 1e-6.
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportedNetwork:
    """The ONNX graph, the golden inputs and outputs (by the graph's input and output names),
    and the record of the check made when it was exported."""

    graph: bytes
    golden: dict[str, np.ndarray] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the graph and golden pairs into ``folder``; returns the manifest's record."""
        (folder / GRAPH).write_bytes(self.graph)
        save_file({k: np.ascontiguousarray(v) for k, v in self.golden.items()}, str(folder / GOLDEN))
        return {"file": GRAPH, "golden": GOLDEN, **self.record}

    @classmethod
    def load(cls, folder: Path, record: dict[str, Any] | None) -> ExportedNetwork | None:
        """The exported network of the package in ``folder``, or None when it has none (a
        package written before export, or by a build that could not export)."""
        if record is None:
            return None
        golden = load_file(str(folder / GOLDEN)) if (folder / GOLDEN).is_file() else {}
        kept = {k: v for k, v in record.items() if k not in ("file", "golden")}
        return cls((folder / GRAPH).read_bytes(), golden, kept)


def largest_difference(found: np.ndarray, expected: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """The largest ``|found - expected| / (1 + |expected|)`` and where it is; infinite when the
    shapes differ or ``found`` is not finite where ``expected`` is."""
    if found.shape != expected.shape:
        return float("inf"), ()
    if found.size == 0:
        return 0.0, ()
    gap = np.abs(found.astype(np.float64) - expected) / (1.0 + np.abs(expected.astype(np.float64)))
    gap = np.where(np.isfinite(gap), gap, np.inf)
    where = np.unravel_index(int(np.argmax(gap)), gap.shape)
    return float(gap[where]), tuple(int(i) for i in where)


__all__ = ["GOLDEN", "GRAPH", "OPSET", "TOLERANCE", "ExportedNetwork", "largest_difference"]
