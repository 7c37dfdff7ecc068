"""``model.ensemble: K``: K member runs, averaged probabilities, loadable and predictable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from rnnkit.data.batching import collate
from rnnkit.train.artifact import load_run
from rnnkit.train.config import (
    EarlyStoppingConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    SequenceDataConfig,
    TrainerConfig,
)
from rnnkit.train.predict import predict_run
from rnnkit.train.specs import ClassificationExperiment, ClassifierSpec
from rnnkit.train.tasks.classify import synthetic_parts
from rnnkit.train.trainer import fit


def _experiment(tmp_path: Path, *, ensemble: int) -> ClassificationExperiment:
    return ClassificationExperiment(
        seed=3,
        data=SequenceDataConfig(
            source="synthetic_parity", seq_len=6, num_samples=200, batch_size=32
        ),
        model=ClassifierSpec(hidden_size=8, cell="gru", ensemble=ensemble),
        optim=OptimConfig(name="adam", lr=1e-2, weight_decay=0.0),
        scheduler=SchedulerConfig(name="none"),
        trainer=TrainerConfig(
            max_steps=12, val_check_interval=6, enable_progress_bar=False, num_threads=1
        ),
        early_stopping=EarlyStoppingConfig(enabled=False),
        run=RunConfig(root=str(tmp_path), name="ens", plot=False, test=True),
    )


def test_ensemble_of_two_averages_its_members_probabilities(tmp_path: Path) -> None:
    result = fit(_experiment(tmp_path, ensemble=2))
    run = result.run_dir
    members = [run / "members" / "seed3", run / "members" / "seed4"]  # seed, seed + 1
    assert all((m / "artifact" / "model.json").is_file() for m in members)
    body = json.loads((run / "ensemble.json").read_text())
    assert [m["seed"] for m in body["members"]] == [3, 4]
    assert result.summary["ensemble"] == 2
    assert "test_accuracy" in result.metrics and "val_accuracy" in result.metrics

    # The loaded ensemble's probabilities are the mean of the loaded members' probabilities.
    ensemble = load_run(run).model
    singles = [load_run(m).model for m in members]
    test = synthetic_parts(_experiment(tmp_path, ensemble=2).data).test
    batch = collate(test[:16])
    with torch.no_grad():
        probs = ensemble(batch.x, lengths=batch.lengths).softmax(-1)
        each = [m(batch.x, lengths=batch.lengths).softmax(-1) for m in singles]
    torch.testing.assert_close(probs, torch.stack(each).mean(0))
    assert not torch.allclose(each[0], each[1])  # two seeds, two different models

    # The recorded test accuracy is the averaged model's, on the whole test split.
    full = collate(test)
    with torch.no_grad():
        pred = ensemble(full.x, lengths=full.lengths).argmax(-1)
    acc = float((pred == full.y).float().mean())
    assert result.metrics["test_accuracy"] == pytest.approx(acc, abs=1e-6)

    # rnnkit predict reads the ensemble folder and writes the averaged model's classes.
    out = predict_run(run, out=str(tmp_path / "pred.csv"))
    with open(out["predictions"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["prediction"]) for r in rows] == pred.tolist()


def test_resume_reuses_finished_members_and_an_edited_member_is_refused(tmp_path: Path) -> None:
    run = fit(_experiment(tmp_path, ensemble=2), test=False).run_dir
    with pytest.raises(ValueError, match=r"already holds ensemble members; pass --resume"):
        fit(_experiment(tmp_path, ensemble=2), test=False)
    finished = run / "members" / "seed3" / "summary.json"
    stamp = finished.stat().st_mtime_ns
    (run / "ensemble.json").unlink()  # as if killed after the members, before the record
    fit(_experiment(tmp_path, ensemble=2), resume=str(run), test=False)
    assert finished.stat().st_mtime_ns == stamp  # not trained again
    assert len(load_run(run).model.members) == 2  # ensemble.json written again, both members
    model_json = run / "members" / "seed4" / "artifact" / "model.json"
    model_json.write_text(model_json.read_text().replace('"task"', '"task" ', 1))
    with pytest.raises(ValueError, match=r"SHA-256 that .* recorded for member members/seed4"):
        load_run(run)


def test_ensemble_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"model\.ensemble must be an integer >= 1, got 0"):
        ClassifierSpec(ensemble=0)


def test_an_ensemble_run_gets_the_baselines_and_verdict(tmp_path: Path) -> None:
    from rnnkit.evaluate.reference import judge_run

    result = fit(_experiment(tmp_path, ensemble=2), judge=judge_run)
    assert result.summary["baselines_split"] == "test"
    assert result.summary["verdict"]["model"] == pytest.approx(result.metrics["test_accuracy"])
    assert "majority" in result.summary["baselines"]
    saved = json.loads((result.run_dir / "summary.json").read_text())
    assert saved["verdict"] == result.summary["verdict"] and saved["ensemble"] == 2
