"""devstack: starts leadrelay's real parts locally (Kafka, PostgreSQL, the six services)."""
