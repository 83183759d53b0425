"""Monitoring: drift of inputs and predictions against the model's training profile, performance
once labels arrive, and a verdict.

``drift`` runs the tests of ``stattests`` (one module each) over profiles; ``performance`` joins
predictions to ground truth; ``logged`` reads back what a server logged, ``traffic`` pairs a
shadow with the champion; ``verdict`` is the policy that turns results into a level with
reasons; ``window`` monitors one window of one stream and writes ``monitoring``; ``report``
draws it; ``fleet`` merges what devices reported into a view per device.
"""

from enum import StrEnum


class Stream(StrEnum):
    """The predictions a window can monitor: batch scoring, or the requests a server answered."""

    BATCH = "batch"
    ONLINE = "online"
