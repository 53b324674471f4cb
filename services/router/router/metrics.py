"""router's Prometheus metrics (webhook attempts are the shared
``leadrelay_webhook_deliveries_total{schema="router"}``)."""

from collections.abc import Iterable

from prometheus_client import Counter

from .handlers import Outcome

DECISIONS = Counter(
    "leadrelay_routing_decisions_total",
    "Routing decisions committed, by strategy and the rule that settled each",
    ["strategy", "reason"],
)


def count(outcomes: Iterable[Outcome]) -> None:
    for outcome in outcomes:
        d = outcome.decision
        if d is not None:
            DECISIONS.labels(d.strategy, d.reasons[-1].rule_id if d.reasons else "none").inc()
