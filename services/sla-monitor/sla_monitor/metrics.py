"""sla-monitor's Prometheus metrics (alert delivery failures are the shared
``leadrelay_webhook_deliveries_total{schema="sla"}``)."""

from prometheus_client import Counter, Gauge, Histogram

OPEN_CLOCKS = Gauge("leadrelay_sla_open_clocks", "Clocks running (leads on the clock)")
BREACHED_OPEN = Gauge("leadrelay_sla_breached_open_clocks", "Open clocks past their deadline")
ALERTS = Counter(
    "leadrelay_sla_alerts_total", "Alerts fired, by level and policy", ["level", "policy"]
)
LATENESS = Histogram(
    "leadrelay_sla_alert_lateness_seconds",
    "Seconds between a level's due instant and the alert being recorded",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
