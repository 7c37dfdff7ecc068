"""``rnnkit export``: a run's model as ONNX graphs with explicit state, checked before written.

Steps: build the graphs (``_graph``), export each with the dynamo exporter (dynamic B, T, S; the
time loop an ONNX ``Scan``), load them in ONNX Runtime, and compare with eager torch on real inputs
from the run's own test split — the whole sequence, and step by step (``T = 1``, the state fed
back) for models that stream. A model that disagrees beyond ``atol + rtol * |eager|`` is not
written. ``quantize="int8"`` adds a dynamically quantised copy (weights int8, activations
quantised at run time by ONNX Runtime) and reports what it costs on the test split.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.export._graph import EXPORT_FORMAT, GraphSpec, graph_specs, graphs_for
from rnnkit.export.runtime import Arrays, OnnxRuntime, Runtime, TorchRuntime

ATOL, RTOL = 1e-4, 1e-3  # float32 eager vs ONNX Runtime: kernels differ in summation order


def graph_files(out: Path, graphs: dict[str, Any]) -> dict[str, Path]:
    """``model.onnx`` for the main graph; seq2seq: ``model.onnx`` (decoder step) and
    ``model.encoder.onnx``."""
    return {
        g: out if g in ("main", "decoder") else out.with_name(f"{out.stem}.{g}{out.suffix}")
        for g in graphs
    }


def example_feeds(model: torch.nn.Module, x: np.ndarray, lengths: np.ndarray) -> dict[str, Arrays]:
    """Inputs for every graph of ``model`` from a batch ``x``/``lengths`` (zero state; the
    seq2seq decoder reads the encoder's outputs and a BOS token)."""
    rt = TorchRuntime(model)
    out: dict[str, Arrays] = {}
    if "main" in rt.specs:
        spec = rt.specs["main"]
        zeros = _zero_state(rt, "main", len(x))
        out["main"] = {"x": x, "lengths": lengths, **{n: zeros[n] for n in spec.state}}
        return out
    out["encoder"] = {"x": x, "lengths": lengths}
    enc = rt.run("encoder", out["encoder"])
    bos = int(getattr(model, "config").bos_id)  # noqa: B009 (a Seq2Seq's config)
    dec = rt.specs["decoder"]
    out["decoder"] = {
        "token": np.full(len(x), bos, dtype=np.int64),
        **{n: enc[n] for n in dec.inputs if n != "token"},
    }
    return out


def _zero_state(rt: TorchRuntime, graph: str, batch: int) -> Arrays:
    zeros = rt.graphs[graph].zeros(batch)
    return {n: z.numpy() for n, z in zip(rt.specs[graph].state, zeros, strict=True)}


def export_graph(graph: torch.nn.Module, feeds: Arrays, path: Path) -> None:
    """Export one graph to ``path`` with the dynamo exporter, its axes dynamic as its spec says."""
    spec: GraphSpec = graph.spec  # type: ignore[assignment]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
    dims: dict[str, Any] = {}

    def axes(name: str) -> dict[int, Any]:
        return {
            a: dims.setdefault(label, torch.export.Dim(label, min=1))
            for a, label in spec.dynamic.get(name, {}).items()
        }

    shapes = {n: axes(n) for n in spec.inputs}
    dynamic = spec.arguments(shapes)  # type: ignore[arg-type]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            spec.arguments(tensors),
            dynamic_shapes=dynamic,
            input_names=spec.inputs,
            output_names=spec.outputs,
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    program.save(str(path))


def _close(a: np.ndarray, b: np.ndarray, *, atol: float, rtol: float) -> tuple[float, bool]:
    if a.shape != b.shape:
        return float("inf"), False
    if a.dtype == bool or not np.issubdtype(a.dtype, np.floating):
        return float((a != b).sum()), bool((a == b).all())
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(diff.max(initial=0.0)), bool((diff <= atol + rtol * np.abs(b)).all())


def check_parity(
    ref: Runtime,
    got: Runtime,
    feeds: dict[str, Arrays],
    *,
    streams: bool,
    atol: float = ATOL,
    rtol: float = RTOL,
    decode_steps: int = 8,
) -> dict[str, Any]:
    """Compare ``got`` with ``ref`` on ``feeds``: every output of the whole sequence, and (when
    ``streams``) every output and state at every step of a step-by-step run with each runtime's own
    state fed back. Seq2seq: the encoder, then ``decode_steps`` decoder steps on ``ref``'s argmax.

    Returns ``{"ok", "max_abs_diff": {check: {output: diff}}, "failures": [...]}``.
    """
    report: dict[str, dict[str, float]] = {}
    failures: list[str] = []

    def compare(check: str, a: Arrays, b: Arrays) -> None:
        row = report.setdefault(check, {})
        for name, want in b.items():
            diff, ok = _close(a[name], want, atol=atol, rtol=rtol)
            row[name] = max(row.get(name, 0.0), diff)
            if not ok:
                failures.append(f"{check}: {name} differs by {diff:.3g}")

    if "main" in feeds:
        main = feeds["main"]
        compare("sequence", got.run("main", main), ref.run("main", main))
        if streams:
            spec = ref.specs["main"]
            s_ref = {n: main[n] for n in spec.state}
            s_got = dict(s_ref)
            x = main["x"]
            ones = np.ones(len(x), dtype=np.int64)
            for t in range(x.shape[1]):
                step = {"x": np.ascontiguousarray(x[:, t : t + 1]), "lengths": ones}
                o_ref = ref.run("main", {**step, **s_ref})
                o_got = got.run("main", {**step, **s_got})
                compare("step", o_got, o_ref)
                s_ref = {n: o_ref[f"{n}_n"] for n in spec.state}
                s_got = {n: o_got[f"{n}_n"] for n in spec.state}
    else:
        compare(
            "encoder", got.run("encoder", feeds["encoder"]), ref.run("encoder", feeds["encoder"])
        )
        spec = ref.specs["decoder"]
        d_ref, d_got = dict(feeds["decoder"]), dict(feeds["decoder"])
        for _ in range(decode_steps):
            o_ref, o_got = ref.run("decoder", d_ref), got.run("decoder", d_got)
            compare("decoder step", o_got, o_ref)
            token = o_ref["logits"].argmax(-1).astype(np.int64)
            for d, o in ((d_ref, o_ref), (d_got, o_got)):
                d["token"] = token
                d["feed"] = o["feed_n"]
                for n in spec.state:
                    d[n] = o[f"{n}_n"]
    return {
        "ok": not failures,
        "atol": atol,
        "rtol": rtol,
        "max_abs_diff": report,
        "failures": failures[:5],
    }


def export_model(
    model: torch.nn.Module,
    out: Path,
    feeds: dict[str, Arrays],
    *,
    streams: bool,
    atol: float = ATOL,
    rtol: float = RTOL,
    example: dict[str, Arrays] | None = None,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Export every graph of ``model`` (at the shapes of ``example``, default ``feeds``) into a
    temporary folder, check parity on ``feeds``, and move the files to ``out`` only if it holds;
    ``ValueError`` (nothing written) if it does not."""
    graphs = graphs_for(model.eval())
    final = graph_files(out, graphs)

    def write(staged: dict[str, Path]) -> Runtime:
        for name, graph in graphs.items():
            export_graph(graph, (example or feeds)[name], staged[name])
        return OnnxRuntime(staged, graph_specs(model), threads=1)

    parity = write_checked(
        model, out, final, write, "ONNX Runtime", feeds, streams=streams, atol=atol, rtol=rtol
    )
    return final, parity


def write_checked(
    model: torch.nn.Module,
    out: Path,
    final: dict[str, Path],
    write: Any,
    label: str,
    feeds: dict[str, Arrays],
    *,
    streams: bool,
    atol: float,
    rtol: float,
) -> dict[str, Any]:
    """Stage the graph files in a temporary folder beside ``out`` (``write(staged)`` writes them
    and returns the runtime that reads them), check parity against eager torch on ``feeds``, and
    move them to ``final`` only if it holds; ``ValueError`` (nothing written) if it does not."""
    tmp = Path(tempfile.mkdtemp(prefix=".rnnkit-export-", dir=out.parent))
    try:
        staged = {g: tmp / p.name for g, p in final.items()}
        runtime = write(staged)
        parity = check_parity(
            TorchRuntime(model), runtime, feeds, streams=streams, atol=atol, rtol=rtol
        )
        if not parity["ok"]:
            raise ValueError(
                f"{label} disagrees with eager torch beyond atol={atol}, rtol={rtol} "
                f"({'; '.join(parity['failures'])}); nothing was written to {out}"
            )
        for g, p in staged.items():
            os.replace(p, final[g])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return parity


def quantize_int8(files: dict[str, Path]) -> dict[str, Path]:
    """Dynamically quantised copies (``*.int8.onnx``): int8 weights of every MatMul/Gemm."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = {}
    for g, path in files.items():
        q = path.with_name(f"{path.stem}.int8{path.suffix}")
        quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
        out[g] = q
    return out


def write_metadata(path: Path, payload: dict[str, Any]) -> None:
    """The JSON beside the model (atomic write)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def metadata(
    prep: Any, files: dict[str, Path], specs: dict[str, GraphSpec], **extra: Any
) -> dict[str, Any]:
    """The export's JSON: graphs with their input/output names, preprocessing, checks."""
    return {
        "format": EXPORT_FORMAT,
        "graphs": {
            g: {
                "file": files[g].name,
                "inputs": specs[g].inputs,
                "outputs": specs[g].outputs,
                "state": specs[g].state,
                "dynamic_axes": specs[g].dynamic,
            }
            for g in files
        },
        "preprocessing": asdict(prep),
        **extra,
    }
