"""Typed configs for training: optimiser, scheduler, trainer, truncated BPTT, data and run.

Everything a run uses is one of these dataclasses, filled from YAML by jsonargparse (``rnnkit fit
--config ...``) and written back to ``config.yaml`` in the run directory. Model settings are the
models' own config dataclasses minus the sizes the data decides (vocabulary, classes, inputs);
see `rnnkit.train.specs`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from rnnkit.frame_options import check_frame_options

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d*)?)\s*(d|days?|h|hours?|hrs?|m|mins?|minutes?|s|secs?|seconds?)")
DURATION_FORMATS = (
    "'90s', '3m', '1h30m', '2 hours', '00:03:00' (HH:MM:SS) or '00:00:03:00' (DD:HH:MM:SS)"
)


def parse_duration(text: str, *, key: str = "trainer.max_time") -> timedelta:
    """A wall-clock budget from the formats people write: ``90s``, ``3m``, ``1h30m``, ``2 hours``,
    ``00:03:00`` (HH:MM:SS), ``00:00:03:00`` (Lightning's DD:HH:MM:SS); ``ValueError`` otherwise."""
    raw = str(text).strip().lower()
    seconds: float | None = None
    if re.fullmatch(r"\d+(:\d+){1,3}", raw):
        parts = [int(p) for p in raw.split(":")]
        seconds = 0
        for value, unit in zip(reversed(parts), (1, 60, 3600, 86400), strict=False):
            seconds += value * unit
    elif raw and re.fullmatch(rf"(?:{_PART.pattern}\s*)+", raw):
        seconds = sum(float(n) * _UNITS[u[0]] for n, u in _PART.findall(raw))
    if seconds is None or not math.isfinite(seconds) or seconds > 366 * 86400:
        raise ValueError(f"{key} {text!r} is not a duration; write e.g. {DURATION_FORMATS}")
    if seconds <= 0:
        raise ValueError(f"{key} must be longer than 0 s, got {text!r}")
    return timedelta(seconds=seconds)


def _need(ok: bool, key: str, rule: str, value: object) -> None:
    """``ValueError("KEY must be RULE, got VALUE")`` unless ``ok``: one line naming the key."""
    if not ok:
        raise ValueError(f"{key} must be {rule}, got {value!r}")


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _fraction(x: int | float, *, unit: bool = True) -> bool:
    """An int >= 0 (a count) or a float in [0, 1] (a share), as Lightning's limit/interval args."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return x >= 0
    return _finite(x) and 0.0 <= x <= (1.0 if unit else math.inf)


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
        _need(_finite(self.lr) and self.lr > 0, "optim.lr", "a finite number > 0", self.lr)
        _need(
            _finite(self.weight_decay) and self.weight_decay >= 0,
            "optim.weight_decay",
            "a finite number >= 0",
            self.weight_decay,
        )
        _need(
            len(self.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in self.betas),
            "optim.betas",
            "two numbers in [0, 1)",
            self.betas,
        )
        _need(
            _finite(self.momentum) and self.momentum >= 0, "optim.momentum", ">= 0", self.momentum
        )
        _need(_finite(self.eps) and self.eps > 0, "optim.eps", "a finite number > 0", self.eps)
        if self.nesterov and self.name == "sgd" and self.momentum <= 0:
            raise ValueError("optim.nesterov needs optim.momentum > 0 (SGD)")


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

    def __post_init__(self) -> None:
        k = "scheduler."
        _need(self.warmup_steps >= 0, k + "warmup_steps", ">= 0", self.warmup_steps)
        _need(
            _finite(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1,
            k + "min_lr_ratio",
            "in [0, 1]",
            self.min_lr_ratio,
        )
        _need(self.step_size >= 1, k + "step_size", ">= 1", self.step_size)
        _need(
            _finite(self.gamma) and self.gamma > 0, k + "gamma", "a finite number > 0", self.gamma
        )
        _need(self.patience >= 0, k + "patience", ">= 0", self.patience)
        _need(
            _finite(self.pct_start) and 0 < self.pct_start < 1,
            k + "pct_start",
            "in (0, 1)",
            self.pct_start,
        )


@dataclass
class EarlyStoppingConfig:
    """Stop when the monitored validation metric has not improved for ``patience`` validations.

    ``min_steps`` is a warm-up: validations before that many optimiser steps are logged but are
    not candidates, neither for early stopping's best score nor for the best checkpoint (also with
    ``enabled: false``). On a validation split of a handful of series an early lucky score would
    otherwise be kept as "the best" model and stop the run (see docs/training.md).
    """

    enabled: bool = True  # add Lightning's EarlyStopping callback
    patience: int = 5  # validations without improvement
    min_delta: float = 0.0  # smallest change that counts as improvement (and the width of a tie)
    min_steps: int = 0  # optimiser steps before a validation may stop the run or be kept as best

    def __post_init__(self) -> None:
        _need(self.patience >= 0, "early_stopping.patience", ">= 0", self.patience)
        _need(self.min_steps >= 0, "early_stopping.min_steps", ">= 0", self.min_steps)
        _need(
            _finite(self.min_delta) and self.min_delta >= 0,
            "early_stopping.min_delta",
            "a finite number >= 0",
            self.min_delta,
        )


@dataclass
class TrainerConfig:
    """What Lightning's ``Trainer`` gets, with the practices on by default."""

    max_steps: int = 2000  # optimiser steps (-1: run max_epochs)
    max_epochs: int = -1  # epochs (-1: unlimited, bounded by max_steps / max_time)
    max_time: str | None = None  # wall-clock budget: "90s", "3m", "1h30m", "00:03:00"
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
    checkpoint_every_n_steps: int = 0  # also write last.ckpt every N steps (0: off)
    # last.ckpt (for --resume) at a validation once this many seconds passed since its previous
    # write (0: at every validation), and always when training ends; best.ckpt is separate.
    last_checkpoint_every_s: float = 60.0
    num_threads: int = 0  # torch intra-op threads (0: torch's default)
    diagnostics_every: int = 0  # gradient flow etc. every N steps into RUN/diagnostics (0: off)
    # Non-finite loss/gradient steps are always skipped; this many in a row stop the run.
    nonfinite_patience: int = 5
    # Random restarts selected on validation: with restarts = K > 1, K probe runs of
    # ``restart_steps`` steps (seeds seed*K .. seed*K+K-1) are scored on the monitored metric
    # and only the best seed is trained in full (probes under RUN/restarts/, scores in summary).
    restarts: int = 1
    restart_steps: int = 100

    def __post_init__(self) -> None:
        k = "trainer."
        _need(
            self.max_steps == -1 or self.max_steps >= 1,
            k + "max_steps",
            ">= 1 (or -1: bounded by max_epochs / max_time)",
            self.max_steps,
        )
        _need(
            self.max_epochs == -1 or self.max_epochs >= 1,
            k + "max_epochs",
            ">= 1 (or -1: unlimited)",
            self.max_epochs,
        )
        if self.max_time is not None:
            parse_duration(self.max_time, key=k + "max_time")
        if self.max_steps == -1 and self.max_epochs == -1 and self.max_time is None:
            raise ValueError(
                "trainer.max_steps, trainer.max_epochs and trainer.max_time are all unbounded; "
                "set at least one so the run ends"
            )
        _need(
            _finite(self.gradient_clip_val) and self.gradient_clip_val >= 0,
            k + "gradient_clip_val",
            "a finite number >= 0 (0: off)",
            self.gradient_clip_val,
        )
        _need(
            _fraction(self.val_check_interval) and self.val_check_interval != 0,
            k + "val_check_interval",
            "an int >= 1 (steps) or a float in (0, 1] (of an epoch)",
            self.val_check_interval,
        )
        for name in ("limit_val_batches", "limit_test_batches"):
            _need(
                _fraction(getattr(self, name)),
                k + name,
                "an int >= 0 (batches) or a float in [0, 1]",
                getattr(self, name),
            )
        _need(self.log_every_n_steps >= 1, k + "log_every_n_steps", ">= 1", self.log_every_n_steps)
        _need(
            self.accelerator in ("auto", "cpu", "gpu", "cuda", "mps"),
            k + "accelerator",
            "one of auto, cpu, gpu, cuda, mps",
            self.accelerator,
        )
        devices_ok = (
            self.devices >= 1
            if isinstance(self.devices, int)
            else self.devices == "auto" or bool(re.fullmatch(r"\d+(,\d+)*,?", self.devices))
        )
        _need(devices_ok, k + "devices", "an int >= 1, 'auto' or a list like '0,1'", self.devices)
        _need(
            self.strategy in ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"),
            k + "strategy",
            "one of auto, ddp, ddp_spawn",
            self.strategy,
        )
        _need(self.num_nodes >= 1, k + "num_nodes", ">= 1", self.num_nodes)
        precisions = (
            "32-true",
            "32",
            "64-true",
            "64",
            "bf16-mixed",
            "bf16-true",
            "16-mixed",
            "16-true",
        )
        _need(
            self.precision in precisions,
            k + "precision",
            "one of " + ", ".join(precisions),
            self.precision,
        )
        _need(
            _finite(self.last_checkpoint_every_s) and self.last_checkpoint_every_s >= 0,
            k + "last_checkpoint_every_s",
            "a finite number >= 0 (0: at every validation)",
            self.last_checkpoint_every_s,
        )
        for name in ("checkpoint_every_n_steps", "num_threads", "diagnostics_every"):
            _need(getattr(self, name) >= 0, k + name, ">= 0 (0: off)", getattr(self, name))
        _need(
            self.nonfinite_patience >= 1, k + "nonfinite_patience", ">= 1", self.nonfinite_patience
        )
        _need(self.restarts >= 1, k + "restarts", ">= 1 (1: no restarts)", self.restarts)
        _need(self.restart_steps >= 1, k + "restart_steps", ">= 1", self.restart_steps)


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
        _need(self.reset_every >= 0, "tbptt.reset_every", ">= 0 (0: never)", self.reset_every)
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
    # Breaks ties of the monitor (within early_stopping.min_delta) for the best checkpoint and early
    # stopping: auto = val_loss for max-mode metrics other than a loss; null: the first best wins.
    monitor_tiebreak: str | None = "auto"
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


def monitor_tiebreak(monitor: str, mode: str, tiebreak: str | None) -> str | None:
    """The metric that decides between equal monitor values: ``tiebreak`` itself, or for "auto"
    ``val_loss`` when ``monitor`` is maximised and is not itself a loss (accuracy on a small
    validation split takes a few values, and many epochs share the best one)."""
    if tiebreak != "auto":
        return tiebreak or None
    return "val_loss" if mode == "max" and "loss" not in monitor.lower() else None


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
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _need(_finite(value) and 0 < value < 1, f"data.{name}", "in (0, 1)", value)
        _need(
            self.val_fraction + self.test_fraction < 1,
            "data.val_fraction + data.test_fraction",
            "< 1",
            self.val_fraction + self.test_fraction,
        )
        if self.batch_size < 1 or self.val_batch_size < 1:
            raise ValueError(
                f"data.batch_size and data.val_batch_size must be >= 1, got {self.batch_size}, "
                f"{self.val_batch_size}"
            )


@dataclass
class SequenceDataConfig:
    """A labelled sequence set for the other families: the user's own files (``path``), a
    registry set (``source``) or a synthetic task. Column names and formats: docs/your-data.md."""

    source: str = "synthetic_parity"  # registry name or synthetic_{parity,sine,tags,reverse}
    batch_size: int = 32  # sequences per optimiser step (global, over all processes)
    num_samples: int = 2000  # synthetic sets: sequences generated
    seq_len: int = 16  # synthetic: steps per sequence; forecasting files: input window length
    seed: int = 0  # synthetic: generator seed; user files, UCR/UEA sets: the hold-out's seed
    horizon: int = 1  # forecasting: steps ahead
    val_fraction: float | None = None  # held-out share of training (None: the set's own / 0.2)
    bucket_by_length: bool = False  # training batches of similar length (less padding)
    word_dropout: float = 0.0  # token inputs, training only: each token becomes <unk> with this p
    # Training samples per epoch (0: one pass). More than the set draws fresh permutations back
    # to back, so a set of a few batches does not pay Lightning's per-epoch work every few steps.
    epoch_samples: int = 0
    # ---- the user's own files (docs/your-data.md); data.path set means source is not used ----
    path: str | None = None  # training file (.ts, .csv, .tsv, .jsonl, .parquet, .conll)
    val_path: str | None = None  # validation file (None: held out of the training file)
    test_path: str | None = None  # test file (None: held out of the training file)
    format: str | None = None  # ts, wide, long, csv, tsv, jsonl, parquet, conll (None: extension)
    header: bool = True  # delimited files: the first row names the columns (else "0", "1", ...)
    id_col: str | None = "unique_id"  # series id (forecasting, long classification; null: one)
    time_col: str = "ds"  # time stamp or step (forecasting, long-format classification)
    target_col: str = "y"  # forecasting: the value to forecast
    past_covariates: list[str] = field(default_factory=list)  # known only up to the origin
    future_covariates: list[str] = field(default_factory=list)  # known ahead (calendar, price)
    freq: str | None = None  # pandas alias ("D", "h", "MS") or numeric step (None: inferred)
    season: int | None = None  # seasonal-naive/ETS season (None: from the frequency)
    val_size: int | float = 0.15  # forecasting: validation steps per series (< 1: a fraction)
    test_size: int | float = 0.15  # forecasting: test steps per series (< 1: a fraction)
    test_fraction: float = 0.2  # classification/text/seq2seq/tagging: held-out share for testing
    features: list[str] = field(default_factory=list)  # long classification (empty: all others)
    label_col: str = "label"  # class or regression target (classification, text)
    text_col: str = "text"  # text classification: the text
    src_col: str = "source"  # seq2seq: the source string
    tgt_col: str = "target"  # seq2seq: the target string
    token_field: int = 0  # CoNLL: the field holding the token (0-based)
    tag_field: int = -1  # CoNLL: the field holding the tag (-1: the last)
    level: Literal["char", "word"] = "word"  # text and seq2seq tokens
    lower: bool = True  # lower-case text first
    min_freq: int = 1  # words seen fewer times in training become <unk>
    max_vocab: int | None = None  # at most this many tokens, specials included
    scale: bool = True  # numeric series: standard-scale each channel with training statistics
    # Numeric series classification/regression: stack `frame` consecutive steps into one input
    # step, the same number for every split and for `rnnkit predict` (rnnkit.data.framing): an
    # int >= 1; "auto": ceil(frame_quantile of the TRAINING lengths / frame_steps); null: none.
    frame: int | str | None = "auto"
    frame_steps: int = 30  # "auto": input steps the frame_quantile length is read in
    frame_quantile: float = 1.0  # "auto": the length that sets it (1: the longest, 0.5: median)

    def __post_init__(self) -> None:
        check_frame_options(self.frame, self.frame_steps, self.frame_quantile)
        for name in ("batch_size", "num_samples", "seq_len", "horizon"):
            _need(getattr(self, name) >= 1, f"data.{name}", ">= 1", getattr(self, name))
        if self.val_fraction is not None:
            _need(
                _finite(self.val_fraction) and 0 < self.val_fraction < 1,
                "data.val_fraction",
                "in (0, 1) or null",
                self.val_fraction,
            )
        _need(
            _finite(self.test_fraction) and 0 < self.test_fraction < 1,
            "data.test_fraction",
            "in (0, 1)",
            self.test_fraction,
        )
        formats = (None, "ts", "wide", "long", "csv", "tsv", "jsonl", "parquet", "conll")
        _need(self.format in formats, "data.format", f"one of {list(formats[1:])}", self.format)
        _need(self.level in ("char", "word"), "data.level", "'char' or 'word'", self.level)


@dataclass
class EvaluateConfig:
    """What a run reports beside the model's own metrics."""

    baselines: bool = True  # score the task's simple baselines on the test split; give a verdict
    dtw_max_cells: float = 3e8  # 1-NN DTW only when test x train x T x T is at most this


@dataclass
class Common:
    """Fields every experiment shares."""

    seed: int = 1234  # seed_everything: python, numpy, torch, dataloader workers
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    run: RunConfig = field(default_factory=RunConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
