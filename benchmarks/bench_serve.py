"""Serving benchmark: the same model behind driftloop, behind driftloop with a canary taking 10%
of the requests, behind `mlflow models serve`, behind a hand-written FastAPI + PyTorch handler
(what a user writes instead: the package's features and preprocessing, the network as a
``torch.nn.Module`` under ``no_grad``), and a bare uvicorn endpoint that only reads the body and
returns a constant (the ceiling of the stack).

A demo project (UCI Appliances Energy, three weeks, the demo's network) with a champion, and a
copy of it where a second version (the same network retrained) is in a canary at 10% with its
guards running; each server runs in its own process on 127.0.0.1 and gets the same single-row
MLflow ``dataframe_records`` body at ``/invocations``. The load generator is a separate process
(asyncio, keep-alive connections, one request in flight per connection): for each concurrency
level it runs for --seconds (bounded) and reports requests/s, p50 and p99, the median of --repeats
runs in which the servers take turns, so they meet the same machine state. The generator
shares the 2 cores with the server, as any local measurement does.

Goals at concurrency 32: the canary costs at most 10% of driftloop's throughput; driftloop
answers at least 1.3x the hand-written handler's requests/s, with p99 <= 25 ms.

    python benchmarks/bench_serve.py [--seconds 8] [--repeats 3] [--levels 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from load import drive, http_post

BARE_APP = """
import json
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
ANSWER = json.dumps({"predictions": [{"Appliances": 0.0, "lights": 0.0}]}).encode()
async def invocations(request):
    json.loads(await request.body())  # the unavoidable part: read and parse the body
    return Response(ANSWER, media_type="application/json")
app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
"""

HAND_WRITTEN = """
import sys
import polars as pl, torch, uvicorn
from fastapi import FastAPI, Request
from driftloop.model.network import TabularNet
from driftloop.runtime.package import ModelPackage
package = ModelPackage.load(sys.argv[1])  # its features, preprocessing and weights
model = TabularNet(package.spec)
model.load_state_dict({k: torch.from_numpy(v) for k, v in package.weights.items()})
model.eval()
app = FastAPI()
@app.post("/invocations")
async def invocations(request: Request):
    rows = pl.DataFrame((await request.json())["dataframe_records"]).with_columns(pl.col("date").str.to_datetime())
    numbers, categories = package.preprocessor.transform(package.features.apply(rows))
    with torch.no_grad():
        outputs = model(torch.from_numpy(numbers), torch.from_numpy(categories)).numpy()
    return {"predictions": package.heads.decode(outputs).to_dicts()}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_project(folder: Path) -> tuple[Path, str, dict[str, object]]:
    """A demo project with a champion; returns its folder, model name and one raw row."""
    import polars as pl

    from driftloop.demo import create_demo_project
    from driftloop.feature_table import materialize
    from driftloop.ingest import ingest
    from driftloop.model.trainer import train_project
    from driftloop.project import Project
    from driftloop.registry import Registry
    from driftloop.registry.mlflow.tracking import MlflowTracker

    project, data = create_demo_project(folder / "energy")
    frame = pl.read_csv(data, infer_schema=False).head(21 * 144)
    ingest(project, frame, batch_id="bench")
    materialize(project.lake, project.feature_set())
    with MlflowTracker(project) as tracker:
        version = tracker.record(train_project(project, callbacks=[tracker]))
    # What is measured is serving, not the model: three weeks may not beat the linear baseline, and
    # the version must be crowned whatever it scores.
    promote = project.settings.promote.model_copy(update={"baseline_margin": 1.0})
    Project(project.root, project.settings.model_copy(update={"promote": promote})).save()
    project = Project.load(project.root)
    decisions = Registry(project).promote(version)
    if Registry(project).champion() != version:
        raise SystemExit(f"version {version} was not crowned: {[d.reason for d in decisions]}")
    Registry(project).load(version).save(folder / "package")  # for the hand-written handler
    inputs = [c for c in project.contract.stored_columns if c not in project.contract.targets]
    # A client sends numbers as JSON numbers and the time as ISO text.
    typed = project.lake.read("raw").sort("date").select(inputs)
    row = typed.with_columns(pl.col("date").dt.strftime("%Y-%m-%dT%H:%M:%S")).row(100, named=True)
    return project.root, project.settings.project.name, row


def canary_copy(root: Path, into: Path) -> Path:
    """A copy of the project at ``root`` where a retrained version is in a canary at 10% (its own
    lake holds the rollout, so the first project's server routes as before)."""
    import shutil

    from driftloop.model.trainer import train_project
    from driftloop.project import Project
    from driftloop.registry.mlflow.tracking import MlflowTracker
    from driftloop.rollout.canary import start_canary

    shutil.copytree(root, into)
    project = Project.load(into)
    # A day per step: the canary stays at 10% however long the run (its guards still run).
    rollout = project.settings.rollout.model_copy(update={"step_minutes": 24 * 60.0})
    Project(project.root, project.settings.model_copy(update={"rollout": rollout})).save()
    project = Project.load(into)
    with MlflowTracker(project) as tracker:
        version = tracker.record(train_project(project, callbacks=[tracker]))
    start_canary(project, version, 10.0)
    return into


def start(command: list[str], port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    body = {"dataframe_records": [{"x": 1}]}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{command[0]} exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
            )
        try:
            httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=5)
            return process
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"{command} did not answer in 180 s")


def load(port: int, concurrency: int, seconds: float, body: str) -> dict[str, float]:
    return drive(port, concurrency, seconds, http_post("/invocations", body.encode(), "application/json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="Load per run (bounded).")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="Concurrent connections.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved runs per server and level (median).")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("building a demo project with a champion ...", flush=True)
        root, name, row = build_project(folder)
        body = json.dumps({"dataframe_records": [row]}, default=str)
        (folder / "bare.py").write_text(BARE_APP)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
               "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}  # fmt: skip
        canary = canary_copy(root, folder / "canary")
        labels = ("driftloop", "driftloop canary 10%", "mlflow", "hand-written", "bare uvicorn")
        ports = {label: free_port() for label in labels}
        commands = {
            "driftloop": [str(bin_dir / "driftloop"), "serve", "--project", str(root),
                          "--port", str(ports["driftloop"])],
            "driftloop canary 10%": [str(bin_dir / "driftloop"), "serve", "--project", str(canary),
                                     "--port", str(ports["driftloop canary 10%"])],
            "hand-written": [sys.executable, "-c", HAND_WRITTEN, str(folder / "package"), str(ports["hand-written"])],
            "mlflow": [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{name}/1", "--env-manager", "local",
                       "-h", "127.0.0.1", "-p", str(ports["mlflow"]), "--workers", "1"],
            "bare uvicorn": [str(bin_dir / "uvicorn"), "bare:app", "--host", "127.0.0.1", "--port",
                             str(ports["bare uvicorn"]), "--log-level", "warning"],
        }  # fmt: skip
        servers = {}
        try:
            for label, command in commands.items():
                servers[label] = start(command, ports[label], env, folder)
            answer = httpx.post(f"http://127.0.0.1:{ports['driftloop']}/invocations", content=body, timeout=30)
            assert answer.status_code == 200, answer.text
            mlflow_answer = httpx.post(f"http://127.0.0.1:{ports['mlflow']}/invocations", content=body,
                                       headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
            assert mlflow_answer.status_code == 200, mlflow_answer.text
            hand_answer = httpx.post(f"http://127.0.0.1:{ports['hand-written']}/invocations", content=body, timeout=30)
            assert hand_answer.status_code == 200, hand_answer.text
            print(f"same answer: driftloop {answer.json()['predictions'][0]}, mlflow {mlflow_answer.json()}, "
                  f"hand-written {hand_answer.json()['predictions'][0]}")  # fmt: skip
            results: dict[tuple[str, int], dict[str, float]] = {}
            canary_costs: list[float] = []
            for level in args.levels:
                runs: dict[str, list[dict[str, float]]] = {label: [] for label in commands}
                for _ in range(args.repeats):  # interleaved: every server meets the same machine state
                    for label in commands:
                        runs[label].append(load(ports[label], level, args.seconds, body))
                # The canary's cost per repeat, from the two servers' adjacent runs: the machine's
                # drift between repeats (a neighbour's load) cancels out of each ratio.
                canary_costs = [
                    1 - c["rps"] / d["rps"]
                    for d, c in zip(runs["driftloop"], runs["driftloop canary 10%"], strict=True)
                ]
                for label in commands:
                    results[label, level] = {k: statistics.median(r[k] for r in runs[label]) for k in runs[label][0]}
                    r = results[label, level]
                    print(f"  c={level:<3} {label:<13} {r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms  "
                          f"p99 {r['p99']:7.2f} ms  errors {r['errors']:.0f}", flush=True)  # fmt: skip
        finally:
            for process in servers.values():
                process.send_signal(signal.SIGTERM)
            for process in servers.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    print("\n| concurrency | server | requests/s | p50 ms | p99 ms | vs mlflow | vs bare |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for level in args.levels:
        for label in commands:
            r = results[label, level]
            vs_mlflow = r["rps"] / results["mlflow", level]["rps"]
            vs_bare = r["rps"] / results["bare uvicorn", level]["rps"]
            figures = f"{r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {vs_mlflow:.2f}x | {vs_bare:.0%}"
            print(f"| {level} | {label} | {figures} |")
    print(f"(median of {args.repeats} interleaved runs of {args.seconds:g} s per server and level)")
    top = max(args.levels)
    plain, canaried = results["driftloop", top], results["driftloop canary 10%", top]
    hand = results["hand-written", top]
    cost = statistics.median(canary_costs)
    print(f"the canary's cost at concurrency {top}, run by run: {', '.join(f'{c:.1%}' for c in canary_costs)}; of the "
          f"medians: {1 - canaried['rps'] / plain['rps']:.1%}")  # fmt: skip
    print(f"at concurrency {top}: the canary costs {cost:.1%} of the throughput (median of the runs' ratios; goal "
          f"<= 10%: {'met' if cost <= 0.10 else 'NOT met'}); driftloop {plain['rps'] / hand['rps']:.2f}x the "
          f"hand-written handler (goal >= 1.3x: {'met' if plain['rps'] >= 1.3 * hand['rps'] else 'NOT met'}), p99 "
          f"{plain['p99']:.1f} ms (goal <= 25 ms: {'met' if plain['p99'] <= 25 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
