"""The shared application plumbing: recipes, records, splits, metrics and baselines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from rnnkit.apps import APPS, app_config
from rnnkit.apps._common import record, settings_from_dict
from rnnkit.evaluate import (
    NGram,
    detection_scores,
    kfold,
    mase,
    naive_forecast,
    seasonal_naive_forecast,
    walk_forward,
)


def test_every_app_has_a_recipe_and_a_doc() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "apps"
    for name in APPS:
        cfg = app_config(name)
        assert cfg.get("app", name) == name
        assert (docs / f"{name}.md").is_file(), f"docs/apps/{name}.md missing"


def test_unknown_app_and_bad_recipe(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown application"):
        app_config("nope")
    bad = tmp_path / "x.yaml"
    bad.write_text("app: dates\n")
    with pytest.raises(ValueError, match="expected 'sentiment'"):
        app_config("sentiment", bad)


def test_record_summarises_seeds() -> None:
    r = record(
        app="a",
        dataset="d",
        model="m",
        metric="acc",
        higher_is_better=True,
        values=[0.8, 0.9, 1.0],
        baseline="b",
        baseline_values=0.85,
        seeds=[0, 1, 2],
        wall_s=3.0,
    )
    assert r["value"] == pytest.approx(0.9) and r["spread"] == pytest.approx(0.1)
    assert r["beats_baseline"] is True


def test_walk_forward_never_sees_the_future() -> None:
    origins = walk_forward(100, horizon=12, folds=3, min_train=40)
    assert [o.train_end for o in origins] == [64, 76, 88]
    assert origins[-1].test_end == 100
    with pytest.raises(ValueError, match="min_train"):
        walk_forward(50, horizon=12, folds=4, min_train=30)


def test_kfold_partitions_and_stratifies() -> None:
    labels = np.array([0] * 30 + [1] * 10)
    seen = []
    for train, test in kfold(40, 5, labels=labels):
        assert not set(train) & set(test)
        assert (labels[test] == 1).sum() == 2
        seen.extend(test)
    assert sorted(seen) == list(range(40))


def test_mase_and_naive_forecasts() -> None:
    train = np.arange(24.0) % 12
    assert seasonal_naive_forecast(train, 14, 12).tolist() == [*range(12), 0, 1]
    assert naive_forecast(train, 3).tolist() == [11, 11, 11]
    assert mase(train[:12], seasonal_naive_forecast(train, 12, 12), train, season=1) == 0.0


def test_bigram_beats_unigram_on_structured_tokens() -> None:
    seqs = [[0, 1, 2, 3] * 20 for _ in range(5)]
    uni = NGram(4, order=1).fit(seqs)
    bi = NGram(4, order=2).fit(seqs)
    assert uni.bits(seqs) == pytest.approx(2.0, abs=1e-3)
    assert bi.bits(seqs) < 0.2
    with pytest.raises(ValueError, match="token ids"):
        NGram(3).fit([[0, 5]])


def test_detection_scores() -> None:
    y = np.array([0, 0, 1, 1])
    s = detection_scores(y, [0.1, 0.2, 0.8, 0.3], [0, 0, 1, 0])
    assert s["precision"] == 1.0 and s["recall"] == 0.5 and s["roc_auc"] == 1.0
    assert math.isnan(detection_scores([0, 0], [0.1, 0.2], [0, 0])["roc_auc"])


def test_skip_first_scores_only_the_predicted_tokens() -> None:
    seqs = [[0, 1, 2, 3, 1], [2, 3]]
    for order in (1, 2):
        g = NGram(4, order=order, k=0.5).fit(seqs)
        n = sum(len(s) for s in seqs)
        firsts = g.nll([[s[0]] for s in seqs]) * len(seqs)  # unigram cost of each first token
        expected = (g.nll(seqs) * n - firsts) / (n - len(seqs))
        assert g.nll(seqs, skip_first=True) == pytest.approx(expected)
    assert NGram(4, order=1).fit(seqs).nll([[1], [2, 3]], skip_first=True) == pytest.approx(
        NGram(4, order=1).fit(seqs).nll([[3]])
    )


@dataclass
class _Own:
    horizon: int
    kinds: list[Literal["a", "b"]] = field(default_factory=lambda: ["a"])

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"field 'horizon' must be >= 1, got {self.horizon}")


def test_settings_from_dict_parses_typed_app_keys_with_one_line_errors() -> None:
    assert settings_from_dict(_Own, {"horizon": 3, "kinds": ["b"]}, where="x") == _Own(3, ["b"])
    cases = {
        "unknown key 'horizn'; valid keys at the top level: horizon, kinds": {"horizn": 3},
        "field 'horizon' must be >= 1, got 0": {"horizon": 0},
        "kinds: Expected a typing.Literal['a', 'b']": {"horizon": 1, "kinds": ["c"]},
    }
    for message, data in cases.items():
        with pytest.raises(ValueError, match=r"^demo recipe: ") as err:
            settings_from_dict(_Own, data, where="demo recipe")
        assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
