"""Every command that cannot reach the broker says so in one line and exits 2, quickly; every
other CLI failure (ours or click's) uses the same ``moodstream: error:`` line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream.cli import main

DEAD = "kafka://127.0.0.1:1"  # nothing listens on port 1


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    code = exit_.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "args",
    [
        ["produce", "--topic", "clicks", "FILE"],
        ["tail", "--topic", "recommendations"],
        ["topics", "describe"],
        ["topics", "create"],
        ["worker"],
        ["demo", "--external-broker", "--duration", "1"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_unreachable_broker_is_one_line_and_exit_2(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    args = [str(events) if a == "FILE" else a for a in args]
    started = time.monotonic()
    code, lines = _run(
        [*args, "--broker", DEAD, "--connect-timeout-s", "3", "--data-dir", str(tmp_path / "w")],
        capsys,
    )
    assert time.monotonic() - started < 20
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("moodstream: error: cannot reach the Kafka broker at 127.0.0.1:1")


def test_an_address_that_never_answers_is_given_up_on_in_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that accepts nothing (black-holed): the connect timeout bounds the wait."""
    import asyncio

    from aiokafka.client import AIOKafkaClient

    async def hang(self: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(AIOKafkaClient, "bootstrap", hang)
    started = time.monotonic()
    code, lines = _run(["topics", "describe", "--connect-timeout-s", "0.5"], capsys)
    assert time.monotonic() - started < 10
    assert code == 2
    assert lines == [
        "moodstream: error: cannot reach the Kafka broker at localhost:9092 (no answer within "
        "0.5s); is it running, and is --broker / MOODSTREAM_BROKER right?"
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["no-such-command"], "No such command 'no-such-command'"),
        (["tail"], "Missing option '--topic'"),
        (["index", "build"], "give exactly one of --catalog FILE or --from-reviews FILE"),
        (["worker", "--partitions", "many"], "'many' is not a valid integer"),
        (["worker", "--allow-topic-creation", "perhaps"], "'perhaps' is not a valid boolean"),
    ],
)
def test_click_errors_use_the_same_one_line_format(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(args, capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("moodstream: error: ")
    assert needle in lines[0]
    assert "Usage:" not in lines[0] and not lines[0].startswith("Error:")
