"""Sequence classification and regression (many-to-one): `ClassificationTask` and its builder."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.data.batching import SequenceDataset, collate
from rnnkit.data.datasets import load
from rnnkit.data.framing import frame_all, frame_size
from rnnkit.data.synthetic import synthetic
from rnnkit.models import SequenceClassifier, SequenceClassifierConfig
from rnnkit.train.config import SequenceDataConfig
from rnnkit.train.specs import ClassificationExperiment, spec_dict
from rnnkit.train.tasks.base import (
    Built,
    DataParts,
    SequenceData,
    TaskModule,
    as_parts,
    config_transform,
    data_options,
    preprocessing_files,
    require_meta,
    steps_per_epoch,
    task_kwargs,
)
from rnnkit.types import Batch


def f1_macro(tp: Tensor, fp: Tensor, fn: Tensor) -> float:
    """Macro F1 over the classes that occur (in targets or predictions)."""
    denom = 2 * tp + fp + fn
    present = denom > 0
    return float((2 * tp[present] / denom[present]).mean()) if bool(present.any()) else 0.0


def confusion_sums(pred: Tensor, y: Tensor, classes: int) -> dict[str, Tensor]:
    """Per-class true positives, false positives and false negatives (summable over batches)."""
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
        return loss, {**sums, **confusion_sums(pred, batch.y, out.shape[-1])}

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        if "sq" in s:
            mse = float(s["sq"] / s["n"])
            return {"loss": mse, "mae": float(s["abs"] / s["n"]), "rmse": math.sqrt(mse)}
        return {
            "loss": float(s["loss_sum"] / s["n"]),
            "accuracy": float(s["correct"] / s["n"]),
            "f1": f1_macro(s["tp"], s["fp"], s["fn"]),
        }


def registry_splits(cfg: SequenceDataConfig) -> Any:
    """Load a registry set with its own validation split, or ``data.val_fraction`` of training.

    A set without one (the UCR/UEA archive) holds out ``data.val_fraction`` (0.2) of training as a
    run on the user's files does (stratified by class, seed ``data.seed + 1``) and fits its scaler
    on the rest only, so the registry and the same rows written as files train alike.
    """
    splits = load(cfg.source)
    if splits.val is None:
        splits = load(cfg.source, val_fraction=cfg.val_fraction or 0.2, seed=cfg.seed + 1)
    elif cfg.val_fraction is not None:
        splits = load(cfg.source, val_fraction=cfg.val_fraction)
    if splits.val is None:
        raise ValueError(f"data set {cfg.source!r} has no validation split; set data.val_fraction")
    return splits


def framed_splits(data: Any, d: SequenceDataConfig) -> tuple[Any, int]:
    """A registry set framed by ``data.frame`` (`rnnkit.data.framing`; the frame from its training
    lengths): the splits, with ``n_features`` widened, and the frame. Registry sets only: data an
    application built in memory arrives as it should be read, and user files frame in their
    encoder (`rnnkit.train.user_data`)."""
    if "n_features" not in data.meta:  # token ids: nothing to frame
        return data, 1
    lengths = [len(x) for x in data.train.sequences]
    frame = frame_size(lengths, frame=d.frame, steps=d.frame_steps, quantile=d.frame_quantile)
    if frame == 1:
        return data, 1
    framed = {
        k: None
        if v is None
        else SequenceDataset(frame_all(v.sequences, frame), v.labels, source=v.source)
        for k, v in (("train", data.train), ("val", data.val), ("test", data.test))
    }
    meta = {**data.meta, "n_features": frame * int(data.meta["n_features"])}
    return replace(data, **framed, meta=meta), frame


def synthetic_parts(d: SequenceDataConfig) -> DataParts:
    """The config's synthetic set as `DataParts` (no meta)."""
    train, val, test = synthetic(
        d.source, num_samples=d.num_samples, seq_len=d.seq_len, seed=d.seed, horizon=d.horizon
    )
    return DataParts(train, val, test)


def _length(sample: Any) -> int:
    return len(sample[0])


def build_classifier(experiment: ClassificationExperiment, data: Any = None) -> Built:
    d = experiment.data
    frame = 1  # in-memory data (an application's, the user's encoded files) comes framed
    reference: dict[str, Any] = {}
    if data is None and d.source.startswith("synthetic_"):
        data = synthetic_parts(d)
        data.meta.update({"classes": ["0", "1"], "n_features": 1})
    elif data is None:
        steps = registry_splits(d)
        data, frame = framed_splits(steps, d)
        if frame > 1:  # the baselines read the series step by step, as on user files
            reference["unframed"] = (steps.train, steps.val, steps.test)
    parts, meta = as_parts(data), data.meta
    require_meta(data, "classification", "classes", "vocab|n_features")
    vocab = meta.get("vocab")
    sizes = {"vocab_size": len(vocab)} if vocab is not None else {"input_size": meta["n_features"]}
    outputs = len(meta["classes"]) if experiment.model.task == "classification" else 1
    config = SequenceClassifierConfig(
        num_outputs=outputs, **sizes, **spec_dict(experiment.model, drop=("ensemble",))
    )
    module = ClassificationTask(SequenceClassifier(config), **task_kwargs(experiment))
    opts = data_options(d, parts, seed=experiment.seed, lengths=_length)
    files, keys = preprocessing_files(vocab=vocab, scaler=meta.get("scaler"))
    return Built(
        module,
        SequenceData(parts, batch_size=d.batch_size, collate_fn=collate, **opts),
        config,
        steps_per_epoch(len(parts[0]), d.batch_size),
        files=files,
        artifact_json={
            "classes": list(meta.get("classes", [])),
            **keys,
            **({"frame": frame} if frame > 1 else {}),
        },
        train_transform=config_transform(d),
        reference=reference,
    )
