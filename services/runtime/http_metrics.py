"""HTTP request metrics of a service's API: counts and latency by route template.

prometheus-fastapi-instrumentator measures; the collectors live in the default
registry, which the service's own /metrics serves.
"""

from collections.abc import Callable

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics

_http_recorder: Callable[[http_metrics.Info], None] | None = None
# Scrapes and probes would drown the traffic that matters.
_UNMEASURED_ROUTES = [r"^/metrics$", r"^/healthz$", r"^/readyz$"]
# From a fast read to a command that waits out its timeout (15 s by default).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _http_metrics() -> Callable[[http_metrics.Info], None]:
    """Records a request in leadflow_http_requests_total{handler, method, status}
    and leadflow_http_request_duration_seconds{handler, method}."""
    # Like Faust's, the collectors register once per process in the default
    # registry; every app built in the process records into them.
    global _http_recorder
    if _http_recorder is None:
        count = http_metrics.requests(
            metric_namespace="leadflow",
            metric_doc="HTTP requests by route template, method and status class.",
        )
        duration = http_metrics.latency(
            metric_namespace="leadflow",
            metric_doc="Time to answer an HTTP request, by route template and method.",
            should_include_status=False,
            buckets=_LATENCY_BUCKETS,
        )
        if count is None or duration is None:
            raise RuntimeError("leadflow_http_* metrics are already registered by someone else")

        def record(info: http_metrics.Info) -> None:
            # Labels stay bounded whatever a client sends. A request that reached
            # no route (404, or the redirect of a trailing slash, which the library
            # names by its raw path, ids and all) counts under handler "none", a
            # made-up method under "other".
            if "endpoint" not in info.request.scope:
                info.modified_handler = "none"
            if info.method not in _HTTP_METHODS:
                info.method = "other"
            count(info)
            duration(info)

        _http_recorder = record
    return _http_recorder


def instrument_http(api: FastAPI) -> None:
    """Counts and times the requests `api` answers, by route template; /metrics
    (ours, on the default registry) serves the figures."""
    Instrumentator(
        should_group_status_codes=True,
        should_group_untemplated=True,
        excluded_handlers=_UNMEASURED_ROUTES,
    ).add(_http_metrics()).instrument(api)
