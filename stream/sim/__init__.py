"""The event simulator and its phrase banks."""
