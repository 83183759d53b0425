"""Online serving: ``driftloop serve``, the project's deployments over HTTP.

``app`` builds the application (endpoints, lifespan, metrics) and ``routes`` the plain-ASGI
scoring routes in front of it; ``payloads`` turns the three protocols' bodies into rows;
``deployments`` holds the versions in front of traffic (the champion, a shadow) and swaps them
when the registry moves; ``loaded`` is one version ready to score, with field-level errors;
``batcher`` gathers concurrent requests into one forward pass; ``logbook`` logs every prediction
to the lake; ``metrics`` is what Prometheus reads. The ``[serve]`` section lives in
:mod:`driftloop.settings.serve`. This package imports FastAPI only from ``app`` (``routes`` is Starlette).
"""
