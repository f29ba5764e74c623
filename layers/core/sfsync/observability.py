"""The one place that creates the Powertools Logger, Tracer and Metrics, and names every metric.

Log structured keys (object, cycle_id, counts, Salesforce ids), never field values:
no personal data in logs, traces or metrics.

Metrics are CloudWatch EMF, in the ``sfsync`` namespace. ``metrics`` (flushed by each handler's
``log_metrics``) carries the dimension ``service`` only: figures of the whole sync. Figures of one
object carry ``Object`` as well; Powertools writes one dimension set per flush for all the metrics in
it, so each object's figures go out in an EMF record of their own (``EphemeralMetrics``, flushed at
once), never through the shared ``metrics``. A count of one object is written under two dimension
sets, ``[Object, service]`` and ``[service]``: the second sums over every object, for the alarms (an
alarm reads one metric, not a search over objects). A gauge of one object (a level, not a count) is
written under ``[Object, service]`` only, its total under ``[service]`` apart. The dashboard and the
alarms in template.yaml name exactly these (tests/template/test_metrics.py holds them together).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE = "sfsync"
NAMESPACE = "sfsync"
OBJECT = "Object"

# An exception that escapes to the interpreter (a failed cold start's import, say) is logged as structured
# JSON too (Powertools sets sys.excepthook); one that leaves a handler, the Lambda runtime reports.
logger = Logger(service=SERVICE, log_uncaught_exceptions=True)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# One object's counts in a slice, from its ObjectStats counters (summed where several).
OBJECT_COUNTS: dict[str, tuple[str, ...]] = {
    "RecordsCreated": ("created",),
    "RecordsUpdated": ("updated",),
    "RecordsDeleted": ("deleted",),
    "RecordsMerged": ("merged",),
    "RecordsConverted": ("converted",),
    "RecordsFiltered": ("filtered",),
    "RecordsFailed": ("failed", "push_failed"),  # each in the sync errors, with Salesforce's message
    "RecordsPushed": ("pushed",),
    "SalesforceApiCalls": ("api_calls",),
}
# Figures of the whole sync ([service]).
CYCLES_FINISHED = "CyclesFinished"
CYCLE_DURATION = "CycleDuration"
OBJECTS_FAILED = "ObjectsFailed"  # also per object, as a count
SLICES_SYNCED = "SlicesSynced"  # also per object, as a count: the chain's heartbeat during a long cycle
FIRST_COPY_RECORDS = "FirstCopyRecords"  # also per object: records the first copy has stored
API_USAGE_PERCENT = "ApiUsagePercent"
SALESFORCE_API_CALLS = "SalesforceApiCalls"
CREDENTIALS_REFUSED = "CredentialsRefused"
CHAIN_REPLACED = "ChainReplaced"
SYNC_PAUSED = "SyncPaused"
# Gauges: per object ([Object, service]) and their total ([service]).
PULL_LAG = "PullLagSeconds"
PUSH_BACKLOG = "PushBacklog"
SYNC_ERRORS_OPEN = "SyncErrorsOpen"


def _object_metrics(sobject: str, *, summed: bool) -> EphemeralMetrics:
    record = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    record.add_dimension(name=OBJECT, value=sobject)
    if summed:
        record.add_dimensions(service=SERVICE)
    return record


def publish_object_counts(sobject: str, counts: Mapping[str, int | str], *, first_copy: bool = False) -> None:
    """One sync call's counts of one object (``ObjectStats.as_dict()``), zeros included, so a sum
    over time is right and a quiet object still shows: per object, and summed over objects."""
    record = _object_metrics(sobject, summed=True)
    for name, fields in OBJECT_COUNTS.items():
        record.add_metric(name=name, unit=MetricUnit.Count, value=sum(int(counts.get(f, 0)) for f in fields))
    record.add_metric(name=SLICES_SYNCED, unit=MetricUnit.Count, value=1)
    if first_copy:
        stored = sum(int(counts.get(f, 0)) for f in ("created", "updated", "skipped"))
        record.add_metric(name=FIRST_COPY_RECORDS, unit=MetricUnit.Count, value=stored)
    record.flush_metrics()


def publish_object_failed(sobject: str, failed: bool) -> None:
    """Whether an object's sync failed in a cycle (1) or drained (0): per object and summed."""
    record = _object_metrics(sobject, summed=True)
    record.add_metric(name=OBJECTS_FAILED, unit=MetricUnit.Count, value=int(failed))
    record.flush_metrics()


def publish_object_gauges(sobject: str, gauges: Mapping[str, tuple[float, MetricUnit]]) -> None:
    """Levels of one object (lag, backlog, open errors), per object only: a level does not add up
    over the calls that report it, so its total is published apart (``publish_gauge``)."""
    if not gauges:
        return
    record = _object_metrics(sobject, summed=False)
    for name, (value, unit) in gauges.items():
        record.add_metric(name=name, unit=unit, value=value)
    record.flush_metrics()


def publish_gauge(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    """A figure of the whole sync ([service]), flushed with the handler's metrics."""
    metrics.add_metric(name=name, unit=unit, value=value)


def publish_api_usage(usage: tuple[int, int] | None) -> None:
    """The org's API usage as Salesforce last reported it (rolling 24 hours), as a share of its limit."""
    if usage and usage[1]:
        publish_gauge(API_USAGE_PERCENT, round(100.0 * usage[0] / usage[1], 2), MetricUnit.Percent)


def credentials_refused(reason: str) -> None:
    """The sync user's credentials cannot be used: the secret is empty or malformed, or Salesforce
    refused the login. ``reason`` is a short code (never the secret or any of its values)."""
    publish_gauge(CREDENTIALS_REFUSED, 1)
    logger.error("the Salesforce credentials were refused", extra={"reason": reason})
