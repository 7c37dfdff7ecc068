"""``rnnkit app NAME``: an application end to end on real data against its baselines."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(args: Sequence[str]) -> int:
    from rnnkit.apps import APPS, run_app
    from rnnkit.cli import COMMANDS

    p = argparse.ArgumentParser(prog="rnnkit app", description=COMMANDS["app"][1])
    p.add_argument("name", choices=sorted(APPS), help="the application")
    p.add_argument("--config", help="recipe YAML (default: configs/NAME.yaml)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed")
    p.add_argument("--out", help="output folder (default: runs/apps/NAME)")
    p.add_argument("--quick", action="store_true", help="the recipe's scaled-down CI version")
    ns = p.parse_args(list(args))
    records = run_app(ns.name, config=ns.config, seeds=ns.seeds, out_dir=ns.out, quick=ns.quick)
    for r in records:
        arrow = "higher" if r["higher_is_better"] else "lower"
        print(
            f"{r['dataset']:<18} {r['model']:<26} {r['metric']} ({arrow} is better): "
            f"{r['value']:.4g} ± {r['spread']:.2g}  vs {r['baseline']} {r['baseline_value']:.4g}"
        )
    return 0
