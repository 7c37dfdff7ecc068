"""LightningModules, one per task family, sharing one ``_common_step(batch, stage)``.

A task binds a model to its loss and metrics. Metrics are accumulated as exact sums over an epoch
(token-weighted for language models), summed over processes under DDP, and logged as
``{stage}_{name}`` (``val_bpc``, ``val_accuracy``, ...).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from rnnkit.models._common import detach_state
from rnnkit.train.config import OptimConfig, SchedulerConfig
from rnnkit.train.optim import build_optimizer, build_scheduler
from rnnkit.types import Batch, LSTMState, State

STAGES = ("train", "val", "test")


class TaskModule(L.LightningModule):
    """Shared training logic; a subclass defines ``_loss_and_sums`` and ``_metrics``.

    **Arguments:**
    - ``model``: the `rnnkit.models` network.
    - ``config``: the experiment as a plain dict (saved as hyper-parameters and in the artifact).
    - ``optim`` / ``scheduler``: the optimiser and schedule configs.
    - ``monitor``: the validation metric the schedule (plateau) and checkpoints watch.
    """

    monitor_default = "val_loss"

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
        if stage == "train":
            self.log(
                "train_loss", loss.detach(), on_step=True, prog_bar=True, batch_size=len(batch)
            )
        rnn = getattr(self.model, "rnn", None) or getattr(self.model, "encoder", None)
        if rnn is not None and hasattr(rnn, "last_path"):
            self.layer_path = str(rnn.last_path)
        return loss

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def _metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
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
            optimizer, self.sched_cfg, total_steps=total, monitor=self.monitor_default
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


def _state_to_list(state: State | None) -> list[Tensor]:
    if state is None:
        return []
    return [state.h, state.c] if isinstance(state, LSTMState) else [state]


def _state_from_list(tensors: list[Tensor]) -> State | None:
    if not tensors:
        return None
    return LSTMState(tensors[0], tensors[1]) if len(tensors) == 2 else tensors[0]


class LanguageModelTask(TaskModule):
    """Next-token cross-entropy with truncated BPTT; metrics: loss (nats), bpc, perplexity.

    Train chunks arrive in stream order (`rnnkit.train.lm_data.StreamLoader`); the state after chunk
    k starts chunk k+1, detached, so gradients flow back at most ``k2`` tokens. With ``k2 > k1`` the
    last ``k2 - k1`` tokens of the previous chunks are re-run with gradients from a detached state.
    """

    monitor_default = "val_bpc"

    def __init__(
        self,
        model: nn.Module,
        *,
        config: dict[str, Any],
        optim: OptimConfig,
        scheduler: SchedulerConfig,
        k1: int,
        k2: int | None = None,
        carry_state: bool = True,
        reset_every: int = 0,
    ) -> None:
        super().__init__(model, config=config, optim=optim, scheduler=scheduler)
        self.k1, self.k2 = k1, (k2 or k1)
        self.carry_state = carry_state
        self.reset_every = reset_every
        self._carry: dict[str, State | None] = {s: None for s in STAGES}
        self._window: Tensor | None = None  # the last k2 - k1 train tokens (k2 > k1 only)

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        if getattr(batch, "position", 0) == 0 or not self.carry_state:
            self._carry[stage] = None
            if stage == "train":
                self._window = None
        state = self._carry[stage]
        if stage == "train" and state is not None and self.reset_every > 0:
            state = self._reset_rows(state, batch)
        extra = self.k2 - self.k1
        if stage == "train" and extra > 0:
            logits = self._forward_with_window(batch.x, state, extra)
        else:
            logits, new_state = self.model(batch.x, state=state)
            self._carry[stage] = detach_state(new_state)
        T = batch.x.shape[1]
        logits = logits[:, -T:]  # (B, T, V)
        nats = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1), reduction="sum"
        )
        tokens = torch.tensor(float(batch.y.numel()), device=nats.device)
        return nats / tokens, {"nats": nats, "tokens": tokens}

    def _reset_rows(self, state: State, batch: Batch) -> State:
        """Zero the state of the streams whose turn it is (by global row: the same under DDP)."""
        position = int(getattr(batch, "position", 0))
        rows = int(getattr(batch, "row_offset", 0)) + torch.arange(batch.x.shape[0])
        reset = (position + rows * 7) % self.reset_every == 0  # (B,)
        if not bool(reset.any()):
            return state
        keep = (~reset).to(device=batch.x.device, dtype=torch.float32)[None, :, None]  # (1, B, 1)
        tensors = [t * keep.to(t.dtype) for t in _state_to_list(state)]
        restored = _state_from_list(tensors)
        assert restored is not None
        return restored

    def _forward_with_window(self, x: Tensor, state: State | None, extra: int) -> Tensor:
        full = x if self._window is None else torch.cat([self._window, x], dim=1)  # (B, W+T)
        cut = max(0, full.shape[1] - extra)
        parts = []
        if cut > 0:
            logits_a, state_a = self.model(full[:, :cut], state=state)
            parts.append(logits_a)
        else:
            state_a = state
        if cut < full.shape[1]:
            logits_b, _ = self.model(full[:, cut:], state=state_a)
            parts.append(logits_b)
        self._carry["train"] = None if state_a is None else detach_state(state_a)
        self._window = full[:, cut:].detach()
        return torch.cat(parts, dim=1)

    def _metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        loss = float(sums["nats"] / sums["tokens"])
        return {"loss": loss, "bpc": loss / math.log(2), "ppl": math.exp(min(loss, 50.0))}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["rnnkit_tbptt"] = {
            "state": [t.cpu() for t in _state_to_list(self._carry["train"])],
            "window": None if self._window is None else self._window.cpu(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("rnnkit_tbptt")
        if saved is not None:
            self._carry["train"] = _state_from_list(saved["state"])
            self._window = saved["window"]

    def on_fit_start(self) -> None:
        # A restored carry lives on the CPU until the device is known.
        state = self._carry["train"]
        if state is not None:
            moved = [t.to(self.device) for t in _state_to_list(state)]
            self._carry["train"] = _state_from_list(moved)
        if self._window is not None:
            self._window = self._window.to(self.device)


def experiment_dict(experiment: Any) -> dict[str, Any]:
    """An experiment dataclass as plain JSON-able data."""
    return asdict(experiment)
