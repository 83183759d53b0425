"""The image network, as trained: convolution blocks, global average pooling, dropout and one
linear head (:class:`~driftloop.runtime.image_spec.ConvSpec` is its shape). What it learns leaves
as plain arrays (:meth:`ConvNet.weights`), which the runtime's torch backend scores with.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from driftloop.model.network import ACTIVATIONS
from driftloop.runtime.image_spec import BLOCK_MODULES, ConvSpec
from driftloop.runtime.spec import BATCH_NORM_EPS


class ConvNet(nn.Module):
    """A small convolutional network for image classification: logits per class."""

    def __init__(self, spec: ConvSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []  # in the order image_spec's conv_name/norm_name name them
        width = spec.channels
        for channels in spec.blocks:
            layers += [
                nn.Conv2d(width, channels, kernel_size=3, padding=1),
                nn.BatchNorm2d(channels, eps=BATCH_NORM_EPS),
                ACTIVATIONS[spec.activation](),
                nn.MaxPool2d(2),
            ]
            width = channels
        assert len(layers) == BLOCK_MODULES * len(spec.blocks)
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(width, spec.classes)

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """The pooled features of a batch of images (N, embedding_size)."""
        features: torch.Tensor = self.features(pixels)
        return features.mean(dim=(2, 3))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.dropout(self.embed(pixels)))
        return logits

    def weights(self) -> dict[str, np.ndarray]:
        """The parameters and batch-norm statistics, copied out as arrays (what a package saves)."""
        return {name: value.detach().cpu().numpy().copy() for name, value in self.state_dict().items()}
