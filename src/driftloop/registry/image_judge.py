"""The gates and evidence of an image network (a :class:`~driftloop.registry.judge.Judge`).

dev -> qa: the registered model loads in a fresh process and classifies the newest images of the
lake with finite probabilities, refuses a file that is no image, answers one image within the
latency budget, meets the floors and beats the class-share baseline on its test images.

qa -> prod: the champion is scored on the challenger's test images (read at the version of the
images table the challenger was trained on), or on the images captured in the days after the
challenger's data once they are labelled, with ``[promote] judge_days``.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import polars as pl
from PIL import Image

from driftloop.errors import RegistryError
from driftloop.lake import CAPTURED_AT
from driftloop.model.image_data import image_metrics, images_after, labelled_images, newest_images
from driftloop.project import Project
from driftloop.registry.decisions import GateResult
from driftloop.registry.evidence import Awaiting, Evidence, judge_days, still_waiting
from driftloop.registry.gates import Candidate, qa_gates
from driftloop.registry.mlflow.pyfunc import IMAGE_INPUT
from driftloop.registry.mlflow.store import ModelStore
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.kinds import image_package

# Images the fresh process classifies, and times one by one for the latency gate (as many as
# the rows a table's gate times: a p99 of fewer would be the slowest single call).
GATE_IMAGES = 200
# What identifies an image network's test window in its lineage.
IMAGE_TEST_WINDOW = ("test_start", "window", "images_version")


class ImageJudge:
    """An image network: gated on the newest images, judged on labelled images of the lake."""

    def __init__(self, project: Project, store: ModelStore) -> None:
        self.project, self.store = project, store

    def qa_gates(self, version: str) -> list[GateResult]:
        package = self._load(version)
        valid = pl.DataFrame({IMAGE_INPUT: newest_images(self.project.lake, GATE_IMAGES).get_column("content")})
        candidate = Candidate(
            self.store.model_uri(version),
            (self.project.tracking_uri, self.project.registry_uri),
            package.metrics,
            valid,
            pl.DataFrame({IMAGE_INPUT: [b"%PDF-1.7 a document, not a photo", _too_small()]}),
            "the training images' class shares",
            unit="image",
        )
        return qa_gates(candidate, self.project.settings.promote)

    def held_out(self, version: str, champion: str) -> Evidence:
        challenger, serving = self._load(version), self._load(champion)
        lineage = challenger.lineage
        until = lineage["window"][1] and datetime.fromisoformat(lineage["window"][1])
        start = datetime.fromisoformat(lineage["test_start"])
        images, _ = labelled_images(self.project.lake, since=start, until=until, version=lineage["images_version"])
        if images.height != lineage["rows"]["test"]:
            raise RegistryError(
                f"the test images of version {version} read {images.height}, not the {lineage['rows']['test']} it was "
                "tested on; the lake's history was changed. Retrain it to judge it against the champion"
            )
        mine = challenger.metrics["network"]["test"]
        if all(serving.lineage.get(k) == lineage.get(k) for k in IMAGE_TEST_WINDOW):
            basis = "the same test images, held out of both fits"
            return Evidence(mine, serving.metrics["network"]["test"], images.height, start.isoformat(), basis)
        theirs, basis = _champion_on(serving, images, "the challenger's test images")
        return Evidence(mine, theirs, images.height, start.isoformat(), basis)

    def ahead(self, version: str, champion: str, at: datetime) -> Evidence | Awaiting | None:
        challenger, serving = self._load(version), self._load(champion)
        days = judge_days(self.project.settings.promote)
        since = datetime.fromisoformat(str(challenger.lineage["data_until"]))
        images, total = images_after(self.project.lake, since, days)
        waiting = still_waiting(self.project.settings.promote, since, images.height, total, at)
        if waiting is not None:
            return waiting
        if images.is_empty():
            return None
        until = since + timedelta(days=days)
        where = f"the {days:g} days after its training images, {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}"
        theirs, basis = _champion_on(serving, images, where)
        mine = image_metrics(challenger, images)
        return Evidence(mine, theirs, images.height, since.isoformat(), basis, until.isoformat())

    def _load(self, version: str) -> ImagePackage:
        return image_package(self.store.load(version), f"version {version} of {self.store.name!r}")


def _champion_on(champion: ImagePackage, images: pl.DataFrame, where: str) -> tuple[dict[str, dict[str, float]], str]:
    """The champion's metrics on ``images``, and the basis: if it was trained on some of them,
    the comparison favours it, and the basis says by how many."""
    metrics = image_metrics(champion, images)
    trained_until = datetime.fromisoformat(str(champion.lineage["data_until"]))
    seen = images.filter(pl.col(CAPTURED_AT) <= trained_until).height
    if seen:
        return metrics, f"the champion was trained on {seen} of the {images.height} images, which favours it"
    return metrics, f"{where}, which neither was trained on"


def _too_small() -> bytes:
    """A real PNG of one pixel: an image, but smaller than any contract takes."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    return out.getvalue()
