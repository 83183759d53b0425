"""What a camera's drift looks like in numbers: per-image brightness, contrast, sharpness and
colour, computed the same way at ingest, in batch scoring and in serving.

Each image is measured on a copy whose longer side is at most :data:`MEASURE_SIDE` pixels, so the
cost is bounded whatever the camera's resolution; brightness and contrast barely move with the
size, and sharpness is measured at that fixed scale so images of different sizes compare.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from driftloop.lake import IMAGE_STATS

MEASURE_SIDE = 256
# ITU-R BT.601 luma weights: how bright a colour looks.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def image_stats(image: Image.Image) -> dict[str, float]:
    """Brightness (mean luma), contrast (its standard deviation), sharpness (variance of the
    Laplacian of luma: low for a blurred image) and the mean of each colour channel, all on a
    0-1 scale of intensity."""
    pixels = _rgb(image)
    luma = pixels @ _LUMA
    stats = {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "sharpness": _laplacian_variance(luma),
        "red": float(pixels[..., 0].mean()),
        "green": float(pixels[..., 1].mean()),
        "blue": float(pixels[..., 2].mean()),
    }
    return {name: stats[name] for name in IMAGE_STATS}  # the images table's columns, in its order


def _rgb(image: Image.Image) -> np.ndarray:
    """The image as RGB floats in [0, 1], shrunk to at most MEASURE_SIDE on its longer side
    (transparency over black, as a model that ignores alpha sees it)."""
    copy = image.convert("RGB")
    if max(copy.size) > MEASURE_SIDE:
        copy.thumbnail((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(copy, dtype=np.float32) / 255.0


def _laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels (0 for an image too small
    to have any)."""
    if min(luma.shape) < 3:
        return 0.0
    centre = luma[1:-1, 1:-1]
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * centre
    return float(laplacian.var())
