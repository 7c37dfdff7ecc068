"""`rnnkit tune`: spaces, folds, a search that never reads the test split, pruning, resuming,
the outputs, and two worker processes on one study."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from torch.utils.data import Dataset

import rnnkit.tune.search as tune_mod
from rnnkit.cli import main
from rnnkit.train.experiment_io import parse_experiment
from rnnkit.train.specs import ClassificationExperiment, ForecastingExperiment
from rnnkit.tune.search import TuneOptions, cv_pool, fold_indices, tune
from rnnkit.tune.space import (
    DEFAULT_SPACES,
    check_space,
    default_space,
    direction_of,
    parse_space,
    with_params,
)

ROOT = Path(__file__).resolve().parents[2]
PARITY = ROOT / "configs" / "parity_classifier.yaml"
SMALL = [  # 200 parity strings, 10 steps with a validation every 5: a trial takes about a second
    "--data.num_samples=200",
    "--trainer.max_steps=10",
    "--trainer.val_check_interval=5",
    "--trainer.enable_progress_bar=false",
    "--trainer.log_every_n_steps=5",
]
SPACE = {
    "optim.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
    "model.hidden_size": {"type": "int", "low": 4, "high": 16},
}


def parity(tmp_path: Path, *extra: str) -> Any:
    args = ["--config", str(PARITY), *SMALL, f"--run.root={tmp_path}", *extra]
    return parse_experiment(ClassificationExperiment, args)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "uniform", "low": 0, "high": 1}, "type must be float, int or categorical"),
        ({"type": "float", "low": 1, "high": 1}, "low must be < high; got 1 >= 1"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "a log range needs low > 0"),
        ({"type": "int", "low": 1.5, "high": 4}, "low and high of an int must be whole"),
        ({"type": "categorical", "choices": []}, "choices must be a non-empty list"),
        ({"type": "float", "low": 0, "high": 1, "choises": 2}, "unknown field(s) choises"),
    ],
)
def test_bad_space_names_file_and_key(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"space\.yaml: 'optim\.lr'") as err:
        parse_space({"optim.lr": spec}, source="space.yaml")
    assert message in str(err.value)


def test_space_with_unknown_key_fails_before_any_trial(tmp_path: Path) -> None:
    base = parity(tmp_path)
    space = parse_space({"model.hiden_size": {"type": "int", "low": 4, "high": 8}})
    with pytest.raises(ValueError, match=r"unknown key 'model\.hiden_size'; valid keys of 'model'"):
        check_space(base, space)
    bad_choice = parse_space({"model.cell": {"type": "categorical", "choices": ["gru", "tcn"]}})
    with pytest.raises(ValueError, match=r"search space key 'model\.cell' = 'tcn'"):
        check_space(base, bad_choice)


def test_default_spaces_fit_their_families_and_params_apply_typed() -> None:
    from rnnkit.train.specs import EXPERIMENTS

    for task in DEFAULT_SPACES:
        check_space(EXPERIMENTS[task](), default_space(task))
    tuned = with_params(ClassificationExperiment(), {"optim.lr": 0.02, "model.cell": "gru"})
    assert (tuned.optim.lr, tuned.model.cell) == (0.02, "gru")
    assert direction_of("val_accuracy") == "maximize"
    assert direction_of("val_bpc") == "minimize"
    assert direction_of("val_bpc", "max") == "maximize"  # run.monitor_mode wins, as in fit


def test_folds_stratify_classes_and_walk_forward_leaves_a_gap() -> None:
    labels = np.array([0] * 30 + [1] * 10)
    train = [(None, int(y)) for y in labels]
    folds = fold_indices(ClassificationExperiment(), train, 5)
    assert len(folds) == 5
    held = np.concatenate([v for _, v in folds])
    assert sorted(held.tolist()) == list(range(40))  # every item validated exactly once
    for tr, va in folds:
        assert not set(tr) & set(va)
        assert np.bincount(labels[va]).tolist() == [6, 2]  # the 3:1 ratio in every fold
    forecasting = ForecastingExperiment()
    forecasting.data.horizon = 3
    windows = fold_indices(forecasting, list(range(40)), 3)
    for tr, va in windows:
        assert tr.max() + 3 < va.min()  # no training target reaches a validation target
        assert va.tolist() == list(range(va.min(), va.max() + 1))
    assert windows[-1][1].max() == 39
    with pytest.raises(ValueError, match="the rarest class has 10 training sequences"):
        fold_indices(ClassificationExperiment(), train, 11)


def test_folds_come_from_train_and_validation_never_test(tmp_path: Path) -> None:
    built = tune_mod.build(parity(tmp_path))
    train, val, _ = built.datamodule.parts  # type: ignore[attr-defined]
    pool = cv_pool(built)
    assert len(pool) == len(train) + len(val) == 180
    assert np.array_equal(pool[len(train)][0], val[0][0])  # validation follows training


class _Poison(Dataset[Any]):
    def __len__(self) -> int:
        raise AssertionError("the test split was read")

    def __getitem__(self, i: int) -> Any:
        raise AssertionError("the test split was read")


def _poison_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tune_mod.build

    def build(experiment: Any) -> Any:
        built = real(experiment)
        data: Any = built.datamodule
        data.parts = (data.parts[0], data.parts[1], _Poison())
        return built

    monkeypatch.setattr(tune_mod, "build", build)


@pytest.mark.parametrize("cv", [0, 3])
def test_search_never_reads_the_test_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cv: int
) -> None:
    _poison_test_split(monkeypatch)
    options = TuneOptions(trials=2, cv=cv, search_only=True, root=str(tmp_path / "t"))
    result = tune(parity(tmp_path), parse_space(SPACE), options)
    study = optuna.load_study(
        study_name=result.study_name, storage=f"sqlite:///{tmp_path / 't' / 'study.db'}"
    )
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for t in done:
        if cv:  # the objective is the mean of each fold's best validation loss
            assert len(t.user_attrs["fold_values"]) == 3
            assert t.value == pytest.approx(np.mean(t.user_attrs["fold_values"]))
        else:  # ... or the best val_loss the trial's run logged
            rows = list(
                csv.DictReader(open(tmp_path / "t" / "trials" / f"{t.number:04d}" / "metrics.csv"))
            )
            logged = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
            assert t.value == pytest.approx(min(logged))


def test_pruned_trials_stop_at_their_first_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any val_loss above 0 prunes: every trial must stop after its first validation (step 5 of 10).
    monkeypatch.setattr(
        tune_mod, "_pruner", lambda *_, **__: optuna.pruners.ThresholdPruner(upper=0.0)
    )
    options = TuneOptions(trials=2, search_only=True, root=str(tmp_path / "t"))
    result = tune(parity(tmp_path), parse_space(SPACE), options)
    assert result.best_value is None
    for n in (0, 1):
        summary = json.loads((tmp_path / "t" / "trials" / f"{n:04d}" / "summary.json").read_text())
        assert summary["steps"] == 5


def test_rerun_continues_the_study_up_to_its_trial_count(tmp_path: Path) -> None:
    base, space = parity(tmp_path), parse_space(SPACE)
    tune(base, space, TuneOptions(trials=2, search_only=True, root=str(tmp_path / "t")))
    tune(base, space, TuneOptions(trials=3, search_only=True, root=str(tmp_path / "t")))
    study = optuna.load_study(
        study_name="tune-classification", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}"
    )
    assert [t.number for t in study.trials] == [0, 1, 2]
    # Trial 0 is the recipe itself (lr 0.01 lies in the space; hidden size 24 does not).
    assert study.trials[0].user_attrs["recipe"] is True
    assert study.trials[0].params["optim.lr"] == 0.01
    assert not any(t.user_attrs.get("recipe") for t in study.trials[1:])
    with pytest.raises(ValueError, match=r"was started with cv 0 \(now 2\); rerun the same"):
        tune(base, space, TuneOptions(trials=3, cv=2, search_only=True, root=str(tmp_path / "t")))
    other = parity(tmp_path, "--data.seq_len=5", "--run.name=elsewhere")  # run.* does not count
    with pytest.raises(ValueError, match=r"with other recipe values \(data\.seq_len\)"):
        tune(other, space, TuneOptions(trials=3, search_only=True, root=str(tmp_path / "t")))


def test_cli_writes_best_recipe_refit_test_metrics_and_plots(tmp_path: Path, capsys: Any) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    root = tmp_path / "t"
    args = ["tune", "--config", str(PARITY), *SMALL, f"--run.root={tmp_path}"]
    assert main([*args, "--space", str(space), "--trials", "3", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "tuned   test: test_loss" in out
    report = json.loads((root / "report.json").read_text())
    assert report["metric"] == "val_loss" and report["direction"] == "minimize"
    assert report["trials"] == {"complete": 3}
    assert set(report["runs"]) == {"tuned", "recipe"}
    assert 0.0 <= report["runs"]["tuned"]["test"]["test_accuracy"] <= 1.0
    # the refits are judged against the task's baselines on the same test split, as `rnnkit fit`
    assert 0.0 <= report["baselines"]["majority"]["accuracy"] <= 1.0
    for run in report["runs"].values():
        assert run["verdict"].startswith("model accuracy ") and "majority class" in run["verdict"]
        assert run["verdict"] in out
    # best.yaml is a recipe `rnnkit fit` accepts, holding the best trial's values, and refitting
    # it reproduces the best trial's validation loss (same seed, same data, CPU).
    best = parse_experiment(ClassificationExperiment, ["--config", str(root / "best.yaml")])
    assert best.optim.lr == report["best"]["params"]["optim.lr"]
    assert best.model.hidden_size == report["best"]["params"]["model.hidden_size"]
    refit_val = report["runs"]["tuned"]["val"]["val_loss"]
    assert refit_val == pytest.approx(report["best"]["value"], rel=1e-4)
    rows = list(csv.DictReader(open(root / "trials.csv")))
    assert [r["state"] for r in rows] == ["complete"] * 3
    for name in ("history", "importances", "parallel"):
        assert (root / f"{name}.png").stat().st_size > 1000
    assert not (root / "trials" / "0000" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "2"], "--cv needs a data set of separate sequences or windows"),
        (["--cv", "1"], "--cv must be 0 (the validation split) or >= 2 folds, got 1"),
        (["--trials", "x"], "argument --trials: invalid int value: 'x'"),
        (["--pruner", "asha"], "argument --pruner: invalid choice: 'asha'"),
        (["--space", "nope.yaml"], "space file nope.yaml does not exist"),
        (["--storage", "study.db"], "--storage 'study.db' is neither an Optuna RDB URL"),
    ],
)
def test_bad_tune_options_fail_before_any_trial(
    tmp_path: Path, capsys: Any, args: list[str], message: str
) -> None:
    tiny = ROOT / "configs" / "tiny_charlm.yaml"
    assert main(["tune", "--config", str(tiny), *args, f"--run.root={tmp_path}"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tune-tiny_charlm" / "trials").exists()


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_two_worker_processes_share_one_study(tmp_path: Path, storage: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    url = (
        f"journal:{tmp_path / 'study.log'}"
        if storage == "journal"
        else f"sqlite:///{tmp_path / 's.db'}"
    )
    cmd = [sys.executable, "-m", "rnnkit.cli", "tune", "--config", str(PARITY), *SMALL]
    cmd += ["--space", str(space), "--trials", "6", "--storage", url, "--study", "shared"]
    cmd += ["--search-only", f"--run.root={tmp_path}", "--trainer.num_threads=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen([*cmd, "--root", str(tmp_path / f"w{i}")], env=env, stderr=subprocess.PIPE)
        for i in range(2)
    ]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err.decode()[-2000:]
    if storage == "journal":
        from optuna.storages.journal import JournalFileBackend

        opened: Any = optuna.storages.JournalStorage(
            JournalFileBackend(str(tmp_path / "study.log"))
        )
    else:
        opened = url
    study = optuna.load_study(study_name="shared", storage=opened)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 6
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both processes ran trials
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))
