"""The language-model application, CI-sized: char LSTM and word GRU on pydoc_topics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.data.lm_stream import load_corpus
from rnnkit.evaluate import NGram
from rnnkit.train.config import TextDataConfig


def test_quick_run_beats_the_unigram(tmp_path: Path) -> None:
    records = run_app("language_model", quick=True, seeds=[0], out_dir=tmp_path)
    by = {(r["corpus"], r["baseline"].split()[0]): r for r in records}
    char = by[("pydoc", "unigram")]
    word = by[("pydoc-words", "unigram")]
    assert char["metric"] == "bits/char" and word["metric"] == "perplexity"
    # An untrained model scores about log2(V) bits (6.7 for pydoc's 107 symbols), worse than the
    # unigram's 4.6; the trained one must beat the unigram clearly.
    assert char["value"] < char["baseline_value"] - 0.5, char
    assert word["value"] < 0.8 * word["baseline_value"], word
    # The baselines score the same test tokens as the model: the bigram beats the unigram.
    assert by[("pydoc", "bigram")]["baseline_value"] < char["baseline_value"]
    assert all(math.isfinite(r["value"]) and r["seeds"] == [0] for r in records)
    assert (tmp_path / "val_curves.png").stat().st_size > 0
    sample = (tmp_path / "samples-pydoc.txt").read_text(encoding="utf-8")
    assert "LSTM, seed 0" in sample and len(sample) > 80
    assert json.loads((tmp_path / "records.json").read_text())[0]["app"] == "language_model"


def test_bad_recipe_names_the_field(tmp_path: Path) -> None:
    cfg = app_config("language_model", quick=True)
    cfg["corpora"][0]["model"] = {"hiden_size": 8}
    with pytest.raises(ValueError, match="hiden_size"):
        run_app("language_model", config=cfg, seeds=[0], out_dir=tmp_path)
    cfg = app_config("language_model", quick=True)
    cfg["corpora"][0]["cells"] = []
    with pytest.raises(ValueError, match=r"corpora\[0\]\.cells"):
        run_app("language_model", config=cfg, seeds=[0], out_dir=tmp_path)
    cfg = app_config("language_model", quick=True)
    cfg["ngram_k"] = [0]
    with pytest.raises(ValueError, match="ngram_k"):
        run_app("language_model", config=cfg, seeds=[0], out_dir=tmp_path)


def test_word_corpus_maps_rare_words_to_unk_in_every_split() -> None:
    cfg = TextDataConfig(source="pydoc_topics", level="word", lower=True, min_freq=3)
    corpus = load_corpus(cfg)
    vocab = corpus.vocab
    assert vocab.index("the") > vocab.unk_id and "The" not in vocab  # lower-cased words
    counts = NGram(len(vocab), order=1, k=0.0).fit([corpus.train]).uni
    assert counts[vocab.unk_id] > 0  # rare training words became <unk>
    assert counts[4:].min() >= 3  # every kept word was seen at least min_freq times
    assert (corpus.test == vocab.unk_id).any() and corpus.test.max() < len(vocab)
    with pytest.raises(ValueError, match=r"data\.min_freq"):
        TextDataConfig(level="word", min_freq=0)
