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

Footprint (``--only footprint``): a small project is trained, bundled and served twice on
127.0.0.1, by ``driftloop serve`` and by the edge server (PyTorch, MLflow, Delta, SciPy and
scikit-learn made unimportable in its process), each sent the same 200 single-row requests;
their resident memory (VmRSS) is read after. The install sizes are the files on disk of the
distributions each needs, from this environment's metadata: the edge set (the runtime's and
the server's libraries, with what they require) against driftloop's own requirements (its
pipeline and the [serve] extra, with what they require). Goals: edge server RSS <= 150 MB, edge
install <= 1/5 of the full one.

    python benchmarks/bench_edge.py [--repeats 5] [--calls 2000] [--only latency|footprint]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
import torch
from packaging.requirements import Requirement

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


# What a device installs: the runtime's libraries and the server's (each with its requirements).
EDGE_DISTRIBUTIONS = (
    "numpy", "onnxruntime", "polars", "pydantic", "pillow", "safetensors", "cryptography", "narwhals",
    "typer", "rich", "fastapi", "uvicorn", "orjson", "python-multipart", "prometheus-client",
)  # fmt: skip
EDGE_SERVER = """
import sys
for blocked in ("torch", "mlflow", "deltalake", "sklearn", "scipy"):
    sys.modules[blocked] = None
from pathlib import Path
import uvicorn
from driftloop.edge.server import create_edge_app
from driftloop.edge.store import DeviceStore
from driftloop.runtime.signing import public_key
store, key = DeviceStore(Path(sys.argv[1])), Path(sys.argv[2])
store.serve(store.install(Path(sys.argv[3]), public_key(key.read_bytes(), "key")))
uvicorn.run(create_edge_app(store), host="127.0.0.1", port=int(sys.argv[4]), log_level="warning")
"""


def distribution_closure(names: Iterable[str]) -> set[str]:
    """``names`` and every distribution they require (markers that apply here; no extras)."""
    seen: set[str] = set()
    todo = [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonical(requirement.name))
    return seen


def canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def installed_bytes(names: set[str]) -> int:
    total = 0
    for name in names:
        files = metadata.distribution(name).files or []
        total += sum(f.size or 0 for f in files if f.size)
    return total


def rss_after_requests(command: list[str], port: int, body: list[dict[str, object]]) -> int:
    """VmRSS (bytes) of the server ``command`` starts, after 200 single-row requests."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while True:
                try:
                    if client.get("/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"the server {command[:3]} did not start")
                time.sleep(0.2)
            for _ in range(200):
                client.post("/v1/predict", json=body).raise_for_status()
        status = Path(f"/proc/{process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) * 1024
    finally:
        process.terminate()
        process.wait(timeout=30)


def footprint() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.conftest import make_synthetic_project

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        project = make_synthetic_project(root / "p", epochs=5)
        driftloop = Path(sys.executable).parent / "driftloop"
        for command in (["train"], ["promote"], ["keys"], ["bundle", "--out", str(root / "m.bundle")]):
            subprocess.run([str(driftloop), *command, "--project", str(project.root)], check=True, capture_output=True)
        row = project.lake.read("features").select("ts", "a", "b", "c").head(1)
        body = row.with_columns(row["ts"].cast(str)).to_dicts()
        central = rss_after_requests(
            [str(driftloop), "serve", "--project", str(project.root), "--port", "8791"], 8791, body
        )
        key = project.key_file.with_suffix(".pub.pem")
        edge_command = [
            sys.executable,
            "-c",
            EDGE_SERVER,
            str(root / "device"),
            str(key),
            str(root / "m.bundle"),
            "8792",
        ]
        edge = rss_after_requests(edge_command, 8792, body)
    verdict = "met" if edge <= 150 * 2**20 else "NOT met"
    print(
        f"\nresident memory after 200 requests: edge server {edge / 2**20:,.0f} MB, driftloop serve "
        f"{central / 2**20:,.0f} MB ({central / edge:.1f}x); goal <= 150 MB: {verdict}"
    )
    full = distribution_closure(["driftloop", "fastapi", "uvicorn", "orjson", "python-multipart", "prometheus-client",
                                 "httptools", "uvloop"])  # fmt: skip
    edge_set = distribution_closure(EDGE_DISTRIBUTIONS)
    full_bytes, edge_bytes = installed_bytes(full - {"driftloop"}), installed_bytes(edge_set)
    print(
        f"install on disk: edge set {edge_bytes / 2**20:,.0f} MB ({len(edge_set)} distributions), full "
        f"{full_bytes / 2**20:,.0f} MB ({len(full)}); edge / full = {edge_bytes / full_bytes:.3f} "
        f"(goal <= 0.2: {'met' if edge_bytes <= 0.2 * full_bytes else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--only", choices=["latency", "footprint"])
    args = parser.parse_args()
    if args.only != "latency":
        footprint()
    if args.only == "footprint":
        return
    print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for batch in (1, 64):
        measure("tabular network", table_sides(batch), batch, args.calls, args.repeats)
    for batch in (1, 64):
        calls = max(20, args.calls // (10 if batch == 1 else 200))  # a CNN call costs far more than a row's
        measure("image network (64x64 RGB)", image_sides(batch), batch, calls, args.repeats)


if __name__ == "__main__":
    main()
