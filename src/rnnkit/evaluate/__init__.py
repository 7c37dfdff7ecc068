"""Evaluation: splits that respect time, the metrics the applications report, simple baselines.

- `splits`: ``walk_forward`` (expanding-window origins for time series), ``kfold`` (shuffled,
  optionally stratified folds for independent sequences), ``stratified_holdout`` (a validation
  split with every class in it).
- `metrics`: MAE, RMSE, MASE; bits per token and perplexity; accuracy and macro F1; precision,
  recall, F1 and ROC-AUC for detections.
- `baselines`: n-gram (unigram/bigram) token models with add-k smoothing; naive, seasonal-naive
  and ETS forecasts; 1-NN (Euclidean, DTW) and TF-IDF logistic regression classifiers; the
  majority class.
- `reference`: the baselines every `rnnkit fit` / `rnnkit test` reports, and the plain verdict.
"""

from rnnkit.evaluate.baselines import (
    NGram,
    majority_class,
    naive_forecast,
    seasonal_naive_forecast,
)
from rnnkit.evaluate.metrics import (
    accuracy,
    bits_per_token,
    detection_scores,
    macro_f1,
    mae,
    mase,
    rmse,
)
from rnnkit.evaluate.splits import kfold, stratified_holdout, walk_forward

__all__ = [
    "NGram",
    "accuracy",
    "bits_per_token",
    "detection_scores",
    "kfold",
    "macro_f1",
    "mae",
    "majority_class",
    "mase",
    "naive_forecast",
    "rmse",
    "seasonal_naive_forecast",
    "stratified_holdout",
    "walk_forward",
]
