"""A model on a device: `driftloop edge serve` as a real process on 127.0.0.1, answering as
`driftloop serve` does from a signed bundle, logging every answer to SQLite that a SIGKILL does
not lose, refusing a tampered bundle or a version that strays from its golden outputs, and
needing neither PyTorch, MLflow nor Delta to do it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.cli.loop import FLEET_HOURS
from driftloop.edge.agent import Agent, Round, fetch
from driftloop.edge.deployments import DeviceDeployments
from driftloop.edge.logbook import logged
from driftloop.edge.reports import pending_reports
from driftloop.edge.store import DeviceStore
from driftloop.errors import BundleError
from driftloop.lake import IMAGE_STATS
from driftloop.project import Project
from driftloop.runtime.bundle import bundle_tag, open_bundle, write_bundle
from driftloop.runtime.package import ModelPackage
from driftloop.runtime.signing import generate_keys, private_key, public_key
from tests.conftest import make_synthetic_project
from tests.live import free_port, listening, server
from tests.test_bundle import untrained_image_package
from tests.test_images import digits, encoded

runner = CliRunner()


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path, Path]:
    """A project whose champion is version 1, bundled as v1.bundle and signed; its public key."""
    root = tmp_path_factory.mktemp("central")
    project = make_synthetic_project(root / "p", epochs=5)
    for command in (["train"], ["promote"], ["keys"], ["bundle", "--out", str(root / "v1.bundle")]):
        done = runner.invoke(app, [*command, "--project", str(project.root)])
        assert done.exit_code == 0, done.output
    return project, root / "v1.bundle", project.key_file.with_suffix(".pub.pem")


def records(project: Project, n: int = 8) -> list[dict[str, object]]:
    rows = project.lake.read("features").select("ts", "a", "b", "c").head(n)
    return rows.with_columns(pl.col("ts").cast(pl.String)).to_dicts()


def start_device(
    bundle: Path, key: Path, store: Path, port: int, driftloop: Path = Path(sys.executable).parent / "driftloop"
) -> subprocess.Popen[bytes]:
    """`driftloop edge serve` (this environment's, unless told) as a process, once it listens."""
    command = [str(driftloop), "edge", "serve", str(bundle), "--key", str(key), "--store", str(store),
               "--port", str(port)]  # fmt: skip
    log = (store.parent / f"edge-{port}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while not listening(port):
        assert process.poll() is None, (store.parent / f"edge-{port}.log").read_text()
        assert time.monotonic() < deadline, "the device did not start in 60 s"
        time.sleep(0.2)
    return process


def test_the_device_answers_as_the_central_server_does_and_loses_no_logged_answer_to_a_kill(
    central: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, bundle, key = central
    body = records(project)
    with server(project) as reference:
        expected = reference.post("/v1/predict", json=body).json()["predictions"]
    port = free_port()
    device = start_device(bundle, key, tmp_path / "device", port)
    answered: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            got = client.post("/v1/predict", json=body).json()
            assert [r["y"] for r in got["predictions"]] == pytest.approx([r["y"] for r in expected], rel=1e-5)
            assert got["model_version"] == "1" and client.get("/health/ready").json()["model_version"] == "1"
            refused = client.post("/v1/predict", json=[{**body[0], "a": "not a number"}])
            assert refused.status_code == 422 and refused.json()["errors"][0]["column"] == "a"
            for _ in range(20):
                answered += [
                    r["prediction_id"] for r in client.post("/v1/predict", json=body[:2]).json()["predictions"]
                ]
    finally:
        device.send_signal(signal.SIGKILL)  # no shutdown, no flush: what was answered must be on disk already
        device.wait(timeout=30)
    log = logged(tmp_path / "device" / "predictions.sqlite")
    assert set(answered) <= set(log.get_column("prediction_id")) and log.height == len(answered) + len(body)
    assert set(log.get_column("model_version")) == {"1"} and "inputs" in log.columns
    again = start_device(bundle, key, tmp_path / "device", port)  # a restart on the same store
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=30).json()["model_version"] == "1"
    finally:
        again.terminate()
        again.wait(timeout=30)


def test_a_tampered_bundle_is_refused_and_the_device_keeps_nothing_of_it(
    central: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    _, bundle, key = central
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.bundle").write_bytes(bytes(data))
    store = tmp_path / "device"
    refused = runner.invoke(
        app, ["edge", "serve", str(tmp_path / "bad.bundle"), "--key", str(key), "--store", str(store)]
    )
    assert refused.exit_code == 1 and "bad.bundle" in " ".join(refused.stderr.split())
    assert DeviceStore(store).versions() == [] and DeviceStore(store).serving() is None
    no_key = runner.invoke(app, ["edge", "serve", str(bundle), "--key", str(tmp_path / "nowhere.pem")])
    assert no_key.exit_code == 2 and "does not exist" in " ".join(no_key.stderr.split())


def test_a_version_that_strays_from_its_golden_outputs_never_serves(
    central: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    _, bundle, key = central
    store = DeviceStore(tmp_path / "device")
    version = store.install(bundle, public_key(key.read_bytes(), str(key)))
    store.serve(version)
    deployments = DeviceDeployments(store, "p")
    assert deployments.refresh() and deployments.serving() == ("p", "1")
    stray = tmp_path / "device" / "versions" / "2"
    stray.mkdir()
    for file in store.package(version).iterdir():
        (stray / file.name).write_bytes(file.read_bytes())
    golden = load_file(str(stray / "golden.safetensors"))
    golden["expected_outputs"] = golden["expected_outputs"] + np.float32(1.0)  # as a runtime that computes otherwise
    save_file(golden, str(stray / "golden.safetensors"))
    (stray / "bundle.json").write_text(json.dumps(store.manifest("1") | {"version": "2"}))
    store.serve("2")
    with pytest.raises(BundleError, match=r"damaged on this device: .*golden\.safetensors"):
        deployments.refresh()  # the file no longer matches the checksum it was signed with
    manifest = store.manifest("1")
    manifest["files"]["golden.safetensors"]["sha256"] = hashlib.sha256(
        (stray / "golden.safetensors").read_bytes()
    ).hexdigest()
    (stray / "bundle.json").write_text(json.dumps(manifest | {"version": "2"}))  # as if it had been signed so
    with pytest.raises(BundleError, match="does not reproduce its golden outputs"):
        deployments.refresh()
    deployments.try_refresh()  # the server's way: logged, and the old version goes on
    assert deployments.serving() == ("p", "1")


def test_the_device_needs_neither_pytorch_nor_mlflow_nor_delta_nor_fastapi(
    central: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, bundle, key = central
    script = f"""
import json
import sys
for blocked in ("torch", "mlflow", "deltalake", "sklearn", "scipy", "fastapi"):
    sys.modules[blocked] = None  # importing any of them now fails
from pathlib import Path
from driftloop.edge.server import create_edge_app
from driftloop.edge.store import DeviceStore
from driftloop.runtime.bundle import bundle_tag, open_bundle, write_bundle
from driftloop.runtime.package import ModelPackage
from driftloop.runtime.signing import generate_keys, private_key, public_key
store = DeviceStore(Path({str(tmp_path / "device")!r}))
key = Path({str(key)!r})
store.serve(store.install(Path({str(bundle)!r}), public_key(key.read_bytes(), "key")))
served = create_edge_app(store)
print("starlette" in sys.modules)  # not even the ASGI toolkit: a device's server is plain ASGI
from starlette.testclient import TestClient  # the test's client, not the server's
with TestClient(served) as client:
    answer = client.post("/v1/predict", json=json.loads({json.dumps(records(project, 3))!r}))
    print(answer.status_code, len(answer.json()["predictions"]))
    paths = client.get("/openapi.json").json()["paths"]  # its spec, with no FastAPI to write it
    print(sorted(set(paths) & {{"/v1/predict", "/v1/labels", "/admin/reload"}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["False", "200 3", "['/admin/reload', '/v1/labels', '/v1/predict']"]


@pytest.fixture(scope="module")
def second(central: tuple[Project, Path, Path]) -> tuple[Path, Path, Path]:
    """Version 2 of the central model bundled; the same signed with another key; and version 2
    with another contract (a wider range for ``a``), signed with the right key."""
    project, bundle, _ = central
    root = bundle.parent
    trained = runner.invoke(app, ["train", "--project", str(project.root)])
    assert trained.exit_code == 0, trained.output
    done = runner.invoke(app, ["bundle", "2", "--out", str(root / "v2.bundle"), "--project", str(project.root)])
    assert done.exit_code == 0, done.output
    key = private_key(project.key_file.read_bytes(), "key")
    other, _ = generate_keys(root / "other" / "signing.pem")
    opened = open_bundle(root / "v2.bundle", key.public_key(), root / "v2-opened")
    package = ModelPackage.load(opened.folder)
    write_bundle(
        package, root / "foreign.bundle", private_key(other.read_bytes(), "other"), model="p", model_version="2"
    )
    manifest = json.loads((opened.folder / "package.json").read_text())
    manifest["contract"]["columns"]["a"]["max"] = 1000.0  # the device's callers may now send what it refused
    (opened.folder / "package.json").write_text(json.dumps(manifest))
    wider = ModelPackage.load(opened.folder)
    write_bundle(wider, root / "wider.bundle", key, model="p", model_version="3")
    return root / "v2.bundle", root / "foreign.bundle", root / "wider.bundle"


def test_the_agent_swaps_in_the_new_champion_under_load_and_keeps_serving_when_the_source_is_gone(
    central: tuple[Project, Path, Path], second: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    project, bundle, key = central
    v2, foreign, wider = second
    port = free_port()
    device = start_device(bundle, key, tmp_path / "device", port)
    source = tmp_path / "published.bundle"
    follower = Agent(DeviceStore(tmp_path / "device"), str(source), public_key(key.read_bytes(), "key"),
                     server=f"http://127.0.0.1:{port}", settle_seconds=20)  # fmt: skip
    body, failures, versions = records(project, 2), [], []
    stop = threading.Event()

    def traffic() -> None:  # bounded: stops with the test, at most 3,000 requests
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(3000):
                if stop.is_set():
                    return
                answer = client.post("/v1/predict", json=body)
                if answer.status_code != 200:
                    failures.append(answer.status_code)
                else:
                    versions.append(answer.json()["model_version"])

    try:
        assert follower.round().outcome == "offline"  # nothing published yet: v1 goes on
        source.write_bytes(v2.read_bytes())
        loader = threading.Thread(target=traffic)
        loader.start()
        deadline = time.monotonic() + 30
        while not versions and not failures and time.monotonic() < deadline:  # traffic flows before the swap
            time.sleep(0.01)
        swapped = follower.round()
        time.sleep(1)
        stop.set()
        loader.join(timeout=60)
        assert swapped == Round("swapped", "2") and failures == []
        assert versions[0] == "1" and versions[-1] == "2"  # served by both, no request failed in between
        assert follower.round().outcome == "current"
        for bad, reason in ((foreign, "signed with key"), (wider, "takes or gives other data")):
            source.write_bytes(bad.read_bytes())
            refused = follower.round()
            assert (refused.outcome, refused.version) == ("refused", "2") and reason in refused.detail
        source.unlink()  # the central side is gone: the device serves on
        assert follower.round() == Round("offline", "2", follower.round().detail)
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=30).json()["model_version"] == "2"
        assert DeviceStore(tmp_path / "device").versions() == ["1", "2"]  # the refused ones left nothing
    finally:
        stop.set()
        device.terminate()
        device.wait(timeout=30)


def test_a_version_the_server_does_not_take_is_rolled_back_by_the_agent(
    central: tuple[Project, Path, Path], second: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, bundle, key = central
    v2, _, _ = second
    port = free_port()
    elsewhere = start_device(bundle, key, tmp_path / "elsewhere", port)  # a server that never sees this store
    store = DeviceStore(tmp_path / "device")
    trusted = public_key(key.read_bytes(), "key")
    store.serve(store.install(bundle, trusted))
    follower = Agent(store, str(v2), trusted, server=f"http://127.0.0.1:{port}", settle_seconds=2)
    try:
        outcome = follower.round()
    finally:
        elsewhere.terminate()
        elsewhere.wait(timeout=30)
    assert (outcome.outcome, outcome.version) == ("rolled back", "1") and store.serving() == "1"


def test_the_central_server_publishes_its_champion_as_a_bundle_the_agent_follows(
    central: tuple[Project, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _, key = central
    with server(project) as reference:
        monkeypatch.setenv(project.settings.bundle.key_env, "not a key")  # a server that cannot sign says so
        unsigned = reference.get("/v1/bundles/champion")
        assert unsigned.status_code == 404 and "publishes no bundles" in unsigned.json()["detail"]
        monkeypatch.delenv(project.settings.bundle.key_env)
        published = reference.get("/v1/bundles/champion")
        assert published.status_code == 200 and published.headers["x-model-version"] == "1"
        store = DeviceStore(tmp_path / "device")
        follower = Agent(store, f"{reference.base_url}/v1/bundles/champion", public_key(key.read_bytes(), "key"))
        assert follower.round() == Round("swapped", "1") and store.serving() == "1"
        assert follower.round().outcome == "current"
        # A device that has the version is sent nothing: the agent asks with its tag.
        unchanged = reference.get("/v1/bundles/champion", headers={"If-None-Match": bundle_tag("p", "1")})
        assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == '"p-1"'
        assert reference.get("/v1/bundles/champion", headers={"If-None-Match": '"p-0"'}).content == published.content
        assert fetch(f"{reference.base_url}/v1/bundles/champion", tmp_path / "again", unless='"p-1"') is None
    assert follower.round().outcome == "offline" and store.serving() == "1"  # the central server is gone


class SlowSource(http.server.BaseHTTPRequestHandler):
    """Serves ``bundle`` a kilobyte every 20 ms (a slow link); ``started`` is set once sending began."""

    bundle = b""
    started = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.bundle)))
        self.end_headers()
        self.started.set()
        with contextlib.suppress(OSError):  # the agent is killed mid-download: its socket goes away
            for start in range(0, len(self.bundle), 1024):
                self.wfile.write(self.bundle[start : start + 1024])
                time.sleep(0.02)

    def log_message(self, *args: object) -> None:
        pass


def test_an_agent_killed_mid_download_or_mid_swap_leaves_a_consistent_version_serving(
    central: tuple[Project, Path, Path], second: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, bundle, key = central
    v2, _, _ = second
    port = free_port()
    device = start_device(bundle, key, tmp_path / "device", port)
    store = DeviceStore(tmp_path / "device")
    driftloop = Path(sys.executable).parent / "driftloop"

    def agent(source: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(driftloop), "edge", "agent", "--once", "--source", source, "--key", str(key), "--store",
             str(tmp_path / "device"), "--server", f"http://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def consistent() -> str:
        serving = store.serving()
        assert serving is not None and store.verified(serving).is_dir()  # whole, and as signed
        deadline = time.monotonic() + 20
        while httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=30).json()["model_version"] != serving:
            assert time.monotonic() < deadline, f"the server does not serve version {serving}, the store's"
            time.sleep(0.2)
        return serving

    SlowSource.bundle = v2.read_bytes()
    source = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), SlowSource)
    threading.Thread(target=source.serve_forever, daemon=True).start()
    try:
        downloading = agent(f"http://127.0.0.1:{source.server_address[1]}/champion.bundle")
        assert SlowSource.started.wait(timeout=60), "the agent never started downloading"
        time.sleep(0.3)
        downloading.send_signal(signal.SIGKILL)
        downloading.wait(timeout=30)
        assert consistent() == "1" and store.versions() == ["1"]  # nothing of the half-downloaded bundle
        for delay in (1.0, 2.0, 3.0, 4.0):  # kills at whatever point of a round each falls on (bounded: 4)
            swapping = agent(str(v2))
            time.sleep(delay)
            swapping.send_signal(signal.SIGKILL)
            swapping.wait(timeout=30)
            assert consistent() in ("1", "2")
        finishing = agent(str(v2))
        assert finishing.wait(timeout=120) == 0
        assert consistent() == "2" and store.versions() == ["1", "2"]
        assert not list((tmp_path / "device" / "versions").glob(".incoming-*"))  # what kills left, swept
        assert not list((tmp_path / "device").glob("serving.*"))
    finally:
        source.shutdown()
        device.terminate()
        device.wait(timeout=30)


PIPELINE_LIBRARIES = ("torch", "mlflow", "deltalake", "pyarrow", "pandas", "scipy", "sklearn", "onnx")


@pytest.mark.integration
def test_a_device_with_only_driftloop_edge_installed_serves_and_follows_the_champion(
    central: tuple[Project, Path, Path], second: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """`pip install 'driftloop[edge]'` into a fresh environment, from the package registry: none of
    the pipeline's libraries come with it, nor FastAPI, and its `driftloop edge serve` and `agent` serve the
    champion's bundle as the central server does, take the next one and serve on without a source."""
    project, v1, key = central
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    repository = Path(__file__).resolve().parents[1]
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{repository}[edge]"],
                   check=True, timeout=900)  # fmt: skip
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.util as u, sys; "
         "print(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is not None))", *PIPELINE_LIBRARIES, "fastapi"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert found.stdout.split() == []
    driftloop = venv / "bin" / "driftloop"
    listed = subprocess.run([str(driftloop), "--help"], capture_output=True, text=True, check=True).stdout
    assert "(needs driftloop[pipeline])" in listed and "edge" in listed
    port = free_port()
    device = start_device(v1, key, tmp_path / "device", port, driftloop=driftloop)
    body = records(project, 8)
    expected = ModelPackage.load(open_bundle(v1, public_key(key.read_bytes(), "key"), tmp_path / "opened").folder)
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json=body, timeout=30).json()
        scored = expected.predict(pl.DataFrame(body).with_columns(pl.col("ts").str.to_datetime()))
        assert [p["y"] for p in answer["predictions"]] == pytest.approx(scored["y"].to_list(), rel=1e-5)
        source = tmp_path / "published.bundle"
        source.write_bytes(second[0].read_bytes())
        agent = [str(driftloop), "edge", "agent", "--source", str(source), "--key", str(key), "--store",
                 str(tmp_path / "device"), "--server", f"http://127.0.0.1:{port}", "--once"]  # fmt: skip
        followed = subprocess.run(agent, capture_output=True, text=True, timeout=120)
        assert followed.returncode == 0, followed.stderr
        source.unlink()  # the central side is gone
        offline = subprocess.run(agent, capture_output=True, text=True, timeout=120)
        assert offline.returncode == 0, offline.stderr
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=30).json()
        assert ready["model_version"] == "2"
    finally:
        device.terminate()
        device.wait(timeout=30)


def test_devices_report_profiles_and_outcomes_never_rows_and_monitor_merges_them_into_a_fleet_view(
    central: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    """Two devices serve the champion; one gets labels, the other an input squeezed far from its
    training spread. Each agent reports home the range frozen before it sent (the same ids a
    retry would send); the fleet view has each device's rows once, the squeezed one drifting, the
    labelled one's metrics, and the fleet as their sum. Bad labels and bad reports are refused,
    nothing kept."""
    project, bundle, key = central
    token = "central-token"
    rows = records(project, 40)
    body = rows[:8]
    shifted = [{**row, "a": float(row["a"]) * 0.01 + 0.5} for row in rows]  # inside the contract, not as trained
    with server(project, admin_token=token) as central_server:
        source = f"{central_server.base_url}/v1/bundles/champion"
        reports = f"{central_server.base_url}/v1/devices/reports"
        devices = {}
        for name in ("north", "south"):
            store = DeviceStore(tmp_path / name)
            store.serve(store.install(bundle, public_key(key.read_bytes(), "key")))
            devices[name] = (store, free_port())
        processes = [start_device(bundle, key, tmp_path / n, port) for n, (_, port) in devices.items()]
        try:
            north = httpx.Client(base_url=f"http://127.0.0.1:{devices['north'][1]}", timeout=30)
            south = httpx.Client(base_url=f"http://127.0.0.1:{devices['south'][1]}", timeout=30)
            answered = [north.post("/v1/predict", json=rows[i : i + 8]).json() for i in range(0, 40, 8)]
            for i in range(0, 40, 8):
                assert south.post("/v1/predict", json=shifted[i : i + 8]).status_code == 200
            ids = [p["prediction_id"] for a in answered for p in a["predictions"]]
            truth = [{"prediction_id": i, "y": 1.5} for i in ids[:20]]
            assert north.post("/v1/labels", json={"labels": truth}).json() == {"received": 20, "new": 20}
            assert north.post("/v1/labels", json={"labels": truth}).json()["new"] == 0  # a retry keeps nothing twice
            refused = {
                "an unknown prediction": ({"labels": [{"prediction_id": "nope", "y": 1.0}]}, 422),
                "another label for one": ({"labels": [{"prediction_id": ids[0], "y": 9.0}]}, 409),
                "not a number": ({"labels": [{"prediction_id": ids[30], "y": "high"}]}, 422),
                "no target": ({"labels": [{"prediction_id": ids[30], "z": 1.0}]}, 422),
                "no labels": ({"labels": []}, 422),
            }
            for case, (sent, status) in refused.items():
                assert north.post("/v1/labels", json=sent).status_code == status, case
            assert north.post("/v1/labels", json={"labels": [{"prediction_id": ids[30], "y": 2.0}]}).json()["new"] == 1
            # The central side refuses reports without the token, and what is not a report.
            assert httpx.post(reports, json={"reports": []}, timeout=30).status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            for bad in ({"reports": []}, {"reports": [{"device": "x"}]}, [1, 2]):
                assert httpx.post(reports, json=bad, headers=bearer, timeout=30).status_code == 422
            frozen: list[str] = []
            for name, (store, port) in devices.items():
                agent = Agent(store, source, public_key(key.read_bytes(), "key"), server=f"http://127.0.0.1:{port}",
                              report_to=reports, device=name, report_token=token)  # fmt: skip
                assert agent.round().outcome == "current"
                frozen += [r.report_id for r in pending_reports(store, name)]  # the round below sends these ids
                assert "reported" in agent.report()
            stored = project.lake.read("device_reports")
            assert sorted(stored["device"].unique()) == ["north", "south"] and sorted(stored["report_id"]) == frozen
            flat = "".join(stored["report"])
            assert ids[0] not in flat and '"inputs": {"rows"' in flat  # profiles, not a prediction or its row
            # A device with new rows reports again; nothing reported twice.
            north.post("/v1/predict", json=body)
            agent = Agent(devices["north"][0], source, public_key(key.read_bytes(), "key"), report_to=reports,
                          device="north", report_token=token)  # fmt: skip
            assert agent.report() == "reported 8 predictions' profiles"
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    day = datetime.now(UTC)
    shown = runner.invoke(app, ["monitor", "--devices", "--since", (day - timedelta(hours=1)).isoformat(),
                                "--until", (day + timedelta(hours=1)).isoformat(), "--json",
                                "--project", str(project.root)])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    views = {(v["device"], v["version"]): v for v in json.loads(shown.stdout)["devices"]}
    north_view, south_view, fleet = views[("north", "1")], views[("south", "1")], views[("(fleet)", "1")]
    assert north_view["rows"] == 48 and north_view["labelled"] == 21
    assert north_view["metrics"]["y"]["mae"] > 0 and "rmse" in north_view["metrics"]["y"]
    assert fleet["rows"] == north_view["rows"] + south_view["rows"]
    # The same rows with `a` squeezed to about 0.5: its distance from training is many times the other device's.
    statistic = {name: view["input_drift"]["statistics"]["a"]["statistic"] for name, view in views.items()}
    assert "a" in south_view["input_drift"]["drifted"] and statistic[("south", "1")] > 3 * statistic[("north", "1")]
    # With no window, the fleet now: what the devices reported in the last day.
    table = runner.invoke(app, ["monitor", "--devices", "--project", str(project.root)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "north" in table.output and "(fleet)" in table.output
    starts = {f"{d - timedelta(hours=FLEET_HOURS):%Y-%m-%d %H:}" for d in (day, datetime.now(UTC))}  # to the hour
    assert any(start in " ".join(table.output.split()) for start in starts), table.output
    narrow = runner.invoke(app, ["monitor", "--devices", "--project", str(project.root)], env={"COLUMNS": "80"})
    lines = narrow.output.splitlines()  # a narrow terminal: each device and version in lines, not a squeezed table
    assert narrow.exit_code == 0 and "north version 1: 48 rows" in narrow.output, narrow.output
    south = next(n for n, line in enumerate(lines) if line.startswith("south version 1:"))
    drift = next(line for line in lines[south:] if line.startswith("  input drift:"))
    assert re.search(r"drift \d+%: .*\ba\b", drift), drift  # the squeezed input, named


def test_a_device_serves_an_image_bundle_as_the_central_image_server_does(tmp_path: Path) -> None:
    """An image model's bundle on a device: uploads, base64 JSON and v2 BYTES get the verdicts the
    package gives, a file that is no image is refused, labels are checked against the classes,
    and the device's report profiles the images' statistics and the verdicts."""
    files = [encoded(image) for _, image in digits(12)]
    package = untrained_image_package(files)
    key_path, public_path = generate_keys(tmp_path / "keys" / "signing.pem")
    bundle = tmp_path / "line.bundle"
    write_bundle(package, bundle, private_key(key_path.read_bytes(), "k"), model="line", model_version="3")
    port = free_port()
    device = start_device(bundle, public_path, tmp_path / "device", port)
    expected = package.predict(files)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        assert client.get("/health/ready").json() == {"status": "ready", "model": "line", "model_version": "3"}
        uploaded = client.post("/v1/predict", files=[("image", (f"{n}.png", f, "image/png")) for n, f in
                                                     enumerate(files[:6])]).json()  # fmt: skip
        as_json = client.post("/v1/predict", json={"images": [base64.b64encode(f).decode() for f in files[6:]]}).json()
        answers = uploaded["predictions"] + as_json["predictions"]
        found = np.array([[a["probabilities"][c] for c in ("even", "odd")] for a in answers])
        np.testing.assert_allclose(found, expected.probabilities, atol=1e-5)
        tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(files[0]).decode()]}
        v2 = client.post("/v2/models/line/infer", json={"inputs": [tensor]}).json()
        assert v2["outputs"][0]["data"] == [answers[0]["label"]]
        refused = client.post("/v1/predict", files={"image": ("notes.txt", b"not an image", "text/plain")})
        assert refused.status_code == 422 and "file:not_an_image" in refused.text
        first = answers[0]["prediction_id"]
        assert (
            client.post("/v1/labels", json={"labels": [{"prediction_id": first, "label": "seven"}]}).status_code == 422
        )
        kept = client.post("/v1/labels", json={"labels": [{"prediction_id": first, "label": "even"}]}).json()
        assert kept == {"received": 1, "new": 1}
    finally:
        device.terminate()
        device.wait(timeout=30)
    [report] = pending_reports(DeviceStore(tmp_path / "device"), "line-3")
    assert report.rows == 13 and report.labelled == 1 and report.version == "3"
    assert report.inputs is not None and sorted(report.inputs.columns) == sorted(IMAGE_STATS)
    assert report.predictions is not None and report.predictions.columns["label"].count == 13
    assert report.outcomes["label"].count == 1  # type: ignore[union-attr]
