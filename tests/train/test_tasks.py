"""Each task family trains through Lightning on a synthetic task, far beyond chance, in seconds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnkit.models import (
    ForecasterConfig,
    LanguageModelConfig,
    Seq2SeqConfig,
    SequenceClassifierConfig,
    SequenceTaggerConfig,
)
from rnnkit.train.config import (
    EarlyStoppingConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    SequenceDataConfig,
    TrainerConfig,
)
from rnnkit.train.predict import forecast_run, predict_run
from rnnkit.train.specs import (
    ClassificationExperiment,
    ClassifierSpec,
    ForecasterSpec,
    ForecastingExperiment,
    LanguageModelSpec,
    Seq2SeqExperiment,
    Seq2SeqSpec,
    TaggerSpec,
    TaggingExperiment,
)
from rnnkit.train.trainer import build, fit


@pytest.mark.parametrize(
    ("spec", "config", "data_fields"),
    [
        (LanguageModelSpec, LanguageModelConfig, {"vocab_size"}),
        (
            ClassifierSpec,
            SequenceClassifierConfig,
            {"num_outputs", "input_size", "vocab_size", "padding_idx"},
        ),
        (TaggerSpec, SequenceTaggerConfig, {"num_tags", "input_size", "vocab_size", "padding_idx"}),
        (
            ForecasterSpec,
            ForecasterConfig,
            {"target_size", "covariate_size", "horizon", "ets", "base_scale"},
        ),
        (
            Seq2SeqSpec,
            Seq2SeqConfig,
            {"src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id"},
        ),
    ],
)
def test_specs_match_model_configs(spec: Any, config: Any, data_fields: set[str]) -> None:
    """A spec is its model config minus the data-decided sizes (plus trainer-side options)."""
    trainer_side = {"teacher_forcing", "ensemble", "base_select"}
    spec_fields = {f.name for f in dataclasses.fields(spec)} - trainer_side
    model_fields = {f.name for f in dataclasses.fields(config)}
    assert spec_fields == model_fields - data_fields


def _common(tmp_path: Path, name: str, steps: int, lr: float = 1e-2) -> dict[str, Any]:
    return {
        "seed": 0,
        "optim": OptimConfig(name="adam", lr=lr, weight_decay=0.0),
        "scheduler": SchedulerConfig(name="cosine", warmup_steps=10),
        "trainer": TrainerConfig(
            max_steps=steps, val_check_interval=steps // 2, enable_progress_bar=False, num_threads=1
        ),
        "early_stopping": EarlyStoppingConfig(enabled=False),
        "run": RunConfig(root=str(tmp_path), name=name, plot=False),
    }


def test_classifier_learns_parity(tmp_path: Path) -> None:
    exp = ClassificationExperiment(
        data=SequenceDataConfig(
            source="synthetic_parity", seq_len=6, num_samples=1600, batch_size=32
        ),
        model=ClassifierSpec(hidden_size=24, cell="gru"),
        **_common(tmp_path, "parity", 900),
    )
    result = fit(exp)
    assert result.metrics["val_accuracy"] > 0.9, result.metrics  # chance is 0.5
    assert {"val_f1", "val_loss"} <= result.metrics.keys()
    out = predict_run(result.run_dir)
    assert out["rows"] == 160 and Path(out["predictions"]).is_file()


def test_tagger_learns_rises(tmp_path: Path) -> None:
    exp = TaggingExperiment(
        data=SequenceDataConfig(
            source="synthetic_tags", seq_len=10, num_samples=800, batch_size=32
        ),
        model=TaggerSpec(hidden_size=24, embedding_dim=8),
        **_common(tmp_path, "tags", 120),
    )
    result = fit(exp)
    assert result.metrics["val_accuracy"] > 0.9, result.metrics  # majority class is ~0.55


def test_forecaster_learns_sine_and_forecasts(tmp_path: Path) -> None:
    exp = ForecastingExperiment(
        data=SequenceDataConfig(
            source="synthetic_sine", seq_len=24, horizon=4, num_samples=800, batch_size=32
        ),
        model=ForecasterSpec(hidden_size=24),
        **_common(tmp_path, "sine", 120),
    )
    result = fit(exp)
    assert result.metrics["val_mase"] < 0.5, result.metrics  # better than the naive forecast
    assert result.metrics["val_rmse"] < 0.2
    out = forecast_run(result.run_dir, horizon=10)
    # The truth past the last test window is the same sine continued: fit its frequency (grid
    # over the generator's range) and phase (least squares) to the window, and extrapolate.
    x, y = build(exp).datamodule.parts[2][-1]
    seen = np.concatenate([np.asarray(x), np.asarray(y)])[:, 0]
    t = np.arange(len(seen) + 10)
    best: tuple[float, float, Any] = (np.inf, 0.3, None)
    for grid in (np.linspace(0.1, 0.5, 401), np.linspace(-1e-3, 1e-3, 201)):
        for freq in grid + (best[1] if grid[0] < 0 else 0.0):
            basis = np.stack([np.sin(freq * t), np.cos(freq * t)], axis=1)
            coef, *_ = np.linalg.lstsq(basis[: len(seen)], seen, rcond=None)
            err = float(((basis[: len(seen)] @ coef - seen) ** 2).sum())
            if err < best[0]:
                best = (err, freq, basis[len(seen) :] @ coef)
    assert best[0] < 1e-6  # the window is a pure sine, found
    forecast = np.asarray(out["forecast"])
    assert forecast.shape == (10,)
    rmse = float(np.sqrt(((forecast - best[2]) ** 2).mean()))
    zero = float(np.sqrt((best[2] ** 2).mean()))  # the RMSE of forecasting the mean, 0
    assert rmse < 0.4 * zero, (rmse, zero, forecast, best[2])


def test_seq2seq_learns_reversal(tmp_path: Path) -> None:
    exp = Seq2SeqExperiment(
        data=SequenceDataConfig(
            source="synthetic_reverse", seq_len=5, num_samples=2000, batch_size=32
        ),
        model=Seq2SeqSpec(hidden_size=32, embedding_dim=16, attention="bahdanau"),
        **_common(tmp_path, "reverse", 300),
    )
    result = fit(exp)
    assert result.metrics["val_token_accuracy"] > 0.8, result.metrics  # chance is 0.1
    assert result.metrics["val_exact_match"] > 0.3
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["metrics"]["val_exact_match"] == result.metrics["val_exact_match"]


def test_language_model_reads_a_folder_of_text_files(tmp_path: Path) -> None:
    from rnnkit.data.lm_stream import load_corpus
    from rnnkit.train.config import TextDataConfig

    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    (folder / "a.txt").write_text("abc " * 50, encoding="utf-8")
    (folder / "b" / "c.txt").write_text("xyz " * 50, encoding="utf-8")
    corpus = load_corpus(TextDataConfig(source=str(folder), val_fraction=0.1, test_fraction=0.1))
    assert len(corpus.train) + len(corpus.val) + len(corpus.test) == 400 + 2
    assert set(corpus.vocab.tokens) >= set("abcxyz ")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: the folder holds no \.txt files"):
        load_corpus(TextDataConfig(source=str(tmp_path / "empty"), val_fraction=0.1))
