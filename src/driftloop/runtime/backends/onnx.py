"""The ONNX Runtime backend: the graph training exported (``network.onnx``), run by ONNX Runtime.

It needs neither PyTorch nor training code, and it is the faster path at every batch size
measured (``benchmarks/bench_edge.py``: a row at a time, a request, a million rows), because a
session runs the whole graph in C++ where the folded network calls PyTorch once per layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime

from driftloop.errors import ModelPackageError
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.spec import NetworkSpec

# The graphs' output names, as the exporter writes them (the inputs: numbers and categories, or pixels).
TABLE_OUTPUTS = ("outputs",)
IMAGE_OUTPUTS = ("logits", "embeddings")


def session(graph: bytes | None) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of ``graph`` on the CPU; a ModelPackageError when there is none
    or it cannot be read."""
    if graph is None:
        raise ModelPackageError(
            "the package holds no ONNX graph (it was written before driftloop exported one): score it with the "
            "torch backend, or train it again"
        )
    options = onnxruntime.SessionOptions()
    # Idle threads sleep rather than spin: a server's event loop and batcher share the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a graph it cannot load
        raise ModelPackageError(f"ONNX Runtime cannot load the package's graph: {exc}") from exc


class OnnxTable:
    """The tabular network of a package's ONNX graph."""

    name = "onnx"

    def __init__(self, spec: NetworkSpec, weights: Mapping[str, np.ndarray], graph: bytes | None = None) -> None:
        self.spec, self.graph = spec, graph
        self.session = session(graph)
        # An input the network never reads (no categories) is not in the graph.
        self.inputs = tuple(i.name for i in self.session.get_inputs())

    def __reduce__(self) -> tuple[Any, ...]:
        # A session cannot be pickled; Spark ships the package to its workers, which rebuild it from the graph.
        return (type(self), (self.spec, {}, self.graph))

    def __call__(self, numbers: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Scaled outputs for preprocessed rows."""
        if numbers.shape[0] == 0:
            return np.zeros((0, sum(self.spec.head_sizes)), np.float32)
        given = {"numbers": numbers, "categories": categories}
        outputs: np.ndarray = self.session.run(None, {name: given[name] for name in self.inputs})[0]
        return outputs


class OnnxConv:
    """The image network of a package's ONNX graph: logits and embeddings."""

    name = "onnx"

    def __init__(self, spec: ConvSpec, weights: Mapping[str, np.ndarray], graph: bytes | None = None) -> None:
        self.spec, self.graph = spec, graph
        self.session = session(graph)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.spec, {}, self.graph))

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, classes) and embeddings (N, embedding size) of standardised images (N, C, H, W)."""
        logits, embeddings = self.session.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        return logits, embeddings
