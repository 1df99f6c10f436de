"""The pipeline benchmark's package: its command line, verdicts and table, without a broker."""

from __future__ import annotations

from pathlib import Path

from benchmarks.pipeline.main import build_parser
from benchmarks.pipeline.report import render_table, verdicts

ROOT = Path(__file__).resolve().parents[2]


def test_flags_parse() -> None:
    args = build_parser().parse_args(
        ["--quick", "--only", "mixed", "--set", "batch_events=64", "--no-write"]
    )
    assert args.quick and args.no_write and args.only == "mixed"
    assert args.set == ["batch_events=64"] and args.profile == "auto"


def test_verdicts_and_table() -> None:
    cpu = {"worker_cores": 0.8, "broker_cores": 0.3, "others_cores": 0.1}
    result = {
        "mixed": {"events_per_s": 500.0, "texts_per_s": 200.0, "texts_vs_ceiling": 0.8,
                  "recommendations_per_s": 400.0, "cpu": cpu},
        "clicks": {"events_per_s": 1000.0, "cpu": cpu},
    }  # fmt: skip
    v = verdicts(result)
    assert v["pipeline texts/s vs ceiling"].endswith("met")
    assert v["clicks-only events/s"].endswith("MISSED")
    table = render_table(result | {"verdicts": v})
    row = next(line for line in table.splitlines() if line.startswith("mixed: worker"))
    assert row.endswith("  0.8 / 0.3 / 0.1")
    assert "clicks-only: sustained events/s (10-90%)" in table


def test_clients_come_from_the_adapter() -> None:
    for path in (ROOT / "benchmarks").rglob("*.py"):
        text = path.read_text()
        assert "AIOKafkaProducer(" not in text and "AIOKafkaConsumer(" not in text, path
