"""Sequence to sequence (different lengths): `Seq2SeqTask`, pair collate and builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.text import Vocab
from rnnkit.models import Seq2Seq, Seq2SeqConfig
from rnnkit.train.specs import Seq2SeqExperiment, spec_dict
from rnnkit.train.tasks.base import (
    Built,
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
from rnnkit.train.tasks.classify import registry_splits, synthetic_parts
from rnnkit.types import Batch

PAD, BOS, EOS = Vocab.pad_id, Vocab.bos_id, Vocab.eos_id


def collate_pairs(samples: Sequence[Any]) -> Batch:
    """Source and target id sequences of different lengths, both padded with ``<pad>``."""
    xs = [torch.as_tensor(np.asarray(s), dtype=torch.int64) for s, _ in samples]
    ys = [torch.as_tensor(np.asarray(t), dtype=torch.int64) for _, t in samples]
    ys = [y[1:] if len(y) and int(y[0]) == BOS else y for y in ys]  # the decoder feeds BOS itself
    x = nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=PAD)  # (B, S)
    y = nn.utils.rnn.pad_sequence(ys, batch_first=True, padding_value=PAD)  # (B, M)
    return Batch(x=x, lengths=torch.tensor([len(s) for s in xs]), y=y)


class Seq2SeqTask(TaskModule):
    """Token cross-entropy with teacher forcing; greedy exact match and token accuracy."""

    monitor_default = "val_loss"

    def __init__(self, model: nn.Module, *, teacher_forcing: float, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.teacher_forcing = teacher_forcing

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        y = batch.y  # (B, M)
        decoded: dict[str, Tensor] = {}
        if stage == "train":
            forcing = self.teacher_forcing
            loss = self.model.loss(batch.x, y, lengths=batch.lengths, teacher_forcing=forcing)
        else:  # the loss's teacher-forced logits and the greedy tokens from one decoder loop
            logits, tokens = self.model.forced_and_greedy(batch.x, y, lengths=batch.lengths)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=PAD)
            decoded = _decode_sums(tokens, y)
        rows = torch.tensor(float(len(batch)), device=loss.device)
        return loss, {"loss_sum": loss.detach().double() * rows, "rows": rows, **decoded}

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        out = {"loss": float(s["loss_sum"] / s["rows"])}
        if "tokens" in s:
            out["token_accuracy"] = float(s["correct"] / s["tokens"])
            out["exact_match"] = float(s["exact"] / s["rows"])
        return out


def _decode_sums(tokens: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Greedy ``tokens`` ``(B, N)`` against targets ``y`` ``(B, M)``: matched real positions, and
    rows matched at every real position (exact match); positions past ``N`` count as ``<pad>``."""
    pred = torch.full_like(y, PAD)
    pred[:, : tokens.shape[1]] = tokens[:, : y.shape[1]]
    real = y != PAD
    same = (pred == y) & real
    exact = (same.sum(1) == real.sum(1)).sum()
    return {"tokens": real.sum().double(), "correct": same.sum().double(), "exact": exact}


def build_seq2seq(experiment: Seq2SeqExperiment, data: Any = None) -> Built:
    """Pairs -> `Seq2Seq`; in-memory data gives ``src_vocab``/``tgt_vocab`` (or sizes) in meta."""
    d = experiment.data
    if data is None and d.source.startswith("synthetic_"):
        data = synthetic_parts(d)
        data.meta.update({"src_vocab_size": 14, "tgt_vocab_size": 14})
    elif data is None:
        data = registry_splits(d)
    parts, meta = as_parts(data), data.meta
    require_meta(data, "seq2seq", "src_vocab_size|src_vocab", "tgt_vocab_size|tgt_vocab")
    src = meta.get("src_vocab_size") or len(meta["src_vocab"])
    tgt = meta.get("tgt_vocab_size") or len(meta["tgt_vocab"])
    spec = spec_dict(experiment.model, drop=("teacher_forcing",))
    config = Seq2SeqConfig(
        src_vocab_size=src, tgt_vocab_size=tgt, pad_id=PAD, bos_id=BOS, eos_id=EOS, **spec
    )
    module = Seq2SeqTask(
        Seq2Seq(config), teacher_forcing=experiment.model.teacher_forcing, **task_kwargs(experiment)
    )
    opts = data_options(d, parts, seed=experiment.seed, lengths=lambda s: len(s[0]))
    datamodule = SequenceData(parts, batch_size=d.batch_size, collate_fn=collate_pairs, **opts)
    files, keys = preprocessing_files(vocab=meta.get("src_vocab"), tgt_vocab=meta.get("tgt_vocab"))
    return Built(
        module,
        datamodule,
        config,
        steps_per_epoch(len(parts[0]), d.batch_size),
        files=files,
        artifact_json=keys,
        train_transform=config_transform(d),
    )
