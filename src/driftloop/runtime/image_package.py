"""The image model package: a convolutional network and everything scoring an image needs,
read and scored without MLflow or training code.

The same folder layout as the tabular package (``weights.safetensors`` and ``package.json``,
no pickle), with ``"kind": "image"``: the network's shape, the image contract files are checked
against, the standardisation that makes a file the network's input, the classes, and the
metrics, lineage and reference statistics of training. Training's evaluation, batch scoring and
the server all call :meth:`ImagePackage.predict`, so they run the same steps on every image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from driftloop.errors import ModelPackageError
from driftloop.images import Decoded, ImageRules, Standardisation, decode, image_stats
from driftloop.runtime.backends import DEFAULT_BACKEND, ImageBackend, chosen_backend, resolve_image_backend
from driftloop.runtime.exported import ExportedNetwork
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.package import IMAGE_KIND, ONNX, WEIGHTS, read_manifest, write_package
from driftloop.runtime.targets import probability_column

FORMAT_VERSION = 1
# Beside the weights: the embeddings of held-out images that embedding drift is measured against.
REFERENCE_EMBEDDINGS = "reference.safetensors"
# Files of a request named in an error about invalid images.
ERROR_FILES_SHOWN = 5


@dataclass(frozen=True)
class ImagePredictions:
    """What the network said of each image: its class, the probability of every class, and the
    pooled features (embedding) drift is measured on; with each image's content hash and statistics."""

    target: str
    classes: list[str]
    probabilities: np.ndarray  # (N, classes)
    embeddings: np.ndarray  # (N, embedding size)
    image_ids: list[str]
    stats: list[dict[str, float]]

    @property
    def predicted(self) -> list[str]:
        return [self.classes[i] for i in self.probabilities.argmax(axis=1)]

    def frame(self) -> pl.DataFrame:
        """One row per image: the predicted class and a probability column per class."""
        columns = {probability_column(self.target, c): self.probabilities[:, i] for i, c in enumerate(self.classes)}
        return pl.DataFrame({self.target: self.predicted, **columns})


@dataclass
class ImagePackage:
    """A trained image classifier with its image contract and standardisation."""

    spec: ConvSpec
    weights: dict[str, np.ndarray]
    standardisation: Standardisation
    rules: ImageRules
    target: str
    classes: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)  # profiles of the training images (JSON)
    reference_embeddings: np.ndarray | None = None  # (N, embedding size), of held-out images
    exported: ExportedNetwork | None = None  # the network as an ONNX graph, checked against PyTorch
    backend_name: str = DEFAULT_BACKEND

    @cached_property
    def network(self) -> ImageBackend:
        """The network as the scoring backend runs it, built once."""
        graph = None if self.exported is None else self.exported.graph
        try:
            backend = chosen_backend(self.backend_name, graph is not None)
            return resolve_image_backend(backend)(self.spec, self.weights, graph)
        except KeyError as exc:
            raise ModelPackageError(f"the package's weights lack the parameter {exc} its network needs") from exc

    def predict(self, files: Sequence[bytes]) -> ImagePredictions:
        """Predictions for image files' bytes; a ModelPackageError naming each file (by its position)
        and the rules it broke when any breaks the image contract."""
        decoded, refused = [], []
        for position, content in enumerate(files):
            outcome = decode(content, self.rules)
            if isinstance(outcome, Decoded):
                decoded.append(outcome)
            else:
                refused.append(f"image {position}: " + "; ".join(f"{b.rule} ({b.detail})" for b in outcome))
        if refused:
            shown = "; ".join(refused[:ERROR_FILES_SHOWN])
            more = f" and {len(refused) - ERROR_FILES_SHOWN} more" if len(refused) > ERROR_FILES_SHOWN else ""
            raise ModelPackageError(f"{len(refused)} of {len(files)} image(s) break the image contract: {shown}{more}")
        return self.predict_decoded(decoded)

    def predict_decoded(self, decoded: Sequence[Decoded]) -> ImagePredictions:
        """Predictions for images already decoded under this package's image contract."""
        probabilities, embeddings = self.score(self.standardisation.apply([d.image for d in decoded]))
        return ImagePredictions(
            self.target,
            self.classes,
            probabilities,
            embeddings,
            [d.image_id for d in decoded],
            [image_stats(d.image) for d in decoded],
        )

    def score(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and embeddings of standardised images (N, C, H, W)."""
        if pixels.shape[0] == 0:
            return np.zeros((0, len(self.classes)), np.float32), np.zeros((0, self.spec.embedding_size), np.float32)
        logits, embeddings = self.network(pixels)
        return softmax(logits), embeddings

    def interface(self) -> dict[str, Any]:
        """What the model takes and gives, as JSON: the image contract files follow, and its classes."""
        return {
            "kind": IMAGE_KIND,
            "rules": self.rules.model_dump(mode="json"),
            "target": self.target,
            "classes": self.classes,
        }

    def save(self, folder: Path) -> Path:
        """Write the package into ``folder`` (created); returns it."""
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": IMAGE_KIND,
            "network": self.spec.to_dict(),
            "standardisation": self.standardisation.model_dump(),
            "rules": self.rules.model_dump(),
            "target": self.target,
            "classes": self.classes,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "reference": self.reference,
        }
        write_package(folder, self.weights, manifest, self.exported)
        if self.reference_embeddings is not None:
            embeddings = {"embeddings": np.ascontiguousarray(self.reference_embeddings)}
            save_file(embeddings, str(folder / REFERENCE_EMBEDDINGS))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, backend: str = DEFAULT_BACKEND) -> ImagePackage:
        """Read a package written by :meth:`save`, to score with ``backend``."""
        path = Path(folder)
        try:
            manifest = read_manifest(path, IMAGE_KIND, FORMAT_VERSION)
            package = cls(
                ConvSpec.from_dict(manifest["network"]),
                load_file(str(path / WEIGHTS)),
                Standardisation.model_validate(manifest["standardisation"]),
                ImageRules.model_validate(manifest["rules"]),
                manifest["target"],
                list(manifest["classes"]),
                manifest.get("metrics", {}),
                manifest.get("lineage", {}),
                manifest.get("reference", {}),
                _embeddings(path / REFERENCE_EMBEDDINGS),
                ExportedNetwork.load(path, manifest.get(ONNX)),
                backend,
            )
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise ModelPackageError(f"cannot read the image package at {path}: {exc}") from exc
        _ = package.network  # weights that do not fit the network fail here, not at a request
        return package


def _embeddings(path: Path) -> np.ndarray | None:
    return load_file(str(path))["embeddings"] if path.is_file() else None


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, row by row (shifted by the row's largest, so nothing overflows)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities
