"""Label maths shared by the model adapter, the CLI and the core."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.labels import (
    EKMAN_GROUPS,
    arousal,
    ekman,
    ekman_scores,
    emotion_labels,
    emotion_thresholds,
    sentiment_labels,
    top_emotions,
)
from stream.ports import EKMAN, EMOTIONS


def _one(**probs: float) -> np.ndarray:
    row = np.zeros(len(EMOTIONS), dtype=np.float32)
    for name, p in probs.items():
        row[EMOTIONS.index(name)] = p
    return row


def test_groups_cover_every_emotion_exactly_once() -> None:
    members = [e for group in EKMAN_GROUPS.values() for e in group]
    assert sorted(members) == sorted(EMOTIONS)
    assert tuple(EKMAN_GROUPS) == EKMAN


@pytest.mark.parametrize(
    ("emotion", "group"),
    [("annoyance", "anger"), ("nervousness", "fear"), ("gratitude", "joy"),
     ("grief", "sadness"), ("curiosity", "surprise"), ("disgust", "disgust"),
     ("neutral", "neutral")],
)  # fmt: skip
def test_member_lands_in_its_group(emotion: str, group: str) -> None:
    dist = ekman(_one(**{emotion: 0.8}))
    assert EKMAN[int(dist[0].argmax())] == group
    assert dist[0].sum() == pytest.approx(1.0)


def test_group_is_present_when_any_member_is() -> None:
    scores = ekman_scores(_one(anger=0.5, annoyance=0.5, fear=0.3))[0]
    assert scores[EKMAN.index("anger")] == pytest.approx(0.75)  # 1 - 0.5 * 0.5
    assert scores[EKMAN.index("fear")] == pytest.approx(0.3)
    assert scores[EKMAN.index("joy")] == 0.0
    assert ekman_scores(_one(grief=1.0))[0, EKMAN.index("sadness")] == pytest.approx(1.0)


def test_no_evidence_is_neutral() -> None:
    np.testing.assert_array_equal(ekman(np.zeros((2, len(EMOTIONS))))[:, -1], [1.0, 1.0])


@given(st.lists(st.floats(0.0, 1.0, width=32), min_size=28, max_size=28))
def test_ekman_is_a_distribution_of_noisy_or_groups(probs: list[float]) -> None:
    dist = ekman(probs)[0]
    assert dist.sum() == pytest.approx(1.0, abs=1e-5)
    assert (dist >= 0).all()
    scores = ekman_scores(probs)[0]
    for k, group in enumerate(EKMAN):
        members = [probs[EMOTIONS.index(e)] for e in EKMAN_GROUPS[group]]
        assert scores[k] == pytest.approx(1 - np.prod([1 - p for p in members]), abs=1e-5)
        assert scores[k] >= max(members) - 1e-5


def test_arousal_orders_fury_over_sadness_over_nothing() -> None:
    values = arousal(np.stack([_one(anger=0.9), _one(sadness=0.9), _one()]))
    assert values[0] > 0.7 > 0.35 > values[1]
    assert values[2] == pytest.approx(0.2)  # the neutral prior alone
    assert ((values >= 0) & (values <= 1)).all()


def test_labels_thresholds_and_top() -> None:
    rows = np.stack([_one(joy=0.6, love=0.35, anger=0.1), _one(neutral=0.2)])
    cut = emotion_thresholds({"love": 0.3})  # others default to 0.5
    assert emotion_labels(rows, cut) == [["joy", "love"], []]
    assert emotion_labels(rows, emotion_thresholds(0.15)) == [["joy", "love"], ["neutral"]]
    assert [n for n, _ in top_emotions(rows, 2)[0]] == ["joy", "love"]
    assert sentiment_labels([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]) == ["positive", "negative"]
    with pytest.raises(ValueError, match="unknown"):
        emotion_thresholds({"happiness": 0.5})
