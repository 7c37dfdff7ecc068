"""Write ``docs/long-range-memory.md`` and its PNGs from ``benchmarks/results/memory.json``.

python benchmarks/memory/report.py [--results PATH] [--doc PATH] [--img DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CELL_ORDER = ["rnn-tanh", "irnn", "lstm", "ln-lstm", "gru", "mingru", "minlstm"]
CELL_NAMES = {
    "rnn-tanh": "Elman tanh (orthogonal)",
    "irnn": "Elman relu, identity init (IRNN)",
    "lstm": "LSTM",
    "ln-lstm": "LayerNorm-LSTM",
    "gru": "GRU",
    "mingru": "minGRU",
    "minlstm": "minLSTM",
}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _is_main(r: dict[str, Any]) -> bool:
    default_init = "identity" if r["cell"] == "irnn" else "orthogonal"
    return r["clip"] == 1.0 and r["init"] == default_init


def _cell_key(r: dict[str, Any]) -> int:
    return CELL_ORDER.index(r["cell"]) if r["cell"] in CELL_ORDER else 99


def solved_matrix(records: list[dict[str, Any]], task: str) -> list[str]:
    rows = [r for r in records if r["task"] == task and _is_main(r)]
    if not rows:
        return []
    Ts = sorted({r["T"] for r in rows})
    cells = [c for c in CELL_ORDER if any(r["cell"] == c for r in rows)]
    head = "delay" if task == "copy" else "T"
    out = [f"| {head} | " + " | ".join(cells) + " |", "|---|" + "---|" * len(cells)]
    by = {(r["T"], r["cell"]): r for r in rows}
    for T in Ts:
        cols = []
        for c in cells:
            r = by.get((T, c))
            if r is None:
                cols.append("not run")
            elif r["solved"]:
                cols.append(f"✓ {r['steps']} steps")
            else:
                cols.append(f"✗ {_fmt(r['value'], 3)}")
        out.append(f"| {T} | " + " | ".join(cols) + " |")
    return out


def full_table(records: list[dict[str, Any]]) -> list[str]:
    out = [
        "| task | T | cell | clip | recurrent init | metric | value | baseline | solved | steps "
        "| wall s | stopped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {"adding": 0, "copy": 1, "digits": 2, "pdigits": 3}
    for r in sorted(records, key=lambda r: (order.get(r["task"], 9), r["T"], _cell_key(r))):
        out.append(
            f"| {r['task']} | {r['T']} | {r['cell']} | {r['clip'] or 'none'} | {r['init']} "
            f"| {r['metric']} | {_fmt(r['value'])} | {_fmt(r['baseline_value'])} "
            f"| {'yes' if r['solved'] else 'no'} | {r['steps']} | {_fmt(r['wall_s'])} "
            f"| {r['stopped']} |"
        )
    return out


def plot_flow(records: list[dict[str, Any]], path: Path) -> str | None:
    flows = sorted((r for r in records if "grad_flow" in r), key=_cell_key)
    if not flows:
        return None
    fig, axes = plt.subplots(
        1, len(flows), figsize=(5.6 * len(flows), 3.8), squeeze=False, layout="constrained"
    )
    lo = min(min(min(row) for row in r["grad_flow"]["log10_norm"]) for r in flows)
    hi = max(max(max(row) for row in r["grad_flow"]["log10_norm"]) for r in flows)
    for ax, r in zip(axes[0], flows, strict=True):
        data = np.asarray(r["grad_flow"]["log10_norm"])
        steps = r["grad_flow"]["steps"]
        im = ax.imshow(
            data,
            aspect="auto",
            cmap="viridis",
            vmin=max(lo, -12),
            vmax=hi,
            interpolation="nearest",
            extent=(-0.5, data.shape[1] - 0.5, steps[-1], 0),
        )
        ax.set_title(f"{CELL_NAMES.get(r['cell'], r['cell'])}, {r['task']} T={r['T']}", fontsize=9)
        ax.set_xlabel("time step t (the target is read at the last step)")
        ax.set_ylabel("training step")
    fig.colorbar(im, ax=axes[0].tolist(), label="log10 ||dL/dh_t||")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def plot_adding(records: list[dict[str, Any]], path: Path) -> str | None:
    rows = [r for r in records if r["task"] == "adding" and _is_main(r)]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    by: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        if r["value"] is not None:
            by[r["cell"]].append((r["T"], r["value"]))
    for cell in CELL_ORDER:
        if cell in by:
            pts = sorted(by[cell])
            ax.plot(*zip(*pts, strict=True), marker="o", label=CELL_NAMES[cell])
    ax.axhline(1 / 6, color="k", ls="--", lw=1, label="always predict 1 (0.167)")
    ax.axhline(0.01, color="grey", ls=":", lw=1, label="solved (MSE < 0.01)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("validation MSE at stop")
    ax.set_title("adding problem: final MSE vs T", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def findings(records: list[dict[str, Any]]) -> list[str]:
    """Sentences computed from the records (no hand-written claims)."""
    out = []
    adding = [r for r in records if r["task"] == "adding" and _is_main(r)]
    for cell in CELL_ORDER:
        rs = sorted((r for r in adding if r["cell"] == cell), key=lambda r: r["T"])
        if not rs:
            continue
        ok = [r["T"] for r in rs if r["solved"]]
        bad = [r["T"] for r in rs if not r["solved"]]
        out.append(
            f"- adding, {CELL_NAMES[cell]}: solved at T = {ok or 'none'}"
            + (f"; not solved at T = {bad}" if bad else "")
            + "."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "memory.json"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "long-range-memory.md"))
    p.add_argument("--img", default=str(ROOT / "docs" / "img"))
    ns = p.parse_args(argv)
    data = json.loads(Path(ns.results).read_text())
    records, meta = data["records"], data["meta"]
    img = Path(ns.img)
    img.mkdir(parents=True, exist_ok=True)
    flow_png = plot_flow(records, img / "memory-gradient-flow.png")
    adding_png = plot_adding(records, img / "memory-adding.png")
    crit = meta.get("solved_criteria", {})
    lines = [
        "# Long-range memory: where the Elman RNN fails and gated cells do not",
        "",
        "<!-- generated by benchmarks/memory/report.py from benchmarks/results/memory.json; "
        "do not edit by hand -->",
        "",
        f"Measured with `{meta['command']}` ({meta['grid']} grid, budget "
        f"{meta['budget_minutes']} min, {meta['workers']} worker processes x "
        f"{meta['threads_per_worker']} thread, {meta['machine']}, torch {meta['torch']}; "
        f"took {meta.get('elapsed_minutes', '?')} min; the machine was shared with other jobs, "
        "so wall times are indicative only). One seed per configuration.",
        *[
            f"Earlier records kept by `--resume`: `{m['command']}` (took "
            f"{m.get('elapsed_minutes', '?')} min)."
            for m in meta.get("previous", [])
        ],
        "",
        "Every job: a one-layer `Recurrent` (hidden 64) + linear head, Adam (lr 1e-3), batch 64, "
        "fresh samples every step (adding, copy); gradient-norm clipping at 1.0 unless the "
        "table says none; evaluation every 100 steps on a fixed held-out set; training stops at "
        "the first evaluation that meets the criterion (so *steps* = steps to solve), at "
        "`max_steps`, or at the job's time cap. *value* is the held-out metric at the stop.",
        "",
        f"- adding (Hochreiter & Schmidhuber 1997): MSE; baseline 0.167 = always predicting 1; "
        f"solved: {crit.get('adding', '')}.",
        f"- copy (Arjovsky et al. 2016): cross-entropy per step (nats); baseline = the "
        f"memoryless predictor, 10 ln 8 / (delay + 20); solved: {crit.get('copy', '')}.",
        f"- digits / pdigits: scikit-learn 8x8 digits, 64 pixels one per step (pdigits: a fixed "
        f"permutation); test accuracy; baseline = majority class; solved: "
        f"{crit.get('digits', '')}.",
        "",
        "## Adding problem: solved (steps to solve) or not (MSE at stop)",
        "",
        *solved_matrix(records, "adding"),
        "",
        *findings(records),
        "",
    ]
    if adding_png:
        lines += [f"![adding MSE vs T](img/{adding_png})", ""]
    if flow_png:
        lines += [
            "## Gradient flow: vanilla RNN next to LSTM, same task",
            "",
            "log10 ‖∂L/∂h_t‖ (the loss reads only the last step) over time step (x) and training "
            "step (y), measured with `rnnkit.diagnostics.gradient_flow` on a fixed batch. Where "
            "the colour fades towards t = 0 the learning signal does not reach the first marker.",
            "",
            f"![gradient flow](img/{flow_png})",
            "",
        ]
    for task, title in (("copy", "Copy memory"), ("digits", "Sequential digits")):
        m = solved_matrix(records, task)
        if m:
            lines += [f"## {title}", "", *m, ""]
    if any(r["task"] == "pdigits" for r in records):
        lines += ["## Permuted sequential digits", "", *solved_matrix(records, "pdigits"), ""]
    lines += ["## Every run", "", *full_table(records), ""]
    if data.get("not_run"):
        lines += [
            "## Not run within the budget",
            "",
            *[
                f"- {j['task']} T={j['T']} {j['cell']} clip={j['clip']} init={j['init']}"
                for j in data["not_run"]
            ],
            "",
        ]
    lines += [
        "## Reproduce",
        "",
        "```",
        "python benchmarks/memory/run.py --quick --budget-minutes 35   # this page's grid",
        "python benchmarks/memory/run.py --budget-minutes 600          # the full grid",
        "python benchmarks/memory/report.py",
        "```",
        "",
    ]
    Path(ns.doc).write_text("\n".join(lines))
    print(ns.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
