"""Monitoring: profiles of data and predictions, and (built on them) drift and performance checks."""

from typing import Literal

# The streams of predictions a window can monitor: batch scoring, or the requests a server answered.
Stream = Literal["batch", "online"]
