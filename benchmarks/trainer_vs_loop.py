"""Does training through `rnnkit.train` cost more than the hand-written loop it replaced?

The music and recommendation apps trained with their own loops up to commit ``605a571``; they now
train through the library's trainer. This script loads each old module (``git show REV:path``)
beside the current one and times one seed's training and test scoring of each, interleaved in one
process (loop, trainer, loop, trainer, ...), with the machine's load recorded per run.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/trainer_vs_loop.py music --rounds 2 [--full]``;
writes ``benchmarks/results/trainer-vs-loop-<app>[-full].json``.
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
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import yaml

from rnnkit.apps._common import app_config, merge
from rnnkit.data import load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEFORE = "605a571"  # the last commit whose music and recommendation apps had their own loops


def _old(app: str, tmp: Path) -> tuple[ModuleType, dict[str, Any]]:
    """The app module and recipe as they were at ``BEFORE``."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:src/rnnkit/apps/{app}.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    recipe = subprocess.run(
        ["git", "show", f"{BEFORE}:configs/{app}.yaml"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / f"old_{app}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"old_{app}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, yaml.safe_load(recipe)


def _runs(app: str, full: bool, tmp: Path) -> dict[str, Callable[[], float]]:
    """``{"loop": ..., "trainer": ...}``: each trains seed 0 and returns its test figure."""
    old, raw = _old(app, tmp)
    quick = raw.pop("quick")
    cfg_old = raw if full else merge(raw, quick)
    cfg_new = app_config(app, quick=not full)
    new = importlib.import_module(f"rnnkit.apps.{app}")
    if app == "music":
        splits = load(
            "bach_chorales",
            representation="events",
            limit=cfg_new["data"].get("limit"),
            val_fraction=0.1,
            test_fraction=0.1,
            seed=0,
        )
        raw_notes = {n: new._events(getattr(splits, n)) for n in ("train", "val", "test")}
        vocab = new.NoteVocab(raw_notes["train"], min_count=2)
        enc = {n: [vocab.encode(x) for x in v] for n, v in raw_notes.items()}

        def music_loop() -> float:
            model, _, _ = old.train_lm(enc["train"], enc["val"], len(vocab), cfg_old, 0)
            return float(old.lm_nll(model, enc["test"]))  # test NLL, nats per note

        def music_trainer() -> float:
            return new.train_lm(enc, len(vocab), cfg_new, seed=0, root=tmp / "runs")[3]

        return {"loop": music_loop, "trainer": music_trainer}
    data = load("movielens_100k")
    train = [x.long() for x in data.train.sequences]
    vh, vy = [x.long() for x in data.val.sequences], torch.tensor(data.val.labels)
    th, ty = [x.long() for x in data.test.sequences], torch.tensor(data.test.labels)

    def ndcg(module: ModuleType, model: Any) -> float:
        rank = module._evaluate(module.model_scores(model, th), th, ty, cfg_new)
        return float(module.rank_metrics(rank, 10)["ndcg@10"])  # test NDCG@10

    def rec_loop() -> float:
        return ndcg(old, old.train_model(cfg_old, train, vh, vy, 1683, 0)[0])

    def rec_trainer() -> float:
        model, _ = new.train_model(cfg_new, train, vh, vy, 1683, seed=0, root=tmp / "runs")
        return ndcg(new, model)

    return {"loop": rec_loop, "trainer": rec_trainer}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=["music", "recommendation"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="the full recipe, not the quick one")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = _runs(args.app, args.full, Path(tmp))
        for r in range(args.rounds):
            for impl, fn in runs.items():
                start = time.perf_counter()
                value = fn()
                wall = time.perf_counter() - start
                rows.append(
                    {
                        "round": r,
                        "impl": impl,
                        "wall_s": round(wall, 2),
                        "test": round(value, 4),
                        "load1": round(os.getloadavg()[0], 2),
                    }
                )
                print(rows[-1], flush=True)
    total = {i: sum(x["wall_s"] for x in rows if x["impl"] == i) for i in ("loop", "trainer")}
    out = {
        "app": args.app,
        "recipe": "full" if args.full else "quick",
        "seed": 0,
        "torch_threads": 1,
        "cpus": os.cpu_count(),
        "before": BEFORE,
        "ratio_trainer_over_loop": round(total["trainer"] / total["loop"], 3),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-full" if args.full else ""
    path = RESULTS / f"trainer-vs-loop-{args.app}{suffix}.json"
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
