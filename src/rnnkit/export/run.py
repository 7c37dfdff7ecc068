"""Export a finished run: its model, checked on its own test data, and the preprocessing beside it.

This module reads the run's data through the trainer's builders (``rnnkit.train``), so it imports
Lightning; the files it writes are then served without it (``rnnkit.Predictor.from_onnx``).
"""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.artifact import load_artifact
from rnnkit.export._graph import graph_specs, streaming_blocker
from rnnkit.export.onnx import (
    ATOL,
    RTOL,
    example_feeds,
    export_model,
    metadata,
    quantize_int8,
    write_metadata,
)
from rnnkit.export.runtime import OnnxRuntime, Runtime
from rnnkit.predictor import Predictor, Preprocessing

TestBatch = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, lengths, y


def test_batches(
    meta: dict[str, Any], *, rows: int = 256, batch: int = 32, lm_steps: int = 128
) -> list[TestBatch]:
    """Up to ``rows`` rows of the run's test split, as ``(x, lengths, y)`` batches (language
    model: contiguous windows of ``lm_steps`` tokens, ``y`` the next tokens)."""
    from rnnkit.train.experiment_io import experiment_from_dict
    from rnnkit.train.in_memory import stored_parts
    from rnnkit.train.trainer import IN_MEMORY, build

    if "experiment" not in meta:
        raise ValueError(f"{meta['_folder']}/model.json has no experiment: cannot read its data")
    experiment = experiment_from_dict(meta["experiment"])
    stored = None
    if meta.get("data") == IN_MEMORY:  # an application's samples: the test split it stored
        stored = stored_parts(meta)
        if stored is None:
            raise ValueError(
                f"{meta['_folder']} was trained on in-memory data and stored no test split "
                f"({meta.get('test_split_error', 'none given')}): nothing to check the export on"
            )
    data: Any = build(experiment, data=stored).datamodule
    if meta["task"] == "language_model" and hasattr(data, "corpus"):  # a stream
        ids = np.asarray(data.corpus.test, dtype=np.int64)
        n = min(rows, max(1, (len(ids) - 1) // lm_steps))
        if len(ids) < lm_steps + 1:
            raise ValueError(f"the test split has {len(ids)} tokens, fewer than {lm_steps + 1}")
        starts = np.arange(n) * lm_steps
        x = np.stack([ids[s : s + lm_steps] for s in starts])
        y = np.stack([ids[s + 1 : s + lm_steps + 1] for s in starts])
        lengths = np.full(n, lm_steps, dtype=np.int64)
        return [
            (x[i : i + batch], lengths[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)
        ]
    out: list[TestBatch] = []
    seen = 0
    for b in data.test_dataloader():
        out.append((b.x.numpy(), b.lengths.numpy().astype(np.int64), b.y.numpy()))
        seen += len(b)
        if seen >= rows:
            break
    return out


def score(predictor: Predictor, batches: list[TestBatch]) -> dict[str, float]:
    """The task's headline metric on ``batches`` with ``predictor``'s runtime (model units)."""
    rt, task = predictor.runtime, predictor.task
    hits = total = 0.0
    for x, lengths, y in batches:
        if task == "seq2seq":
            for row, target in zip(
                predictor._translate(x, lengths, max_len=y.shape[1]), y, strict=True
            ):
                want = [int(t) for t in target if t != predictor.prep.config["pad_id"]]
                want = (
                    want[: want.index(predictor.prep.config["eos_id"])]
                    if predictor.prep.config["eos_id"] in want
                    else want
                )
                hits += float(row["tokens"] == want)
                total += 1
            continue
        out = rt.run("main", {"x": x, "lengths": lengths, **predictor.zero_state(len(x))})
        if task == "language_model":
            logits = out["logits"].astype(np.float64)
            logp = logits - logits.max(-1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
            hits += -float(np.take_along_axis(logp, y[..., None], -1).sum())
            total += y.size
        elif task == "forecasting":
            hits += float(np.abs(out["mean"] - y).sum())
            total += y.size
        elif task == "tagging":
            real = np.arange(x.shape[1])[None] < lengths[:, None]
            pred = out["logits"].argmax(-1)
            hits += float((pred == y[:, : x.shape[1]])[real].sum())
            total += float(real.sum())
        elif predictor.prep.config.get("task") == "regression":
            hits += float(np.abs(out["logits"] - y.reshape(out["logits"].shape)).sum())
            total += y.size
        else:
            hits += float((out["logits"].argmax(-1) == y).sum())
            total += len(y)
    value = hits / max(total, 1.0)
    name = {
        "language_model": "bits_per_token",
        "forecasting": "mae_scaled",
        "seq2seq": "exact_match",
        "tagging": "token_accuracy",
    }.get(task, "mae" if predictor.prep.config.get("task") == "regression" else "accuracy")
    if task == "language_model":
        value /= math.log(2)
    return {name: value, "rows": float(sum(len(b[0]) for b in batches))}


def export_run(
    run_dir: str | os.PathLike[str],
    *,
    fmt: str = "onnx",
    out: str | os.PathLike[str] | None = None,
    quantize: str | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
    rows: int = 256,
) -> dict[str, Any]:
    """Export ``run_dir``'s model; returns what was written and checked (also in the JSON)."""
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"--format must be onnx or torchscript, got {fmt!r}")
    if quantize and fmt != "onnx":
        raise ValueError("--quantize int8 applies to --format onnx only")
    if quantize not in (None, "int8"):
        raise ValueError(f"--quantize must be int8 (or absent), got {quantize!r}")
    start = time.perf_counter()
    art = load_artifact(run_dir)
    model = art.model.float().eval()
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    path = Path(out) if out else Path(run_dir) / "export" / f"model{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    batches = test_batches(art.meta, rows=rows)
    x, lengths, _ = batches[0]
    x, lengths = x[:8], lengths[:8]  # parity on 8 real rows of the test split
    feeds = example_feeds(model, x, lengths)
    # Exported (traced) at 2 rows of at most 3 steps, checked at 8 rows of the full length: the
    # check itself shows the batch and time axes are free.
    short = min(3, x.shape[1])
    example = example_feeds(model, x[:2, :short], np.minimum(lengths[:2], short))
    streams = streaming_blocker(model) is None
    prep = Preprocessing.from_artifact(art, model)
    if fmt == "torchscript":
        from rnnkit.export.torchscript import export_torchscript

        files, parity = export_torchscript(
            model, path, example, feeds, streams=streams, atol=atol, rtol=rtol
        )
    else:
        files, parity = export_model(
            model, path, feeds, streams=streams, atol=atol, rtol=rtol, example=example
        )
    specs = graph_specs(model)
    info: dict[str, Any] = {
        "format_kind": fmt,
        "run": str(run_dir),
        "parity": {**parity, "inputs": f"{len(x)} rows of the test split, T={x.shape[1]}"},
        "versions": _versions(),
    }
    if quantize:
        qfiles = quantize_int8(files)
        fp32 = Predictor(OnnxRuntime(files, specs, threads=1), prep, source=str(path))
        int8 = Predictor(OnnxRuntime(qfiles, specs, threads=1), prep, source=str(path))
        base, quant = score(fp32, batches), score(int8, batches)
        info["quantization"] = {
            "kind": "dynamic int8 (onnxruntime.quantization.quantize_dynamic, QInt8 weights)",
            "files": {g: p.name for g, p in qfiles.items()},
            "test_split": {"fp32": base, "int8": quant},
            "bytes": {
                "fp32": sum(p.stat().st_size for p in files.values()),
                "int8": sum(p.stat().st_size for p in qfiles.values()),
            },
        }
        write_metadata(
            qfiles[_first(qfiles)].with_suffix(".json"),
            metadata(prep, qfiles, specs, **info, quantized=True),
        )
    meta_path = path.with_suffix(".json")
    write_metadata(meta_path, metadata(prep, files, specs, **info))
    return {
        "files": [str(p) for p in files.values()],
        "metadata": str(meta_path),
        "parity": parity,
        **({"quantization": info["quantization"]} if quantize else {}),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _first(files: dict[str, Path]) -> str:
    return "main" if "main" in files else "decoder"


def _versions() -> dict[str, str]:
    import onnxruntime

    return {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


__all__ = ["Runtime", "export_run", "score", "test_batches"]
