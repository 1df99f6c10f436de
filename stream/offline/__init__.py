"""Offline tools: replay, dataset loaders, backtests and their reports."""
