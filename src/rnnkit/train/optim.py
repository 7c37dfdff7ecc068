"""Optimisers and learning-rate schedules from `OptimConfig` / `SchedulerConfig`.

Weight decay skips biases, norms and embeddings' padding rows by the usual rule: only tensors with
two or more dimensions decay.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rnnkit.train.config import OptimConfig, SchedulerConfig


def build_optimizer(module: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser named by ``cfg`` over ``module``'s trainable parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum, eps=cfg.eps)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    raise ValueError(f"optim.name must be one of adam, adamw, rmsprop, sgd; got {cfg.name!r}")


def cosine_with_warmup(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at ``step``: linear warm-up, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: SchedulerConfig,
    *,
    total_steps: int,
    monitor: str,
    mode: str = "min",
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` dict for ``cfg`` (None for ``name: none``)."""
    sched: Any
    if cfg.name == "none":
        return None
    if cfg.name == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: cosine_with_warmup(
                s, warmup=cfg.warmup_steps, total=total_steps, min_ratio=cfg.min_lr_ratio
            ),
        )
    elif cfg.name == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.name == "onecycle":
        if total_steps < 3:
            raise ValueError(
                f"scheduler onecycle needs at least 3 optimiser steps (a rise and a fall); this "
                f"run has {total_steps}: raise trainer.max_steps/max_epochs or pick another "
                "scheduler.name"
            )
        # torch divides by the warm-up's length in steps minus one: a warm-up of one step (10
        # steps at pct_start 0.1) divides by zero, a shorter one runs the rise backwards. So the
        # warm-up lasts at least two steps.
        max_lr = [g["lr"] for g in optimizer.param_groups]
        pct = max(cfg.pct_start, 2 / total_steps)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct
        )
    elif cfg.name == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode,  # type: ignore[arg-type]
            factor=cfg.gamma,
            patience=cfg.patience,
        )
        return {"scheduler": sched, "interval": "epoch", "monitor": monitor, "strict": False}
    else:
        raise ValueError(
            f"scheduler.name must be one of none, cosine, step, plateau, onecycle; got {cfg.name!r}"
        )
    return {"scheduler": sched, "interval": "step", "frequency": 1}
