"""The user-file readers of rnnkit.data.formats: what they return, and each bad input's message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.formats import (
    check_window,
    read_conll,
    read_long,
    read_long_series,
    read_texts,
    read_ts,
    read_wide,
)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


LONG = (
    "unique_id,ds,y\nA,2020-01-01,1\nA,2020-01-02,2\nA,2020-01-03,3\n"
    "B,2020-01-01,5\nB,2020-01-02,6\nB,2020-01-03,7\n"
)


def test_long_series_reads_many_series_and_infers_daily_frequency(tmp_path: Path) -> None:
    data = read_long_series(_write(tmp_path, "s.csv", LONG))
    assert [s.id for s in data.series] == ["A", "B"]
    assert data.freq == "D"
    np.testing.assert_array_equal(data.series[1].values[:, 0], [5, 6, 7])
    assert data.series[1].lines == [5, 6, 7]
    assert data.next_times(data.series[0], 2) == ["2020-01-04T00:00:00", "2020-01-05T00:00:00"]


def test_long_series_numeric_times_covariates_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"sid": ["a"] * 4, "t": [0, 2, 4, 6], "v": [1.0, 2, 3, 4], "temp": [9.0, 8, 7, 6]}
    )
    path = tmp_path / "s.parquet"
    frame.to_parquet(path)
    data = read_long_series(
        path, id_col="sid", time_col="t", target_col="v", future_covariates=["temp"]
    )
    assert data.freq == "2" and data.columns == ["v", "temp"]
    np.testing.assert_array_equal(data.series[0].values[:, 1], [9, 8, 7, 6])
    assert data.next_times(data.series[0], 1) == ["8"]


def test_monthly_frequency_is_inferred_and_a_gap_is_named(tmp_path: Path) -> None:
    rows = ["unique_id,ds,y"] + [f"x,1949-{m:02d}-01,{m}" for m in (1, 2, 3, 4, 6)]
    with pytest.raises(ValueError) as err:
        read_long_series(_write(tmp_path, "m.csv", "\n".join(rows)))
    assert str(err.value) == (
        f"{tmp_path / 'm.csv'} row 6, column 'ds': gap in series 'x': expected "
        "1949-05-01T00:00:00 after 1949-04-01T00:00:00 at frequency MS, got 1949-06-01T00:00:00; "
        "fill the missing steps"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "unique_id,ds\nA,1\n",
            "row 1, column 'y': no such column; the file has ['unique_id', 'ds']",
        ),
        ("unique_id,ds,y\nA,1,2\nA,2,x\n", "row 3, column 'y': 'x' is not a number"),
        ("unique_id,ds,y\nA,1,2\nA,2,inf\n", "row 3, column 'y': 'inf' is not a finite number"),
        ("unique_id,ds,y\nA,1,2\nA,2,\n", "row 3, column 'y': value is missing"),
        (
            "unique_id,ds,y\nA,1,2\nA,1,3\n",
            "row 3, column 'ds': duplicate time 1 in series 'A' (also row 2)",
        ),
        (
            "unique_id,ds,y\nA,2,2\nA,1,3\n",
            "row 3, column 'ds': 1 comes before 2 of row 2 in series 'A'; sort each series by time",
        ),
        (
            "unique_id,ds,y\nA,1,2\nA,2\n",
            "row 3, column 3: 2 fields but the header has 3 (ragged row)",
        ),
        (
            "unique_id,ds,y\nA,1,2\nA,2,3\nA,4,5\n",
            "row 4, column 'ds': gap in series 'A': expected 3",
        ),
        ("unique_id,ds,y\nA,monday,2\n", "row 2, column 'ds': 'monday' is not a date or a number"),
        ("unique_id,ds,y\n", "the header has no data rows under it"),
        ("", "file is empty"),
    ],
)
def test_long_series_errors_name_file_row_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, "s.csv", text)
    with pytest.raises(ValueError) as err:
        read_long_series(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_encoding_and_bom(tmp_path: Path) -> None:
    latin = _write(tmp_path, "l.csv", "unique_id,ds,y\ncaf\xe9,1,2\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"l.csv line 2, column 4: byte 0xe9 is not valid UTF-8"):
        read_long_series(latin)
    bom = _write(tmp_path, "b.csv", ("\ufeff" + LONG).encode("utf-8"))
    assert read_long_series(bom).id_col == "unique_id"


def test_short_series_error_says_what_fits(tmp_path: Path) -> None:
    data = read_long_series(_write(tmp_path, "s.csv", LONG))
    with pytest.raises(ValueError) as err:
        check_window(data, input_len=3, horizon=1)
    assert str(err.value) == (
        f"{tmp_path / 's.csv'} rows 2-4: series 'A' has 3 steps, shorter than input 3 + horizon 1 "
        "= 4; data.seq_len <= 2 would fit"
    )


def test_unknown_frequency_alias(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data.freq 'fortnight' is not a pandas frequency"):
        read_long_series(_write(tmp_path, "s.csv", LONG), freq="fortnight")


TS = """# a comment
@problemName Toy
@univariate true
@equalLength true
@seriesLength 3
@classLabel true a b
@data
1,2,3:a
4,5,6:b
"""


def test_ts_reads_labels_and_declared_classes(tmp_path: Path) -> None:
    data = read_ts(_write(tmp_path, "t.ts", TS))
    assert data.labels == ["a", "b"] and data.classes == ["a", "b"]
    np.testing.assert_array_equal(data.sequences[1][:, 0], [4, 5, 6])
    multi = "@dimensions 2\n@equalLength false\n@classLabel true x\n@data\n1,2:3,4:x\n1:2:x\n"
    data = read_ts(_write(tmp_path, "m.ts", multi))
    assert [s.shape for s in data.sequences] == [(2, 2), (1, 2)]
    unlabelled = TS.replace("@classLabel true a b", "@classLabel false").replace(":a", "")
    assert read_ts(_write(tmp_path, "u.ts", unlabelled.replace(":b", ""))).labels is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("4,5,6:b", "4,5:b"), "row 9: 2 steps but header row 5 says @serieslength 3"),
        (
            ("4,5,6:b", "4,5,6:c"),
            "row 9: label 'c' is not among the classes ['a', 'b'] of header row 6",
        ),
        (
            ("4,5,6:b", "4,5,6:4,5,6:b"),
            "row 9: 2 dimensions but header row 3 says @univariate true (1)",
        ),
        (("4,5,6:b", "4,?,6:b"), "row 9, dimension 1, step 2: value is missing"),
        (("4,5,6:b", "4,x,6:b"), "row 9, dimension 1, step 2: 'x' is not a number"),
        (("@data", "@nodata"), "row 8: '1,2,3:a' before @data is not a header line"),
        (
            ("4,5,6:b", "4,5,6"),
            "row 9: no ':label' after the values, but header row 6 says @classlabel true a b",
        ),
        (("@equalLength true", "@equalLength maybe"), "row 4: @equallength must be true or false"),
        (("@equalLength true", "@"), "row 4: '@' with no header name"),  # found by the fuzz test
    ],
)
def test_ts_header_that_lies(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = _write(tmp_path, "t.ts", TS.replace(*change))
    with pytest.raises(ValueError) as err:
        read_ts(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_wide_csv_variable_length_and_errors(tmp_path: Path) -> None:
    data = read_wide(_write(tmp_path, "w.csv", "label,t0,t1,t2\na,1,2,3\nb,4,5,\n"))
    assert data.labels == ["a", "b"] and [len(s) for s in data.sequences] == [3, 2]
    assert data.ids == ["2", "3"]
    with pytest.raises(ValueError, match=r"w.csv row 3, column 't1': value is missing"):
        read_wide(_write(tmp_path, "w.csv", "label,t0,t1,t2\na,1,2,3\nb,4,,6\n"))
    with pytest.raises(ValueError, match=r"w.csv row 2, column 'label': label is missing"):
        read_wide(_write(tmp_path, "w.csv", "label,t0\n,1\n"))
    with pytest.raises(ValueError, match=r"row 1, column 'class': no such column"):
        read_wide(_write(tmp_path, "w.csv", "label,t0\na,1\n"), label_col="class")


def test_long_csv_groups_by_id_and_checks_labels(tmp_path: Path) -> None:
    text = "id,time,f1,f2,label\ns1,0,1,2,up\ns1,1,3,4,up\ns2,0,5,6,down\n"
    data = read_long(_write(tmp_path, "l.csv", text))
    assert data.ids == ["s1", "s2"] and data.labels == ["up", "down"]
    assert data.columns == ["f1", "f2"] and data.sequences[0].shape == (2, 2)
    bad = text.replace("s1,1,3,4,up", "s1,1,3,4,down")
    with pytest.raises(
        ValueError, match=r"row 3, column 'label': label 'down' of series 's1' differs"
    ):
        read_long(_write(tmp_path, "l.csv", bad))
    bad = text.replace("s1,1,3,4", "s1,0,3,4")
    with pytest.raises(
        ValueError, match=r"row 3, column 'time': time '0' repeats the time of row 2"
    ):
        read_long(_write(tmp_path, "l.csv", bad))


def test_texts_csv_tsv_jsonl(tmp_path: Path) -> None:
    csv = read_texts(_write(tmp_path, "t.csv", 'text,label\n"good, fine",pos\nbad,neg\n'))
    assert csv.texts == ["good, fine", "bad"] and csv.labels == ["pos", "neg"]
    tsv = read_texts(_write(tmp_path, "t.tsv", "text\tlabel\ngood\tpos\n"))
    assert tsv.texts == ["good"]
    jsonl = read_texts(
        _write(tmp_path, "t.jsonl", '{"text": "ok", "label": 1}\n\n{"text": "no", "label": 0}\n')
    )
    assert jsonl.labels == ["1", "0"] and jsonl.rows == [1, 3]
    with pytest.raises(ValueError, match=r"t.jsonl row 2: not valid JSON"):
        read_texts(_write(tmp_path, "t.jsonl", '{"text": "ok", "label": 1}\n{"text": \n'))
    with pytest.raises(ValueError, match=r"t.jsonl row 1, column 'text': a list is not a string"):
        read_texts(_write(tmp_path, "t.jsonl", '{"text": ["ok"], "label": 1}\n'))
    with pytest.raises(ValueError, match=r"t.csv row 3, column 'text': text is missing"):
        read_texts(_write(tmp_path, "t.csv", "text,label\na,1\n ,0\n"))
    pairs = read_texts(
        _write(tmp_path, "p.tsv", "go\tva\nhi\tsalut\n"), text_col="0", label_col="1", header=False
    )
    assert pairs.texts == ["go", "hi"] and pairs.labels == ["va", "salut"]
    with pytest.raises(ValueError, match=r"cannot tell the format from the extension '.xlsx'"):
        read_texts(_write(tmp_path, "t.xlsx", "x"))


def test_conll(tmp_path: Path) -> None:
    text = "-DOCSTART- O\n\nEU B-ORG\nrejects O\n\n# comment\nPeter B-PER\n"
    data = read_conll(_write(tmp_path, "c.conll", text))
    assert data.tokens == [["EU", "rejects"], ["Peter"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER"]] and data.rows == [3, 7]
    conllu = "# sent\n1-2 can't _ _\n1 ca can AUX\n2 n't not PART\n"
    data = read_conll(_write(tmp_path, "u.conllu", conllu), token_field=1, tag_field=3)
    assert data.tokens == [["ca", "n't"]] and data.tags == [["AUX", "PART"]]
    with pytest.raises(
        ValueError, match=r"c.conll row 2, column 2: 1 fields but the token and tag need 2"
    ):
        read_conll(_write(tmp_path, "c.conll", "EU B-ORG\nrejects\n"))
    with pytest.raises(ValueError, match=r"c.conll row 2: 3 fields but earlier token lines have 2"):
        read_conll(_write(tmp_path, "c.conll", "EU B-ORG\nrejects O O\n"))
    with pytest.raises(ValueError, match=r"c.conll: file holds only blank space"):
        read_conll(_write(tmp_path, "c.conll", "\n\n"))


def test_conll_messages_name_the_real_line_past_comments_docstart_and_odd_breaks(
    tmp_path: Path,
) -> None:
    from rnnkit.data.formats.encode import TagEncoder

    train = read_conll(_write(tmp_path, "train.conll", "EU B-ORG\nrejects O\n"))
    enc = TagEncoder.fit(train)
    # Line 1 DOCSTART, 2 blank, 3 a comment, 4 a token, 5 a comment inside the sentence, 6 a
    # CoNLL-U multi-word range, 7 the bad tag; a form feed and U+2028 in comments are no breaks.
    text = "-DOCSTART- O\n\n# d\x0coc\nEU B-ORG\n# no\u2028te\n1-2 x\nPeter B-PER\n"
    test = read_conll(_write(tmp_path, "test.conll", text))
    assert test.rows == [4] and test.token_rows == [[4, 7]]
    with pytest.raises(
        ValueError, match=r"test.conll row 7: tag 'B-PER' is not among the training"
    ):
        enc.dataset(test)
    bad = "# a\r\n# b\r\nEU B-ORG\r\n\r\n# c\r\nrejects O O\r\n"
    with pytest.raises(ValueError, match=r"c.conll row 6: 3 fields but earlier token lines have 2"):
        read_conll(_write(tmp_path, "c.conll", bad))
    with pytest.raises(
        ValueError, match=r"c.conll row 4, column 2: 1 fields but the token and tag"
    ):
        read_conll(_write(tmp_path, "c.conll", "-DOCSTART- O\n\n# x\nrejects\n"))
    split = read_conll(_write(tmp_path, "s.conll", "# a\nA O\n\n# b\n# c\nB O\n")).take([1])
    assert split.rows == [6] and split.row_of(0, 0) == 6
