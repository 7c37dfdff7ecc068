"""Sequence tagging (many-to-many, aligned): `TaggingTask` and its builder."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.data.batching import collate
from rnnkit.models import SequenceTagger, SequenceTaggerConfig
from rnnkit.train.specs import TaggingExperiment, spec_dict
from rnnkit.train.tasks.base import (
    Built,
    SequenceData,
    TaskModule,
    as_parts,
    config_transform,
    data_options,
    require_meta,
    steps_per_epoch,
    task_kwargs,
)
from rnnkit.train.tasks.classify import confusion_sums, f1_macro, synthetic_parts
from rnnkit.types import Batch


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
        return loss, {**sums, **confusion_sums(pred, y[real], logits.shape[-1])}

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        return {
            "loss": float(s["loss_sum"] / s["n"]),
            "accuracy": float(s["correct"] / s["n"]),
            "f1": f1_macro(s["tp"], s["fp"], s["fn"]),
        }


def build_tagger(experiment: TaggingExperiment, data: Any = None) -> Built:
    """Tagger over token ids; ``meta`` of in-memory data gives ``vocab_size`` and ``num_tags``."""
    d = experiment.data
    if data is None:
        if not d.source.startswith("synthetic_"):
            raise ValueError(f"tagging supports the synthetic_tags set for now; got {d.source!r}")
        data = synthetic_parts(d)
        data.meta.update({"vocab_size": 14, "num_tags": 2})
    parts = as_parts(data)
    require_meta(data, "tagging", "vocab_size", "num_tags")
    config = SequenceTaggerConfig(
        vocab_size=int(data.meta["vocab_size"]),
        num_tags=int(data.meta["num_tags"]),
        **spec_dict(experiment.model),
    )
    module = TaggingTask(SequenceTagger(config), **task_kwargs(experiment))
    opts = data_options(d, parts, seed=experiment.seed, lengths=lambda s: len(s[0]))
    datamodule = SequenceData(parts, batch_size=d.batch_size, collate_fn=collate, **opts)
    return Built(
        module,
        datamodule,
        config,
        steps_per_epoch(len(parts[0]), d.batch_size),
        train_transform=config_transform(d),
    )
