"""How long must the anomaly app's forecaster train? Validation NLL per seed, nothing else read.

    python benchmarks/anomaly_steps.py --steps 600 1200 --seeds 0 1 2 3
    python benchmarks/anomaly_steps.py --steps 600 --experiment '{"data": {"epoch_samples": 4096}}'

Each (steps, seed) trains the app's recipe (`configs/anomaly.yaml`) with ``trainer.max_steps``
replaced (and ``--experiment``, a JSON mapping, merged over the recipe's ``experiment:``),
through the app's own `train_forecaster` (`rnnkit.train.fit`), and records the best
checkpoint's one-step validation NLL with the process CPU seconds and the load. The test split is
never scored here: this is the evidence the recipe's training length was chosen on. Appends to
``benchmarks/results/anomaly_steps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from rnnkit.apps import anomaly
    from rnnkit.apps._common import app_config, merge
    from rnnkit.data import load

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[600, 1200])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--experiment", type=json.loads, default={}, help="JSON merged over experiment:")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = ROOT / "benchmarks" / "results" / "anomaly_steps.json"
    rows: list[dict] = json.loads(out.read_text()) if out.is_file() else []
    for steps in args.steps:
        change = merge(args.experiment, {"trainer": {"max_steps": steps}})
        cfg = merge(app_config("anomaly"), {"experiment": change})
        recipe = anomaly.check_config(cfg)
        data = load(recipe.settings.dataset)
        train, val, test = (getattr(data, s).x[:, 0].float() for s in ("train", "val", "test"))
        for seed in args.seeds:
            cpu = time.process_time()
            with tempfile.TemporaryDirectory() as tmp:
                _, nll, curve, _ = anomaly.train_forecaster(
                    recipe, train, val, test, seed=seed, root=Path(tmp)
                )
            rows.append(
                {
                    "max_steps": steps,
                    "experiment": args.experiment,
                    "seed": seed,
                    "val_nll": round(nll, 4),
                    "val_nll_curve": curve,
                    "cpu_s": round(time.process_time() - cpu, 1),
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                }
            )
            print({k: v for k, v in rows[-1].items() if k != "val_nll_curve"}, flush=True)
            write_json(out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
