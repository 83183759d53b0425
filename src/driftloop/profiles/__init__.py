"""Profiles: compact, mergeable per-column summaries of data and predictions.

Bins are fixed by the reference (the training window), so the profiles of any two windows are
comparable and adding them is exact; cost does not grow with history, and a device could send
profiles instead of rows. ``numeric`` and ``category`` are the column kinds, ``profile`` the
profile of a set of columns and the function that computes it.
"""

from driftloop.profiles.category import MAX_CATEGORIES, OTHER, CategoryProfile
from driftloop.profiles.numeric import NumericProfile
from driftloop.profiles.profile import DEFAULT_BINS, ColumnProfile, Profile, profile

__all__ = [
    "DEFAULT_BINS",
    "MAX_CATEGORIES",
    "OTHER",
    "CategoryProfile",
    "ColumnProfile",
    "NumericProfile",
    "Profile",
    "profile",
]
