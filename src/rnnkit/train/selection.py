"""Which validation is "the best": ties broken by a second metric, and a warm-up before any counts.

Two small subclasses of Lightning's own callbacks, so checkpoint choice and early stopping agree:

- **Tie-break.** Lightning keeps the *first* best value of the monitor (``torch.gt``). Accuracy on
  a validation split of 10 series takes 11 values, so dozens of epochs share the best one and the
  first — often after ~20 optimiser steps — was kept and then stopped the run. Here a validation
  whose monitor equals the best within ``min_delta`` wins when its ``tiebreak`` metric (by default
  ``val_loss``) is better; for early stopping that counts as an improvement (the wait restarts).
  The comparison is lexicographic: the monitor first, the tie-break only among equals. A composite
  logged metric (``acc - eps * loss``) was the alternative; it needs an ``eps`` small enough never
  to outweigh one validation sample yet large enough to beat float rounding, it mixes units in the
  logs, and ``min_delta`` would then apply to the blend, not to the metric the user named.
- **Warm-up** (``min_steps``). Validations before that many optimiser steps are logged but are no
  candidates: no best checkpoint is written and early stopping neither records a best score nor
  counts patience. Lightning's ``Trainer(min_steps=...)`` only forbids stopping; the best checkpoint
  could still be the early lucky one, which is what the test split would then score.

Both keep their extra state in ``state_dict`` so ``--resume`` continues the same comparison.

`ResumePoint` writes ``last.ckpt``, the point ``--resume`` continues from, apart from the best
checkpoint: at the end of training, every ``trainer.checkpoint_every_n_steps`` steps when set,
and at a validation once ``trainer.last_checkpoint_every_s`` seconds have passed since its
previous write. Lightning's ``save_last`` instead rewrote it beside every new best, a second
fsync'd, hashed write of the same state; a killed run now loses at most that many seconds of
training (or the steps since the last N-step write).
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import Tensor

from rnnkit.diagnostics.guard import all_finite


def _parent_key(callback: Any, parent: type) -> str:
    """The key Lightning stores the callback's state under, named as its parent's: checkpoints of
    runs started before these subclasses resume with their state."""
    own = super(type(callback), callback).state_key
    return parent.__qualname__ + own.removeprefix(type(callback).__qualname__)


class TieBreak:
    """Whether the current validation ties the best and is better on the ``metric``."""

    def __init__(self, metric: str | None, mode: Literal["min", "max"], tolerance: float) -> None:
        self.metric, self.mode, self.tolerance = metric, mode, abs(tolerance)
        self.best: float | None = None  # the tie-break value of the validation kept as best

    def value(self, trainer: L.Trainer) -> float | None:
        if self.metric is None:
            return None
        logged = trainer.callback_metrics.get(self.metric)
        if logged is None:
            raise ValueError(
                f"run.monitor_tiebreak {self.metric!r} is not a metric this task logs; it logs "
                f"{sorted(trainer.callback_metrics)} (run.monitor_tiebreak: null turns it off)"
            )
        return float(logged)

    def wins(self, trainer: L.Trainer, current: Tensor, best: Tensor) -> bool:
        """``current`` equals ``best`` within the tolerance and the tie-break metric improved."""
        if self.metric is None or not (
            math.isfinite(float(best)) and math.isfinite(float(current))
        ):
            return False
        if abs(float(current) - float(best)) > self.tolerance:
            return False
        now = self.value(trainer)
        if now is None or not math.isfinite(now):
            return False
        if self.best is None:
            return True
        return now < self.best if self.mode == "min" else now > self.best

    def state(self) -> dict[str, Any]:
        return {"tiebreak_metric": self.metric, "tiebreak_best": self.best}

    def load(self, state: dict[str, Any]) -> None:
        if state.get("tiebreak_metric") == self.metric:
            self.best = state.get("tiebreak_best")


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (top 1) with the tie-break and the warm-up; records the best step and
    the validation metrics the kept checkpoint scored (``best_metrics``), so `fit` need not
    validate it again when those covered the whole split."""

    def __init__(self, *, tiebreak: TieBreak, min_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tiebreak, self.min_steps = tiebreak, min_steps
        self.best_step: int | None = None
        self.best_epoch: int | None = None
        self.best_metrics: dict[str, float] = {}

    @property
    def state_key(self) -> str:
        return _parent_key(self, ModelCheckpoint)

    def _save_topk_checkpoint(
        self, trainer: L.Trainer, monitor_candidates: dict[str, Tensor]
    ) -> None:
        if trainer.global_step < self.min_steps:
            return  # warm-up: not a candidate
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def check_monitor_top_k(self, trainer: L.Trainer, current: Tensor | None = None) -> bool:
        if super().check_monitor_top_k(trainer, current):
            return True
        if current is None or not self.best_k_models:
            return False
        best = self.best_k_models[self.kth_best_model_path]
        wins = self.tiebreak.wins(trainer, current, best)
        return bool(trainer.strategy.reduce_boolean_decision(wins))

    def _update_best_and_save(
        self, current: Tensor, trainer: L.Trainer, monitor_candidates: dict[str, Tensor]
    ) -> None:
        self.tiebreak.best = self.tiebreak.value(trainer)
        self.best_step, self.best_epoch = trainer.global_step, trainer.current_epoch
        self.best_metrics = {
            k: float(v)
            for k, v in monitor_candidates.items()
            if k.startswith("val_") and v.numel() == 1
        }
        super()._update_best_and_save(current, trainer, monitor_candidates)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            **self.tiebreak.state(),
            "best_step": self.best_step,
            "best_epoch": self.best_epoch,
            "best_metrics": self.best_metrics,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.tiebreak.load(state_dict)
        self.best_step = state_dict.get("best_step")
        self.best_epoch = state_dict.get("best_epoch")
        self.best_metrics = dict(state_dict.get("best_metrics") or {})


class TieBreakEarlyStopping(EarlyStopping):
    """``EarlyStopping`` where a tie won on the tie-break metric is an improvement, and validations
    before ``min_steps`` are not looked at."""

    def __init__(self, *, tiebreak: TieBreak, min_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tiebreak, self.min_steps = tiebreak, min_steps
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return _parent_key(self, EarlyStopping)

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        if trainer.global_step < self.min_steps:
            return  # warm-up: neither a best score nor patience
        self._trainer = trainer
        super()._run_early_stopping_check(trainer)

    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        trainer = self._trainer
        assert trainer is not None
        improves = self.monitor_op(current - self.min_delta, self.best_score.to(current.device))
        if not bool(improves) and torch.isfinite(current):
            if self.tiebreak.wins(trainer, current, self.best_score):
                self.tiebreak.best = self.tiebreak.value(trainer)
                self.wait_count = 0
                return False, f"{self.monitor} tied its best; {self.tiebreak.metric} improved"
        before = self.best_score
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if self.best_score is not before:  # a strict improvement: its tie-break value is the bar
            self.tiebreak.best = self.tiebreak.value(trainer)
        return should_stop, reason

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.tiebreak.state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.tiebreak.load(state_dict)


class ResumePoint(ModelCheckpoint):
    """``last.ckpt`` at the end of training, every ``every_n_train_steps`` steps (0: off), and
    at a validation when ``every_s`` seconds have passed since the previous write (0: at every
    validation). A write after a step's validation replaces one made before it at that step, so a
    resumed run never repeats a validation. Weights holding NaN/Inf at the end are not written
    (the last finite ``last.ckpt`` stays; the checkpoint writer refuses them anyway)."""

    def __init__(self, *, every_s: float, every_n_train_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(
            monitor=None,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps or None,
            every_n_epochs=0,
            **kwargs,
        )
        self.every_s = every_s
        self._written_at: float | None = None  # time.monotonic() of this run's last write

    @property
    def state_key(self) -> str:
        return _parent_key(self, ModelCheckpoint)

    def _save_last_checkpoint(
        self, trainer: L.Trainer, monitor_candidates: dict[str, Tensor]
    ) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._written_at = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._written_at = time.monotonic()  # the interval counts training time from here

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        assert self._written_at is not None
        due = time.monotonic() - self._written_at >= self.every_s
        before_validation = self._last_global_step_saved == trainer.global_step
        if trainer.strategy.reduce_boolean_decision(due or before_validation, all=False):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        weights = [p for p in pl_module.parameters() if p.is_floating_point()]
        if self._last_global_step_saved == trainer.global_step or not all_finite(weights):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
