"""intake's errors; the API maps each to one HTTP status in one place."""


class IntakeError(Exception):
    """Base of intake's errors."""


class InvalidInput(IntakeError):
    """A field breaks a rule that the schema alone cannot express."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message


class NotAccepted(IntakeError):
    """Kafka did not acknowledge in time: the request was not accepted and may be retried."""
