"""Training: the network as trained (``network``), the training loop (``train``), the time-split
data it reads (``data``), the ridge ``baseline`` it must beat, ``metrics``, ``plots`` of a run,
and ``trainer``, which trains a project's model into a package. Tracking is an observer
(:mod:`driftloop.registry.mlflow.tracking`); scoring needs none of this (:mod:`driftloop.runtime`).
"""
