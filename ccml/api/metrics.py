"""Prometheus metrics of the API, one set per app.

With several worker processes (``ccml serve --workers N``) each process counts its own
requests; ``ccml serve`` then sets ``PROMETHEUS_MULTIPROC_DIR`` so ``/metrics`` aggregates
every worker's values from shared files, whichever worker answers the scrape. The drift gauges
are per worker (``liveall``: one series per live process, labelled ``pid``): each worker
summarises the inputs it scored itself, and PSIs of different samples do not add up.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from ccml.core.drift import DriftReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Sub-millisecond resolution: a prediction answers in well under 1 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ApiMetrics:
    """The Prometheus metrics of one app, in a registry of its own (apps in one process never collide).

    Requests and their latency by method, route and status; predictions by label; reload attempts
    by outcome; the version served; each feature's drift (PSI) and the live rows it is measured on.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ccml_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ccml_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter("ccml_predictions", "Predictions made, by class.", ["label"], registry=self.registry)
        self.reloads = Counter("ccml_model_reloads", "Model reload attempts.", ["outcome"], registry=self.registry)
        # An info-style gauge (value 1 for the loaded version): prometheus_client's Info
        # type does not work across worker processes.
        self.model = Gauge(
            "ccml_model_info",
            "The model version this process serves (value 1).",
            ["version"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.drift_psi = Gauge(
            "ccml_drift_psi",
            "PSI of each feature's inputs scored by this process against the serving version's training "
            "reference (NaN: no inputs yet, or no reference).",
            ["feature"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.drift_rows = Gauge(
            "ccml_drift_live_rows",
            "Inputs this process scored since the serving version loaded (the sample of ccml_drift_psi).",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self._drift_features: dict[str, None] = {}  # every feature a gauge was set for, in schema order
        self._version: str | None = None
        self._by_label: dict[str, Any] = {}
        self._by_request: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def prediction(self, label: str, count: int = 1) -> None:
        """Count ``count`` predictions answered with ``label`` (a batch counts each label once)."""
        counter = self._by_label.get(label)
        if counter is None:
            counter = self._by_label[label] = self.predictions.labels(label)
        if count:
            counter.inc(count)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its latency (``seconds``) by method, route and status."""
        # ``labels()`` validates and locks on every call; each label set's children are
        # looked up once and kept (a handful: routes x methods x statuses).
        key = (method, route, status)
        children = self._by_request.get(key)
        if children is None:
            children = self._by_request[key] = (self.requests.labels(*key), self.latency.labels(*key))
        children[0].inc()
        children[1].observe(seconds)

    def model_loaded(self, version: str | None) -> None:
        """Mark ``version`` as the one served (gauge 1) and the one before as no longer served (0)."""
        if self._version is not None:
            self.model.labels(self._version).set(0)
        if version is not None:
            self.model.labels(version).set(1)
        self._version = version

    def reload(self, success: bool, version: str | None) -> None:
        """Count a reload attempt by outcome; a successful one also marks ``version`` as served."""
        self.reloads.labels("success" if success else "failure").inc()
        if success:
            self.model_loaded(version)

    def drift(self, report: DriftReport) -> None:
        """Set the drift gauges from ``report``; a feature without a PSI in it (none yet, or a version without
        a reference) reads NaN."""
        psi = {feature.feature: feature.psi for feature in report.features}
        self._drift_features.update(dict.fromkeys(psi))
        for name in list(self._drift_features):
            value = psi.get(name)
            self.drift_psi.labels(name).set(float("nan") if value is None else value)
        self.drift_rows.set(report.rows)

    def render(self) -> bytes:
        """Return the metrics in Prometheus's text format (``CONTENT_TYPE``).

        With ``PROMETHEUS_MULTIPROC_DIR`` set, the values of every worker process, aggregated.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
            return generate_latest(registry)
        return generate_latest(self.registry)
