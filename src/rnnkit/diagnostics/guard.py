"""The divergence guard, on in every run: a non-finite step is skipped; a run of them stops it.

Every optimiser step the guard looks at the loss (``on_before_backward``) and the total gradient
norm (``on_before_optimizer_step``, before clipping):

- a NaN/Inf loss or gradient: the update is **skipped** — every gradient is set to None before the
  optimiser runs, so the weights (and Adam's moments) stay as they were — and it says so;
- an update that itself makes a weight NaN/Inf (finite gradients, but e.g. weight decay times a
  huge learning rate) is **undone**: the guard keeps a copy of the weights from before each
  step (one extra copy of the parameters) and puts it back;
- ``patience`` such steps in a row: training stops, and `DivergenceGuard.diverged` holds a plain
  message (the steps, the last finite loss, what to try) that `rnnkit.train.trainer.fit` raises as
  `TrainingDiverged` after keeping the best finite checkpoint;
- a non-finite monitored validation metric stops training the same way;
- optionally (``jump_factor``) a norm far above the recent median is skipped too; the gradient
  diagnostics (`rnnkit.diagnostics.GradientDiagnostics`) are this guard plus recording, so a run
  has one guard whichever is installed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from rnnkit.integrity import atomic_write_text
from rnnkit.provenance import versions


class GradientWarning(UserWarning):
    """Exploding, non-finite or vanishing gradients, in plain words."""


class TrainingDiverged(RuntimeError):
    """Training stopped because its loss or gradients stayed NaN/Inf; the message says what to do.

    ``exit_code`` is what the ``rnnkit`` command returns for it.
    """

    exit_code = 3


def total_grad_norm(module: torch.nn.Module) -> float:
    """The global L2 norm of the gradients (NaN/Inf when any gradient is)."""
    grads = [p.grad.detach() for p in module.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads])))


def all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every element of ``tensors`` is finite, from each tensor's largest magnitude (NaN
    propagates through ``amax``, Inf stays Inf). Checked after every update: on CPU this is ~10x
    cheaper than ``isfinite(t).all()`` (0.25 vs 3 ms a step for a 20k x 64 embedding)."""
    peaks = [t.detach().abs().amax() for t in tensors if t.numel()]
    return not peaks or bool(torch.isfinite(torch.stack(peaks)).all())


class DivergenceGuard(Callback):
    """Skip non-finite (and, optionally, exploding) updates; stop after ``patience`` in a row.

    **Arguments (keyword-only):**
    - ``patience``: consecutive non-finite steps that stop the run.
    - ``monitor``: the validation metric whose NaN/Inf also stops the run (None: not watched).
    - ``jump_factor``, ``history``, ``warmup``: a norm above ``jump_factor`` x the median of the
      last ``history`` finite norms, once ``warmup`` norms are known, is a jump (None: no check).
    - ``skip_nonfinite`` / ``skip_on_jump``: skip the update on a NaN/Inf step / on a jump.
    - ``verbose``: warn (`GradientWarning`) at each skipped or flagged step.
    """

    def __init__(
        self,
        *,
        patience: int = 5,
        monitor: str | None = None,
        jump_factor: float | None = None,
        history: int = 50,
        warmup: int = 10,
        skip_nonfinite: bool = True,
        skip_on_jump: bool = True,
        verbose: bool = True,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if jump_factor is not None and jump_factor <= 1.0:
            raise ValueError(f"jump_factor must be > 1, got {jump_factor}")
        self.patience = patience
        self.monitor = monitor
        self.jump_factor = jump_factor
        self.history = history
        self.warmup = warmup
        self.skip_nonfinite = skip_nonfinite
        self.skip_on_jump = skip_on_jump
        self.verbose = verbose
        self.norms: list[tuple[int, float]] = []  # (step, total norm) every step
        self.events: list[dict[str, Any]] = []
        self.skipped_steps: list[int] = []
        self.in_a_row = 0  # consecutive non-finite steps
        self.last_finite: tuple[int, float] | None = None  # (step, loss)
        self.diverged: str | None = None  # why training was stopped, once it was
        self._loss: float | None = None
        # the weights before this step's update, to undo one that makes them non-finite
        self._before: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    # ---- Lightning hooks ----
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._loss = None
        self._before = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._before is None:
            return
        before, self._before = self._before, None
        if all_finite([p for p, _ in before]):
            self.in_a_row = 0
        else:
            with torch.no_grad():
                for p, saved in before:
                    p.copy_(saved)
            step = int(trainer.global_step) - 1
            self.in_a_row += 1
            self.skipped_steps.append(step)
            self._event(
                step,
                "nonfinite",
                f"step {step}: the update made a weight NaN or Inf — it was undone, the weights "
                "are unchanged. Lower the learning rate (or the weight decay).",
                skipped=True,
                norm=self.norms[-1][1] if self.norms else float("nan"),
            )
            self._check_patience(trainer, step)

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        self._loss = float(loss.detach())

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self.guard_step(trainer, optimizer, total_grad_norm(pl_module))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.monitor is None or trainer.sanity_checking or self.diverged:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not math.isfinite(float(value)):
            self._stop(
                trainer,
                f"the validation metric {self.monitor} is {float(value)} at step "
                f"{trainer.global_step}",
            )

    # ---- the decision ----
    def guard_step(
        self, trainer: L.Trainer, optimizer: torch.optim.Optimizer, total: float
    ) -> bool:
        """Decide on the update of this step from its gradient norm ``total``; True if skipped."""
        step = int(trainer.global_step)
        loss = self._loss
        skip = False
        if not (math.isfinite(total) and (loss is None or math.isfinite(loss))):
            skip = self.skip_nonfinite
            self.in_a_row += 1
            what = f"the loss is {loss}" if loss is not None and not math.isfinite(loss) else ""
            what = what or f"the gradient norm is {total}"
            self._event(
                step,
                "nonfinite",
                f"step {step}: {what} (NaN or Inf) — "
                + (
                    "this update was skipped, the weights are unchanged."
                    if skip
                    else "the update went ahead (skip_nonfinite=False)."
                )
                + " Lower the learning rate, clip gradients, or check the data for NaN/Inf.",
                skipped=skip,
                norm=total,
            )
            self._check_patience(trainer, step)
        else:
            if loss is not None:
                self.last_finite = (step, loss)
            skip = self._jumped(step, total)
        self.norms.append((step, total))
        if skip:
            self.skipped_steps.append(step)
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
        else:
            self._before = [
                (p, p.detach().clone()) for g in optimizer.param_groups for p in g["params"]
            ]
        return skip

    def _check_patience(self, trainer: L.Trainer, step: int) -> None:
        if self.in_a_row >= self.patience and self.diverged is None:
            first = step - self.in_a_row + 1
            self._stop(
                trainer,
                f"{self.in_a_row} steps in a row ({first}-{step}) had a NaN/Inf loss, gradient "
                "or update",
            )

    def _jumped(self, step: int, total: float) -> bool:
        if self.jump_factor is None:
            return False
        recent = [n for _, n in self.norms[-self.history :] if math.isfinite(n)]
        if len(recent) < self.warmup:
            return False
        median = float(np.median(recent))
        if not (median > 0 and total > self.jump_factor * median):
            return False
        self._event(
            step,
            "jump",
            f"step {step}: exploding gradient — the norm {total:.3g} is "
            f"{total / median:.0f}x the recent median {median:.3g}; "
            + ("this update was skipped. " if self.skip_on_jump else "")
            + "Gradient clipping (trainer.gradient_clip_val) or a lower learning "
            "rate usually stops this.",
            skipped=self.skip_on_jump,
            norm=total,
        )
        return self.skip_on_jump

    def _stop(self, trainer: L.Trainer, why: str) -> None:
        self.diverged = why
        trainer.should_stop = True

    def _event(self, step: int, kind: str, message: str, **extra: Any) -> None:
        self.events.append({"step": step, "kind": kind, "message": message, **extra})
        if self.verbose:
            warnings.warn(message, GradientWarning, stacklevel=2)

    def explain(self, *, lr: float, clip: float, best: str | None) -> str:
        """The one-line message of a diverged run: what happened, the last finite loss, what to
        try, and the checkpoint that was kept."""
        last = (
            f"the last finite loss was {self.last_finite[1]:.4g} at step {self.last_finite[0]}"
            if self.last_finite
            else "no step had a finite loss"
        )
        clip_hint = (
            f"keep gradient clipping on (trainer.gradient_clip_val {clip:g}) or lower it"
            if clip
            else "turn gradient clipping on (--trainer.gradient_clip_val 1.0)"
        )
        kept = (
            f"the best finite checkpoint is {best}"
            if best
            else "no checkpoint had a finite validation score"
        )
        return (
            f"training diverged: {self.diverged}; {last}. Try a lower learning rate "
            f"(--optim.lr {lr / 10:g}; it was {lr:g}), {clip_hint}, or check the data for "
            f"NaN/Inf; {kept}; no artifact was written."
        )


def stop_if_diverged(experiment: Any, trainer: L.Trainer, run_dir: Path, *, elapsed: float) -> None:
    """Raise `TrainingDiverged` when the guard stopped the run, after writing a summary that says
    so; the best checkpoint stays only when its monitored score is finite."""
    guard = next((c for c in trainer.callbacks if isinstance(c, DivergenceGuard)), None)  # type: ignore[attr-defined]
    if guard is None or guard.diverged is None:
        return
    best = next((c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None)), None)
    score = getattr(best, "best_model_score", None)
    best_path = getattr(best, "best_model_path", "") or None
    if score is None or not math.isfinite(float(score)):
        best_path = None
    message = guard.explain(
        lr=experiment.optim.lr, clip=experiment.trainer.gradient_clip_val, best=best_path
    )
    if trainer.is_global_zero:
        summary = {
            "task": experiment.task,
            "run_dir": str(run_dir),
            "status": "diverged",
            "message": message,
            "best_checkpoint": best_path,
            "skipped_steps": guard.skipped_steps,
            "steps": int(trainer.global_step),
            "wall_time_s": round(elapsed, 2),
            "seed": experiment.seed,
            "versions": versions(),
        }
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    raise TrainingDiverged(message)


__all__ = [
    "DivergenceGuard",
    "GradientWarning",
    "TrainingDiverged",
    "stop_if_diverged",
    "total_grad_norm",
]
