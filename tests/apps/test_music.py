"""The music application, CI-sized: a note LM on a few Bach chorales beats the unigram."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.apps.music import BOS, EOS, UNK, NoteVocab, check_config, ngram_nll
from rnnkit.evaluate import NGram

needs_music21 = pytest.mark.skipif(
    importlib.util.find_spec("music21") is None,
    reason="music21 is not installed (pip install 'rnnkit[music]'); it ships the Bach chorales",
)


@needs_music21
def test_quick_music_beats_unigram(tmp_path) -> None:
    records = run_app("music", quick=True, seeds=[0], out_dir=tmp_path)
    by_base = {r["baseline"].split()[0]: r for r in records if r["metric"].startswith("NLL (nats")}
    uni, bi = by_base["unigram"], by_base["bigram"]
    # an untrained LM scores about log(V) nats per note, well above the unigram
    assert uni["value"] < uni["baseline_value"] - 0.2, uni
    assert uni["beats_baseline"]
    assert bi["baseline_value"] < uni["baseline_value"]  # the bigram is the stronger baseline
    assert uni["value"] < math.log(uni["vocab_size"])
    for name in ("pianoroll.png", "val_curve.png", "test_chorale.mid", "generated_0.mid"):
        assert (tmp_path / name).stat().st_size > 0, name
    run = tmp_path / "runs" / "music-seed0"  # a normal run directory: predict/generate read it
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["test_loss"] == pytest.approx(uni["value"])
    assert (run / "artifact" / "model.safetensors").is_file()
    assert (tmp_path / "generated_0.mid").read_bytes()[:4] == b"MThd"


def test_bigram_scores_the_tokens_the_lm_predicts() -> None:
    train = [[BOS, 3, 4, 3, EOS], [BOS, 4, 3, EOS]]
    ng = NGram(5, order=2, k=0.5).fit(train)
    lu = ng.nll([[BOS]])  # -log p_unigram(<bos>), which ngram_nll takes back out
    full = ng.nll(train) * 9
    assert ngram_nll(ng, train) == pytest.approx((full - 2 * lu) / 7)
    uni = NGram(5, order=1, k=0.5).fit([s[1:] for s in train])
    assert ngram_nll(uni, train) == pytest.approx(uni.nll([s[1:] for s in train]))


def test_vocab_maps_rare_notes_to_unk() -> None:
    vocab = NoteVocab([[(69, 1.0), (69, 1.0), (71, 0.5)]], min_count=2)
    assert len(vocab) == 4
    ids = vocab.encode([(69, 1.0), (71, 0.5)])
    assert ids == [BOS, 3, UNK, EOS]
    assert vocab.decode(ids[1:]) == [(69, 1.0)]


def test_bad_recipe_names_the_field(tmp_path) -> None:
    cfg = app_config("music", quick=True)
    cfg["experiment"]["optim"]["lr"] = 0
    with pytest.raises(ValueError, match=r"optim\.lr must be a finite number > 0"):
        check_config(cfg)
    cfg = app_config("music", quick=True)
    cfg["experiment"]["trainer"]["max_epoch"] = 3
    with pytest.raises(ValueError, match=r"unknown key 'trainer\.max_epoch'"):
        check_config(cfg)
    cfg = app_config("music", quick=True)
    cfg["baselines"]["k_grid"] = []
    with pytest.raises(ValueError, match=r"'baselines\.k_grid'"):
        check_config(cfg)
    cfg = app_config("music", quick=True)
    cfg["data"]["limit"] = 3
    with pytest.raises(ValueError, match=r"'data\.limit'"):
        run_app("music", config=cfg, seeds=[0], out_dir=tmp_path)
