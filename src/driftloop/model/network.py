"""The network for tabular data, as trained: embeddings for categories, a dense trunk, one head
per target (so each target can have its own loss).

Its shape is a :class:`~driftloop.runtime.spec.NetworkSpec`; what it learns leaves as plain
arrays (:meth:`TabularNet.weights`), which the runtime's backends score with (the folded
PyTorch one: :mod:`driftloop.runtime.backends.torch`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from driftloop.runtime.spec import BATCH_NORM_EPS, NetworkSpec, embedding_size

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

    def forward(self, numbers: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        parts = [numbers, *(embed(categories[:, i]) for i, embed in enumerate(self.embeddings))]
        hidden = self.trunk(torch.cat(parts, dim=1))
        return torch.cat([head(hidden) for head in self.heads], dim=1)

    def weights(self) -> dict[str, np.ndarray]:
        """The parameters and batch-norm statistics, copied out as arrays (what a package saves)."""
        return {name: value.detach().cpu().numpy().copy() for name, value in self.state_dict().items()}
