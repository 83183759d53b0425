"""A first standardisation drafted from the images a project starts with, as a table project's
contract is drafted from a sample: small images keep their own size (scaling a 28-pixel
silhouette up to 64 adds no information, only five times the work) and grey images stay grey.
Only the files' headers are read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import median

from PIL import Image

from driftloop.images.standardise import Standardisation

# Files whose headers are read: spread evenly over the list, so every class folder has its say.
DRAFT_SAMPLE = 200
# Pillow's modes that carry no colour.
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def draft_standardisation(paths: Sequence[Path], *, sample: int = DRAFT_SAMPLE) -> Standardisation:
    """The default standardisation, made no larger than the median image of ``paths`` and grey
    when every image read is. Files that cannot be read are passed over: ingest quarantines them
    with their reason."""
    default = Standardisation()
    shapes = [shape for shape in map(_header, _spread(paths, sample)) if shape is not None]
    if not shapes:
        return default
    width = round(median(w for w, _, _ in shapes))
    height = round(median(h for _, h, _ in shapes))
    grey = all(mode in GREY_MODES for _, _, mode in shapes)
    if width > default.width or height > default.height:  # larger images are scaled down to the default
        width, height = default.width, default.height
    return default.model_copy(update={"width": max(width, 8), "height": max(height, 8), "mode": "L" if grey else "RGB"})


def _spread(paths: Sequence[Path], sample: int) -> list[Path]:
    if len(paths) <= sample:
        return list(paths)
    step = len(paths) / sample
    return [paths[int(i * step)] for i in range(sample)]


def _header(path: Path) -> tuple[int, int, str] | None:
    try:
        with Image.open(path) as image:
            return image.width, image.height, image.mode
    except (OSError, Image.DecompressionBombError):  # an unreadable file is an OSError to Pillow
        return None


__all__ = ["draft_standardisation"]
