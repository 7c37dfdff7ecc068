"""Encoders fitted on the training split, time splits of long series, baselines and the verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.formats import read_long_series, read_texts, read_wide
from rnnkit.data.formats.encode import PairEncoder, SequenceEncoder, TextEncoder, holdout
from rnnkit.data.formats.forecast import fit_windows, season_of, split_series
from rnnkit.evaluate.reference import forecast_baselines, series_baselines, verdict


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_holdout_is_seeded_and_stratified() -> None:
    labels = ["a"] * 80 + ["b"] * 20
    keep, held = holdout(100, 0.2, seed=3, labels=labels)
    assert sorted([*keep, *held]) == list(range(100))
    assert sum(labels[i] == "b" for i in held) == 4 and len(held) == 20
    again = holdout(100, 0.2, seed=3, labels=labels)[1]
    np.testing.assert_array_equal(held, again)
    assert not np.array_equal(held, holdout(100, 0.2, seed=4, labels=labels)[1])


def test_unknown_label_in_test_names_row_and_column(tmp_path: Path) -> None:
    train = read_wide(_write(tmp_path, "tr.csv", "label,t0,t1\na,1,2\nb,3,4\n"))
    enc = SequenceEncoder.fit(train)
    assert enc.classes == ["a", "b"]
    test = read_wide(_write(tmp_path, "te.csv", "label,t0,t1\na,1,2\nc,3,4\n"))
    with pytest.raises(ValueError) as err:
        enc.dataset(test)
    assert str(err.value) == (
        f"{tmp_path / 'te.csv'} row 3, column 'label': label 'c' is not among the training "
        "labels ['a', 'b']"
    )
    # Scaling uses training statistics only: the test rows are scaled, never refitted.
    state = SequenceEncoder.from_dict(enc.to_dict())
    np.testing.assert_allclose(state.inputs(train)[0][:, 0], [-1.3416, -0.4472], atol=1e-4)


def test_text_and_pair_encoders_round_trip_through_json(tmp_path: Path) -> None:
    texts = read_texts(_write(tmp_path, "t.csv", "text,label\nGood film,1\nbad film,0\n"))
    enc = TextEncoder.fit(texts, level="word", lower=True)
    again = TextEncoder.from_dict(enc.to_dict())
    np.testing.assert_array_equal(again.ids("good FILM unseen"), enc.ids("good film unseen"))
    assert again.ids("unseen")[0] == enc.vocab.unk_id and again.classes == ["0", "1"]
    pairs = read_texts(_write(tmp_path, "p.tsv", "s\tt\nab\tba\n"), text_col="s", label_col="t")
    pair = PairEncoder.fit(pairs, level="char")
    target = pair.dataset(pairs).labels[0]  # <bos> b a <eos>
    assert pair.decode(np.asarray(target)[1:]) == "ba"


def test_time_split_with_test_file_and_what_fits(tmp_path: Path) -> None:
    rows = "\n".join(f"A,{k},{k % 4}" for k in range(20))
    train = read_long_series(_write(tmp_path, "tr.csv", "unique_id,ds,y\n" + rows))
    test = read_long_series(_write(tmp_path, "te.csv", "unique_id,ds,y\nA,20,0\nA,21,1\n"))
    parts = split_series(
        train, val=None, test=test, val_size=2, test_size=0.5, input_len=4, horizon=2
    )
    assert (parts[0].train_end, parts[0].val_end, len(parts[0].series)) == (18, 20, 22)
    late = read_long_series(_write(tmp_path, "late.csv", "unique_id,ds,y\nA,25,0\nA,26,1\n"))
    with pytest.raises(ValueError, match=r"series 'A' must continue at 20 .* not 25"):
        split_series(train, val=None, test=late, val_size=2, test_size=2, input_len=4, horizon=2)
    with pytest.raises(ValueError, match=r"keeps 16 training steps, .* data.seq_len <= 14 would"):
        split_series(train, val=None, test=None, val_size=2, test_size=2, input_len=30, horizon=2)
    _, (tr, va, te), naive = fit_windows(
        parts, columns=["y"], n_past=0, input_len=4, horizon=2, freq="1"
    )
    assert (len(tr), len(va), len(te)) == (13, 1, 1) and naive > 0
    assert season_of("MS") == 12 and season_of("D") == 7 and season_of("h") == 24


def test_baselines_and_verdict() -> None:
    season = np.tile([0.0, 1.0, 2.0, 1.0], 10)
    scores = forecast_baselines([season], [[32, 34, 36]], horizon=4, season=4, naive_scale=1.0)
    assert scores["seasonal_naive"]["mae"] == 0.0 and scores["naive"]["mae"] > 0
    xs = [np.zeros((5, 1)), np.ones((5, 1))]
    got = series_baselines((xs, [0, 1]), ([np.full((5, 1), 0.9)], [1]))
    assert got["1nn_euclidean"]["accuracy"] == 1.0 and got["1nn_dtw"]["accuracy"] == 1.0
    assert scores["ets"]["mae"] < 1e-6  # a clean season is what ETS models exactly
    v = verdict("forecasting", {"mae": 0.3}, scores)
    assert v["beats"] == ["naive"] and v["loses_to"] == ["seasonal_naive", "ets"]
    assert v["line"].startswith("model mae 0.3; beats naive (last value) (0.5); loses to seasonal")
    tie = verdict("forecasting", {"mae": 0.5}, scores)
    assert tie["beats"] == []  # a tie does not beat
