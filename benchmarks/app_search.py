"""Validation-only hyperparameter search for an application recipe: a handful of named candidates.

    python benchmarks/app_search.py recommendation --candidates recipe h256 ...
    python benchmarks/app_search.py sentiment --candidates recipe emb128 --seeds 0 1

Each candidate is a mapping merged over ``configs/<app>.yaml`` (as ``quick:`` is); each run trains
through the app's own training path (`rnnkit.train.fit`) on the training split and reads the
**validation split only**: the test split is loaded with the data (the sets come as one split) but
never scored, and the trainer gets no test loader. One record per (candidate, seed) is appended to
``benchmarks/results/search/<app>.json`` with the best validation metric, its epoch, the curve,
the wall time and the machine load, so a search can run one candidate at a time on a busy machine.
Candidates chosen here become the recipe; the app's benchmark (``benchmarks/quality.py``) then
scores the test split once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402

from rnnkit.apps._common import app_config, merge  # noqa: E402

E = "experiment"

# candidate name -> overrides of configs/<app>.yaml
CANDIDATES: dict[str, dict[str, dict[str, Any]]] = {
    "recommendation": {
        "recipe": {},
        "recipe-30ep": {E: {"trainer": {"max_epochs": 30}}},
        "recipe-30ep-d0.4": {E: {"model": {"dropout": 0.4}, "trainer": {"max_epochs": 30}}},
        "recipe-30ep-d0.5": {E: {"model": {"dropout": 0.5}, "trainer": {"max_epochs": 30}}},
        "h256-e128-d0.3": {
            E: {
                "model": {"embedding_dim": 128, "hidden_size": 256, "dropout": 0.3},
                "trainer": {"max_epochs": 30},
            }
        },
        "h256-e128-d0.5": {
            E: {
                "model": {"embedding_dim": 128, "hidden_size": 256, "dropout": 0.5},
                "trainer": {"max_epochs": 30},
            }
        },
        "tied-h128-e128-d0.3": {
            E: {
                "model": {
                    "embedding_dim": 128,
                    "hidden_size": 128,
                    "dropout": 0.3,
                    "tie_weights": True,
                },
                "trainer": {"max_epochs": 30},
            }
        },
        "tied-h256-e256-d0.5": {
            E: {
                "model": {
                    "embedding_dim": 256,
                    "hidden_size": 256,
                    "dropout": 0.5,
                    "tie_weights": True,
                },
                "trainer": {"max_epochs": 30},
            }
        },
        "h256-e128-d0.5-lr1e-3": {
            E: {
                "model": {"embedding_dim": 128, "hidden_size": 256, "dropout": 0.5},
                "optim": {"lr": 0.001},
                "trainer": {"max_epochs": 30},
            }
        },
    },
    "sentiment": {
        "recipe": {},
        "emb128-wd0.3-d0.5": {
            E: {
                "data": {"word_dropout": 0.3},
                "model": {"embedding_dim": 128, "dropout": 0.5},
                "trainer": {"max_epochs": 12},
            }
        },
        "gru-emb128-wd0.3-d0.5": {
            E: {
                "data": {"word_dropout": 0.3},
                "model": {"cell": "gru", "embedding_dim": 128, "dropout": 0.5},
                "trainer": {"max_epochs": 12},
            }
        },
        "gru-emb256-wd0.3-d0.5": {
            E: {
                "data": {"word_dropout": 0.3},
                "model": {"cell": "gru", "embedding_dim": 256, "dropout": 0.5},
                "trainer": {"max_epochs": 12},
            }
        },
        "gru-emb128-h128-wd0.3-d0.5": {
            E: {
                "data": {"word_dropout": 0.3},
                "model": {"cell": "gru", "embedding_dim": 128, "hidden_size": 128, "dropout": 0.5},
                "trainer": {"max_epochs": 12},
            }
        },
        "gru-emb128-wd0.4-d0.5-20ep": {
            E: {
                "data": {"word_dropout": 0.4},
                "model": {"cell": "gru", "embedding_dim": 128, "dropout": 0.5},
                "trainer": {"max_epochs": 20},
            }
        },
        "recipe-ensemble3": {E: {"model": {"ensemble": 3}}},
        "h128-emb128-wd0.3-d0.5": {
            E: {
                "data": {"word_dropout": 0.3},
                "model": {"embedding_dim": 128, "hidden_size": 128, "dropout": 0.5},
                "trainer": {"max_epochs": 12},
            }
        },
    },
}


def _load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def _recommendation(cfg: dict[str, Any], *, seed: int, root: Path) -> dict[str, Any]:
    from rnnkit.apps import recommendation as app

    settings = app.check_config(cfg)
    data = app.load_sessions(settings.data)
    val_hist, val_y, vocab = data.val_hist, data.val_y, data.vocab
    k = settings.eval.k
    model, curve = app.train_model(cfg, settings, data, seed=seed, root=root)
    rank = app._evaluate(app.model_scores(model, val_hist), val_hist, val_y, settings.eval)
    val = app.rank_metrics(rank, k)
    # the strongest baseline on the same validation split, for reference
    pop = app.Popularity(data.train, vocab)
    markov = app.Markov(data.train, vocab, pop)
    best_markov = 0.0
    for a in settings.baselines.markov_smoothing:
        markov.smoothing = float(a)
        r = app._evaluate(markov.scores(val_hist), val_hist, val_y, settings.eval)
        best_markov = max(best_markov, app.rank_metrics(r, k)[f"ndcg@{k}"])
    return {
        "metric": f"val_ndcg@{k}",
        "best": val[f"ndcg@{k}"],
        f"val_hr@{k}": val[f"hr@{k}"],
        "val_mrr": val["mrr"],
        "best_epoch": int(max(range(len(curve)), key=lambda i: curve[i])) + 1,
        "epochs_run": len(curve),
        "curve": [round(v, 4) for v in curve],
        "baseline_val_ndcg(markov)": best_markov,
    }


def _sentiment(cfg: dict[str, Any], *, seed: int, root: Path) -> dict[str, Any]:
    from rnnkit.apps import sentiment as app
    from rnnkit.apps._common import ValidationCurve, app_settings
    from rnnkit.train import DataParts, fit

    settings = app_settings(app.Settings, cfg, app=app.APP)
    data = app._load(settings.dataset)
    train_s, val_s = (
        list(zip(d.sequences, d.labels or [], strict=True)) for d in (data.train, data.val)
    )
    meta = {"vocab": data.meta["vocab"], "classes": data.meta["classes"]}
    parts = DataParts(train_s, val_s, None, meta)
    exp = app.experiment(cfg, settings, seed=seed, root=root)
    curve = ValidationCurve("val_accuracy")
    result = fit(exp, data=parts, callbacks=[curve], test=False)
    if exp.model.ensemble > 1:  # the averaged probabilities' accuracy; one curve per member
        members = result.summary["members"]
        return {
            "metric": "val_accuracy",
            "best": float(result.metrics["val_accuracy"]),
            "member_val_accuracy": [float(m["metrics"]["val_accuracy"]) for m in members],
            "best_epoch": [
                None if m["best_epoch"] is None else m["best_epoch"] + 1 for m in members
            ],
            "epochs_run": [len(c) for c in curve.fits],
            "curve": [[round(v, 4) for v in c] for c in curve.fits],
        }
    values = [float(v) for v in curve.values]
    best = max(range(len(values)), key=lambda i: values[i])
    return {
        "metric": "val_accuracy",
        "best": values[best],
        "best_epoch": best + 1,
        "epochs_run": len(values),
        "curve": [round(v, 4) for v in values],
    }


RUNNERS = {"recommendation": _recommendation, "sentiment": _sentiment}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=sorted(RUNNERS))
    parser.add_argument("--candidates", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default="runs/search")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = app_config(args.app)  # the full recipe (its ``quick:`` section dropped)
    unknown = [c for c in args.candidates if c not in CANDIDATES[args.app]]
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; known: {sorted(CANDIDATES[args.app])}")
    out = ROOT / "benchmarks" / "results" / "search" / f"{args.app}.json"
    records: list[dict[str, Any]] = json.loads(out.read_text()) if out.exists() else []
    for name in args.candidates:
        over = CANDIDATES[args.app][name]
        cfg = merge(recipe, over)
        for seed in args.seeds:
            load0, t0 = _load_avg(), time.perf_counter()
            result = RUNNERS[args.app](cfg, seed=seed, root=Path(args.root) / name)
            wall = time.perf_counter() - t0
            rec = {
                "candidate": name,
                "overrides": over,
                "seed": seed,
                **result,
                "wall_s": round(wall, 1),
                "load_avg_1min": [load0, _load_avg()],
                "torch_threads": args.threads,
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            records.append(rec)
            write_json(out, records)
            print(
                f"{name} seed {seed}: {rec['metric']} {rec['best']:.4f} "
                f"(epoch {rec['best_epoch']}/{rec['epochs_run']}) {wall:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
