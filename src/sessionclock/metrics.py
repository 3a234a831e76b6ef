"""Prometheus metrics, registered per application so that tests can run many."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sessionclock import constants as names


class Metrics:
    """The service's metrics; their names live in `constants`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge(
            names.METRIC_SESSIONS,
            "Sessions by status, counted when metrics are scraped.",
            ["status"],
            registry=self.registry,
        )
        self.transitions = Counter(
            names.METRIC_TRANSITIONS,
            "Session transitions written by this node, by the status they led to.",
            ["to"],
            registry=self.registry,
        )
        self.expiry_lateness = Histogram(
            names.METRIC_EXPIRY_LATENESS,
            "Time from a session's due end (ends_at or no-show) to its expiry commit.",
            buckets=(
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
                60,
                300,
            ),
            registry=self.registry,
        )
        self.request_latency = Histogram(
            names.METRIC_REQUEST_LATENCY,
            "HTTP request duration by route template, method and status code.",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.cleanup_runs = Counter(
            names.METRIC_CLEANUP_RUNS,
            "Cleanup runs on this node, by what started them.",
            ["trigger"],
            registry=self.registry,
        )
        self.cleanup_rows = Counter(
            names.METRIC_CLEANUP_ROWS,
            "Rows cleanup changed: sessions expired and runtime records purged.",
            ["kind"],
            registry=self.registry,
        )
        self.connections = Gauge(
            names.METRIC_CONNECTIONS,
            "Live connections to sessions on this node, by kind (websocket, sse).",
            ["kind"],
            registry=self.registry,
        )
        self.call_events = Counter(
            names.METRIC_CALL_EVENTS,
            "Built-in call events on this node: joins, leaves, media reports, and "
            "signalling relayed or refused.",
            ["kind"],
            registry=self.registry,
        )
        self.scheduler_sessions = Gauge(
            names.METRIC_SCHEDULER_SESSIONS,
            "Sessions whose deadlines this node's scheduler holds in memory.",
            registry=self.registry,
        )
        self.outbox = Gauge(
            names.METRIC_OUTBOX,
            "Outbox deliveries by target and status, counted when metrics are scraped.",
            ["target", "status"],
            registry=self.registry,
        )
