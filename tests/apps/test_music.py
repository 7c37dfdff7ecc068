"""The music application, CI-sized: a note LM on a few Bach chorales beats the unigram."""

from __future__ import annotations

import csv
import importlib.util
import json
import math

import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.apps.music import BOS, EOS, UNK, NoteVocab, check_config, ngram_nll
from rnnkit.cli import main as cli
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
    # the run keeps its test chorales: `rnnkit test` re-scores them, `rnnkit predict` ranks the
    # token after each whole chorale but its last (which is <eos>)
    assert cli(["test", "--run", str(run)]) == 0
    tested = json.loads((run / "summary.json").read_text())["test"]["metrics"]
    assert tested["test_loss"] == pytest.approx(uni["value"], rel=1e-5)
    assert cli(["predict", "--run", str(run), "--out", str(tmp_path / "next.csv")]) == 0
    with (tmp_path / "next.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == uni["split_sizes"]["test"]
    assert {r["target"] for r in rows} == {str(EOS)}


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


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("data", "lim"), 40,
         r"^music recipe: unknown key 'data\.lim'; valid keys of 'data': name, limit,"),
        (("sampling",), {"n": 1},
         r"^music recipe: unknown key 'sampling\.n'; valid keys at the top level: data, tokens,"),
        (("generate", "seed"), 1, r"^music recipe: unknown key 'generate\.seed'"),
        (("tokens", "min_count"), 1.5, r"^music recipe: tokens\.min_count: Expected a int"),
        (("generate", "samples"), "two", r"^music recipe: generate\.samples: Expected a int"),
        (("data", "name"), "jsb", r"^music recipe: data\.name: .*Got value: jsb"),
        (("data", "limit"), 3, r"^music recipe: data\.limit must be null or >= 10, got 3$"),
        (("data", "val_fraction"), 0.7, r"data\.val_fraction must be in \(0, 0\.5\), got 0\.7"),
        (("tokens", "min_count"), 0, r"tokens\.min_count must be >= 1, got 0"),
        (("baselines", "k_grid"), [], r"baselines\.k_grid must be a non-empty list"),
        (("baselines", "k_grid"), [0.1, -1], r"baselines\.k_grid .*got \[0\.1, -1\.0\]"),
        (("generate", "temperature"), 0, r"generate\.temperature must be > 0"),
        (("generate", "top_p"), 1.5, r"generate\.top_p must be null or in \(0, 1\]"),
        (("experiment", "optim", "lr"), 0,
         r"^music recipe, field 'experiment': optim\.lr must be a finite number > 0"),
        (("experiment", "trainer", "max_epoch"), 3,
         r"field 'experiment': unknown key 'trainer\.max_epoch'"),
    ],
)  # fmt: skip
def test_bad_recipe_is_one_line_naming_the_field(path: tuple, value: object, message: str) -> None:
    cfg = app_config("music", quick=True)
    check_config(cfg)  # the shipped recipe is fine
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message) as err:
        check_config(cfg)
    assert "\n" not in str(err.value)


@needs_music21
def test_recipe_is_checked_before_the_chorales_load(tmp_path) -> None:
    cfg = app_config("music", quick=True)
    cfg["data"]["limit"] = 3
    with pytest.raises(ValueError, match=r"data\.limit must be null or >= 10"):
        run_app("music", config=cfg, seeds=[0], out_dir=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_settings_match_the_shipped_recipe() -> None:
    """The typed settings read every key of the recipe (full and quick) as it is written."""
    for quick in (False, True):
        cfg = app_config("music", quick=quick)
        settings = check_config(cfg)
        assert settings.data.limit == cfg["data"]["limit"]
        assert settings.tokens.min_count == cfg["tokens"]["min_count"]
        assert settings.baselines.k_grid == cfg["baselines"]["k_grid"]
        assert vars(settings.generate) == cfg["generate"]
