"""Bundles: a registered version written as one signed file, opened only when its signature and
every checksum hold; tampered, foreign-key and damaged bundles refused with the reason and
nothing written; keys made and found as the project says. Real MLflow, real files."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.errors import BundleError
from driftloop.images import Decoded, ImageRules, Standardisation, decode
from driftloop.model.cnn import ConvNet
from driftloop.model.onnx_export import export_image_network
from driftloop.monitor.images import predictions_profile
from driftloop.profiles.images import image_profile
from driftloop.project import Project
from driftloop.runtime.bundle import MANIFEST, SIGNATURE, open_bundle, read_manifest, write_bundle
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.kinds import load_package
from driftloop.runtime.package import ModelPackage
from driftloop.runtime.signing import fingerprint, generate_keys, private_key, public_key
from tests.conftest import make_synthetic_project
from tests.test_images import digits, encoded

runner = CliRunner()


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    """A project with version 1 registered and a key made, and version 1's bundle."""
    root = tmp_path_factory.mktemp("bundled")
    project = make_synthetic_project(root / "p", epochs=5)
    trained = runner.invoke(app, ["train", "--project", str(project.root)])
    assert trained.exit_code == 0, trained.output
    made = runner.invoke(app, ["keys", "--project", str(project.root)])
    assert made.exit_code == 0, made.output
    out = root / "v1.bundle"
    written = runner.invoke(app, ["bundle", "1", "--out", str(out), "--project", str(project.root), "--json"])
    assert written.exit_code == 0, written.output
    said = json.loads(written.stdout)
    assert said["bytes"] == out.stat().st_size and said["version"] == "1" and "network.onnx" in said["files"]
    return project, out


def trusted(project: Project) -> tuple[Path, Ed25519PublicKey]:
    public = project.key_file.with_suffix(".pub.pem")
    return public, public_key(public.read_bytes(), str(public))


def rewritten(source: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """``source``'s zip copied to ``target`` with the entries of ``change`` replaced (None: removed)
    or added: what an attacker or a damaged disk could make of it."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if name not in change:
                new.writestr(name, old.read(name))
        for name, data in change.items():
            if data is not None:
                new.writestr(name, data)
    return target


def test_a_bundle_opens_to_the_package_the_registry_holds_and_scores_the_same(
    bundled: tuple[Project, Path], tmp_path: Path
) -> None:
    project, path = bundled
    _, key = trusted(project)
    opened = open_bundle(path, key, tmp_path / "device")
    manifest = opened.manifest
    assert (opened.version, manifest["model"], manifest["kind"]) == ("1", project.model_name, "table")
    assert {"network.onnx", "golden.safetensors", "package.json", "weights.safetensors"} <= set(manifest["files"])
    assert manifest["key"] == fingerprint(key) and manifest["opset"] >= 17
    package = load_package(opened.folder)
    assert isinstance(package, ModelPackage) and package.network.name == "onnx"
    rows = project.lake.read("features").select("ts", "a", "b", "c").head(50)
    central = ModelPackage.load(opened.folder, backend="torch")
    np.testing.assert_allclose(package.predict(rows)["y"].to_numpy(), central.predict(rows)["y"].to_numpy(), rtol=1e-5)
    assert package.exported is not None
    golden = package.exported.golden
    np.testing.assert_allclose(
        package.network(golden["numbers"], golden["categories"]), golden["expected_outputs"], rtol=1e-5, atol=1e-6
    )


def test_a_tampered_or_foreign_bundle_is_refused_and_nothing_is_written(
    bundled: tuple[Project, Path], tmp_path: Path
) -> None:
    project, path = bundled
    _, key = trusted(project)
    with zipfile.ZipFile(path) as archive:
        graph = bytearray(archive.read("package/network.onnx"))
        manifest = json.loads(archive.read(MANIFEST))
    graph[len(graph) // 2] ^= 0xFF
    other_key, _ = generate_keys(tmp_path / "other" / "signing.pem")
    claimed = {**manifest, "version": "7"}
    cases = {
        "a flipped byte": (
            rewritten(path, tmp_path / "a", {"package/network.onnx": bytes(graph)}),
            "does not match its checksum",
        ),
        "an edited manifest": (
            rewritten(path, tmp_path / "b", {MANIFEST: json.dumps(claimed).encode()}),
            "signature does not match its manifest",
        ),
        "an extra file": (
            rewritten(path, tmp_path / "c", {"package/extra.py": b"import os"}),
            r"not those the signed manifest lists \(extra \['extra.py'\]",
        ),
        "no signature": (rewritten(path, tmp_path / "d", {SIGNATURE: None}), "has no bundle.sig"),
        "not a zip": (tmp_path / "e", "not a readable driftloop bundle"),
        "cut short": (tmp_path / "f", "not a readable driftloop bundle"),
    }
    (tmp_path / "e").write_bytes(b"%PDF-1.4")
    (tmp_path / "f").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for case, (bad, reason) in cases.items():
        with pytest.raises(BundleError, match=reason):
            open_bundle(bad, key, tmp_path / case)
        assert not (tmp_path / case).exists(), case
    foreign = tmp_path / "foreign.bundle"
    package = ModelPackage.load(open_bundle(path, key, tmp_path / "good").folder)
    write_bundle(package, foreign, private_key(other_key.read_bytes(), "other"), model="m", model_version="2")
    with pytest.raises(
        BundleError, match=f"signed with key [0-9a-f]{{16}}, and this side trusts key {fingerprint(key)}"
    ):
        open_bundle(foreign, key, tmp_path / "foreign")
    climbing = tmp_path / "climbing.bundle"  # signed, but its version would name a folder outside the store
    write_bundle(package, climbing, private_key(project.key_file.read_bytes(), "key"), model="m", model_version="../up")
    with pytest.raises(BundleError, match=r"names its version '\.\./up': not a version name"):
        open_bundle(climbing, key, tmp_path / "climbing")
    with pytest.raises(BundleError, match="exists already"):
        open_bundle(path, key, tmp_path / "good")
    assert read_manifest(foreign)["version"] == "2"  # what it claims, readable without trusting it


def test_keys_are_made_once_kept_private_and_found_as_the_project_says(
    bundled: tuple[Project, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = bundled
    root = str(project.root)
    assert stat.S_IMODE(project.key_file.stat().st_mode) == 0o600
    assert (project.key_file.parent / ".gitignore").read_text() == "signing.pem\n"
    again = runner.invoke(app, ["keys", "--project", root])
    assert again.exit_code == 1 and "already exists" in " ".join(again.stderr.split())
    elsewhere = tmp_path / "elsewhere.pem"
    generate_keys(elsewhere)
    monkeypatch.setenv(project.settings.bundle.key_env, elsewhere.read_text())
    assert fingerprint(project.signing_key().public_key()) != fingerprint(trusted(project)[1])
    monkeypatch.setenv(project.settings.bundle.key_env, "not a key")
    broken = runner.invoke(app, ["bundle", "1", "--out", str(tmp_path / "x.bundle"), "--project", root])
    assert broken.exit_code == 1 and "DRIFTLOOP_SIGNING_KEY is not a readable" in " ".join(broken.stderr.split())
    assert not (tmp_path / "x.bundle").exists()
    monkeypatch.delenv(project.settings.bundle.key_env)
    no_champion = runner.invoke(app, ["bundle", "--out", str(tmp_path / "y.bundle"), "--project", root])
    assert no_champion.exit_code == 1 and "no champion yet" in " ".join(no_champion.stderr.split())
    fresh = make_synthetic_project(tmp_path / "fresh", epochs=1)
    keyless = runner.invoke(app, ["bundle", "1", "--project", str(fresh.root)])
    assert keyless.exit_code == 1 and "driftloop keys --project" in " ".join(keyless.stderr.split())


def untrained_image_package(files: list[bytes]) -> ImagePackage:
    """An image network of 32x32 grey digits, even or odd, as initialised (seeded), exported and
    checked on ``files``, with its reference profiles taken from them."""
    torch.manual_seed(0)
    standard = Standardisation(width=32, height=32, mode="L")
    spec = ConvSpec(channels=1, height=32, width=32, classes=2, blocks=[8, 16])
    weights = ConvNet(spec).weights()
    images = ImagePackage(spec, weights, standard, ImageRules(), "label", ["even", "odd"])
    decoded = [d for d in (decode(f, ImageRules()) for f in files) if isinstance(d, Decoded)]
    pixels = standard.apply([d.image for d in decoded])
    images.exported = export_image_network(spec, weights, pixels)
    scored = images.predict_decoded(decoded)
    images.reference = {"images": image_profile(pl.DataFrame(scored.stats)).to_dict(),
                        "outputs": predictions_profile(scored).to_dict()}  # fmt: skip
    return images


def test_an_image_model_bundles_and_opens_to_the_same_verdicts(tmp_path: Path) -> None:
    files = [encoded(image) for _, image in digits(6)]
    images = untrained_image_package(files)
    key_path, public_path = generate_keys(tmp_path / "keys" / "signing.pem")
    write_bundle(
        images, tmp_path / "line.bundle", private_key(key_path.read_bytes(), "k"), model="line", model_version="3"
    )
    opened = open_bundle(tmp_path / "line.bundle", public_key(public_path.read_bytes(), "p"), tmp_path / "device")
    package = load_package(opened.folder)
    assert isinstance(package, ImagePackage) and package.network.name == "onnx" and opened.manifest["kind"] == "image"
    np.testing.assert_allclose(package.predict(files).probabilities, images.predict(files).probabilities, atol=1e-5)
    images.exported = None  # as a package trained before the export
    with pytest.raises(BundleError, match="holds no ONNX graph"):
        write_bundle(
            images, tmp_path / "old.bundle", private_key(key_path.read_bytes(), "k"), model="line", model_version="1"
        )
    assert not (tmp_path / "old.bundle").exists()
