"""What do checkpoint writes cost a small model's training step?

    python benchmarks/checkpoint_cost.py --steps 300 --pairs 3

Fits the shipped ``airline_forecaster`` recipe (a GRU-32 direct forecaster; 7 batches an epoch,
so it validates every 7 steps) for ``--steps`` steps, alternating in one process between
``trainer.last_checkpoint_every_s: 0`` (``last.ckpt`` at every validation) and the default (at a
validation once 60 s have passed, and at the end). Every write is counted by file name through a
spy on the checkpoint writer, so the CPU of one write comes out of the paired difference.

Before this change Lightning's ``save_last`` rewrote ``last.ckpt`` beside every new
``best.ckpt``: its cost per run is estimated as the default's plus one write per best-checkpoint
write (the per-write CPU measured here). Per pair: process CPU and wall seconds per step of each
variant; the load average is recorded. Writes ``benchmarks/results/checkpoint_cost.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402


def _one(experiment: Any, root: str, name: str, every_s: float) -> dict[str, Any]:
    from rnnkit.train.run import AtomicCheckpointIO
    from rnnkit.train.trainer import fit

    writes = {"best.ckpt": 0, "last.ckpt": 0}
    real = AtomicCheckpointIO.save_checkpoint

    def counted(self: Any, checkpoint: dict[str, Any], path: Any, **kwargs: Any) -> None:
        writes[Path(path).name] = writes.get(Path(path).name, 0) + 1
        real(self, checkpoint, path, **kwargs)

    exp = dataclasses.replace(
        experiment,
        trainer=dataclasses.replace(experiment.trainer, last_checkpoint_every_s=every_s),
        run=dataclasses.replace(experiment.run, root=root, name=name),
    )
    AtomicCheckpointIO.save_checkpoint = counted  # type: ignore[method-assign]
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        result = fit(exp, final_eval=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        AtomicCheckpointIO.save_checkpoint = real  # type: ignore[method-assign]
    steps = int(result.summary["steps"])
    return {
        "every_s": every_s,
        "steps": steps,
        "cpu_ms_per_step": round(1000 * cpu / steps, 2),
        "wall_ms_per_step": round(1000 * wall / steps, 2),
        "writes": writes,
    }


def main(argv: list[str] | None = None) -> int:
    import yaml

    from rnnkit.recipes import recipe_path
    from rnnkit.train.experiment_io import experiment_from_dict

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--pairs", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    recipe = recipe_path("airline_forecaster").read_text(encoding="utf-8")
    base = experiment_from_dict(yaml.safe_load(recipe))
    base = dataclasses.replace(
        base,
        trainer=dataclasses.replace(
            base.trainer, max_steps=args.steps, enable_progress_bar=False, num_threads=1
        ),
        run=dataclasses.replace(base.run, plot=False),
    )
    load_before = os.getloadavg()
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        _one(base, tmp, "warm-up", 60.0)  # imports and first-call costs out of the pairs
        for i in range(args.pairs):
            every = _one(base, tmp, f"every-{i}", 0.0)
            default = _one(base, tmp, f"default-{i}", 60.0)
            pairs.append({"every_validation": every, "default": default})
            print(pairs[-1], flush=True)

    def ms_per_write(pair: dict[str, Any]) -> float:
        every, default = pair["every_validation"], pair["default"]
        extra_ms = (every["cpu_ms_per_step"] - default["cpu_ms_per_step"]) * default["steps"]
        return extra_ms / max(1, every["writes"]["last.ckpt"] - default["writes"]["last.ckpt"])

    per_write = statistics.median(ms_per_write(p) for p in pairs)
    default_cpu = statistics.median(p["default"]["cpu_ms_per_step"] for p in pairs)
    best_writes = statistics.median(p["default"]["writes"]["best.ckpt"] for p in pairs)
    old_cpu = default_cpu + best_writes * per_write / args.steps
    summary = {
        "recipe": "airline_forecaster",
        "steps": args.steps,
        "torch_threads": 1,
        "cpus": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "pairs": pairs,
        "cpu_ms_per_write": round(per_write, 2),
        "cpu_ms_per_step_default": default_cpu,
        "cpu_ms_per_step_every_validation": round(
            statistics.median(p["every_validation"]["cpu_ms_per_step"] for p in pairs), 2
        ),
        "cpu_ms_per_step_old_rule_estimate": round(old_cpu, 2),
        "wall_ms_per_step_default": statistics.median(
            p["default"]["wall_ms_per_step"] for p in pairs
        ),
        "wall_ms_per_step_every_validation": round(
            statistics.median(p["every_validation"]["wall_ms_per_step"] for p in pairs), 2
        ),
        "note": "old rule (last.ckpt beside every best.ckpt) = default + one write per best write",
    }
    write_json(ROOT / "benchmarks" / "results" / "checkpoint_cost.json", summary)
    print({k: v for k, v in summary.items() if k != "pairs"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
