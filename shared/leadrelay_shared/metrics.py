"""Prometheus metrics shared by the plumbing (each service process has its own registry)."""

from prometheus_client import Counter, Histogram

CONSUMED = Counter("leadrelay_events_consumed_total", "Events handled by a consumer",
                   ["group", "outcome"])
DEAD_LETTERED = Counter("leadrelay_dead_lettered_total", "Records sent to the dead-letter topic",
                        ["group"])
OUTBOX_PUBLISHED = Counter("leadrelay_outbox_published_total", "Outbox rows published", ["schema"])
HANDLE_SECONDS = Histogram("leadrelay_handle_seconds", "Time to handle one event", ["group"])
DELIVERIES = Counter("leadrelay_webhook_deliveries_total", "Webhook attempts by outcome",
                     ["schema", "outcome"])
