"""The trainer features the applications rely on: monitor direction, test with the best checkpoint,
in-memory data, length bucketing, word dropout, the sequences LM, covariates and backtests."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.data.batching import padding_fraction
from rnnkit.data.text import Vocab
from rnnkit.evaluate.backtest import backtest, windows
from rnnkit.train import DataParts, build, evaluate, fit, monitor_mode
from rnnkit.train.config import (
    EarlyStoppingConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    SequenceDataConfig,
    TextDataConfig,
    TrainerConfig,
)
from rnnkit.train.run import load_checkpoint
from rnnkit.train.specs import (
    ClassificationExperiment,
    ClassifierSpec,
    ForecasterSpec,
    ForecastingExperiment,
    LanguageModelExperiment,
    LanguageModelSpec,
)
from rnnkit.train.tasks import WordDropout
from rnnkit.train.tasks.forecast import collate_windows
from rnnkit.train.tasks.lm import collate_sequences
from rnnkit.types import Batch


def _common(tmp_path: Path, name: str, steps: int, **run: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "optim": OptimConfig(name="adam", lr=1e-2, weight_decay=0.0),
        "scheduler": SchedulerConfig(name="none"),
        "trainer": TrainerConfig(
            max_steps=steps,
            val_check_interval=max(1, steps // 6),
            enable_progress_bar=False,
            num_threads=1,
            log_every_n_steps=1,
        ),
        "early_stopping": EarlyStoppingConfig(enabled=False),
        "run": RunConfig(root=str(tmp_path), name=name, plot=False, **run),
    }


def _parity(tmp_path: Path, name: str, steps: int = 60, **run: Any) -> ClassificationExperiment:
    return ClassificationExperiment(
        data=SequenceDataConfig(
            source="synthetic_parity", seq_len=6, num_samples=400, batch_size=32
        ),
        model=ClassifierSpec(hidden_size=12, cell="gru"),
        **_common(tmp_path, name, steps, **run),
    )


def test_monitor_mode_guesses_direction_from_the_name() -> None:
    assert monitor_mode("val_accuracy") == "max"
    assert monitor_mode("val_exact_match") == "max"
    assert monitor_mode("val_ndcg@10") == "max"
    assert monitor_mode("val_loss") == "min"
    assert monitor_mode("val_bpc") == "min"
    assert monitor_mode("val_accuracy", "min") == "min"  # an explicit mode wins


def _best_score(run_dir: Path) -> float:
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    states = [v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")]
    return float(
        next(s["best_model_score"] for s in states if s.get("best_model_score") is not None)
    )


def test_monitor_max_keeps_the_max_accuracy_checkpoint(tmp_path: Path) -> None:
    result = fit(_parity(tmp_path, "acc", monitor="val_accuracy"))
    frame = pd.read_csv(result.run_dir / "metrics.csv")
    accuracies = frame["val_accuracy"].dropna()
    assert accuracies.max() > accuracies.min()  # otherwise min and max pick alike
    assert _best_score(result.run_dir) == pytest.approx(accuracies.max())
    # The final validation reads the best checkpoint: its accuracy is the best one logged.
    assert result.metrics["val_accuracy"] == pytest.approx(accuracies.max())
    assert result.summary["monitor_mode"] == "max"


def test_test_after_fit_scores_the_best_checkpoint(tmp_path: Path) -> None:
    exp = _parity(tmp_path, "tested", test=True)
    result = fit(exp)
    assert {"test_accuracy", "test_loss", "test_f1"} <= result.metrics.keys()
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["metrics"]["test_accuracy"] == result.metrics["test_accuracy"]
    # Recompute on the test split from best.ckpt's weights, by hand.
    built = build(exp)
    state = load_checkpoint(result.run_dir / "checkpoints" / "best.ckpt")["state_dict"]
    built.module.load_state_dict(state)
    model = built.module.model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in built.datamodule.test_dataloader():
            pred = model(batch.x, lengths=batch.lengths).argmax(-1)
            correct += int((pred == batch.y).sum())
            total += len(batch)
    assert result.metrics["test_accuracy"] == pytest.approx(correct / total)


def _token_samples(n: int, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(2, 40))
        ids = rng.integers(4, 20, length)
        out.append((ids, int(ids[-1] > 11)))  # the label is the last token's half
    return out


def test_bucketing_groups_lengths_and_in_memory_data_trains(tmp_path: Path) -> None:
    samples = _token_samples(400)
    data = DataParts(
        samples[:300],
        samples[300:350],
        samples[350:],
        {"classes": ["a", "b"], "vocab": Vocab.build([str(i) for i in range(16)])},
    )
    exp = _parity(tmp_path, "buckets")
    plain = build(exp, data=data).datamodule.train_dataloader()
    bucketed_exp = dataclasses.replace(
        exp, data=dataclasses.replace(exp.data, bucket_by_length=True)
    )
    bucketed = build(bucketed_exp, data=data).datamodule.train_dataloader()
    spans = [b.lengths for b in bucketed]
    assert sum(len(s) for s in spans) == 300  # every sample once
    assert padding_fraction(spans) < 0.5 * padding_fraction([b.lengths for b in plain])
    val = [
        int(n)
        for b in build(bucketed_exp, data=data).datamodule.val_dataloader()
        for n in b.lengths
    ]
    assert val == sorted(val) and len(val) == 50  # evaluation: the whole split, sorted
    result = fit(bucketed_exp, data=data)
    assert result.metrics["val_accuracy"] > 0.8, result.metrics  # chance is 0.5
    # its config alone would read other data: the run stored its test split, not the others
    with pytest.raises(ValueError, match="stores only its test split; pass the same data"):
        evaluate(str(result.run_dir), stage="validate")
    tested = evaluate(str(result.run_dir), stage="test")
    assert tested["test_accuracy"] == pytest.approx(
        evaluate(str(result.run_dir), stage="test", data=data)["test_accuracy"]
    )
    again = evaluate(str(result.run_dir), stage="validate", data=data)
    assert again["val_accuracy"] == pytest.approx(result.metrics["val_accuracy"])


def test_word_dropout_replaces_real_tokens_only() -> None:
    torch.manual_seed(0)
    x = torch.full((64, 50), 7)
    lengths = torch.randint(1, 51, (64,))
    batch = Batch(x=x.clone(), lengths=lengths)
    out = WordDropout(0.3)(batch)
    assert batch.mask is not None
    dropped = out.x == Vocab.unk_id
    assert not bool(dropped[~batch.mask].any())  # padding untouched
    share = float(dropped[batch.mask].float().mean())
    assert 0.25 < share < 0.35
    assert torch.equal(batch.x, x)  # the input batch is not modified


def test_word_dropout_runs_on_training_batches_only(tmp_path: Path) -> None:
    samples = _token_samples(200)
    data = DataParts(
        samples[:160],
        samples[160:180],
        samples[180:],
        {"classes": ["a", "b"], "vocab": Vocab.build([str(i) for i in range(16)])},
    )
    exp = _parity(tmp_path, "dropout", steps=10)
    exp = dataclasses.replace(exp, data=dataclasses.replace(exp.data, word_dropout=0.2))
    built = build(exp, data=data)
    assert isinstance(built.train_transform, WordDropout)
    seen: list[bool] = []
    inner = built.train_transform

    def spy(batch: Batch) -> Batch:
        seen.append(built.module.training)
        return inner(batch)

    built.train_transform = spy
    fit(exp, built=built)
    assert len(seen) == 10 and all(seen)  # one call per optimiser step, never in validation


def _lm_experiment(tmp_path: Path, name: str, steps: int = 20) -> LanguageModelExperiment:
    common = _common(tmp_path, name, steps)
    return LanguageModelExperiment(
        data=TextDataConfig(mode="sequences", batch_size=8),
        model=LanguageModelSpec(embedding_dim=8, hidden_size=16),
        sample_chars=0,
        **common,
    )


def test_sequences_lm_masks_padding_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    seqs = [
        np.concatenate([[2], rng.integers(4, 12, int(n)), [3]]) for n in rng.integers(1, 15, 40)
    ]
    data = DataParts(seqs[:30], seqs[30:], None, {"vocab_size": 12})
    built = build(_lm_experiment(tmp_path, "seq"), data=data)
    module, model = built.module, built.module.model.eval()
    batch = collate_sequences(seqs[:8])
    with torch.no_grad():
        loss, sums = module._loss_and_sums(batch, "val")
        nats = tokens = 0.0
        for s in seqs[:8]:  # each sequence alone, no padding at all
            ids = torch.as_tensor(s)[None]
            nats += float(model.loss(ids)) * (len(s) - 1)
            tokens += len(s) - 1
    assert float(sums["tokens"]) == tokens
    assert float(loss) == pytest.approx(nats / tokens, rel=1e-5)


def test_sequences_lm_trains_and_tests(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    # Each sequence counts up from a random start: the next token is predictable.
    seqs = []
    for _ in range(300):
        start, n = int(rng.integers(4, 10)), int(rng.integers(3, 8))
        seqs.append(np.array([2, *range(start, start + n), 3]))
    data = DataParts(seqs[:240], seqs[240:270], seqs[270:], {"vocab_size": 20})
    exp = _lm_experiment(tmp_path, "seq-fit", steps=150)
    exp = dataclasses.replace(exp, run=dataclasses.replace(exp.run, test=True))
    result = fit(exp, data=data)
    uniform_bits = math.log2(20)
    assert result.metrics["val_bpt"] < 0.6 * uniform_bits, result.metrics
    assert "test_bpt" in result.metrics


def test_in_memory_data_names_a_missing_meta_key(tmp_path: Path) -> None:
    samples = _token_samples(20)
    with pytest.raises(
        ValueError, match=r"classification data passed to build needs meta\['classes'\]"
    ):
        build(_parity(tmp_path, "meta"), data=DataParts(samples[:10], samples[10:]))


def test_collate_sequences_names_a_too_short_sequence() -> None:
    with pytest.raises(ValueError, match="sequence 1 of the batch has shape \\(1,\\)"):
        collate_sequences([np.array([2, 5, 3]), np.array([2])])


def _forecast_exp(tmp_path: Path, name: str, steps: int) -> ForecastingExperiment:
    return ForecastingExperiment(
        data=SequenceDataConfig(
            source="synthetic_sine_covariates",
            seq_len=16,
            horizon=4,
            num_samples=600,
            batch_size=32,
        ),
        model=ForecasterSpec(hidden_size=24),
        **_common(tmp_path, name, steps),
    )


def test_covariates_flow_through_training_and_change_the_forecast(tmp_path: Path) -> None:
    exp = _forecast_exp(tmp_path, "cov", 150)
    built = build(exp)
    assert built.model_config.covariate_size == 1
    result = fit(exp, built=built)
    model = built.module.model.eval()
    batch = collate_windows(built.datamodule.parts[1][:16])
    assert batch.covariates is not None
    with torch.no_grad():
        base = model(batch.x, covariates=batch.covariates).mean
        flipped = batch.covariates.clone()
        flipped[:, 16:] = 1.0 - flipped[:, 16:]  # another known future level
        other = model(batch.x, covariates=flipped).mean
    assert float((base - other).abs().mean()) > 0.05
    # The same windows without the known level: the model cannot foresee a switch.
    parts = built.datamodule.parts
    blind = DataParts(*[[s[:2] for s in part] for part in parts])
    blind_exp = dataclasses.replace(exp, run=dataclasses.replace(exp.run, name="blind"))
    without = fit(blind_exp, data=blind)
    with_mae, blind_mae = result.metrics["val_mae"], without.metrics["val_mae"]
    assert with_mae < 0.5 * blind_mae, (with_mae, blind_mae)


def test_backtest_origins_never_see_the_future(tmp_path: Path) -> None:
    t = np.arange(160, dtype=np.float32)
    series = np.sin(0.3 * t)[:, None]
    exp = dataclasses.replace(
        _forecast_exp(tmp_path, "bt", 30),
        data=SequenceDataConfig(source="series", seq_len=12, horizon=4, batch_size=16),
    )
    for end in (40, 100):  # the windows a fit at an origin sees end at or before it
        for w in windows(series, None, end=end, seq_len=12, horizon=4):
            assert np.isin(w[1], series[:end]).all()
    assert len(windows(series, None, end=40, seq_len=12, horizon=4)) == 40 - 16 + 1
    first = backtest(exp, origins=2, refit=True, series=series)
    assert [o.train_end for o in first.origins] == [152, 156]
    # Scramble everything after the first origin: its forecast must not change.
    scrambled = series.copy()
    scrambled[152:] = 5.0
    exp2 = dataclasses.replace(exp, run=dataclasses.replace(exp.run, name="bt2"))
    second = backtest(exp2, origins=2, refit=True, series=scrambled)
    np.testing.assert_allclose(first.forecasts[0], second.forecasts[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(first.forecasts[1], second.forecasts[1])  # origin 2 saw the change
    assert set(first.mean) == {"mae", "rmse"} and len(first.metrics) == 2


def test_length_buckets_are_reshuffled_every_epoch_and_follow_the_seed(tmp_path: Path) -> None:
    """Lightning calls ``set_epoch`` on a loader's sampler, not on a batch sampler; the task does
    it, so each epoch sees the buckets in a new order. The shuffle follows the experiment's seed."""
    from lightning.pytorch.callbacks import Callback

    samples = _token_samples(160)
    data = DataParts(
        samples[:128],
        samples[128:144],
        samples[144:],
        {"classes": ["a", "b"], "vocab": Vocab.build([str(i) for i in range(16)])},
    )

    class Orders(Callback):
        def __init__(self) -> None:
            self.seen: dict[int, list[tuple[int, ...]]] = {}

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, i: int) -> None:
            row = tuple(int(v) for v in batch.x[0, : int(batch.lengths[0])])
            self.seen.setdefault(trainer.current_epoch, []).append(row)

    def orders(seed: int, name: str) -> dict[int, list[tuple[int, ...]]]:
        exp = _parity(tmp_path, name, steps=12)
        exp = dataclasses.replace(
            exp,
            seed=seed,
            data=dataclasses.replace(exp.data, bucket_by_length=True, batch_size=32),
            trainer=dataclasses.replace(exp.trainer, max_epochs=3, max_steps=12),
        )
        spy = Orders()
        fit(exp, data=data, callbacks=[spy])
        return spy.seen

    first = orders(0, "b0")
    assert len(first) == 3 and first[0] != first[1] and first[1] != first[2]
    assert orders(0, "b0again")[0] == first[0]  # same seed, same order
    assert orders(1, "b1")[0] != first[0]  # another seed, another order


def test_integer_val_check_interval_counts_steps_across_short_epochs(tmp_path: Path) -> None:
    # 3 batches per epoch, a check every 5 steps: checks at steps 5, 10, ..., 30, not per epoch.
    exp = dataclasses.replace(
        _parity(tmp_path, "every5", steps=30),
        trainer=TrainerConfig(
            max_steps=30,
            val_check_interval=5,
            enable_progress_bar=False,
            num_threads=1,
            log_every_n_steps=1,
        ),
        data=SequenceDataConfig(
            source="synthetic_parity", seq_len=6, num_samples=120, batch_size=32
        ),
    )
    result = fit(exp)
    rows = pd.read_csv(result.run_dir / "metrics.csv")
    checked = rows.dropna(subset=["val_loss"])["step"].tolist()
    assert checked[:6] == [4, 9, 14, 19, 24, 29], checked  # Lightning logs step - 1 at a check


def test_epoch_samples_draws_fresh_permutations_back_to_back() -> None:
    from rnnkit.train.tasks.base import SequenceData

    train = [(np.zeros((4, 1)), np.full((1, 1), float(i))) for i in range(10)]
    data = SequenceData(
        (train, train[:2], None), batch_size=4, collate_fn=collate_windows, epoch_samples=25
    )
    batches = list(data.train_dataloader())
    seen = torch.cat([b.y.flatten() for b in batches]).long()
    assert len(batches) == 7 and len(seen) == 25
    counts = torch.bincount(seen, minlength=10)
    assert int(counts.min()) == 2 and int(counts.max()) == 3  # two whole passes, then 5 more
    with pytest.raises(ValueError, match=r"epoch_samples and data\.bucket_by_length"):
        SequenceData(
            (train, train, None),
            batch_size=4,
            collate_fn=collate_windows,
            epoch_samples=25,
            lengths=[4] * 10,
        )
