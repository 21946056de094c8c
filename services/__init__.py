"""Leadflow's services. Each subpackage is one deployable service; `runtime` is
what they all run on. Services never import each other (see .importlinter)."""

from prometheus_client import disable_created_metrics

# Counters and histograms without their `*_created` twins: they double the series
# a scrape carries and nothing here reads them. Set before any metric is made.
disable_created_metrics()  # type: ignore[no-untyped-call]
