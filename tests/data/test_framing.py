"""Framing (`rnnkit.data.framing`): the frame from the training lengths, the framed shapes, the
tail, and the encoder that carries the frame to every split and to `rnnkit predict`."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data.formats.encode import SequenceEncoder
from rnnkit.data.formats.tables import LabelledSequences
from rnnkit.data.framing import frame_all, frame_series, frame_size


def test_frame_from_the_training_lengths() -> None:
    assert frame_size([150] * 10, steps=30) == 5  # GunPoint: 30 frames of 5
    assert frame_size([100] * 10, steps=30) == 4  # ceil(100 / 30): 25 frames
    assert frame_size([7, 15, 26], steps=30) == 1  # short series are read step by step
    assert frame_size([301, 10, 10], steps=30) == 11  # the default: the longest series
    assert frame_size([301, 10, 10], steps=30, quantile=0.5) == 1  # the median is 10
    assert frame_size([90, 91, 92], steps=30, quantile=0.5) == 4  # 91 / 30 rounds up
    assert frame_size([50, 60], frame=7) == 7  # a fixed frame is itself
    assert frame_size([5000], frame=None) == 1  # off


def test_one_outlier_length_does_not_move_the_median_frame() -> None:
    lengths = [300] * 49
    assert frame_size(lengths, steps=30, quantile=0.5) == 10
    assert frame_size([*lengths, 13440], steps=30, quantile=0.5) == 10  # one series 45x longer
    # the longest-series rule (quantile 1, the default) is moved by that one series
    assert frame_size(lengths, steps=30) == 10
    assert frame_size([*lengths, 13440], steps=30) == 448


def test_framed_shape_and_channel_order() -> None:
    x = np.arange(12.0).reshape(6, 2)  # (T=6, C=2): step k holds [2k, 2k+1]
    y = frame_series(x, 3)
    assert y.shape == (2, 6)
    assert y[0].tolist() == [0, 1, 2, 3, 4, 5]  # steps 0..2, channels interleaved per step
    assert y[1].tolist() == [6, 7, 8, 9, 10, 11]
    assert frame_series(x, 1).shape == (6, 2)
    assert frame_series(np.arange(4.0), 2).tolist() == [[0, 1], [2, 3]]  # (T,) is one channel


def test_tail_is_padded_with_the_last_step_never_dropped() -> None:
    x = np.arange(7.0)[:, None]
    y = frame_series(x, 3)
    assert y.tolist() == [[0, 1, 2], [3, 4, 5], [6, 6, 6]]  # the last step repeated
    # a series shorter than the frame still has one step, not zero
    assert frame_series(np.array([[1.0, 2.0]]), 4).tolist() == [[1, 2, 1, 2, 1, 2, 1, 2]]
    lengths = [len(s) for s in frame_all([np.zeros((n, 1)) for n in (1, 5, 6, 7)], 3)]
    assert lengths == [1, 2, 2, 3]  # ceil(T / 3): every observed step is read


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame": 0}, r"^frame must be an int >= 1, 'auto' .* or null \(no framing\), got 0$"),
        ({"frame": "big"}, r"^frame must be an int >= 1, 'auto' .*, got 'big'$"),
        ({"frame": True}, r"^frame must be an int >= 1, .*, got True$"),
        ({"steps": 0}, r"^frame_steps must be an int >= 1, got 0$"),
        ({"quantile": 0.0}, r"^frame_quantile must be in \(0, 1\] .*, got 0\.0$"),
        ({"quantile": 1.5}, r"^frame_quantile must be in \(0, 1\] .*, got 1\.5$"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frame_size([10, 20], **kwargs)


def test_data_config_names_the_key() -> None:
    from rnnkit.train.config import SequenceDataConfig

    with pytest.raises(ValueError, match=r"^data\.frame must be an int >= 1, .*, got -2$"):
        SequenceDataConfig(frame=-2)
    with pytest.raises(ValueError, match=r"^data\.frame_quantile must be in \(0, 1\]"):
        SequenceDataConfig(frame_quantile=2.0)


def _labelled(lengths: list[int], path: str) -> LabelledSequences:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 2)) for n in lengths]
    labels = ["a" if i % 2 else "b" for i in range(len(lengths))]
    ids = [f"s{i}" for i in range(len(lengths))]
    return LabelledSequences(path, ids, seqs, labels, ["x", "y"], list(range(2, 2 + len(seqs))))


def test_encoder_frames_every_split_alike_and_saves_the_frame() -> None:
    train = _labelled([40, 40, 41, 39, 40, 400], "train.csv")  # one outlier length
    assert SequenceEncoder.fit(train, frame="auto", frame_steps=10).frame == 40  # 400 / 10
    enc = SequenceEncoder.fit(train, frame="auto", frame_steps=10, frame_quantile=0.5)
    assert enc.frame == 4  # the median 40 / 10; the 400-step series does not move it
    other = _labelled([13, 80], "new.csv")
    xs = enc.inputs(other)
    assert [x.shape for x in xs] == [(4, 8), (20, 8)]  # (ceil(T / 4), 4 * 2 channels)
    np.testing.assert_allclose(xs[0], frame_series(enc.scaled(other)[0], 4))
    again = SequenceEncoder.from_dict(enc.to_dict())
    assert again.frame == 4
    np.testing.assert_array_equal(again.inputs(other)[1], xs[1])
    old = {k: v for k, v in enc.to_dict().items() if k != "frame"}  # a run saved before framing
    assert SequenceEncoder.from_dict(old).frame == 1
