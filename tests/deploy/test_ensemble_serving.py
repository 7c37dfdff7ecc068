"""A seed ensemble's run folder served: Predictor, streaming, ``rnnkit serve`` and export."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from rnnkit.predictor import Predictor
from rnnkit.train.config import (
    EarlyStoppingConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    SequenceDataConfig,
    TrainerConfig,
)
from rnnkit.train.predict import predict_run
from rnnkit.train.specs import ClassificationExperiment, ClassifierSpec
from rnnkit.train.tasks.classify import synthetic_parts

DATA = SequenceDataConfig(source="synthetic_parity", seq_len=6, num_samples=120, batch_size=32)


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnnkit.train.trainer import fit

    root = tmp_path_factory.mktemp("ens")
    experiment = ClassificationExperiment(
        seed=5,
        data=DATA,
        model=ClassifierSpec(hidden_size=8, cell="lstm", ensemble=3),
        optim=OptimConfig(name="adam", lr=1e-2, weight_decay=0.0),
        scheduler=SchedulerConfig(name="none"),
        trainer=TrainerConfig(
            max_steps=8, val_check_interval=4, enable_progress_bar=False, num_threads=1
        ),
        early_stopping=EarlyStoppingConfig(enabled=False),
        run=RunConfig(root=str(root), name="ens", plot=False, test=True),
    )
    return fit(experiment).run_dir


def _test_inputs() -> list[list[float]]:
    return [[float(v) for v in x[:, 0]] for x, _ in synthetic_parts(DATA).test]


def test_predictor_answers_as_rnnkit_predict_and_averages_its_members(
    ensemble: Path, tmp_path: Path
) -> None:
    predictor = Predictor.from_run(ensemble)
    assert predictor.metadata()["model_class"] == "EnsembleClassifier"
    inputs = _test_inputs()
    answers = predictor.predict(inputs)
    # rnnkit predict (on the test split, through load_run) writes the same classes.
    out = predict_run(ensemble, out=str(tmp_path / "pred.csv"))
    with open(out["predictions"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [a["label"] for a in answers] == [r["prediction"] for r in rows]
    # Its probabilities are the mean of its three members' own Predictors'.
    members = [Predictor.from_run(ensemble / "members" / f"seed{s}") for s in (5, 6, 7)]
    each = [[m["probabilities"]["1"] for m in p.predict(inputs[:10])] for p in members]
    got = [a["probabilities"]["1"] for a in answers[:10]]
    np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(each[0], each[1])


def test_a_stream_steps_every_member(ensemble: Path) -> None:
    predictor = Predictor.from_run(ensemble)
    assert predictor.prep.state == {"h": [3, 8], "c": [3, 8]}  # 3 members x 1 layer stacked
    seq = _test_inputs()[0]
    whole = predictor.predict([seq[:k] for k in range(1, len(seq) + 1)])
    stream = predictor.open_stream()
    for k, value in enumerate(seq):
        step = stream.step(value)
        np.testing.assert_allclose(
            step["probabilities"]["1"], whole[k]["probabilities"]["1"], rtol=1e-5, atol=1e-6
        )
        assert step["label"] == whole[k]["label"]


def test_rnnkit_serve_serves_an_ensemble_run(ensemble: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (the serve extra)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = str(Path(__file__).resolve().parents[2] / "src")
    command = ["serve", "--run", str(ensemble), "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "rnnkit.cli", *command],
        env={"PYTHONPATH": src, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1].decode()[-2000:]
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        inputs = _test_inputs()[:4]
        answers = httpx.post(f"{base}/predict", json={"inputs": inputs}).json()
        assert answers["outputs"] == Predictor.from_run(ensemble).predict(inputs)
        assert httpx.get(f"{base}/metadata").json()["model_class"] == "EnsembleClassifier"
        # A session steps every member: after each step, the averaged prefix answer.
        sid = httpx.post(f"{base}/sessions").json()["id"]
        seq = inputs[0]
        steps = httpx.post(f"{base}/sessions/{sid}/step", json={"inputs": seq}).json()["outputs"]
        whole = Predictor.from_run(ensemble).predict([seq[: k + 1] for k in range(len(seq))])
        for got, want in zip(steps, whole, strict=True):
            assert got["label"] == want["label"]
            assert got["probabilities"]["1"] == pytest.approx(want["probabilities"]["1"], abs=1e-5)
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_is_one_checked_graph_of_the_averaged_members(ensemble: Path, fmt: str) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the export extra)")
    from rnnkit.export.run import export_run

    report = export_run(ensemble, fmt=fmt, out=ensemble / "export" / f"model.{fmt}")
    assert report["parity"]["ok"]
    assert set(report["parity"]["max_abs_diff"]) == {"sequence", "step"}  # and stepwise
    if fmt == "onnx":
        inputs = _test_inputs()[:8]
        onnx = Predictor.from_onnx(report["files"][0]).predict(inputs)
        eager = Predictor.from_run(ensemble).predict(inputs)
        assert [a["label"] for a in onnx] == [a["label"] for a in eager]
        for a, b in zip(onnx, eager, strict=True):
            assert a["probabilities"]["1"] == pytest.approx(b["probabilities"]["1"], abs=1e-4)
        meta = json.loads(Path(report["metadata"]).read_text())
        assert meta["preprocessing"]["state"] == {"h": [3, 8], "c": [3, 8]}


def test_members_that_encode_inputs_differently_are_refused(ensemble: Path, tmp_path: Path) -> None:
    from rnnkit.artifact import ensemble_digest
    from rnnkit.integrity import sha256_file

    copy = tmp_path / "ens"
    shutil.copytree(ensemble, copy, ignore=shutil.ignore_patterns("checkpoints", "export"))
    model_json = copy / "members" / "seed6" / "artifact" / "model.json"
    meta = json.loads(model_json.read_text())
    meta.pop("meta_sha256")  # as an artifact written before digests: still readable alone
    meta["classes"] = ["odd", "even"]
    model_json.write_text(json.dumps(meta))
    body = json.loads((copy / "ensemble.json").read_text())
    body["members"][1]["model_json_sha256"] = sha256_file(model_json)
    body["meta_sha256"] = ensemble_digest(body)
    (copy / "ensemble.json").write_text(json.dumps(body))
    Predictor.from_run(copy / "members" / "seed6")  # one member alone loads
    with pytest.raises(ValueError, match=r"seed6: its classes, vocabulary or scalers differ"):
        Predictor.from_run(copy)
