"""The ReDial backtest: the replay equals the worker's Processor, no test point sees later
messages or the questionnaire, and ``moodstream backtest`` end to end on fixture dialogues."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from stream.cli import cli
from stream.contract.records import Chat
from stream.core.rank import RankParams
from stream.offline import redial_backtest as rb
from stream.offline.redial import Dialogue, Questionnaire, load_dialogues, parse_dialogue
from stream.ports import EMOTIONS, Scores
from stream.settings import Settings
from stream.worker.processor import Decoded, Processor
from tests.fixtures.tiny_model import build_tiny_model

MOVIES = {str(100 + i): f"Movie {i}" for i in range(24)}
GOOD = ("great", "loved", "good")
BAD = ("awful", "hated", "bad")


def dialogue_json(k: int, rng: np.random.Generator) -> dict[str, Any]:
    """A seeker names two movies of a cluster (4 clusters of 6), likes or pans them; the
    recommender suggests a third movie of the same cluster; the seeker answers."""
    cluster = k % 4
    members = [str(100 + cluster * 6 + j) for j in range(6)]
    a, b, c, d = (str(x) for x in rng.choice(members, size=4, replace=False))
    word = GOOD[k % 3] if k % 5 else BAD[k % 3]
    msgs = [
        (0, f"hi i {word} @{a} and @{b}"),
        (1, f"have you seen @{c} ?"),
        (0, f"yes it was {word}"),
        (1, f"then try @{d}"),
        (0, "thanks"),
    ]
    return {
        "conversationId": str(1000 + k),
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "messages": [
            {"messageId": i, "senderWorkerId": 1 + s, "text": t, "timeOffset": 5 * i}
            for i, (s, t) in enumerate(msgs)
        ],
        "movieMentions": {m: MOVIES[m] for m in (a, b, c, d)},
        "initiatorQuestions": {
            m: {"suggested": int(m in (c, d)), "seen": 1, "liked": int(word in GOOD)}
            for m in (a, b, c, d)
        },
        "respondentQuestions": {},
    }


def fixture_data(n: int = 40) -> tuple[list[Dialogue], dict[str, Questionnaire]]:
    rng = np.random.default_rng(1)
    ds, qs = [], {}
    for k in range(n):
        d, q = parse_dialogue(dialogue_json(k, rng))
        ds.append(d)
        qs[d.conversation_id] = q
    return ds, qs


class TableModel:
    """A SentimentModel whose scores are a function of the text (any batch, same rows)."""

    version = "table-1"
    variant = "int8"

    def predict(self, texts: Sequence[str]) -> Scores:
        n = len(texts)
        sent = np.zeros((n, 3), np.float32)
        emb = np.zeros((n, 384), np.float32)
        for i, t in enumerate(texts):
            good = any(w in t for w in GOOD)
            bad = any(w in t for w in BAD)
            sent[i] = (0.8, 0.1, 0.1) if bad else ((0.05, 0.15, 0.8) if good else (0.2, 0.6, 0.2))
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).normal(size=384)
            emb[i] = v / np.linalg.norm(v)
        emotions = np.full((n, len(EMOTIONS)), 0.1, np.float32)
        return Scores(sent, emotions, emb, np.zeros(n, np.bool_))


def make_plan(train: list[Dialogue], dev: list[Dialogue], qs: dict[str, Questionnaire]) -> Any:
    plan, _ = rb.make_plan(
        train, dev, MOVIES, qs, TableModel(), Settings(), rb.Protocol(depth=30, tune_share=0.2)
    )
    return plan


def test_replay_gives_the_processors_lists() -> None:
    ds, qs = fixture_data()
    plan = make_plan(ds[:30], ds[30:], qs)
    settings = Settings()
    params = rb._params({"chat_interest": 0.5}, {})
    up, ip = rb.user_params(settings, params), rb.item_params(settings)
    variant = rb.VARIANTS["sentiment_aware"]
    model = TableModel()
    proc = Processor(settings, model, plan.index, user_params=up, item_params=ip)
    replay = rb.Replayer(plan.index, up, ip, settings.candidates)
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    compared = 0
    for step in plan.steps:
        if step.point is not None:
            p = step.point
            for rp in (RankParams(top_k=10), RankParams(variant="item_cf", top_k=10)):
                proc.rank_params = rp
                proc._popular_at = -(10**18)  # a fresh popular list, as the replay computes
                got = proc.recommend(p.user_id, "t", p.before_ts, users, p.before_ts)
                want = replay.recommend(p.user_id, p.before_ts, rp)
                assert got is not None
                assert [i["item_id"] for i in got["items"]] == want
                compared += 1
            continue
        e = step.event
        assert e is not None
        record = Chat(
            **{k: e[k] for k in ("event_id", "user_id", "text", "session_id", "ts")},
            item_id=e.get("item_id"),
        )
        batch = [Decoded("chats", record)]
        out = proc.fold_batch(batch, proc.score(batch), users, now_ms=e["ts"])
        for _, value in out.item_events:
            proc.fold_item(value, items)
        replay.fold(rb.observe(plan, step, variant, replay.vector(e.get("item_id"))))
    assert compared > 20
    assert any(proc.board.neighbours_of(m) for m in MOVIES)


def test_no_point_sees_a_later_message_or_the_questionnaire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds, qs = fixture_data()
    plan = make_plan(ds[:30], ds[30:], qs)
    folded: list[int] = []
    original_fold = rb.Replayer.fold
    original_rec = rb.Replayer.recommend

    def fold(self: rb.Replayer, obs: Any) -> None:
        folded.append(obs.ts)
        original_fold(self, obs)

    def recommend(self: rb.Replayer, user_id: str, now_ms: int, rp: RankParams) -> list[str]:
        assert max(folded, default=0) < now_ms  # only strictly earlier messages
        return original_rec(self, user_id, now_ms, rp)

    original_replay = rb.replay

    def replay(*args: Any, **kwargs: Any) -> Any:
        folded.clear()
        return original_replay(*args, **kwargs)

    monkeypatch.setattr(rb, "replay", replay)
    monkeypatch.setattr(rb.Replayer, "fold", fold)
    monkeypatch.setattr(rb.Replayer, "recommend", recommend)
    settings, protocol = Settings(), rb.Protocol(depth=30)
    runs = {}
    for name in ("sentiment_aware", "rating_oracle"):
        v = rb.VARIANTS[name]
        (res,) = rb.replay(plan, v, rb._params({}, {}), settings, protocol)
        runs[name] = res.ranks
    # flip every questionnaire answer: only the oracle may move
    flipped = {
        cid: Questionnaire(
            cid,
            {m: type(a)(a.suggested, a.seen, 1 - a.liked) for m, a in q.seeker.items()},
            q.recommender,
        )
        for cid, q in qs.items()
    }
    plan2 = make_plan(ds[:30], ds[30:], flipped)
    (same,) = rb.replay(
        plan2, rb.VARIANTS["sentiment_aware"], rb._params({}, {}), settings, protocol
    )
    assert same.ranks == runs["sentiment_aware"]
    (moved,) = rb.replay(
        plan2, rb.VARIANTS["rating_oracle"], rb._params({}, {}), settings, protocol
    )
    assert moved.ranks != runs["rating_oracle"]
    # cutting the last dialogue after its first recommender turn changes no earlier point
    last = ds[-1]
    cut = Dialogue(last.conversation_id, last.seeker_id, last.recommender_id, last.turns[:2])
    plan3 = make_plan(ds[:30], [*ds[30:-1], cut], qs)
    (short,) = rb.replay(
        plan3, rb.VARIANTS["sentiment_aware"], rb._params({}, {}), settings, protocol
    )
    points = [s.point for s in plan.steps if s.point is not None and s.part == "dev"]
    keep = [
        i
        for i, p in enumerate(points)
        if p is not None and (p.conversation_id != last.conversation_id or p.turn < 2)
    ]
    assert len(keep) == len(points) - 1
    assert short.ranks == [runs["sentiment_aware"][i] for i in keep]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=16)


def test_cli_on_fixture_dialogues(tiny_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [dialogue_json(k, rng) for k in range(40)]
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:32]), encoding="utf-8")
    dev.write_text("".join(json.dumps(r) + "\n" for r in rows[32:]), encoding="utf-8")
    (tmp_path / "movies_with_mentions.csv").write_text(
        "movieId,movieName,nbMentions\n" + "".join(f"{m},{n},1\n" for m, n in MOVIES.items()),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = [
        "backtest",
        "--train",
        str(train),
        "--dataset",
        str(dev),
        "--out",
        str(out),
        "--model-dir",
        str(tiny_dir),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--resamples",
        "50",
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["variants"]) == set(rb.DEFAULT_VARIANTS)
    sa = metrics["variants"]["sentiment_aware"]
    assert {"recall@1", "recall@10", "recall@50", "ndcg@10", "mrr", "coverage"} <= set(sa)
    assert set(sa["ci95_vs_popularity"]["recall@10"]) == {"diff", "low", "high"}
    assert metrics["dataset"]["dev_points"] == len(load_dialogues(dev)[0]) * 2
    report = (out / "report.md").read_text()
    assert "moodstream backtest --train" in report and "| sentiment_aware |" in report
    # the folder form splits the same files itself
    folder = tmp_path / "redial"
    folder.mkdir()
    (folder / "redial_train_partial.jsonl").write_text(
        train.read_text() + dev.read_text(), encoding="utf-8"
    )
    args2 = ["backtest", "--redial", str(folder), "--out", str(tmp_path / "out2")]
    args2 += [*args[args.index("--model-dir") :], "--variants", "sentiment_aware", "--no-tune"]
    result = CliRunner().invoke(cli, args2, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "out2" / "metrics.json").read_text())
    assert set(again["variants"]) == {"sentiment_aware"}
    assert again["dataset"]["dev_dialogues"] == 4
