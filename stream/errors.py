"""The one error hierarchy: the CLI turns any ``MoodstreamError`` into one readable line."""

from __future__ import annotations


class MoodstreamError(Exception):
    """Base of every error moodstream raises on purpose."""


class ConfigError(MoodstreamError):
    """Settings or CLI arguments that cannot work."""


class MissingToolError(MoodstreamError):
    """A required external tool (Java, Maven) is not installed."""


class BrokerError(MoodstreamError):
    """The Kafka broker could not be started, reached or stopped."""


class ModelError(MoodstreamError):
    """The model artifact is missing, corrupt or fails its checks."""


class ParityError(ModelError):
    """An exported model disagrees with its source beyond tolerance (always fatal)."""


class IndexError_(MoodstreamError):
    """The item index is missing, corrupt or incompatible with the model."""


class DatasetError(MoodstreamError):
    """A dataset file cannot be read at all (single bad rows are skipped, not raised)."""


class DeadLetter(MoodstreamError):
    """A consumed value that must go to the dead-letter topic instead of the core.

    ``kind`` is a stable, machine-readable reason (``malformed_json``, ``schema``, ``encoding``,
    ``oversize``, ``unknown_action``, ``unknown_item``).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
