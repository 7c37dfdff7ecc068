"""`rnnkit tune` on a recipe with ``model.ensemble: K``: what trials fit, what the refit fits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
import torch

from rnnkit.data.batching import collate
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.train.artifact import load_run
from rnnkit.train.experiment_io import parse_experiment
from rnnkit.train.specs import ClassificationExperiment
from rnnkit.train.tasks.classify import synthetic_parts
from rnnkit.tune.search import TuneOptions, tune
from rnnkit.tune.space import parse_space

ROOT = Path(__file__).resolve().parents[2]
SMALL = [  # 200 parity strings, 10 steps with a validation every 5
    "--data.num_samples=200",
    "--trainer.max_steps=10",
    "--trainer.val_check_interval=5",
    "--trainer.enable_progress_bar=false",
    "--trainer.log_every_n_steps=5",
    "--model.hidden_size=8",
    "--model.ensemble=2",
]
SPACE = parse_space({"optim.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}})


def _base(tmp_path: Path) -> ClassificationExperiment:
    args = ["--config", str(ROOT / "configs" / "parity_classifier.yaml"), *SMALL]
    return parse_experiment(ClassificationExperiment, [*args, f"--run.root={tmp_path}"])


def _study(root: Path) -> optuna.Study:
    return optuna.load_study(study_name="tune-classification", storage=f"sqlite:///{root}/study.db")


def test_trials_fit_one_member_and_the_refit_fits_the_recipes_ensemble(tmp_path: Path) -> None:
    root = tmp_path / "t"
    result = tune(_base(tmp_path), SPACE, TuneOptions(trials=1, compare=False, root=str(root)))
    trial = _study(root).trials[0]
    assert trial.user_attrs["members"] == 1
    one = root / "trials" / "0000"
    assert "ensemble: 1" in (one / "config.yaml").read_text() and not (one / "members").exists()
    logged = [
        float(r["val_loss"]) for r in csv.DictReader(open(one / "metrics.csv")) if r.get("val_loss")
    ]
    assert trial.value == pytest.approx(min(logged))  # the single member's own curve
    refit = Path(result.report["runs"]["tuned"]["run_dir"])
    assert len(json.loads((refit / "ensemble.json").read_text())["members"]) == 2
    assert result.report["ensemble"] == {
        "trial_ensemble": "one",
        "trial_members": 1,
        "refit_members": 2,
    }
    assert "each trial fitted 1 member(s)" in result.report["objective"]
    assert "model.ensemble = 2" in (root / "best.yaml").read_text().splitlines()[0]


def test_full_ensemble_trials_score_the_averaged_members(tmp_path: Path) -> None:
    root = tmp_path / "t"
    base = _base(tmp_path)
    options = TuneOptions(trials=1, search_only=True, root=str(root), trial_ensemble="full")
    tune(base, SPACE, options)
    trial = _study(root).trials[0]
    assert trial.user_attrs["members"] == 2 and len(trial.user_attrs["member_best_steps"]) == 2
    # The objective is the validation loss of the two members' averaged probabilities, each
    # member at its best checkpoint (the artifact its trial run wrote).
    runs = [root / "trials" / f"0000-seed{s}" for s in (base.seed, base.seed + 1)]
    ensemble = EnsembleClassifier([load_run(r).model for r in runs]).eval()
    val = collate(synthetic_parts(base.data).val)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(ensemble(val.x, lengths=val.lengths), val.y)
    assert trial.value == pytest.approx(float(loss), rel=1e-4)
    single = [json.loads((r / "summary.json").read_text())["metrics"]["val_loss"] for r in runs]
    assert all(abs(trial.value - v) > 1e-6 for v in single)
    # The study remembers what its trials fitted.
    with pytest.raises(ValueError, match=r"trial_ensemble 'full' \(now 'one'\); rerun the same"):
        tune(base, SPACE, TuneOptions(trials=2, search_only=True, root=str(root)))


def test_a_space_over_model_ensemble_needs_full_ensemble_trials(tmp_path: Path) -> None:
    space = parse_space({"model.ensemble": {"type": "int", "low": 1, "high": 3}})
    with pytest.raises(ValueError, match=r"searches model\.ensemble, but each trial fits one"):
        tune(_base(tmp_path), space, TuneOptions(trials=1, root=str(tmp_path / "t")))
