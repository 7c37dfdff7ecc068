"""The run's progress line: optimiser steps against ``max_steps``, with an honest ETA.

Lightning's bar counts batches of the current epoch (``0/1395``) and estimates the epoch's end,
while a run is bounded by ``max_steps`` and ``max_time``. `StepProgress` counts optimiser steps
against the step budget and takes the ETA as the sooner of "steps left at the current rate" and
"time left of ``max_time``". On a terminal it rewrites one line; otherwise (a log file, CI) it
prints a plain line every ``every_s`` seconds and at each validation — never a carriage return.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class StepProgress(ProgressBar):
    """Optimiser steps, loss and the latest validation metrics on one line.

    **Arguments (keyword-only):**
    - ``stream``: where to write (default ``sys.stdout``, looked up when training starts).
    - ``every_s``: seconds between lines when ``stream`` is not a terminal.
    """

    def __init__(self, *, stream: TextIO | None = None, every_s: float = 15.0) -> None:
        super().__init__()
        self._stream = stream
        self.every_s = every_s
        self._enabled = True
        self._t0 = 0.0
        self._step0 = 0
        self._last_print = -math.inf
        self._tty = False
        self._width = 0
        self._last_line = ""

    # ---- the ProgressBar interface ----
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    # ---- hooks ----
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.monotonic()
        self._step0 = int(trainer.global_step)
        stream = self.stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.monotonic()
        if self._tty or now - self._last_print >= self.every_s:
            self._last_print = now
            self._emit(self.line(trainer, pl_module))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self._emit(self.line(trainer, pl_module), final=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._emit(self.line(trainer, pl_module), final=True)

    # ---- the line ----
    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def total_steps(self, trainer: L.Trainer) -> float:
        """The step budget: ``max_steps``, else Lightning's estimate from epochs (maybe inf)."""
        if trainer.max_steps and trainer.max_steps > 0:
            return float(trainer.max_steps)
        try:
            return float(trainer.estimated_stepping_batches)
        except Exception:
            return math.inf

    def eta(self, trainer: L.Trainer) -> float:
        """Seconds until the run stops: steps left at the current rate, or ``max_time`` left."""
        step = int(trainer.global_step)
        elapsed = time.monotonic() - self._t0
        done = step - self._step0
        eta = math.inf
        if done > 0 and elapsed > 0:
            eta = (self.total_steps(trainer) - step) * elapsed / done
        for cb in trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(cb, Timer):
                left = cb.time_remaining("train")
                if left is not None:
                    eta = min(eta, max(0.0, float(left)))
        return eta

    def line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        step = int(trainer.global_step)
        total = self.total_steps(trainer)
        shown = f"{total:.0f}" if math.isfinite(total) else "?"
        parts = [f"step {step}/{shown}"]
        for name, value in self.get_metrics(trainer, pl_module).items():
            if name == "v_num" or not isinstance(value, int | float | str):
                continue
            try:
                parts.append(f"{name} {float(value):.4g}")
            except (TypeError, ValueError):
                continue
        elapsed = time.monotonic() - self._t0
        parts.append(f"{_clock(elapsed)} elapsed, ETA {_clock(self.eta(trainer))}")
        return "  ".join(parts)

    def _emit(self, text: str, *, final: bool = False) -> None:
        if not self._enabled or (final and text == self._last_line):
            return
        self._last_line = text
        stream = self.stream
        if self._tty:
            pad = max(0, self._width - len(text))
            stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        else:
            stream.write(text + "\n")
        stream.flush()


__all__ = ["StepProgress"]
