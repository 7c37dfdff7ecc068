"""Best-checkpoint choice and early stopping on scripted validation metrics (ties, warm-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.train.config import RunConfig, monitor_tiebreak
from rnnkit.train.selection import BestCheckpoint, TieBreak, TieBreakEarlyStopping

# Accuracy on a tiny validation split ties at 0.8 four times; the loss says which 0.8 is best.
ACC = [0.5, 0.8, 0.8, 0.8, 0.7, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
LOSS = [1.0, 0.9, 0.7, 0.8, 0.6, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]


class Scripted(L.LightningModule):
    """One optimiser step per epoch; validation logs the next entry of the script."""

    def __init__(self, acc: list[float], loss: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.acc, self.loss = acc, loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return (self.w - 1.0).pow(2).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        e = self.current_epoch
        self.log("val_accuracy", self.acc[e])
        self.log("val_loss", self.loss[e])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> Any:
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)

    def val_dataloader(self) -> Any:
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)


def _run(
    tmp_path: Path, *, tiebreak: str | None, patience: int | None = None, min_steps: int = 0
) -> tuple[BestCheckpoint, int]:
    """Fit the script; returns the checkpoint callback and the number of validations run."""
    best = BestCheckpoint(
        tiebreak=TieBreak(tiebreak, "min", 0.0),
        min_steps=min_steps,
        dirpath=tmp_path,
        filename="best",
        monitor="val_accuracy",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [best]
    if patience is not None:
        callbacks.append(
            TieBreakEarlyStopping(
                tiebreak=TieBreak(tiebreak, "min", 0.0),
                min_steps=min_steps,
                monitor="val_accuracy",
                mode="max",
                patience=patience,
                check_on_train_epoch_end=False,
            )
        )
    module = Scripted(ACC, LOSS)
    trainer = L.Trainer(
        max_epochs=len(ACC),
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(module)
    return best, trainer.current_epoch


def test_a_tie_on_the_monitor_goes_to_the_better_validation_loss(tmp_path: Path) -> None:
    best, _ = _run(tmp_path / "tie", tiebreak="val_loss")
    assert best.best_epoch == 5  # the 0.8 with the lowest loss (0.5), not the first 0.8
    assert float(best.best_model_score) == pytest.approx(0.8)
    saved = torch.load(tmp_path / "tie" / "best.ckpt", weights_only=True)
    assert saved["epoch"] == 5
    # Control: without the tie-break Lightning keeps the first maximum (so the script can fail).
    first, _ = _run(tmp_path / "first", tiebreak=None)
    assert first.best_epoch == 1


def test_early_stopping_counts_a_won_tie_as_an_improvement(tmp_path: Path) -> None:
    _, with_tiebreak = _run(tmp_path / "tie", tiebreak="val_loss", patience=3)
    _, without = _run(tmp_path / "first", tiebreak=None, patience=3)
    # Without: best at epoch 1, three validations without a higher accuracy -> stops after epoch 4.
    assert without == 5
    # With: ties at epochs 2 and 5 lower the loss and restart the wait -> stops after epoch 8.
    assert with_tiebreak == 9


def test_warm_up_validations_are_not_candidates(tmp_path: Path) -> None:
    # Steps: validation e follows step e + 1; min_steps=7 leaves epochs 6.. as candidates.
    best, epochs = _run(tmp_path / "warm", tiebreak="val_loss", patience=1, min_steps=7)
    assert best.best_epoch == 6  # the first candidate; later 0.7s tie and the loss does not drop
    assert epochs == 8  # patience 1 counted from the first candidate (epoch 6), not from epoch 1
    assert best.best_step == 7


def test_tiebreak_defaults_to_the_loss_for_maximised_metrics_only() -> None:
    assert RunConfig().monitor_tiebreak == "auto"
    assert monitor_tiebreak("val_accuracy", "max", "auto") == "val_loss"
    assert monitor_tiebreak("val_loss", "min", "auto") is None
    assert monitor_tiebreak("val_accuracy", "max", None) is None
    assert monitor_tiebreak("val_bpc", "min", "val_loss") == "val_loss"
