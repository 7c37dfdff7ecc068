"""Turn ``benchmarks/results/speed-*.json`` into markdown tables, and put them in the README.

Prints the tables; with ``--readme PATH`` also rewrites the block between ``<!-- speed:begin -->``
and ``<!-- speed:end -->`` in that file (the markers stay, everything between them is replaced).
Every figure comes from the JSON; nothing is measured here.

    .venv/bin/python benchmarks/report.py                       # print
    .venv/bin/python benchmarks/report.py --readme README.md    # print and update the README block
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"


def load(paths: list[Path]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise SystemExit(f"{path}: expected a JSON list of records, got {type(data).__name__}")
        records += data
    return records


def verdict(rec: dict[str, Any]) -> str:
    if rec.get("target") is None:
        return ""
    return f"≥{rec['target']:g}× {'✅' if rec['met'] else '❌'}"


def path_name(rec: dict[str, Any]) -> str:
    return str(rec.get("path", "")).split(" ")[0]


def mem(rec: dict[str, Any]) -> str:
    ours, ref = rec.get("peak_mem_mb"), rec.get("reference_peak_mem_mb")
    if ours is None or ref is None:
        return ""
    ratio = f" ({ref / ours:.2f}×)" if ours > 0 else ""
    return f"{ours:.1f} / {ref:.1f}{ratio}"


def ratio_cell(rec: dict[str, Any]) -> str:
    """The median paired ratio in bold with its spread (min-max); invalid records flagged."""
    sp = rec.get("ratio_spread")
    text = f"**{rec['ratio']:.2f}×**"
    if sp:
        text += f" ({sp['min']:.2f}–{sp['max']:.2f})"
    if rec.get("valid") is False:
        text += " ⚠ invalid: above the GEMM ceiling"
    return text


def gflops(rec: dict[str, Any]) -> str:
    ours, ref = rec.get("gflops"), rec.get("reference_gflops")
    if ours is None or ref is None:
        return ""
    limit = rec.get("flop_limit_ratio")
    extra = f"; FLOP limit {limit:.1f}×" if limit else ""
    return f"{ours:.1f} / {ref:.1f}{extra}"


def load_cell(rec: dict[str, Any]) -> str:
    value = rec.get("load_avg_1min")
    if value is None:
        return ""
    return f"{value:.1f}{' ⚠' if rec.get('load_warning') else ''}"


def sequence_table(records: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| threads | case | variant | mode | path | rnnkit tok/s | reference | ref tok/s "
        "| ratio (spread) | target | GFLOP/s rnnkit / ref | load | peak MB rnnkit / ref |",
        "|--:|---|---|---|---|--:|---|--:|--:|---|--:|--:|--:|",
    ]
    for r in records:
        if r["mode"] == "step":
            continue
        rows.append(
            f"| {r.get('threads', '?')} | {r['case']} | {r['variant']} | {r['mode']} "
            f"| {path_name(r)} | {r['tokens_per_s']:,.0f} "
            f"| {r['reference'].removeprefix('torch.')} "
            f"| {r['reference_tokens_per_s']:,.0f} | {ratio_cell(r)} | {verdict(r)} "
            f"| {gflops(r)} | {load_cell(r)} | {mem(r)} |"
        )
    return rows


def step_table(records: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| threads | case | rnnkit µs/step | reference | ref µs/step | ratio (spread) | target "
        "| load |",
        "|--:|---|--:|---|--:|--:|---|--:|",
    ]
    for r in records:
        if r["mode"] != "step":
            continue
        rows.append(
            f"| {r.get('threads', '?')} | {r['case']} | {r['latency_us']:.1f} "
            f"| {r['reference'].removeprefix('torch.')} | {r['reference_latency_us']:.1f} "
            f"| {ratio_cell(r)} | {verdict(r)} | {load_cell(r)} |"
        )
    return rows


CELL_ORDER = ["rnn", "lstm", "gru", "mingru", "minlstm"]
VARIANT_ORDER = ["plain", "layernorm", "recurrent_dropout", "recurrent_dropout_shared", "zoneout"]


def order(r: dict[str, Any]) -> tuple[Any, ...]:
    """Cases by size, then cells and variants in a fixed order (merged runs stay readable)."""
    shape = r.get("shape", {})
    cell = CELL_ORDER.index(r["cell"]) if r["cell"] in CELL_ORDER else len(CELL_ORDER)
    variant = VARIANT_ORDER.index(r["variant"]) if r["variant"] in VARIANT_ORDER else 99
    return (
        r["mode"] == "step",
        r.get("threads", 0),
        shape.get("T", 0),
        shape.get("B", 0),
        cell,
        variant,
        r["reference"],
        r["mode"],
    )


def render(records: list[dict[str, Any]]) -> str:
    records = sorted(records, key=order)
    out: list[str] = []
    by_device: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_device.setdefault(r["device"], []).append(r)
    for device, recs in by_device.items():
        first = recs[0]
        stamps = sorted(str(r.get("timestamp", "?")) for r in recs)
        when = stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"
        threads = sorted({r.get("threads", 0) for r in recs})
        ceilings = {
            r.get("threads"): r["gemm_ceiling_gflops"] for r in recs if "gemm_ceiling_gflops" in r
        }
        ceiling = ", ".join(
            f"{c:.0f} GFLOP/s at {t} thread(s)" for t, c in sorted(ceilings.items())
        )
        loads = [r["load_avg_1min"] for r in recs if "load_avg_1min" in r]
        out.append(
            f"**{device}** ({first.get('device_name', '?')}, threads {threads}, "
            f"torch {first['torch']}, {when}). Ratio = median of paired ratios t_ref / t_rnnkit "
            "(interleaved in one loop), spread min–max in brackets; higher is better. GEMM ceiling "
            f"measured in the same run: {ceiling or 'not recorded'}; a record whose GFLOP/s "
            "exceeds it is marked invalid. "
            + (
                f"1-minute load during the run: {min(loads):.1f} to {max(loads):.1f}"
                + (
                    " — ⚠ above 0.5: a shared, busy machine; absolute tok/s are noisy, the "
                    "paired ratios are the figures to read."
                    if max(loads) > 0.5
                    else "."
                )
                if loads
                else ""
            )
        )
        out.append("")
        if any(r["mode"] != "step" for r in recs):
            out += [*sequence_table(recs), ""]
        if any(r["mode"] == "step" for r in recs):
            out.append("Streaming, one `layer.step` at a time (eval, inference mode):")
            out.append("")
            out += [*step_table(recs), ""]
        for t in threads:
            targets = [r for r in recs if r.get("target") is not None and r.get("threads") == t]
            met = sum(bool(r["met"]) for r in targets)
            out.append(f"Targets met at {t} thread(s): {met} of {len(targets)}.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def update_block(path: Path, table: str) -> None:
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block to update")
    new = text[: start + len(BEGIN)] + "\n" + table + text[end:]
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", nargs="*", type=Path, help="default: benchmarks/results/speed-*.json")
    p.add_argument("--readme", type=Path, help="rewrite this file's speed:begin/end block")
    args = p.parse_args(argv)
    paths = args.json or sorted(RESULTS.glob("speed-*.json"))
    if not paths:
        raise SystemExit(f"no speed-*.json under {RESULTS}; run benchmarks/speed.py first")
    table = render(load(paths))
    print(table, end="")
    if args.readme:
        update_block(args.readme, table)
        print(f"updated {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
