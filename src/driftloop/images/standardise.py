"""Images made the network's input: one resolution, one colour mode, optionally the same
brightness and contrast.

:class:`Standardisation` is plain settings (``[images.standardise]``) and travels in the model
package, so training, batch scoring, the server and the edge run the very same steps on every
image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field

# Added to a flat image's zero spread before dividing by it.
_EPSILON = 1e-6


class Standardisation(BaseModel):
    """How an image becomes the network's input."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(64, ge=4, le=1024, description="Width of the network's input, in pixels.")
    height: int = Field(64, ge=4, le=1024, description="Height of the network's input, in pixels.")
    mode: Literal["L", "RGB"] = Field("RGB", description="L: one grey channel; RGB: three colour channels.")
    fit: Literal["pad", "crop", "stretch"] = Field(
        "pad",
        description="An image of another shape is scaled to fit and padded with black (pad), scaled to cover "
        "and cut at the centre (crop), or scaled to the size whatever its proportions (stretch).",
    )
    normalise: bool = Field(
        False,
        description="Bring every image to zero mean and unit spread of intensity: the network then never sees "
        "how bright or contrasted a photo was (a darker line camera looks like the lab's), at the cost of the "
        "information brightness carried.",
    )

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3

    def apply(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``images`` as float32 of shape (N, channels, height, width): intensities in [0, 1], or
        per image of zero mean and unit spread with ``normalise``."""
        return self.finish(self.pixels(images))

    def pixels(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The first step: ``images`` resized and in the colour mode, intensities in [0, 1]
        (where training's augmentation acts, before :meth:`finish`)."""
        batch = np.zeros((len(images), self.channels, self.height, self.width), dtype=np.float32)
        for i, image in enumerate(images):
            pixels = np.asarray(self._resized(image), dtype=np.float32) / 255.0
            batch[i] = pixels[None, :, :] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return batch

    def finish(self, batch: np.ndarray) -> np.ndarray:
        """The last step on a batch from :meth:`pixels`: with ``normalise``, each image brought to
        zero mean and unit spread; otherwise the batch as it is."""
        if not self.normalise:
            return batch
        mean = batch.mean(axis=(1, 2, 3), keepdims=True)
        spread = batch.std(axis=(1, 2, 3), keepdims=True)
        normalised: np.ndarray = (batch - mean) / (spread + _EPSILON)
        return normalised

    def _resized(self, image: Image.Image) -> Image.Image:
        converted = image.convert(self.mode)
        size = (self.width, self.height)
        if self.fit == "stretch":
            return converted.resize(size, Image.Resampling.BILINEAR)
        if self.fit == "crop":
            return ImageOps.fit(converted, size, Image.Resampling.BILINEAR)
        return ImageOps.pad(converted, size, Image.Resampling.BILINEAR, color=0)
