"""Runs trained on an application's in-memory data (`DataParts`) keep their test split, so
`rnnkit predict`, `test`, `export` and `diagnose` work on them as on runs from a recipe."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnkit.cli import main as cli
from rnnkit.data.sample_file import encode_samples, load_samples
from rnnkit.data.text import Vocab
from rnnkit.train import DataParts, fit
from rnnkit.train.config import (
    EarlyStoppingConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    SequenceDataConfig,
    TrainerConfig,
)
from rnnkit.train.specs import (
    ClassificationExperiment,
    ClassifierSpec,
    Seq2SeqExperiment,
    Seq2SeqSpec,
)


def _common(tmp_path: Path, name: str, steps: int) -> dict[str, Any]:
    return {
        "seed": 0,
        "optim": OptimConfig(name="adam", lr=1e-2, weight_decay=0.0),
        "scheduler": SchedulerConfig(name="none"),
        "trainer": TrainerConfig(
            max_steps=steps, val_check_interval=steps, enable_progress_bar=False, num_threads=1
        ),
        "early_stopping": EarlyStoppingConfig(enabled=False),
        "run": RunConfig(root=str(tmp_path), name=name, plot=False, test=True),
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_samples_round_trip_through_safetensors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 9, n), int(n % 2)) for n in (3, 1, 5)]  # ids + class
    windows = [(rng.normal(size=(n, 2)).astype(np.float32), rng.normal(size=(2, 1)), None)
               for n in (4, 6)]  # fmt: skip
    bare = [np.arange(n) for n in (2, 7)]  # language-model sequences
    for samples in (pairs, windows, bare):
        path = tmp_path / "s.safetensors"
        path.write_bytes(encode_samples(samples))
        back = load_samples(path)
        assert len(back) == len(samples)
        for a, b in zip(samples, back, strict=True):
            fields = zip(*((s,) if not isinstance(s, tuple) else s for s in (a, b)), strict=True)
            for u, v in fields:
                assert (u is None and v is None) or np.array_equal(np.asarray(u), v)
    wrong = r"sample 1: field 0 has shape \(3, 1\); sample 0's is \(2, 2\)"
    with pytest.raises(ValueError, match=wrong):
        encode_samples([(np.zeros((2, 2)), 1), (np.zeros((3, 1)), 0)])
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=r"bad\.safetensors is not a readable safetensors file"):
        load_samples(tmp_path / "bad.safetensors")


def _token_samples(n: int) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        ids = rng.integers(4, 12, int(rng.integers(2, 12)))
        out.append((ids, int(ids[-1] > 7)))  # the label is the last token's half
    return out


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    tmp = tmp_path_factory.mktemp("cls")
    samples = _token_samples(300)
    vocab = Vocab.build([str(i) for i in range(8)])
    data = DataParts(samples[:200], samples[200:240], samples[240:],
                     {"classes": ["low", "high"], "vocab": vocab})  # fmt: skip
    exp = ClassificationExperiment(
        data=SequenceDataConfig(batch_size=32),
        model=ClassifierSpec(embedding_dim=8, hidden_size=16, cell="gru"),
        **_common(tmp, "cls", 60),
    )
    result = fit(exp, data=data)
    return result.run_dir, result.metrics


def test_predict_on_an_in_memory_classifier_run_writes_class_names(
    classifier_run: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    run, metrics = classifier_run
    art = json.loads((run / "artifact" / "model.json").read_text())
    assert {"test_split.safetensors", "data_meta.json"} <= art["sha256"].keys()  # sealed
    out = tmp_path / "pred.csv"
    assert cli(["predict", "--run", str(run), "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 60
    assert {r["target"] for r in rows} == {"low", "high"}
    assert {r["prediction"] for r in rows} <= {"low", "high"}
    accuracy = np.mean([r["prediction"] == r["target"] for r in rows])
    assert accuracy == pytest.approx(metrics["test_accuracy"])  # the model fit() tested
    assert cli(["test", "--run", str(run)]) == 0  # rnnkit test reads the stored split too


def test_diagnose_and_export_read_the_stored_split(
    classifier_run: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    run, _ = classifier_run
    assert cli(["diagnose", "--run", str(run), "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "verdict.txt").is_file()
    assert (tmp_path / "d" / "gradient_flow.png").is_file()
    pytest.importorskip("onnx")
    assert cli(["export", "--run", str(run), "--out", str(tmp_path / "m.onnx")]) == 0


def test_a_damaged_stored_split_is_refused(
    classifier_run: tuple[Path, dict[str, float]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(classifier_run[0] / "artifact", run / "artifact")
    split = run / "artifact" / "test_split.safetensors"
    data = bytearray(split.read_bytes())
    data[-1] ^= 1
    split.write_bytes(bytes(data))
    assert cli(["predict", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "test_split.safetensors is corrupt" in err and "\n" not in err


def test_predict_on_an_in_memory_seq2seq_run_writes_strings(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    letters = "abcdef"
    src = Vocab.build(list(letters))
    words = ["".join(rng.choice(list(letters), int(rng.integers(2, 6)))) for _ in range(400)]
    pairs = [(np.asarray(src.encode(w)), np.asarray(src.encode(w[::-1], eos=True))) for w in words]
    data = DataParts(pairs[:300], pairs[300:350], pairs[350:], {"src_vocab": src, "tgt_vocab": src})
    exp = Seq2SeqExperiment(
        data=SequenceDataConfig(batch_size=32, level="char"),
        model=Seq2SeqSpec(embedding_dim=16, hidden_size=32),
        **_common(tmp_path, "s2s", 80),
    )
    result = fit(exp, data=data)
    out = tmp_path / "pred.csv"
    assert cli(["predict", "--run", str(result.run_dir), "--out", str(out)]) == 0
    rows = _rows(out)
    assert [r["target"] for r in rows] == [w[::-1] for w in words[350:]]  # the strings
    exact = np.mean([r["prediction"] == r["target"] for r in rows])
    assert exact == pytest.approx(result.metrics["test_exact_match"])


def test_a_sequences_lm_run_is_diagnosed_and_generate_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rnnkit.train.config import TextDataConfig
    from rnnkit.train.specs import LanguageModelExperiment, LanguageModelSpec

    rng = np.random.default_rng(2)
    seqs = [np.array([2, *range(s, s + n), 3]) for s, n in rng.integers(4, 9, (120, 2))]
    data = DataParts(seqs[:80], seqs[80:100], seqs[100:], {"vocab_size": 20})  # ids, no text
    exp = LanguageModelExperiment(
        data=TextDataConfig(mode="sequences", batch_size=8),
        model=LanguageModelSpec(embedding_dim=8, hidden_size=16),
        sample_chars=0,
        **_common(tmp_path, "lm", 10),
    )
    run = fit(exp, data=data).run_dir
    assert cli(["diagnose", "--run", str(run)]) == 0  # bare sequences read back
    assert (run / "diagnose" / "verdict.txt").is_file()
    capsys.readouterr()
    assert cli(["generate", "--run", str(run)]) == 2
    assert "over an application's own token ids (no vocab.json)" in capsys.readouterr().err
    assert cli(["predict", "--run", str(run), "--text", "abc"]) == 2  # no text vocabulary
    assert "without --text, predict ranks the next token" in capsys.readouterr().err
    out = tmp_path / "next.csv"
    assert cli(["predict", "--run", str(run), "--out", str(out), "--top_k", "4"]) == 0
    rows = _rows(out)
    assert [int(r["target"]) for r in rows] == [int(s[-1]) for s in seqs[100:]]
    for r in rows:
        top = [int(i) for i in r["prediction"].split()]
        assert len(set(top)) == 4 and all(0 <= i < 20 for i in top)
        assert 1 <= int(r["rank"]) <= 20 and (int(r["rank"]) <= 4) == (int(r["target"]) in top)
