"""Edge benchmark: the network scored by ONNX Runtime (the graph every package carries) against
the PyTorch paths, in the same run.

Networks: the tabular one of the energy demo's shape (21 numbers, 2 categories, hidden
[128, 64], batch norm, the linear path) and the default image one (64x64 RGB, blocks 16-32-64),
each with its weights exported and checked as training does (``onnx_export``).

For each network, at batch 1 and 64, the model latency and rows (images) per second of:
  - ``onnx``: driftloop's ONNX Runtime backend (``OnnxTable`` / ``OnnxConv``);
  - ``torch``: driftloop's folded PyTorch backend (what scored before the export);
  - ``module``: the trained ``torch.nn.Module`` in eval mode under ``inference_mode`` (what a user
    writes instead);
  - ``ceiling``: the bare ``InferenceSession.run`` on the same arrays (all a backend must do).
Medians of --repeats, the sides interleaved; each repeat times --calls calls after a warm-up.
Ratios are against ``torch``; the goal, batch-1 latency <= 1/4 of PyTorch's, is checked against
both PyTorch paths.

    python benchmarks/bench_edge.py [--repeats 5] [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime
import torch

from driftloop.model.cnn import ConvNet
from driftloop.model.network import TabularNet
from driftloop.model.onnx_export import export_image_network, export_table_network
from driftloop.runtime.backends.onnx import OnnxConv, OnnxTable, session
from driftloop.runtime.backends.torch import FoldedConv, FoldedTorch
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.spec import NetworkSpec

TABLE = NetworkSpec(numeric=21, cardinalities=[7, 24], targets=1, hidden=[128, 64], linear=True)
IMAGE = ConvSpec(channels=3, height=64, width=64, classes=2, blocks=[16, 32, 64])


def timed(call: Callable[[], object], calls: int) -> float:
    """Seconds per call, over ``calls`` calls after ten to warm up."""
    for _ in range(10):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def table_sides(batch: int) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    module = TabularNet(TABLE).eval()
    weights = module.weights()
    rng = np.random.default_rng(0)
    numbers = rng.normal(0, 1, (batch, TABLE.numeric)).astype(np.float32)
    categories = np.stack([rng.integers(0, c, batch) for c in TABLE.cardinalities], axis=1).astype(np.int64)
    graph = export_table_network(TABLE, weights, numbers, categories).graph
    onnx, folded, bare = OnnxTable(TABLE, weights, graph), FoldedTorch(TABLE, weights), session(graph)
    feed = {"numbers": numbers, "categories": categories}

    def by_module() -> object:
        with torch.inference_mode():
            return module(torch.from_numpy(numbers), torch.from_numpy(categories)).numpy()

    return {
        "onnx": lambda: onnx(numbers, categories),
        "torch": lambda: folded(numbers, categories),
        "module": by_module,
        "ceiling": lambda: bare.run(None, feed),
    }


def image_sides(batch: int) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    module = ConvNet(IMAGE).eval()
    weights = module.weights()
    pixels = np.random.default_rng(0).random((batch, 3, 64, 64), dtype=np.float32)
    graph = export_image_network(IMAGE, weights, pixels).graph
    onnx, folded, bare = OnnxConv(IMAGE, weights, graph), FoldedConv(IMAGE, weights), session(graph)

    def by_module() -> object:
        with torch.inference_mode():
            tensor = torch.from_numpy(pixels)
            return module(tensor).numpy(), module.embed(tensor).numpy()

    return {
        "onnx": lambda: onnx(pixels),
        "torch": lambda: folded(pixels),
        "module": by_module,
        "ceiling": lambda: bare.run(None, {"pixels": pixels}),
    }


def measure(name: str, sides: dict[str, Callable[[], object]], batch: int, calls: int, repeats: int) -> None:
    runs: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(repeats):
        for side, call in sides.items():  # interleaved: each repeat sees the machine as the others do
            runs[side].append(timed(call, calls))
    median = {side: statistics.median(seconds) for side, seconds in runs.items()}
    print(f"\n{name}, batch {batch} (median of {repeats} x {calls} calls)")
    print(f"{'side':<8} {'latency':>12} {'rows/s':>12} {'vs torch':>9}")
    for side, seconds in median.items():
        ratio = median["torch"] / seconds
        print(f"{side:<8} {seconds * 1e6:>9.1f} us {batch / seconds:>12,.0f} {ratio:>8.2f}x")
    if batch == 1:
        for pytorch in ("torch", "module"):
            share = median["onnx"] / median[pytorch]
            verdict = "met" if share <= 0.25 else "NOT met"
            print(f"onnx latency / {pytorch} latency: {share:.3f} (goal <= 0.25: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for batch in (1, 64):
        measure("tabular network", table_sides(batch), batch, args.calls, args.repeats)
    for batch in (1, 64):
        calls = max(20, args.calls // (10 if batch == 1 else 200))  # a CNN call costs far more than a row's
        measure("image network (64x64 RGB)", image_sides(batch), batch, calls, args.repeats)


if __name__ == "__main__":
    main()
