"""Typed configs for training: optimiser, scheduler, trainer, truncated BPTT, data and run.

Everything a run uses is one of these dataclasses, filled from YAML by jsonargparse (``rnnkit fit
--config ...``) and written back to ``config.yaml`` in the run directory. Model settings are the
models' own config dataclasses minus the sizes the data decides (vocabulary, classes, inputs);
see `rnnkit.train.specs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class OptimConfig:
    """The optimiser. ``weight_decay`` is decoupled for AdamW, L2 for the others."""

    name: Literal["adam", "adamw", "rmsprop", "sgd"] = "adamw"  # torch.optim class
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 0.01  # AdamW decoupled decay; L2 penalty for adam/rmsprop/sgd
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW moment decay
    momentum: float = 0.9  # SGD and RMSprop momentum
    nesterov: bool = False  # SGD Nesterov momentum
    eps: float = 1e-8  # Adam/AdamW/RMSprop denominator floor

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass
class SchedulerConfig:
    """The learning-rate schedule, stepped every optimiser step (plateau: every validation)."""

    name: Literal["none", "cosine", "step", "plateau", "onecycle"] = "cosine"  # schedule kind
    warmup_steps: int = 100  # cosine: linear warm-up from 0 to lr over these steps
    min_lr_ratio: float = 0.1  # cosine: final lr as a fraction of the peak
    step_size: int = 1000  # step: decay every this many optimiser steps
    gamma: float = 0.5  # step / plateau: multiply lr by this
    patience: int = 2  # plateau: validations without improvement before decaying
    pct_start: float = 0.3  # onecycle: fraction of steps spent increasing lr


@dataclass
class EarlyStoppingConfig:
    """Stop when the monitored validation metric has not improved for ``patience`` validations."""

    enabled: bool = True  # add Lightning's EarlyStopping callback
    patience: int = 5  # validations without improvement
    min_delta: float = 0.0  # smallest change that counts as improvement


@dataclass
class TrainerConfig:
    """What Lightning's ``Trainer`` gets, with the practices on by default."""

    max_steps: int = 2000  # optimiser steps (-1: run max_epochs)
    max_epochs: int = -1  # epochs (-1: unlimited, bounded by max_steps / max_time)
    max_time: str | None = None  # wall-clock budget "DD:HH:MM:SS", e.g. "00:00:03:00"
    gradient_clip_val: float = 1.0  # clip the global gradient norm to this (0: off)
    val_check_interval: int | float = 1.0  # validate every N steps (int) or fraction of an epoch
    limit_val_batches: int | float = 1.0  # validation batches per check (int) or fraction
    limit_test_batches: int | float = 1.0  # test batches (int) or fraction
    log_every_n_steps: int = 10  # metrics CSV / TensorBoard rows
    accelerator: str = "auto"  # "cpu", "gpu", "auto"
    devices: int | str = 1  # processes/devices; > 1 on CPU runs DDP with gloo
    strategy: str = "auto"  # "auto", "ddp", "ddp_spawn"; devices > 1 picks DDP
    num_nodes: int = 1  # machines (with torchrun)
    precision: str = "32-true"  # "32-true", "bf16-mixed", "16-mixed"
    deterministic: bool = False  # torch deterministic algorithms (for exact resume tests)
    enable_progress_bar: bool = True  # Lightning's progress bar
    checkpoint_every_n_steps: int = 0  # also write last.ckpt every N steps (0: at validation only)
    num_threads: int = 0  # torch intra-op threads (0: torch's default)
    diagnostics_every: int = 0  # gradient flow etc. every N steps into RUN/diagnostics (0: off)


@dataclass
class TBPTTConfig:
    """Truncated backpropagation through time over a long stream (Williams & Peng's k1/k2).

    Every ``k1`` tokens the weights are updated, backpropagating through the last ``k2`` tokens
    (``k2 >= k1``; None means ``k2 = k1``). The state is carried, detached, from chunk to chunk.
    """

    k1: int = 100  # tokens between updates (the chunk length)
    k2: int | None = None  # tokens backpropagated through (None: k1)
    carry_state: bool = True  # carry the state across chunks (False: every chunk starts at zero)
    # Zero each stream's carried state once every this many chunks (staggered; 0: never)
    # so the model also learns to start from the zero state that generation starts from.
    reset_every: int = 50

    def __post_init__(self) -> None:
        if self.k1 < 1:
            raise ValueError(f"tbptt.k1 must be >= 1, got {self.k1}")
        if self.k2 is not None and self.k2 < self.k1:
            raise ValueError(f"tbptt.k2 must be >= tbptt.k1 ({self.k1}), got {self.k2}")


@dataclass
class RunConfig:
    """Where and how a run is written."""

    root: str = "runs"  # folder holding run directories
    name: str | None = None  # run directory name (None: "<task>-<timestamp>")
    monitor: str | None = None  # metric for best checkpoint / early stopping (None: task default)
    # Direction of the monitored metric; auto: max for accuracy/f1/exact_match/ndcg/hit_rate/auc...
    monitor_mode: Literal["auto", "min", "max"] = "auto"
    test: bool = False  # after training, restore the best checkpoint and score the test split
    plot: bool = True  # write loss_curve.png

    def __post_init__(self) -> None:
        if self.monitor_mode not in ("auto", "min", "max"):
            raise ValueError(
                f"run.monitor_mode must be auto, min or max; got {self.monitor_mode!r}"
            )


# Fragments of metric names that improve upwards; every other metric is minimised.
_MAXIMISED = (
    "acc",
    "f1",
    "exact_match",
    "ndcg",
    "hit",
    "hr@",
    "auc",
    "recall",
    "precision",
    "mrr",
    "r2",
)


def monitor_mode(metric: str, mode: str = "auto") -> Literal["min", "max"]:
    """``min`` or ``max`` for ``metric``: ``mode`` itself, or guessed from the name when auto."""
    if mode in ("min", "max"):
        return mode  # type: ignore[return-value]
    name = metric.lower()
    return "max" if any(part in name for part in _MAXIMISED) else "min"


@dataclass
class TextDataConfig:
    """A text corpus for a language model, read as one stream and split contiguously."""

    source: str = "pydoc_topics"  # registry name ("shakespeare", "python_stdlib", ...) or a file
    level: Literal["char", "word"] = "char"  # tokens: characters, or words/numbers/punctuation
    lower: bool = False  # lower-case the text first
    max_chars: int | None = None  # keep only the first N tokens of each split (None: all)
    head_chars: int | None = None  # cut the text to its first N characters, then split (None: all)
    val_fraction: float = 0.05  # held-out fraction (contiguous, after train)
    test_fraction: float = 0.05  # test fraction (contiguous, at the end)
    batch_size: int = 32  # parallel streams per optimiser step (global, over all processes)
    val_batch_size: int = 32  # parallel streams for validation/test
    min_freq: int = 2  # word level: words seen fewer times in the training text become <unk>
    max_vocab: int | None = None  # word level: at most this many tokens, specials included
    # stream: one text read as parallel streams with truncated BPTT; sequences: many independent
    # sequences (one per line of the source, or an application's own), padded, loss masked.
    mode: Literal["stream", "sequences"] = "stream"
    bucket_by_length: bool = False  # sequences mode: batch sequences of similar length
    word_dropout: float = 0.0  # training inputs: each token becomes <unk> with this probability

    def __post_init__(self) -> None:
        if self.level not in ("char", "word"):
            raise ValueError(f"data.level must be 'char' or 'word', got {self.level!r}")
        for name in ("max_chars", "head_chars", "max_vocab"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"data.{name} must be >= 1 or null, got {value}")
        if self.min_freq < 1:
            raise ValueError(f"data.min_freq must be >= 1, got {self.min_freq}")
        if self.batch_size < 1 or self.val_batch_size < 1:
            raise ValueError(
                f"data.batch_size and data.val_batch_size must be >= 1, got {self.batch_size}, "
                f"{self.val_batch_size}"
            )


@dataclass
class SequenceDataConfig:
    """A labelled sequence set from the registry, or a synthetic task, for the other families."""

    source: str = "synthetic_parity"  # registry name or synthetic_{parity,sine,tags,reverse}
    batch_size: int = 32  # sequences per optimiser step (global, over all processes)
    num_samples: int = 2000  # synthetic sets: sequences generated
    seq_len: int = 16  # synthetic sets: steps per sequence (max for variable length)
    seed: int = 0  # synthetic sets: generator seed
    horizon: int = 1  # forecasting: steps ahead
    val_fraction: float | None = None  # registry sets: held-out share (None: the set's own split)
    bucket_by_length: bool = False  # training batches of similar length (less padding)
    word_dropout: float = 0.0  # token inputs, training only: each token becomes <unk> with this p
    # Training samples per epoch (0: one pass). More than the set draws fresh permutations back
    # to back, so a set of a few batches does not pay Lightning's per-epoch work every few steps.
    epoch_samples: int = 0


@dataclass
class Common:
    """Fields every experiment shares."""

    seed: int = 1234  # seed_everything: python, numpy, torch, dataloader workers
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    run: RunConfig = field(default_factory=RunConfig)
