"""Digits as sequences: the CI-sized run, the fixed stratified split and recipe errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.apps.digits import split_indices
from rnnkit.train import load_run


def test_quick_run_beats_the_majority_class(tmp_path) -> None:
    records = run_app("digits", quick=True, seeds=[0], out_dir=tmp_path)
    by_baseline = {r["baseline"]: r for r in records if r["dataset"] == "digits_rows"}
    majority = by_baseline["majority class"]
    assert majority["baseline_value"] < 0.15  # ten balanced classes
    assert majority["value"] > 0.6, majority  # an untrained model is near 0.1
    logistic = by_baseline["logistic regression, 64 pixels"]
    assert logistic["baseline_value"] > 0.9  # the strong baseline is really fitted
    assert majority["split_sizes"] == {"train": 1167, "val": 270, "test": 360}
    assert (tmp_path / "confusion.png").stat().st_size > 0
    (run,) = majority["runs"]  # a normal run directory whose artifact is the selected model
    summary = json.loads((Path(run) / "summary.json").read_text())
    assert summary["metrics"]["test_accuracy"] == pytest.approx(majority["value"])
    assert summary["monitor"] == "val_accuracy"
    assert summary["parameters"] == majority["params"]
    assert load_run(run).model.config.input_size == 8  # a row of 8 pixels per step


def test_split_is_fixed_stratified_and_disjoint() -> None:
    labels = np.repeat(np.arange(10), 50)
    a = split_indices(labels, test_fraction=0.2, val_fraction=0.1, seed=0)
    b = split_indices(labels, test_fraction=0.2, val_fraction=0.1, seed=0)
    for x, y in zip(a, b, strict=True):
        assert x.tolist() == y.tolist()
    train, val, test = a
    assert len(set(train) | set(val) | set(test)) == 500
    assert np.bincount(labels[test]).tolist() == [10] * 10
    assert np.bincount(labels[val]).tolist() == [5] * 10


def test_bad_recipe_names_the_field(tmp_path) -> None:
    cfg = app_config("digits", quick=True)
    with pytest.raises(ValueError, match=r"split\.test_fraction"):
        run_app("digits", config={**cfg, "split": {"test_fraction": 1.5}}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="datasets"):
        run_app("digits", config={**cfg, "datasets": ["mnist"]}, out_dir=tmp_path)
    bad = {**cfg, "experiment": {**cfg["experiment"], "trainer": {"max_epoch": 3}}}
    with pytest.raises(ValueError, match=r"unknown key 'trainer\.max_epoch'"):
        run_app("digits", config=bad, seeds=[0], out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"split\.test_fraction \+ split\.val_fraction"):
        split_indices(np.arange(10) % 2, test_fraction=0.6, val_fraction=0.5, seed=0)
