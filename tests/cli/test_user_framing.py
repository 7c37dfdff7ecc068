"""`rnnkit fit` + `rnnkit predict` on a user's file of long, variable-length series with framing
on (``data.frame: auto``, by the median length): the frame comes from the training lengths, is
recorded in the run, and `rnnkit predict --input` and the serving `Predictor` frame alike."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.formats.encode import SequenceEncoder
from rnnkit.predictor import Predictor
from rnnkit.train import user_data
from rnnkit.train.config import SequenceDataConfig

FAST = [
    "--trainer.max_steps", "8", "--trainer.val_check_interval", "4",
    "--trainer.num_threads", "1", "--trainer.enable_progress_bar", "false",
    "--run.plot", "false", "--model.hidden_size", "8", "--data.frame_steps", "10",
]  # fmt: skip


def _write_long(path: Path, lengths: list[int], seed: int) -> None:
    """A long-format CSV (unique_id, ds, x, label): slow or fast sines of the given lengths."""
    rng = np.random.default_rng(seed)
    rows = ["unique_id,ds,x,label"]
    for i, n in enumerate(lengths):
        label = i % 2
        values = np.sin(np.arange(n) * (0.1 + 0.4 * label)) + 0.1 * rng.standard_normal(n)
        rows += [f"s{i},{k},{v:.4f},{['slow', 'fast'][label]}" for k, v in enumerate(values)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_fit_and_predict_frame_by_the_training_median(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(0)
    lengths = [int(n) for n in rng.integers(70, 91, size=40)]
    lengths[3] = 900  # one very long series: the median, not it, sets the frame
    _write_long(tmp_path / "train.csv", lengths, seed=1)
    _write_long(tmp_path / "test.csv", [75, 60, 88, 5, 120, 80, 71, 84], seed=2)
    data = [
        "--data.path",
        str(tmp_path / "train.csv"),
        "--data.test_path",
        str(tmp_path / "test.csv"),
    ]
    args = ["fit", "--task", "classification", *data, *FAST, "--run.root", str(tmp_path)]
    assert main([*args, "--data.frame_quantile", "0.5", "--run.name", "run"]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    encoder = json.loads((run / "artifact" / "encoder.json").read_text())
    model = json.loads((run / "artifact" / "model.json").read_text())
    # ceil(median of the training rows (70-90 steps) / 10); the 900-step one would make it 90
    frame = encoder["frame"]
    assert 7 <= frame <= 9
    assert summary["data"]["frame"] == model["frame"] == frame
    assert model["model_config"]["input_size"] == frame  # one channel, frame steps per input
    # `rnnkit predict` on the test file frames it alike: the same accuracy the run reported
    out = tmp_path / "preds.csv"
    cmd = ["predict", "--run", str(run), "--input", str(tmp_path / "test.csv"), "--out", str(out)]
    assert main(cmd) == 0
    capsys.readouterr()
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [f"s{i}" for i in range(8)]
    acc = float(np.mean([r["prediction"] == r["label"] for r in rows]))
    assert acc == pytest.approx(summary["metrics"]["test_accuracy"])
    # the serving Predictor scales (with the run's training scaler) and frames the file's raw
    # steps the same way as predict --input
    assert SequenceEncoder.from_dict(encoder).scaler is not None
    cfg = SequenceDataConfig(path=str(tmp_path / "test.csv"))
    test = user_data.read_examples(cfg, str(tmp_path / "test.csv"), "long")
    answers = Predictor.from_run(run).predict([np.asarray(x).tolist() for x in test.sequences])
    for row, answer in zip(rows, answers, strict=True):
        for name, p in answer["probabilities"].items():
            assert float(row[f"p_{name}"]) == pytest.approx(p, abs=1e-4)
    assert Predictor.from_run(run).metadata()["frame"] == frame


def test_frame_off_and_fixed(tmp_path: Path, capsys: Any) -> None:
    _write_long(tmp_path / "train.csv", [40] * 20, seed=3)
    base = ["fit", "--task", "classification", "--data.path", str(tmp_path / "train.csv"), *FAST]
    for value, want in (("null", 1), ("3", 3)):
        name = f"frame-{value}"
        cmd = [*base, "--data.frame", value, "--run.root", str(tmp_path), "--run.name", name]
        assert main(cmd) == 0
        capsys.readouterr()
        art = tmp_path / name / "artifact"
        assert json.loads((art / "encoder.json").read_text())["frame"] == want
        assert json.loads((art / "model.json").read_text())["model_config"]["input_size"] == want
    bad = [*base, "--data.frame", "0", "--run.root", str(tmp_path), "--run.name", "bad"]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "rnnkit: error: data.frame must be an int >= 1, 'auto' (from the training lengths) or "
        "null (no framing), got 0"
    )
    assert not (tmp_path / "bad").exists()
