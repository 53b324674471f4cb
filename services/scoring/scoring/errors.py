"""scoring's errors."""

from leadrelay_shared.yamlconf import ConfigFileError


class ScoringError(Exception):
    """Base of scoring's errors."""


class LeadNotFound(ScoringError):
    """No lead with that id (never seen, or erased)."""


class ModelError(ConfigFileError, ScoringError):
    """A model file that cannot be used; ``problems`` name the line and the field of each."""
