"""Choose the forecasting app's ``base`` per series on origins BEFORE the test origins.

    python benchmarks/forecasting_base.py --seeds 0 --bases none naive seasonal_naive ets

Each series of ``configs/forecasting.yaml`` is cut at its first test origin (nothing from there on
is read), and the app's walk-forward (same horizon, folds, step, recipe) runs on the cut series:
the selection origins are the test origins moved back by the test span. Every base is scored by
the RNN's MASE averaged over those origins and seeds, beside the statistical baselines on the same
origins. Writes ``benchmarks/results/forecasting_base.json``; the recipe's ``base`` per series is
the lowest MASE there.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bases", nargs="+", default=["none", "naive", "seasonal_naive", "ets"])
    parser.add_argument("--series", nargs="+", default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/forecasting_base.json"))
    args = parser.parse_args(argv)

    import torch

    from rnnkit.apps import forecasting as app
    from rnnkit.evaluate import walk_forward

    torch.set_num_threads(1)
    config = yaml.safe_load((ROOT / "configs/forecasting.yaml").read_text())
    config.pop("quick", None)
    names = args.series or config["use"]
    out_path = Path(args.out)
    results: dict[str, Any] = {"seeds": args.seeds, "load_at_start": os.getloadavg(), "series": {}}
    if out_path.is_file():  # several invocations (one series each) add to one file
        import json

        results["series"] = json.loads(out_path.read_text())["series"]
    for name in names:
        ds0 = app.check_config(config).series[name]
        full = app.load_series(name, ds0)
        test_origins = walk_forward(
            len(full.values),
            horizon=ds0.horizon,
            folds=ds0.folds,
            min_train=ds0.min_train,
            step=ds0.step,
        )
        cut = test_origins[0].train_end  # nothing from the first test origin on is read
        series = dataclasses.replace(full, values=full.values[:cut], index=full.index[:cut])
        earlier = results["series"].get(name, {}).get("bases", {})  # bases scored before
        row: dict[str, Any] = {"cut": str(full.index[cut].date()), "bases": dict(earlier)}
        for base in args.bases:
            cfg = {**config, "use": [name]}
            cfg["datasets"] = {
                **config["datasets"],
                name: {**config["datasets"][name], "base": base},
            }
            recipe = app.check_config(cfg)
            ds = recipe.series[name]
            start = time.time()
            with tempfile.TemporaryDirectory() as tmp:
                res = app.evaluate_series(series, ds, recipe, args.seeds, root=Path(tmp))
            mase = [res["rnn"][s]["MASE"] for s in args.seeds]
            row["origins"] = res["origin_dates"]
            row["baselines"] = {
                res["baseline_names"][k]: v["MASE"] for k, v in res["baselines"].items()
            }
            row["bases"][base] = {
                "MASE": float(np.mean(mase)),
                "per_seed": mase,
                "wall_s": round(time.time() - start, 1),
                "head_kept": res["heads"],  # False: validation kept the bare base
            }
            print(name, base, row["bases"][base], flush=True)
        print(name, "baselines", row["baselines"], flush=True)
        row["chosen"] = min(row["bases"], key=lambda b: row["bases"][b]["MASE"])
        results["series"][name] = row
        results["load_at_end"] = os.getloadavg()
        write_json(out_path, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
