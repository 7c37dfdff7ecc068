"""Bad input fails early at the boundary with a ValueError that names the problem."""

from __future__ import annotations

import pytest
import torch

from rnnkit import LSTMCell, LSTMState, Recurrent

I, H, T, B = 3, 4, 6, 2  # noqa: E741 (the shape glossary's I)


@pytest.fixture
def lstm() -> Recurrent:
    return Recurrent("lstm", I, H, num_layers=2)


@pytest.mark.parametrize("force_loop", [False, True])
def test_wrong_feature_size(force_loop):
    layer = Recurrent("gru", I, H, force_loop=force_loop)
    with pytest.raises(
        ValueError, match=r"x has 5 features in its last dimension, the layer expects input_size=3"
    ):
        layer(torch.randn(T, B, 5))
    with pytest.raises(ValueError, match=r"x has 5 features .* input_size=3"):
        layer.step(torch.randn(B, 5))


@pytest.mark.parametrize("shape", [(T,), (1, T, B, I)])
def test_wrong_rank(shape):
    layer = Recurrent("lstm", I, H)
    with pytest.raises(
        ValueError,
        match=rf"x must have rank 3 \(T, B, I\) or 2 \(T, I\), got rank "
        rf"{len(shape)}",
    ):
        layer(torch.randn(shape))
    batch_first = Recurrent("lstm", I, H, batch_first=True)
    with pytest.raises(ValueError, match=r"rank 3 \(B, T, I\)"):
        batch_first(torch.randn(shape))


def test_not_a_tensor_and_empty_sequence(lstm):
    with pytest.raises(ValueError, match=r"x must be a torch\.Tensor, got list"):
        lstm([[0.0] * I])
    with pytest.raises(ValueError, match=r"x has no time steps: shape \(0, 2, 3\)"):
        lstm(torch.randn(0, B, I))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_input(lstm, dtype):
    with pytest.raises(
        ValueError, match=rf"x must be floating point, got {dtype}; embed token ids first"
    ):
        lstm(torch.zeros(T, B, I, dtype=dtype))


def test_dtype_mismatch(lstm):
    with pytest.raises(
        ValueError,
        match=r"x is torch.float64 but the layer's parameters are torch.float32; convert one",
    ):
        lstm(torch.randn(T, B, I, dtype=torch.float64))
    h = torch.zeros(2, B, H, dtype=torch.float64)
    with pytest.raises(
        ValueError, match=r"h is torch.float64 but the layer's parameters are torch.float32"
    ):
        lstm(torch.randn(T, B, I), LSTMState(h, torch.zeros(2, B, H)))


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([0, 3], r"lengths must be in \[1, T=6\], got values from 0 to 3"),
        ([7, 3], r"lengths must be in \[1, T=6\], got values from 3 to 7"),
        ([-1, 6], r"lengths must be in \[1, T=6\], got values from -1 to 6"),
        ([3, 3, 3], r"lengths must have shape \(B,\) = \(2,\) to match the batch, got \(3,\)"),
        ([[3, 3]], r"lengths must have shape \(B,\) = \(2,\) to match the batch, got \(1, 2\)"),
        (torch.tensor([3.0, 2.0]), r"lengths must be integers, got torch.float32"),
        (torch.tensor([True, True]), r"lengths must be integers, got torch.bool"),
    ],
)
@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_bad_lengths(cell, lengths, message):
    layer = Recurrent(cell, I, H)
    lengths = lengths if isinstance(lengths, torch.Tensor) else torch.tensor(lengths)
    with pytest.raises(ValueError, match=message):
        layer(torch.randn(T, B, I), lengths=lengths)


def test_lengths_as_a_list_are_accepted():
    layer = Recurrent("gru", I, H)
    out, _ = layer(torch.randn(T, B, I), lengths=[6, 2])  # type: ignore[arg-type]
    assert torch.all(out[2:, 1] == 0)


def test_state_of_wrong_shape(lstm):
    x = torch.randn(T, B, I)
    good = torch.zeros(2, B, H)
    with pytest.raises(
        ValueError, match=r"h must have shape \(L\*D, B, size\) = \(2, 2, 4\), got \(1, 2, 4\)"
    ):
        lstm(x, LSTMState(torch.zeros(1, B, H), good))
    with pytest.raises(
        ValueError, match=r"c must have shape \(L\*D, B, size\) = \(2, 2, 4\), got \(2, 3, 4\)"
    ):
        lstm(x, LSTMState(good, torch.zeros(2, 3, H)))
    gru = Recurrent("gru", I, H, bidirectional=True)
    with pytest.raises(
        ValueError, match=r"state must have shape \(L\*D, B, size\) = \(2, 2, 4\), got \(1, 2, 4\)"
    ):
        gru(x, torch.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"state must have shape .* = \(1, 2, 4\)"):
        Recurrent("gru", I, H).step(torch.randn(B, I), torch.zeros(1, B, H + 1))


def test_state_of_wrong_type(lstm):
    x = torch.randn(T, B, I)
    with pytest.raises(
        ValueError, match=r"state must be LSTMState\(h, c\) for this layer, got Tensor"
    ):
        lstm(x, torch.zeros(2, B, H))
    with pytest.raises(
        ValueError, match=r"state must be LSTMState\(h, c\) for this layer, got tuple"
    ):
        lstm(x, (torch.zeros(2, B, H), torch.zeros(2, B, H)))
    with pytest.raises(
        ValueError, match=r"state must be a single tensor for this layer, got LSTMState"
    ):
        Recurrent("mingru", I, H)(x, LSTMState(torch.zeros(1, B, H), torch.zeros(1, B, H)))


def test_unknown_cell_and_option():
    with pytest.raises(ValueError, match=r"unknown cell 'lsmt'; choose one of \['elman', 'gru'"):
        Recurrent("lsmt", I, H)
    with pytest.raises(
        ValueError,
        match=r"'lstm' cell: .*unexpected keyword argument 'nonlinearity'; its options are \[",
    ):
        Recurrent("lstm", I, H, nonlinearity="relu")
    with pytest.raises(ValueError, match=r"'mingru' cell: .*'layer_norm'"):
        Recurrent("mingru", I, H, layer_norm=True)
    with pytest.raises(ValueError, match=r"cell options \['bias'\] apply to named cells only"):
        Recurrent(lambda n: LSTMCell(n, H), I, H, bias=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_layers": 0}, "num_layers must be at least 1, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"proj_size": 4}, r"proj_size must be in \[0, hidden_size=4\), got 4"),
        ({"zoneout": 1.0}, r"zoneout must be in \[0, 1\), got 1.0"),
        ({"recurrent_dropout": -0.1}, r"recurrent_dropout must be in \[0, 1\), got -0.1"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recurrent("lstm", I, H, **kwargs)


def test_bad_cell_arguments():
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        Recurrent("rnn", I, H, nonlinearity="gelu")
    with pytest.raises(
        ValueError, match="input_size and hidden_size must be positive, got 3 and 0"
    ):
        Recurrent("minlstm", I, 0)


def test_step_errors():
    with pytest.raises(ValueError, match=r"step\(\) needs a unidirectional layer"):
        Recurrent("lstm", I, H, bidirectional=True).step(torch.randn(B, I))
    with pytest.raises(ValueError, match=r"step\(\) expects x of shape \(B, I\), got \(1, 2, 3\)"):
        Recurrent("gru", I, H).step(torch.randn(1, B, I))
