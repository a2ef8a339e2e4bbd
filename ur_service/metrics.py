"""Prometheus metrics: reviews by outcome, latency histograms, and the worklist read at scrape time.

Under gunicorn each worker is a process: ``PROMETHEUS_MULTIPROC_DIR`` (set by ``gunicorn_conf``) makes
prometheus_client write per-process files that ``/metrics`` sums. Metrics are module-level because
prometheus_client registers each name once per process, however many apps the tests build.
"""

from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REVIEWS = Counter("ur_reviews_total", "Reviews answered, by engine outcome.", ["outcome"])
REVIEW_SECONDS = Histogram("ur_review_duration_seconds",
                           "POST /v1/reviews from request to stored review (engine and store).", buckets=BUCKETS)
DETERMINATIONS = Counter("ur_determinations_total", "Physician determinations, by decision.", ["decision"])
# Label values come from fixed sets, so a client cannot grow the series without bound: any other method is
# "other", an unknown path is "unmatched" (the route template otherwise), a status is one of a few dozen codes.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


REQUESTS = Counter("ur_http_requests_total", "HTTP requests, by route and status.", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("ur_http_request_duration_seconds", "HTTP request latency, by route.",
                            ["method", "route"], buckets=BUCKETS)

_CHILDREN: dict = {}  # (method, route, status) -> the labelled counter and histogram: labels() locks and builds


def request_done(method: str, route: str, status: int, seconds: float) -> None:
    """Count a request and its latency (the labelled series looked up once per label set, then kept)."""
    found = _CHILDREN.get((method, route, status))
    if found is None:
        found = _CHILDREN[(method, route, status)] = (REQUESTS.labels(method, route, str(status)),
                                                      REQUEST_SECONDS.labels(method, route))
    found[0].inc()
    found[1].observe(seconds)


_OUTCOMES: dict = {}  # outcome -> its labelled counter


def reviewed(outcome: str, seconds: float) -> None:
    """Count a stored review by outcome, and its time from request to stored row."""
    found = _OUTCOMES.get(outcome)
    if found is None:
        found = _OUTCOMES[outcome] = REVIEWS.labels(outcome)
    found.inc()
    REVIEW_SECONDS.observe(seconds)


# Per process (a ``pid`` label under gunicorn): which library each worker serves, and whether it is behind.
RULES_SERVING = Gauge("ur_rules_serving", "1 for the rule library digest this process serves.", ["digest"],
                      multiprocess_mode="liveall")
RULES_BEHIND = Gauge("ur_rules_follow_behind",
                     "1 while this process could not load the newest accepted rule library (it retries).",
                     multiprocess_mode="liveall")
RULES_FOLLOW_FAILURES = Counter("ur_rules_follow_failures_total",
                                "Failed attempts to load a rule library another process accepted.")


class _ScrapeTime:
    """Values read when scraped: the open worklist and the serving rules."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        store, service = self.app.extensions["ur_store"], self.app.extensions["ur_engine"]
        _, open_, overdue = store.worklist(limit=0)
        yield GaugeMetricFamily("ur_worklist_open", "Pended reviews awaiting a physician.", value=open_)
        yield GaugeMetricFamily("ur_worklist_overdue", "Pended reviews past their due time.", value=overdue)
        info = GaugeMetricFamily("ur_rules_info", "The serving rule library.", labels=["version", "digest"])
        info.add_metric([service.library.version, service.library.digest], 1)
        yield info


def exposition(app) -> tuple[bytes, str]:
    """The text for ``/metrics``: this process's (or all workers') metrics, then the scrape-time ones."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    live = CollectorRegistry()
    live.register(_ScrapeTime(app))
    return generate_latest(registry) + generate_latest(live), CONTENT_TYPE_LATEST
