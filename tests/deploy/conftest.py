"""Tiny finished runs of every family (a few optimiser steps each), shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "language_model": "tiny_charlm",
    "classification": "parity_classifier",
    "tagging": "rises_tagger",
    "forecasting": "sine_forecaster",
    "seq2seq": "reverse_seq2seq",
}


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for task, name in CONFIGS.items():
        args = ["fit", "--config", str(ROOT / "configs" / f"{name}.yaml"), "--run.root", str(root)]
        args += ["--run.name", name, "--trainer.max_steps", "3", "--trainer.num_threads", "1"]
        args += ["--run.plot", "false"]
        if task == "language_model":
            args += ["--sample_chars", "5", "--trainer.val_check_interval", "3"]
        assert main(args) == 0, name
        out[task] = root / name
    return out
