"""The network of a new package exported to ONNX, and checked against PyTorch before it is kept.

The graph is traced from the folded network (batch norm in the weights, no dropout), so it is
what the torch backend computes, layer for layer. Both are run on real inputs from training (the
test rows or held-out images); the largest difference, relative to ``1 + |PyTorch's output|``,
is recorded, and above :data:`~driftloop.runtime.exported.TOLERANCE` the package is refused
with the numbers. Those inputs and PyTorch's outputs travel with the graph as golden pairs.

The TorchScript exporter (``dynamo=False``) is used: for these graphs of matrix products,
convolutions and activations it writes the same operators in about 10 ms where the
``torch.export`` one takes 2.5 s and brings onnxscript along; torch is pinned, and the check
here catches any disagreement either could make.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import onnxruntime
import torch

from driftloop.errors import ModelPackageError
from driftloop.runtime.backends.onnx import IMAGE_OUTPUTS, TABLE_OUTPUTS, OnnxConv, OnnxTable
from driftloop.runtime.backends.torch import FoldedConv, FoldedTorch
from driftloop.runtime.exported import GRAPH, OPSET, TOLERANCE, ExportedNetwork, largest_difference
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.spec import NetworkSpec

# Golden pairs kept with a graph: enough rows to cover the categories and ranges of a test
# window, few enough images that the package stays small (eight 64x64 RGB images: 400 kB).
GOLDEN_ROWS = 64
GOLDEN_IMAGES = 8


class _TableGraph(torch.nn.Module):
    def __init__(self, folded: FoldedTorch) -> None:
        super().__init__()
        self.folded = folded

    def forward(self, numbers: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        return self.folded.forward(numbers, categories)


class _ImageGraph(torch.nn.Module):
    def __init__(self, folded: FoldedConv) -> None:
        super().__init__()
        self.folded = folded

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.folded.embed(pixels)
        weight, bias = self.folded.head
        return torch.addmm(bias, embedded, weight), embedded


def export_table_network(
    spec: NetworkSpec, weights: Mapping[str, np.ndarray], numbers: np.ndarray, categories: np.ndarray
) -> ExportedNetwork:
    """The network of ``spec`` and ``weights`` as a checked ONNX graph, with golden pairs from the
    preprocessed rows given (at most :data:`GOLDEN_ROWS`); a ModelPackageError if it disagrees."""
    folded = FoldedTorch(spec, weights)
    inputs = {"numbers": numbers[:GOLDEN_ROWS], "categories": categories[:GOLDEN_ROWS]}
    graph = _export(_TableGraph(folded), inputs, TABLE_OUTPUTS)
    expected = {"outputs": folded(inputs["numbers"], inputs["categories"])}
    found = {"outputs": OnnxTable(spec, weights, graph)(inputs["numbers"], inputs["categories"])}
    return check_graph(graph, inputs, expected, found)


def export_image_network(spec: ConvSpec, weights: Mapping[str, np.ndarray], pixels: np.ndarray) -> ExportedNetwork:
    """The image network of ``spec`` and ``weights`` as a checked ONNX graph, with golden pairs
    from the standardised images given (at most :data:`GOLDEN_IMAGES`)."""
    folded = FoldedConv(spec, weights)
    inputs = {"pixels": np.ascontiguousarray(pixels[:GOLDEN_IMAGES], dtype=np.float32)}
    graph = _export(_ImageGraph(folded), inputs, IMAGE_OUTPUTS)
    expected = dict(zip(IMAGE_OUTPUTS, folded(inputs["pixels"]), strict=True))
    found = dict(zip(IMAGE_OUTPUTS, OnnxConv(spec, weights, graph)(inputs["pixels"]), strict=True))
    return check_graph(graph, inputs, expected, found)


def check_graph(
    graph: bytes, inputs: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], found: Mapping[str, np.ndarray]
) -> ExportedNetwork:
    """The graph with its golden pairs and the record of how far ``found`` (ONNX Runtime's
    outputs) is from ``expected`` (PyTorch's); a ModelPackageError with the numbers beyond
    :data:`TOLERANCE`."""
    worst, worst_output, worst_at = 0.0, "", tuple[int, ...]()
    for name, wanted in expected.items():
        gap, at = largest_difference(found[name], wanted)
        if gap >= worst:
            worst, worst_output, worst_at = gap, name, at
    if not worst <= TOLERANCE:
        raise ModelPackageError(
            f"the network's ONNX export disagrees with PyTorch: largest difference {worst:.3g} (relative to "
            f"1 + |PyTorch|), the tolerance {TOLERANCE:g}; "
            f"{_where(worst_output, worst_at, found[worst_output], expected[worst_output])}. The package is refused: "
            "report this with the network's settings"
        )
    record = {
        "opset": OPSET,
        "max_difference": worst,
        "tolerance": TOLERANCE,
        "golden_rows": int(next(iter(inputs.values())).shape[0]),
        "exporter": f"torch {torch.__version__} (TorchScript)",
        "checked_with": f"onnxruntime {onnxruntime.__version__}",
    }
    return ExportedNetwork(graph, {**inputs, **{f"expected_{k}": v for k, v in expected.items()}}, record)


def _where(output: str, at: tuple[int, ...], found: np.ndarray, expected: np.ndarray) -> str:
    if not at:
        return f"{output}: ONNX Runtime's shape {found.shape}, PyTorch's {expected.shape}"
    return f"ONNX Runtime gives {found[at]:.7g} where PyTorch gives {expected[at]:.7g} ({output} at {list(at)})"


def _export(module: torch.nn.Module, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]) -> bytes:
    names = list(inputs)
    rows = {name: {0: "rows"} for name in [*names, *outputs]}
    with TemporaryDirectory() as folder, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: see the module's docstring
        path = Path(folder) / GRAPH
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names),
            path,
            dynamo=False,
            input_names=names,
            output_names=list(outputs),
            dynamic_axes=rows,
            opset_version=OPSET,
        )
        return path.read_bytes()


__all__ = ["GOLDEN_IMAGES", "GOLDEN_ROWS", "check_graph", "export_image_network", "export_table_network"]
