class RouterError(Exception):
    """Base of router's errors."""


class ConfigError(RouterError):
    """The routing configuration is invalid; the message names the field."""


class NotFound(RouterError):
    """An assignment or delivery that does not exist; the message names the field."""
