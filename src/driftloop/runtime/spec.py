"""The shape of a tabular network, as data: what a package's weights are the weights of.

Embeddings for categories, a dense trunk of blocks (Linear -> BatchNorm (optional) -> activation
-> Dropout), one linear head per target (one output for a number, one per class for a label),
and optionally a linear path from the inputs straight to the outputs (``linear``: numbers through
one Linear, each category through an embedding as wide as the outputs), added to the heads'.
Training builds the module from this spec (:class:`driftloop.model.network.TabularNet`);
scoring backends rebuild the function from the spec and the saved weights alone, by the
parameter names :func:`trunk_linear` and :func:`trunk_batch_norm` give, so neither needs the
other's code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Self

ACTIVATIONS = ("swish", "relu", "gelu")
# Batch norm's epsilon, the module's and the folded form's alike (PyTorch's default).
BATCH_NORM_EPS = 1e-5


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
    outputs: list[int] | None = None  # per head; None: one each (packages from before labels)
    linear: bool = False  # the linear path beside the trunk (packages from before it have none)

    @property
    def head_sizes(self) -> list[int]:
        """Outputs of each target's head."""
        return self.outputs or [1] * self.targets

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)

    @property
    def block_size(self) -> int:
        """Modules per trunk block: Linear, BatchNorm when used, activation, Dropout."""
        return 4 if self.batch_norm else 3


def embedding_size(cardinality: int) -> int:
    """A common rule of thumb: about half the categories, at most 16."""
    return max(1, min(16, (cardinality + 1) // 2))


def trunk_linear(spec: NetworkSpec, block: int) -> str:
    """The parameter prefix of the Linear of trunk block ``block`` (``trunk.0``, ``trunk.4``, ...)."""
    return f"trunk.{block * spec.block_size}"


# Parameter prefixes of the linear path: its Linear over the numbers, and one embedding per category.
LINEAR_NUMBERS = "linear_numbers"
LINEAR_CATEGORIES = "linear_categories"


def trunk_batch_norm(spec: NetworkSpec, block: int) -> str:
    """The parameter prefix of the BatchNorm after the Linear of block ``block`` (needs batch_norm)."""
    return f"trunk.{block * spec.block_size + 1}"
