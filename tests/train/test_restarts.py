"""Random restarts selected on validation (``trainer.restarts``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from rnnkit.train import fit
from rnnkit.train.config import (
    EarlyStoppingConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    SequenceDataConfig,
    TrainerConfig,
)
from rnnkit.train.specs import ClassificationExperiment, ClassifierSpec


def _experiment(tmp_path: Path, *, seed: int, restarts: int) -> ClassificationExperiment:
    return ClassificationExperiment(
        seed=seed,
        data=SequenceDataConfig(
            source="synthetic_parity", seq_len=6, num_samples=200, batch_size=32
        ),
        model=ClassifierSpec(hidden_size=8, cell="gru"),
        optim=OptimConfig(name="adam", lr=1e-2, weight_decay=0.0),
        scheduler=SchedulerConfig(name="none"),
        trainer=TrainerConfig(
            max_steps=8,
            val_check_interval=4,
            enable_progress_bar=False,
            num_threads=1,
            restarts=restarts,
            restart_steps=4,
        ),
        early_stopping=EarlyStoppingConfig(enabled=False),
        run=RunConfig(root=str(tmp_path), name="r", plot=False),
    )


def test_the_probe_with_the_best_validation_score_is_trained_in_full(tmp_path: Path) -> None:
    result = fit(_experiment(tmp_path, seed=1, restarts=3))
    info = result.summary["restarts"]
    scores = {int(s): v for s, v in info["probe_scores"].items()}
    assert sorted(scores) == [3, 4, 5]  # seed * K .. seed * K + K - 1: disjoint across seeds
    assert info["monitor"] == "val_loss"
    assert info["chosen_seed"] == min(scores, key=lambda s: scores[s])
    assert result.summary["seed"] == info["chosen_seed"]
    for seed in scores:  # every probe is a normal run of restart_steps steps
        probe = json.loads(
            (result.run_dir / "restarts" / f"seed-{seed}" / "summary.json").read_text()
        )
        assert probe["steps"] == 4 and probe["metrics"]["val_loss"] == pytest.approx(scores[seed])
    # config.yaml reproduces the final run alone: the chosen seed, no restarts.
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert recorded["seed"] == info["chosen_seed"] and recorded["trainer"]["restarts"] == 1
    # The same seed trained without restarts gives the same weights' validation loss.
    again = fit(
        dataclasses.replace(
            _experiment(tmp_path, seed=info["chosen_seed"], restarts=1),
            run=RunConfig(root=str(tmp_path), name="again", plot=False),
        )
    )
    assert again.metrics["val_loss"] == pytest.approx(result.metrics["val_loss"], rel=1e-5)


def test_restarts_must_be_positive() -> None:
    with pytest.raises(
        ValueError, match=r"trainer.restarts must be >= 1 \(1: no restarts\), got 0"
    ):
        TrainerConfig(restarts=0)
