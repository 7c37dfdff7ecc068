"""Tests of rnnkit.data.series: CSV entry checks, missing values, categories, scalers, windows,
splits."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data.series import (
    CategoryEncoder,
    Imputer,
    Scaler,
    load_csv,
    make_scaler,
    make_windows,
    missing_report,
    prepare_forecasting,
)


def _csv(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_columns_time_and_missing(tmp_path: Path) -> None:
    path = _csv(tmp_path, "t,y,x,c\n2020-01-01,1,5,a\n2020-01-02,,6,b\n2020-01-03,3,NA,\n")
    frame = load_csv(path, target="y", time="t", numeric=["x"], categorical=["c"])
    assert list(frame.columns) == ["y", "x", "c"]
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert missing_report(frame) == {"y": 1, "x": 1, "c": 1}
    assert frame.attrs["rows"] == [2, 3, 4]


@pytest.mark.parametrize(
    ("text", "opts", "message"),
    [
        ("y\n1\nabc\n", {}, r"s\.csv row 3, column 'y': 'abc' is not a number$"),
        ("y\n1\ninf\n", {}, r"s\.csv row 3, column 'y': 'inf' is not a finite number$"),
        (
            "a,b\n1,2\n",
            {},
            r"s\.csv row 1, column 'y': no such column; the header has \['a', 'b'\]$",
        ),
        ("y,x\n,1\nNA,2\n", {}, r"s\.csv rows 2-3, column 'y': every value is missing$"),
        (
            "y,x\n1,2\n3\n",
            {},
            r"s\.csv row 3, column 2: 1 fields but the header has 2 \(ragged row\)$",
        ),
        (
            "y,x\n1,2\n3,4,5\n",
            {},
            r"s\.csv row 3, column 3: 3 fields but the header has 2 \(ragged row\)$",
        ),
        ("y\n", {}, r"s\.csv: the header has no data rows under it$"),
        ("\n\n", {}, r"s\.csv: no header row \(the file holds only blank lines\)$"),
        ("y,y\n1,2\n", {}, r"s\.csv row 1: repeated column names \['y'\]$"),
        ("y\n1\n\n2\n", {"missing": "error"}, None),
        ("y\n1\nNA\n", {"missing": "error"}, r"s\.csv row 3, column 'y': value is missing$"),
        (
            "t,y\n2,1\n1,2\n",
            {"time": "t"},
            r"s\.csv row 3, column 't': '1' does not come after '2'; rows must be in time order$",
        ),
        (
            "t,y\n2020-01-01,1\nsoon,2\n",
            {"time": "t"},
            r"s\.csv row 3, column 't': 'soon' is not a time$",
        ),
    ],
)
def test_load_csv_bad_input(tmp_path: Path, text: str, opts: dict, message: str | None) -> None:
    path = _csv(tmp_path, text)
    if message is None:
        assert load_csv(path, target="y", **opts)["y"].tolist() == [1.0, 2.0]
        return
    with pytest.raises(ValueError, match=f"^{tmp_path}/{message}"):
        load_csv(path, target="y", **opts)


def test_load_csv_empty_and_non_utf8(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"^{empty}: file is empty$"):
        load_csv(empty, target="y")
    bad = tmp_path / "b.csv"
    bad.write_bytes(b"y\n1\n\xe92\n")
    with pytest.raises(
        ValueError, match=rf"^{bad} line 3, column 1: byte 0xe9 is not valid UTF-8$"
    ):
        load_csv(bad, target="y")


@given(st.text(alphabet=st.sampled_from(list('y,x\n"1.5-NA a\r;')), max_size=80))
def test_fuzz_csv_raises_only_value_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_text(text, encoding="utf-8")
        try:
            frame = load_csv(path, target="y", numeric=["x"] if "x" in text else [])
        except ValueError as err:
            assert str(path) in str(err)
            return
        assert frame["y"].notna().any()


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("ffill", [1.0, 1.0, 3.0, 3.0]),
        ("interpolate", [1.0, 2.0, 3.0, 3.0]),
        ("mean", [1.0, 2.0, 3.0, 2.0]),
    ],
)
def test_imputer_methods(method: str, expected: list[float]) -> None:
    frame = pd.DataFrame({"v": [1.0, np.nan, 3.0, np.nan]})
    out = Imputer(method, columns=["v"]).fit(frame).transform(frame)  # type: ignore[arg-type]
    assert out["v"].tolist() == expected


def test_imputer_mask_adds_indicator_and_error_names_column() -> None:
    frame = pd.DataFrame({"v": [np.nan, 2.0, 4.0]})
    out = Imputer("mask", columns=["v"]).fit(frame).transform(frame)
    assert out["v"].tolist() == [3.0, 2.0, 4.0] and out["v_missing"].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"^data column 'v': value at position 0 is missing"):
        Imputer("error", columns=["v"]).fit(frame).transform(frame)


def test_category_encoder_unknown_id() -> None:
    enc = CategoryEncoder().fit(["b", "a", "b", None])
    assert enc.categories == ["a", "b"] and enc.n_ids == 3
    assert enc.transform(["a", "b", "zzz", None]).tolist() == [1, 2, 0, 0]
    hot = CategoryEncoder(mode="onehot").fit(["a"]).transform(["a", "new"])
    assert hot.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert CategoryEncoder.from_dict(enc.to_dict()).categories == ["a", "b"]


@pytest.mark.parametrize("kind", ["standard", "minmax", "robust"])
def test_scalers_round_trip_and_save(kind: str, tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(3, 2, size=(50, 3))
    x[:, 2] = 7.0  # constant column: scale 1, no division by zero
    scaler = make_scaler(kind).fit(x)  # type: ignore[arg-type]
    z = scaler.transform(x)
    np.testing.assert_allclose(scaler.inverse_transform(z), x)
    scaler.save(tmp_path / "s.json")
    loaded = Scaler.load(tmp_path / "s.json")
    np.testing.assert_allclose(loaded.transform(x), z)
    t = torch.as_tensor(z[:, :2], dtype=torch.float32)
    back = loaded.inverse_transform(t, columns=[0, 1])
    torch.testing.assert_close(back, torch.as_tensor(x[:, :2], dtype=torch.float32))


def test_scaler_errors() -> None:
    with pytest.raises(
        ValueError, match=r"^StandardScaler is not fitted; call fit on the training split$"
    ):
        make_scaler("standard").transform(np.ones((2, 1)))
    with pytest.raises(
        ValueError, match=r"^cannot fit a scaler: column 1 has only missing values$"
    ):
        make_scaler("standard").fit(np.array([[1.0, np.nan], [2.0, np.nan]]))


def test_make_windows_shapes_and_too_short() -> None:
    values = np.arange(20, dtype=np.float64).reshape(10, 2)
    x, y = make_windows(values, input_len=3, horizon=2, stride=2, targets=[1])
    assert x.shape == (3, 3, 2) and y.shape == (3, 2, 1)
    assert x[1, :, 0].tolist() == [4.0, 6.0, 8.0] and y[1, :, 0].tolist() == [11.0, 13.0]
    with pytest.raises(
        ValueError,
        match=r"^s\.csv: 4 steps are shorter than one window \(input_len 3 "
        r"\+ horizon 2 = 5 steps\)$",
    ):
        make_windows(values[:4], input_len=3, horizon=2, source="s.csv")


def test_prepare_forecasting_has_no_future_leak() -> None:
    n = 100
    frame = pd.DataFrame({"y": np.arange(n, dtype=np.float64), "c": ["a", "b"] * 50})
    data = prepare_forecasting(
        frame,
        targets=["y"],
        categorical=["c"],
        input_len=5,
        horizon=3,
        scaler="minmax",
        val_size=0.2,
        test_size=0.2,
    )
    step = lambda t: data.inverse_targets(t).round()  # noqa: E731  (scaled value -> time step)
    assert data.scaler.shift is not None and data.scaler.scale is not None
    assert (data.scaler.shift[0], data.scaler.shift[0] + data.scaler.scale[0]) == (0.0, 59.0)
    assert step(data.train.y).max() == 59  # training targets end where training rows end
    assert step(data.train.x[..., :1]).max() < 59  # and so do training inputs
    assert data.val is not None and step(data.val.y).min() == 60 and step(data.val.y).max() == 79
    assert step(data.test.y).min() == 80
    assert data.columns == ["y", "c=<unk>", "c=a", "c=b"]
    assert not torch.isnan(data.train.x).any()


def test_prepare_forecasting_split_shorter_than_window() -> None:
    frame = pd.DataFrame({"y": np.arange(30.0)})
    frame.attrs["source"] = "tiny.csv"
    with pytest.raises(
        ValueError,
        match=r"^tiny\.csv val split, columns \['y'\]: steps 24-26 hold no window of horizon 4 "
        r"after input_len 4 earlier steps$",
    ):
        prepare_forecasting(frame, targets=["y"], input_len=4, horizon=4, val_size=3, test_size=3)
