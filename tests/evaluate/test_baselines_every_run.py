"""Every run reports the task's baselines and a verdict, whatever its data: a synthetic task, a
registry set (on the same rows and numbers as the set written out as a user's file), in-memory
`DataParts`, a language model's corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.synthetic import synthetic
from rnnkit.evaluate.reference import judge_run, lm_baselines, seq2seq_id_baselines
from rnnkit.train import fit
from rnnkit.train.config import RunConfig, SequenceDataConfig, TrainerConfig
from rnnkit.train.specs import ClassificationExperiment, ClassifierSpec
from rnnkit.train.tasks import DataParts

FAST = [
    "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
    "--trainer.num_threads", "1", "--trainer.enable_progress_bar", "false",
    "--run.plot", "false", "--model.hidden_size", "8",
]  # fmt: skip
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def _keep_threads() -> Any:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _fit(tmp_path: Path, name: str, args: list[str], capsys: Any) -> dict[str, Any]:
    assert main(["fit", *args, *FAST, "--run.root", str(tmp_path), "--run.name", name]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    if "verdict" in summary:
        assert f"verdict: {summary['verdict']['line']}" in out
    return summary


def test_synthetic_run_judges_on_validation_then_test_and_can_skip(
    tmp_path: Path, capsys: Any
) -> None:
    parity = ["--config", str(CONFIGS / "parity_classifier.yaml"), "--data.num_samples", "200"]
    val = _fit(tmp_path, "val", parity, capsys)
    assert val["baselines_split"] == "val"
    assert set(val["baselines"]) == {"majority", "1nn_euclidean", "1nn_dtw"}
    assert val["verdict"]["line"].startswith("validation split: model accuracy ")
    assert val["verdict"]["model"] == pytest.approx(val["metrics"]["val_accuracy"])

    tested = _fit(tmp_path, "test", [*parity, "--run.test", "true"], capsys)
    assert tested["baselines_split"] == "test" and tested["verdict"]["line"].startswith("model ")
    assert tested["verdict"]["model"] == pytest.approx(tested["metrics"]["test_accuracy"])
    # The majority baseline: the share of the training split's commonest class in the test split.
    train, _, test = synthetic("synthetic_parity", num_samples=200, seq_len=6, seed=0, horizon=1)
    top = np.bincount([int(y) for _, y in train]).argmax()
    share = np.mean([int(y) == top for _, y in test])
    assert tested["baselines"]["majority"]["accuracy"] == pytest.approx(share)

    assert main(["test", "--run", str(tmp_path / "test")]) == 0
    report = json.loads(capsys.readouterr().out.split("\nverdict: ")[0])
    assert report["baselines"] == tested["baselines"]
    assert report["verdict"]["model"] == pytest.approx(tested["verdict"]["model"], rel=1e-5)

    off = _fit(tmp_path, "off", [*parity, "--evaluate.baselines", "false"], capsys)
    assert "baselines" not in off and "verdict" not in off


def test_registry_forecast_run_matches_the_same_series_as_a_user_file(
    tmp_path: Path, capsys: Any
) -> None:
    from sktime.datasets import load_airline

    series = load_airline()
    csv = tmp_path / "airline.csv"
    pd.DataFrame(
        {"unique_id": "air", "ds": series.index.to_timestamp(), "y": series.to_numpy()}
    ).to_csv(csv, index=False)
    recipe = ["--config", str(CONFIGS / "airline_forecaster.yaml"), "--run.test", "true"]
    registry = _fit(tmp_path, "registry", recipe, capsys)
    as_file = ["--data.path", str(csv), "--data.seq_len", "24", "--data.val_size", "12"]
    user = _fit(tmp_path, "file", [*recipe, *as_file, "--data.test_size", "24"], capsys)
    # Monthly: a season of 12 from the registry's index as from the file's time stamps; each
    # baseline forecasts each test window from the whole history before it, on both paths.
    assert set(registry["baselines"]) == {"naive", "seasonal_naive", "ets"}
    for name, scores in registry["baselines"].items():
        for metric, value in scores.items():
            assert value == pytest.approx(user["baselines"][name][metric], rel=1e-9), name
    assert registry["metrics"]["test_mae"] == pytest.approx(user["metrics"]["test_mae"], rel=1e-6)
    assert (
        registry["verdict"]["baselines"]["seasonal_naive"] < registry["baselines"]["naive"]["mae"]
    )


def test_registry_classification_uses_the_rows_a_ts_file_of_the_same_set_gives(
    tmp_path: Path,
) -> None:
    """GunPoint's TRAIN/TEST written as .ts files: the user path and the registry path hold out
    the same validation rows, fit the same scaler and frame alike (``data.frame: auto``: 5), so
    every split is the same tensors."""
    from sktime.datasets import load_gunpoint

    from rnnkit.train.tasks.classify import framed_splits, registry_splits
    from rnnkit.train.user_data import classifier_parts

    paths = {}
    for split in ("train", "test"):
        frame, labels = load_gunpoint(split=split, return_X_y=True)
        rows = [
            ",".join(repr(float(v)) for v in frame.iloc[i, 0]) + f":{labels[i]}"
            for i in range(len(frame))
        ]
        head = "@problemName GunPoint\n@univariate true\n@equalLength true\n@classLabel true 1 2\n"
        paths[split] = tmp_path / f"GunPoint_{split.upper()}.ts"
        paths[split].write_text(head + "@data\n" + "\n".join(rows) + "\n", encoding="utf-8")
    d = SequenceDataConfig(
        source="gunpoint", path=str(paths["train"]), test_path=str(paths["test"])
    )
    experiment = ClassificationExperiment(data=d)
    from_file, _ = classifier_parts(experiment)
    registry, frame = framed_splits(registry_splits(d), d)
    assert frame == 5 and from_file.meta["n_features"] == registry.meta["n_features"] == 5
    for mine, theirs in zip(
        (from_file.train, from_file.val, from_file.test),
        (registry.train, registry.val, registry.test),
        strict=True,
    ):
        assert len(mine) == len(theirs)
        for (x, y), k in zip(mine, range(len(theirs)), strict=True):
            rx, ry = theirs[k]
            torch.testing.assert_close(torch.as_tensor(x), torch.as_tensor(rx), rtol=0, atol=0)
            assert int(y) == int(ry)


def test_in_memory_data_parts_run_has_baselines_and_verdict(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def sample(label: int) -> tuple[torch.Tensor, int]:
        t = np.arange(10)
        x = np.sin(t * (0.4 + 0.6 * label)) + 0.1 * rng.standard_normal(10)
        return torch.tensor(x, dtype=torch.float32)[:, None], label

    train, val, test = ([sample(k % 2) for k in range(n)] for n in (40, 10, 10))
    experiment = ClassificationExperiment(
        model=ClassifierSpec(hidden_size=8),
        trainer=TrainerConfig(max_steps=4, num_threads=1, enable_progress_bar=False),
        run=RunConfig(root=str(tmp_path), name="mem", plot=False),
    )
    data = DataParts(train, val, test, {"classes": ["a", "b"], "n_features": 1})
    result = fit(experiment, data=data, test=True, judge=judge_run)
    assert result.summary["baselines"]["1nn_euclidean"]["accuracy"] == 1.0  # separable by shape
    assert result.summary["baselines"]["majority"]["accuracy"] == 0.5
    saved = json.loads((tmp_path / "mem" / "summary.json").read_text())
    assert saved["verdict"] == result.summary["verdict"]


def test_language_model_runs_report_unigram_and_bigram(tmp_path: Path, capsys: Any) -> None:
    args = ["--config", str(CONFIGS / "tiny_charlm.yaml"), "--data.max_chars", "4000"]
    args += ["--sample_chars", "0", "--run.test", "true"]
    summary = _fit(tmp_path, "lm", args, capsys)
    scores = summary["baselines"]
    assert set(scores) == {"unigram", "bigram"} and summary["verdict"]["metric"] == "bpc"
    assert scores["bigram"]["bpc"] < scores["unigram"]["bpc"] < 8  # English text, bytes or chars
    assert summary["verdict"]["model"] == pytest.approx(summary["metrics"]["test_bpc"])


def test_lm_and_seq2seq_id_baselines() -> None:
    train = [[1, 2, 3] * 20]
    got = lm_baselines(train, [[1, 2, 3, 1, 2, 3]], vocab_size=4, unit="bpc")
    assert got["unigram"]["bpc"] == pytest.approx(np.log2(3), abs=0.05)  # three equal tokens
    assert got["bigram"]["bpc"] < 0.1  # each token fixes the next
    assert "bigram" not in lm_baselines(train, train, vocab_size=6000, unit="bpc")
    scores = seq2seq_id_baselines([(5, 6, 2), (5, 6, 2), (7, 2)], [(5, 6, 2), (5, 7, 2)])
    assert scores["most_frequent"] == {"exact_match": 0.5, "token_accuracy": 5 / 6}
