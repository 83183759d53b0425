"""The image network: the folded scoring function against the trained module, augmentation, and
training on real images from the lake (scikit-learn's handwritten digits) into a package that
scores image files after a save and a load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from driftloop.errors import ConfigError, ModelPackageError, MonitorError, TrainingError
from driftloop.images import Standardisation
from driftloop.ingest_images import ingest_images
from driftloop.model.cnn import ConvNet
from driftloop.model.image_trainer import TrainedImages, train_images
from driftloop.model.train_images import augment
from driftloop.monitor.embeddings import mmd_test
from driftloop.monitor.images import image_drift, prepare_image_monitoring
from driftloop.project import Project, init_project
from driftloop.runtime.backends.torch import FoldedConv
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.package import ModelPackage
from driftloop.settings.images import Augmentation, ImageTrainSettings
from driftloop.settings.monitor import MonitorSettings
from tests.test_images import GOOD, digits, encoded, image_folder


def test_the_folded_network_scores_as_the_trained_module_does() -> None:
    torch.manual_seed(0)
    spec = ConvSpec(channels=3, height=20, width=24, classes=4, blocks=[8, 12])
    module = ConvNet(spec)
    with torch.no_grad():  # batch-norm statistics of a trained network, not the identity
        for layer in module.features:
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.2, 0.2)
    module.eval()
    pixels = torch.rand(5, 3, 20, 24)
    with torch.no_grad():
        expected, embedded = module(pixels).numpy(), module.embed(pixels).numpy()
    logits, embeddings = FoldedConv(spec, module.weights())(pixels.numpy())
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(embeddings, embedded, rtol=1e-4, atol=1e-5)


def test_a_network_too_deep_for_its_images_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16x16 pixels, not 12x12"):
        ConvSpec(channels=1, height=12, width=12, classes=2, blocks=[8, 8, 8, 8])


def test_augmentation_flips_shifts_and_relights_within_its_bounds() -> None:
    generator = torch.Generator().manual_seed(1)
    batch = torch.rand(64, 1, 10, 10) * 0.5 + 0.25
    flipped = augment(batch, Augmentation(flip=True, crop=0, brightness=0, contrast=0), generator)
    same = [torch.equal(a, b) for a, b in zip(flipped, batch, strict=True)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, batch, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and 16 < sum(mirrored) < 48
    lit = augment(batch, Augmentation(flip=False, crop=0, brightness=0.3, contrast=0), generator)
    ratios = (lit.mean(dim=(1, 2, 3)) / batch.mean(dim=(1, 2, 3))).numpy()
    assert ratios.min() >= 0.7 - 1e-6 and ratios.max() <= 1.3 + 1e-6 and ratios.std() > 0.05
    shifted = augment(batch, Augmentation(flip=False, crop=0.2, brightness=0, contrast=0), generator)
    assert shifted.shape == batch.shape and not torch.equal(shifted, batch)
    moved = [torch.equal(a, b) for a, b in zip(shifted, batch, strict=True)]
    assert sum(moved) < 32  # most moved (a shift of 0 in both directions leaves one as it was)
    assert float(augment(batch * 4, Augmentation(), generator).max()) <= 1.0  # intensities stay in range


@pytest.fixture(scope="module")
def digits_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("digits")
    project = init_project(root / "project", image_classes=[str(d) for d in range(10)])
    assert project.settings.images is not None
    images = project.settings.images.model_copy(
        update={
            "standardise": Standardisation(width=16, height=16, mode="L"),
            # Digits are not mirror images of themselves: no flips.
            "train": ImageTrainSettings(epochs=30, augment=Augmentation(flip=False)),
        }
    )
    project = Project(project.root, project.settings.model_copy(update={"images": images}))
    project.save()
    ingest_images(project, image_folder(root / "photos", 600))
    return project


@pytest.fixture(scope="module")
def trained(digits_project: Project) -> TrainedImages:
    made = train_images(digits_project)
    prepare_image_monitoring(made)
    return made


def test_the_network_learns_the_digits_and_its_package_scores_files_after_a_reload(
    digits_project: Project, trained: TrainedImages, tmp_path: Path
) -> None:
    test = trained.package.metrics["network"]["test"]["label"]
    assert trained.rows == {"train": 420, "validation": 90, "test": 90}
    assert test["accuracy"] > 0.9 and test["log_loss"] < 0.5, test
    lineage = trained.package.lineage
    assert lineage["images_version"] == digits_project.lake.version("images") and lineage["best_epoch"] >= 1
    # The package serves a refit on all 600 images; its test metrics are of the fit that held 90 out.
    assert lineage["refit"]["rows"] == 600 and lineage["refit"]["epochs"] == lineage["best_epoch"]
    assert trained.tested is not None and trained.tested.metrics is trained.package.metrics
    assert not np.allclose(trained.tested.weights["head.weight"], trained.package.weights["head.weight"])

    package = ImagePackage.load(trained.package.save(tmp_path / "package"))
    with pytest.raises(ModelPackageError, match="holds a package of kind 'image', not 'table'"):
        ModelPackage.load(tmp_path / "package")  # the table scorer never reads an image network as its own
    lake = digits_project.lake.read("images").sort("captured_at", "image_id").tail(40)
    files = lake.get_column("content").to_list()
    before, after = trained.package.predict(files), package.predict(files)
    np.testing.assert_allclose(after.probabilities, before.probabilities, rtol=1e-6)
    assert after.image_ids == lake.get_column("image_id").to_list()
    right = np.mean(np.array(after.predicted) == np.array(lake.get_column("label").to_list()))
    assert right > 0.85
    frame = after.frame()
    assert frame.columns[0] == "label" and frame.height == 40
    assert np.allclose(frame.drop("label").to_numpy().sum(axis=1), 1.0, atol=1e-5)
    assert after.embeddings.shape == (40, 64) and set(after.stats[0]) >= {"brightness", "sharpness"}

    with pytest.raises(ModelPackageError, match=r"1 of 3 image\(s\) break the image contract: image 1: file:truncated"):
        package.predict([files[0], GOOD[:100], files[1]])
    assert package.predict([]).probabilities.shape == (0, 10)


def darker_and_noisier(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo as a camera on a dim line takes it: 40% of the light, and sensor noise."""
    pixels = np.asarray(image, dtype=np.float32) * 0.4 + rng.normal(0, 12, image.size[::-1])
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_a_darker_noisier_line_is_seen_by_the_statistics_and_the_embeddings(
    trained: TrainedImages, tmp_path: Path
) -> None:
    package = ImagePackage.load(trained.package.save(tmp_path / "package"))  # the reference travels with it
    assert package.reference_embeddings is not None and package.reference_embeddings.shape == (180, 64)
    later = digits(200, start=600)  # other writers' digits, never ingested
    truth = np.array([str(label) for label, _ in later])
    rng = np.random.default_rng(0)
    settings = MonitorSettings()
    alike = package.predict([encoded(image) for _, image in later])
    calm = image_drift(package, alike, settings)
    assert not calm.drifted and calm.embeddings.p_value is not None and calm.embeddings.p_value > 0.05, calm.reasons()
    assert np.mean(np.array(alike.predicted) == truth) > 0.9
    dim = package.predict([encoded(darker_and_noisier(image, rng)) for _, image in later])
    alarm = image_drift(package, dim, settings)
    assert alarm.drifted and {"brightness", "contrast"} <= set(alarm.images.drifted)
    assert alarm.embeddings.drifted and alarm.embeddings.p_value is not None and alarm.embeddings.p_value < 0.01
    assert "confidence" in alarm.outputs.drifted and any("brightness" in r for r in alarm.reasons())
    assert np.mean(np.array(dim.predicted) == truth) < 0.8  # what the alarm is for: the model fails in the dark
    with pytest.raises(MonitorError, match="too few"):
        image_drift(package, package.predict([encoded(later[0][1])]), settings)


def test_the_embedding_test_holds_its_false_alarm_rate_and_sees_a_shift() -> None:
    rng = np.random.default_rng(3)
    alarms = [mmd_test(rng.normal(size=(80, 8)), rng.normal(size=(60, 8)), seed=i).drifted for i in range(40)]
    assert sum(alarms) <= 6  # 5% of 40 is 2; a binomial tail past 6 has odds below 1 in 400
    moved = mmd_test(rng.normal(size=(80, 8)), rng.normal(0.5, 1, size=(60, 8)))
    assert moved.drifted and moved.p_value is not None and moved.p_value < 0.01 and moved.statistic > 0
    with pytest.raises(ValueError, match="one width"):
        mmd_test(np.zeros((5, 3)), np.zeros((5, 4)))


def test_training_without_images_or_outside_an_image_project_is_refused(tmp_path: Path) -> None:
    empty = init_project(tmp_path / "empty", image_classes=["good", "bad"])
    with pytest.raises(TrainingError, match="images table is empty"):
        train_images(empty)
    (tmp_path / "few" / "good").mkdir(parents=True)
    for i in range(4):
        (tmp_path / "few" / "good" / f"{i}.png").write_bytes(encoded(noise(i)))
    ingest_images(empty, tmp_path / "few")
    with pytest.raises(TrainingError, match="4 labelled image"):
        train_images(empty)
    with pytest.raises(ConfigError, match="not an image project"):
        train_images(init_project(tmp_path / "tables"))
    (tmp_path / "tabular").mkdir()
    (tmp_path / "tabular" / "package.json").write_text('{"format_version": 1}', encoding="utf-8")
    with pytest.raises(ModelPackageError, match="holds a package of kind 'table', not 'image'"):
        ImagePackage.load(tmp_path / "tabular")


def noise(seed: int) -> Image.Image:
    """A 20x20 grey image of random pixels."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (20, 20), dtype=np.uint8))
