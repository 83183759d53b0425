"""Prometheus metrics of one server process, on a registry of its own (no global state)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServerMetrics:
    """Requests by endpoint and status, latency, batch sizes, the model served, the log's backlog."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "driftloop_requests", "Requests answered.", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "driftloop_request_seconds", "Time to answer a request.", ["endpoint"], buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.batch_rows = Histogram(
            "driftloop_batch_rows", "Rows per forward pass.", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.batch_seconds = Histogram(
            "driftloop_batch_seconds", "Time to check and score one batch.", buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.model_version = Gauge(
            "driftloop_model_version", "Version of the model served (the champion).", ["model"], registry=self.registry
        )
        self.model_swaps = Gauge("driftloop_model_loads", "Models loaded since start.", registry=self.registry)
        self.log_queue = Gauge(
            "driftloop_prediction_log_queue_rows", "Logged predictions waiting to be written.", registry=self.registry
        )
        self.log_written = Gauge(
            "driftloop_prediction_log_written_rows", "Logged predictions written to the lake.", registry=self.registry
        )
        self.log_spilled = Gauge(
            "driftloop_prediction_log_spilled_rows", "Logged predictions spilled to disk.", registry=self.registry
        )

        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}  # labels() is a lookup with locks

    def count(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        children = self._children.get((endpoint, status))
        if children is None:
            children = self._children[endpoint, status] = (
                self.requests.labels(endpoint, str(status)),
                self.latency.labels(endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
