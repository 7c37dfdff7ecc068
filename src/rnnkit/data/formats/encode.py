"""Turn what the readers return into model inputs, with everything fitted on the training split.

Each encoder is fitted once on training rows (classes, a scaler, vocabularies), encodes any split
or a user's new file the same way, and saves itself as plain JSON in the run's artifact, so that
`rnnkit predict` reads a raw file and answers in the user's own ids and label names. A label in a
later split that training never saw is an error naming its row, never a silent new class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rnnkit.data._scalers import Scaler, StandardScaler
from rnnkit.data.batching import SequenceDataset
from rnnkit.data.formats.tables import LabelledSequences, LabelledTexts, TaggedSentences
from rnnkit.data.framing import FrameOption, frame_all, frame_size
from rnnkit.data.text import Vocab, tokenize

Task = Literal["classification", "regression"]


def sorted_labels(labels: Sequence[str]) -> list[str]:
    """Distinct labels, numerically sorted when all are integers (as the registry sorts them)."""
    values = sorted(set(labels))
    if all(v.lstrip("-").isdigit() for v in values):
        return sorted(values, key=int)
    return values


def holdout(
    n: int,
    fraction: float,
    *,
    seed: int,
    labels: Sequence[str] | None = None,
    source: str = "data",
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) row indices; ``held`` is a seeded ``fraction`` of the rows, stratified by
    ``labels`` when given (each class keeps at least one row). ``source`` starts the message of
    a split that cannot be made (the file, and the key that asked for it)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        k = min(n - 1, max(1, round(fraction * n)))
        held = np.sort(order[:k])
    else:
        y = np.asarray(labels)
        picked: list[int] = []
        for cls in sorted(set(labels)):
            idx = rng.permutation(np.flatnonzero(y == cls))
            k = min(len(idx) - 1, max(1, round(fraction * len(idx))))
            picked.extend(idx[:k].tolist())
        held = np.sort(np.asarray(picked, dtype=np.int64))
    if len(held) == 0 or len(held) == n:
        raise ValueError(f"{source}: {n} rows are too few to hold out a fraction {fraction}")
    return np.setdiff1d(np.arange(n), held), held


class _Labels:
    """Class names <-> ids, or float targets for regression."""

    def __init__(self, task: Task, classes: list[str], label_col: str) -> None:
        self.task, self.classes, self.label_col = task, classes, label_col
        self._ids = {c: i for i, c in enumerate(classes)}

    def encode(self, labels: Sequence[str], path: str, rows: Sequence[int]) -> list[Any]:
        out: list[Any] = []
        for label, row in zip(labels, rows, strict=True):
            where = f"{path} row {row}, column {self.label_col!r}"
            if self.task == "regression":
                try:
                    value = float(label)
                except ValueError:
                    value = float("nan")
                if not np.isfinite(value):
                    raise ValueError(f"{where}: target {label[:30]!r} is not a finite number")
                out.append(value)
            elif label not in self._ids:
                raise ValueError(
                    f"{where}: label {label[:30]!r} is not among the training labels "
                    f"{self.classes[:10]}{' ...' if len(self.classes) > 10 else ''}"
                )
            else:
                out.append(self._ids[label])
        return out


@dataclass
class SequenceEncoder:
    """Numeric series: a per-channel standard scaler and the classes, fitted on training rows, and
    the frame (`rnnkit.data.framing`, chosen from the training lengths) every input is framed by."""

    task: Task
    classes: list[str]
    columns: list[str]
    scaler: Scaler | None
    label_col: str = "label"
    frame: int = 1  # steps stacked into one model input step (1: none)

    @classmethod
    def fit(
        cls,
        train: LabelledSequences,
        *,
        task: Task = "classification",
        scale: bool = True,
        label_col: str = "label",
        frame: FrameOption = None,
        frame_steps: int = 30,
        frame_quantile: float = 1.0,
    ) -> SequenceEncoder:
        """``frame``: a number, None (none) or "auto" (`frame_size` on the training lengths)."""
        if train.labels is None:
            raise ValueError(f"{train.path}: the training file has no labels")
        classes = [] if task == "regression" else (train.classes or sorted_labels(train.labels))
        scaler = StandardScaler().fit(np.concatenate(train.sequences)) if scale else None
        size = frame_size(
            [len(s) for s in train.sequences],
            frame=frame,
            steps=frame_steps,
            quantile=frame_quantile,
        )
        return cls(task, classes, list(train.columns), scaler, label_col, size)

    def scaled(self, data: LabelledSequences) -> list[np.ndarray]:
        """``(T_n, C)`` float32 arrays, scaled with the training statistics, not framed."""
        if len(data.columns) != len(self.columns):
            raise ValueError(
                f"{data.path}: {len(data.columns)} channels {data.columns} but the model was "
                f"trained on {len(self.columns)} {self.columns}"
            )
        if self.scaler is None:
            return [s.astype(np.float32) for s in data.sequences]
        return [self.scaler.transform(s).astype(np.float32) for s in data.sequences]

    def inputs(self, data: LabelledSequences) -> list[np.ndarray]:
        """The model's inputs: `scaled` series framed, ``(ceil(T_n / frame), frame * C)``."""
        return frame_all(self.scaled(data), self.frame)

    def dataset(self, data: LabelledSequences) -> SequenceDataset:
        """Inputs with encoded labels (labels required)."""
        return _labelled(self.inputs(data), data, _Labels(self.task, self.classes, self.label_col))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "sequences",
            "task": self.task,
            "classes": self.classes,
            "columns": self.columns,
            "scaler": None if self.scaler is None else self.scaler.to_dict(),
            "label_col": self.label_col,
            "frame": self.frame,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> SequenceEncoder:
        """``state`` of `to_dict`; a run saved before framing existed has no ``frame`` (1)."""
        scaler = None if state["scaler"] is None else Scaler.from_dict(state["scaler"])
        frame = int(state.get("frame", 1))
        return cls(
            state["task"], state["classes"], state["columns"], scaler, state["label_col"], frame
        )


def _labelled(
    inputs: list[np.ndarray], data: LabelledSequences | LabelledTexts, labels: _Labels
) -> SequenceDataset:
    """``inputs`` with ``data``'s labels encoded (a file without labels cannot be evaluated)."""
    if data.labels is None:
        raise ValueError(f"{data.path}: no labels in this file; evaluation needs them")
    return SequenceDataset(
        inputs, labels.encode(data.labels, data.path, data.rows), source=data.path
    )


@dataclass
class TextEncoder:
    """Texts to token ids (char or word level, a training vocabulary) and labels to ids."""

    level: Literal["char", "word"]
    lower: bool
    vocab: Vocab
    classes: list[str]
    task: Task = "classification"
    label_col: str = "label"

    @classmethod
    def fit(
        cls,
        train: LabelledTexts,
        *,
        level: Literal["char", "word"] = "word",
        lower: bool = True,
        min_freq: int = 1,
        max_vocab: int | None = None,
        task: Task = "classification",
        label_col: str = "label",
    ) -> TextEncoder:
        if train.labels is None:
            raise ValueError(f"{train.path}: the training file has no labels")
        counts = Counter(
            t for text in train.texts for t in tokenize(text, level=level, lower=lower)
        )
        vocab = Vocab.build(counts, min_freq=min_freq, max_size=max_vocab)
        classes = [] if task == "regression" else sorted_labels(train.labels)
        return cls(level, lower, vocab, classes, task, label_col)

    def ids(self, text: str) -> np.ndarray:
        """``(T,)`` int64 ids; a text with no tokens becomes one ``<unk>``."""
        ids = self.vocab.encode(tokenize(text, level=self.level, lower=self.lower))
        return np.asarray(ids or [self.vocab.unk_id], dtype=np.int64)

    def inputs(self, data: LabelledTexts) -> list[np.ndarray]:
        return [self.ids(t) for t in data.texts]

    def dataset(self, data: LabelledTexts) -> SequenceDataset:
        return _labelled(self.inputs(data), data, _Labels(self.task, self.classes, self.label_col))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "texts",
            "level": self.level,
            "lower": self.lower,
            "vocab": self.vocab.tokens,
            "classes": self.classes,
            "task": self.task,
            "label_col": self.label_col,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TextEncoder:
        return cls(
            state["level"],
            state["lower"],
            Vocab(state["vocab"]),
            state["classes"],
            state["task"],
            state["label_col"],
        )


@dataclass
class PairEncoder:
    """Source and target strings to ids with separate training vocabularies; targets carry
    ``<bos>``/``<eos>`` and decode back to text (joined by nothing for chars, spaces for words)."""

    level: Literal["char", "word"]
    lower: bool
    src_vocab: Vocab
    tgt_vocab: Vocab

    @classmethod
    def fit(
        cls,
        train: LabelledTexts,
        *,
        level: Literal["char", "word"] = "char",
        lower: bool = False,
        min_freq: int = 1,
        max_vocab: int | None = None,
    ) -> PairEncoder:
        if train.labels is None:
            raise ValueError(f"{train.path}: the training file has no targets")
        src = Counter(t for s in train.texts for t in tokenize(s, level=level, lower=lower))
        tgt = Counter(t for s in train.labels for t in tokenize(s, level=level, lower=lower))
        return cls(
            level,
            lower,
            Vocab.build(src, min_freq=min_freq, max_size=max_vocab),
            Vocab.build(tgt, min_freq=min_freq, max_size=max_vocab),
        )

    def source_ids(self, text: str) -> np.ndarray:
        ids = self.src_vocab.encode(tokenize(text, level=self.level, lower=self.lower))
        return np.asarray(ids or [self.src_vocab.unk_id], dtype=np.int64)

    def dataset(self, data: LabelledTexts) -> SequenceDataset:
        if data.labels is None:
            raise ValueError(f"{data.path}: no targets in this file; evaluation needs them")
        src = [self.source_ids(t) for t in data.texts]
        tgt = [
            np.asarray(
                self.tgt_vocab.encode(
                    tokenize(t, level=self.level, lower=self.lower), bos=True, eos=True
                ),
                dtype=np.int64,
            )
            for t in data.labels
        ]
        return SequenceDataset(src, tgt, source=data.path)

    def decode(self, ids: Sequence[int]) -> str:
        """Target ids (up to the first ``<eos>``) back to a string."""
        out = []
        for i in ids:
            if int(i) == Vocab.eos_id:
                break
            out.append(int(i))
        tokens = self.tgt_vocab.decode(out, skip_special=True)
        return ("" if self.level == "char" else " ").join(tokens)

    def normalise(self, text: str) -> str:
        """A reference string as the model sees it (tokenised and re-joined), for scoring."""
        return ("" if self.level == "char" else " ").join(
            tokenize(text, level=self.level, lower=self.lower)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "pairs",
            "level": self.level,
            "lower": self.lower,
            "src_vocab": self.src_vocab.tokens,
            "tgt_vocab": self.tgt_vocab.tokens,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PairEncoder:
        return cls(
            state["level"], state["lower"], Vocab(state["src_vocab"]), Vocab(state["tgt_vocab"])
        )


@dataclass
class TagEncoder:
    """Tokens to ids (training vocabulary) and tags to ids (the training tag set)."""

    lower: bool
    vocab: Vocab
    tags: list[str]

    @classmethod
    def fit(cls, train: TaggedSentences, *, lower: bool = False, min_freq: int = 1) -> TagEncoder:
        if train.tags is None:
            raise ValueError(f"{train.path}: the training file has no tags")
        counts = Counter(t.lower() if lower else t for s in train.tokens for t in s)
        tags = sorted({t for s in train.tags for t in s})
        return cls(lower, Vocab.build(counts, min_freq=min_freq), tags)

    def inputs(self, data: TaggedSentences) -> list[np.ndarray]:
        return [
            np.asarray(self.vocab.encode(t.lower() if self.lower else t for t in s), dtype=np.int64)
            for s in data.tokens
        ]

    def dataset(self, data: TaggedSentences) -> SequenceDataset:
        if data.tags is None:
            raise ValueError(f"{data.path}: no tags in this file; evaluation needs them")
        table = {t: i for i, t in enumerate(self.tags)}
        labels = []
        for i, sent in enumerate(data.tags):
            for k, tag in enumerate(sent):
                if tag not in table:
                    raise ValueError(
                        f"{data.path} row {data.row_of(i, k)}: tag {tag[:30]!r} is not among the "
                        f"training tags {self.tags[:10]}{' ...' if len(self.tags) > 10 else ''}"
                    )
            labels.append(np.asarray([table[t] for t in sent], dtype=np.int64))
        return SequenceDataset(self.inputs(data), labels, source=data.path)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tags", "lower": self.lower, "vocab": self.vocab.tokens, "tags": self.tags}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TagEncoder:
        return cls(state["lower"], Vocab(state["vocab"]), state["tags"])
