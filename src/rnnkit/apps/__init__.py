"""Applications end to end on real data: one module per application, one recipe per module.

Every application is run the same way, from the command line or from Python::

    rnnkit app sentiment                       # configs/sentiment.yaml, seeds 0 1 2
    rnnkit app forecasting --quick --seeds 0   # the scaled-down CI version
    rnnkit.apps.run_app("sentiment", seeds=[0, 1, 2], out_dir="runs/apps/sentiment")

and returns (and writes to ``OUT/records.json``) a list of result records, one per
model/baseline pair, each with the mean and spread over the seeds::

    {"app", "dataset", "model", "metric", "higher_is_better", "value", "spread", "values",
     "baseline", "baseline_value", "seeds", "wall_s", ...}

An application module defines ``run(config: dict, *, seeds, out_dir: Path, quick: bool) ->
list[dict]``: it reads everything it trains with from ``config`` (the YAML recipe), evaluates on the
data set's own test split, and writes its plots into ``out_dir``. ``quick`` applies the recipe's
``quick:`` overrides (the CI-sized version). `benchmarks/quality.py` runs them all and builds the
results tables in the README and ``docs/apps/``.
"""

from __future__ import annotations

from rnnkit.apps._common import APPS, app_config, run_app

__all__ = ["APPS", "app_config", "run_app"]
