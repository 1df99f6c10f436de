"""Progress sink of a backtest run."""

from __future__ import annotations

from typing import Protocol as TypingProtocol


class Steps(TypingProtocol):
    """Progress sink (a rich progress bar at the CLI, nothing in tests)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoSteps:
    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None
