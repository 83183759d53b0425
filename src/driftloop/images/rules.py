"""The image contract: what a valid image file is (``[images]`` in driftloop.toml).

A file that breaks a rule goes to quarantine with the rule's name (``file:format``,
``width:min``, ...) and a sentence, never to the images table; the rules are checked on the
file's header before any pixel is decoded, so a file that claims billions of pixels (a
decompression bomb) is refused without being expanded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The formats Pillow reads that cameras and phones write, by Pillow's names.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
# Colour modes, by Pillow's names: grey, grey with alpha, palette, colour, colour with alpha.
ImageMode = Literal["L", "LA", "P", "RGB", "RGBA"]


class ImageRules(BaseModel):
    """What a valid image file is."""

    model_config = ConfigDict(extra="forbid")

    formats: list[str] = Field(default_factory=lambda: list(FORMATS), description="Accepted formats (Pillow's names).")
    modes: list[ImageMode] = Field(
        default_factory=lambda: list[ImageMode](["L", "LA", "P", "RGB", "RGBA"]),
        description="Accepted colour modes: L (grey), LA, P (palette), RGB, RGBA.",
    )
    min_width: int = Field(8, ge=1, description="Narrower images are quarantined.")
    min_height: int = Field(8, ge=1, description="Lower images are quarantined.")
    max_width: int = Field(10_000, ge=1, description="Wider images are quarantined.")
    max_height: int = Field(10_000, ge=1, description="Taller images are quarantined.")
    max_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Width times height beyond which a file is quarantined unread: decoding it could take "
        "gigabytes of memory (a decompression bomb).",
    )
    max_bytes: int = Field(20_000_000, ge=1, description="Larger files are quarantined unread.")

    @model_validator(mode="after")
    def _consistent(self) -> ImageRules:
        known = {f.upper() for f in FORMATS}
        unknown = [f for f in self.formats if f.upper() not in known]
        if unknown:
            raise ValueError(f"formats {unknown} are not read by driftloop; choose among {list(FORMATS)}")
        self.formats = [f.upper() for f in self.formats]
        for side in ("width", "height"):
            low, high = getattr(self, f"min_{side}"), getattr(self, f"max_{side}")
            if low > high:
                raise ValueError(f"min_{side} {low} is above max_{side} {high}")
        return self
