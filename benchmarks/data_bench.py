"""Data benchmark: memmap encoding speed with peak memory, and padding with and without bucketing.

Run: ``.venv/bin/python benchmarks/data_bench.py [--mb 100]``; writes
``benchmarks/results/data.json``.
The encoding runs in a child process so its peak RSS is its own, not this script's.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "data.json"


def _make_corpus(path: Path, megabytes: int) -> None:
    """Write ~``megabytes`` MB of word salad (with non-ASCII words) in bounded memory."""
    rng = np.random.default_rng(0)
    words = np.array(
        [
            "the",
            "cat",
            "sat",
            "on",
            "a",
            "mat",
            "über",
            "naïve",
            "RNN",
            "state",
            "of",
            "recurrence",
            "gates",
            "time",
            "step,",
            "hidden.",
            "\n",
        ]
    )
    with path.open("w", encoding="utf-8") as f:
        while f.tell() < megabytes * 1_000_000:
            f.write(" ".join(rng.choice(words, size=200_000)))


def _encode_child(corpus: str, out: str, level: str) -> None:
    from rnnkit.data.text import build_vocab_from_file, encode_file

    start = time.perf_counter()
    vocab = build_vocab_from_file(corpus, level=level)  # type: ignore[arg-type]
    counted = time.perf_counter()
    ids = encode_file(corpus, vocab, out, level=level)  # type: ignore[arg-type]
    done = time.perf_counter()
    megabytes = Path(corpus).stat().st_size / 1e6
    print(
        json.dumps(
            {
                "level": level,
                "corpus_mb": round(megabytes, 1),
                "tokens": len(ids),
                "vocab_size": len(vocab),
                "vocab_s": round(counted - start, 2),
                "encode_s": round(done - counted, 2),
                "encode_mb_per_s": round(megabytes / (done - counted), 1),
                "vocab_plus_encode_mb_per_s": round(megabytes / (done - start), 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def _baseline_rss_mb() -> float:
    code = (
        "import resource, rnnkit.data.text; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(int(out.stdout) / 1024, 1)


def _padding() -> dict[str, float]:
    from rnnkit.data import BucketSampler, load, padding_fraction

    lengths = load("japanese_vowels").train.lengths
    out: dict[str, float] = {}
    for batch_size in (16, 32):
        order = np.random.default_rng(0).permutation(len(lengths))
        shuffled = [
            [lengths[i] for i in order[s : s + batch_size]]
            for s in range(0, len(order), batch_size)
        ]
        sampler = BucketSampler(lengths, batch_size=batch_size, pool_batches=4)
        bucketed = [[lengths[i] for i in b] for b in sampler]
        out[f"random_b{batch_size}"] = round(padding_fraction(shuffled), 4)
        out[f"bucketed_b{batch_size}"] = round(padding_fraction(bucketed), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="size of the generated corpus")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _encode_child(*args.child)
        return
    encoding = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        _make_corpus(corpus, args.mb)
        for level in ("char", "word"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(corpus),
                str(Path(tmp) / "ids.bin"),
                level,
            ]
            run = subprocess.run(cmd, capture_output=True, text=True, check=True)
            encoding.append(json.loads(run.stdout))
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "baseline_rss_mb_after_import": _baseline_rss_mb(),
        "memmap_encoding": encoding,
        "padding_fraction_japanese_vowels_train": _padding(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
