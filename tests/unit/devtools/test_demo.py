"""The demo's 'latest recommendations' table shows the users most recently recommended to."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from stream.devtools.demo import DemoStats, render


def _rec(user: str) -> dict[str, Any]:
    return {
        "user_id": user,
        "latency_ms": 5.0,
        "items": [{"item_id": "amp-0001", "score": 0.9, "affect": 0.1}],
        "emotion": {"valence": 0.2, "arousal": 0.3, "dominant": "joy"},
    }


def _users_shown(stats: DemoStats) -> list[str]:
    table = render(stats).renderables[1]
    assert isinstance(table, Table)
    return [str(cell) for cell in table.columns[0]._cells]


def test_the_table_shows_the_latest_users_newest_first() -> None:
    stats = DemoStats()
    for n in range(10):
        stats.observe_recommendation(_rec(f"u{n}"))
    assert _users_shown(stats) == ["u9", "u8", "u7", "u6", "u5", "u4"]
    stats.observe_recommendation(_rec("u0"))  # first seen, recommended to again just now
    stats.observe_recommendation(_rec("u1"))
    assert _users_shown(stats) == ["u1", "u0", "u9", "u8", "u7", "u6"]
    assert stats.recommendations == 12
