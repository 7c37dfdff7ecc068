"""CPU cost of an application's fit on the library trainer against its old hand-written loop.

    python benchmarks/app_trainer_cost.py --ref fd83a27 --pairs 2

The old loops are read from git (``--ref``: a commit that still has them), imported beside the
current apps, and the two fits are run interleaved in this one process (old, new, old, new, ...)
on the same data and settings, so machine load hits both alike. Reports process CPU seconds per
fit and the ratio new / old, with the load average; writes
``benchmarks/results/app_trainer_cost.json`` (one entry per app; rerunning an app replaces its
entry).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402


def _old(ref: str, app: str, folder: Path) -> ModuleType:
    text = subprocess.run(
        ["git", "show", f"{ref}:src/rnnkit/apps/{app}.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / f"old_{app}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"old_{app}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def _cpu(fn: Any) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def forecasting_pair(old: ModuleType, out: Path, k: int) -> tuple[float, float]:
    """One airline fit at the first walk-forward origin, seed ``k``: old loop, then trainer."""
    from rnnkit.apps import app_config
    from rnnkit.apps import forecasting as new

    cfg = app_config("forecasting")
    recipe = new.check_config(cfg)
    spec = recipe.series["airline"]
    series = new.load_series("airline", spec)
    end = 120  # the first origin (1959-01)
    history, actual = series.values[:end], series.values[end : end + spec.horizon]
    old_cfg = {
        "model": {"cell": "gru", "hidden_size": 32, "num_layers": 1},
        "train": {
            "max_steps": 600,
            "batch_size": 32,
            "lr": 0.003,
            "weight_decay": 0.0001,
            "clip": 1.0,
            "eval_every": 20,
            "patience": 8,
            "val_steps": 24,
        },
    }
    old_ds = cfg["datasets"]["airline"]
    a = _cpu(lambda: old.fit_rnn(history, old_ds, old_cfg, k))
    b = _cpu(
        lambda: new.fit_rnn(
            history,
            actual,
            spec,
            recipe,
            series="airline",
            seed=k,
            root=out,
            name=f"cost-airline-{k}",
        )
    )
    return a, b


def anomaly_pair(old: ModuleType, out: Path, k: int) -> tuple[float, float]:
    """One mitdb forecaster fit, seed ``k``: old loop, then trainer (scoring excluded)."""
    from rnnkit.apps import anomaly as new
    from rnnkit.apps import app_config
    from rnnkit.data import load

    data = load("mitdb")
    train, val, test = (getattr(data, s).x[:, 0].float() for s in ("train", "val", "test"))
    recipe = new.check_config(app_config("anomaly"))
    old_s = {
        "cell": "gru",
        "hidden_size": 32,
        "layers": 1,
        "steps": 600,
        "patience": 4,
        "restarts": 1,
        "restart_steps": 100,
        "batch_size": 64,
        "window": 400,
        "lr": 0.003,
        "weight_decay": 0.0001,
        "clip": 1.0,
        "eval_every": 50,
        "warmup": 600,
    }

    def run_old() -> None:
        torch.manual_seed(k)
        old.train_forecaster(old_s, train, val)

    a = _cpu(run_old)
    b = _cpu(lambda: new.train_forecaster(recipe, train, val, test, seed=k, root=out))
    return a, b


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="a commit with the old hand-written loops")
    p.add_argument("--apps", nargs="*", default=["forecasting", "anomaly"])
    p.add_argument("--pairs", type=int, default=2, help="old/new pairs per app")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = ROOT / "benchmarks" / "results" / "app_trainer_cost.json"
    results: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    pairs = {"forecasting": forecasting_pair, "anomaly": anomaly_pair}
    with tempfile.TemporaryDirectory() as tmp:
        for app in args.apps:
            old = _old(args.ref, app, Path(tmp))
            load = os.getloadavg()
            rows = [pairs[app](old, Path(tmp) / "runs", k) for k in range(args.pairs)]
            old_cpu, new_cpu = (float(np.mean(c)) for c in zip(*rows, strict=True))
            results[app] = {
                "ref": args.ref,
                "load_avg_before": [round(v, 2) for v in load],
                "load_avg_after": [round(v, 2) for v in os.getloadavg()],
                "old_cpu_s": [round(r[0], 2) for r in rows],
                "new_cpu_s": [round(r[1], 2) for r in rows],
                "ratio_new_over_old": round(new_cpu / old_cpu, 3),
            }
            print(app, results[app], flush=True)
            write_json(out, results)  # one app at a time; the others' entries are kept
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
