"""Pure label maths on model outputs: GoEmotions -> Ekman groups, arousal, readable labels.

Plain numpy, no ONNX Runtime: the pure core (``stream/core``) and the model adapter share it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from stream.ports import EKMAN, EMOTIONS, SENTIMENTS

FloatArray = npt.NDArray[np.float32]

# The GoEmotions authors' grouping of their 27 emotions (+ neutral) into Ekman's six (+ neutral).
EKMAN_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
        "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}  # fmt: skip

# Index of each emotion's Ekman group (EMOTIONS order), built once from the table above.
EKMAN_OF: npt.NDArray[np.intp] = np.array(
    [EKMAN.index(next(g for g, members in EKMAN_GROUPS.items() if e in members)) for e in EMOTIONS],
    dtype=np.intp,
)

# Rough activation of each emotion on Russell's circumplex, 0 = calm .. 1 = highly aroused.
# Our own coarse placement: fine enough to tell a furious or thrilled user from a sad or calm one.
EMOTION_AROUSAL: dict[str, float] = {
    "admiration": 0.50, "amusement": 0.65, "anger": 0.85, "annoyance": 0.65, "approval": 0.35,
    "caring": 0.35, "confusion": 0.50, "curiosity": 0.55, "desire": 0.65, "disappointment": 0.35,
    "disapproval": 0.50, "disgust": 0.60, "embarrassment": 0.55, "excitement": 0.90, "fear": 0.85,
    "gratitude": 0.40, "grief": 0.40, "joy": 0.70, "love": 0.55, "nervousness": 0.75,
    "optimism": 0.50, "pride": 0.60, "realization": 0.45, "relief": 0.25, "remorse": 0.35,
    "sadness": 0.25, "surprise": 0.80, "neutral": 0.20,
}  # fmt: skip
_MEMBERSHIP = np.eye(len(EKMAN), dtype=np.float64)[EKMAN_OF]  # (28, 7) one-hot emotion -> group
_AROUSAL = np.array([EMOTION_AROUSAL[e] for e in EMOTIONS], dtype=np.float32)
_NEUTRAL = EMOTIONS.index("neutral")


def _as_rows(emotions: npt.ArrayLike) -> FloatArray:
    rows = np.asarray(emotions, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != len(EMOTIONS):
        raise ValueError(f"expected (n, {len(EMOTIONS)}) emotion probabilities, got {rows.shape}")
    return rows


def ekman_scores(emotions: npt.ArrayLike) -> FloatArray:
    """Probability of each Ekman group, (n, 7): noisy-OR of its members, 1 - prod(1 - p).

    A group is present when any member emotion is, as in the GoEmotions grouping. Chosen by
    measurement, not taste: on 2,170 GoEmotions validation rows (carved from train.tsv, seed 15)
    the trained model's normalised noisy-OR had Brier 0.395 / NLL 0.766 against the gold groups,
    the per-group max 0.402 / 0.776, the sum 0.398 / 0.766 (argmax accuracy 0.707 for all three).
    """
    rows = np.clip(_as_rows(emotions), 0.0, 1.0 - 1e-7)
    absent = np.exp(np.log1p(-rows) @ _MEMBERSHIP)
    return (1.0 - absent).astype(np.float32)


def ekman(emotions: npt.ArrayLike) -> FloatArray:
    """Ekman distribution per text, (n, 7) rows summing to 1: group probabilities normalised.

    A row with no evidence at all (every probability 0) is all neutral.
    """
    scores = ekman_scores(emotions)
    total = scores.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0.0
    scores[empty, EKMAN.index("neutral")] = 1.0
    total[empty] = 1.0
    return (scores / total).astype(np.float32)


def arousal(emotions: npt.ArrayLike, prior: float = 0.05) -> FloatArray:
    """Arousal in [0, 1] per text: per-emotion activation averaged by probability.

    ``prior`` is a pseudo-probability of "neutral" so that a row of near-zero probabilities reads
    as calm instead of dividing noise by noise.
    """
    rows = _as_rows(emotions)
    weights = rows.copy()
    weights[:, _NEUTRAL] += prior
    return ((weights @ _AROUSAL) / weights.sum(axis=1)).astype(np.float32)


def sentiment_labels(sentiment: npt.ArrayLike) -> list[str]:
    """Most probable of negative / neutral / positive for each row."""
    probs = np.asarray(sentiment, dtype=np.float32).reshape(-1, len(SENTIMENTS))
    return [SENTIMENTS[i] for i in probs.argmax(axis=1)]


def emotion_thresholds(thresholds: float | Mapping[str, float], default: float = 0.5) -> FloatArray:
    """Per-emotion decision thresholds, EMOTIONS order, from one number or a name -> value map."""
    if isinstance(thresholds, int | float):
        return np.full(len(EMOTIONS), float(thresholds), dtype=np.float32)
    unknown = set(thresholds) - set(EMOTIONS)
    if unknown:
        raise ValueError(f"thresholds for unknown emotions: {sorted(unknown)}")
    return np.array([float(thresholds.get(e, default)) for e in EMOTIONS], dtype=np.float32)


def emotion_labels(emotions: npt.ArrayLike, thresholds: npt.ArrayLike) -> list[list[str]]:
    """Names of the emotions at or above their threshold, most probable first, for each row."""
    rows = _as_rows(emotions)
    cut = np.broadcast_to(np.asarray(thresholds, dtype=np.float32), rows.shape)
    out: list[list[str]] = []
    for row, row_cut in zip(rows, cut, strict=True):
        hits = np.flatnonzero(row >= row_cut)
        out.append([EMOTIONS[i] for i in hits[np.argsort(-row[hits], kind="stable")]])
    return out


def top_emotions(emotions: npt.ArrayLike, k: int = 3) -> list[list[tuple[str, float]]]:
    """The k most probable emotions of each row with their probabilities."""
    rows = _as_rows(emotions)
    order = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    return [
        [(EMOTIONS[i], float(row[i])) for i in idx] for row, idx in zip(rows, order, strict=True)
    ]
