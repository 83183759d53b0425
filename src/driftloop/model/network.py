"""The network for tabular data: embeddings for categories, a dense trunk, one head per target.

Trunk blocks are Linear -> BatchNorm (optional) -> activation (swish by default) -> Dropout.
Each target has its own linear head, so each can have its own loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Self

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass(frozen=True)
class NetworkSpec:
    """Everything needed to rebuild the network's shape (the weights travel separately)."""

    numeric: int
    cardinalities: list[int]
    targets: int
    hidden: list[int] = field(default_factory=lambda: [128, 64])
    activation: str = "swish"
    batch_norm: bool = True
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


def embedding_size(cardinality: int) -> int:
    """A common rule of thumb: about half the categories, at most 16."""
    return max(1, min(16, (cardinality + 1) // 2))


class TabularNet(nn.Module):
    """Dense network over standardised numbers and embedded categories, one output per target."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in spec.cardinalities)
        width = spec.numeric + sum(embedding_size(c) for c in spec.cardinalities)
        layers: list[nn.Module] = []
        for size in spec.hidden:
            layers.append(nn.Linear(width, size))
            if spec.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers += [ACTIVATIONS[spec.activation](), nn.Dropout(spec.dropout)]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in range(spec.targets))

    def forward(self, numbers: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        parts = [numbers, *(embed(categories[:, i]) for i, embed in enumerate(self.embeddings))]
        hidden = self.trunk(torch.cat(parts, dim=1))
        return torch.cat([head(hidden) for head in self.heads], dim=1)
