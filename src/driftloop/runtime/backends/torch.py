"""The folded PyTorch backend: the network in evaluation mode, with fewer operations.

``BatchNorm(x W' + b)`` in evaluation mode is an affine map of its input, so it folds into the
Linear before it: ``W = W' * s`` and ``b = (b' - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``, computed in float64 and rounded once. Dropout is the identity in
evaluation mode and goes, and the heads become one matrix product; the linear path's bias joins
the heads' bias. Outputs match the module's to
float32 rounding (a few 1e-7 relative), in about a third of the time for a request-sized batch
(the module's Python layers cost more than the arithmetic) and three quarters for a large one
(one pass less over the activations per block).

Built from the spec and the saved weights alone: scoring needs no training code. The image
network (:class:`FoldedConv`) folds the same way: each block's batch norm into its convolution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch.nn import functional

from driftloop.runtime.image_spec import HEAD, ConvSpec, conv_name, norm_name
from driftloop.runtime.spec import (
    BATCH_NORM_EPS,
    LINEAR_CATEGORIES,
    LINEAR_NUMBERS,
    NetworkSpec,
    trunk_batch_norm,
    trunk_linear,
)

# Rows per forward pass when scoring: small enough that a chunk's activations stay in the CPU's
# cache between layers (1M rows: 0.72 s in chunks of 16,384 against 0.80 s in chunks of 65,536).
SCORING_CHUNK = 16_384
# The activations as functions writing over their input (GELU has no in-place form).
IN_PLACE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "swish": lambda x: functional.silu(x, inplace=True),
    "relu": torch.relu_,
    "gelu": functional.gelu,
}


class FoldedTorch:
    """The folded network of ``spec`` with ``weights`` (a TabularNet state dict, as arrays)."""

    name = "torch"

    def __init__(self, spec: NetworkSpec, weights: Mapping[str, np.ndarray], graph: bytes | None = None) -> None:
        self.spec = spec  # built from the weights: an exported graph is not needed
        self.activation = IN_PLACE[spec.activation]
        tensor = {name: torch.from_numpy(np.array(value)) for name, value in weights.items()}  # copies
        self.embeddings = [tensor[f"embeddings.{i}.weight"] for i in range(len(spec.cardinalities))]
        self.blocks: list[tuple[torch.Tensor, torch.Tensor]] = []  # (weight transposed, bias)
        for block in range(len(spec.hidden)):
            linear = trunk_linear(spec, block)
            weight, bias = tensor[f"{linear}.weight"].double(), tensor[f"{linear}.bias"].double()
            if spec.batch_norm:
                norm = trunk_batch_norm(spec, block)
                scale = tensor[f"{norm}.weight"].double() / torch.sqrt(
                    tensor[f"{norm}.running_var"].double() + BATCH_NORM_EPS
                )
                weight = weight * scale[:, None]
                bias = (bias - tensor[f"{norm}.running_mean"].double()) * scale + tensor[f"{norm}.bias"].double()
            self.blocks.append((weight.t().float().contiguous(), bias.float().contiguous()))
        heads = range(spec.targets)
        self.head_weight = torch.cat([tensor[f"heads.{i}.weight"] for i in heads]).t().contiguous()
        self.head_bias = torch.cat([tensor[f"heads.{i}.bias"] for i in heads])
        self.linear: tuple[torch.Tensor, list[torch.Tensor]] | None = None  # (numbers' weight transposed, blocks)
        if spec.linear:
            self.head_bias = self.head_bias + tensor[f"{LINEAR_NUMBERS}.bias"]
            blocks = [tensor[f"{LINEAR_CATEGORIES}.{i}.weight"] for i in range(len(spec.cardinalities))]
            self.linear = (tensor[f"{LINEAR_NUMBERS}.weight"].t().contiguous(), blocks)

    def __call__(self, numbers: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Scaled outputs for preprocessed rows, computed in chunks of ``SCORING_CHUNK``."""
        outputs = []
        with torch.inference_mode():
            for start in range(0, numbers.shape[0], SCORING_CHUNK):
                chunk = self.forward(
                    torch.from_numpy(numbers[start : start + SCORING_CHUNK]),
                    torch.from_numpy(categories[start : start + SCORING_CHUNK]),
                )
                outputs.append(chunk.numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, sum(self.spec.head_sizes)), np.float32)

    def forward(self, numbers: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        """Outputs for a batch of tensors, as the module in evaluation mode gives them; call it
        under ``torch.inference_mode()`` (the activations are computed in place)."""
        parts = [numbers, *(functional.embedding(categories[:, i], w) for i, w in enumerate(self.embeddings))]
        hidden = torch.cat(parts, dim=1) if len(parts) > 1 else numbers
        for weight, bias in self.blocks:
            hidden = self.activation(torch.addmm(bias, hidden, weight))
        outputs = torch.addmm(self.head_bias, hidden, self.head_weight)
        if self.linear is not None:
            weight, blocks = self.linear
            outputs.addmm_(numbers, weight)
            for i, block in enumerate(blocks):
                outputs += functional.embedding(categories[:, i], block)
        return outputs


class FoldedConv:
    """The folded image network of ``spec`` with ``weights`` (a ConvNet state dict, as arrays)."""

    name = "torch"

    def __init__(self, spec: ConvSpec, weights: Mapping[str, np.ndarray], graph: bytes | None = None) -> None:
        self.spec = spec  # built from the weights: an exported graph is not needed
        self.activation = IN_PLACE[spec.activation]
        tensor = {name: torch.from_numpy(np.array(value)) for name, value in weights.items()}  # copies
        self.blocks: list[tuple[torch.Tensor, torch.Tensor]] = []  # (kernel, bias), batch norm folded in
        for block in range(len(spec.blocks)):
            conv, norm = conv_name(block), norm_name(block)
            scale = tensor[f"{norm}.weight"].double() / torch.sqrt(
                tensor[f"{norm}.running_var"].double() + BATCH_NORM_EPS
            )
            kernel = tensor[f"{conv}.weight"].double() * scale[:, None, None, None]
            bias = (tensor[f"{conv}.bias"].double() - tensor[f"{norm}.running_mean"].double()) * scale
            bias = bias + tensor[f"{norm}.bias"].double()
            self.blocks.append((kernel.float().contiguous(), bias.float().contiguous()))
        self.head = (tensor[f"{HEAD}.weight"].t().contiguous(), tensor[f"{HEAD}.bias"])

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, classes) and embeddings (N, embedding size) of standardised images (N, C, H, W)."""
        with torch.inference_mode():
            embedded = self.embed(torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)))
            weight, bias = self.head
            return torch.addmm(bias, embedded, weight).numpy(), embedded.numpy()

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """The pooled features, as the module in evaluation mode gives them (under inference mode)."""
        hidden = pixels
        for kernel, bias in self.blocks:
            hidden = functional.max_pool2d(self.activation(functional.conv2d(hidden, kernel, bias, padding=1)), 2)
        return hidden.mean(dim=(2, 3))
