"""``model.base_select``: a hybrid forecaster ends as its bare base, the equal-weight combination
of base and hybrid, or the hybrid, whichever wins on the validation split (ties: the simpler),
and the artifact (predict, evaluate) holds what was chosen."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit.train import fit
from rnnkit.train.base_select import _best
from rnnkit.train.experiment_io import experiment_from_dict
from rnnkit.train.predict import load_run, predict_run
from rnnkit.train.trainer import evaluate

N = 100


def _series(path: Path, *, flat_from: int | None, slope_after: float = 0.0) -> Path:
    """A monthly series rising 0.5 a month; from ``flat_from`` on (validation and test) it rises
    ``slope_after`` a month, so a learned drift that helped on training hurts there (0), or
    helps by half (0.25: the truth lies between the flat naive base and the hybrid)."""
    rng = np.random.default_rng(0)
    lines = ["unique_id,ds,y"]
    months = np.arange("2000-01", "2100-01", dtype="datetime64[M]")[:N]
    for k, ds in enumerate(months):
        cut = N if flat_from is None else flat_from
        y = 10 + 0.5 * min(k, cut) + slope_after * max(k - cut, 0)
        lines.append(f"s,{ds}-01,{y + 0.01 * rng.standard_normal():.4f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fit(tmp_path: Path, data: Path, name: str, **model: Any) -> Path:
    exp = experiment_from_dict(
        {
            "task": "forecasting",
            "seed": 0,
            "data": {
                "path": str(data),
                "seq_len": 12,
                "horizon": 3,
                "val_size": 12,
                "test_size": 6,
                "batch_size": 16,
            },
            "model": {"hidden_size": 8, "base": "naive", **model},
            "optim": {"lr": 0.03},
            "trainer": {
                "max_steps": 60,
                "val_check_interval": 20,
                "num_threads": 1,
                "enable_progress_bar": False,
            },
            "run": {"root": str(tmp_path), "name": name, "plot": False},
        }
    )
    return Path(fit(exp).run_dir)


def _read(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = json.loads((run / "summary.json").read_text())
    meta = json.loads((run / "artifact" / "model.json").read_text())
    return summary, meta


def test_a_correction_that_hurts_on_validation_leaves_the_bare_base(tmp_path: Path) -> None:
    data = _series(tmp_path / "level.csv", flat_from=N - 24)
    run = _fit(tmp_path, data, "hurts")
    summary, meta = _read(run)
    choice = summary["base_select"]
    assert choice["chosen"] == "base" and choice["monitor"] == "val_loss"
    assert choice["base"] < choice["hybrid"]
    assert meta["base_select"] == choice
    assert summary["metrics"]["val_loss"] == pytest.approx(choice["base"])
    with (run / "metrics.csv").open(encoding="utf-8") as f:  # the training curve: no base row
        logged = [float(r["val_loss"]) for r in csv.DictReader(f) if r.get("val_loss")]
    assert logged and min(logged) > choice["base"]
    model = load_run(run).model
    assert not model.head.weight.any() and not model.head.bias.any()  # stored as the bare base
    # The test split was scored with the bare base, as the artifact reproduces it.
    again = evaluate(str(run), stage="test")
    assert summary["metrics"]["test_loss"] == pytest.approx(again["test_loss"], rel=1e-5)
    predict_run(run, input_path=str(data), out=str(tmp_path / "p.csv"))
    with (tmp_path / "p.csv").open(encoding="utf-8") as f:
        got = [float(r["y_hat"]) for r in csv.DictReader(f)]
    last = float(data.read_text().strip().splitlines()[-1].split(",")[-1])
    np.testing.assert_allclose(got, [last] * 3, rtol=1e-5)  # naive: the last value, H times

    # The same run told never to select keeps its trained (here harmful) correction.
    never = _fit(tmp_path, data, "never", base_select="never")
    summary, meta = _read(never)
    assert "base_select" not in summary and "base_select" not in meta
    assert load_run(never).model.head.weight.any()


def test_a_correction_that_helps_on_validation_is_kept(tmp_path: Path) -> None:
    data = _series(tmp_path / "trend.csv", flat_from=None)
    run = _fit(tmp_path, data, "helps")
    summary, meta = _read(run)
    choice = summary["base_select"]
    assert choice["chosen"] == "hybrid" and choice["hybrid"] < choice["base"]
    assert meta["base_select"] == choice
    assert summary["metrics"]["val_loss"] == pytest.approx(choice["hybrid"])
    model = load_run(run).model
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    torch.testing.assert_close(model.head.weight, ckpt["model.head.weight"])


def test_a_combination_that_wins_on_validation_is_chosen_and_reproduced(tmp_path: Path) -> None:
    data = _series(tmp_path / "half.csv", flat_from=N - 24, slope_after=0.25)
    run = _fit(tmp_path, data, "combined")
    summary, meta = _read(run)
    choice = summary["base_select"]
    assert choice["chosen"] == "combined"
    assert choice["combined"] < min(choice["base"], choice["hybrid"])
    assert meta["base_select"] == choice
    assert summary["metrics"]["val_loss"] == pytest.approx(choice["combined"])
    # Stored as weights: the checkpoint's head halved.
    model = load_run(run).model
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    torch.testing.assert_close(model.head.weight, 0.5 * ckpt["model.head.weight"])
    torch.testing.assert_close(model.head.bias, 0.5 * ckpt["model.head.bias"])
    assert model.head.weight.any()
    # The test split was scored with the combination, as the artifact reproduces it.
    again = evaluate(str(run), stage="test")
    assert summary["metrics"]["test_loss"] == pytest.approx(again["test_loss"], rel=1e-5)

    # The same run told never to select trains the same hybrid; predict reproduces
    # base + half its correction (naive base: the last value).
    never = _fit(tmp_path, data, "never", base_select="never")
    hybrid_head = load_run(never).model.head
    torch.testing.assert_close(hybrid_head.weight, ckpt["model.head.weight"])
    got = {}
    for name, path in (("combined", run), ("hybrid", never)):
        out = tmp_path / f"{name}.csv"
        predict_run(path, input_path=str(data), out=str(out))
        with out.open(encoding="utf-8") as f:
            got[name] = np.array([float(r["y_hat"]) for r in csv.DictReader(f)])
    last = float(data.read_text().strip().splitlines()[-1].split(",")[-1])
    assert np.abs(got["hybrid"] - last).max() > 0.1  # a correction worth halving
    np.testing.assert_allclose(got["combined"], last + 0.5 * (got["hybrid"] - last), rtol=1e-5)


def test_the_rule_ties_to_the_simpler_and_skips_values_that_are_not_finite() -> None:
    nan = float("nan")
    assert _best({"base": 1.0, "combined": 1.0, "hybrid": 1.0}, "min") == "base"
    assert _best({"base": 2.0, "combined": 1.0, "hybrid": 1.0}, "min") == "combined"
    assert _best({"base": 2.0, "combined": 1.5, "hybrid": 1.0}, "min") == "hybrid"
    assert _best({"base": 2.0, "combined": 1.5, "hybrid": 1.0}, "max") == "base"
    assert _best({"base": nan, "combined": 3.0, "hybrid": nan}, "min") == "combined"
    assert _best({"base": nan, "combined": nan, "hybrid": nan}, "min") == "base"
