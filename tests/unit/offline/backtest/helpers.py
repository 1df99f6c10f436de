"""Synthetic reviews and a word-counting model shared by the backtest tests."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Sequence

import numpy as np

from stream.contract.records import Review
from stream.offline import backtest as bt
from stream.ports import Scores
from stream.settings import Settings

DAY = 86_400_000
T0 = calendar.timegm((2013, 1, 1, 0, 0, 0)) * 1000
TOPICS = ("guitar", "drums", "piano")
FUTURE = "guitar-future"


class WordModel:
    """A fake ``SentimentModel``: each word has a fixed random vector and a text embeds as the
    normalised sum of its words; "good"/"bad" drive the sentiment. Counts the texts it scores."""

    version = "words-1"
    dim = 32

    def __init__(self) -> None:
        self.scored = 0

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=self.dim)

    def predict(self, texts: Sequence[str]) -> Scores:
        self.scored += len(texts)
        n = len(texts)
        sentiment = np.tile(np.float32([0.1, 0.8, 0.1]), (n, 1))
        emb = np.zeros((n, self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = text.lower().split()
            if "good" in words:
                sentiment[i] = (0.05, 0.15, 0.8)
            if "bad" in words:
                sentiment[i] = (0.8, 0.15, 0.05)
            v = sum((self._word(w) for w in words), np.zeros(self.dim))
            emb[i] = v / max(np.linalg.norm(v), 1e-9)
        emotions = np.full((n, 28), 0.05, dtype=np.float32)
        return Scores(sentiment, emotions, emb, np.zeros(n, dtype=bool))


def synthetic_reviews(seed: int = 0, users: int = 45, per_user: int = 9) -> list[Review]:
    """Users who each stick to one topic; ``FUTURE`` is first reviewed on day 250 and is then the
    most reviewed guitar item, so a leak would show it early."""
    rng = np.random.default_rng(seed)
    events: list[Review] = []
    for u in range(users):
        topic = TOPICS[u % len(TOPICS)]
        days = sorted(rng.choice(300, size=per_user, replace=False).tolist())
        for d in days:
            if topic == "guitar" and d >= 250 and rng.random() < 0.7:
                item = FUTURE
            else:
                item = f"{topic}-{int(rng.integers(0, 8))}"
            stars = int(rng.choice([1, 2, 4, 5, 5]))
            mood = "good" if stars >= 4 else "bad"
            text = f"{topic} {item} {mood}"
            ts = T0 + d * DAY
            events.append(
                Review(
                    event_id=f"u{u}:{item}:{ts}",
                    user_id=f"u{u}",
                    item_id=item,
                    text=text,
                    ts=ts,
                    rating=stars,
                )
            )
    events.sort(key=lambda e: e.ts)
    return events


def timeline(events: list[Review], protocol: bt.Protocol) -> bt.Timeline:
    scores, _ = bt.score_texts([e.text for e in events], WordModel())
    return bt.build_timeline(events, scores, protocol)


SETTINGS = Settings()
FAST = bt.Protocol(k=10, depth=20, warmup="30d", resamples=200)
