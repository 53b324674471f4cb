from leadrelay_shared.yamlconf import ConfigFileError


class RouterError(Exception):
    """Base of router's errors."""


class ConfigError(ConfigFileError, RouterError):
    """The routing configuration is invalid; each problem names the line or the field."""


class NotFound(RouterError):
    """An assignment, lead or delivery that does not exist; the message names the field."""
