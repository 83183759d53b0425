"""One image file's bytes checked against the image contract and decoded, or refused with reasons.

Pillow does the reading; what it refuses (not an image, a truncated file, a header that claims
a decompression bomb) is translated here into the rule a file broke, so quarantine says why in
the same words as the contract. The header is checked first (size, format, dimensions, mode),
and only a file that passes is decoded in full.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from driftloop.images.rules import ImageRules


@dataclass(frozen=True)
class Broken:
    """A rule an image file broke: its name (``file:format``, ``width:min``, ...) and a sentence."""

    rule: str
    detail: str


@dataclass(frozen=True)
class Decoded:
    """An image file that passed the contract: its content hash, header facts and pixels."""

    image_id: str  # the SHA-256 of the file's bytes, hex: the same content is the same image
    format: str
    width: int
    height: int
    mode: str
    size_bytes: int
    image: Image.Image = field(repr=False)


def content_hash(content: bytes) -> str:
    """The id of an image: the SHA-256 of its bytes, in hex."""
    return hashlib.sha256(content).hexdigest()


def decode(content: bytes, rules: ImageRules) -> Decoded | list[Broken]:
    """``content`` decoded if it is a valid image under ``rules``, else every rule it broke
    (the header's rules together; a file whose header fails is never decoded)."""
    if not content:
        return [Broken("file:empty", "the file is empty")]
    if len(content) > rules.max_bytes:
        return [Broken("file:max_bytes", f"{len(content):,} bytes, above the {rules.max_bytes:,} allowed")]
    opened = _open(content, rules)
    if isinstance(opened, Broken):
        return [opened]
    broken = _header_rules(opened, rules)
    if broken:
        return broken
    try:
        opened.load()
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying the data ends or is damaged
        return [Broken("file:truncated", f"the {opened.format} data cannot be decoded: {exc}")]
    width, height = opened.size
    return Decoded(content_hash(content), str(opened.format), width, height, opened.mode, len(content), opened)


def _open(content: bytes, rules: ImageRules) -> Image.Image | Broken:
    """The file opened (its header read, no pixels yet), or why it could not be."""
    with warnings.catch_warnings():
        # Pillow warns, then refuses, past its own pixel limit: both mean a decompression bomb.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(content))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            return Broken("file:max_pixels", f"{exc} (max_pixels is {rules.max_pixels:,})")
        except UnidentifiedImageError:
            return Broken(
                "file:not_an_image", f"not an image in any format driftloop reads ({', '.join(rules.formats)})"
            )
        except (OSError, ValueError, SyntaxError) as exc:
            return Broken("file:corrupt", f"the image header cannot be read: {exc}")


def _header_rules(image: Image.Image, rules: ImageRules) -> list[Broken]:
    width, height = image.size
    broken = []
    if image.format not in rules.formats:
        broken.append(Broken("file:format", f"{image.format} is not among the accepted formats {rules.formats}"))
    if width * height > rules.max_pixels:
        broken.append(
            Broken("file:max_pixels", f"{width}x{height} is {width * height:,} pixels, above {rules.max_pixels:,}")
        )
    for side, value in (("width", width), ("height", height)):
        low, high = getattr(rules, f"min_{side}"), getattr(rules, f"max_{side}")
        if value < low:
            broken.append(Broken(f"{side}:min", f"{side} {value} px is below the minimum {low} px"))
        if value > high:
            broken.append(Broken(f"{side}:max", f"{side} {value} px is above the maximum {high} px"))
    if image.mode not in rules.modes:
        broken.append(Broken("mode:allowed", f"colour mode {image.mode} is not among {rules.modes}"))
    return broken
