"""Hyperparameter search (``rnnkit tune``): Optuna over any experiment's keys, the test split kept
out of the search.

- `space`: search spaces (YAML of dotted keys -> distributions), per-family defaults, applying
  values to an experiment with the parser ``rnnkit fit`` uses.
- `search`: ``tune(base, space, TuneOptions(...))`` -> ``TuneResult``: the study (SQLite, RDB or
  journal storage), trials through `rnnkit.train.fit`, pruning on the validation metric, K folds
  of train + validation; then `report`: trials.csv, plots, best.yaml, refit and test metrics.

Sits above ``train`` and ``evaluate`` (it fits experiments and uses evaluate's splits). See
``docs/tuning.md``. Needs the ``tune`` extra (optuna).
"""

from rnnkit.tune.search import TuneOptions, TuneResult, tune
from rnnkit.tune.space import DEFAULT_SPACES, Param, default_space, load_space, parse_space

__all__ = [
    "DEFAULT_SPACES",
    "Param",
    "TuneOptions",
    "TuneResult",
    "default_space",
    "load_space",
    "parse_space",
    "tune",
]
