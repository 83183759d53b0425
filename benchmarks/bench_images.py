"""Image benchmark: ingest with standardisation, and training, each against the bare libraries
doing only the unavoidable part, in the same run.

Images: scikit-learn's handwritten digits (1,797 of them, 8x8 at 16 levels), scaled to 32x32 and
written as PNG files in class subfolders, each with a little noise so that every file's content
differs (--images of them).

  - ingest: ``ingest_images`` of the folder (read, hash, check the header, decode, statistics,
    one Delta commit per table) then the standardisation of every stored image to the network's
    input; against the ceiling: Pillow opening and decoding each file and hashlib hashing it, and
    one ``write_deltalake`` of the bytes (no checks, no statistics, no standardisation).
  - training: ``fit_images`` (no augmentation, so both sides do the same arithmetic; patience
    beyond the epochs, so both run every epoch) against a hand-written PyTorch loop on the same
    ``ConvNet``, the same standardised tensors, batches, optimiser and a validation pass per
    epoch; then ``fit_images`` with its default augmentation, for what that costs.

  - serving: `driftloop serve` of a champion trained on the digits (32x32 grey, the default
    network) against a hand-written FastAPI + PyTorch handler on the same network and weights
    (what a user writes instead: an ``UploadFile``, Pillow, one forward pass per request), each
    in its own process on 127.0.0.1, a multipart upload of one PNG per request, at concurrency 1
    and 8 for --seconds each (bounded); the ceiling is a bare Starlette endpoint that reads the
    body and answers a constant. The load generator is a separate process sharing the 2 cores.

Medians of --repeats, the sides interleaved.

    python benchmarks/bench_images.py [--images 3000] [--epochs 5] [--repeats 3] [--seconds 6]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from deltalake import write_deltalake
from PIL import Image
from sklearn.datasets import load_digits
from torch.nn import functional

from driftloop.images import Standardisation
from driftloop.ingest_images import ingest_images
from driftloop.model.cnn import ConvNet
from driftloop.model.train_images import ImageSplit, fit_images
from driftloop.project import Project, init_project
from driftloop.runtime.image_spec import ConvSpec
from driftloop.settings.images import Augmentation, ImageTrainSettings
from load import drive, http_post

STANDARD = Standardisation(width=32, height=32, mode="L")


def write_images(folder: Path, count: int) -> list[Path]:
    digits = load_digits()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        k = i % len(digits.images)
        pixels = digits.images[k] * 255 / 16
        noisy = np.clip(np.kron(pixels, np.ones((4, 4))) + rng.normal(0, 6, (32, 32)), 0, 255).astype(np.uint8)
        path = folder / str(digits.target[k]) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy).save(path)
        paths.append(path)
    return paths


def driftloop_ingest(root: Path, folder: Path, run: int) -> float:
    project = init_project(root / f"project{run}", image_classes=[str(d) for d in range(10)])
    images = project.settings.images
    assert images is not None
    project = Project(project.root, project.settings.model_copy(update={"images": images.model_copy(
        update={"standardise": STANDARD})}))  # fmt: skip
    started = time.perf_counter()
    ingest_images(project, folder)
    stored = project.lake.read("images").get_column("content")
    STANDARD.apply([Image.open(io.BytesIO(content)) for content in stored])
    return time.perf_counter() - started


def bare_ingest(root: Path, paths: list[Path], run: int) -> float:
    started = time.perf_counter()
    contents, ids = [], []
    for path in paths:
        content = path.read_bytes()
        Image.open(io.BytesIO(content)).load()
        contents.append(content)
        ids.append(hashlib.sha256(content).hexdigest())
    write_deltalake(str(root / f"bare{run}"), pl.DataFrame({"image_id": ids, "content": contents}).to_arrow())
    return time.perf_counter() - started


def splits(paths: list[Path]) -> tuple[ImageSplit, ImageSplit]:
    images = [Image.open(path) for path in paths]
    labels = np.array([int(path.parent.name) for path in paths], dtype=np.int64)
    pixels = STANDARD.pixels(images)
    cut = int(len(paths) * 0.85)
    return ImageSplit(pixels[:cut], labels[:cut]), ImageSplit(pixels[cut:], labels[cut:])


def hand_written(train: ImageSplit, validation: ImageSplit, spec: ConvSpec, settings: ImageTrainSettings) -> float:
    """What a user writes: the same network, data, batches and optimiser, a validation pass per
    epoch and the best weights kept."""
    torch.manual_seed(settings.seed)
    model = ConvNet(spec)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    x, y = torch.from_numpy(train.pixels), torch.from_numpy(train.classes)
    vx, vy = torch.from_numpy(validation.pixels), torch.from_numpy(validation.classes)
    generator = torch.Generator().manual_seed(settings.seed)
    best, state = float("inf"), None
    started = time.perf_counter()
    for _ in range(settings.epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            if len(rows) < 2:
                continue
            loss = functional.cross_entropy(model(x[rows]), y[rows])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        model.eval()
        with torch.no_grad():
            validation_loss = float(functional.cross_entropy(model(vx), vy))
        if validation_loss < best:
            best, state = validation_loss, copy.deepcopy(model.state_dict())
    assert state is not None
    model.load_state_dict(state)
    return time.perf_counter() - started


HAND_WRITTEN = """
import io, json, sys
import numpy as np, torch, uvicorn
from fastapi import FastAPI, UploadFile
from PIL import Image
from safetensors.numpy import load_file
from driftloop.model.cnn import ConvNet
from driftloop.runtime.image_spec import ConvSpec
folder, port = sys.argv[1], int(sys.argv[2])
manifest = json.load(open(folder + "/package.json"))
spec, classes = ConvSpec.from_dict(manifest["network"]), manifest["classes"]
model = ConvNet(spec)
model.load_state_dict({k: torch.from_numpy(v) for k, v in load_file(folder + "/weights.safetensors").items()})
model.eval()
app = FastAPI()
@app.post("/v1/predict")
async def predict(image: UploadFile):
    picture = Image.open(io.BytesIO(await image.read())).convert("L").resize((spec.width, spec.height))
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255)[None, None]
    with torch.no_grad():
        probabilities = torch.softmax(model(pixels), dim=1)[0]
    return {"label": classes[int(probabilities.argmax())], "probabilities": dict(zip(classes, probabilities.tolist()))}
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""

BARE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def predict(request):
    await request.body()  # the unavoidable part: read the upload
    return Response(b'{"label": "0"}', media_type="application/json")
app = Starlette(routes=[Route("/v1/predict", predict, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def served_project(root: Path, folder: Path, epochs: int) -> tuple[Project, Path]:
    """An image project with a champion trained on the photos; its package saved for the hand-written server."""
    from driftloop.model.image_trainer import train_images
    from driftloop.monitor.images import prepare_image_monitoring
    from driftloop.registry import Registry
    from driftloop.registry.mlflow.image_tracking import ImageTracker

    project = init_project(root / "served", image_classes=[str(d) for d in range(10)])
    images = project.settings.images
    assert images is not None
    train = ImageTrainSettings(epochs=epochs, augment=Augmentation(flip=False))
    project = Project(project.root, project.settings.model_copy(update={"images": images.model_copy(
        update={"standardise": STANDARD, "train": train})}))  # fmt: skip
    project.save()
    ingest_images(project, folder)
    with ImageTracker(project) as tracker:
        trained = train_images(project, callbacks=[tracker])
        prepare_image_monitoring(trained)
        version = tracker.record(trained)
    Registry(project).promote(version)
    return project, trained.package.save(root / "package")


def start_server(command: list[str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    """``command`` serving on 127.0.0.1:``port``, once it answers (within 180 s)."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{command[:3]} exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(2)  # the model loads in the lifespan, after the port opens
                return process
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{command[:3]} did not listen in 180 s")


def serving(root: Path, paths: list[Path], args: argparse.Namespace) -> None:
    project, package = served_project(root, root / "photos", args.epochs)
    photo = paths[-1]
    # One PNG as a multipart upload, sent by connections that each keep one request in flight.
    body = (b'--bench\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + photo.read_bytes() + b"\r\n--bench--\r\n")  # fmt: skip
    upload = http_post("/v1/predict", body, "multipart/form-data; boundary=bench")
    servers: dict[str, list[str]] = {
        "driftloop serve": [str(Path(sys.executable).with_name("driftloop")), "serve", "--project", str(project.root)],
        "hand-written FastAPI + PyTorch": [sys.executable, "-c", HAND_WRITTEN, str(package)],
        "ceiling: bare endpoint": [sys.executable, "-c", BARE, str(package)],
    }
    levels = (1, 8)
    runs: dict[tuple[str, int], list[dict[str, float]]] = {(name, level): [] for name in servers for level in levels}
    for _ in range(args.repeats):
        for name, command in servers.items():  # the servers take turns, so they meet the same machine state
            port = free_port()
            where = ["--port", str(port)] if name == "driftloop serve" else [str(port)]
            process = start_server([*command, *where], port, root)
            try:
                for level in levels:
                    result = drive(port, level, args.seconds, upload)
                    if result["errors"]:
                        raise RuntimeError(f"{name} answered {result['errors']} requests with an error")
                    runs[name, level].append(result)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    print(f"serving one 32x32 PNG a request, multipart (medians of {args.repeats} x {args.seconds:g} s):")
    print("| concurrency | server | images/s | p50 ms | p99 ms | vs hand-written |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        median = {
            n: {k: statistics.median(r[k] for r in runs[n, level]) for k in ("rps", "p50", "p99")} for n in servers
        }
        hand = median["hand-written FastAPI + PyTorch"]["rps"]
        for name, m in median.items():
            print(f"| {level} | {name} | {m['rps']:,.0f} | {m['p50']:.1f} | {m['p99']:.1f} | {m['rps'] / hand:.2f}x |")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="Load per server and concurrency, each repeat.")
    parser.add_argument("--only", choices=("ingest", "training", "serving"), help="Run one of the three.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        paths = write_images(root / "photos", args.images)
        if args.only in (None, "ingest"):
            ingest(root, paths, args)
        if args.only in (None, "training"):
            training(paths, args)
        if args.only in (None, "serving"):
            serving(root, paths, args)


def ingest(root: Path, paths: list[Path], args: argparse.Namespace) -> None:
    ours, bare = [], []
    for run in range(args.repeats):
        ours.append(driftloop_ingest(root, root / "photos", run))
        bare.append(bare_ingest(root, paths, run))
    ingest_ours, ingest_bare = statistics.median(ours), statistics.median(bare)
    print(f"ingest + standardisation of {args.images:,} PNG images (medians of {args.repeats}):")
    print(f"  driftloop: {args.images / ingest_ours:,.0f} images/s ({ingest_ours:.2f} s)")
    print(f"  ceiling, decode + hash + one Delta write: {args.images / ingest_bare:,.0f} images/s")
    print(f"  driftloop / ceiling: {ingest_bare / ingest_ours:.2f}")


def training(paths: list[Path], args: argparse.Namespace) -> None:
    train, validation = splits(paths)
    spec = ConvSpec(channels=1, height=32, width=32, classes=10)
    plain = ImageTrainSettings(
        epochs=args.epochs,
        patience=args.epochs + 1,
        augment=Augmentation(flip=False, crop=0, brightness=0, contrast=0),
    )
    augmented = plain.model_copy(update={"augment": Augmentation()})
    warm = plain.model_copy(update={"epochs": 1})  # the first convolutions pay PyTorch's start-up: not timed
    fit_images(train, validation, spec, STANDARD, warm)
    hand_written(train, validation, spec, warm)
    times: dict[str, list[float]] = {"driftloop": [], "hand-written": [], "driftloop, augmented": []}
    for _ in range(args.repeats):
        times["driftloop"].append(fit_images(train, validation, spec, STANDARD, plain).seconds)
        times["hand-written"].append(hand_written(train, validation, spec, plain))
        times["driftloop, augmented"].append(fit_images(train, validation, spec, STANDARD, augmented).seconds)
    seen = len(train) * args.epochs
    print(f"training, {len(train):,} images x {args.epochs} epochs (medians of {args.repeats}):")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"  {name}: {seen / seconds:,.0f} images/s ({seconds:.2f} s)")
    overhead = medians["driftloop"] / medians["hand-written"] - 1
    print(f"  driftloop's overhead over the hand-written loop: {overhead:+.1%}")
    print(f"  augmentation costs: {medians['driftloop, augmented'] / medians['driftloop'] - 1:+.1%}")


if __name__ == "__main__":
    main()
