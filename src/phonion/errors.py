"""Domain exceptions. Every message names what is wrong and what to set."""


class PhonionError(Exception):
    """Base class of every error phonion raises on purpose."""


class ConfigError(PhonionError):
    """A configuration value is missing or inconsistent."""


class StructureRejected(PhonionError):
    """A structure fails triage; the message is the one-line reason for status.tsv."""


class ModelUnavailable(PhonionError):
    """An MLP cannot be loaded offline (needs a download or a missing package)."""


class UnsupportedElements(PhonionError):
    """The chosen model has no parameters for some elements of a structure."""
