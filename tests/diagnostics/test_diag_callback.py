"""GradientDiagnostics in a Lightning run: skips NaN and exploding updates, flags vanishing
gradients, writes its files; ``diagnose_main`` turns them into PNGs and a verdict."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit import Recurrent
from rnnkit.cli.diagnose import main as diagnose_main
from rnnkit.diagnostics import GradientDiagnostics, GradientWarning


def adding_data(T: int, n: int, seed: int) -> TensorDataset:
    """The adding problem, batch first: ``x`` ``(n, T, 2)``, ``y`` ``(n, 1)``."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, T, generator=g)
    a = torch.randint(0, T // 2, (n,), generator=g)
    b = torch.randint(T // 2, T, (n,), generator=g)
    m = torch.zeros(n, T)
    rows = torch.arange(n)
    m[rows, a] = 1.0
    m[rows, b] = 1.0
    return TensorDataset(torch.stack([u, m], -1), (u[rows, a] + u[rows, b])[:, None])


class Adding(L.LightningModule):
    def __init__(
        self, cell: str = "lstm", *, hidden: int = 32, lr: float = 3e-3, **faults: int
    ) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        self.lr = lr
        self.faults = faults  # nan_at / blow_at: global steps where the loss is spoiled

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[0][:, -1])

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        if self.global_step == self.faults.get("nan_at"):
            loss = loss * float("nan")
        if self.global_step == self.faults.get("blow_at"):
            loss = loss * 1e6
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class Snapshot(L.Callback):
    """Weights before and after the update of one global step."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.before: dict[str, Tensor] = {}
        self.after: dict[str, Tensor] = {}

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, i: int) -> None:
        if trainer.global_step == self.step:
            self.before = {k: v.clone() for k, v in module.state_dict().items()}

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, i: int) -> None:
        if trainer.global_step == self.step + 1:
            self.after = {k: v.clone() for k, v in module.state_dict().items()}


def _trainer(tmp_path: Path, callbacks: list[Any], steps: int) -> L.Trainer:
    return L.Trainer(
        default_root_dir=str(tmp_path),
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def _loader(T: int, n: int = 256, batch: int = 32, seed: int = 0) -> DataLoader[Any]:
    return DataLoader(adding_data(T, n, seed), batch_size=batch, shuffle=True)


def test_nan_gradient_skips_the_update_and_writes_files(tmp_path: Path) -> None:
    diag = GradientDiagnostics(every_n_steps=2)
    snap = Snapshot(step=3)
    trainer = _trainer(tmp_path, [diag, snap], steps=6)
    with pytest.warns(GradientWarning, match=r"NaN or Inf.*skipped, the weights are unchanged"):
        trainer.fit(Adding("gru", nan_at=3), _loader(12))
    assert snap.before and snap.after
    for name, value in snap.before.items():
        torch.testing.assert_close(snap.after[name], value, rtol=0, atol=0)
    assert all(torch.isfinite(v).all() for v in snap.after.values())
    out = tmp_path / "diagnostics"
    data = json.loads((out / "diagnostics.json").read_text())
    assert data["skipped_steps"] == [3]
    assert [e["kind"] for e in data["events"] if e["kind"] != "vanishing"] == ["nonfinite"]
    assert [r["step"] for r in data["records"]] == [0, 2, 4]
    with np.load(out / "gradient_flow.npz") as z:
        assert z["hidden__rnn.layer0"].shape == (3, 12)
        assert z["steps"].tolist() == [0, 2, 4]
        assert z["gates__rnn.layer0__z"].shape == (3, 20)
        assert z["jac_sv__rnn.layer0"].shape[0] == 3

    assert diagnose_main(["--run", str(tmp_path)]) == 0
    for name in ("gradient_flow.png", "gate_saturation.png", "jacobian_spectrum.png"):
        assert (out / name).stat().st_size > 1000
    verdict = (out / "verdict.txt").read_text()
    assert "EXPLODING: 1 non-finite" in verdict and "1 updates skipped" in verdict


def test_a_norm_jump_is_skipped_after_warmup(tmp_path: Path) -> None:
    diag = GradientDiagnostics(every_n_steps=100, warmup=5, jacobian=False)
    snap = Snapshot(step=8)
    with pytest.warns(GradientWarning, match="exploding gradient"):
        _trainer(tmp_path, [diag, snap], steps=10).fit(Adding("lstm", blow_at=8), _loader(10))
    assert diag.skipped_steps == [8]
    for name, value in snap.before.items():
        torch.testing.assert_close(snap.after[name], value, rtol=0, atol=0)
    assert [e["kind"] for e in diag.events if e["kind"] != "vanishing"] == ["jump"]


def test_callback_flags_vanilla_tanh_vanishing_at_long_t(tmp_path: Path) -> None:
    diag = GradientDiagnostics(every_n_steps=1, vanish_within=100, jacobian_steps=4)
    with pytest.warns(GradientWarning, match=r"vanishing gradient in rnn.layer0"):
        _trainer(tmp_path, [diag], steps=2).fit(Adding("rnn"), _loader(300, n=64))
    reach = diag.records[-1]["reach"]["rnn.layer0"]
    assert reach is not None and reach < 100
    assert diagnose_main(["--run", str(tmp_path)]) == 0
    assert "VANISHING" in (tmp_path / "diagnostics" / "verdict.txt").read_text()


def test_lstm_solves_adding_at_small_t(tmp_path: Path) -> None:
    """CI-sized long-range memory: an LSTM learns the adding problem at T = 25."""
    torch.manual_seed(0)
    diag = GradientDiagnostics(every_n_steps=200, jacobian=False)
    model = Adding("lstm", hidden=32, lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, [diag], steps=1200).fit(model, _loader(25, n=4096, batch=64))
    x, y = adding_data(25, 1000, seed=99).tensors
    with torch.no_grad():
        mse = float(F.mse_loss(model(x), y))
    assert mse < 0.01, f"LSTM adding T=25: val MSE {mse:.4f} (always-1 baseline 0.167)"
    assert not diag.skipped_steps
    assert math.isfinite(diag.records[-1]["total_grad_norm"])


def test_diagnose_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert diagnose_main([]) == 2
    assert "exactly one of --run" in capsys.readouterr().err
    # A folder with neither recorded diagnostics nor a finished run to measure: one clear line.
    assert diagnose_main(["--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not an rnnkit run directory" in err and "model.json is missing" in err
    assert err.count("\n") == 1


CONFIG = Path(__file__).resolve().parents[2] / "configs" / "parity_classifier.yaml"


def test_with_rnnkit_fit_and_diagnose_config(tmp_path: Path) -> None:
    """The callback on the project's own task modules, and `diagnose --config` without training."""
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.specs import EXPERIMENTS
    from rnnkit.train.trainer import fit

    args = ["--config", str(CONFIG), "--trainer.max_steps", "20", "--run.root", str(tmp_path)]
    args += ["--run.name", "parity", "--trainer.enable_progress_bar", "false"]
    experiment = parse_experiment(EXPERIMENTS["classification"], args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(
            experiment, callbacks=[GradientDiagnostics(every_n_steps=10)], final_eval=False
        )
    data = json.loads((result.run_dir / "diagnostics" / "diagnostics.json").read_text())
    assert [r["step"] for r in data["records"]] == [0, 10]
    assert "model.rnn.layer0" in data["records"][0]["saturation"]
    assert len(data["grad_norms"]) == 20
    assert diagnose_main(["--run", str(result.run_dir)]) == 0

    out = tmp_path / "untrained"
    code = diagnose_main(["--config", str(CONFIG), "--out", str(out), "--run.root", str(tmp_path)])
    assert code == 0
    assert (out / "gradient_flow.png").is_file() and (out / "verdict.txt").is_file()
