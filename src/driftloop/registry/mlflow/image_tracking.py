"""The MLflow run of an image network: its settings, epochs, metrics, the image set it read and
the model, registered as a new version in dev, as for a table's network (see ``tracking``)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from mlflow.entities import Metric

from driftloop.errors import ConfigError
from driftloop.lake import Table
from driftloop.model.image_data import newest_images
from driftloop.model.image_trainer import TrainedImages
from driftloop.registry.mlflow.pyfunc import IMAGE_INPUT
from driftloop.registry.mlflow.signature import image_signature
from driftloop.registry.mlflow.tracking import RunTracker, delta_dataset, flatten, network_metrics


class ImageTracker(RunTracker):
    """Records the training run of an image project's network."""

    def params(self) -> dict[str, Any]:
        images = self.project.settings.images
        if images is None:
            raise ConfigError(f"{self.project.root} is not an image project (no [images] section)")
        return flatten(images.model_dump(mode="json", include={"train", "standardise"}))

    def record(self, trained: TrainedImages) -> str:
        """Log metrics, lineage, the image set and the model; register it; return the version."""
        started = time.perf_counter()
        stamp = int(time.time() * 1000)
        package, lineage = trained.package, trained.package.lineage
        final = network_metrics(package.metrics, stamp)
        final += [
            Metric("best_epoch", trained.fit.best_epoch, stamp, 0),
            Metric("train_seconds", trained.fit.seconds, stamp, 0),
            Metric("images_per_second", trained.fit.samples_seen / max(trained.fit.seconds, 1e-9), stamp, 0),
        ]
        if trained.refit is not None:
            final.append(Metric("refit_seconds", trained.refit.seconds, stamp, 0))
        with self._translated("record the run"):
            self._flush()
            self.client.log_batch(self.run_id, metrics=final)
            tags = {f"images_{split}": str(n) for split, n in trained.rows.items()}
            images = delta_dataset(Table.IMAGES, self.project.lake.uri(Table.IMAGES), lineage["images_version"])
            self._log_input(images, {"delta_table_version": str(lineage["images_version"]), **tags})
            self.client.log_dict(self.run_id, lineage, "lineage.json")
            self.client.log_dict(self.run_id, package.reference, "reference_profile.json")
            self.client.log_dict(self.run_id, package.rules.model_dump(mode="json"), "image_rules.json")
            example = pd.DataFrame({IMAGE_INPUT: newest_images(self.project.lake, 1).get_column("content").to_list()})
            version = self._register(
                package, image_signature(package), example, {"images_version": str(lineage["images_version"])}
            )
        self.logging_seconds += time.perf_counter() - started
        return version
