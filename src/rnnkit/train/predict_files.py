"""``rnnkit predict --run DIR --input FILE``: predictions for a user's raw new file.

The run's ``artifact/encoder.json`` (fitted on its training split) encodes the file exactly as
training did; the answer is a CSV keyed by the user's own ids (or file rows) with the user's own
label names, tags, strings or time stamps. Reads weights and JSON only; no Lightning, no pickle.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnnkit.data.formats.encode import PairEncoder, SequenceEncoder, TagEncoder, TextEncoder
from rnnkit.data.formats.forecast import ForecastEncoder
from rnnkit.integrity import atomic_write_text


def _encoder(loaded: Any) -> dict[str, Any]:
    name = loaded.meta.get("encoder")
    if not name:
        raise ValueError(
            f"{loaded.run_dir} was not trained on files (data.path); predict --input needs a run "
            "that was"
        )
    path = Path(loaded.meta["_folder"]) / name
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable encoder state ({err})") from None
    if not isinstance(state, dict) or "kind" not in state:
        raise ValueError(f"{path}: not an rnnkit encoder state")
    return state


def write_csv(path: Path, header: list[str], rows: Sequence[Sequence[Any]]) -> None:
    """``header`` and ``rows`` as a CSV at ``path``, written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buf.getvalue())


def _batched(model: nn.Module, xs: list[np.ndarray]) -> list[torch.Tensor]:
    """Model outputs per row, 64 rows a batch, padded like training."""
    from rnnkit.data import collate

    out: list[torch.Tensor] = []
    with torch.no_grad():
        for i in range(0, len(xs), 64):
            chunk = xs[i : i + 64]
            batch = collate([(x, None) for x in chunk])
            y = model(batch.x, lengths=batch.lengths)
            out.extend(y[k, : len(chunk[k])] if y.ndim == 3 else y[k] for k in range(len(chunk)))
    return out


def predict_file(
    loaded: Any, input_path: str, out: str | os.PathLike[str], *, future: str | None = None
) -> dict[str, Any]:
    """Predict ``input_path`` with ``loaded`` (a `LoadedRun`) into the CSV ``out``; ``future``:
    a forecasting run's future covariates for the forecast steps."""
    from rnnkit.train import user_data

    state = _encoder(loaded)
    d = loaded.experiment.data
    model = loaded.model
    path = Path(out)
    kind = state["kind"]
    if kind in ("sequences", "texts"):
        layout = state.get("layout", "wide")
        data: Any = user_data.read_examples(d, input_path, layout, labelled=False)
        enc: Any = (SequenceEncoder if kind == "sequences" else TextEncoder).from_dict(state)
        outputs = _batched(model, enc.inputs(data))
        has_label = data.labels is not None
        if enc.task == "regression":
            header = ["id", "prediction"] + ["label"] * has_label
            rows = [
                [i, f"{float(o[0]):.6g}"] + ([data.labels[k]] if has_label else [])
                for k, (i, o) in enumerate(zip(data.ids, outputs, strict=True))
            ]
        else:
            header = ["id", "prediction", *[f"p_{c}" for c in enc.classes]]
            header += ["label"] * has_label
            rows = []
            for k, (i, o) in enumerate(zip(data.ids, outputs, strict=True)):
                p = torch.softmax(o, -1).tolist()
                rows.append(
                    [i, enc.classes[int(np.argmax(p))], *[f"{v:.4f}" for v in p]]
                    + ([data.labels[k]] if has_label else [])
                )
        write_csv(path, header, rows)
        return {"predictions": str(path), "rows": len(rows)}
    if kind == "tags":
        tag_enc = TagEncoder.from_dict(state)
        sentences = user_data._read_conll(d, input_path, tagged=False)
        outputs = _batched(model, tag_enc.inputs(sentences))
        rows = []
        for s, (tokens, o) in enumerate(zip(sentences.tokens, outputs, strict=True)):
            for t, (token, tag) in enumerate(zip(tokens, o.argmax(-1).tolist(), strict=True)):
                rows.append([s, t, token, tag_enc.tags[tag]])
        write_csv(path, ["sentence", "position", "token", "prediction"], rows)
        return {"predictions": str(path), "rows": len(rows), "sentences": len(sentences)}
    if kind == "pairs":
        pair_enc = PairEncoder.from_dict(state)
        pairs = user_data._read_pairs(d, input_path, labelled=False)
        sources = [pair_enc.source_ids(t) for t in pairs.texts]
        longest = max(8, 2 * max(len(s) for s in sources) + 2)
        strings = user_data.greedy_strings(model, pair_enc, sources, longest)
        rows = [[i, src, hyp] for i, src, hyp in zip(pairs.ids, pairs.texts, strings, strict=True)]
        write_csv(path, ["id", "source", "prediction"], rows)
        return {"predictions": str(path), "rows": len(rows)}
    if kind == "series":
        return _forecast_file(loaded, state, input_path, path, future)
    raise ValueError(f"encoder kind {kind!r} is unknown to this rnnkit")


def _future_block(enc: ForecastEncoder, s: Any, future: Any, path: str, scaler: Any) -> np.ndarray:
    """``(H, C)`` scaled covariates of the forecast steps: past covariates 0 (unknown ahead),
    future covariates from the ``--future`` file, which must continue ``s`` for H steps."""
    block = np.zeros((enc.horizon, enc.n_covariates), dtype=np.float64)
    n_future = enc.n_covariates - enc.n_past
    if n_future == 0:
        return block
    if future is None:
        raise ValueError(
            f"this run uses future covariates {enc.columns[1 + enc.n_past :]}; give their values "
            "for the forecast steps with --future FILE (id, time and those columns)"
        )
    match = {f.id: f for f in future.series}
    if s.id not in match:
        raise ValueError(f"{path}: series {s.id!r} has no rows in the --future file")
    f = match[s.id]
    want = future.next_times(s, 1)[0]
    expected = pd.Timestamp(want) if isinstance(s.times, pd.DatetimeIndex) else float(want)
    if f.times[0] != expected:
        raise ValueError(
            f"{future.path} row {f.lines[0]}: the future of series {s.id!r} must start at {want}, "
            "the step after the last time of its history"
        )
    if len(f) < enc.horizon:
        raise ValueError(
            f"{future.path} rows {f.lines[0]}-{f.lines[-1]}: series {s.id!r} has {len(f)} future "
            f"steps; the forecast needs {enc.horizon}"
        )
    cols = list(range(1 + enc.n_past, len(enc.columns)))
    block[:, enc.n_past :] = scaler.transform(f.values[: enc.horizon], columns=cols)
    return block


def _forecast_file(
    loaded: Any,
    state: dict[str, Any],
    input_path: str,
    path: Path,
    future_path: str | None = None,
) -> dict[str, Any]:
    """Forecast ``horizon`` steps past the end of every series of the history file."""
    from rnnkit.train import user_data

    d = loaded.experiment.data
    enc = ForecastEncoder.from_dict(state)
    data = user_data.read_series(d, input_path, freq=enc.freq)
    future = None
    if future_path is not None:
        future = user_data.read_series(d, future_path, future_only=True, freq=enc.freq)
    rows: list[list[Any]] = []
    for s in data.series:
        if len(s) < enc.input_len:
            raise ValueError(
                f"{input_path} rows {s.lines[0]}-{s.lines[-1]}: series {s.id!r} has {len(s)} "
                f"steps; the model reads the last {enc.input_len}"
            )
        scaler = enc.scaler_for(s)
        scaled = scaler.transform(s.values)[-enc.input_len :]  # (T, 1 + C)
        x = torch.from_numpy(scaled[:, :1].astype(np.float32))[None]  # (1, T, 1)
        cov = None
        if enc.n_covariates:
            ahead = _future_block(enc, s, future, input_path, scaler)
            both = np.concatenate([scaled[:, 1:], ahead]).astype(np.float32)  # (T + H, C)
            cov = torch.from_numpy(both)[None]
        with torch.no_grad():
            mean = loaded.model(x, covariates=cov).mean[0, :, 0].numpy()  # (H,)
        values = scaler.inverse_transform(mean.astype(np.float64)[:, None], columns=[0])[:, 0]
        times = data.next_times(s, enc.horizon)
        rows.extend([s.id, t, f"{v:.6g}"] for t, v in zip(times, values, strict=True))
    id_col = d.id_col or "unique_id"
    write_csv(path, [id_col, d.time_col, f"{d.target_col}_hat"], rows)
    return {"predictions": str(path), "rows": len(rows), "series": len(data.series)}
