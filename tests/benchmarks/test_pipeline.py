"""The pipeline benchmark's package: its command line, verdicts and table, without a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_freshness_quantiles_from_buckets() -> None:
    from benchmarks.pipeline.freshness import FRESHNESS, quantile, summary

    name = f"{FRESHNESS}_bucket"
    cum = {"0.5": 50.0, "1.0": 90.0, "2.0": 99.0, "5.0": 100.0, "+Inf": 100.0}
    metrics = {f'{name}{{le="{le}"}}': c for le, c in cum.items()}
    metrics |= {f"{FRESHNESS}_count": 100.0, f"{FRESHNESS}_sum": 60.0}
    got = summary(metrics)
    assert got["count"] == 100 and got["mean_s"] == 0.6
    assert got["p50"] == {"estimate": 0.5, "at_most": 0.5}
    assert got["p99"] == {"estimate": 2.0, "at_most": 2.0}
    assert got["share_within_2_s"] == 0.99
    assert quantile([(1.0, 10.0), (float("inf"), 20.0)], 0.99) == {
        "estimate": 1.0,
        "at_most": float("inf"),
    }
    assert summary({})["p99"] is None


def test_scale_ratios_and_verdicts() -> None:
    from benchmarks.pipeline.scale import ratios

    cpu = {"worker_cores": 1.0, "broker_cores": 0.2, "others_cores": 0.0}
    fresh = {
        "count": 10,
        "p50": {"estimate": 0.2, "at_most": 0.25},
        "p99": {"estimate": 0.9, "at_most": 1.0},
    }
    slow = fresh | {"p99": {"estimate": 3.0, "at_most": 5.0}}
    result: dict[str, Any] = {
        "floor": {"table_send": {"steady_events_per_s": 2000.0,
                                 "cpu": cpu | {"floor_worker_cores": 1.0}}},
        "clicks": {"events_per_s": 1000.0, "cpu": cpu, "freshness": fresh},
        "clicks2": {"events_per_s": 1500.0, "cpu": cpu, "events_per_s_per_worker": [750, 750],
                    "freshness_per_worker": [fresh, slow]},
        "clicks_unranked": {"events_per_s": 1200.0, "recommendations_per_s": 90.0, "cpu": cpu},
    }  # fmt: skip
    result["ratios"] = ratios(result)
    assert result["ratios"] == {
        "clicks_vs_floor_table_send": 0.5,
        "clicks2_per_worker_vs_floor_table_send": 0.375,
        "clicks2_vs_clicks": 1.5,
        "clicks_unranked_vs_floor_table_send": 0.6,
    }
    v = verdicts(result)
    assert v["clicks-only events/s vs floor table_send (same run)"].endswith("MISSED")
    assert v["item-state freshness p99 s (clicks, 1 worker)"].endswith("met")
    assert v["item-state freshness p99 s (clicks2, slowest board)"].endswith("MISSED")
    table = render_table(result | {"verdicts": v})
    row = next(line for line in table.splitlines() if line.startswith("clicks, 2 workers"))
    assert row.endswith("  1500.0 (750 + 750)")
    bound = next(line for line in table.splitlines() if line.startswith("clicks ranked once"))
    assert bound.endswith("  0.6")


def test_unranked_phase_is_a_default_phase() -> None:
    assert "unranked" in build_parser().parse_args([]).only.split(",")
