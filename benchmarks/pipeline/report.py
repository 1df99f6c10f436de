"""Results: verdicts against the targets, the table, the Markdown page, the files."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.pipeline.config import RESULTS, TARGETS, log


def verdicts(r: dict[str, Any]) -> dict[str, str]:
    mem = r.get("memory", {})
    checks: list[tuple[str, float | None, str, bool]] = [
        ("pipeline texts/s vs ceiling", r.get("mixed", {}).get("texts_vs_ceiling"),
         "pipeline_vs_ceiling", True),
        ("clicks-only events/s", r.get("clicks", {}).get("events_per_s"),
         "clicks_events_per_s", True),
        ("clicks-only events/s vs floor table_send (same run)",
         r.get("ratios", {}).get("clicks_vs_floor_table_send"), "clicks_vs_floor", True),
        ("item-state freshness p99 s (clicks, 1 worker)", _p99(r.get("clicks")),
         "board_freshness_p99_s", False),
        ("item-state freshness p99 s (clicks2, slowest board)", _p99(r.get("clicks2")),
         "board_freshness_p99_s", False),
        ("latency p99 ms (worker)", r.get("latency", {}).get("worker_latency_ms", {}).get("p99"),
         "latency_p99_ms", False),
        ("latency p99 ms (end to end)", r.get("latency", {}).get("end_to_end_ms", {}).get("p99"),
         "latency_p99_ms", False),
    ]  # fmt: skip
    if mem:
        checks += [
            ("state bytes/user beyond taste (median)", mem["beyond_taste_bytes"]["median"],
             "state_bytes_beyond_taste", False),
            ("state bytes/user beyond taste (saturated user)",
             mem["saturated_user"]["beyond_taste_bytes"], "state_bytes_beyond_taste", False),
        ]  # fmt: skip
    out: dict[str, str] = {}
    for name, value, key, higher in checks:
        if value is None:
            continue
        target = TARGETS[key]
        ok = value >= target if higher else value <= target
        out[name] = f"{value:g} vs target {'>=' if higher else '<='} {target:g}: " + (
            "met" if ok else "MISSED"
        )
    return out


def _p99(run: dict[str, Any] | None) -> float | None:
    """The freshness p99 estimate of a run's board (the slowest board of a group)."""
    if not run:
        return None
    boards = run.get("freshness_per_worker") or [run.get("freshness") or {}]
    values = [b["p99"]["estimate"] for b in boards if b.get("p99")]
    return max(values) if values else None


Rows = list[tuple[str, str]]


def _cores_row(label: str, run: dict[str, Any]) -> tuple[str, str]:
    cpu = run["cpu"]
    return (
        f"{label}: worker / broker / others cores",
        f"{cpu['worker_cores']} / {cpu['broker_cores']} / {cpu['others_cores']}",
    )


def _model_rows(r: dict[str, Any]) -> Rows:
    """Ceiling and mixed rows."""
    rows: Rows = []
    c = r.get("ceiling")
    if c:
        rows.append(
            (
                "inference ceiling (model alone, batch 32, sorted+cut)",
                f"{c['texts_per_s_median']} texts/s",
            )
        )
    c2 = r.get("ceiling_at_worker_batch")
    if c2:
        rows.append(
            (
                f"inference ceiling at batch {c2['batch']} (what a worker batch holds)",
                f"{c2['texts_per_s_median']} texts/s",
            )
        )
    m = r.get("mixed")
    if m and "events_per_s" in m:
        rows += [
            ("mixed 60/25/15: sustained events/s (10-90%)", f"{m['events_per_s']}"),
            ("mixed: events/s that need the model", f"{m['texts_per_s']} texts/s"),
            ("mixed: texts/s vs ceiling", f"{m.get('texts_vs_ceiling', 'n/a')}"),
            ("mixed: recommendations/s", f"{m['recommendations_per_s']}"),
            _cores_row("mixed", m),
        ]
    mb = r.get("mixed_openblas_1_thread")
    if mb and "events_per_s" in mb:
        rows += [
            ("mixed with OPENBLAS_NUM_THREADS=1 (diagnostic): events/s", f"{mb['events_per_s']}"),
            (
                "mixed with OPENBLAS_NUM_THREADS=1: texts/s, vs ceiling",
                f"{mb['texts_per_s']}, {mb.get('texts_vs_ceiling', 'n/a')}",
            ),
        ]
    return rows


def _clicks_rows(r: dict[str, Any]) -> Rows:
    rows: Rows = []
    k = r.get("clicks")
    if k and "events_per_s" in k:
        rows += [
            ("clicks-only: sustained events/s (10-90%)", f"{k['events_per_s']}"),
            _cores_row("clicks-only", k),
        ]
    kb = r.get("clicks_openblas_1_thread")
    if kb and "events_per_s" in kb:
        rows.append(
            ("clicks-only with OPENBLAS_NUM_THREADS=1 (diagnostic)", f"{kb['events_per_s']}")
        )
    for label, core in r.get("clicks_core", {}).items():
        rows.append(
            (
                f"clicks, Processor alone, no Kafka/Faust ({label})",
                f"{core['events_per_s']} ev/s; recommend {core['share']['recommend']:.0%}",
            )
        )
    return rows


def _fresh(board: dict[str, Any]) -> str:
    p50, p99 = board.get("p50"), board.get("p99")
    if not p99 or not p50:
        return "no records"
    return (
        f"{p50['estimate']} / {p99['estimate']} s (p99 <= {p99['at_most']:g} s; "
        f"{board['count']} records)"
    )


def _scale_rows(r: dict[str, Any]) -> Rows:
    """Floor, its ratio, the two-worker group and the boards' freshness."""
    rows: Rows = []
    fl = r.get("floor", {}).get("table_send")
    if fl:
        cpu = fl["cpu"]
        rows += [
            ("floor table_send (Faust alone, same clicks): events/s",
             f"{fl['steady_events_per_s']}"),
            ("floor: Faust worker / broker / others cores", f"{cpu['floor_worker_cores']} / "
             f"{cpu['broker_cores']} / {cpu['others_cores']}"),
        ]  # fmt: skip
    ratio = r.get("ratios", {})
    if "clicks_vs_floor_table_send" in ratio:
        rows.append(("clicks-only vs floor table_send", f"{ratio['clicks_vs_floor_table_send']}"))
    ku = r.get("clicks_unranked")
    if ku and "events_per_s" in ku:
        rows += [
            ("clicks, each user ranked once: events/s, recommendations/s",
             f"{ku['events_per_s']}, {ku['recommendations_per_s']}"),
            ("clicks ranked once per user vs floor table_send (any ranker's bound)",
             f"{ratio.get('clicks_unranked_vs_floor_table_send', 'n/a')}"),
        ]  # fmt: skip
    if r.get("clicks", {}).get("freshness"):
        rows.append(("clicks: item-state freshness p50 / p99", _fresh(r["clicks"]["freshness"])))
    k2 = r.get("clicks2")
    if k2 and "events_per_s" in k2:
        per = " + ".join(f"{v}" for v in k2.get("events_per_s_per_worker") or [])
        rows += [
            ("clicks, 2 workers in one group: sustained events/s", f"{k2['events_per_s']} ({per})"),
            ("clicks2: 2 workers vs 1", f"{ratio.get('clicks2_vs_clicks', 'n/a')}"),
            ("clicks2: per worker vs floor table_send",
             f"{ratio.get('clicks2_per_worker_vs_floor_table_send', 'n/a')}"),
            _cores_row("clicks2 (both workers)", k2),
        ]  # fmt: skip
        for i, board in enumerate(k2.get("freshness_per_worker", []), 1):
            rows.append((f"clicks2: worker {i} item-state freshness p50 / p99", _fresh(board)))
    return rows


def _latency_memory_rows(r: dict[str, Any]) -> Rows:
    rows: Rows = []
    lt = r.get("latency")
    if lt:
        w, e = lt["worker_latency_ms"], lt["end_to_end_ms"]
        rows += [
            (
                f"latency at {lt['rate_achieved']} ev/s, interval 0: worker p50/p99 ms",
                f"{w['p50']:.0f} / {w['p99']:.0f}",
            ),
            (
                "latency: end to end (send -> consumer) p50/p99 ms",
                f"{e['p50']:.0f} / {e['p99']:.0f}",
            ),
        ]
    mem = r.get("memory")
    if mem:
        beyond = mem["beyond_taste_bytes"]
        rows += [
            ("state: taste vector bytes/user (JSON)", f"{mem['taste_vector_bytes']}"),
            (
                "state: beyond taste bytes/user median / p90 / saturated",
                f"{beyond['median']:.0f} / {beyond['p90']:.0f}"
                f" / {mem['saturated_user']['beyond_taste_bytes']}",
            ),
            (
                f"state: {mem['table_users']} users serialized / RSS delta MiB",
                f"{mem['serialized_mib']} / {mem['rss_delta_mib']}",
            ),
            ("state: RSS bytes/user", f"{mem['rss_bytes_per_user']:.0f}"),
        ]
    return rows


def render_table(r: dict[str, Any]) -> str:
    rows = _model_rows(r) + _clicks_rows(r) + _scale_rows(r) + _latency_memory_rows(r)
    width = max(len(a) for a, _ in rows) if rows else 10
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{a:<{width}}  {b}" for a, b in rows]
    if r.get("verdicts"):
        lines.append("")
        lines += [f"{k}: {v}" for k, v in r["verdicts"].items()]
    return "\n".join(lines)


def render_md(r: dict[str, Any], table: str) -> str:
    mach = r["machine"]
    lines = [
        "# Pipeline benchmark",
        "",
        f"Run {r['date']} on {mach['cpu']} ({mach['cores']} cores, {mach['memory_gib']} GiB), "
        f"Python {mach['python']}, ONNX Runtime {mach['onnxruntime']}; "
        f"load average {r['load_before'][0]} before, {r['load_after'][0]} after; "
        f"{r['elapsed_s']} s in all. Code: commit {r['code']['commit']}"
        f"{' + uncommitted changes in stream/' if r['code']['stream_dirty'] else ''}.",
        "",
        "Worker settings: " + ", ".join(f"{k}={v}" for k, v in r["settings"].items()) + ".",
        "",
        "```",
        table,
        "```",
        "",
    ]
    if r.get("busy_before") or r.get("busy_after"):
        lines += ["Other busy processes (lifetime %CPU from ps):", ""]
        lines += [f"- {p}" for p in r.get("busy_before", []) + r.get("busy_after", [])]
        lines.append("")
    for prof in r.get("clicks_profile", {}).values():
        if "top_own" in prof:
            lines += _profile_md(prof)
    for core in r.get("clicks_core", {}).values():
        env = " ".join(f"{k}={v}" for k, v in core["env"].items()) or "default environment"
        steps = ", ".join(
            f"{k} {v} us ({core['share'][k]:.0%})" for k, v in core["us_per_event"].items()
        )
        lines.append(
            f"- Processor alone on clicks ({env}): {core['events_per_s']} ev/s; per event: {steps}."
        )
    if r.get("clicks_core"):
        lines.append("")
    lines += ["Full figures: `benchmarks/results/pipeline.json`.", ""]
    return "\n".join(lines)


def _profile_md(prof: dict[str, Any]) -> list[str]:
    """One profiled worker's hot spots, project functions and packages."""
    env = " ".join(f"{k}={v}" for k, v in prof["env"].items()) or "default environment"
    lines = [
        f"## Clicks-only worker hot spots, {env} (cProfile, {prof['profiled_s']} s of "
        f"{prof['timer']}; rate under the profiler {prof['run'].get('events_per_s')} ev/s)",
        "",
        "| function | own share | inclusive share | calls |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{h['function']}` | {h['own_share']:.1%} | {h['inclusive_share']:.1%} | {h['calls']} |"
        for h in prof["top_own"][:20]
    ]
    lines += [
        "",
        "Project functions by inclusive time:",
        "",
        "| function | inclusive share | own share | calls |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{h['function']}` | {h['inclusive_share']:.1%} | {h['own_share']:.1%} | {h['calls']} |"
        for h in prof["stream_inclusive"][:20]
    ]
    lines += ["", "Own time per package:", ""]
    lines += [f"- {p['package']}: {p['own_share']:.1%}" for p in prof["packages"]]
    lines.append("")
    return lines


def finish(result: dict[str, Any], write: bool) -> None:
    """Verdicts, the table on stdout, and (unless ``--no-write``) pipeline.json and .md."""
    result["verdicts"] = verdicts(result)
    table = render_table(result)
    print(table)
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "pipeline.md").write_text(render_md(result, table))
        log(f"wrote {RESULTS / 'pipeline.json'} and pipeline.md")
