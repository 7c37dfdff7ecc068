"""Next-item recommendation on MovieLens-100K: the loader, the metrics, and the CI-sized app."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.apps import app_config, run_app
from rnnkit.apps._common import torch_threads
from rnnkit.apps.recommendation import check_config, model_scores, rank_metrics, run
from rnnkit.cli import main as cli
from rnnkit.data import load
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.train.predict import target_ranks as ranks


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


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("eval", "topk"), 5,
         r"^recommendation recipe: unknown key 'eval\.topk'; valid keys of 'eval': k, exclude_"),
        (("evaluation",), {"k": 5},
         r"^recommendation recipe: unknown key 'evaluation\.k'; valid keys at the top level: da"),
        (("eval", "k"), "ten", r"^recommendation recipe: eval\.k: Expected a int\. Got value: ten"),
        (("baselines", "markov_smoothing"), ["a"], r"markov_smoothing: Expected a float"),
        (("data", "name"), "ml-1m", r"^recommendation recipe: data\.name: .*Got value: ml-1m"),
        (("eval", "k"), 0, r"^recommendation recipe: eval\.k must be >= 1, got 0$"),
        (("eval", "curve_k"), -3, r"eval\.curve_k must be >= 1, got -3"),
        (("data", "max_users"), 0, r"data\.max_users must be null or >= 1, got 0"),
        (("baselines", "markov_smoothing"), [], r"baselines\.markov_smoothing must be a non-empty"),
        (("experiment", "optim", "lr"), -1,
         r"^recommendation recipe, field 'experiment': optim\.lr must be a finite number > 0"),
        (("experiment", "trainer", "max_epoch"), 3,
         r"field 'experiment': unknown key 'trainer\.max_epoch'"),
    ],
)  # fmt: skip
def test_bad_recipe_is_one_line_naming_the_field(
    tmp_path, path: tuple, value: object, message: str
) -> None:
    cfg = app_config("recommendation", quick=True)
    check_config(cfg)  # the shipped recipe is fine
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message) as err:
        run(cfg, seeds=[0], out_dir=tmp_path, quick=True)  # checked before anything loads
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_settings_match_the_shipped_recipe() -> None:
    for quick in (False, True):
        cfg = app_config("recommendation", quick=quick)
        settings = check_config(cfg)
        assert vars(settings.eval) == cfg["eval"]
        assert settings.data.name == cfg["data"]["name"]
        assert settings.data.min_rating == cfg["data"]["min_rating"]
        assert settings.data.max_users == cfg["data"]["max_users"]
        assert settings.baselines.markov_smoothing == cfg["baselines"]["markov_smoothing"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """The CI-sized app, once for the tests below (one torch thread, as the others run)."""
    out = tmp_path_factory.mktemp("recommendation")
    with torch_threads(1):
        records = run_app("recommendation", quick=True, seeds=[0], out_dir=out)
    return out, records


def test_quick_run_beats_popularity(quick_run: tuple[Path, list[dict]]) -> None:
    tmp_path, records = quick_run
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


def test_rnnkit_test_and_predict_read_the_run(
    quick_run: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    """The run keeps its test split (each user's history + held-out item): `rnnkit test` scores
    it, and `rnnkit predict` ranks each held-out item as the app does (same HR@10 and MRR)."""
    out, records = quick_run
    run_dir = out / "runs" / "recommendation-seed0"
    art = json.loads((run_dir / "artifact" / "model.json").read_text())
    assert {"test_split.safetensors", "data_meta.json"} <= art["sha256"].keys()  # sealed

    assert cli(["test", "--run", str(run_dir)]) == 0
    test = json.loads((run_dir / "summary.json").read_text())["test"]["metrics"]
    assert 0 < test["test_loss"] < math.log(1683)  # nats per item: better than uniform

    path = tmp_path / "pred.csv"
    assert cli(["predict", "--run", str(run_dir), "--out", str(path)]) == 0
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    d = load("movielens_100k")
    assert len(rows) == len(d.test) == 943
    hits = []
    for row, hist, target in zip(rows, d.test.sequences, d.test.labels, strict=True):
        top = [int(i) for i in row["prediction"].split()]
        assert len(top) == 10 and int(row["target"]) == target
        assert 0 not in top and not set(top) & set(hist.tolist())  # nothing already rated
        assert (int(row["rank"]) <= 10) == (target in top)
        assert row["target_name"] == d.meta["titles"][target - 1]
        assert row["prediction_names"].split(" | ")[0] == d.meta["titles"][top[0] - 1]
        hits.append(int(row["rank"]) <= 10)
    app = {r["metric"]: r["values"][0] for r in records if r["baseline"].startswith("Markov")}
    assert np.mean(hits) == pytest.approx(app["HR@10"], abs=1e-12)
    mrr = np.mean([1 / int(r["rank"]) for r in rows])
    assert mrr == pytest.approx(app["MRR"], rel=1e-9)

    assert cli(["predict", "--run", str(run_dir), "--out", str(path), "--top_k", "3"]) == 0
    with path.open(newline="", encoding="utf-8") as f:
        assert all(len(r["prediction"].split()) == 3 for r in csv.DictReader(f))
