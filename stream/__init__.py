"""moodstream: a real-time, emotion-aware recommendation stream processor."""

__version__ = "0.1.0"
