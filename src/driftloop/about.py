"""driftloop's own version, for the places that record which driftloop made something (a run's
tags, a model's pip requirement, a bundle's manifest)."""

VERSION = "0.1.0"

__all__ = ["VERSION"]
