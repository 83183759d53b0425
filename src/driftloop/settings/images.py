"""The ``[images]`` section of driftloop.toml: an image project's contract for files, and how an
image becomes the network's input (``[images.standardise]``)."""

from __future__ import annotations

from pydantic import Field

from driftloop.images import ImageRules, Standardisation


class ImageSettings(ImageRules):
    """The ``[images]`` section: what a valid image file is, and its standardisation."""

    standardise: Standardisation = Field(default_factory=Standardisation)
