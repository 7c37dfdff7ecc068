"""Framing: stack ``frame`` consecutive steps of a numeric series into one input step.

A recurrent classifier reads a 1000-step series one step at a time: slow, and the gradient has to
cross 1000 steps. Framing turns ``(T, C)`` into ``(ceil(T / frame), frame * C)`` so the recurrence
runs ``frame`` times fewer steps and each step sees a short window of raw values (as speech
front-ends stack frames).

The frame is chosen once, from the **training** series only, and every other split and every
later input (``rnnkit predict``) is framed with that same number, recorded in the run. The rule is
``frame = ceil(quantile(training lengths, q) / steps)``. With ``q = 1`` (the default) the longest
training series runs at most ``steps`` steps; with the median (``q = 0.5``) the typical one runs
about ``steps`` steps and a longer series simply runs more, so one very long series in a file
cannot coarsen the framing of every other one (PLAID: lengths 100-1344, median 300; the longest
frames the median series into 7 steps, the median rule into 30). Cross-validation on training
splits only (``benchmarks/classify_cv.py --study framing``; docs/tuning.md) found framing clearly
better than none on long series, and the longest-series rule as good as the median or better on
PLAID and on GunPoint with one 10x longer series added, so the default stays the longest; ``q``
is the knob for files whose lengths are skewed.

The tail: when ``T`` is not a multiple of ``frame`` the last frame is completed by repeating the
series' last step (edge padding) and counted as a real step. Dropping the tail would discard the
latest observations (often the end of the gesture or event being classified) and would leave a
series shorter than the frame with no steps at all; zero padding would insert the training mean,
a value the series never took, into a frame that also holds real values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rnnkit.frame_options import FrameOption, check_frame_options

__all__ = ["FrameOption", "check_frame_options", "frame_all", "frame_series", "frame_size"]


def frame_size(
    lengths: Sequence[int], *, frame: FrameOption = "auto", steps: int = 30, quantile: float = 1.0
) -> int:
    """The frame for series of training ``lengths``: ``frame`` itself when it is a number, 1 when
    it is None, else ``ceil(quantile(lengths, q) / steps)`` (at least 1)."""
    check_frame_options(frame, steps, quantile, prefix="")
    if frame is None:
        return 1
    if frame != "auto":
        return int(frame)
    if len(lengths) == 0:
        raise ValueError("frame 'auto' needs at least one training series")
    typical = float(np.quantile(np.asarray(lengths, dtype=np.float64), quantile))
    return max(1, math.ceil(typical / steps))


def frame_series(x: np.ndarray, frame: int) -> np.ndarray:
    """``(T, C) -> (ceil(T / frame), frame * C)``: row ``k`` holds steps ``k*frame ..
    (k+1)*frame - 1`` channel-interleaved per step; the last frame repeats the last step. A 1-D
    ``(T,)`` series counts as one channel. ``frame=1`` returns the ``(T, C)`` array unchanged."""
    arr = np.asarray(x)
    arr = arr.reshape(len(arr), -1)  # (T, C)
    if frame == 1:
        return arr
    if len(arr) == 0:
        raise ValueError("cannot frame an empty series")
    rows = math.ceil(len(arr) / frame)
    fill = rows * frame - len(arr)
    if fill:
        arr = np.concatenate([arr, np.repeat(arr[-1:], fill, axis=0)])
    return arr.reshape(rows, frame * arr.shape[1])  # (T', frame * C)


def frame_all(sequences: Sequence[np.ndarray], frame: int) -> list[np.ndarray]:
    """`frame_series` on every series of a split."""
    return [frame_series(s, frame) for s in sequences]
