"""``moodstream worker`` refuses bad settings with one readable line, before it starts anything."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

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


class _Stub:
    """Just enough of a made app and of Faust's worker to run the command's last steps."""

    version = "v"
    provider = "cpu"
    crash_reason: BaseException | None = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.app = self
        self.processor = self
        self.model = self
        self.index = self

    def ids(self) -> list[str]:
        return []

    def execute_from_commandline(self) -> None:
        raise SystemExit(1 if _Stub.crash_reason else 0)


@pytest.fixture
def stub_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command without a broker, a model or Faust: its own steps only."""
    import faust.worker

    import stream.adapters.kafka
    import stream.devtools.demo_index
    import stream.worker.app

    async def no_topics(settings: object) -> list[str]:
        return []

    monkeypatch.setattr(stream.adapters.kafka, "prepare_worker_topics", no_topics)
    monkeypatch.setattr(stream.devtools.demo_index, "with_demo_index", lambda s: s)
    monkeypatch.setattr(stream.worker.app, "make_app", _Stub)
    monkeypatch.setattr(faust.worker, "Worker", _Stub)


@pytest.mark.parametrize("crashed", [True, False])
@pytest.mark.usefixtures("stub_worker")
def test_a_crashed_worker_ends_with_one_line_saying_why(
    crashed: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from faust.exceptions import PartitionsMismatch

    reason = PartitionsMismatch("The source topic 'x' for table 'users'\nhas 1 partitions")
    monkeypatch.setattr(_Stub, "crash_reason", reason if crashed else None)
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "--log-level", "critical"])
    err = capsys.readouterr().err.strip().splitlines()
    if not crashed:
        assert exit_.value.code == 0 and err == []
        return
    assert exit_.value.code == 2
    assert err[-1] == (
        "moodstream: error: the worker crashed: PartitionsMismatch: The source topic 'x' for "
        "table 'users' has 1 partitions"
    )
    assert sum("crashed" in line for line in err) == 1


@pytest.mark.usefixtures("stub_worker")
def test_a_second_rocksdb_worker_on_a_data_directory_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "worker"

    def exit_code(store: str) -> object:
        with pytest.raises(SystemExit) as exit_:
            main(["worker", "--log-level", "error", "--store", store, "--data-dir", f"{data_dir}"])
        return exit_.value.code

    data_dir.mkdir()
    with open(data_dir / "worker.lock", "w", encoding="utf-8") as first:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first.write("4242\n")
        first.flush()
        assert exit_code("rocksdb://") == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"moodstream: error: the data directory {data_dir} is in use by another worker "
            "(pid 4242); give each worker on this machine its own --data-dir (MOODSTREAM_DATA_DIR)"
        ]
        assert exit_code("memory://") == 0  # the memory store keeps nothing there
    assert exit_code("rocksdb://") == 0  # the first one gone, its lock is free again
    assert (data_dir / "worker.lock").read_text("utf-8") == f"{os.getpid()}\n"
