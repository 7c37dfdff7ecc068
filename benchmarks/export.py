"""Latency per streaming step and sequence throughput: eager torch vs TorchScript vs ONNX Runtime.

The model is the demo's character LSTM (E=64, H=256, V=107; weights as initialised: speed does not
depend on their values). Variants, all single-threaded and interleaved round by round in this one
process so that machine load hits them alike:

- ``eager``: the graph in torch (``TorchRuntime``; the fused LSTM kernel);
- ``torchscript``: the TorchScript export (``rnnkit export --format torchscript``: traced graph,
  scripted per-cell time loop, so it runs at any T; the fused LSTM kernel is not used);
- ``onnx_fp32`` / ``onnx_int8``: the exported graph (a ``Scan`` over the cell) in ONNX Runtime,
  and its dynamically int8-quantised copy.

Run: ``python benchmarks/export.py`` -> ``benchmarks/results/export.json`` and the README table
between the ``export-table`` markers.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.export.onnx import example_feeds, export_model, quantize_int8
from rnnkit.export.runtime import OnnxRuntime, TorchRuntime
from rnnkit.export.torchscript import ScriptRuntime, export_torchscript
from rnnkit.models import LanguageModel, LanguageModelConfig

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "export.json"
README = ROOT / "README.md"
ROUNDS, SEQ_T = 7, 128


def _timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = LanguageModel(LanguageModelConfig(vocab_size=107, embedding_dim=64, hidden_size=256))
    model.eval()
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    x = rng.integers(0, 107, (8, 16)).astype(np.int64)
    feeds = example_feeds(model, x, np.full(8, 16, dtype=np.int64))
    example = example_feeds(model, x[:2, :3], np.full(2, 3, dtype=np.int64))
    files, parity = export_model(model, tmp / "lm.onnx", feeds, streams=True, example=example)
    ts_files, _ = export_torchscript(
        model, tmp / "lm.pt", example, feeds, streams=True, atol=1e-4, rtol=1e-3
    )
    qfiles = quantize_int8(files)
    torch_rt = TorchRuntime(model)
    specs = torch_rt.specs
    runtimes = {
        "eager": torch_rt,
        "torchscript": ScriptRuntime(ts_files, specs),
        "onnx_fp32": OnnxRuntime(files, specs, threads=1),
        "onnx_int8": OnnxRuntime(qfiles, specs, threads=1),
    }
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[float]]] = {}
    cases = {}
    for B in (1, 64):
        for kind, T in (("step", 1), ("sequence", SEQ_T)):
            ids = rng.integers(0, 107, (B, T)).astype(np.int64)
            f = {"x": ids, "lengths": np.full(B, T, dtype=np.int64)}
            f.update({n: np.zeros((1, B, 256), np.float32) for n in ("h", "c")})
            cases[f"{kind}_B{B}"] = f
    for _ in range(ROUNDS):
        for name, f in cases.items():
            calls = 200 if name.startswith("step") else 5
            for variant, rt in runtimes.items():
                t = _timed(lambda rt=rt, f=f: rt.run("main", f), calls)
                results.setdefault(name, {}).setdefault(variant, []).append(t)
    load_after = os.getloadavg()
    table = {}
    for name, per in results.items():
        B = int(name.split("_B")[1])
        T = 1 if name.startswith("step") else SEQ_T
        table[name] = {
            v: {
                "median_ms": statistics.median(ts) * 1e3,
                "tokens_per_s": B * T / statistics.median(ts),
                "rounds_ms": [round(t * 1e3, 4) for t in ts],
            }
            for v, ts in per.items()
        }
    payload = {
        "question": "per-step latency and throughput of the exported LM vs eager torch",
        "model": "LanguageModel lstm E=64 H=256 V=107 (the demo's size)",
        "threads": 1,
        "rounds": ROUNDS,
        "sequence_T": SEQ_T,
        "parity": parity["max_abs_diff"],
        "results": table,
        "machine": {
            "note": "shared, busy machine (other jobs running); ratios are measured interleaved",
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "versions": {"torch": torch.__version__, "onnxruntime": _ort_version()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(payload, indent=2))
    _readme(payload)
    print(
        json.dumps(
            {k: {v: round(r["median_ms"], 3) for v, r in t.items()} for k, t in table.items()},
            indent=1,
        )
    )


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _readme(payload: dict) -> None:
    variants = ["eager", "torchscript", "onnx_fp32", "onnx_int8"]
    lines = [
        "| case | " + " | ".join(variants) + " |",
        "|---|" + "---:|" * len(variants),
    ]
    for name, per in payload["results"].items():
        kind, B = name.split("_B")
        unit = "ms/step" if kind == "step" else f"ms per {payload['sequence_T']} steps"
        cells = [f"{per[v]['median_ms']:.3f}" for v in variants]
        lines.append(f"| {kind}, B={B} ({unit}) | " + " | ".join(cells) + " |")
    load = payload["machine"]
    lines.append("")
    lines.append(
        f"Median of {payload['rounds']} interleaved rounds, 1 thread, loadavg "
        f"{load['loadavg_before'][0]:.1f} -> {load['loadavg_after'][0]:.1f} on a shared, busy "
        "machine (`python benchmarks/export.py`, `benchmarks/results/export.json`)."
    )
    _replace(README, "export-table", "\n".join(lines))


def _replace(path: Path, marker: str, body: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text:
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
