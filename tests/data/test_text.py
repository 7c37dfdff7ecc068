"""Tests of rnnkit.data.text: tokenisers, Vocab, streaming memmap encoding, splits, LM batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data.text import (
    SPECIALS,
    LMStream,
    Vocab,
    build_vocab_from_file,
    encode_file,
    iter_text_chunks,
    read_text,
    split_contiguous,
    tokenize,
    word_tokenize,
)


def test_word_tokenize_keeps_apostrophes_and_splits_punctuation() -> None:
    assert word_tokenize("Don't stop, 2 times!") == ["Don't", "stop", ",", "2", "times", "!"]
    assert word_tokenize("O'er THE hills", lower=True) == ["o'er", "the", "hills"]


def test_tokenize_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match=r"^level must be 'char' or 'word', got 'byte'$"):
        tokenize("x", level="byte")  # type: ignore[arg-type]


def test_vocab_specials_min_freq_max_size() -> None:
    vocab = Vocab.build("aaabbc", min_freq=2)
    assert vocab.tokens == [*SPECIALS, "a", "b"]
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    assert Vocab.build("aaabbc", max_size=5).tokens == [*SPECIALS, "a"]
    assert vocab.encode("abz", bos=True, eos=True) == [2, 4, 5, 1, 3]
    assert vocab.decode([2, 4, 1, 3], skip_special=True) == ["a"]


def test_vocab_save_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build(word_tokenize("the cat saw the dog"))
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == vocab


def test_vocab_load_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"tokens": [1, 2}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"v\.json line 1, column 17: Expecting .,. delimiter$"):
        Vocab.load(path)


def test_decode_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"^id 9 is outside the vocab of size 4$"):
        Vocab.build("").decode([9])


@given(st.text(max_size=200))
def test_char_round_trip_and_numpy_path_agree(text: str) -> None:
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    assert "".join(vocab.decode(ids)) == text
    assert vocab.encode_chars(text).tolist() == ids


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"^{path}: file is empty$"):
        read_text(path)


def test_non_utf8_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello\nwor\xffld\n")
    with pytest.raises(
        ValueError, match=rf"^{path} line 2, column 4: byte 0xff is not valid UTF-8$"
    ):
        read_text(path)


def test_non_utf8_across_chunk_boundary(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes("ab\né".encode() + b"\xc3(" + b"x" * 10)
    with pytest.raises(ValueError, match=r"line 2, column 3: byte 0xc3 is not valid UTF-8$"):
        list(iter_text_chunks(path, chunk_bytes=4))


def test_chunks_do_not_split_characters(tmp_path: Path) -> None:
    text = "héllo wörld ✓\n" * 50
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    assert "".join(iter_text_chunks(path, chunk_bytes=3)) == text


@pytest.mark.parametrize("level", ["char", "word"])
def test_encode_file_streams_into_memmap(tmp_path: Path, level: str) -> None:
    text = "the quick brown fox jumps over the lazy dog\n" * 200
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    vocab = build_vocab_from_file(path, level=level, chunk_bytes=97)  # type: ignore[arg-type]
    ids = encode_file(path, vocab, tmp_path / "ids.bin", level=level, chunk_bytes=97)  # type: ignore[arg-type]
    assert isinstance(ids, np.memmap) and ids.dtype == np.int32
    expected = vocab.encode(tokenize(text, level=level))  # type: ignore[arg-type]
    assert ids.tolist() == expected


def test_split_contiguous_blocks_in_order() -> None:
    train, val, test = split_contiguous(np.arange(100), val_fraction=0.1, test_fraction=0.2)
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert np.array_equal(np.concatenate([train, val, test]), np.arange(100))


def test_lm_stream_continues_each_row_across_chunks() -> None:
    ids = np.arange(101)
    batches = list(LMStream(ids, batch_size=4, seq_len=10))
    assert len(batches) == len(LMStream(ids, batch_size=4, seq_len=10)) == 3
    assert batches[0].x.shape == (4, 10) and batches[-1].x.shape == (4, 5)
    row = torch.cat([b.x[1] for b in batches])
    assert row.tolist() == list(range(25, 50))  # stream 1 is one contiguous block
    assert torch.equal(batches[0].y, batches[0].x + 1)
    assert batches[0].lengths.tolist() == [10] * 4


def test_lm_stream_too_short() -> None:
    with pytest.raises(
        ValueError, match=r"^3 tokens are too few for 4 streams \(need at least 5\)$"
    ):
        LMStream(np.arange(3), batch_size=4, seq_len=2)


@given(st.binary(max_size=300))
def test_fuzz_bytes_only_value_errors(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.txt"
        path.write_bytes(data)
        try:
            text = read_text(path)
        except ValueError as err:
            assert str(path) in str(err)
            return
        vocab = Vocab.build(word_tokenize(text))
        assert vocab.decode(vocab.encode(word_tokenize(text))) == word_tokenize(text)
