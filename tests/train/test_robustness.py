"""Nothing lost, nothing silent: divergence stops a run with a message, damaged files are named,
config errors are one line before training, loaders name the row and column (issue 14)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.cli import main
from rnnkit.data.series import load_csv, prepare_forecasting
from rnnkit.diagnostics.guard import DivergenceGuard, GradientWarning
from rnnkit.integrity import clean_orphans, record_digest, sha256_file, verify_recorded
from rnnkit.train.config import TrainerConfig, parse_duration
from rnnkit.train.predict import load_run
from rnnkit.train.progress import StepProgress
from rnnkit.train.run import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny_charlm.yaml"
FAST = ["--trainer.max_steps", "8", "--trainer.val_check_interval", "4"]
FAST += ["--trainer.num_threads", "1", "--sample_chars", "0", "--run.plot", "false"]


def _one_line_error(capsys: Any) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit: error: ") and "\n" not in err, err
    assert "Traceback" not in err and "weights_only" not in err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny language-model run (kept pristine; tests copy it)."""
    root = tmp_path_factory.mktemp("runs")
    args = ["fit", "--config", str(TINY), "--run.root", str(root), "--run.name", "lm", *FAST]
    assert main(args) == 0
    return root / "lm"


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "lm"))


# ---- divergence ----
def test_huge_lr_stops_with_a_message_and_saves_no_nan(tmp_path: Path, capsys: Any) -> None:
    args = ["fit", "--config", str(TINY), "--run.root", str(tmp_path), "--run.name", "lr"]
    with pytest.warns(GradientWarning, match="step 5: .*(skipped|undone)"):  # each step says so
        code = main(
            [*args, "--optim.lr", "1e9", "--trainer.num_threads", "1", "--sample_chars", "0"]
        )
    err = capsys.readouterr().err
    assert code == 3
    last = err.strip().splitlines()[-1]
    assert last.startswith("rnnkit: error: training diverged: 5 steps in a row")
    assert "the last finite loss was" in last and "--optim.lr 1e+08" in last
    assert "gradient_clip_val" in last and "no artifact was written" in last
    run = tmp_path / "lr"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["skipped_steps"]
    assert not (run / "artifact" / "model.safetensors").exists()
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        for name, value in load_checkpoint(ckpt)["state_dict"].items():
            assert torch.isfinite(value).all(), (ckpt, name)


class _Toy(L.LightningModule):
    def __init__(self, nan_from: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.nan_from = nan_from

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.lin(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss * float("nan") if self.global_step >= self.nan_from else loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _toy_fit(callbacks: list[Any], *, steps: int, nan_from: int = 10**9) -> tuple[Any, Any]:
    data = TensorDataset(torch.randn(64, 2), torch.randn(64, 1))
    module = _Toy(nan_from)
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=any(isinstance(c, StepProgress) for c in callbacks),
        callbacks=callbacks,
    )
    trainer.fit(module, DataLoader(data, batch_size=8))
    return trainer, module


def test_guard_skips_nan_steps_keeps_weights_and_stops_after_patience() -> None:
    guard = DivergenceGuard(patience=3)
    with pytest.warns(GradientWarning, match="the loss is nan .* this update was skipped"):
        trainer, module = _toy_fit([guard], steps=50, nan_from=4)
    assert guard.skipped_steps == [4, 5, 6] and trainer.global_step == 7
    assert guard.diverged and "3 steps in a row (4-6)" in guard.diverged
    assert guard.last_finite is not None and guard.last_finite[0] == 3
    assert all(torch.isfinite(p).all() for p in module.parameters())


# ---- integrity ----
def test_corrupted_artifact_is_one_line_naming_the_file(run_copy: Path, capsys: Any) -> None:
    weights = run_copy / "artifact" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-50] ^= 0x01  # one bit of one weight: safetensors alone would load it silently
    weights.write_bytes(bytes(data))
    assert main(["generate", "--run", str(run_copy), "--chars", "5"]) == 2
    err = _one_line_error(capsys)
    assert f"{weights} is corrupt: its SHA-256" in err
    weights.write_bytes(bytes(data[:100]))  # truncated
    with pytest.raises(ValueError, match=r"model.safetensors is corrupt"):
        load_run(run_copy)
    meta_path = run_copy / "artifact" / "model.json"
    meta_path.write_text(meta_path.read_text().replace('"hidden_size": 32', '"hidden_size": 31'))
    with pytest.raises(ValueError, match=r"model.json is corrupt: its content does not match"):
        load_run(run_copy)
    meta_path.write_text("{not json")
    with pytest.raises(ValueError, match=r"model.json is corrupt: not valid JSON at line 1"):
        load_run(run_copy)


def test_truncated_checkpoint_resume_is_one_line_without_the_advice(
    run_copy: Path, capsys: Any
) -> None:
    last = run_copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:5000])
    args = ["fit", "--config", str(TINY), *FAST, "--run.root", str(run_copy.parent)]
    assert main([*args, "--run.name", "lm", "--resume", str(run_copy)]) == 2
    assert f"{last} is corrupt: its SHA-256" in _one_line_error(capsys)
    (run_copy / "checkpoints" / "last.ckpt.sha256.json").unlink()  # an older run: no digest
    assert main([*args, "--run.name", "lm", "--resume", str(run_copy)]) == 2
    assert "is not a readable rnnkit checkpoint: it is truncated" in _one_line_error(capsys)


def test_a_pickled_object_never_gets_the_weights_only_advice(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": _Toy(0)}, path)  # not tensors: weights_only refuses
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    assert "holds objects other than tensors" in str(info.value)


def test_orphan_tmp_files_are_removed_at_the_next_start(run_copy: Path, capsys: Any) -> None:
    orphan = run_copy / "checkpoints" / ".last.ckpt.1a2b3c4d.tmp"
    orphan.write_bytes(b"half a checkpoint")
    args = ["fit", "--config", str(TINY), *FAST, "--run.root", str(run_copy.parent)]
    assert main([*args, "--run.name", "lm", "--resume", str(run_copy)]) == 0
    assert not orphan.exists()
    assert f"removed {orphan}, left by an interrupted write" in capsys.readouterr().out
    assert not list(run_copy.rglob("*.tmp"))


def test_sidecar_survives_a_kill_between_its_write_and_the_replace(tmp_path: Path) -> None:
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"old")
    record_digest(ckpt, sha256_file(ckpt))
    assert verify_recorded(ckpt)
    new = tmp_path / "new"
    new.write_bytes(b"new")
    record_digest(ckpt, sha256_file(new))  # killed here: the old file is still in place
    assert verify_recorded(ckpt)
    new.replace(ckpt)
    assert verify_recorded(ckpt)
    ckpt.write_bytes(b"neither")
    with pytest.raises(ValueError, match=r"last\.ckpt is corrupt"):
        verify_recorded(ckpt)
    assert clean_orphans(tmp_path / "absent") == []


# ---- config before training ----
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3m", 180),
        ("90s", 90),
        ("1h30m", 5400),
        ("2 hours", 7200),
        ("00:03:00", 180),
        ("00:00:03:00", 180),
        ("01:00:00:05", 86405),
        ("3 minutes", 180),
    ],
)
def test_max_time_formats(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["3 lightyears", "soon", "", "-3m", "0s", "1:2:3:4:5"])
def test_bad_max_time_is_explained(text: str) -> None:
    with pytest.raises(ValueError, match=r"trainer.max_time .*(not a duration|longer than 0)"):
        TrainerConfig(max_time=text)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--trainer.max_steps", "0", "trainer.max_steps must be >= 1 (or -1"),
        ("--trainer.max_steps", "-5", "trainer.max_steps must be >= 1 (or -1"),
        ("--trainer.max_time", "3 weeks later", "trainer.max_time '3 weeks later' is not a"),
        ("--trainer.val_check_interval", "0", "trainer.val_check_interval must be"),
        ("--trainer.max_steps", "abc", "trainer.max_steps: Expected a int"),
        ("--trainer.precision", "17-mixed", "trainer.precision must be one of"),
        ("--optim.lr", "inf", "optim.lr"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(
    flag: str, value: str, message: str, tmp_path: Path, capsys: Any
) -> None:
    assert main(["fit", "--config", str(TINY), "--run.root", str(tmp_path), flag, value]) == 2
    assert message in _one_line_error(capsys)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_yaml_syntax_error_is_one_line_with_file_and_line(tmp_path: Path, capsys: Any) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("task: language_model\ntrainer:\n  max_steps: 10\n  oops: [1, 2\n")
    assert main(["fit", "--config", str(recipe)]) == 2
    assert f"{recipe}:5:1: YAML syntax error: expected ','" in _one_line_error(capsys)


def test_config_modules_import_without_torch() -> None:
    code = (
        "import sys, rnnkit.cli, rnnkit.cli.fit, rnnkit.train.specs, rnnkit.train.experiment_io, "
        "rnnkit.integrity; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fit_help_shows_comments_and_recipe_values(capsys: Any) -> None:
    assert main(["fit", "--config", str(TINY), "--help"]) == 0
    out = capsys.readouterr().out
    # the recipe's max_steps (30), not the library's 2000, with the field's comment
    assert "--trainer.max_steps  int = 30  # optimiser steps (-1: run max_epochs)" in out
    assert "--optim.weight_decay  float = 0.01  # AdamW decoupled decay" in out  # a default
    assert "this many in a row stop the run" in out  # a comment above its field


def test_dry_run_builds_without_training(tmp_path: Path, capsys: Any) -> None:
    args = ["fit", "--config", str(TINY), "--run.root", str(tmp_path), "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "dry run: language_model, LanguageModel with" in out and "nothing trained" in out
    assert not list(tmp_path.iterdir())


# ---- console ----
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream_cls", [io.StringIO, _Tty])
def test_progress_counts_steps_and_writes_no_cr_off_a_terminal(stream_cls: type) -> None:
    stream = stream_cls()
    _toy_fit([StepProgress(stream=stream, every_s=0.0)], steps=12)
    text = stream.getvalue()
    assert "step 12/12" in text and "train_loss" in text and "ETA" in text
    assert ("\r" in text) == (stream_cls is _Tty)


# ---- loaders ----
def test_bom_csv_loads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("t,y\n1,2.5\n2,3.5\n".encode("utf-8-sig"))
    frame = load_csv(path, target="y", time="t")
    assert list(frame.columns) == ["y"] and frame["y"].tolist() == [2.5, 3.5]


def test_inf_and_unknown_columns_are_named() -> None:
    frame = pd.DataFrame({"y": np.arange(40.0), "x": np.ones(40)})
    frame.attrs["source"] = "demo"
    frame.loc[17, "x"] = np.inf
    opts: dict[str, Any] = {"input_len": 4, "horizon": 1}
    with pytest.raises(ValueError, match=r"demo row 17 \(index 17\), column 'x': value inf is"):
        prepare_forecasting(frame, targets=["y"], numeric=["x"], **opts)
    with pytest.raises(ValueError, match=r"demo: no such column 'z'; the frame has \['y', 'x'\]"):
        prepare_forecasting(frame, targets=["z"], **opts)


def test_unknown_prompt_characters_are_reported(finished: Path, capsys: Any) -> None:
    assert (
        main(["generate", "--run", str(finished), "--prompt", "a\u00fcb\u00fc", "--chars", "3"])
        == 2
    )
    err = _one_line_error(capsys)
    assert "--prompt: 2 characters not in the model's vocabulary ('\u00fc' x2)" in err
    args = ["generate", "--run", str(finished), "--prompt", "a\u00fc", "--chars", "3"]
    assert main([*args, "--allow_unknown", "true"]) == 0
    assert "they enter as <unk>" in capsys.readouterr().err


def test_finished_artifact_has_digests_and_finite_weights(finished: Path) -> None:
    meta = json.loads((finished / "artifact" / "model.json").read_text())
    assert set(meta["sha256"]) == {"model.safetensors", "vocab.json"} and meta["meta_sha256"]
    for value in load_file(finished / "artifact" / "model.safetensors").values():
        assert torch.isfinite(value).all()
    for ckpt in (finished / "checkpoints").glob("*.ckpt"):
        assert verify_recorded(ckpt)


def test_all_finite_finds_one_nan_or_inf_anywhere_and_passes_huge_finite_weights() -> None:
    """The per-step check after each update (`DivergenceGuard`) reads each tensor's largest
    magnitude; one bad element anywhere must fail it, extreme but finite values must not."""
    from rnnkit.diagnostics.guard import all_finite

    weights = [torch.randn(300, 7), torch.randn(5), torch.empty(0)]
    assert all_finite(weights) and all_finite([])
    for bad in (float("nan"), float("inf"), -float("inf")):
        for where in ((0, 0), (123, 4), (299, 6)):
            broken = [w.clone() for w in weights]
            broken[0][where] = bad
            assert not all_finite(broken), (bad, where)
    huge = [torch.full((3,), 3.0e38), torch.full((2,), -3.0e38)]
    assert all_finite(huge)
