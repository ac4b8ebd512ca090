"""Prometheus metrics of one service (``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5)


class Metrics:
    """The metrics of one app, in its own registry (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("streamrec_request_seconds", "request latency by route",
                                 ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.requests = Counter("streamrec_requests", "requests by route and status",
                                ["route", "status"], registry=r)
        self.stage = Histogram("streamrec_stage_seconds", "recommendation stage timings",
                               ["stage"], buckets=_LATENCY_BUCKETS, registry=r)
        self.events = Counter("streamrec_events", "events received",
                              ["result"], registry=r)
        self.consumed = Counter("streamrec_events_consumed", "events applied to the state",
                                registry=r)
        self.quarantined = Counter("streamrec_events_quarantined", "events set aside by the "
                                   "consumer (invalid, unknown item, beyond the time window)",
                                   registry=r)
        self.consumer_failures = Counter("streamrec_consumer_failures", "failed attempts to "
                                         "apply a batch (each is retried)", registry=r)
        self.consumer_failing = Gauge("streamrec_consumer_failing", "1 while the consumer "
                                      "is retrying a failed batch", registry=r)
        self.queue_lag = Gauge("streamrec_queue_lag", "events acknowledged but not yet "
                               "applied to the state", registry=r)
        self.model = Gauge("streamrec_model_version", "serving version of each entry (1 = "
                           "current)", ["name", "version"], registry=r)
        self.swaps = Counter("streamrec_model_swaps", "hot swaps of the model set", registry=r)
