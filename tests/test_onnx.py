"""The network exported to ONNX: checked against PyTorch when a package is made, carried in the
package with its golden pairs, and scored by ONNX Runtime by default; a disagreeing export, a
damaged graph and a package without one are each a clear error."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from driftloop.errors import ModelPackageError
from driftloop.model.cnn import ConvNet
from driftloop.model.network import TabularNet
from driftloop.model.onnx_export import check_graph, export_image_network, export_table_network
from driftloop.model.trainer import train_project
from driftloop.project import Project
from driftloop.runtime.backends.onnx import OnnxConv, OnnxTable
from driftloop.runtime.backends.torch import FoldedConv, FoldedTorch
from driftloop.runtime.exported import GOLDEN, GRAPH, TOLERANCE
from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.package import MANIFEST, ModelPackage
from driftloop.runtime.spec import NetworkSpec

SPECS = [
    NetworkSpec(5, [4, 7], 2, hidden=[16, 8], outputs=[1, 3], linear=True),
    NetworkSpec(5, [], 1, hidden=[8], activation="gelu", batch_norm=False),  # no categories: no such graph input
    NetworkSpec(0, [6], 1, hidden=[8], activation="relu", linear=True),  # categories alone
]


def trained_like(spec: NetworkSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """A network's weights with batch-norm statistics of a trained one (not the identity)."""
    torch.manual_seed(seed)
    net = TabularNet(spec)
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, torch.nn.BatchNorm1d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
    return net.weights()


def rows(spec: NetworkSpec, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(0, 2, (n, spec.numeric)).astype(np.float32)
    categories = np.stack([rng.integers(0, c, n) for c in spec.cardinalities], axis=1) if spec.cardinalities else None
    return numbers, (categories if categories is not None else np.zeros((n, 0))).astype(np.int64)


@pytest.mark.parametrize("spec", SPECS, ids=["linear-path", "numbers-only", "categories-only"])
def test_the_exported_network_scores_as_the_folded_one_does_at_any_batch_size(spec: NetworkSpec) -> None:
    weights = trained_like(spec)
    exported = export_table_network(spec, weights, *rows(spec, 100))
    assert exported.record["max_difference"] <= TOLERANCE and exported.record["golden_rows"] == 64
    assert exported.golden["numbers"].shape == (64, spec.numeric) and "expected_outputs" in exported.golden
    onnx, folded = OnnxTable(spec, weights, exported.graph), FoldedTorch(spec, weights)
    for n in (0, 1, 7, 1000):  # the batch dimension is free, not the 64 it was traced with
        numbers, categories = rows(spec, n, seed=n)
        found, expected = onnx(numbers, categories), folded(numbers, categories)
        assert found.shape == expected.shape == (n, sum(spec.head_sizes))
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-5)
    shipped = pickle.loads(pickle.dumps(onnx))  # as Spark ships a package to its workers
    assert np.array_equal(shipped(*rows(spec, 5)), onnx(*rows(spec, 5)))


def test_the_exported_image_network_gives_the_same_logits_and_embeddings() -> None:
    torch.manual_seed(0)
    spec = ConvSpec(channels=3, height=20, width=24, classes=4, blocks=[8, 12])
    weights = ConvNet(spec).weights()
    pixels = np.random.default_rng(0).random((12, 3, 20, 24), dtype=np.float32)
    exported = export_image_network(spec, weights, pixels)
    assert exported.golden["pixels"].shape == (8, 3, 20, 24) and exported.record["max_difference"] <= TOLERANCE
    for n in (1, 12):
        logits, embeddings = OnnxConv(spec, weights, exported.graph)(pixels[:n])
        expected_logits, expected_embeddings = FoldedConv(spec, weights)(pixels[:n])
        np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(embeddings, expected_embeddings, rtol=1e-5, atol=1e-5)


def test_an_export_that_disagrees_with_pytorch_is_refused_with_the_numbers() -> None:
    spec = SPECS[0]
    weights = trained_like(spec)
    numbers, categories = rows(spec, 10)
    graph = export_table_network(spec, weights, numbers, categories).graph
    other = FoldedTorch(spec, trained_like(spec, seed=5))  # as if the exporter had lost a layer's weights
    inputs = {"numbers": numbers, "categories": categories}
    found = {"outputs": OnnxTable(spec, weights, graph)(numbers, categories)}
    with pytest.raises(ModelPackageError, match=r"disagrees with PyTorch: largest difference .* the tolerance 0.0001"):
        check_graph(graph, inputs, {"outputs": other(numbers, categories)}, found)
    with pytest.raises(ModelPackageError, match=r"ONNX Runtime's shape \(10, 4\), PyTorch's \(10, 3\)"):
        check_graph(graph, inputs, {"outputs": other(numbers, categories)[:, :3]}, found)
    nan = {"outputs": np.full_like(found["outputs"], np.nan)}
    with pytest.raises(ModelPackageError, match="ONNX Runtime gives nan"):
        check_graph(graph, inputs, {"outputs": other(numbers, categories)}, nan)


def test_a_trained_package_carries_its_checked_graph_and_scores_through_onnx_runtime(
    synthetic_project: Project, tmp_path: Path
) -> None:
    trained = train_project(synthetic_project)
    folder = trained.package.save(tmp_path / "pkg")
    assert {GRAPH, GOLDEN} <= {p.name for p in folder.iterdir()}
    record = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["onnx"]
    assert record["file"] == GRAPH and record["max_difference"] <= TOLERANCE and record["opset"] >= 17
    loaded, by_torch = ModelPackage.load(folder), ModelPackage.load(folder, backend="torch")
    assert (loaded.network.name, by_torch.network.name) == ("onnx", "torch")
    test = trained.splits.test.select("ts", "a", "b", "c")
    np.testing.assert_allclose(
        loaded.predict(test).get_column("y").to_numpy(), by_torch.predict(test).get_column("y").to_numpy(), rtol=1e-5
    )
    assert loaded.exported is not None  # the golden pairs replay as they were checked
    golden = loaded.exported.golden
    replayed = loaded.network(golden["numbers"], golden["categories"])
    np.testing.assert_allclose(replayed, golden["expected_outputs"], rtol=1e-5, atol=1e-6)


def test_a_package_without_a_graph_or_with_a_damaged_one_is_a_clear_error(
    synthetic_project: Project, tmp_path: Path
) -> None:
    folder = train_project(synthetic_project).package.save(tmp_path / "pkg")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    (folder / GRAPH).write_bytes(b"\x08\x07not a graph")
    with pytest.raises(ModelPackageError, match="ONNX Runtime cannot load the package's graph"):
        ModelPackage.load(folder)
    assert ModelPackage.load(folder, backend="torch").network.name == "torch"  # the fallback still scores
    with pytest.raises(ModelPackageError, match=r"no scoring backend named 'tpu'; the backends are \['auto', 'onnx'"):
        ModelPackage.load(folder, backend="tpu")
    del manifest["onnx"]  # as a package written before the export
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert ModelPackage.load(folder).network.name == "torch"
    with pytest.raises(ModelPackageError, match="holds no ONNX graph"):
        ModelPackage.load(folder, backend="onnx")
