"""Bach chorales from music21's corpus (extra ``rnnkit[music]``), parsed once and cached as
``.npz``.

Parsing all 371 chorales takes tens of seconds, so the notes (part, onset, duration, MIDI pitch) are
cached under ``cache_dir`` (default ``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``) and both
representations are built from the cache:

- ``"events"``: the soprano line as ``(T, 2)`` rows ``[midi pitch (0 = rest), duration in
quarters]``;
- ``"pianoroll"``: all four voices as ``(T, 128)`` multi-hot rows, one row per sixteenth note.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data._registry import DatasetInfo, DataSplits, _seeded_split, register
from rnnkit.data.batching import SequenceDataset

_STEP = 0.25  # quarter lengths per piano-roll row (a sixteenth note)


def _cache_path(cache_dir: str | os.PathLike[str] | None, limit: int | None) -> Path:
    root = Path(cache_dir or os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")
    return root / f"bach_chorales_v1_{limit or 'all'}.npz"


def _parse(limit: int | None) -> list[np.ndarray]:
    """Each chorale as ``(n_notes, 4)`` float rows ``[part, onset, duration, midi]`` (midi 0 =
    rest)."""
    from music21 import corpus

    pieces = []
    for score in corpus.chorales.Iterator():
        parts = list(score.parts)[-4:]  # soprano, alto, tenor, bass (some add instruments first)
        rows = []
        for p, part in enumerate(parts):
            for n in part.flatten().notesAndRests:
                midi = 0 if n.isRest else max(pitch.midi for pitch in n.pitches)
                rows.append((p, float(n.offset), float(n.quarterLength), midi))
        if rows:
            pieces.append(np.asarray(rows, dtype=np.float64))
        if limit is not None and len(pieces) >= limit:
            break
    return pieces


def _notes(cache_dir: str | os.PathLike[str] | None, limit: int | None) -> list[np.ndarray]:
    path = _cache_path(cache_dir, limit)
    if path.is_file():
        with np.load(path) as z:
            return np.split(z["notes"], z["offsets"][1:-1])
    pieces = _parse(limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(p) for p in pieces])
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, notes=np.concatenate(pieces), offsets=offsets)
    tmp.replace(path)
    return pieces


def _events(notes: np.ndarray) -> np.ndarray:
    sop = notes[notes[:, 0] == 0]
    return np.stack([sop[:, 3], sop[:, 2]], axis=1).astype(np.float32)  # (T, 2)


def _pianoroll(notes: np.ndarray) -> np.ndarray:
    end = notes[:, 1] + notes[:, 2]
    roll = np.zeros((max(1, int(np.ceil(end.max() / _STEP))), 128), dtype=np.float32)  # (T, 128)
    for _, onset, dur, midi in notes:
        if midi > 0:
            roll[round(onset / _STEP) : round((onset + dur) / _STEP), int(midi)] = 1.0
    return roll


@register(
    DatasetInfo(
        "bach_chorales",
        "music",
        "J. S. Bach's four-part chorales from music21's corpus, as soprano note events or "
        "SATB piano roll.",
        "371 chorales (Riemenschneider numbering)",
        "music21.corpus.chorales.Iterator (cached .npz)",
        "public-domain compositions; music21 corpus (BSD-3-Clause)",
        extra="music",
    )
)
def _bach_chorales(
    info: DatasetInfo,
    *,
    representation: str = "events",
    limit: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> DataSplits:
    if importlib.util.find_spec("music21") is None:
        raise ValueError("bach_chorales needs music21: pip install 'rnnkit[music]'")
    if representation not in ("events", "pianoroll"):
        raise ValueError(f"representation must be 'events' or 'pianoroll', got {representation!r}")
    encode = _events if representation == "events" else _pianoroll
    seqs = [s for s in (encode(n) for n in _notes(cache_dir, limit)) if len(s)]
    parts = _seeded_split(
        len(seqs), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    train, val, test = (SequenceDataset([seqs[i] for i in idx], source=info.name) for idx in parts)
    meta: dict[str, Any] = {"representation": representation, "step_quarters": _STEP}
    return DataSplits(info, train, val, test, meta)
