class ScoringError(Exception):
    """Base of scoring's errors."""


class LeadNotFound(ScoringError):
    """No lead with that id (never seen, or erased)."""
