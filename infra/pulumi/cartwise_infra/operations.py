"""Operations as code: the alert policies an on-call engineer needs, the log-based
metrics some of them count, one dashboard, and where alerts are sent.

Every alert is derived from the declaration (each consumed subscription, each HTTP
function, each dead-letter source), carries its threshold and the promise it protects
in its documentation, and names its runbook in docs/DEPLOY.md ("Runbooks"). The table
``ALERTS`` in docs/DEPLOY.md lists them; ``alert_catalogue`` is what it is written from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from cartwise_infra.context import Context, cloud_name
from cartwise_infra.messaging import consumed

# The peak the system is sized for (docs/CAPACITY.md): a backlog of one minute of it
# means the consumers have fallen a minute behind at the worst moment.
PEAK_EVENTS_PER_S = 10_000
BACKLOG_LIMIT = 60 * PEAK_EVENTS_PER_S
# Oldest unacknowledged message, per consumer: what each promises (docs/DECISIONS.md,
# docs/FREEZER.md); any other consumer: 15 minutes.
AGE_LIMIT_S = {"shopper-events-decide": 60}
DEFAULT_AGE_LIMIT_S = 900
# p95 latency per HTTP function (ms): ingest acknowledges the tracker at once; experiences
# holds ``?after=`` waits; the rest are back-office or scheduled calls.
LATENCY_P95_MS = {"ingest_events": 500, "experiences": 3000, "plays": 1000}
DEFAULT_LATENCY_P95_MS = 5000
ERROR_RATIO = 0.01  # 5xx responses, over 5 minutes


@dataclass(frozen=True)
class LogMetric:
    name: str
    message: str  # the structured log's ``message`` it counts
    description: str
    labels: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        return f"logging.googleapis.com/user/{self.name}"


LOG_METRICS = (
    LogMetric(
        "cartwise/nightly_runs_not_published",
        "nightly run finished",
        "nightly runs that ended failed or refused_by_gate (shared/nightly/service.py)",
        labels=("outcome",),
    ),
    LogMetric(
        "cartwise/erasure_requests_overdue",
        "erasure request overdue",
        "erasure requests still running past ERASURE_DEADLINE (shared/privacy/service.py)",
    ),
    LogMetric(
        "cartwise/campaign_budgets_exhausted",
        "campaign budget exhausted",
        "rewards campaigns whose budget can pay no further prize (shared/rewards/game.py)",
    ),
)


@dataclass(frozen=True)
class Condition:
    title: str
    filter: str
    threshold: float
    aligner: str = "ALIGN_MAX"
    reducer: str | None = None
    group_by: tuple[str, ...] = ()
    duration_s: int = 300
    denominator: str | None = None


@dataclass(frozen=True)
class Alert:
    key: str  # also the runbook's anchor in docs/DEPLOY.md
    title: str
    threshold: str
    promise: str
    conditions: tuple[Condition, ...] = field(default_factory=tuple)


def _subscription(name: str, metric: str) -> str:
    return (
        f'resource.type = "pubsub_subscription" AND resource.labels.subscription_id = "{name}"'
        f' AND metric.type = "pubsub.googleapis.com/subscription/{metric}"'
    )


def _run(service: str, metric: str, extra: str = "") -> str:
    return (
        f'resource.type = "cloud_run_revision" AND resource.labels.service_name = "{service}"'
        f' AND metric.type = "run.googleapis.com/{metric}"{extra}'
    )


def _log_metric(metric: LogMetric, extra: str = "") -> str:
    return f'metric.type = "{metric.type}"{extra}'


def alert_catalogue(ctx: Context) -> list[Alert]:
    """Every alert, from the declaration."""
    alerts: list[Alert] = []
    for name in sorted(consumed(ctx)):
        age = AGE_LIMIT_S.get(name, DEFAULT_AGE_LIMIT_S)
        alerts.append(
            Alert(
                key=f"lag-{name}",
                title=f"{name}: consumer behind",
                threshold=f"oldest unacked message > {age} s, or backlog > "
                f"{BACKLOG_LIMIT:,} messages, for 5 min",
                promise="events are acted on while the shopper is still there (decisions), "
                "queryable the same quarter of an hour (freezer); a growing backlog at the "
                "peak means capacity does not follow load",
                conditions=(
                    Condition(
                        "oldest unacked age", _subscription(name, "oldest_unacked_message_age"), age
                    ),
                    Condition(
                        "backlog",
                        _subscription(name, "num_undelivered_messages"),
                        BACKLOG_LIMIT,
                    ),
                ),
            )
        )
    dead_letter_sources = sorted(
        s.name for s in ctx.system.subscriptions if s.dead_letter_topic and s.name in consumed(ctx)
    )
    alerts.append(
        Alert(
            key="dead-letters",
            title="messages dead-lettered",
            threshold="any message moved to a dead-letter topic in 5 min",
            promise="nothing lost: a message no consumer can process is kept with its reason, "
            "and someone looks at it the same day",
            conditions=tuple(
                Condition(
                    f"dead letters from {name}",
                    _subscription(name, "dead_letter_message_count"),
                    0,
                    aligner="ALIGN_DELTA",
                    duration_s=0,
                )
                for name in dead_letter_sources
            ),
        )
    )
    for function in ctx.system.functions:
        if function.signature != "http":
            continue
        service = cloud_name(function.name)
        latency = LATENCY_P95_MS.get(function.name, DEFAULT_LATENCY_P95_MS)
        alerts.append(
            Alert(
                key=f"http-{service}",
                title=f"{service}: errors or slow",
                threshold=f"5xx > {ERROR_RATIO:.0%} of requests, or p95 latency > {latency} ms, "
                "for 5 min",
                promise="the tracker and the back office get answers; a shopper's experience "
                "arrives before the page is left",
                conditions=(
                    Condition(
                        "5xx ratio",
                        _run(
                            service,
                            "request_count",
                            ' AND metric.labels.response_code_class = "5xx"',
                        ),
                        ERROR_RATIO,
                        aligner="ALIGN_RATE",
                        reducer="REDUCE_SUM",
                        denominator=_run(service, "request_count"),
                    ),
                    Condition(
                        "p95 latency",
                        _run(service, "request_latencies"),
                        latency,
                        aligner="ALIGN_DELTA",
                        reducer="REDUCE_PERCENTILE_95",
                    ),
                ),
            )
        )
    nightly, erasures, budgets = LOG_METRICS
    alerts += [
        Alert(
            key="nightly",
            title="nightly run failed or refused by the gate",
            threshold="any run finished failed or refused_by_gate, or any failed workflow "
            "execution, in a day",
            promise="recommendations are retrained every night; yesterday's trees stay live "
            "when a run fails, so this is about freshness, not outage",
            conditions=(
                Condition(
                    "run not published", _log_metric(nightly), 0, "ALIGN_DELTA", duration_s=0
                ),
                Condition(
                    "workflow execution failed",
                    'resource.type = "workflows.googleapis.com/Workflow" AND metric.type = '
                    '"workflows.googleapis.com/finished_execution_count" AND '
                    'metric.labels.status = "FAILED"',
                    0,
                    "ALIGN_DELTA",
                    duration_s=0,
                ),
            ),
        ),
        Alert(
            key="erasures-overdue",
            title="erasure requests older than their deadline",
            threshold="any request still running 72 h after it was made",
            promise="a shopper's erasure completes well within the month the GDPR allows",
            conditions=(
                Condition(
                    "overdue erasures", _log_metric(erasures), 0, "ALIGN_DELTA", duration_s=0
                ),
            ),
        ),
        Alert(
            key="budget-exhausted",
            title="rewards campaign budget exhausted",
            threshold="any campaign's budget exhausted",
            promise="no prize is promised that the budget cannot pay; the retailer decides "
            "whether to top it up",
            conditions=(
                Condition(
                    "budgets exhausted", _log_metric(budgets), 0, "ALIGN_DELTA", duration_s=0
                ),
            ),
        ),
    ]
    return [a for a in alerts if a.conditions]


def _aggregation(
    condition: Condition,
) -> gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs:
    return gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
        alignment_period="300s" if condition.aligner == "ALIGN_DELTA" else "60s",
        per_series_aligner=condition.aligner,
        cross_series_reducer=condition.reducer,
        group_by_fields=list(condition.group_by) or None,
    )


def _threshold(condition: Condition) -> gcp.monitoring.AlertPolicyConditionArgs:
    denominator = None
    if condition.denominator is not None:
        denominator = [
            gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                alignment_period="60s",
                per_series_aligner=condition.aligner,
                cross_series_reducer=condition.reducer,
            )
        ]
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=condition.title,
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=condition.filter,
            comparison="COMPARISON_GT",
            threshold_value=condition.threshold,
            duration=f"{condition.duration_s}s",
            aggregations=[_aggregation(condition)],
            denominator_filter=condition.denominator,
            denominator_aggregations=denominator,
        ),
    )


def dashboard_json(alerts: list[Alert]) -> str:
    """One tile per alert condition: what the alerts watch, on one page."""
    tiles = []
    for n, (alert, condition) in enumerate((a, c) for a in alerts for c in a.conditions):
        tiles.append(
            {
                "xPos": (n % 2) * 6,
                "yPos": (n // 2) * 4,
                "width": 6,
                "height": 4,
                "widget": {
                    "title": f"{alert.title}: {condition.title}",
                    "xyChart": {
                        "dataSets": [
                            {
                                "timeSeriesQuery": {
                                    "timeSeriesFilter": {
                                        "filter": condition.filter,
                                        "aggregation": {
                                            "alignmentPeriod": "60s",
                                            "perSeriesAligner": condition.aligner,
                                            **(
                                                {"crossSeriesReducer": condition.reducer}
                                                if condition.reducer
                                                else {}
                                            ),
                                        },
                                    }
                                },
                                "plotType": "LINE",
                            }
                        ],
                        "thresholds": [{"value": condition.threshold}],
                    },
                },
            }
        )
    return json.dumps({"displayName": "cartwise", "mosaicLayout": {"columns": 12, "tiles": tiles}})


class Operations(pulumi.ComponentResource):
    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:operations:Operations", "operations")
        opts = ctx.child(self)
        metrics: dict[str, gcp.logging.Metric] = {}
        for declared in LOG_METRICS:
            metrics[declared.type] = gcp.logging.Metric(
                declared.name.replace("/", "-"),
                name=declared.name,
                project=ctx.project,
                description=declared.description,
                filter=f'jsonPayload.message = "{declared.message}"',
                metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                    metric_kind="DELTA",
                    value_type="INT64",
                    labels=[
                        gcp.logging.MetricMetricDescriptorLabelArgs(key=k, value_type="STRING")
                        for k in declared.labels
                    ]
                    or None,
                ),
                label_extractors={k: f"EXTRACT(jsonPayload.{k})" for k in declared.labels} or None,
                opts=opts,
            )
        channels = [
            gcp.monitoring.NotificationChannel(
                f"alerts-email-{n}",
                project=ctx.project,
                display_name=f"cartwise alerts: {email}",
                type="email",
                labels={"email_address": email},
                opts=opts,
            )
            for n, email in enumerate(ctx.stack.alert_emails)
        ]
        alerts = alert_catalogue(ctx)
        for alert in alerts:
            # An alert on a log-based metric can only be created once the metric exists.
            needed = [m for t, m in metrics.items() if any(t in c.filter for c in alert.conditions)]
            gcp.monitoring.AlertPolicy(
                f"alert-{alert.key}",
                project=ctx.project,
                display_name=f"cartwise: {alert.title}",
                combiner="OR",
                conditions=[_threshold(c) for c in alert.conditions],
                notification_channels=[c.name for c in channels],
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    mime_type="text/markdown",
                    content=f"**Threshold**: {alert.threshold}.\n\n**Protects**: {alert.promise}."
                    f"\n\n**Runbook**: docs/DEPLOY.md, Runbooks, `{alert.key}`.",
                ),
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(depends_on=list(needed))
                ),
            )
        gcp.monitoring.Dashboard(
            "dashboard",
            project=ctx.project,
            dashboard_json=dashboard_json(alerts),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=list(metrics.values()))
            ),
        )
        self.register_outputs({})
