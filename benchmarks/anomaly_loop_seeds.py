"""Did the hand-written loop stall on some seeds too? Its validation NLL per seed, nothing else.

    python benchmarks/anomaly_loop_seeds.py --ref 605a571 --steps 600 --seeds 0 1 2 3

The anomaly app of ``--ref`` (a commit where it trained in its own loop) is checked out into a
temporary git worktree and its ``train_forecaster`` runs on its own recipe with ``train.steps``
replaced, in a child process on that tree's sources: the best validation NLL and the curve per
seed, with the CPU seconds and the load. The test split is never scored. Appends rows marked
``"trainer": "loop@REF"`` to ``benchmarks/results/anomaly_steps.json``, beside the library
trainer's rows of `benchmarks/anomaly_steps.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402

# One seed of the old loop, printed as one JSON line (run with the old tree on PYTHONPATH).
CHILD = """
import json, os, sys, time, torch, yaml
torch.set_num_threads(1)
from rnnkit.apps import anomaly
from rnnkit.apps._common import seed_all
from rnnkit.data import load
config = yaml.safe_load(open(sys.argv[1]))
config["train"]["steps"] = int(sys.argv[2])
s = anomaly.check_config(config)
data = load(s["dataset"])
seed = int(sys.argv[3])
seed_all(seed)
cpu = time.process_time()
_, nll, history = anomaly.train_forecaster(s, data.train.x[:, 0].float(), data.val.x[:, 0].float())
print(json.dumps({"val_nll": round(nll, 4), "val_nll_curve": history,
                  "cpu_s": round(time.process_time() - cpu, 1)}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="a commit whose anomaly app had its own loop")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = p.parse_args(argv)
    out = ROOT / "benchmarks" / "results" / "anomaly_steps.json"
    rows: list[dict] = json.loads(out.read_text()) if out.is_file() else []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(tree), args.ref], cwd=ROOT, check=True
        )
        try:
            env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}
            recipe = str(tree / "configs" / "anomaly.yaml")
            for seed in args.seeds:
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, recipe, str(args.steps), str(seed)],
                    cwd=tree,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(
                    {
                        "max_steps": args.steps,
                        "trainer": f"loop@{args.ref}",
                        "seed": seed,
                        **result,
                        "load_avg_1min": round(os.getloadavg()[0], 2),
                    }
                )
                print({k: v for k, v in rows[-1].items() if k != "val_nll_curve"}, flush=True)
                write_json(out, rows)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
