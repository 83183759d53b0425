"""The shape of an image network, as data: a small convolutional network for classification.

Blocks of 3x3 convolution -> batch norm -> activation -> 2x2 max pooling (one block per entry of
``blocks``, its number of channels), then global average pooling (the image's *embedding*, what
embedding drift is measured on), dropout and one linear head with a logit per class. Training
builds the module from this spec (:class:`driftloop.model.cnn.ConvNet`); the scoring backend
rebuilds the function from the spec and the saved weights by the parameter names below, so
neither needs the other's code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Self

from driftloop.runtime.spec import ACTIVATIONS


@dataclass(frozen=True)
class ConvSpec:
    """Everything needed to rebuild the image network's shape (the weights travel separately)."""

    channels: int  # of the input: 1 grey, 3 colour
    height: int
    width: int
    classes: int
    blocks: list[int] = field(default_factory=lambda: [16, 32, 64])
    activation: str = "swish"
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not one of {ACTIVATIONS}")
        smallest = 2 ** len(self.blocks)
        if min(self.height, self.width) < smallest:
            raise ValueError(
                f"{len(self.blocks)} blocks halve the image {len(self.blocks)} times: it needs at least "
                f"{smallest}x{smallest} pixels, not {self.width}x{self.height}"
            )

    @property
    def embedding_size(self) -> int:
        """Width of the pooled features the head reads: the last block's channels."""
        return self.blocks[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


# Modules per block in the trained network's ``features`` sequence: conv, norm, activation, pool.
BLOCK_MODULES = 4
HEAD = "head"


def conv_name(block: int) -> str:
    """The parameter prefix of block ``block``'s convolution (``features.0``, ``features.4``, ...)."""
    return f"features.{block * BLOCK_MODULES}"


def norm_name(block: int) -> str:
    """The parameter prefix of block ``block``'s batch norm."""
    return f"features.{block * BLOCK_MODULES + 1}"
