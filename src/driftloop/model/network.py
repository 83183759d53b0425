"""The network for tabular data, as trained: embeddings for categories, a dense trunk, one head
per target (so each target can have its own loss), and a linear path beside the trunk that
training starts from the fitted linear baseline (:meth:`TabularNet.start_from_linear`).

Its shape is a :class:`~driftloop.runtime.spec.NetworkSpec`; what it learns leaves as plain
arrays (:meth:`TabularNet.weights`), which the runtime's backends score with (the folded
PyTorch one: :mod:`driftloop.runtime.backends.torch`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from driftloop.runtime.spec import BATCH_NORM_EPS, LINEAR_CATEGORIES, LINEAR_NUMBERS, NetworkSpec, embedding_size

ACTIVATIONS: dict[str, type[nn.Module]] = {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


class TabularNet(nn.Module):
    """Dense network over standardised numbers and embedded categories, a head per target."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in spec.cardinalities)
        width = spec.numeric + sum(embedding_size(c) for c in spec.cardinalities)
        layers: list[nn.Module] = []  # in the order the spec's trunk_linear/trunk_batch_norm name them
        for size in spec.hidden:
            layers.append(nn.Linear(width, size))
            if spec.batch_norm:
                layers.append(nn.BatchNorm1d(size, eps=BATCH_NORM_EPS))
            layers += [ACTIVATIONS[spec.activation](), nn.Dropout(spec.dropout)]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(width, size) for size in spec.head_sizes)
        if spec.linear:
            outputs = sum(spec.head_sizes)
            self.add_module(LINEAR_NUMBERS, nn.Linear(spec.numeric, outputs))
            self.add_module(LINEAR_CATEGORIES, nn.ModuleList(nn.Embedding(c, outputs) for c in spec.cardinalities))

    def forward(self, numbers: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        parts = [numbers, *(embed(categories[:, i]) for i, embed in enumerate(self.embeddings))]
        hidden = self.trunk(torch.cat(parts, dim=1))
        outputs = torch.cat([head(hidden) for head in self.heads], dim=1)
        if self.spec.linear:
            linear: nn.Linear = getattr(self, LINEAR_NUMBERS)
            embeddings: nn.ModuleList = getattr(self, LINEAR_CATEGORIES)
            outputs = outputs + linear(numbers)
            for i, embed in enumerate(embeddings):
                outputs = outputs + embed(categories[:, i])
        return outputs

    def start_from_linear(self, numbers: np.ndarray, categories: list[np.ndarray], bias: np.ndarray) -> None:
        """Set the linear path to a fitted linear model (``numbers``: outputs x numeric inputs,
        one ``categories`` block per category: levels x outputs) and the heads to zero, so the
        network starts out giving that model's outputs and trains to add what it misses: a
        network that can only improve on the linear model by validation, not start below it."""
        if not self.spec.linear:
            raise ValueError("start_from_linear needs a spec with the linear path")
        with torch.no_grad():
            linear = getattr(self, LINEAR_NUMBERS)
            linear.weight.copy_(torch.from_numpy(numbers))
            linear.bias.copy_(torch.from_numpy(bias))
            for embed, block in zip(getattr(self, LINEAR_CATEGORIES), categories, strict=True):
                embed.weight.copy_(torch.from_numpy(block))
            for parameter in self.heads.parameters():
                parameter.zero_()

    def weights(self) -> dict[str, np.ndarray]:
        """The parameters and batch-norm statistics, copied out as arrays (what a package saves)."""
        return {name: value.detach().cpu().numpy().copy() for name, value in self.state_dict().items()}
