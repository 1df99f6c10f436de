from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core import labels as emotions_maths
from stream.core.emotion import (
    EmotionObs,
    EmotionState,
    HalfLives,
    ekman_from_emotions,
    emotion_at,
    fold_emotion,
)
from stream.ports import EKMAN, EMOTIONS

HL = HalfLives(review_s=7 * 86400.0, chat_s=3600.0, click_s=1800.0)
T0 = 1_700_000_000_000

unit = st.floats(min_value=0.0, max_value=1.0)
observations = st.builds(
    EmotionObs,
    valence=st.floats(min_value=-1.0, max_value=1.0),
    arousal=unit,
    ekman=st.lists(unit, min_size=7, max_size=7).map(tuple),
    source=st.sampled_from(["review", "chat", "click"]),
    ts=st.integers(min_value=T0, max_value=T0 + 30 * 86_400_000),
    confidence=st.floats(min_value=0.0, max_value=5.0),
)


def fold_all(obs: list[EmotionObs]) -> EmotionState:
    state = EmotionState()
    for o in obs:
        state, _ = fold_emotion(state, o, HL)
    return state


def joy(v: float = 1.0) -> tuple[float, ...]:
    return tuple(v if name == "joy" else 0.0 for name in EKMAN)


@given(st.lists(observations, max_size=20))
def test_distribution_stays_a_distribution_and_weights_non_negative(obs: list[EmotionObs]) -> None:
    state = fold_all(obs)
    dist = state.ekman
    assert len(dist) == 7
    assert all(p >= 0 for p in dist)
    assert math.isclose(sum(dist), 1.0, rel_tol=1e-9)
    assert state.weight >= 0
    assert -1.0 - 1e-9 <= state.valence <= 1.0 + 1e-9
    assert -1e-9 <= state.arousal <= 1.0 + 1e-9


@settings(max_examples=50)
@given(st.lists(observations, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_arrival_order_does_not_matter(obs: list[EmotionObs], rnd: random.Random) -> None:
    shuffled = list(obs)
    rnd.shuffle(shuffled)
    a, b = fold_all(obs), fold_all(shuffled)
    assert a.updated_at == b.updated_at
    assert np.allclose(a.sums, b.sums, rtol=1e-9, atol=1e-12)


@given(
    st.lists(observations, min_size=1, max_size=8), st.integers(0, 10**10), st.integers(0, 10**10)
)
def test_decaying_in_two_steps_equals_one(obs: list[EmotionObs], d1: int, d2: int) -> None:
    state = fold_all(obs)
    assert state.updated_at is not None
    t1, t2 = state.updated_at + d1, state.updated_at + d1 + d2
    two = emotion_at(emotion_at(state, t1, HL), t2, HL)
    one = emotion_at(state, t2, HL)
    assert np.allclose(two.sums, one.sums, rtol=1e-9, atol=1e-300)


@given(st.lists(observations, min_size=1, max_size=8), st.integers(1, 10**9))
def test_weight_only_decreases_with_time(obs: list[EmotionObs], dt: int) -> None:
    state = fold_all(obs)
    assert state.updated_at is not None
    later = emotion_at(state, state.updated_at + dt, HL)
    assert later.weight <= state.weight
    assert math.isclose(sum(later.ekman), 1.0)


@given(st.lists(observations, max_size=10))
def test_to_dict_round_trip_is_exact_and_json_safe(obs: list[EmotionObs]) -> None:
    state = fold_all(obs)
    again = EmotionState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


def test_each_source_fades_at_its_own_rate() -> None:
    state, _ = fold_emotion(EmotionState(), EmotionObs(-1.0, 0.8, joy(0), "review", T0), HL)
    state, summary = fold_emotion(state, EmotionObs(1.0, 0.6, joy(), "chat", T0), HL)
    assert summary.valence == pytest.approx(0.0)
    # a day later the chat (1 h half-life) has faded, the review (7 days) has not
    later = emotion_at(state, T0 + 86_400_000, HL).summary()
    assert later.valence < -0.99
    assert later.dominant == "neutral"  # the review carried no emotion: all neutral


def test_late_observation_is_decayed_not_the_state() -> None:
    state, _ = fold_emotion(EmotionState(), EmotionObs(1.0, 0.5, joy(), "chat", T0 + 3_600_000), HL)
    state, summary = fold_emotion(state, EmotionObs(-1.0, 0.5, joy(0), "chat", T0), HL)
    assert state.updated_at == T0 + 3_600_000
    assert summary.weight == pytest.approx(1.5)  # the late one counts half: one half-life old
    assert summary.valence == pytest.approx((1.0 - 0.5) / 1.5)


def test_observation_inputs_are_clipped_and_normalised() -> None:
    obs = EmotionObs(3.0, -1.0, (2, 0, 0, 2, 0, 0, 0), "chat", T0)
    assert (obs.valence, obs.arousal) == (1.0, 0.0)
    assert obs.ekman[0] == obs.ekman[3] == 0.5
    assert EmotionObs(0.0, 0.0, (0,) * 7, "chat", T0).ekman[EKMAN.index("neutral")] == 1.0
    with pytest.raises(ValueError, match="source"):
        EmotionObs(0.0, 0.0, (0,) * 7, "tweet", T0)
    with pytest.raises(ValueError, match="finite"):
        EmotionObs(math.nan, 0.0, (0,) * 7, "chat", T0)


def test_empty_state_is_neutral() -> None:
    s = EmotionState().summary()
    assert (s.valence, s.arousal, s.dominant, s.weight) == (0.0, 0.0, "neutral", 0.0)


def test_ekman_from_model_rows_uses_the_shared_label_maths() -> None:
    probs = np.zeros(len(EMOTIONS), dtype=np.float32)
    probs[EMOTIONS.index("grief")] = 0.9
    probs[EMOTIONS.index("anger")] = 0.3
    assert np.allclose(ekman_from_emotions(probs), emotions_maths.ekman(probs)[0], atol=1e-6)
    assert EKMAN[int(np.argmax(ekman_from_emotions(probs)))] == "sadness"


def test_half_lives_from_settings() -> None:
    from stream.settings import Settings

    hl = HalfLives.from_settings(Settings(half_life_chat_s=60.0))
    assert hl.of("chat") == 60.0
    assert hl.of("review") == Settings().half_life_review_s
