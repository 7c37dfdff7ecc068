"""`rnnkit fit`, `rnnkit test` and `rnnkit predict` end to end on small files in the user's own
formats: every task family trains from its file, reports baselines with a verdict, and predicts a
new raw file in the user's ids and label names."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.train.predict import predict_run

FAST = [
    "--trainer.max_steps", "6", "--trainer.val_check_interval", "3",
    "--trainer.num_threads", "1", "--trainer.enable_progress_bar", "false",
    "--run.plot", "false", "--model.hidden_size", "8",
]  # fmt: skip


def _run(
    tmp_path: Path, task: str, data: list[str], capsys: Any, extra: tuple[str, ...] = ()
) -> Path:
    args = ["fit", "--task", task, *data, *FAST, *extra]
    assert main([*args, "--run.root", str(tmp_path), "--run.name", "run"]) == 0
    out = capsys.readouterr().out
    assert "verdict: model " in out
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"]["line"] in out and summary["baselines"]
    assert summary["data"]["split"]["test"]
    assert main(["test", "--run", str(run)]) == 0
    tested = json.loads(capsys.readouterr().out.split("\nverdict: ")[0])
    assert tested["verdict"]["metric"] in summary["verdict"]["metric"]
    # The test command scores the same split with the same weights: the same verdict numbers.
    assert tested["verdict"]["model"] == pytest.approx(summary["verdict"]["model"], rel=1e-5)
    assert tested["baselines"] == summary["baselines"]
    return run


def _predict(run: Path, new: Path, capsys: Any) -> list[dict[str, str]]:
    out = run.parent / "preds.csv"
    assert main(["predict", "--run", str(run), "--input", str(new), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"] == str(out)
    with out.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _series(rng: np.random.Generator, label: int, n: int = 12) -> np.ndarray:
    t = np.arange(n)
    return np.sin(t * (0.3 + 0.5 * label)) + 0.1 * rng.standard_normal(n)


def test_ts_file_classification(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(0)
    head = "@problemName toy\n@univariate true\n@equalLength true\n@seriesLength 12\n"
    head += "@classLabel true slow fast\n@data\n"
    for name, n in (("train.ts", 40), ("test.ts", 12)):
        rows = []
        for i in range(n):
            label = i % 2
            values = ",".join(f"{v:.4f}" for v in _series(rng, label))
            rows.append(f"{values}:{['slow', 'fast'][label]}")
        (tmp_path / name).write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    run = _run(
        tmp_path,
        "classification",
        ["--data.path", str(tmp_path / "train.ts"), "--data.test_path", str(tmp_path / "test.ts")],
        capsys,
    )
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["baselines"]) == {"majority", "1nn_euclidean", "1nn_dtw"}
    assert summary["data"]["split"]["test"].startswith(str(tmp_path / "test.ts"))
    rows = _predict(run, tmp_path / "test.ts", capsys)
    assert [r["id"] for r in rows] == [str(i) for i in range(12)]
    assert {r["prediction"] for r in rows} <= {"slow", "fast"}
    assert [r["label"] for r in rows] == ["slow", "fast"] * 6


def test_wide_and_long_csv_classification(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(1)
    wide = ["unique_id,label," + ",".join(f"t{k}" for k in range(12))]
    long = ["unique_id,ds,x,label"]
    for i in range(40):
        label = ["down", "up"][i % 2]
        values = _series(rng, i % 2)
        wide.append(f"s{i},{label}," + ",".join(f"{v:.4f}" for v in values))
        long += [f"s{i},{k},{v:.4f},{label}" for k, v in enumerate(values)]
    (tmp_path / "wide.csv").write_text("\n".join(wide) + "\n", encoding="utf-8")
    (tmp_path / "long.csv").write_text("\n".join(long) + "\n", encoding="utf-8")
    new = [wide[0].replace("label,", "")] + [
        ",".join(c for j, c in enumerate(r.split(",")) if j != 1) for r in wide[1:4]
    ]
    (tmp_path / "new.csv").write_text("\n".join(new) + "\n", encoding="utf-8")
    run = _run(tmp_path, "classification", ["--data.path", str(tmp_path / "wide.csv")], capsys)
    rows = _predict(run, tmp_path / "new.csv", capsys)
    assert [r["id"] for r in rows] == ["s0", "s1", "s2"]
    assert {r["prediction"] for r in rows} <= {"down", "up"} and "label" not in rows[0]
    assert float(rows[0]["p_down"]) + float(rows[0]["p_up"]) == pytest.approx(1, abs=1e-3)
    long_run = tmp_path / "long"
    long_run.mkdir()
    run = _run(long_run, "classification", ["--data.path", str(tmp_path / "long.csv")], capsys)
    rows = _predict(run, tmp_path / "long.csv", capsys)
    assert [r["id"] for r in rows] == [f"s{i}" for i in range(40)]
    assert [r["label"] for r in rows][:2] == ["down", "up"]


def test_text_csv_classification(tmp_path: Path, capsys: Any) -> None:
    good, bad = ["great fun", "lovely film", "a joy"], ["dull mess", "boring plot", "a chore"]
    rows = ["review,sentiment"]
    for i in range(60):
        rows.append(f'"{(good if i % 2 else bad)[i % 3]} {i}",{"pos" if i % 2 else "neg"}')
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "new.jsonl").write_text(
        '{"review": "lovely fun"}\n{"review": "boring chore"}\n', encoding="utf-8"
    )
    data = ["--data.path", str(tmp_path / "reviews.csv")]
    data += ["--data.text_col", "review", "--data.label_col", "sentiment"]
    run = _run(tmp_path, "classification", data, capsys)
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["baselines"]) == {"majority", "tfidf_logreg"}
    assert summary["baselines"]["tfidf_logreg"]["accuracy"] == 1.0  # the words give it away
    rows_out = _predict(run, tmp_path / "new.jsonl", capsys)
    assert [r["id"] for r in rows_out] == ["1", "2"]  # no id column: the file rows
    assert {r["prediction"] for r in rows_out} <= {"pos", "neg"}
    off = ["--evaluate.baselines", "false", "--run.root", str(tmp_path), "--run.name", "off"]
    assert main(["fit", "--task", "classification", *data, *FAST, *off]) == 0
    summary = json.loads((tmp_path / "off" / "summary.json").read_text())
    assert "test_accuracy" in summary["metrics"] and "verdict" not in summary


def test_long_csv_forecasting(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(2)
    start = np.datetime64("2021-01-01")
    lines = ["unique_id,ds,y,dow"]
    for j, sid in enumerate(["north", "south"]):
        for k in range(70):
            y = 10 + j + np.sin(2 * np.pi * k / 7) + 0.1 * rng.standard_normal()
            lines.append(f"{sid},{start + k},{y:.4f},{k % 7}")
    (tmp_path / "sales.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = ["--data.path", str(tmp_path / "sales.csv"), "--data.seq_len", "14"]
    data += ["--data.horizon", "7", "--data.val_size", "7", "--data.test_size", "14"]
    run = _run(tmp_path, "forecasting", data, capsys)
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["baselines"]) == {"naive", "seasonal_naive", "ets"}
    assert summary["baselines"]["seasonal_naive"]["mae"] < summary["baselines"]["naive"]["mae"]
    rows = _predict(run, tmp_path / "sales.csv", capsys)
    assert [r["unique_id"] for r in rows] == ["north"] * 7 + ["south"] * 7
    assert rows[0]["ds"] == "2021-03-12T00:00:00" and rows[6]["ds"] == "2021-03-18T00:00:00"
    assert 5 < float(rows[0]["y_hat"]) < 15  # back in the user's units
    back = tmp_path / "back"
    assert main(["backtest", *data, "--task", "forecasting", *FAST, "--origins", "2",
                 "--run.root", str(back), "--run.name", "bt"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    report = json.loads((back / "bt" / "backtest.json").read_text())
    assert [f["origin"] for f in report["folds"]] == ["2021-02-26 00:00:00", "2021-03-05 00:00:00"]
    assert report["verdict"]["line"] in out and set(report["mean"]["baselines"]) == {
        "naive", "seasonal_naive", "ets"
    }  # fmt: skip
    cov = tmp_path / "cov"
    cov.mkdir()
    run = _run(cov, "forecasting", [*data, "--data.future_covariates", "[dow]"], capsys)
    meta = json.loads((run / "artifact" / "model.json").read_text())
    assert meta["model_config"]["covariate_size"] == 1
    with pytest.raises(ValueError, match=r"future covariates \['dow'\]; give their values"):
        predict_run(run, input_path=str(tmp_path / "sales.csv"))
    ahead = ["unique_id,ds,dow"] + [
        f"{sid},{start + 70 + k},{(70 + k) % 7}" for sid in ("north", "south") for k in range(7)
    ]
    (cov / "future.csv").write_text("\n".join(ahead) + "\n", encoding="utf-8")
    out = cov / "preds.csv"
    args = ["--input", str(tmp_path / "sales.csv"), "--future", str(cov / "future.csv")]
    assert main(["predict", "--run", str(run), *args, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 14 and rows[7]["unique_id"] == "south"
    late = [ahead[0], ahead[1].replace(str(start + 70), str(start + 71))]
    (cov / "late.csv").write_text("\n".join(late) + "\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"late.csv row 2: the future of series 'north' must start"
    ):
        predict_run(run, input_path=str(tmp_path / "sales.csv"), future=str(cov / "late.csv"))


def test_conll_tagging(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(3)
    words = {"paris": "LOC", "rome": "LOC", "anna": "PER", "marc": "PER", "met": "O", "in": "O"}
    sentences = []
    for _ in range(40):
        tokens = rng.choice(list(words), size=4)
        sentences.append("\n".join(f"{t}\t{words[t]}" for t in tokens))
    (tmp_path / "ner.conll").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    (tmp_path / "new.conll").write_text("anna\nmet\nmarc\n\nrome\n", encoding="utf-8")
    run = _run(tmp_path, "tagging", ["--data.path", str(tmp_path / "ner.conll")], capsys)
    rows = _predict(run, tmp_path / "new.conll", capsys)
    assert [(r["sentence"], r["token"]) for r in rows] == [
        ("0", "anna"), ("0", "met"), ("0", "marc"), ("1", "rome")
    ]  # fmt: skip
    assert {r["prediction"] for r in rows} <= {"LOC", "PER", "O"}


def test_tsv_seq2seq(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(4)
    rows = ["source\ttarget"]
    for _ in range(80):
        word = "".join(rng.choice(list("abcde"), size=int(rng.integers(2, 5))))
        rows.append(f"{word}\t{word[::-1]}")
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "new.tsv").write_text("source\nabc\nded\n", encoding="utf-8")
    data = ["--data.path", str(tmp_path / "pairs.tsv"), "--data.level", "char"]
    run = _run(tmp_path, "seq2seq", [*data, "--model.embedding_dim", "8"], capsys)
    summary = json.loads((run / "summary.json").read_text())
    assert {"exact_match", "bleu", "chrf"} <= set(summary["baselines"]["most_frequent"])
    assert {"bleu", "chrf"} <= set(summary["test_extra"])
    rows_out = _predict(run, tmp_path / "new.tsv", capsys)
    assert [(r["id"], r["source"]) for r in rows_out] == [("2", "abc"), ("3", "ded")]
    assert all(set(r["prediction"]) <= set("abcde") for r in rows_out)


def test_backtest_of_a_registry_series_goes_through_evaluate_backtest(
    tmp_path: Path, capsys: Any
) -> None:
    args = ["backtest", "--task", "forecasting", "--data.source", "airline", "--data.seq_len", "24"]
    args += ["--data.horizon", "12", "--origins", "2", *FAST, "--run.root", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "origin at step 120: model mae" in out and "origin at step 132: model mae" in out
    assert main([*args, "--step", "6"]) == 2
    assert "--step applies to recipes with data.path" in capsys.readouterr().err
