"""The demo's view (the users most recently recommended to; per-worker rates beside the totals)
and how ``--workers N`` sets up its worker processes."""

from __future__ import annotations

import io
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from stream.cli.demo import demo_ports
from stream.devtools.demo import DemoStats, WorkerView, rate, render
from stream.devtools.demo_workers import worker_settings
from stream.errors import ConfigError
from stream.settings import Settings


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


def _worker(name: str, port: int, counts: list[tuple[float, float]]) -> WorkerView:
    view = WorkerView(name, port)
    for now, events in counts:
        view.observe(
            {
                'moodstream_events_total{kind="review"}': events / 2,
                'moodstream_events_total{kind="click"}': events / 2,
                "moodstream_board_items": 300.0,
                "moodstream_recommendations_total": 99.0,  # not an event count
            },
            now,
        )
    return view


def test_rate_is_the_counter_over_the_samples_kept() -> None:
    assert rate(deque()) == 0.0
    assert rate(deque([(1.0, 10.0)])) == 0.0  # one sample: no rate yet
    assert rate(deque([(1.0, 10.0), (2.0, 15.0), (3.0, 30.0)])) == 10.0
    assert rate(deque([(1.0, 10.0), (1.0, 30.0)])) == 0.0  # no time passed
    assert rate(deque([(1.0, 30.0), (2.0, 0.0)])) == 0.0  # a restarted worker's counter


def test_each_worker_folds_its_own_rate_and_the_totals_sum_them() -> None:
    one = _worker("demo-1", 7001, [(0.0, 0.0), (2.0, 40.0)])
    two = _worker("demo-2", 7002, [(0.0, 10.0), (2.0, 30.0)])
    assert one.events == 40.0 and one.events_per_s() == 20.0
    assert two.events == 30.0 and two.events_per_s() == 10.0
    stats = DemoStats(workers=[one, two])
    assert stats.worker_events == 70.0
    assert stats.events_per_s() == 30.0
    summary = stats.summary()
    assert summary["events_per_s"] == 30.0
    assert [w["name"] for w in summary["workers"]] == ["demo-1", "demo-2"]
    assert summary["workers"][0] == {
        "name": "demo-1",
        "port": 7001,
        "events": 40.0,
        "events_per_s": 20.0,
        "board_items": 300.0,
    }


def _panel_text(stats: DemoStats) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(render(stats))
    return console.export_text()


def _rows(text: str) -> list[list[str]]:
    """The view's lines as words, the panel's borders dropped."""
    return [[word for word in line.split() if word != "│"] for line in text.splitlines()]


def test_render_shows_a_row_per_worker_beside_the_totals() -> None:
    stats = DemoStats(
        workers=[
            _worker("demo-1", 7001, [(0.0, 0.0), (2.0, 40.0)]),
            _worker("demo-2", 7002, [(0.0, 10.0), (2.0, 30.0)]),
        ]
    )
    text = _panel_text(stats)
    assert "events/s 30" in text  # the total, in the head line
    rows = {row[0]: row[1:] for row in _rows(text) if row and row[0].startswith("demo-")}
    assert rows == {"demo-1": ["7001", "20", "40", "300"], "demo-2": ["7002", "10", "30", "300"]}
    assert ["all", "30", "70"] in _rows(text)
    assert _users_shown(stats) == []  # the recommendations table stays where it was


def test_render_with_one_worker_has_no_worker_table() -> None:
    stats = DemoStats(workers=[_worker("worker", 7001, [(0.0, 0.0), (1.0, 12.0)])])
    text = _panel_text(stats)
    assert "events/s 12" in text
    assert "board items" not in text and "7001" not in text


def test_one_worker_runs_with_the_settings_as_given() -> None:
    settings = Settings(data_dir="/tmp/d/worker")
    (only,) = worker_settings(settings, [7001])
    assert only == settings.replace(web_port=7001)
    assert only.instance_id == "" and only.data_dir == "/tmp/d/worker"


def test_several_workers_get_their_own_port_data_dir_and_instance_id() -> None:
    settings = Settings(data_dir="/tmp/d/worker", partitions=4, app_id="shop")
    each = worker_settings(settings, [7001, 7002, 7003])
    assert [s.web_port for s in each] == [7001, 7002, 7003]
    assert [s.data_dir for s in each] == [f"/tmp/d/worker-{n}" for n in (1, 2, 3)]
    assert [s.instance_id for s in each] == ["demo-1", "demo-2", "demo-3"]
    assert {Path(s.data_dir).parent for s in each} == {Path("/tmp/d")}  # one demo-index cache
    assert {(s.app_id, s.partitions) for s in each} == {("shop", 4)}  # one consumer group
    named = worker_settings(settings.replace(instance_id="lab"), [1, 2])
    assert [s.instance_id for s in named] == ["lab-1", "lab-2"]


def test_more_workers_than_partitions_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        worker_settings(Settings(partitions=2), [7001, 7002, 7003])
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("--workers 3 needs at least 3 partitions, not --partitions 2")
    assert len(worker_settings(Settings(partitions=3), [1, 2, 3])) == 3


def test_demo_ports_count_up_from_a_given_port_or_are_distinct_free_ones() -> None:
    assert demo_ports(7100, 3) == [7100, 7101, 7102]
    free = demo_ports(6066, 3)
    assert len(set(free)) == 3 and 6066 not in free
    assert len(demo_ports(0, 2)) == 2


def test_workers_option_validates_and_reads_moodstream_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from stream.cli.demo import demo

    runner = CliRunner()
    help_text = runner.invoke(demo, ["--help"]).output
    assert "--workers" in help_text and "MOODSTREAM_WORKERS" in help_text
    assert runner.invoke(demo, ["--workers", "0"]).exit_code == 2  # x >= 1
    monkeypatch.setenv("MOODSTREAM_WORKERS", "9")
    result = runner.invoke(demo, ["--partitions", "4"])  # refused before any broker starts
    assert isinstance(result.exception, ConfigError)
    assert "--workers 9 needs at least 9 partitions" in str(result.exception)
