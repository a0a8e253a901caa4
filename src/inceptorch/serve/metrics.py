"""The service's Prometheus metrics (prometheus_client, on a registry of its own): what a dashboard and an alert
need: requests and errors by endpoint and status, latency, batch sizes, images waiting."""
from __future__ import annotations

from ..extras import require

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self):
        client = require("prometheus_client", "inceptorch serve")
        client.disable_created_metrics()  # the *_created series only repeat the start time, once per label set
        self._client = client
        self.registry = client.CollectorRegistry()
        self.requests = client.Counter("inceptorch_requests_total", "HTTP requests answered, by endpoint and status",
                                       ["endpoint", "status"], registry=self.registry)
        self.errors = client.Counter("inceptorch_request_errors_total", "requests answered with a 4xx or 5xx",
                                     ["endpoint", "status"], registry=self.registry)
        self.latency = client.Histogram("inceptorch_request_seconds", "time from request to answer",
                                        ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = client.Histogram("inceptorch_batch_images", "images per forward pass",
                                           buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_seconds = client.Histogram("inceptorch_batch_seconds", "time of one batched forward pass",
                                              buckets=LATENCY_BUCKETS, registry=self.registry)
        self.waiting = client.Gauge("inceptorch_queue_images", "images queued or in the forward pass now",
                                    registry=self.registry)
        self.content_type = client.CONTENT_TYPE_LATEST

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def batch(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.batch_seconds.observe(seconds)

    def queue(self, images: int) -> None:
        self.waiting.set(images)

    def text(self) -> bytes:
        return self._client.generate_latest(self.registry)
