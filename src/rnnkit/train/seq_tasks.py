"""Classification, tagging, forecasting and seq2seq: data, task modules, builders and prediction.

Data comes from the registry (``rnnkit.data.load``) or from seeded synthetic tasks that a model must
learn far beyond chance: ``synthetic_parity`` (classify the parity of a bit string),
``synthetic_tags`` (tag each token by whether it rises above the previous one), ``synthetic_sine``
(forecast sines of random frequency and phase) and ``synthetic_reverse`` (reverse a token string).
Forecasting metrics are in the scaled units of the series.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from rnnkit.data import collate, load
from rnnkit.data.text import Vocab
from rnnkit.models import (
    Forecaster,
    ForecasterConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    SequenceTagger,
    SequenceTaggerConfig,
)
from rnnkit.train.config import SequenceDataConfig
from rnnkit.train.fit import Built
from rnnkit.train.specs import (
    ClassificationExperiment,
    ForecastingExperiment,
    Seq2SeqExperiment,
    TaggingExperiment,
    spec_dict,
)
from rnnkit.train.tasks import TaskModule, experiment_dict
from rnnkit.types import Batch

Sample = tuple[Any, Any]
PAD, BOS, EOS = Vocab.pad_id, Vocab.bos_id, Vocab.eos_id


class _Samples(Dataset[Sample]):
    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]


def _split(samples: list[Sample]) -> tuple[list[Sample], list[Sample], list[Sample]]:
    n = len(samples)
    a, b = int(n * 0.8), int(n * 0.9)
    return samples[:a], samples[a:b], samples[b:]


def synthetic(cfg: SequenceDataConfig) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Seeded synthetic samples for ``cfg.source``, split 80/10/10."""
    rng = np.random.default_rng(cfg.seed)
    T, n = cfg.seq_len, cfg.num_samples
    out: list[Sample] = []
    for _ in range(n):
        length = int(rng.integers(max(1, T // 2), T + 1))
        if cfg.source == "synthetic_parity":
            bits = rng.integers(0, 2, length)
            out.append((bits[:, None].astype(np.float32), int(bits.sum() % 2)))
        elif cfg.source == "synthetic_tags":
            ids = rng.integers(4, 14, length)
            tags = np.concatenate([[0], (ids[1:] > ids[:-1]).astype(np.int64)])
            out.append((ids.astype(np.int64), tags))
        elif cfg.source == "synthetic_sine":
            freq, phase = rng.uniform(0.1, 0.5), rng.uniform(0, 2 * np.pi)
            t = np.arange(T + cfg.horizon)
            wave = np.sin(freq * t + phase).astype(np.float32)[:, None]
            out.append((wave[:T], wave[T:]))
        elif cfg.source == "synthetic_reverse":
            ids = rng.integers(4, 14, length).astype(np.int64)
            out.append((ids, np.concatenate([ids[::-1], [EOS]])))
        else:
            raise ValueError(f"unknown synthetic set {cfg.source!r}")
    return _split(out)


def _collate_pairs(samples: Sequence[Sample]) -> Batch:
    """Source and target id sequences of different lengths, both padded with ``<pad>``."""
    xs = [torch.as_tensor(np.asarray(s), dtype=torch.int64) for s, _ in samples]
    ys = [torch.as_tensor(np.asarray(t), dtype=torch.int64) for _, t in samples]
    ys = [y[1:] if len(y) and int(y[0]) == BOS else y for y in ys]  # the decoder feeds BOS itself
    x = nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=PAD)  # (B, S)
    y = nn.utils.rnn.pad_sequence(ys, batch_first=True, padding_value=PAD)  # (B, M)
    return Batch(x=x, lengths=torch.tensor([len(s) for s in xs]), y=y)


def _collate_windows(samples: Sequence[Sample]) -> Batch:
    x = torch.stack([torch.as_tensor(np.asarray(s), dtype=torch.float32) for s, _ in samples])
    y = torch.stack([torch.as_tensor(np.asarray(t), dtype=torch.float32) for _, t in samples])
    return Batch(x=x, lengths=torch.full((x.shape[0],), x.shape[1], dtype=torch.int64), y=y)


class SequenceData(L.LightningDataModule):
    """Map-style train/val/test sets; the global batch is split over DDP processes."""

    def __init__(
        self,
        parts: tuple[Any, Any, Any],
        *,
        batch_size: int,
        collate_fn: Callable[[Sequence[Sample]], Batch],
    ) -> None:
        super().__init__()
        self.parts = parts
        self.batch_size = batch_size
        self.collate_fn = collate_fn

    def _loader(self, data: Any, shuffle: bool) -> DataLoader[Any]:
        world = self.trainer.world_size if self.trainer is not None else 1
        return DataLoader(
            data,
            batch_size=max(1, self.batch_size // world),
            shuffle=shuffle,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.parts[0], True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.parts[1], False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.parts[2], False)


def _f1(tp: Tensor, fp: Tensor, fn: Tensor) -> float:
    denom = 2 * tp + fp + fn
    present = denom > 0
    return float((2 * tp[present] / denom[present]).mean()) if bool(present.any()) else 0.0


def _confusion(pred: Tensor, y: Tensor, classes: int) -> dict[str, Tensor]:
    onehot_p = F.one_hot(pred, classes).to(torch.float64)
    onehot_y = F.one_hot(y, classes).to(torch.float64)
    tp = (onehot_p * onehot_y).sum(0)
    return {"tp": tp, "fp": onehot_p.sum(0) - tp, "fn": onehot_y.sum(0) - tp}


class ClassificationTask(TaskModule):
    """Cross-entropy (accuracy, macro F1) or MSE regression (MAE, RMSE), one output per sequence."""

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        out = self.model(batch.x, lengths=batch.lengths)  # (B, K)
        n = torch.tensor(float(len(batch)), device=out.device)
        if self.model.config.task == "regression":
            y = batch.y.reshape(out.shape).to(out.dtype)
            loss = F.mse_loss(out, y)
            err = out - y
            return loss, {"sq": (err**2).sum(), "abs": err.abs().sum(), "n": n * out.shape[1]}
        loss = F.cross_entropy(out, batch.y)
        pred = out.argmax(-1)
        sums = {"loss_sum": loss * n, "n": n, "correct": (pred == batch.y).sum()}
        return loss, {**sums, **_confusion(pred, batch.y, out.shape[-1])}

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        if "sq" in s:
            mse = float(s["sq"] / s["n"])
            return {"loss": mse, "mae": float(s["abs"] / s["n"]), "rmse": math.sqrt(mse)}
        return {
            "loss": float(s["loss_sum"] / s["n"]),
            "accuracy": float(s["correct"] / s["n"]),
            "f1": _f1(s["tp"], s["fp"], s["fn"]),
        }


class TaggingTask(TaskModule):
    """Per-step cross-entropy over real steps; token accuracy and macro F1."""

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        logits = self.model(batch.x, lengths=batch.lengths)  # (B, T, C)
        y = batch.y[:, : logits.shape[1]]
        real = y != -100
        loss = F.cross_entropy(logits[real], y[real])
        pred = logits[real].argmax(-1)
        n = real.sum().to(torch.float64)
        sums = {"loss_sum": loss * n, "n": n, "correct": (pred == y[real]).sum()}
        return loss, {**sums, **_confusion(pred, y[real], logits.shape[-1])}

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        return {
            "loss": float(s["loss_sum"] / s["n"]),
            "accuracy": float(s["correct"] / s["n"]),
            "f1": _f1(s["tp"], s["fp"], s["fn"]),
        }


class ForecastTask(TaskModule):
    """MSE (or Gaussian NLL) on the future window; MAE, RMSE and MASE of the mean forecast."""

    def __init__(self, model: nn.Module, *, naive_scale: float, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.naive_scale = naive_scale  # in-sample MAE of the one-step naive forecast

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        loss = self.model.loss(batch.x, batch.y, lengths=batch.lengths)
        with torch.no_grad():
            err = self.model(batch.x, lengths=batch.lengths).mean - batch.y
        n = torch.tensor(float(err.numel()), device=err.device)
        return loss, {
            "loss_sum": loss * len(batch),
            "rows": torch.tensor(float(len(batch))),
            "sq": (err**2).sum(),
            "abs": err.abs().sum(),
            "n": n,
        }

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        mae = float(s["abs"] / s["n"])
        return {
            "loss": float(s["loss_sum"] / s["rows"]),
            "mae": mae,
            "rmse": math.sqrt(float(s["sq"] / s["n"])),
            "mase": mae / self.naive_scale if self.naive_scale > 0 else float("nan"),
        }


class Seq2SeqTask(TaskModule):
    """Token cross-entropy with teacher forcing; greedy exact match and token accuracy."""

    monitor_default = "val_loss"

    def __init__(self, model: nn.Module, *, teacher_forcing: float, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.teacher_forcing = teacher_forcing

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        forcing = self.teacher_forcing if stage == "train" else 1.0
        loss = self.model.loss(batch.x, batch.y, lengths=batch.lengths, teacher_forcing=forcing)
        rows = torch.tensor(float(len(batch)))
        sums = {"loss_sum": loss.detach().double() * rows, "rows": rows}
        if stage != "train":
            sums.update(self._decode_sums(batch))
        return loss, sums

    def _decode_sums(self, batch: Batch) -> dict[str, Tensor]:
        assert batch.y is not None
        y = batch.y  # (B, M)
        tokens = self.model.decode(batch.x, lengths=batch.lengths, max_len=y.shape[1]).tokens
        pred = torch.full_like(y, PAD)
        pred[:, : tokens.shape[1]] = tokens[:, : y.shape[1]]
        real = y != PAD
        same = (pred == y) & real
        exact = (same.sum(1) == real.sum(1)).sum()
        return {"tokens": real.sum().double(), "correct": same.sum().double(), "exact": exact}

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        out = {"loss": float(s["loss_sum"] / s["rows"])}
        if "tokens" in s:
            out["token_accuracy"] = float(s["correct"] / s["tokens"])
            out["exact_match"] = float(s["exact"] / s["rows"])
        return out


def _common(experiment: Any) -> dict[str, Any]:
    return {
        "config": experiment_dict(experiment),
        "optim": experiment.optim,
        "scheduler": experiment.scheduler,
    }


def _batches(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def _registry(cfg: SequenceDataConfig) -> Any:
    """Load a registry set; sets without a validation split hold out 20% of training."""
    opts = {} if cfg.val_fraction is None else {"val_fraction": cfg.val_fraction}
    splits = load(cfg.source, **opts)
    if splits.val is None and not opts:
        splits = load(cfg.source, val_fraction=0.2)
    if splits.val is None:
        raise ValueError(f"data set {cfg.source!r} has no validation split; set data.val_fraction")
    return splits


def build_classifier(experiment: ClassificationExperiment) -> Built:
    d = experiment.data
    if d.source.startswith("synthetic_"):
        parts: tuple[Any, Any, Any] = tuple(_Samples(p) for p in synthetic(d))  # type: ignore[assignment]
        meta: dict[str, Any] = {"classes": ["0", "1"], "n_features": 1}
    else:
        splits = _registry(d)
        parts, meta = (splits.train, splits.val, splits.test), splits.meta
    vocab = meta.get("vocab")
    sizes = {"vocab_size": len(vocab)} if vocab is not None else {"input_size": meta["n_features"]}
    outputs = len(meta["classes"]) if experiment.model.task == "classification" else 1
    config = SequenceClassifierConfig(num_outputs=outputs, **sizes, **spec_dict(experiment.model))
    module = ClassificationTask(SequenceClassifier(config), **_common(experiment))
    files, extra = _preprocessing_files(vocab=vocab, scaler=meta.get("scaler"))
    return Built(
        module,
        SequenceData(parts, batch_size=d.batch_size, collate_fn=collate),
        config,
        _batches(len(parts[0]), d.batch_size),
        files=files,
        artifact_json={"classes": meta["classes"], **extra},
    )


def _preprocessing_files(
    *, vocab: Vocab | None = None, tgt_vocab: Vocab | None = None, scaler: Any = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The artifact files (and their model.json keys) that let a predictor turn raw input into the
    model's tensors: vocabularies and the feature scaler fitted on the training split."""
    import json

    files, keys = {}, {}
    for key, v in (("vocab", vocab), ("tgt_vocab", tgt_vocab)):
        if v is not None:
            files[f"{key}.json"] = json.dumps(
                {"format": "rnnkit.vocab/1", "tokens": v.tokens}, ensure_ascii=False
            )
            keys[key] = f"{key}.json"
    if scaler is not None:
        files["scalers.json"] = json.dumps({"scaler": scaler.to_dict()})
        keys["scalers"] = "scalers.json"
    return files, keys


def build_tagger(experiment: TaggingExperiment) -> Built:
    d = experiment.data
    if not d.source.startswith("synthetic_"):
        raise ValueError(f"tagging supports the synthetic_tags set for now; got {d.source!r}")
    parts = tuple(_Samples(p) for p in synthetic(d))
    config = SequenceTaggerConfig(num_tags=2, vocab_size=14, **spec_dict(experiment.model))
    module = TaggingTask(SequenceTagger(config), **_common(experiment))
    data = SequenceData(parts, batch_size=d.batch_size, collate_fn=collate)  # type: ignore[arg-type]
    return Built(module, data, config, _batches(len(parts[0]), d.batch_size))


def build_forecaster(experiment: ForecastingExperiment) -> Built:
    d = experiment.data
    files: dict[str, str] = {}
    if d.source.startswith("synthetic_"):
        parts = tuple(_Samples(p) for p in synthetic(d))
        scale = float(np.mean([np.abs(np.diff(x[:, 0])).mean() for x, _ in parts[0].samples]))
        horizon, targets, channels = d.horizon, 1, 1
    else:
        splits = load(d.source, horizon=d.horizon)
        data = splits.meta["data"]
        parts = tuple(
            _Samples(list(zip(s.x, s.y, strict=True))) for s in (data.train, data.val, data.test)
        )
        scale = float(np.abs(np.diff(data.train.series[:, 0])).mean())
        horizon, targets, channels = d.horizon, len(data.targets), len(data.columns)
        files["scalers.json"] = data.state_json()
    if channels != targets:
        raise ValueError(f"{d.source}: covariate channels are not supported by this trainer yet")
    config = ForecasterConfig(target_size=targets, horizon=horizon, **spec_dict(experiment.model))
    module = ForecastTask(Forecaster(config), naive_scale=scale, **_common(experiment))
    data_module = SequenceData(parts, batch_size=d.batch_size, collate_fn=_collate_windows)  # type: ignore[arg-type]
    extra = {"scalers": "scalers.json"} if files else {}
    return Built(
        module,
        data_module,
        config,
        _batches(len(parts[0]), d.batch_size),
        files=files,
        artifact_json=extra,
        baselines={"naive_scale": scale},
    )


def build_seq2seq(experiment: Seq2SeqExperiment) -> Built:
    d = experiment.data
    if d.source.startswith("synthetic_"):
        parts: tuple[Any, Any, Any] = tuple(_Samples(p) for p in synthetic(d))  # type: ignore[assignment]
        src_size = tgt_size = 14
    else:
        splits = _registry(d)
        parts = (splits.train, splits.val, splits.test)
        src_size, tgt_size = len(splits.meta["src_vocab"]), len(splits.meta["tgt_vocab"])
    spec = spec_dict(experiment.model, drop=("teacher_forcing",))
    config = Seq2SeqConfig(
        src_vocab_size=src_size, tgt_vocab_size=tgt_size, pad_id=PAD, bos_id=BOS, eos_id=EOS, **spec
    )
    module = Seq2SeqTask(
        Seq2Seq(config), teacher_forcing=experiment.model.teacher_forcing, **_common(experiment)
    )
    data = SequenceData(parts, batch_size=d.batch_size, collate_fn=_collate_pairs)
    files: dict[str, str] = {}
    extra: dict[str, str] = {}
    if not d.source.startswith("synthetic_"):
        files, extra = _preprocessing_files(
            vocab=splits.meta["src_vocab"], tgt_vocab=splits.meta["tgt_vocab"]
        )
    return Built(
        module,
        data,
        config,
        _batches(len(parts[0]), d.batch_size),
        files=files,
        artifact_json=extra,
    )


SEQUENCE_BUILDERS: dict[str, Callable[[Any], Built]] = {
    "classification": build_classifier,
    "tagging": build_tagger,
    "forecasting": build_forecaster,
    "seq2seq": build_seq2seq,
}


@torch.no_grad()
def predict_split(loaded: Any, path: Path) -> dict[str, Any]:
    """Predict the test split of a finished run into ``path`` (CSV: row, prediction, target)."""
    from rnnkit.train.fit import build

    built = build(loaded.experiment)
    model = loaded.model
    data: Any = built.datamodule
    rows: list[tuple[int, str, str]] = []
    for batch in data.test_dataloader():
        if loaded.task == "seq2seq":
            out = model.decode(batch.x, lengths=batch.lengths, max_len=batch.y.shape[1]).tokens
        elif loaded.task == "forecasting":
            out = model(batch.x, lengths=batch.lengths).mean
        else:
            out = model(batch.x, lengths=batch.lengths)
            if loaded.task == "tagging" or model.config.task == "classification":
                out = out.argmax(-1)
        for p, t in zip(out.tolist(), batch.y.tolist(), strict=True):
            rows.append((len(rows), str(p), str(t)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "prediction", "target"])
        writer.writerows(rows)
    return {"predictions": str(path), "rows": len(rows)}


@torch.no_grad()
def forecast_ahead(loaded: Any, *, horizon: int) -> dict[str, Any]:
    """Roll the forecaster ``horizon`` steps past the last step of the test split."""
    from rnnkit.train.fit import build

    if horizon < 1:
        raise ValueError(f"--horizon must be >= 1, got {horizon}")
    built = build(loaded.experiment)
    data: Any = built.datamodule
    x, y = data.parts[2][len(data.parts[2]) - 1]
    # The last window's inputs and targets together end at the series' last step.
    last = np.concatenate([np.asarray(x), np.asarray(y)], axis=0)[-len(x) :]
    window = torch.as_tensor(last, dtype=torch.float32)[None]  # (1, T, Y)
    steps: list[Tensor] = []
    while sum(s.shape[1] for s in steps) < horizon:
        mean = loaded.model(window).mean  # (1, H, Y)
        steps.append(mean)
        window = torch.cat([window, mean], dim=1)[:, -window.shape[1] :]
    forecast = torch.cat(steps, dim=1)[0, :horizon]  # (N, Y)
    scalers = Path(loaded.meta["_folder"]) / "scalers.json"
    units = "scaled"
    if scalers.is_file():
        import json

        from rnnkit.data import Scaler

        state = json.loads(scalers.read_text(encoding="utf-8"))
        scaler = Scaler.from_dict(state["scaler"])
        forecast = torch.as_tensor(
            scaler.inverse_transform(
                forecast.numpy().astype(np.float64), columns=range(forecast.shape[1])
            )
        )
        units = "original"
    return {"horizon": horizon, "units": units, "forecast": forecast[:, 0].tolist()}
