"""Sequence classification (UCR/UEA sets vs 1-NN DTW): the CI-sized run and the DTW baseline."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.apps.sequence_classification import (
    PUBLISHED_DTW,
    dtw_distances,
    frame_sequences,
    nn_dtw_accuracy,
)
from rnnkit.data import SequenceDataset, load
from rnnkit.evaluate import stratified_holdout
from rnnkit.models import SequenceClassifier
from rnnkit.train import ClassificationExperiment, load_run


def test_quick_run_beats_the_majority_class(tmp_path) -> None:
    records = run_app("sequence_classification", quick=True, seeds=[0], out_dir=tmp_path)
    majority = [r for r in records if r["baseline"] == "majority class"]
    assert {r["dataset"] for r in majority} == {"japanese_vowels", "italy_power_demand"}
    for r in majority:
        # an untrained model sits at the majority rate (1/9 for the speakers, 1/2 for the seasons)
        assert r["value"] > r["baseline_value"] + 0.2, r
        assert r["split"] == "test" and r["values"] and r["wall_s"] >= 0
        assert r["best_epochs"][0] <= r["epochs_run"][0] <= 12
        # a normal run directory: the trainer's config, summary and artifact
        (run,) = r["runs"]
        summary = json.loads((Path(run) / "summary.json").read_text())
        assert summary["monitor"] == "val_accuracy" and summary["monitor_mode"] == "max"
        assert summary["metrics"]["test_accuracy"] == pytest.approx(r["value"])
        loaded = load_run(run)
        assert isinstance(loaded.model, SequenceClassifier)
        assert isinstance(loaded.experiment, ClassificationExperiment)
        assert loaded.experiment.data.source == r["dataset"]
        assert loaded.experiment.seed == 0
    published = [r for r in records if "published" in r["baseline"]]
    assert all(r["source"] and r["headline"] is False for r in published)
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    assert (tmp_path / "records.json").is_file()


def _naive_dtw(a: np.ndarray, b: np.ndarray) -> float:
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i, j in itertools.product(range(len(a)), range(len(b))):
        cost = float(((a[i] - b[j]) ** 2).sum())
        acc[i + 1, j + 1] = cost + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
    return float(acc[-1, -1])


def test_dtw_matches_the_textbook_recursion_on_ragged_multichannel_series() -> None:
    rng = np.random.default_rng(0)
    qs = [rng.normal(size=(n, 3)) for n in (4, 9, 6)]
    rs = [rng.normal(size=(n, 3)) for n in (7, 3, 9, 5)]
    got = dtw_distances(qs, rs, max_cells=50)  # tiny chunks exercise the chunking too
    want = np.array([[_naive_dtw(q, r) for r in rs] for q in qs])
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert dtw_distances([qs[0]], [qs[0]])[0, 0] == 0.0
    shifted = np.concatenate([qs[0][:1], qs[0]])  # a repeated step costs nothing to warp
    assert dtw_distances([shifted], [qs[0]])[0, 0] == pytest.approx(0.0)


def test_computed_dtw_reproduces_the_published_ucr_figure() -> None:
    raw = load("italy_power_demand", scale=False)
    acc = nn_dtw_accuracy(raw.train, raw.test)
    assert acc == pytest.approx(PUBLISHED_DTW["italy_power_demand"]["accuracy"], abs=1e-3)


def test_framing_keeps_every_step() -> None:
    data = SequenceDataset([np.arange(7.0)[:, None], np.arange(3.0)[:, None]], [0, 1])
    framed = frame_sequences(data, 3, "x")
    assert framed.lengths == [3, 1]
    assert framed.sequences[0].tolist() == [[0, 1, 2], [3, 4, 5], [6, 6, 6]]


def test_validation_split_is_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [10, 5, 2])
    keep, held = stratified_holdout(labels, 0.2, seed=0)
    assert np.bincount(labels[held]).tolist() == [2, 1, 1]  # every class held out, never all
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(17))
    again, _ = stratified_holdout(labels, 0.2, seed=0)
    other, _ = stratified_holdout(labels, 0.2, seed=1)
    assert keep.tolist() == again.tolist() and keep.tolist() != other.tolist()


def test_bad_recipe_names_the_field(tmp_path) -> None:
    cfg = app_config("sequence_classification", quick=True)

    def fails(match: str, **over: object) -> None:
        with pytest.raises(ValueError, match=match):
            run_app("sequence_classification", config={**cfg, **over}, seeds=[0], out_dir=tmp_path)

    fails("datasets", datasets=["mnist"])
    fails(r"unknown key 'frames'", frames=3)
    fails(r"optim\.lr must be a finite number > 0", experiment={"optim": {"lr": -1}})
    fails(r"unknown key 'model\.cel'", experiment={"model": {"cel": "gru"}})
    # the old per-app training block is gone: training keys are `rnnkit fit`'s
    fails(r"unknown key 'train\.epochs'", train={"epochs": 3})
    assert not (tmp_path / "runs").exists()  # every check fails before anything is fitted
