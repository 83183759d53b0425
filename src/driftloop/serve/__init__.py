"""Online serving: ``driftloop serve``, the project's deployments over HTTP.

``app`` builds the application (endpoints, lifespan, metrics) out of ``routes``, the server's
own routes in plain ASGI, and ``operations``, what every server has beside scoring (health,
metrics, the admin reload, its life); ``documented`` is the FastAPI a central server puts behind
them for its extras and docs (a device's server has none). ``payloads`` turns the three
protocols' bodies into rows; ``deployments`` holds the versions in front of traffic (the
champion, a shadow, a canary) and swaps them when the registry moves; ``loaded`` is one version
ready to score, with field-level errors; ``batcher`` gathers concurrent requests into one
forward pass; ``logbook`` logs every prediction to the lake; ``metrics`` is what Prometheus
reads. The ``[serve]`` section lives in :mod:`driftloop.settings.serve`. Only ``documented``,
``bundles``, ``devices`` (and the dashboard) import FastAPI.
"""
