"""Online serving: ``driftloop serve``, the champion over HTTP.

``app`` builds the FastAPI application (endpoints, lifespan, metrics); ``payloads`` turns the
three protocols' bodies into rows; ``models`` holds the champion and swaps it when the alias
moves; ``batcher`` gathers concurrent requests into one forward pass; ``logbook`` logs every
prediction to the lake; ``settings`` is the ``[serve]`` section. This package imports FastAPI
only from ``app``, so reading a project's settings stays light.
"""
