"""The one place that creates the Powertools Logger, Tracer and Metrics.

Log structured keys (object, cycle_id, counts, Salesforce ids), never field values:
no personal data in logs, traces or metrics.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "sfsync"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=SERVICE, service=SERVICE)
