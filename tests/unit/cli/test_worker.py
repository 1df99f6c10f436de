"""``moodstream worker`` refuses bad settings with one readable line, before it starts anything."""

from __future__ import annotations

import pytest

from stream.cli import main


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-events", "0", "batch_events must be >= 1"),
        ("--score-threads", "0", "score_threads must be >= 1"),
        ("--linger-ms", "-1", "linger_ms must be >= 0"),
    ],
)
def test_bad_pipeline_settings_are_one_readable_line(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["worker", flag, value, "--broker", "kafka://127.0.0.1:1"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"moodstream: error: {message}"]


def test_pipeline_settings_come_from_the_environment_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODSTREAM_SCORE_THREADS", "0")
    with pytest.raises(SystemExit):
        main(["worker", "--broker", "kafka://127.0.0.1:1"])
    assert "score_threads must be >= 1" in capsys.readouterr().err
