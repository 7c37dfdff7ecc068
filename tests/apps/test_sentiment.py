"""The sentiment application, CI-sized: the RNN must beat the majority class on the test split."""

from __future__ import annotations

import json

import pytest

from rnnkit.apps import app_config, run_app


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


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("train", "epochs"), 0, "'train.epochs'"),
        (("train", "lr"), "fast", "'train.lr'"),
        (("model", "hidden"), 8, "'model.hidden'"),
        (("model", "cell"), "transformer", "'model'.*cell"),
        (("baselines", "C_grid"), [], "'baselines.C_grid'"),
    ],
)
def test_bad_recipe_names_the_field(tmp_path, path, value, match) -> None:
    cfg = app_config("sentiment", quick=True)
    cfg[path[0]][path[1]] = value
    with pytest.raises(ValueError, match=match):
        run_app("sentiment", config=cfg, seeds=[0], out_dir=tmp_path)


def test_missing_field_is_named(tmp_path) -> None:
    cfg = app_config("sentiment", quick=True)
    del cfg["train"]["patience"]
    with pytest.raises(ValueError, match=r"'train\.patience' is missing"):
        run_app("sentiment", config=cfg, seeds=[0], out_dir=tmp_path)
