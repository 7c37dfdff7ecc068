"""The framing options a config accepts (``data.frame``, ``frame_steps``, ``frame_quantile``) and
their check: stdlib only, so parsing a recipe never imports torch (`rnnkit.data.framing` frames)."""

from __future__ import annotations

import math

FrameOption = int | str | None  # a fixed frame, "auto" (the length rule), or None (off)


def check_frame_options(
    frame: object, steps: object, quantile: object, *, prefix: str = "data."
) -> None:
    """One-line ``ValueError`` naming the key for a frame, steps or quantile out of range."""
    ok = (
        frame is None or frame == "auto" or (isinstance(frame, int) and not isinstance(frame, bool))
    )
    if not ok or (isinstance(frame, int) and frame < 1):
        raise ValueError(
            f"{prefix}frame must be an int >= 1, 'auto' (from the training lengths) or null "
            f"(no framing), got {frame!r}"
        )
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"{prefix}frame_steps must be an int >= 1, got {steps!r}")
    q_ok = isinstance(quantile, int | float) and not isinstance(quantile, bool)
    if not q_ok or not math.isfinite(float(quantile)) or not 0 < float(quantile) <= 1:  # type: ignore[arg-type]
        raise ValueError(
            f"{prefix}frame_quantile must be in (0, 1] (0.5: the median training length, "
            f"1: the longest), got {quantile!r}"
        )
