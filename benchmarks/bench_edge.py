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

Footprint (``--only footprint``): ``driftloop[edge]`` and ``driftloop[all]`` are installed from
this checkout into two fresh virtual environments (from the package registry, as a user would),
and the files their packages hold on disk are summed (pip and setuptools left out). A small
project is trained, bundled and served twice on 127.0.0.1, by ``driftloop serve`` and by
``driftloop edge serve`` from the edge environment, each sent the same 200 single-row requests;
their resident memory (VmRSS, and its anonymous part) is read after. Goals: edge server RSS <=
150 MB, edge install <= 1/5 of the full one.

    python benchmarks/bench_edge.py [--repeats 5] [--calls 2000] [--only latency|footprint]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
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


# The installer's own distributions, in both environments alike: not part of either install.
INSTALLER = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")
PIPELINE_LIBRARIES = ("torch", "mlflow", "deltalake", "pyarrow", "pandas", "scipy", "sklearn", "onnx")


def fresh_install(folder: Path, extra: str) -> Path:
    """A virtual environment in ``folder`` with ``driftloop[extra]`` installed from this checkout
    (from the package registry, as a user would); its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    repository = Path(__file__).resolve().parents[1]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{repository}[{extra}]"], check=True,
                   timeout=1800, stderr=subprocess.DEVNULL)  # fmt: skip
    return python


def installed_bytes(python: Path) -> int:
    """Bytes of the files an environment's packages hold on disk (its installer left out)."""
    where = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    return sum(
        path.stat().st_size
        for entry in Path(where).iterdir()
        if not entry.name.startswith(INSTALLER)
        for path in ([entry] if entry.is_file() else entry.rglob("*"))
        if path.is_file()
    )


def memory_after_requests(command: list[str], port: int, body: list[dict[str, object]]) -> tuple[int, int]:
    """Resident memory (VmRSS) and its anonymous part (RssAnon, what shared library code is not),
    in bytes, of the server ``command`` starts, after 200 single-row requests."""
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
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines() if ":" in line
        )
        return int(status["VmRSS"].split()[0]) * 1024, int(status["RssAnon"].split()[0]) * 1024
    finally:
        process.terminate()
        process.wait(timeout=30)


def footprint() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.conftest import make_synthetic_project

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print("installing driftloop[edge] and driftloop[all] into fresh environments (a few minutes)")
        edge_python, full_python = fresh_install(root / "edge", "edge"), fresh_install(root / "full", "all")
        absent = subprocess.run(
            [str(edge_python), "-c", "import importlib.util as u, sys; "
             "print(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is None))", *PIPELINE_LIBRARIES],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        edge_bytes, full_bytes = installed_bytes(edge_python), installed_bytes(full_python)
        project = make_synthetic_project(root / "p", epochs=5)
        driftloop = Path(sys.executable).parent / "driftloop"
        for command in (["train"], ["promote"], ["keys"], ["bundle", "--out", str(root / "m.bundle")]):
            subprocess.run([str(driftloop), *command, "--project", str(project.root)], check=True, capture_output=True)
        row = project.lake.read("features").select("ts", "a", "b", "c").head(1)
        body = row.with_columns(row["ts"].cast(str)).to_dicts()
        central = memory_after_requests(
            [str(driftloop), "serve", "--project", str(project.root), "--port", "8791"], 8791, body
        )
        key = project.key_file.with_suffix(".pub.pem")
        edge = memory_after_requests(
            [str(edge_python.parent / "driftloop"), "edge", "serve", str(root / "m.bundle"), "--key", str(key),
             "--store", str(root / "device"), "--port", "8792"], 8792, body,
        )  # fmt: skip
    print(f"the edge environment lacks {len(absent)} of the pipeline's {len(PIPELINE_LIBRARIES)} libraries: {absent}")
    mb = 2**20
    print(
        f"install on disk: driftloop[edge] {edge_bytes / mb:,.0f} MB, driftloop[all] {full_bytes / mb:,.0f} MB; edge / "
        f"full = {edge_bytes / full_bytes:.3f} (goal <= 0.2: {'met' if edge_bytes <= 0.2 * full_bytes else 'NOT met'})"
    )
    print(
        f"resident memory after 200 requests: `driftloop edge serve` {edge[0] / mb:,.0f} MB ({edge[1] / mb:,.0f} MB "
        f"anonymous), `driftloop serve` {central[0] / mb:,.0f} MB ({central[1] / mb:,.0f} MB anonymous): "
        f"{central[0] / edge[0]:.1f}x; goal <= 150 MB: {'met' if edge[0] <= 150 * mb else 'NOT met'}"
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
