"""Prometheus metrics shared by the plumbing (each service process has its own registry)."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "leadrelay_events_consumed_total", "Events handled by a consumer", ["group", "outcome"]
)
DEAD_LETTERED = Counter(
    "leadrelay_dead_lettered_total", "Records sent to the dead-letter topic", ["group"]
)
OUTBOX_PUBLISHED = Counter("leadrelay_outbox_published_total", "Outbox rows published", ["schema"])
OUTBOX_WAIT = Histogram(
    "leadrelay_outbox_wait_seconds",
    "How long the oldest row of each published batch waited in the outbox "
    "(commit to Kafka's acknowledgement)",
    ["schema"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge(
    "leadrelay_consumer_lag",
    "Records on a partition the group has not handled "
    "yet (the partition's high watermark less the group's position)",
    ["group", "topic", "partition"],
)
HANDLE_SECONDS = Histogram("leadrelay_handle_seconds", "Time to handle one event", ["group"])
DELIVERIES = Counter(
    "leadrelay_webhook_deliveries_total", "Webhook attempts by outcome", ["schema", "outcome"]
)
OUTBOX_BACKLOG = Gauge(
    "leadrelay_outbox_backlog", "Outbox rows not yet published to Kafka", ["schema"]
)
OUTBOX_OLDEST = Gauge(
    "leadrelay_outbox_oldest_seconds",
    "How long the oldest unpublished outbox row has waited (0 when the outbox is empty)",
    ["schema"],
)
QUEUED_DELIVERIES = Gauge(
    "leadrelay_webhook_queue",
    "Webhooks or alerts not delivered, by state (pending, dead, gone)",
    ["schema", "status"],
)
