"""The ``rnnkit`` command end to end: fit -> run directory -> generate/predict/validate from it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from rnnkit.cli import main
from rnnkit.train.experiment_io import experiment_from_dict
from rnnkit.train.predict import load_run
from rnnkit.train.run import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny_charlm.yaml"
FAST = [
    "--trainer.max_steps",
    "8",
    "--trainer.val_check_interval",
    "4",
    "--trainer.num_threads",
    "1",
    "--sample_chars",
    "20",
]


def test_fit_writes_run_dir_then_generate_predict_validate(tmp_path: Path, capsys: Any) -> None:
    assert (
        main(["fit", "--config", str(TINY), "--run.root", str(tmp_path), "--run.name", "lm", *FAST])
        == 0
    )
    run = tmp_path / "lm"
    out = capsys.readouterr().out
    assert f"run directory: {run}" in out
    for name in (
        "config.yaml",
        "metrics.csv",
        "loss_curve.png",
        "summary.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "artifact/model.safetensors",
        "artifact/model.json",
        "artifact/vocab.json",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((run / "summary.json").read_text())
    assert {"val_bpc", "baseline_unigram_bpc", "val_loss"} <= summary["metrics"].keys()
    assert summary["layer_path"].startswith("native:lstm")
    assert summary["seed"] == 7 and summary["steps"] == 8 and summary["versions"]["torch"]
    resolved = experiment_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert resolved.trainer.max_steps == 8 and resolved.model.hidden_size == 32
    assert resolved == load_run(run).experiment  # config.yaml and the artifact agree

    assert (
        main(["generate", "--run", str(run), "--prompt", "The ", "--chars", "30", "--seed", "1"])
        == 0
    )
    first = capsys.readouterr().out
    assert first.startswith("The ") and len(first) >= 30
    assert (
        main(["generate", "--run", str(run), "--prompt", "The ", "--chars", "30", "--seed", "1"])
        == 0
    )
    assert capsys.readouterr().out == first  # same seed, same text

    text = "The keyword is a statement."
    assert main(["predict", "--run", str(run), "--text", text]) == 0
    scored = json.loads(capsys.readouterr().out)
    # The same bits per character by hand: stream the text through the model's O(1) step.
    loaded = load_run(run)
    assert loaded.vocab is not None
    ids = torch.as_tensor(loaded.vocab.encode_chars(text).astype("int64"))
    nats, state = 0.0, None
    with torch.no_grad():
        for t in range(len(ids) - 1):
            out = loaded.model.step(ids[t : t + 1], state)
            nats -= float(out.logits.log_softmax(-1)[0, ids[t + 1]])
            state = out.state
    assert scored["chars"] == 27
    assert scored["bpc"] == pytest.approx(nats / (len(ids) - 1) / math.log(2), rel=1e-4)

    assert main(["validate", "--run", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["val_bpc"] == pytest.approx(summary["metrics"]["val_bpc"], rel=1e-5)


def test_unknown_key_lists_valid_ones(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text() + "\noptim:\n  learning_rate: 0.1\n")
    assert main(["fit", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'optim.learning_rate'; valid keys of 'optim': name, lr, weight_decay" in err
    assert main(["fit", "--config", str(TINY), "--modle.hidden_size", "3"]) == 2
    assert "unknown key 'modle.hidden_size'; valid keys at the top level: seed, optim" in (
        capsys.readouterr().err
    )


def test_missing_run_or_checkpoint_fails_clearly(tmp_path: Path, capsys: Any) -> None:
    assert main(["generate", "--run", str(tmp_path / "nope")]) == 2
    assert "is not an rnnkit run directory" in capsys.readouterr().err
    assert main(["fit", "--config", str(TINY), "--resume", str(tmp_path / "nope")]) == 2
    assert "cannot resume: checkpoint" in capsys.readouterr().err
    assert main(["fit", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file" in capsys.readouterr().err


def test_help_print_config_and_datasets(capsys: Any) -> None:
    assert main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(TINY), "--print_config"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "hidden_size: 32" in printed and "k1: 32" in printed
    assert main(["datasets"]) == 0
    assert "shakespeare" in capsys.readouterr().out


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process(tmp_path: Path) -> None:
    """2 gloo processes, 2 streams each, end where 1 process with the same 4 streams ends."""
    args = [
        sys.executable,
        "-m",
        "rnnkit.cli",
        "fit",
        "--config",
        str(TINY),
        "--run.root",
        str(tmp_path),
        "--trainer.accelerator",
        "cpu",
        "--trainer.max_steps",
        "6",
        "--trainer.val_check_interval",
        "3",
        "--trainer.num_threads",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--sample_chars",
        "0",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("RNNKIT_RUN_DIR", None)
    for name, devices in (("one", "1"), ("two", "2")):
        done = subprocess.run(
            [*args, "--run.name", name, "--trainer.devices", devices],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    one = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.ckpt")
    two = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.ckpt")
    assert one["global_step"] == two["global_step"] == 6
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s2["world_size"] == 2
    assert s2["metrics"]["val_bpc"] == pytest.approx(s1["metrics"]["val_bpc"], rel=1e-4)


def _is_app(recipe: Path) -> bool:
    return "app" in (yaml.safe_load(recipe.read_text()) or {})


FIT_RECIPES = [p for p in sorted((ROOT / "configs").glob("*.yaml")) if not _is_app(p)]
APP_RECIPES = [p for p in sorted((ROOT / "configs").glob("*.yaml")) if _is_app(p)]


@pytest.mark.parametrize("recipe", APP_RECIPES, ids=lambda p: p.stem)
def test_app_recipe_is_refused_by_fit_with_a_pointer(recipe: Path, capsys: Any) -> None:
    assert main(["fit", "--config", str(recipe)]) == 2
    assert "rnnkit app" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", FIT_RECIPES, ids=lambda p: p.stem)
def test_every_recipe_parses(recipe: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(recipe), "--print_config"])
    assert done.value.code == 0
    assert "task:" in capsys.readouterr().out


def test_classifier_recipe_fits_then_predicts_csv(tmp_path: Path, capsys: Any) -> None:
    recipe = ROOT / "configs" / "parity_classifier.yaml"
    args = ["--run.root", str(tmp_path), "--run.name", "c", "--trainer.max_steps", "20"]
    assert main(["fit", "--config", str(recipe), *args]) == 0
    assert "val_accuracy" in capsys.readouterr().out
    assert main(["predict", "--run", str(tmp_path / "c")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 160
    assert (tmp_path / "c" / "predictions.csv").read_text().startswith("row,prediction,target")
    assert main(["generate", "--run", str(tmp_path / "c")]) == 2
    assert "generate needs a language model run" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    """Kill ``rnnkit fit`` with SIGKILL once a checkpoint exists; ``--resume`` ends where an
    uninterrupted run ends, bit for bit."""
    import signal
    import time

    args = [
        sys.executable,
        "-m",
        "rnnkit.cli",
        "fit",
        "--config",
        str(TINY),
        "--run.root",
        str(tmp_path),
        "--trainer.max_steps",
        "150",
        "--trainer.val_check_interval",
        "25",
        "--trainer.checkpoint_every_n_steps",
        "5",
        "--trainer.deterministic",
        "true",
        "--trainer.num_threads",
        "1",
        "--sample_chars",
        "0",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("RNNKIT_RUN_DIR", None)
    full = subprocess.run([*args, "--run.name", "full"], env=env, capture_output=True, timeout=240)
    assert full.returncode == 0, full.stderr[-2000:]

    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(
        [*args, "--run.name", "cut"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = load_checkpoint(last)["global_step"]
    assert 0 < killed_at < 150

    resumed = subprocess.run(
        [*args, "--run.name", "cut", "--resume", str(tmp_path / "cut")],
        env=env,
        capture_output=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")
    b = load_checkpoint(last)
    assert a["global_step"] == b["global_step"] == 150
    for name, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], value, rtol=0, atol=0, msg=name)


def test_fit_with_diagnostics_then_diagnose(tmp_path: Path) -> None:
    """trainer.diagnostics_every records gradient flow during fit; `rnnkit diagnose` plots it."""
    args = ["fit", "--config", str(TINY), "--run.root", str(tmp_path), "--run.name", "lm"]
    assert main([*args, *FAST, "--trainer.diagnostics_every", "4"]) == 0
    run = tmp_path / "lm"
    assert (run / "diagnostics" / "diagnostics.json").is_file()
    assert main(["diagnose", "--run", str(run)]) == 0
    for name in ("gradient_flow.png", "verdict.txt"):
        assert (run / "diagnostics" / name).is_file(), name
    assert (run / "diagnostics" / "verdict.txt").read_text().strip()


def test_config_by_shipped_recipe_name(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """Outside the repository (no configs/ here) a recipe is named by its shipped name."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", "tiny_charlm", "--print_config"])
    assert done.value.code == 0 and "task: language_model" in capsys.readouterr().out
    assert main(["fit", "--config", "no_such_recipe"]) == 2
    err = capsys.readouterr().err
    assert "config file no_such_recipe does not exist" in err and "demo_charlm" in err
