"""Date normalisation: the generator's conventions, the parser baseline, and a CI-sized run."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.apps._common import app_settings
from rnnkit.apps.dates import Settings, dateutil_parse, nets
from rnnkit.cli import main as cli
from rnnkit.data.dates import all_formats, make_splits, render
from rnnkit.train.trainer import evaluate


def test_generator_is_seeded_disjoint_and_consistent() -> None:
    kw = dict(n_train=400, n_val=50, n_test=80, n_heldout=20, heldout_formats=["weekday_de"])
    a, b = make_splits(seed=3, **kw), make_splits(seed=3, **kw)  # type: ignore[arg-type]
    assert a.train == b.train and a.test_heldout == b.test_heldout
    train_days = {t for _, t, _ in a.train}
    assert not train_days & {t for _, t, _ in a.test}  # test dates never seen in training
    assert not train_days & {t for _, t, _ in a.test_heldout}
    assert "weekday_de" not in {f for _, _, f in a.train}
    assert {f for _, _, f in a.test_heldout} == {"weekday_de"}


def test_formats_follow_the_stated_conventions() -> None:
    rng = np.random.default_rng(0)
    day = dt.date(1987, 3, 4)  # a Wednesday
    assert render("iso", day, rng) == "1987-03-04"
    slash = render("mdy_slash", day, rng)
    assert slash.split("/")[:2] in (["3", "4"], ["03", "04"])  # month first
    dot = render("dmy_dot", day, rng)
    assert dot.split(".")[:2] in (["4", "3"], ["04", "03"])  # day first
    for _ in range(10):
        assert render("weekday_de", day, rng).startswith(("Mittwoch", "Mi."))
        assert render("weekday_fr", day, rng).startswith(("mercredi", "mer."))
    with pytest.raises(ValueError, match="unknown date format"):
        render("long_xx", day, rng)
    assert len(all_formats()) == 25


def test_parser_baseline_reads_english_but_not_french() -> None:
    assert dateutil_parse("Tuesday, 3rd of March 1987") == "1987-03-03"
    assert dateutil_parse("03.03.87") == "1987-03-03"  # the stated two-digit pivot
    assert dateutil_parse("03.03.49") == "2049-03-03"
    assert dateutil_parse("3 juillet 1987") != "1987-07-03"


def _check(cfg: dict) -> None:
    """What `run` checks before it fits anything: the app's keys, then every experiment."""
    nets(cfg, app_settings(Settings, cfg, app="dates"))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("experiment", "trainer", "max_steps"), 0, r"field 'experiment': trainer\.max_steps must"),
        (("experiment", "optim", "lr"), -1.0, r"field 'experiment': optim\.lr must be"),
        (("data", "n_train"), "many", r"^dates recipe: data\.n_train: Expected a int"),
        (("data", "heldout_formats"), ["weekday_xx"], r"data\.heldout_formats: \['weekday_xx'\]"),
        (("variants", 1, "experiment", "model", "attention"), "luong",
         r"field 'variants\[1\]\.experiment': model\.attention: .*Got value: luong"),
        (("variants", 1, "steps"), 2000,
         r"unknown key 'variants\.steps'; valid keys of 'variants': name, experiment"),
        (("train",), {"steps": 500},
         r"unknown key 'train\.steps'; valid keys at the top level: data, variants"),
    ],
)  # fmt: skip
def test_bad_recipe_is_one_line_naming_the_field(path: tuple, value: object, message: str) -> None:
    cfg = app_config("dates", quick=True)
    _check(cfg)  # the shipped recipe is fine
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message) as err:
        _check(cfg)
    assert "\n" not in str(err.value)


def test_variants_need_distinct_names() -> None:
    cfg = app_config("dates", quick=True)
    cfg["variants"].append({"experiment": {"model": {"attention": "bahdanau"}}})
    with pytest.raises(ValueError, match="two entries with one name"):
        _check(cfg)


def test_quick_run_beats_the_trivial_baseline(tmp_path) -> None:
    records = run_app("dates", quick=True, seeds=[0], out_dir=tmp_path)
    main = [r for r in records if r["model"].endswith("attention") and r["metric"] == "exact match"]
    trivial = next(r for r in main if r["baseline"].startswith("most frequent"))
    assert trivial["value"] > trivial["baseline_value"] + 0.2
    char = next(r for r in records if r["metric"] == "char accuracy" and "Bahdanau" in r["model"])
    assert char["value"] > char["trivial_char_accuracy"]
    assert (tmp_path / "attention.png").is_file() and (tmp_path / "per_format.png").is_file()
    head = main[0]
    # the trainer scores the test split the run stored (its one decoder loop for the loss and
    # the greedy tokens) to the exact match the app got from `Seq2Seq.decode`
    scored = evaluate(head["runs"][0], stage="test")
    assert scored["test_exact_match"] == pytest.approx(head["values"][0])
    # every seed and variant is a normal run directory (config, checkpoints, artifact, summary)
    runs = (
        head["runs"] + next(r for r in records if "no attention" in r["baseline"])["baseline_runs"]
    )
    for run in runs:
        summary = json.loads((Path(run) / "summary.json").read_text())
        assert summary["task"] == "seq2seq" and summary["monitor"] == "val_exact_match"
        assert summary["monitor_mode"] == "max" and summary["steps"] == 250
        assert (Path(run) / "artifact" / "model.safetensors").is_file()
        assert (Path(run) / "checkpoints" / "best.ckpt").is_file()
    # `rnnkit predict` reads the test split the run stored: ISO strings against ISO strings
    out = tmp_path / "pred.csv"
    assert cli(["predict", "--run", head["runs"][0], "--out", str(out)]) == 0
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == head["n_test"]
    assert all(dt.date.fromisoformat(r["target"]) for r in rows)
    assert np.mean([r["prediction"] == r["target"] for r in rows]) == pytest.approx(
        head["values"][0]
    )
