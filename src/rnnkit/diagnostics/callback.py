"""``GradientDiagnostics``: a Lightning callback that watches gradient flow while a model trains.

It is the run's divergence guard (`rnnkit.diagnostics.guard.DivergenceGuard`) plus recording. Every
optimiser step the guard checks the loss and the total gradient norm:

- non-finite (NaN/Inf): warns and **skips the update** — every gradient is set to None before the
  optimiser runs, so the weights (and Adam's moments) stay as they were; ``patience`` in a row
  stop the run;
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
import warnings
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from rnnkit.diagnostics._record import CellTrace, record_steps
from rnnkit.diagnostics.flow import (
    VANISH_THRESHOLD,
    FlowReport,
    first_last_ratio,
    grad_norms,
    signal_reach,
    summarize_traces,
)
from rnnkit.diagnostics.guard import DivergenceGuard, GradientWarning
from rnnkit.integrity import atomic_write_bytes, tmp_path

FILES = ("diagnostics.json", "gradient_flow.npz")


class GradientDiagnostics(DivergenceGuard):
    """Record gradient flow every ``every_n_steps`` steps; guard every step against explosions.

    **Arguments (keyword-only):**
    - ``every_n_steps``: record the diagnostics at global steps 0, N, 2N, ...
    - ``out_dir``: where to write; default ``<trainer.default_root_dir>/diagnostics``.
    - ``jump_factor``, ``history``, ``warmup``: a norm above ``jump_factor`` × the median of the
      last ``history`` finite norms, once ``warmup`` norms are known, is a jump.
    - ``skip_nonfinite`` / ``skip_on_jump``: skip the update on a NaN/Inf norm / on a jump.
    - ``patience``, ``monitor``: when the guard stops the run (see `DivergenceGuard`).
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
        patience: int = 5,
        monitor: str | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        super().__init__(
            patience=patience,
            monitor=monitor,
            jump_factor=jump_factor,
            history=history,
            warmup=warmup,
            skip_nonfinite=skip_nonfinite,
            skip_on_jump=skip_on_jump,
            verbose=verbose,
        )
        self.every_n_steps = every_n_steps
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.vanish_threshold = vanish_threshold
        self.vanish_within = vanish_within
        self.jacobian = jacobian
        self.jacobian_steps = jacobian_steps
        self.jacobian_samples = jacobian_samples
        self.bins = bins
        self.records: list[dict[str, Any]] = []
        self.reports: list[tuple[int, FlowReport]] = []
        self._recorder: AbstractContextManager[list[CellTrace]] | None = None
        self._traces: list[CellTrace] = []
        self._vanish_warned: set[str] = set()

    # ---- Lightning hooks ----
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
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
        skip = self.guard_step(trainer, optimizer, total)
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
        atomic_write_bytes(out / "diagnostics.json", json.dumps(_jsonable(data), indent=1).encode())
        arrays = reports_to_arrays(self.reports)
        tmp = tmp_path(out / "gradient_flow.npz")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
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


__all__ = ["FILES", "GradientDiagnostics", "GradientWarning", "first_last_ratio", "signal_reach"]
