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

Medians of --repeats, the two sides interleaved. Serving joins this benchmark when image
serving lands (issue "Images", point 6).

    python benchmarks/bench_images.py [--images 3000] [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import shutil
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        paths = write_images(root / "photos", args.images)
        ours, bare = [], []
        for run in range(args.repeats):
            ours.append(driftloop_ingest(root, root / "photos", run))
            bare.append(bare_ingest(root, paths, run))
        ingest_ours, ingest_bare = statistics.median(ours), statistics.median(bare)
        print(f"ingest + standardisation of {args.images:,} PNG images (medians of {args.repeats}):")
        print(f"  driftloop: {args.images / ingest_ours:,.0f} images/s ({ingest_ours:.2f} s)")
        print(f"  ceiling, decode + hash + one Delta write: {args.images / ingest_bare:,.0f} images/s")
        print(f"  driftloop / ceiling: {ingest_bare / ingest_ours:.2f}")

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
        shutil.rmtree(root / "photos")


if __name__ == "__main__":
    main()
