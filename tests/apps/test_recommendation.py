"""Next-item recommendation on MovieLens-100K: the loader, the metrics, and the CI-sized app."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from rnnkit.apps import app_config, run_app
from rnnkit.apps.recommendation import model_scores, rank_metrics, ranks, run
from rnnkit.data import load
from rnnkit.models import LanguageModel, LanguageModelConfig


def test_movielens_loader_leave_one_out() -> None:
    d = load("movielens_100k")
    assert d.val is not None
    assert d.meta["n_items"] == 1682 and len(d.meta["titles"]) == 1682
    assert len(d.train) == len(d.val) == len(d.test) == 943
    assert sum(d.test.lengths) + len(d.test) == 100_000  # every rating used once
    for i in (0, 100, 942):
        train, val_hist, test_hist = d.train[i][0], d.val[i][0], d.test[i][0]
        assert torch.equal(train, val_hist)  # validation history = training part
        assert torch.equal(test_hist[:-1], val_hist)  # test history = that + the validation item
        assert int(test_hist[-1]) == d.val.labels[i]
        assert 1 <= int(test_hist.min()) and int(test_hist.max()) <= 1682  # 0 is padding
    assert d.meta["titles"][0] == "Toy Story"


def test_movielens_bad_file_names_the_column(tmp_path) -> None:
    bad = tmp_path / "x.inter"
    bad.write_text("user_id:token\titem_id:token\trating:float\n1\t2\t3\n")
    with pytest.raises(ValueError, match="timestamp:float"):
        load("movielens_100k", path=bad)
    bad.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t5\n1\tx\t3\t6\n"
    )
    with pytest.raises(ValueError, match=r"row 3, column 'item_id:token'"):
        load("movielens_100k", path=bad)


def test_rank_metrics_by_hand() -> None:
    scores = torch.tensor([[0.0, 3.0, 2.0, 1.0], [0.0, 1.0, 1.0, 5.0]])
    r = ranks(scores, torch.tensor([2, 1]))
    assert r.tolist() == [2, 3]  # the tie at 1.0 counts against the target
    m = rank_metrics(r, 2)
    assert m["hr@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx(0.5 / np.log2(3))
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)


@pytest.mark.parametrize("tie", [False, True])
def test_model_scores_are_the_last_step_logits(tie: bool) -> None:
    torch.manual_seed(0)
    config = LanguageModelConfig(
        vocab_size=12, embedding_dim=6, cell="gru", hidden_size=8, tie_weights=tie
    )
    model = LanguageModel(config).train()
    histories = [torch.randint(1, 12, (n,)) for n in (5, 1, 3, 5, 2)]
    scores = model_scores(model, histories, batch_size=2)
    assert model.training  # put back in its previous mode
    model.eval()
    for h, row in zip(histories, scores, strict=True):
        torch.testing.assert_close(row, model(h[None]).logits[0, -1])


def test_bad_recipe_field_is_named(tmp_path) -> None:
    cfg = app_config("recommendation", quick=True)
    broken = copy.deepcopy(cfg)
    broken["eval"]["k"] = 0
    with pytest.raises(ValueError, match=r"'eval\.k'"):
        run(broken, seeds=[0], out_dir=tmp_path, quick=True)
    broken = copy.deepcopy(cfg)
    broken["experiment"]["optim"]["lr"] = -1
    with pytest.raises(ValueError, match=r"'experiment': optim\.lr must be a finite number > 0"):
        run(broken, seeds=[0], out_dir=tmp_path, quick=True)


def test_quick_run_beats_popularity(tmp_path) -> None:
    records = run_app("recommendation", quick=True, seeds=[0], out_dir=tmp_path)
    vs_pop = {r["metric"]: r for r in records if r["baseline"] == "most popular"}
    assert set(vs_pop) == {"HR@10", "NDCG@10"}
    for r in vs_pop.values():
        assert r["value"] > r["baseline_value"] > 0, r  # an untrained GRU ranks near random
    assert any(r["baseline"].startswith("Markov") for r in records)
    assert (tmp_path / "hit_rate.png").is_file() and (tmp_path / "validation.png").is_file()
    run_dir = tmp_path / "runs" / "recommendation-seed0"  # a normal run directory
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["monitor"] == "val_ndcg@10" and summary["monitor_mode"] == "max"
    assert summary["best_checkpoint"] is not None  # the monitored metric was found and used
    assert 0 < summary["metrics"]["val_ndcg@10"] <= 1
    assert (run_dir / "artifact" / "model.safetensors").is_file()
