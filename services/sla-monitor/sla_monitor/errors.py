"""sla-monitor's errors."""

from leadrelay_shared.yamlconf import ConfigFileError


class SlaError(Exception):
    """Base of sla-monitor's errors."""


class PolicyError(ConfigFileError, SlaError):
    """An SLA policy file that cannot be used; each problem names the line or the field."""
