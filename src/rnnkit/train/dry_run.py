"""``rnnkit fit --dry-run``: check and build everything a run needs, then stop before training."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rnnkit.train.trainer import (
    _check_compatible,
    _checked_trainer,
    build,
    resolve_run_dir,
    resume_checkpoint,
)


def dry_run(experiment: Any, *, resume: str | None = None) -> str:
    """Check and build everything a run needs — data, model, trainer — without training or
    writing; returns what would run, in a few lines."""
    start = time.perf_counter()
    run_dir = resolve_run_dir(experiment, resume=resume)
    ckpt_path = resume_checkpoint(resume) if resume is not None else None
    built = build(experiment)
    if ckpt_path is not None:
        _check_compatible(ckpt_path, built.module, experiment.task)
    monitor = experiment.run.monitor or built.module.monitor_default
    with tempfile.TemporaryDirectory() as scratch:
        _checked_trainer(experiment, built, Path(scratch), monitor=monitor)
    t = experiment.trainer
    params = sum(p.numel() for p in built.module.model.parameters())
    bounds = [
        f"max_steps {t.max_steps}" if t.max_steps > 0 else "",
        f"max_time {t.max_time}" if t.max_time else "",
    ]
    bounds += [f"max_epochs {t.max_epochs}" if t.max_epochs > 0 else ""]
    return "\n".join(
        [
            f"dry run: {experiment.task}, {type(built.module.model).__name__} with {params:,} "
            f"parameters ({experiment.model.cell})",
            f"  data {getattr(experiment.data, 'source', '?')}: {built.train_batches} optimiser "
            f"steps per epoch, batch size {experiment.data.batch_size}",
            f"  stops at {', '.join(b for b in bounds if b)}; validates on {monitor}",
            f"  would write {run_dir}" + (f", resuming {ckpt_path}" if ckpt_path else ""),
            f"  checked and built in {time.perf_counter() - start:.1f} s; nothing trained",
        ]
    )
