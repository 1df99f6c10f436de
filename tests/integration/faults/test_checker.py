"""The checker itself must see a lost and a double-counted event (no broker needed)."""

from __future__ import annotations

from stream.core import dedup
from stream.core.emotion import EmotionState
from stream.core.state import UserState
from stream.worker.processor import dump_user
from tests.integration.faults.checker import compare


def _record(ids: list[str], scale: float) -> dict[str, object]:
    window = dedup.DedupState()
    for n, event_id in enumerate(ids):
        window, _ = dedup.fold(window, event_id, 1000 * (n + 1), window_s=86400)
    sums = tuple(scale * (i + 1) for i in range(len(EmotionState().sums)))
    return dump_user(UserState(emotion=EmotionState(sums, 2000)), window)


def test_compare_counts_lost_and_double_counted_events() -> None:
    expected = {"a": _record(["e1", "e2"], 1.0), "b": _record(["e3"], 1.0)}
    assert (
        compare(expected, dict(expected))
        .line()
        .endswith("0 lost, 0 double-counted, 0 states differ")
    )
    lost = compare(expected, {"a": _record(["e1"], 1.0)})
    assert (lost.lost, lost.double, sorted(lost.differing)) == (2, 0, ["a", "b"])
    double = compare(expected, {"a": _record(["e1", "e2"], 2.0), "b": expected["b"]})
    assert (double.lost, double.double, double.differing) == (0, 1, ["a"])
