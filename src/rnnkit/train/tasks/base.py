"""What every task family shares: the `TaskModule` base, `Built`, in-memory data and its loaders.

A task binds a model to its loss and metrics. Metrics are accumulated as exact sums over an epoch
(token-weighted for language models), summed over processes under DDP, and logged as
``{stage}_{name}`` (``val_bpc``, ``val_accuracy``, ...). A builder (one per family, in this package)
turns an experiment config, and optionally the `DataParts` an application made in memory, into a
`Built`: the module, its datamodule, and what the artifact and summary need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from rnnkit.data.batching import BucketSampler, word_dropout
from rnnkit.data.text import Vocab
from rnnkit.train.config import OptimConfig, SchedulerConfig
from rnnkit.train.optim import build_optimizer, build_scheduler
from rnnkit.types import Batch

STAGES = ("train", "val", "test")


class TaskModule(L.LightningModule):
    """Shared training logic; a subclass defines ``_loss_and_sums`` and ``_metrics``.

    **Arguments:**
    - ``model``: the `rnnkit.models` network.
    - ``config``: the experiment as a plain dict (saved as hyper-parameters and in the artifact).
    - ``optim`` / ``scheduler``: the optimiser and schedule configs.
    """

    monitor_default = "val_loss"

    # Set by `fit` from ``run.monitor`` / ``run.monitor_mode`` before training; the plateau
    # schedule watches the same metric in the same direction as the checkpoints.
    monitor: str | None = None
    monitor_mode: Literal["min", "max"] = "min"
    # Applied to training batches only, on the device, before the step (word dropout, ...).
    train_transform: Callable[[Batch], Batch] | None = None

    def __init__(
        self,
        model: nn.Module,
        *,
        config: dict[str, Any],
        optim: OptimConfig,
        scheduler: SchedulerConfig,
    ) -> None:
        super().__init__()
        self.model: Any = model  # the rnnkit.models network (its own loss/decode APIs)
        self.optim_cfg = optim
        self.sched_cfg = scheduler
        self.save_hyperparameters({"config": config})
        self._sums: dict[str, dict[str, Tensor]] = {s: {} for s in STAGES}
        self.layer_path = "not run yet"

    # ---- the one step ----
    def _common_step(self, batch: Batch, stage: str) -> Tensor:
        loss, sums = self._loss_and_sums(batch, stage)
        acc = self._sums[stage]
        for name, value in sums.items():
            value = value.detach().to(torch.float64)
            acc[name] = acc[name] + value if name in acc else value
        if stage == "train" and self._logging_step():
            self.log(
                "train_loss", loss.detach(), on_step=True, prog_bar=True, batch_size=len(batch)
            )
        rnn = getattr(self.model, "rnn", None) or getattr(self.model, "encoder", None)
        if rnn is not None and hasattr(rnn, "last_path"):
            self.layer_path = str(rnn.last_path)
        return loss

    def _logging_step(self) -> bool:
        """Whether this step's ``train_loss`` reaches the loggers (every ``log_every_n_steps``).

        Lightning writes only those steps anyway, but ``self.log`` itself costs about a
        millisecond; on the small models of small data sets that is ~10% of a step's CPU.
        """
        trainer = self._trainer
        return trainer is None or trainer._logger_connector.should_update_logs

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def _metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        if self.train_transform is not None:
            batch = self.train_transform(batch)
        return self._common_step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._common_step(batch, "test")

    def _flush(self, stage: str) -> None:
        sums = self._sums[stage]
        self._sums[stage] = {}
        if not sums:
            return
        if self.trainer.world_size > 1:
            names = sorted(sums)
            flat = torch.cat([sums[n].reshape(-1) for n in names])
            flat = self.trainer.strategy.reduce(flat, reduce_op="sum")
            out, i = {}, 0
            for n in names:
                k = sums[n].numel()
                out[n] = flat[i : i + k].reshape(sums[n].shape)
                i += k
            sums = out
        # Per-step train_loss is already logged; epoch aggregates get their own names.
        prefix = "train_epoch" if stage == "train" else stage
        metrics = {f"{prefix}_{k}": v for k, v in self._metrics(sums).items()}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=False)

    def on_train_epoch_start(self) -> None:
        # Lightning calls ``set_epoch`` on a loader's sampler but not on a batch sampler: without
        # this, length buckets would come in the same order every epoch.
        sampler = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self._flush("train")

    def on_validation_epoch_end(self) -> None:
        self._flush("val")

    def on_test_epoch_end(self) -> None:
        self._flush("test")

    # ---- plumbing ----
    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        if isinstance(batch, Batch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.optim_cfg)
        total = int(self.trainer.estimated_stepping_batches)
        sched = build_scheduler(
            optimizer,
            self.sched_cfg,
            total_steps=total,
            monitor=self.monitor or self.monitor_default,
            mode=self.monitor_mode,
        )
        if sched is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": sched}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # RNG streams (dropout, sampling) so a resumed run draws what the uninterrupted one would.
        checkpoint["rnnkit_rng"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("rnnkit_rng")
        if rng is not None:
            torch.set_rng_state(rng["torch"])


def experiment_dict(experiment: Any) -> dict[str, Any]:
    """An experiment dataclass as plain JSON-able data."""
    return asdict(experiment)


def task_kwargs(experiment: Any) -> dict[str, Any]:
    """The `TaskModule` keyword arguments every builder passes from the experiment."""
    return {
        "config": experiment_dict(experiment),
        "optim": experiment.optim,
        "scheduler": experiment.scheduler,
    }


@dataclass
class DataParts:
    """Train/val/test samples an application built in memory, for ``build(experiment, data=...)``.

    Samples are what the family's collate expects: ``(x, y)`` pairs (classification, tagging,
    seq2seq), ``(x, y)`` or ``(x, y, covariates)`` windows (forecasting), or 1-D token-id
    sequences (language model, ``data.mode: sequences``). ``meta`` carries the sizes the data
    decides: ``vocab`` (a `Vocab`) or ``vocab_size``, ``classes``, ``n_features``, ``naive_scale``.
    A registry `rnnkit.data.DataSplits` has the same fields and is accepted as it is.
    """

    train: Sequence[Any]
    val: Sequence[Any]
    test: Sequence[Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    """A task ready to train: module, data, and what the artifact and summary need."""

    module: TaskModule
    datamodule: L.LightningDataModule
    model_config: Any
    train_batches: int  # optimiser steps per epoch (global)
    files: dict[str, str] = field(default_factory=dict)  # extra artifact files (vocab.json, ...)
    binary_files: dict[str, bytes] = field(default_factory=dict)  # (test_split.safetensors)
    artifact_json: dict[str, Any] = field(default_factory=dict)  # extra model.json fields
    baselines: dict[str, float] = field(default_factory=dict)  # metrics of reference predictors
    use_distributed_sampler: bool = True  # False when the data splits itself by rank
    after_fit: Callable[[Built], dict[str, Any]] | None = None  # summary extras (samples, ...)
    # Training batches only: `fit` installs it on the module (the config's word dropout is one; an
    # application may set its own, or compose it with the config's).
    train_transform: Callable[[Batch], Batch] | None = None
    # Runs on the user's files (`rnnkit.train.user_data.UserFiles`): splits, encoder and the
    # inputs of the baselines; None otherwise.
    user_files: Any = None
    # Baseline inputs a builder knows better than its windows (a registry series' whole history:
    # "series", "origins" per split, "season"); `rnnkit.evaluate.run_inputs` reads them.
    reference: dict[str, Any] = field(default_factory=dict)

    def scoring_trainer(self, accelerator: str) -> L.Trainer:
        """A quiet one-device trainer that scores this task's splits whole (`evaluate`, the base
        selection, an ensemble trial's averaged members): no logger, bar or checkpoints."""
        return L.Trainer(
            accelerator=accelerator,
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=self.use_distributed_sampler,
        )


class Samples(Dataset[Any]):
    """A list of samples as a map-style dataset."""

    def __init__(self, samples: Sequence[Any]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        return self.samples[i]


class _RankBatches(Sampler[list[int]]):
    """Every ``world``-th batch of a batch sampler, from ``rank``: length buckets under DDP."""

    def __init__(self, inner: BucketSampler, *, rank: int, world: int) -> None:
        self.inner, self.rank, self.world = inner, rank, world

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Any:
        batches = list(self.inner)
        usable = len(batches) - len(batches) % self.world  # equal counts on every process
        return iter(batches[self.rank : usable : self.world])

    def __len__(self) -> int:
        return len(self.inner) // self.world


class SequenceData(L.LightningDataModule):
    """Map-style train/val/test sets; the global batch is split over DDP processes.

    ``lengths`` (the steps of each sample of each split) turns on length bucketing: training
    batches from `rnnkit.data.BucketSampler` (similar lengths, less padding, reshuffled every
    epoch); validation and test batches from the whole split sorted by length (their metrics are
    sums, so the order does not change them, and sorting removes most padding).
    ``epoch_samples`` > 0 makes a training epoch that many samples, drawn as fresh permutations
    of the set back to back (``RandomSampler(num_samples=...)``).
    """

    def __init__(
        self,
        parts: tuple[Any, Any, Any],
        *,
        batch_size: int,
        collate_fn: Callable[[Sequence[Any]], Batch],
        lengths: tuple[list[int], list[int], list[int] | None] | None = None,
        seed: int = 0,
        epoch_samples: int = 0,
    ) -> None:
        super().__init__()
        if epoch_samples and lengths is not None:
            raise ValueError("data.epoch_samples and data.bucket_by_length cannot be combined")
        self.epoch_samples = epoch_samples
        self.parts = parts
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.lengths = lengths
        self.seed = seed

    def _world(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _loader(self, split: int, shuffle: bool) -> DataLoader[Any]:
        rank, world = self._world()
        per_process = max(1, self.batch_size // world)
        data = self.parts[split]
        lengths = None if self.lengths is None else self.lengths[split]
        if lengths is None and split == 0 and self.epoch_samples > 0:
            draw = RandomSampler(data, num_samples=self.epoch_samples)
            return DataLoader(
                data, batch_size=per_process, sampler=draw, collate_fn=self.collate_fn
            )
        if lengths is None:
            return DataLoader(
                data, batch_size=per_process, shuffle=shuffle, collate_fn=self.collate_fn
            )
        buckets = BucketSampler(lengths, batch_size=per_process, shuffle=shuffle, seed=self.seed)
        sampler: Sampler[list[int]] = (
            buckets if world == 1 else _RankBatches(buckets, rank=rank, world=world)
        )
        return DataLoader(data, batch_sampler=sampler, collate_fn=self.collate_fn)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(0, True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(1, False)

    def test_dataloader(self) -> DataLoader[Any]:
        if self.parts[2] is None:
            raise ValueError("this data has no test split; pass test samples to build(data=...)")
        return self._loader(2, False)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one epoch over ``n`` samples."""
    return max(1, math.ceil(n / batch_size))


def data_options(
    d: Any, parts: tuple[Any, Any, Any], *, seed: int, lengths: Callable[[Any], int]
) -> dict:
    """`SequenceData` keyword arguments for ``data.bucket_by_length`` / ``data.epoch_samples``;
    the buckets' shuffle follows the experiment's ``seed`` (as the plain loaders' shuffle does)."""
    opts: dict[str, Any] = {}
    if getattr(d, "epoch_samples", 0) < 0:
        raise ValueError(f"data.epoch_samples must be >= 0, got {d.epoch_samples}")
    if getattr(d, "epoch_samples", 0) > 0:
        opts["epoch_samples"] = d.epoch_samples
    if getattr(d, "bucket_by_length", False):
        train, val, test = ([lengths(s) for s in p] if p is not None else None for p in parts)
        assert train is not None and val is not None
        opts.update(lengths=(train, val, test), seed=seed)
    return opts


class WordDropout:
    """`rnnkit.data.batching.word_dropout` as a training-batch transform (a class: picklable)."""

    def __init__(self, p: float, *, unk_id: int = Vocab.unk_id) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"data.word_dropout must be in [0, 1), got {p}")
        self.p, self.unk_id = p, unk_id

    def __call__(self, batch: Batch) -> Batch:
        return word_dropout(batch, p=self.p, unk_id=self.unk_id)


def config_transform(d: Any) -> Callable[[Batch], Batch] | None:
    """The training-batch transform the data config asks for (``data.word_dropout``), or None."""
    p = float(getattr(d, "word_dropout", 0.0))
    return WordDropout(p) if p > 0.0 else None


def require_meta(data: Any, task: str, *keys: str) -> None:
    """A `ValueError` naming the first ``meta`` key a family needs that in-memory data lacks."""
    for key in keys:
        options = key.split("|")
        if not any(k in data.meta for k in options):
            raise ValueError(
                f"{task} data passed to build needs meta[{' or '.join(map(repr, options))}]"
            )


def as_parts(data: Any) -> tuple[Any, Any, Any]:
    """``(train, val, test)`` of `DataParts` / `DataSplits`, with a clear error when one lacks."""
    if data.val is None:
        raise ValueError("data passed to build has no validation split (DataParts.val)")
    return data.train, data.val, data.test


def preprocessing_files(
    *, vocab: Any = None, tgt_vocab: Any = None, scaler: Any = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The artifact files, and their ``model.json`` keys, that let a predictor turn raw input into
    the model's tensors: vocabularies (``vocab.json``, ``tgt_vocab.json``) and the feature scaler
    fitted on the training split (``scalers.json``)."""
    import json

    files: dict[str, str] = {}
    keys: dict[str, str] = {}
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
