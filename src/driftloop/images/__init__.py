"""Images as data: the image contract (``rules``), one file checked and decoded (``decode``),
the statistics that show a camera's drift (``stats``), and the standardisation that makes an
image the network's input (``standardise``), which travels in the model package, with a first
one drafted from a project's images (``draft``).

Pillow reads the files; nothing here knows of the lake or the project.
"""

from driftloop.images.decode import Broken, Decoded, content_hash, decode
from driftloop.images.draft import draft_standardisation
from driftloop.images.rules import FORMATS, ImageRules
from driftloop.images.standardise import Standardisation
from driftloop.images.stats import image_stats

__all__ = [
    "FORMATS",
    "Broken",
    "Decoded",
    "ImageRules",
    "Standardisation",
    "content_hash",
    "decode",
    "draft_standardisation",
    "image_stats",
]
