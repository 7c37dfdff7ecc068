"""The sentiment application, CI-sized: the RNN must beat the majority class on the test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.data import Vocab
from rnnkit.train import load_run


def test_quick_sentiment_beats_majority(tmp_path) -> None:
    records = run_app("sentiment", quick=True, seeds=[0], out_dir=tmp_path)
    by = {(r["metric"], r["baseline"].split(" (")[0]): r for r in records}
    acc = by[("accuracy", "majority class")]
    f1 = by[("macro_f1", "majority class")]
    # majority class is ~0.59 accuracy / ~0.37 macro F1; an untrained model sits at or below it
    assert acc["value"] > acc["baseline_value"] + 0.05, acc
    assert f1["value"] > f1["baseline_value"] + 0.15, f1
    assert all(0.0 <= r["value"] <= 1.0 for r in records)
    strongest = [r for r in records if r.get("strongest_baseline")]
    assert {r["metric"] for r in strongest} == {"accuracy", "macro_f1"}
    assert all(
        r["baseline_value"] > acc["baseline_value"] for r in strongest if r["metric"] == "accuracy"
    )
    assert (tmp_path / "length_buckets.png").stat().st_size > 0
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    assert json.loads((tmp_path / "records.json").read_text())[0]["app"] == "sentiment"
    (run,) = acc["runs"]  # a normal run directory; its artifact is the model that was scored
    summary = json.loads((Path(run) / "summary.json").read_text())
    assert summary["metrics"]["test_accuracy"] == pytest.approx(acc["value"], abs=1e-6)
    assert summary["metrics"]["test_f1"] == pytest.approx(f1["value"], abs=1e-6)
    loaded = load_run(run)
    exp = loaded.experiment
    assert exp.data.bucket_by_length and exp.data.word_dropout == pytest.approx(0.3)
    assert exp.scheduler.name == "onecycle" and exp.run.monitor == "val_accuracy"
    assert loaded.model.config.vocab_size == acc["vocab_size"] > Vocab.unk_id


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("experiment", "trainer", "max_epochs"), "many", r"trainer\.max_epochs"),
        (("experiment", "optim", "lr"), 0, r"optim\.lr must be a finite number > 0"),
        (("experiment", "model", "hidden"), 8, r"unknown key 'model\.hidden'"),
        (("experiment", "model", "cell"), "transformer", r"model\.cell"),
        (("baselines", "C_grid"), [], r"baselines\.C_grid"),
        (("dataset", "min_freqs"), 2, r"unknown key 'dataset\.min_freqs'"),
    ],
)
def test_bad_recipe_names_the_field(tmp_path, path, value, match) -> None:
    cfg = app_config("sentiment", quick=True)
    node = cfg
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(ValueError, match=match):
        run_app("sentiment", config=cfg, seeds=[0], out_dir=tmp_path)
    assert not (tmp_path / "runs").exists()  # checked before anything is loaded or fitted


def test_seed_ensemble_is_scored_as_one_model(tmp_path) -> None:
    cfg = app_config("sentiment", quick=True)
    cfg["max_train"] = 600
    cfg["experiment"]["model"]["ensemble"] = 2
    cfg["experiment"]["trainer"]["max_epochs"] = 2  # onecycle needs a few steps
    records = run_app("sentiment", config=cfg, seeds=[0], out_dir=tmp_path)
    acc = next(r for r in records if r["metric"] == "accuracy" and r.get("strongest_baseline"))
    assert "2-seed ensemble" in acc["model"]
    assert set(acc["val_curves"]) == {"0/0", "0/1"} and len(acc["epochs_kept"][0]) == 2
    (run,) = acc["runs"]
    summary = json.loads((Path(run) / "summary.json").read_text())
    # the app's predictions (the loaded ensemble) are the library's averaged-probability scores
    assert summary["ensemble"] == 2 and len(summary["members"]) == 2
    assert summary["metrics"]["test_accuracy"] == pytest.approx(acc["value"], abs=1e-6)
    assert summary["metrics"]["val_accuracy"] == pytest.approx(acc["val_accuracy"][0], abs=1e-6)
