"""ONNX export with explicit state: every family and every cell, at another T, with lengths, step
by step; the command refuses a model that disagrees; the predictor needs no Lightning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from rnnkit import LSTMState, Recurrent
from rnnkit.export._graph import GraphSpec, StatefulRecurrent
from rnnkit.models import (
    Forecaster,
    ForecasterConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
)
from rnnkit.predictor import Predictor

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the export extra)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (the export extra)")

from rnnkit.export.onnx import check_parity, export_graph, export_model  # noqa: E402
from rnnkit.export.run import export_run  # noqa: E402
from rnnkit.export.runtime import OnnxRuntime, TorchRuntime  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

# Raw inputs of other lengths than the export's (8 rows of T = 6 or 128), per family.
RAW: dict[str, list[Any]] = {
    "language_model": ["To be, or not", "a"],
    "classification": [[1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1], [0]],
    "tagging": [[4, 9, 5, 12, 13, 7, 6, 11, 4, 5, 9, 12, 13], [7, 8]],
    "forecasting": [list(np.sin(0.3 * np.arange(24))), list(np.cos(0.2 * np.arange(24)))],
    "seq2seq": [[5, 6, 7, 8, 9, 10, 11], [4]],
}


def _close(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=2e-5)
    else:
        assert a == b


@pytest.fixture(scope="module")
def exported(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each family exported once (the classifier with its int8 copy): task -> (file, report)."""
    out = {}
    for task, run in runs.items():
        path = tmp_path_factory.mktemp(task) / "model.onnx"
        quantize = "int8" if task == "classification" else None
        out[task] = (path, export_run(run, out=path, quantize=quantize))
    return out


@pytest.mark.parametrize("task", list(RAW))
def test_family_exports_and_answers_like_eager(
    task: str, runs: dict[str, Path], exported: dict[str, Any]
):
    out, report = exported[task]
    assert report["parity"]["ok"], report["parity"]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["preprocessing"]["task"] == task and meta["parity"]["ok"]
    eager, onnx = Predictor.from_run(runs[task]), Predictor.from_onnx(out)
    # A batch of two different lengths, neither the export's T: lengths are honoured.
    for a, b in zip(onnx.predict(RAW[task]), eager.predict(RAW[task]), strict=True):
        _close(a, b)
    if task == "classification":
        q = meta["quantization"]
        assert set(q["test_split"]["int8"]) == {"accuracy", "rows"}
        assert Predictor.from_onnx(out.with_name("model.int8.onnx")).predict(RAW[task])
    if eager.prep.streaming is None:  # streams through ONNX Runtime == the offline model
        s_onnx, s_eager = onnx.open_stream(), eager.open_stream()
        for x in RAW[task][0][:6]:
            _close(s_onnx.step(x), s_eager.step(x))


def test_language_model_stream_equals_model_step(runs: dict[str, Path], exported: dict):
    predictor = Predictor.from_onnx(exported["language_model"][0])
    model = Predictor.from_run(runs["language_model"]).runtime.model
    stream, state = predictor.open_stream(), None
    vocab = predictor.prep.vocab
    assert vocab is not None
    for ch in "Hello":
        got = stream.step(ch)["probabilities"]
        with torch.no_grad():
            logits, state = model.step(torch.tensor([vocab.index(ch)]), state)
        np.testing.assert_allclose(got, torch.softmax(logits[0].double(), -1).numpy(), atol=1e-5)


class _Layer(nn.Module):
    """One ``Recurrent`` with explicit state, the way every family's graph holds it."""

    def __init__(self, layer: Recurrent) -> None:
        super().__init__()
        self.rnn = StatefulRecurrent(layer)
        names = self.rnn.names
        self.spec = GraphSpec(
            ["x", "lengths", *names],
            ["y", *[f"{n}_n" for n in names]],
            {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "y": {0: "B", 1: "T"}},
            names,
        )

    def forward(self, x: Tensor, lengths: Tensor, state: tuple[Tensor, ...]) -> tuple:
        y, final = self.rnn(x, lengths, state)
        return (y, *final)


CELLS: dict[str, dict[str, Any]] = {
    "lstm": {"cell": "lstm"},
    "gru": {"cell": "gru"},
    "elman": {"cell": "rnn"},
    "mingru": {"cell": "mingru"},
    "minlstm": {"cell": "minlstm"},
    "layer_norm_lstm": {"cell": "lstm", "layer_norm": True},
    "bidirectional_gru": {"cell": "gru", "bidirectional": True},
}


@pytest.mark.parametrize("case", list(CELLS))
def test_every_cell_exports_at_any_length(case: str, tmp_path: Path):
    torch.manual_seed(0)
    options = dict(CELLS[case])
    layer = Recurrent(options.pop("cell"), 3, 5, batch_first=True, **options).eval()
    graph = _Layer(layer)
    zeros = {n: z.numpy() for n, z in zip(graph.spec.state, graph.rnn.zeros(2), strict=True)}
    export_feeds = {"x": np.random.randn(2, 4, 3).astype(np.float32), "lengths": np.array([4, 3])}
    export_graph(graph, {**export_feeds, **zeros}, tmp_path / "layer.onnx")
    rt = OnnxRuntime({"main": tmp_path / "layer.onnx"}, {"main": graph.spec})
    ref = TorchRuntime(graph, graphs={"main": graph})  # the same graph, eager
    B, T = 3, 11  # not the export's (2, 4)
    rng = np.random.default_rng(1)
    state = {
        n: rng.standard_normal((z.shape[0], B, z.shape[2])).astype(np.float32)
        for n, z in zeros.items()
    }
    feeds = {
        "x": rng.standard_normal((B, T, 3)).astype(np.float32),
        "lengths": np.array([11, 1, 7]),
        **state,
    }
    report = check_parity(ref, rt, {"main": feeds}, streams=not layer.bidirectional)
    assert report["ok"], report
    # and eager is the layer itself: outputs and final state at each row's own length
    with torch.no_grad():
        s = [torch.from_numpy(state[n]) for n in graph.spec.state]
        want, final = layer(
            torch.from_numpy(feeds["x"]),
            LSTMState(*s) if len(s) == 2 else s[0],
            lengths=torch.from_numpy(feeds["lengths"]),
        )
    got = rt.run("main", feeds)
    np.testing.assert_allclose(got["y"], want.numpy(), atol=1e-5)
    want_h = final.h if isinstance(final, LSTMState) else final
    np.testing.assert_allclose(got["h_n"], want_h.numpy(), atol=1e-5)


@pytest.mark.parametrize("case", ["layer_norm_lstm", "mingru", "bidirectional_gru"])
def test_torchscript_loop_is_not_unrolled(case: str, tmp_path: Path):
    from rnnkit.export._graph import scripting
    from rnnkit.export.torchscript import ScriptRuntime

    torch.manual_seed(0)
    options = dict(CELLS[case])
    layer = Recurrent(options.pop("cell"), 3, 5, batch_first=True, **options).eval()
    graph = _Layer(layer)
    graph.rnn.script_loops()
    zeros = graph.rnn.zeros(2)
    with scripting(), torch.no_grad():
        traced = torch.jit.trace(graph, (torch.randn(2, 4, 3), torch.tensor([4, 2]), zeros))
    traced.save(str(tmp_path / "layer.pt"))
    rt = ScriptRuntime({"main": tmp_path / "layer.pt"}, {"main": graph.spec})
    x, lengths = torch.randn(3, 11, 3), torch.tensor([11, 1, 7])  # not the traced (2, 4)
    got = rt.run(
        "main",
        {
            "x": x.numpy(),
            "lengths": lengths.numpy(),
            **{n: z.numpy() for n, z in zip(graph.spec.state, graph.rnn.zeros(3), strict=True)},
        },
    )
    with torch.no_grad():
        want, _ = layer(x, lengths=lengths)
    np.testing.assert_allclose(got["y"], want.numpy(), atol=1e-5)


def test_torchscript_export_of_a_run(runs: dict[str, Path], tmp_path: Path):
    report = export_run(runs["forecasting"], fmt="torchscript", out=tmp_path / "f.pt")
    assert report["parity"]["ok"] and (tmp_path / "f.pt").is_file()
    with pytest.raises(ValueError, match="describes a torchscript export, not ONNX"):
        Predictor.from_onnx(tmp_path / "f.pt")


VARIANTS = {
    "autoregressive_gaussian_forecaster": lambda: Forecaster(
        ForecasterConfig(
            horizon=3,
            strategy="autoregressive",
            distribution="gaussian",
            cell="gru",
            hidden_size=8,
            num_layers=2,
        )
    ),
    "attention_pooled_bidirectional_classifier": lambda: SequenceClassifier(
        SequenceClassifierConfig(
            num_outputs=3,
            input_size=2,
            cell="minlstm",
            hidden_size=8,
            bidirectional=True,
            pooling="attention",
        )
    ),
    "mean_pooled_token_classifier": lambda: SequenceClassifier(
        SequenceClassifierConfig(num_outputs=2, vocab_size=9, cell="rnn", pooling="mean")
    ),
    "luong_lstm_seq2seq": lambda: Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=9,
            tgt_vocab_size=9,
            cell="lstm",
            hidden_size=8,
            embedding_dim=4,
            attention="general",
        )
    ),
    "plain_gru_seq2seq": lambda: Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=9,
            tgt_vocab_size=9,
            cell="mingru",
            hidden_size=8,
            embedding_dim=4,
            bidirectional_encoder=False,
            attention="none",
        )
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_model_variants_export_with_parity(variant: str, tmp_path: Path):
    from rnnkit.export._graph import streaming_blocker
    from rnnkit.export.onnx import example_feeds

    torch.manual_seed(0)
    model = VARIANTS[variant]().eval()
    rng = np.random.default_rng(0)
    cfg = model.config
    width = getattr(cfg, "input_size", None) or getattr(cfg, "target_size", None)
    tokens = not isinstance(model, Forecaster) and not getattr(cfg, "input_size", None)

    def batch(b: int, t: int) -> np.ndarray:
        if tokens:
            return rng.integers(3, 9, (b, t)).astype(np.int64)
        return rng.standard_normal((b, t, width)).astype(np.float32)

    example = example_feeds(model, batch(2, 3), np.array([3, 2]))
    feeds = example_feeds(model, batch(5, 9), np.array([9, 1, 4, 9, 6]))
    _, report = export_model(
        model,
        tmp_path / "m.onnx",
        feeds,
        streams=streaming_blocker(model) is None,
        example=example,
    )
    assert report["ok"], report


def test_export_refuses_a_model_that_disagrees(runs: dict[str, Path], tmp_path: Path):
    from rnnkit.artifact import load_artifact
    from rnnkit.export.onnx import example_feeds

    model = load_artifact(runs["classification"]).model
    feeds = example_feeds(model, np.random.rand(2, 5, 1).astype(np.float32), np.array([5, 3]))
    out = tmp_path / "never.onnx"
    with pytest.raises(ValueError, match="disagrees with eager torch beyond atol=-1"):
        export_model(model, out, feeds, streams=True, atol=-1.0, rtol=0.0)
    assert not out.exists() and not list(tmp_path.glob("*.onnx"))


def test_predictor_imports_no_lightning(runs: dict[str, Path], exported: dict):
    out = exported["tagging"][0]
    code = (
        "import sys; from rnnkit import Predictor; import rnnkit.serve\n"
        f"Predictor.from_run({str(runs['tagging'])!r}).predict([[4, 5]])\n"
        f"Predictor.from_onnx({str(out)!r}).predict([[4, 5]])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]\n"
        "print(bad); assert not bad\n"
    )
    env_path = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_bad_raw_input_names_the_field(runs: dict[str, Path]):
    predictor = Predictor.from_run(runs["forecasting"])
    with pytest.raises(ValueError, match=r"inputs\[1\]: values must be finite numbers"):
        predictor.predict([[0.1, 0.2], [0.3, float("nan")]])
    with pytest.raises(ValueError, match="this model cannot stream: a seq2seq model"):
        Predictor.from_run(runs["seq2seq"]).open_stream()


def test_cli_export_then_predict_raw_inputs(runs: dict[str, Path], capsys: Any):
    from rnnkit.cli import main

    run = runs["tagging"]
    assert main(["export", "--run", str(run)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parity"]["ok"] and (run / "export" / "model.json").is_file()
    assert main(["predict", "--run", str(run), "--onnx", "true", "--inputs", "[[4, 9, 5]]"]) == 0
    answer = json.loads(capsys.readouterr().out)[0]
    assert len(answer["tags"]) == 3 and len(answer["probabilities"]) == 3
    assert main(["predict", "--run", str(run), "--inputs", "[[4, 99]]"]) == 2
    assert "inputs[0]: token id 99 is outside [0, 14)" in capsys.readouterr().err
