"""Serving an image network: `driftloop serve` in its own process on 127.0.0.1, answering uploads,
base64 JSON and the Open Inference Protocol's BYTES with the same verdict, logging each answer
(hash and statistics, not the image), refusing bad files with a 4xx, fuzzed by schemathesis, and
its upload page driven in Debian's Chromium by Playwright."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.project import Project
from tests.live import launch_chromium
from tests.live import server as live_server
from tests.test_image_registry import cli, digits_project
from tests.test_images import GOOD, JPEG, encoded, image_folder, png_claiming
from tests.test_serve import TOKEN, Server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    root = tmp_path_factory.mktemp("line")
    project = digits_project(root / "project")
    cli("ingest", str(image_folder(root / "photos", 400)), "--project", str(project.root))
    cli("train", "--project", str(project.root))
    cli("promote", "--project", str(project.root))
    server = Server(project)
    yield project, server
    server.stop()


def photo(project: Project, index: int = -1) -> tuple[bytes, str]:
    """A photo the lake took in at ingest (not one a server kept), and its label."""
    ingested = project.lake.read("images").filter(pl.col("_batch_id").str.starts_with("images-"))
    row = ingested.sort("captured_at", "image_id").row(index, named=True)
    return row["content"], row["label"]


def test_an_upload_base64_json_and_v2_bytes_get_the_same_verdict_and_each_is_logged(
    served: tuple[Project, Server],
) -> None:
    project, server = served
    client = server.client
    content, label = photo(project)
    assert client.get("/health/ready").json() == {"status": "ready", "model": project.model_name, "model_version": "1"}
    uploaded = client.post("/v1/predict", files={"image": ("digit.png", content, "image/png")})
    assert uploaded.status_code == 200, uploaded.text
    answer = uploaded.json()
    [prediction] = answer["predictions"]
    assert prediction["image_id"] == hashlib.sha256(content).hexdigest()
    assert prediction["label"] == label and prediction["confidence"] == max(prediction["probabilities"].values())
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-5
    assert prediction["prediction_id"] == f"{answer['request_id']}|0" and answer["model_version"] == "1"

    text = base64.b64encode(content).decode()
    as_json = client.post("/v1/predict", json={"image": text}, headers={"x-request-id": "line-3-0412"}).json()
    assert as_json["request_id"] == "line-3-0412"
    assert as_json["predictions"][0]["probabilities"] == prediction["probabilities"]
    both = client.post("/v1/predict", json={"images": [text, base64.b64encode(GOOD).decode()]}).json()
    assert [p["prediction_id"].rsplit("|", 1)[1] for p in both["predictions"]] == ["0", "1"]
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [text]}
    v2 = client.post(f"/v2/models/{project.model_name}/infer", json={"inputs": [tensor]}).json()
    assert v2["outputs"][0]["data"] == [label] and v2["outputs"][1]["shape"] == [1, 10]
    assert v2["outputs"][1]["data"] == list(prediction["probabilities"].values())
    metadata = client.get(f"/v2/models/{project.model_name}").json()
    assert metadata["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]

    logged = _online(project, 5)
    assert set(logged.get_column("request_id")) >= {"line-3-0412", answer["request_id"]}
    row = logged.filter(pl.col("request_id") == "line-3-0412").row(0, named=True)
    assert row["entity_id"] == prediction["image_id"] and row["label"] == label and row["model_version"] == "1"
    assert '"brightness"' in row["inputs"] and "content" not in logged.columns  # statistics, never the image
    metrics = client.get("/metrics").text
    assert 'driftloop_requests_total{endpoint="/v1/predict",status="200"}' in metrics


BAD_FILES = [
    ("a text file", b"inspection notes, not a photo" * 10, "file:not_an_image"),
    ("a truncated PNG", GOOD[: len(GOOD) // 2], "file:truncated"),
    ("a truncated JPEG", JPEG[: len(JPEG) * 4 // 5], "file:truncated"),
    ("a 1x1 image", None, "width:min"),
    ("a zip bomb (a PNG claiming 30000x30000)", png_claiming(30_000, 30_000), "file:max_pixels"),
    ("an empty file", b"", "file:empty"),
]


@pytest.mark.parametrize(("what", "content", "rule"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_refused_with_its_rule_never_a_500(
    served: tuple[Project, Server], what: str, content: bytes | None, rule: str
) -> None:
    from PIL import Image

    _, server = served
    data = encoded(Image.new("L", (1, 1))) if content is None else content
    for answer in (
        server.client.post("/v1/predict", files={"image": ("photo.png", data, "image/png")}),
        server.client.post("/v1/predict", json={"image": base64.b64encode(data).decode()}),
    ):
        assert answer.status_code == 422, (what, answer.text)
        assert rule in answer.json()["detail"] and answer.json()["errors"][0]["image"] == 0


def test_malformed_requests_are_refused_clearly(served: tuple[Project, Server]) -> None:
    project, server = served
    client = server.client
    content, _ = photo(project)
    fifty_mb = b"\xff\xd8\xff" + bytes(50 * 1024 * 1024)
    v2 = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(content).decode()]}]
    }
    cases = [
        (client.post("/v1/predict", files={"image": ("big.jpg", fifty_mb, "image/jpeg")}), 413, "more than"),
        (client.post("/v1/predict", json={"image": "not base64!"}), 422, "not base64"),
        (client.post("/v1/predict", json={"photo": "x"}), 422, "multipart upload"),
        (client.post("/v1/predict", json={"images": "x"}), 422, "must be a list"),
        (client.post("/v1/predict", json={"images": [7]}), 422, "images[0] must be a base64 string"),
        (client.post("/v1/predict", content=b"{nope", headers={"content-type": "application/json"}), 422, "JSON"),
        (client.post("/v1/predict", files={"note": ("", b"", "text/plain")}, data={"x": "1"}), 422, "no image"),
        (client.post("/v1/predict", json={"images": [base64.b64encode(content).decode()] * 65}), 413, "at most 64"),
        (client.post("/v2/models/other/infer", json=v2), 404, "no model named 'other'"),
        (
            client.post(
                f"/v2/models/{project.model_name}/infer",
                json={"inputs": [{"name": "image", "datatype": "FP32", "data": [1.0]}]},
            ),
            422,
            'must be datatype "BYTES"',
        ),
        (client.post("/admin/reload"), 401, "Bearer"),
    ]
    for answer, status, words in cases:
        assert answer.status_code == status, answer.text
        assert words in answer.json()["detail"], answer.text
    assert client.post("/admin/reload", headers={"authorization": f"Bearer {TOKEN}"}).json()["reloaded"] is False
    assert client.get("/v1/predict").status_code == 405


def test_no_generated_request_makes_the_image_server_fail_or_stray_from_its_spec(
    served: tuple[Project, Server], tmp_path: Path
) -> None:
    _, server = served
    checks = "not_a_server_error,status_code_conformance,content_type_conformance"
    run = subprocess.run(
        [Path(sys.executable).with_name("schemathesis"), "run", f"{server.client.base_url}/openapi.json",
         "--checks", checks, "--max-examples", "25", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert "generated" in run.stdout and "Server error" not in run.stdout


def test_a_person_uploads_a_photo_on_the_page_and_sees_its_verdict(
    served: tuple[Project, Server], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    project, server = served
    content, label = photo(project, 0)
    (tmp_path / "digit.png").write_bytes(content)
    (tmp_path / "notes.png").write_bytes(b"not a photo at all")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(str(server.client.base_url))
            assert project.settings.project.name in page.title()
            page.set_input_files("#file", str(tmp_path / "digit.png"))
            page.wait_for_selector("#result:not([hidden])", timeout=15_000)
            assert page.inner_text("#verdict") == label
            assert "version 1" in page.inner_text("#meta") and page.locator(".bar").count() == 10
            page.screenshot(path=str(tmp_path / "verdict.png"))
            page.set_input_files("#file", str(tmp_path / "notes.png"))
            page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=15_000)
            assert "Refused (422)" in page.inner_text("#error") and "file:not_an_image" in page.inner_text("#error")
            assert page.locator("#result").is_hidden()
            page.screenshot(path=str(tmp_path / "refused.png"))
        finally:
            browser.close()
    assert (tmp_path / "verdict.png").stat().st_size > 1000


def _online(project: Project, at_least: int) -> pl.DataFrame:
    """The server's logged rows, once at least ``at_least`` have been written (it flushes every 2 s)."""
    deadline = time.monotonic() + 30
    while True:
        lake = project.lake
        logged = lake.read("predictions").filter(pl.col("source") == "online") if lake.exists("predictions") else None
        if logged is not None and logged.height >= at_least:
            return logged
        assert time.monotonic() < deadline, "the server never logged its answers"
        time.sleep(0.2)


def test_with_keep_images_the_answered_photos_join_the_lake_once_to_be_labelled_later(
    served: tuple[Project, Server], tmp_path: Path
) -> None:
    from driftloop.image_labels import label_images
    from tests.test_images import digits

    project, _ = served
    settings = project.settings.model_copy(
        update={"serve": project.settings.serve.model_copy(update={"keep_images": True})}
    )
    keeping = Project(project.root, settings)  # a second server of the project, in this process
    new = encoded(digits(1, start=1500)[0][1].resize((40, 40)))  # a photo the lake has never held
    known, _ = photo(project)
    before = project.lake.row_count("images")
    with live_server(keeping) as client:
        for body in (new, new, known):
            assert client.post("/v1/predict", files={"image": ("p.png", body, "image/png")}).status_code == 200
        new_id = hashlib.sha256(new).hexdigest()
        deadline = time.monotonic() + 30
        while new_id not in set(project.lake.read("images").get_column("image_id")):
            assert time.monotonic() < deadline, "the server never stored the photo it answered"
            time.sleep(0.2)
    images = project.lake.read("images")
    assert images.height == before + 1  # the new photo once; the known one not again
    kept = images.filter(pl.col("image_id") == new_id).row(0, named=True)
    assert kept["content"] == new and kept["label"] is None and kept["_source"].startswith("serve ")
    assert (kept["width"], kept["height"], kept["format"]) == (40, 40, "PNG") and kept["brightness"] > 0
    labels = tmp_path / "verdicts.csv"
    labels.write_text(f"image_id,label\n{new_id},7\n", encoding="utf-8")
    assert label_images(project, labels).labelled == 1


def test_a_canary_of_an_image_model_is_refused_with_the_reason(served: tuple[Project, Server]) -> None:
    project, _ = served
    done = CliRunner().invoke(app, ["rollout", "canary", "1", "--project", str(project.root)])
    assert done.exit_code == 1 and "rollouts serve table models so far" in " ".join(done.output.split())
