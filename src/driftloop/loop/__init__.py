"""The loop: one tick of the daily job (``tick``), the retrain policy it asks (``policy``), and the
alerts it sends for every decision (``alerts``)."""

from driftloop.loop.tick import GATES_STEP, LABELS_FOLDER, LOOP_TAG, TRAINING_STEP, TickReport, tick

__all__ = ["GATES_STEP", "LABELS_FOLDER", "LOOP_TAG", "TRAINING_STEP", "TickReport", "tick"]
