"""Speed benchmark: rnnkit's ``Recurrent`` against ``torch.nn``, same process, same data.

Question: how fast is each cell (and each LSTM/GRU variant) through its dispatched path, forward
and forward+backward, relative to torch's own module? And how long does one streaming step take
against ``nn.LSTMCell``/``GRUCell``/``RNNCell``?

How the figures are made trustworthy on a shared machine:
- the two sides of a case run interleaved in one loop (ours, ref, then ref, ours, ...), and the
  figure is the **median of the paired ratios** ``t_ref / t_ours`` with their spread (min, p25,
  p75, max), so a neighbour's burst slows both halves of a pair alike;
- a **GEMM ceiling** (the best GFLOP/s of a large float32 matmul at the same thread count, sampled
  before every record, the run keeping the best) is measured in the same run, every sequence
  record carries the GFLOP/s of both sides from a FLOP model of the cell, and a record where
  either side is above the ceiling is marked invalid;
- the 1-minute load average is recorded per record, with a warning when it is above 0.5;
- every case runs at 1 and at 2 threads (``--threads 1,2``).

Ratios are oriented so that higher is better everywhere: ``ratio = t_ref / t_ours`` (throughput
ours / reference), ``ratio = ref latency / our latency`` for steps, ``mem_ratio`` = reference /
ours peak memory.

Writes a JSON list of records to ``benchmarks/results/speed-<device>.json`` (atomically);
``benchmarks/report.py`` turns it into the README table.

    .venv/bin/python benchmarks/speed.py                 # full run, a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/speed.py --quick --out /tmp/speed.json   # smoke test, seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile

from rnnkit import Recurrent

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Case:
    """One sequence shape: batch B, steps T, input I, hidden H, layers L."""

    tag: str
    B: int
    T: int
    I: int  # noqa: E741
    H: int
    L: int
    repeats: int  # timed repeats per side; fewer on the big cases keeps the run under 10 min

    def name(self, cell: str) -> str:
        return f"{cell}-B{self.B}-T{self.T}-I{self.I}-H{self.H}-L{self.L}"


CASES = [
    Case("small", B=32, T=128, I=64, H=128, L=1, repeats=7),
    Case("medium", B=64, T=256, I=256, H=256, L=1, repeats=5),
    Case("long", B=16, T=2048, I=128, H=128, L=1, repeats=5),
]
QUICK_CASES = [Case("quick", B=4, T=16, I=8, H=16, L=1, repeats=2)]
STEP_B, STEP_I, STEP_H = 1, 256, 256


@dataclass(frozen=True)
class Config:
    """One layer under test and the torch.nn module it is measured against."""

    cell: str
    variant: str
    options: tuple[tuple[str, Any], ...]
    reference: str  # "LSTM" | "GRU" | "RNN": the torch.nn class


CONFIGS = [
    Config("rnn", "plain", (), "RNN"),
    Config("lstm", "plain", (), "LSTM"),
    Config("gru", "plain", (), "GRU"),
    Config("lstm", "layernorm", (("layer_norm", True),), "LSTM"),
    Config("lstm", "recurrent_dropout", (("recurrent_dropout", 0.25),), "LSTM"),
    Config(
        "lstm",
        "recurrent_dropout_shared",
        (("recurrent_dropout", 0.25), ("recurrent_dropout_shared", True)),
        "LSTM",
    ),
    Config("lstm", "zoneout", (("zoneout", 0.1),), "LSTM"),
    Config("gru", "layernorm", (("layer_norm", True),), "GRU"),
    Config("gru", "recurrent_dropout", (("recurrent_dropout", 0.25),), "GRU"),
    Config("gru", "zoneout", (("zoneout", 0.1),), "GRU"),
    Config("mingru", "plain", (), "GRU"),
    Config("minlstm", "plain", (), "GRU"),
    Config("minlstm", "plain", (), "LSTM"),
]
VARIANTS = ("layernorm", "recurrent_dropout", "zoneout")
STEP_REFERENCE = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell", "mingru": "GRUCell"}
STEP_REFERENCE["minlstm"] = "LSTMCell"


def target(cell: str, variant: str, mode: str, case: Case | None, reference: str) -> float | None:
    """The issue's target ratio for a record (fwd+bwd where it names a mode), None where the
    issue sets none."""
    if mode == "step":
        return 1.0 if cell == "lstm" and variant == "plain" else None
    if variant == "plain" and cell in ("rnn", "lstm", "gru"):
        return 1.0
    if mode != "fwdbwd" or case is None:
        return None
    if cell in ("lstm", "gru") and variant in VARIANTS:
        if (case.B, case.T, case.H) == (64, 256, 256):
            return 0.8
        if (case.B, case.T, case.H) == (32, 128, 128):
            return 0.6
        return None
    if cell == "mingru" and case.T >= 2048 and reference.endswith("GRU"):
        return 4.0
    return None


def flops(cell: str, case: Case, mode: str) -> float:
    """Multiply-adds x 2 of the cell's matrix products over the whole sequence: the input and
    recurrent products per layer, ``2 G H (I_l + H)`` per token (minGRU/minLSTM: ``2 G H I_l``,
    no recurrent product); the backward counted as twice the forward (two products per one)."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4, "mingru": 2, "minlstm": 3}[cell]
    recurrent = cell not in ("mingru", "minlstm")
    total, width = 0.0, case.I
    for _ in range(case.L):
        total += 2.0 * gates * case.H * (width + (case.H if recurrent else 0))
        width = case.H
    return total * case.B * case.T * (3.0 if mode == "fwdbwd" else 1.0)


# --- measurement --------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def paired_ratios(
    ours: Callable[[], object],
    ref: Callable[[], object],
    device: torch.device,
    *,
    warmup: int,
    repeats: int,
) -> tuple[list[float], list[float]]:
    """Seconds of each side per repeat, the two timed back to back in alternating order (ours
    first on even repeats, the reference first on odd ones) after ``warmup`` calls of each."""
    for _ in range(warmup):
        ours()
        ref()
    t_ours, t_ref = [], []
    for i in range(repeats):
        if i % 2 == 0:
            t_ours.append(timed(ours, device))
            t_ref.append(timed(ref, device))
        else:
            t_ref.append(timed(ref, device))
            t_ours.append(timed(ours, device))
    return t_ours, t_ref


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of a list (the spread of the paired ratios)."""
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {
        "median": statistics.median(values),
        "min": min(values),
        "p25": q[0],
        "p75": q[2],
        "max": max(values),
    }


def gemm_ceiling(device: torch.device, *, size: int = 1024, repeats: int = 5) -> float:
    """Best GFLOP/s of a ``size``-cubed float32 matmul at the current thread count: no record of
    this run can honestly go faster."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = min(timed(lambda: a @ b, device) for _ in range(repeats + 1))
    return 2.0 * size**3 / best / 1e9


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak bytes allocated above the starting level while ``fn`` runs, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the profiler's allocator events
    (``profile_memory=True``): every tensor allocation and free by torch's CPU allocator, summed in
    time order; the peak of that running sum. It counts tensors torch allocates (activations saved
    for backward, gradients, workspaces made as tensors), not the Python heap or library-internal
    scratch that bypasses torch's allocator.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    assert prof.profiler is not None
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak / 2**20


PEAK_MEM_METHOD = {
    "cpu": "torch.profiler profile_memory: peak of the running sum of torch CPU allocator "
    "allocations/frees during one call, above the level before it (tensors only)",
    "cuda": "torch.cuda.max_memory_allocated during one call, above memory_allocated before it",
}


# --- the two sides -------------------------------------------------------------------------------


def make_pair(config: Config, case: Case, device: torch.device) -> tuple[Recurrent, nn.Module]:
    ours = Recurrent(config.cell, case.I, case.H, num_layers=case.L, **dict(config.options))
    ref_cls: type[nn.Module] = getattr(nn, config.reference)
    ref = ref_cls(case.I, case.H, num_layers=case.L)
    if config.cell == config.reference.lower():
        load_torch_weights(ours, ref)
    return ours.to(device), ref.to(device)


def load_torch_weights(ours: Recurrent, ref: nn.Module) -> None:
    """Copy torch.nn's ``weight_ih_l{k}[_reverse]`` & co. into the matching cells (layer and
    direction: `Recurrent` accepts torch-named state dicts). The variants' own parameters (layer
    norm) keep their initial values."""
    result = ours.load_state_dict(ref.state_dict(), strict=False)
    if result.unexpected_keys:
        raise ValueError(f"torch weights without a place in the layer: {result.unexpected_keys}")


def step_fn(module: nn.Module, x: Tensor, grad: Tensor | None) -> Callable[[], object]:
    """One forward (``grad`` None, under no_grad) or forward+backward of ``module`` on ``x``."""
    params = list(module.parameters())

    def fwd() -> object:
        with torch.no_grad():
            return module(x)

    def fwdbwd() -> object:
        for p in params:
            p.grad = None
        out, _ = module(x)
        out.backward(grad)
        return None

    return fwd if grad is None else fwdbwd


def bench_sequence(
    config: Config,
    case: Case,
    mode: str,
    device: torch.device,
    quick: bool,
    ceiling: float,
    with_memory: bool,
) -> dict[str, Any]:
    torch.manual_seed(0)
    ours, ref = make_pair(config, case, device)
    # Train mode in both modes, so dropout and zoneout variants do their work; nn.RNN/LSTM/GRU
    # with dropout=0 compute the same in either mode.
    ours.train()
    ref.train()
    x = torch.randn(case.T, case.B, case.I, device=device)  # (T, B, I)
    grad = torch.randn(case.T, case.B, case.H, device=device) if mode == "fwdbwd" else None
    f_ours, f_ref = step_fn(ours, x, grad), step_fn(ref, x, grad)
    warmup = 1 if quick or case.T * case.B * case.L > 40_000 else 2
    load_before = os.getloadavg()[0]
    t_ours, t_ref = paired_ratios(f_ours, f_ref, device, warmup=warmup, repeats=case.repeats)
    load = max(load_before, os.getloadavg()[0])
    ratios = spread([r / o for o, r in zip(t_ours, t_ref, strict=True)])
    path = ours.last_path
    tokens = case.B * case.T
    sec, ref_sec = statistics.median(t_ours), statistics.median(t_ref)
    work, ref_work = flops(config.cell, case, mode), flops(config.reference.lower(), case, mode)
    gflops, ref_gflops = work / min(t_ours) / 1e9, ref_work / min(t_ref) / 1e9
    if with_memory:
        mem_ours, mem_ref = peak_memory_mb(f_ours, device), peak_memory_mb(f_ref, device)
    rec = base_record(config.cell, config.variant, mode, case.name(config.cell), device)
    rec.update(
        path=path,
        shape={"B": case.B, "T": case.T, "I": case.I, "H": case.H, "L": case.L},
        options=dict(config.options),
        training=True,
        reference=f"torch.nn.{config.reference}",
        tokens_per_s=tokens / sec,
        reference_tokens_per_s=tokens / ref_sec,
        ratio=ratios["median"],
        ratio_spread=ratios,
        seconds=sec,
        reference_seconds=ref_sec,
        repeats=case.repeats,
        gflops=gflops,
        reference_gflops=ref_gflops,
        gemm_ceiling_gflops=ceiling,
        valid=gflops <= ceiling and ref_gflops <= ceiling,
        load_avg_1min=load,
        load_warning=load > LOAD_WARNING,
        peak_mem_mb=mem_ours if with_memory else None,
        reference_peak_mem_mb=mem_ref if with_memory else None,
        mem_ratio=mem_ref / mem_ours if with_memory and mem_ours > 0 else None,
    )
    if work != ref_work:
        # Equal GFLOP/s on both sides would give this ratio: the limit from FLOPs alone.
        rec["flop_limit_ratio"] = ref_work / work
    return with_target(rec, case, config.reference)


def bench_step(cell: str, device: torch.device, quick: bool) -> dict[str, Any]:
    """Streaming: ``layer.step`` one token at a time (eval, inference mode) against torch's cell
    module."""
    torch.manual_seed(0)
    B, I, H = STEP_B, STEP_I, STEP_H  # noqa: E741
    ours = Recurrent(cell, I, H).to(device).eval()
    ref_name = STEP_REFERENCE[cell]
    ref = getattr(nn, ref_name)(I, H).to(device).eval()
    n = 5 if quick else 500
    xs = torch.randn(n, B, I, device=device).unbind(0)
    lstm_state = ref_name == "LSTMCell"

    def run_ours() -> None:
        state = ours.init_state(B, device=device)
        with torch.inference_mode():
            for x_t in xs:
                _, state = ours.step(x_t, state)

    def run_ref() -> None:
        h = torch.zeros(B, H, device=device)
        state: Any = (h, h) if lstm_state else h
        with torch.inference_mode():
            for x_t in xs:
                state = ref(x_t, state)

    repeats = 2 if quick else 9
    load_before = os.getloadavg()[0]
    ts_ours, ts_ref = paired_ratios(run_ours, run_ref, device, warmup=1, repeats=repeats)
    load = max(load_before, os.getloadavg()[0])
    ratios = spread([r / o for o, r in zip(ts_ours, ts_ref, strict=True)])
    t_ours, t_ref = statistics.median(ts_ours), statistics.median(ts_ref)
    lat, ref_lat = t_ours / n * 1e6, t_ref / n * 1e6
    rec = base_record(cell, "plain", "step", f"{cell}-B{B}-T1-I{I}-H{H}-L1", device)
    rec.update(
        path=(
            "step (fast path: torch fused cell kernel, kernel-shaped state kept)"
            if ours._plan_step() is not None
            else "step (cell.recur, one token)"
        ),
        shape={"B": B, "T": 1, "I": I, "H": H, "L": 1},
        options={},
        training=False,
        reference=f"torch.nn.{ref_name}",
        latency_us=lat,
        reference_latency_us=ref_lat,
        tokens_per_s=B / (lat * 1e-6),
        reference_tokens_per_s=B / (ref_lat * 1e-6),
        ratio=ratios["median"],
        ratio_spread=ratios,
        steps=n,
        repeats=repeats,
        load_avg_1min=load,
        load_warning=load > LOAD_WARNING,
        peak_mem_mb=None,
        reference_peak_mem_mb=None,
        mem_ratio=None,
    )
    return with_target(rec, None, ref_name)


def base_record(
    cell: str, variant: str, mode: str, case: str, device: torch.device
) -> dict[str, Any]:
    return {
        "case": case,
        "cell": cell,
        "variant": variant,
        "mode": mode,
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": "float32",
        "peak_mem_method": PEAK_MEM_METHOD[device.type],
    }


def with_target(rec: dict[str, Any], case: Case | None, reference: str) -> dict[str, Any]:
    goal = target(rec["cell"], rec["variant"], rec["mode"], case, reference)
    rec["target"] = goal
    rec["met"] = None if goal is None else bool(rec["ratio"] >= goal)
    return rec


LOAD_WARNING = 0.5  # 1-minute load average above which a record's figures carry a warning


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


# --- driver --------------------------------------------------------------------------------------


def write_atomic(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (rec["case"], rec["variant"], rec["mode"], rec["reference"], rec["threads"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes and few repeats (smoke test)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--cases",
        default="small,medium,long,step",
        help="comma-separated: small (B32 T128), medium (B64 T256 L2), long (B16 T2048), step",
    )
    p.add_argument("--cells", default="rnn,lstm,gru,mingru,minlstm", help="comma-separated")
    p.add_argument("--variants", default="", help="comma-separated variants (default: all)")
    p.add_argument("--modes", default="fwd,fwdbwd")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts, each a pass")
    p.add_argument(
        "--memory", action="store_true", help="also measure peak memory (two more calls a case)"
    )
    p.add_argument("--repeats", type=int, default=0, help="paired repeats per case (0: the case's)")
    p.add_argument("--out", type=Path, help="default benchmarks/results/speed-<device>.json")
    p.add_argument(
        "--merge", action="store_true", help="keep records of the existing file not re-measured"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    cells = args.cells.split(",")
    tags = args.cases.split(",")
    variants = args.variants.split(",") if args.variants else None
    modes = args.modes.split(",")
    cases = QUICK_CASES if args.quick else [c for c in CASES if c.tag in tags]
    if args.repeats:
        cases = [dataclasses.replace(c, repeats=args.repeats) for c in cases]
    unknown = set(cells) - set(STEP_REFERENCE)
    if unknown:
        raise SystemExit(f"unknown cells {sorted(unknown)}; choose from {sorted(STEP_REFERENCE)}")
    out = args.out or RESULTS / f"speed-{device.type}.json"
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    kept = json.loads(out.read_text()) if args.merge and out.exists() else []

    ceilings: dict[int, float] = {}

    def save(rec: dict[str, Any]) -> None:
        """Keep ``rec`` and rewrite the file, so a run cut short keeps what it measured. Every
        record of the run is held to the best GEMM ceiling seen so far at its thread count: on a
        shared machine one sample can land in a busy moment, the maximum over the run cannot
        understate what the CPU did."""
        rec["timestamp"] = stamp
        records.append(rec)
        for r in records:
            r["gemm_ceiling_gflops"] = ceilings[r["threads"]]
            if "gflops" in r:
                r["valid"] = max(r["gflops"], r["reference_gflops"]) <= ceilings[r["threads"]]
        print(line(rec), flush=True)
        fresh = {key(r) for r in records}
        write_atomic(out, [r for r in kept if key(r) not in fresh] + records)

    for threads in [int(t) for t in str(args.threads).split(",")]:
        torch.set_num_threads(threads)
        size = 256 if args.quick else 1024

        def ceiling(threads: int = threads, size: int = size) -> float:
            """A fresh ceiling sample before each record; the run keeps the best."""
            best = max(ceilings.get(threads, 0.0), gemm_ceiling(device, size=size, repeats=2))
            ceilings[threads] = best
            return best

        print(f"--- {threads} thread(s): GEMM ceiling {ceiling():.1f} GFLOP/s", flush=True)
        for case in cases:
            for config in CONFIGS:
                if config.cell not in cells or (
                    variants and config.variant not in [*variants, "plain"]
                ):
                    continue
                for mode in modes:
                    memory = args.memory or args.quick
                    rec = bench_sequence(config, case, mode, device, args.quick, ceiling(), memory)
                    save(rec)
        if args.quick or "step" in tags:
            for cell in cells:
                ceiling()
                save(bench_step(cell, device, args.quick))
    print(f"GEMM ceilings (best over the run): {ceilings}", flush=True)
    busy = [r for r in records if r["load_warning"]]
    if busy:
        worst = max(r["load_avg_1min"] for r in busy)
        print(
            f"WARNING: {len(busy)} of {len(records)} records ran with a 1-minute load above "
            f"{LOAD_WARNING} (up to {worst:.1f}): absolute figures are noisy; the paired ratios "
            "are the figures to read",
            flush=True,
        )
    print(f"wrote {len(records)} records to {out} in {time.perf_counter() - start:.0f} s")
    return 0


def line(rec: dict[str, Any]) -> str:
    if rec["mode"] == "step":
        figure = f"{rec['latency_us']:8.1f} us vs {rec['reference_latency_us']:8.1f} us"
    else:
        figure = f"{rec['tokens_per_s']:10.0f} tok/s vs {rec['reference_tokens_per_s']:10.0f}"
    goal = (
        ""
        if rec["target"] is None
        else f"  target {rec['target']}x {'met' if rec['met'] else 'MISSED'}"
    )
    sp = rec["ratio_spread"]
    invalid = "" if rec.get("valid", True) else "  INVALID (above the GEMM ceiling)"
    return (
        f"{rec['threads']}t {rec['case']:<30} {rec['variant']:<18} {rec['mode']:<6} {figure} "
        f"{rec['reference']:<18} {rec['ratio']:5.2f}x [{sp['min']:.2f}-{sp['max']:.2f}]{goal}"
        f"  [{rec['path'].split(' ')[0]}] load {rec['load_avg_1min']:.1f}{invalid}"
    )


if __name__ == "__main__":
    sys.exit(main())
