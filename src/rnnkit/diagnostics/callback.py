"""``GradientDiagnostics``: a Lightning callback that watches gradient flow while a model trains.

Every optimiser step it checks the total gradient norm:

- non-finite (NaN/Inf): warns and **skips the update** — every gradient is set to None before the
  optimiser runs, so the weights (and Adam's moments) stay as they were;
- a jump above ``jump_factor`` × the median of the last ``history`` norms: warns, and skips the
  update when ``skip_on_jump`` (jumped norms still enter the history, so a lasting change of scale
  is accepted after a few steps).

Every ``every_n_steps`` steps it records the training batch's forward pass step by step
(`rnnkit.diagnostics.record_steps`, the layers' reference loop) and stores ``‖∂L/∂h_t‖`` per
step and layer, per-group gradient norms, gate saturation and the recurrent Jacobian spectrum; it
warns when the signal vanishes (below ``vanish_threshold`` of its peak within ``vanish_within``
steps back). Files, rewritten at each record (rank zero), under ``<run dir>/diagnostics/``:

- ``diagnostics.json``: config, one summary per record, every warning/skip event, and the total
  gradient norm of every step;
- ``gradient_flow.npz``: ``steps`` ``(R,)``; per layer ``hidden__<layer>`` ``(R, T)`` (NaN-padded),
  ``gates__<layer>__<gate>`` ``(R, bins)``, ``jac_sv__<layer>`` ``(R, N, S)``,
  ``jac_radius__<layer>`` ``(R, N)``, ``jac_steps__<layer>`` ``(R, N)``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from rnnkit.diagnostics._record import CellTrace, record_steps
from rnnkit.diagnostics.flow import (
    VANISH_THRESHOLD,
    FlowReport,
    first_last_ratio,
    grad_norms,
    signal_reach,
    summarize_traces,
)

FILES = ("diagnostics.json", "gradient_flow.npz")


class GradientWarning(UserWarning):
    """Exploding, non-finite or vanishing gradients, in plain words."""


class GradientDiagnostics(Callback):
    """Record gradient flow every ``every_n_steps`` steps; guard every step against explosions.

    **Arguments (keyword-only):**
    - ``every_n_steps``: record the diagnostics at global steps 0, N, 2N, ...
    - ``out_dir``: where to write; default ``<trainer.default_root_dir>/diagnostics``.
    - ``jump_factor``, ``history``, ``warmup``: a norm above ``jump_factor`` × the median of the
      last ``history`` finite norms, once ``warmup`` norms are known, is a jump.
    - ``skip_nonfinite`` / ``skip_on_jump``: skip the update on a NaN/Inf norm / on a jump.
    - ``vanish_threshold``, ``vanish_within``: the vanishing-gradient test of `FlowReport`.
    - ``jacobian``, ``jacobian_steps``, ``jacobian_samples``: the Jacobian spectrum per record.
    """

    def __init__(
        self,
        *,
        every_n_steps: int = 50,
        out_dir: str | Path | None = None,
        jump_factor: float = 10.0,
        history: int = 50,
        warmup: int = 10,
        skip_nonfinite: bool = True,
        skip_on_jump: bool = True,
        vanish_threshold: float = VANISH_THRESHOLD,
        vanish_within: int = 20,
        jacobian: bool = True,
        jacobian_steps: int = 16,
        jacobian_samples: int = 2,
        bins: int = 20,
        verbose: bool = True,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        if jump_factor <= 1.0:
            raise ValueError(f"jump_factor must be > 1, got {jump_factor}")
        self.every_n_steps = every_n_steps
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.jump_factor = jump_factor
        self.history = history
        self.warmup = warmup
        self.skip_nonfinite = skip_nonfinite
        self.skip_on_jump = skip_on_jump
        self.vanish_threshold = vanish_threshold
        self.vanish_within = vanish_within
        self.jacobian = jacobian
        self.jacobian_steps = jacobian_steps
        self.jacobian_samples = jacobian_samples
        self.bins = bins
        self.verbose = verbose
        self.norms: list[tuple[int, float]] = []  # (step, total norm) every step
        self.events: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.reports: list[tuple[int, FlowReport]] = []
        self.skipped_steps: list[int] = []
        self._recorder: AbstractContextManager[list[CellTrace]] | None = None
        self._traces: list[CellTrace] = []
        self._vanish_warned: set[str] = set()

    # ---- Lightning hooks ----
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps == 0 and self._recorder is None:
            self._recorder = record_steps(pl_module, retain_grad=True)
            self._traces = self._recorder.__enter__()

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        step = int(trainer.global_step)
        named = [(n, p.grad) for n, p in pl_module.named_parameters() if p.requires_grad]
        per, groups, total = grad_norms(named)
        report = self._finish_record(pl_module, per, groups, total)
        finite = math.isfinite(total)
        skip = False
        if not finite:
            skip = self.skip_nonfinite
            self._event(
                step,
                "nonfinite",
                f"step {step}: the gradient norm is {total} (NaN or Inf) — "
                + (
                    "this update was skipped, the weights are unchanged."
                    if skip
                    else "the update went ahead (skip_nonfinite=False)."
                )
                + " Lower the learning rate, clip gradients, or check the data for NaN/Inf.",
                skipped=skip,
                norm=total,
            )
        else:
            recent = [n for _, n in self.norms[-self.history :] if math.isfinite(n)]
            if len(recent) >= self.warmup:
                median = float(np.median(recent))
                if median > 0 and total > self.jump_factor * median:
                    skip = self.skip_on_jump
                    self._event(
                        step,
                        "jump",
                        f"step {step}: exploding gradient — the norm {total:.3g} is "
                        f"{total / median:.0f}x the recent median {median:.3g}; "
                        + ("this update was skipped. " if skip else "")
                        + "Gradient clipping (trainer.gradient_clip_val) or a lower learning "
                        "rate usually stops this.",
                        skipped=skip,
                        norm=total,
                    )
        self.norms.append((step, total))
        if skip:
            self.skipped_steps.append(step)
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
        pl_module.log("grad_norm", total if finite else -1.0, on_step=True, on_epoch=False)
        pl_module.log("grad_update_skipped", float(skip), on_step=True, on_epoch=False)
        if report is not None:
            self._store(step, report, trainer)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._close()  # a step without an optimiser step (accumulation, skipped loss)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()
        self._write(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._close()

    # ---- internals ----
    def _close(self) -> None:
        if self._recorder is not None:
            self._recorder.__exit__(None, None, None)
            self._recorder = None
            self._traces = []

    def _finish_record(
        self,
        pl_module: L.LightningModule,
        per: dict[str, float],
        groups: dict[str, float],
        total: float,
    ) -> FlowReport | None:
        if self._recorder is None:
            return None
        traces = self._traces
        self._close()
        if not any(t.steps for t in traces):
            return None
        grads: list[list[torch.Tensor | None]] = [[h.grad for h in t.h] for t in traces]
        norms, sat, hist, jac = summarize_traces(
            traces,
            grads,
            jacobian=self.jacobian,
            jacobian_steps=self.jacobian_steps,
            jacobian_samples=self.jacobian_samples,
            bins=self.bins,
        )
        loss = float("nan")
        metric = pl_module.trainer.callback_metrics.get("train_loss")
        if metric is not None:
            loss = float(metric)
        return FlowReport(loss, norms, per, groups, total, sat, hist, jac)

    def _event(self, step: int, kind: str, message: str, **extra: Any) -> None:
        self.events.append({"step": step, "kind": kind, "message": message, **extra})
        if self.verbose:
            warnings.warn(message, GradientWarning, stacklevel=2)

    def _store(self, step: int, report: FlowReport, trainer: L.Trainer) -> None:
        self.reports.append((step, report))
        summary = report.summary()
        summary["step"] = step
        summary["steps_recorded"] = {k: len(v) for k, v in report.hidden_grad_norms.items()}
        self.records.append(summary)
        for message in report.vanishing(within=self.vanish_within, threshold=self.vanish_threshold):
            layer = message.split(":", 1)[0]
            kind = "vanishing"
            # Warn once per layer; every occurrence still goes into the events.
            self.events.append({"step": step, "kind": kind, "message": message})
            if self.verbose and layer not in self._vanish_warned:
                self._vanish_warned.add(layer)
                warnings.warn(f"step {step}: {message}", GradientWarning, stacklevel=2)
        self._write(trainer)

    def directory(self, trainer: L.Trainer) -> Path:
        """Where the files go."""
        return self.out_dir or Path(trainer.default_root_dir) / "diagnostics"

    def _write(self, trainer: L.Trainer) -> None:
        if trainer.is_global_zero:
            self.write(self.directory(trainer))

    def write(self, out: Path) -> None:
        """Write ``diagnostics.json`` and ``gradient_flow.npz`` under ``out`` (atomically)."""
        out.mkdir(parents=True, exist_ok=True)
        data = {
            "format": "rnnkit-diagnostics/1",
            "config": {
                "every_n_steps": self.every_n_steps,
                "jump_factor": self.jump_factor,
                "vanish_threshold": self.vanish_threshold,
                "vanish_within": self.vanish_within,
                "skip_nonfinite": self.skip_nonfinite,
                "skip_on_jump": self.skip_on_jump,
            },
            "records": self.records,
            "events": self.events,
            "skipped_steps": self.skipped_steps,
            "grad_norms": [[s, n if math.isfinite(n) else None] for s, n in self.norms],
        }
        _atomic(out / "diagnostics.json", json.dumps(_jsonable(data), indent=1).encode())
        arrays = reports_to_arrays(self.reports)
        fd, tmp = tempfile.mkstemp(dir=out, suffix=".npz")
        os.close(fd)
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, out / "gradient_flow.npz")


def reports_to_arrays(reports: list[tuple[int, FlowReport]]) -> dict[str, np.ndarray]:
    """Stack per-record arrays by layer for ``gradient_flow.npz`` (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {"steps": np.asarray([s for s, _ in reports], dtype=np.int64)}
    layers = sorted({k for _, r in reports for k in r.hidden_grad_norms})
    for layer in layers:
        rows = [r.hidden_grad_norms.get(layer, np.zeros(0)) for _, r in reports]
        arrays[f"hidden__{layer}"] = _pad(rows)
        gates = sorted({g for _, r in reports for g in r.gate_histograms.get(layer, {})})
        for gate in gates:
            arrays[f"gates__{layer}__{gate}"] = _pad(
                [r.gate_histograms.get(layer, {}).get(gate, np.zeros(0)) for _, r in reports]
            )
        specs = [r.jacobian.get(layer) for _, r in reports]
        if any(s is not None for s in specs):
            arrays[f"jac_radius__{layer}"] = _pad(
                [np.zeros(0) if s is None else s.spectral_radius for s in specs]
            )
            arrays[f"jac_steps__{layer}"] = _pad(
                [np.zeros(0) if s is None else s.steps.astype(float) for s in specs]
            )
            sv = [np.zeros((0, 0)) if s is None else s.singular_values for s in specs]
            n = max(a.shape[0] for a in sv)
            m = max(a.shape[1] if a.ndim == 2 else 0 for a in sv)
            out = np.full((len(sv), n, m), np.nan)
            for i, a in enumerate(sv):
                if a.size:
                    out[i, : a.shape[0], : a.shape[1]] = a
            arrays[f"jac_sv__{layer}"] = out
    return arrays


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


__all__ = ["FILES", "GradientDiagnostics", "GradientWarning", "first_last_ratio", "signal_reach"]
