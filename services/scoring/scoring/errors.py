class ScoringError(Exception):
    """Base of scoring's errors."""


class LeadNotFound(ScoringError):
    pass
