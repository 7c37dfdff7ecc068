"""A hybrid forecaster (``model.base``) on the user's files: global training over several ids,
`rnnkit predict` reproducing the base from the artifact, and the early errors for short series."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit.data.formats.forecast import ForecastEncoder
from rnnkit.train import build, fit
from rnnkit.train.experiment_io import experiment_from_dict
from rnnkit.train.predict import predict_run


def _monthly(path: Path, lengths: dict[str, int]) -> Path:
    rng = np.random.default_rng(3)
    lines = ["unique_id,ds,y"]
    for j, (sid, n) in enumerate(lengths.items()):
        for k, ds in enumerate(np.arange("2000-01", "2100-01", dtype="datetime64[M]")[:n]):
            y = 50 + 10 * j + 0.3 * k + 5 * np.sin(2 * np.pi * k / 12) + rng.standard_normal()
            lines.append(f"{sid},{ds}-01,{y:.4f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _experiment(tmp_path: Path, csv_path: Path, **model: Any) -> Any:
    return experiment_from_dict(
        {
            "task": "forecasting",
            "seed": 0,
            "data": {
                "path": str(csv_path),
                "seq_len": 24,
                "horizon": 6,
                "val_size": 6,
                "test_size": 6,
                "batch_size": 16,
            },
            "model": {"hidden_size": 8, **model},
            "trainer": {
                "max_steps": 8,
                "val_check_interval": 4,
                "num_threads": 1,
                "enable_progress_bar": False,
            },
            "run": {"root": str(tmp_path), "name": "hybrid", "plot": False},
        }
    )


def test_predict_reproduces_the_ets_base_from_the_artifact(tmp_path: Path) -> None:
    data = _monthly(tmp_path / "sales.csv", {"north": 60, "south": 72})
    exp = _experiment(tmp_path, data, base="ets", base_select="never")  # the trained head
    built = build(exp)
    config = built.module.model.config
    assert config.base == "ets" and config.season == 12 and len(config.ets) == 4
    result = fit(exp, built=built)
    model = built.module.model.eval()  # the trained weights, in memory
    meta = json.loads((Path(result.run_dir) / "artifact" / "model.json").read_text())
    assert meta["model_config"]["base"] == "ets" and meta["model_config"]["ets"] == config.ets
    predict_run(result.run_dir, input_path=str(data), out=str(tmp_path / "p.csv"))
    with (tmp_path / "p.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    state = json.loads((Path(result.run_dir) / "artifact" / "encoder.json").read_text())
    enc = ForecastEncoder.from_dict(state)
    values = {"north": [], "south": []}  # type: dict[str, list[float]]
    with data.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            values[r["unique_id"]].append(float(r["y"]))
    for sid in ("north", "south"):
        scaler = enc.scalers[sid]
        scaled = scaler.transform(np.asarray(values[sid])[:, None])[-24:]
        x = torch.tensor(scaled, dtype=torch.float32)[None]  # (1, T, 1)
        with torch.no_grad():
            mean = model(x).mean[0, :, 0].double().numpy()
            base = model.base_forecast(x)[0, :, 0].double().numpy()
        assert np.abs(mean - base).max() > 0  # trained: the head moved off the base
        want = scaler.inverse_transform(mean[:, None], columns=[0])[:, 0]
        got = [float(r["y_hat"]) for r in rows if r["unique_id"] == sid]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_a_series_too_short_names_itself_and_what_fits(tmp_path: Path) -> None:
    data = _monthly(tmp_path / "short.csv", {"long": 80, "stub": 40})
    with pytest.raises(ValueError) as err:
        build(_experiment(tmp_path, data, base="seasonal_naive"))
    assert str(err.value) == (
        f"{data} rows 82-121: series 'stub' has 40 steps: after 6 validation and 6 test steps it "
        "keeps 28 training steps, shorter than input 24 + horizon 6 = 30; these settings need 42 "
        "steps; data.seq_len <= 22 would fit"
    )


def test_a_window_shorter_than_the_season_is_an_early_error(tmp_path: Path) -> None:
    data = _monthly(tmp_path / "ok.csv", {"one": 60})
    exp = _experiment(tmp_path, data, base="seasonal_naive", season=30)
    with pytest.raises(ValueError) as err:
        build(exp)
    assert str(err.value).startswith(
        "model.base 'seasonal_naive' with season 30 needs input windows of at least 30 steps; "
    )
    assert "have 24: set data.seq_len >= 30" in str(err.value)
