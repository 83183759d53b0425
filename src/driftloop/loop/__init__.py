"""The loop: one tick of the daily job (``tick`` for a table project, ``image_tick`` for an image
project, the steps they share in ``steps``) and the retrain policy it asks (``policy``); the
alerts it sends for every decision are :mod:`driftloop.alerts`."""

from driftloop.loop.steps import GATES_STEP, LABELS_FOLDER, LOOP_TAG, TRAINING_STEP, TickReport
from driftloop.loop.tick import tick

__all__ = ["GATES_STEP", "LABELS_FOLDER", "LOOP_TAG", "TRAINING_STEP", "TickReport", "tick"]
