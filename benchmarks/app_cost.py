"""Does an application cost more on the library trainer than on the hand-written loop it replaced?

    python benchmarks/app_cost.py --ref 605a571 --apps music dates --pairs 2 [--full]
    python benchmarks/app_cost.py --ref 605a571 --apps sentiment --full \
        --new-config sentiment=benchmarks/recipes/sentiment_loop.yaml

``--ref`` is a commit whose applications still trained in their own loops (``605a571`` is the
last one where six of them did; the classification apps used ``apps/_classify.py`` there). That
commit is checked out into a temporary git worktree, and each application runs end to end (one
seed: data, training, test scoring, baselines, plots — what ``rnnkit app NAME`` does) once from
that tree and once from this one, each in a fresh process on the same virtual environment,
interleaved (old, new, old, new, ...) so machine load hits both alike. Nothing of either
version's internals is imported here, so the script does not break when an application's
functions change.

Per pair: wall seconds and the child process's CPU seconds; per application: the median of the
paired ratios new / old (CPU, and wall), the load average before and after. ``--quick`` (the
default) runs each recipe's CI-sized ``quick:`` form, ``--full`` the full recipe. Writes
``benchmarks/results/app_cost[-full].json`` (rerunning an application replaces its entry).

``--new-config APP=RECIPE`` runs this tree's side of APP with RECIPE instead of the shipped one
(``--old-config`` the old tree's side, in that tree's recipe format), recorded under ``"APP
(RECIPE file names)"``: where a recipe was since changed to train more (chosen on validation), the
same model and budget on both sides measures the trainer alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402

# One seed of one application, run from the tree on PYTHONPATH; torch on one thread as the
# quality benchmark runs the apps.
CHILD = (
    "import sys, torch; torch.set_num_threads(1);"
    "from rnnkit.apps._common import run_app;"
    "run_app(sys.argv[1], seeds=[int(sys.argv[2])], out_dir=sys.argv[3], quick=sys.argv[4] == '1',"
    " config=sys.argv[5] or None)"
)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(
    src: Path, app: str, seed: int, out: Path, *, quick: bool, config: str = ""
) -> tuple[float, float]:
    """(wall s, CPU s) of one application run from the sources in ``src`` (cwd: its tree)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    cpu, start = _child_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, app, str(seed), str(out), "1" if quick else "0", config],
        cwd=src.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    wall, used = time.perf_counter() - start, _child_cpu() - cpu
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{app} from {src}: exit {done.returncode}: {tail[0]}")
    return wall, used


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="a commit whose apps had their own loops")
    p.add_argument("--apps", nargs="+", required=True)
    p.add_argument("--pairs", type=int, default=2, help="old/new pairs per application")
    p.add_argument("--full", action="store_true", help="the full recipe, not its quick form")
    for side in ("new", "old"):
        p.add_argument(
            f"--{side}-config",
            nargs="*",
            default=[],
            metavar="APP=RECIPE",
            help=f"the {side} tree's side of APP runs RECIPE instead of its shipped recipe",
        )
    args = p.parse_args(argv)
    recipes = {
        "new": dict(item.split("=", 1) for item in args.new_config),
        "old": dict(item.split("=", 1) for item in args.old_config),
    }
    out = ROOT / "benchmarks" / "results" / f"app_cost{'-full' if args.full else ''}.json"
    results: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(old_tree), args.ref],
            cwd=ROOT,
            check=True,
        )
        try:
            trees = {"old": old_tree / "src", "new": ROOT / "src"}
            for app in args.apps:
                load = os.getloadavg()
                rows = []
                for k in range(args.pairs):
                    row: dict[str, Any] = {"seed": k}
                    for name, src in trees.items():
                        given = recipes[name].get(app)
                        recipe = str(Path(given).resolve()) if given else ""
                        wall, cpu = run_once(
                            src,
                            app,
                            k,
                            Path(tmp) / f"{name}-{app}-{k}",
                            quick=not args.full,
                            config=recipe,
                        )
                        row[f"{name}_wall_s"], row[f"{name}_cpu_s"] = round(wall, 2), round(cpu, 2)
                    rows.append(row)
                    print(app, row, flush=True)
                names = [Path(r[app]).name for r in recipes.values() if app in r]
                key = f"{app} ({', '.join(names)})" if names else app
                results[key] = {
                    "ref": args.ref,
                    "new_recipe": recipes["new"].get(app, "shipped"),
                    "old_recipe": recipes["old"].get(app, "shipped"),
                    "recipe": "full" if args.full else "quick",
                    "torch_threads": 1,
                    "cpus": os.cpu_count(),
                    "load_avg_before": [round(v, 2) for v in load],
                    "load_avg_after": [round(v, 2) for v in os.getloadavg()],
                    "pairs": rows,
                    "cpu_ratio_new_over_old": round(
                        statistics.median(r["new_cpu_s"] / r["old_cpu_s"] for r in rows), 3
                    ),
                    "wall_ratio_new_over_old": round(
                        statistics.median(r["new_wall_s"] / r["old_wall_s"] for r in rows), 3
                    ),
                }
                print(key, {k: v for k, v in results[key].items() if k != "pairs"}, flush=True)
                write_json(out, results)  # one app at a time; the others' entries are kept
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
