"""Load on ``rnnkit serve`` over loopback: 200 concurrent streaming sessions x 50 steps.

The script starts the server itself (a subprocess on a free 127.0.0.1 port), opens the sessions,
and steps them all concurrently with httpx (one step per request), then checks isolation: every
session's outputs must equal the offline ``Recurrent.step`` run (``LanguageModel.step``) of the
same inputs. Reported: requests/s, p50/p99 latency, errors (must be 0), mean model batch (steps
per batched model call), and the machine load. The same again with ``--client_state`` (the state
travels as a signed token). Bounded: 200 x 50 requests per mode and a wall-clock cap.

Run: ``python benchmarks/serve_load.py [--run RUN]`` -> ``benchmarks/results/serve.json`` and the
README table between the ``serve-table`` markers. Without ``--run`` it serves a demo-sized character
LSTM (E=64, H=256) with initial weights (speed and isolation do not depend on their values).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "serve.json"
SESSIONS, STEPS, CAP_S = 200, 50, 420.0


def _demo_sized_run(folder: Path) -> Path:
    from rnnkit.models import LanguageModel, LanguageModelConfig
    from rnnkit.train.run import save_artifact

    tokens = ["<pad>", "<unk>", "<bos>", "<eos>", *[chr(c) for c in range(32, 127)], "\n"]
    torch.manual_seed(0)
    config = LanguageModelConfig(vocab_size=len(tokens), embedding_dim=64, hidden_size=256)
    vocab = json.dumps({"format": "rnnkit.vocab/1", "tokens": tokens})
    save_artifact(
        folder / "artifact",
        LanguageModel(config),
        task="language_model",
        model_config=config,
        extra_json={"vocab": "vocab.json"},
        files={"vocab.json": vocab},
    )
    return folder


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _session(
    c: httpx.AsyncClient,
    chars: str,
    *,
    client_state: bool,
    lat: list[float],
    outputs: list,
    errors: list[int],
) -> None:
    opened = (await c.post("/sessions")).json()
    key = opened.get("id") or opened["state"]
    for ch in chars:
        start = time.perf_counter()
        try:
            if client_state:
                r = await c.post("/sessions/step", json={"state": key, "inputs": [ch]})
            else:
                r = await c.post(f"/sessions/{key}/step", json={"inputs": [ch]})
        except httpx.TransportError:  # counted, not retried: a dropped request is an error
            errors.append(1)
            continue
        finally:
            lat.append(time.perf_counter() - start)
        if r.status_code != 200:
            errors.append(1)
            continue
        body = r.json()
        key = body.get("state", key)
        outputs.append(body["outputs"][0]["probabilities"])


async def _load(base: str, texts: list[str], *, client_state: bool) -> dict:
    lat: list[float] = []
    limits = httpx.Limits(max_connections=SESSIONS, max_keepalive_connections=SESSIONS)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
        before = (await c.get("/health")).json()
        outputs: list[list] = [[] for _ in texts]
        errors: list[int] = []
        start = time.perf_counter()
        tasks = [
            asyncio.create_task(
                _session(c, t, client_state=client_state, lat=lat, outputs=o, errors=errors)
            )
            for t, o in zip(texts, outputs, strict=True)
        ]
        _, pending = await asyncio.wait(tasks, timeout=CAP_S)
        for task in pending:  # past the cap: stop; the steps not done are reported
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - start
        after = (await c.get("/health")).json()
    steps = after["steps"] - before["steps"]
    calls = after["model_calls"] - before["model_calls"]
    return {
        "outputs": outputs,
        "errors": len(errors),
        "not_done_within_cap": sum(len(t) - len(o) for t, o in zip(texts, outputs, strict=True))
        - len(errors),
        "cap_s": CAP_S,
        "requests": len(lat),
        "wall_s": wall,
        "requests_per_s": len(lat) / wall,
        "p50_ms": statistics.median(lat) * 1e3,
        "p99_ms": float(np.percentile(lat, 99)) * 1e3,
        "mean_model_batch": steps / max(calls, 1),
    }


def _batching(run: Path, texts: list[str], rounds: int = 5) -> dict:
    """What micro-batching buys, in process: one step of all sessions as one ``step_many`` call
    against one call per session (interleaved rounds, median), on the server's own predictor."""
    from rnnkit.predictor import Predictor

    torch.set_num_threads(1)
    p = Predictor.from_run(run)
    steps = [p.encode_step(t[0]) for t in texts]
    states: list = [None] * len(texts)
    batched, single = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        p.step_many(steps, states)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        for s in steps:
            p.step_many([s], [None])
        single.append(time.perf_counter() - start)
    b, s1 = statistics.median(batched), statistics.median(single)
    return {
        "streams": len(texts),
        "one_batched_step_ms": b * 1e3,
        "one_step_per_stream_ms": s1 * 1e3,
        "speedup": s1 / b,
    }


def _offline(run: Path, texts: list[str]) -> list[np.ndarray]:
    from rnnkit.artifact import load_artifact

    art = load_artifact(run)
    assert art.vocab is not None
    ids = torch.tensor([[art.vocab.index(ch) for ch in t] for t in texts])  # (S, N)
    state, probs = None, []
    with torch.no_grad():
        for t in range(ids.shape[1]):  # Recurrent.step under LanguageModel.step, all sessions
            logits, state = art.model.step(ids[:, t], state)
            probs.append(torch.softmax(logits.double(), -1).numpy())
    return list(np.stack(probs, axis=1))  # per session (N, V)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    run = args.run or _demo_sized_run(Path(tempfile.mkdtemp()))
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyz ,.ETAOIN")
    texts = ["".join(rng.choice(alphabet, args.steps)) for _ in range(args.sessions)]
    want = _offline(run, texts)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    report: dict = {}
    batching = _batching(run, texts)
    print("batching", json.dumps(batching))
    for mode in ("server_state", "client_state"):
        port = _free_port()
        cmd = [sys.executable, "-m", "rnnkit.cli", "serve", "--run", str(run), "--port", str(port)]
        cmd += ["--batch_wait_ms", "2", "--client_state", str(mode == "client_state").lower()]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/health")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not start") from None
                    time.sleep(0.2)
            load = os.getloadavg()
            server_cpu, client_cpu = _cpu_s(server.pid), time.process_time()
            result = asyncio.run(_load(base, texts, client_state=mode == "client_state"))
            n = max(result["requests"], 1)
            result["server_cpu_ms_per_request"] = (_cpu_s(server.pid) - server_cpu) * 1e3 / n
            result["client_cpu_ms_per_request"] = (time.process_time() - client_cpu) * 1e3 / n
        finally:
            server.terminate()
            server.wait(10)
        outputs = result.pop("outputs")
        # Each session's outputs so far against the offline run's same steps.
        worst = max(
            (
                float(np.abs(np.asarray(o) - w[: len(o)]).max())
                for o, w in zip(outputs, want, strict=True)
                if o
            ),
            default=float("inf"),
        )
        result["isolation"] = {
            "ok": result["errors"] == 0 and worst < 1e-5,
            "max_abs_diff_vs_offline_step": worst,
            "steps_compared": sum(len(o) for o in outputs),
        }
        result["loadavg_before"] = load
        report[mode] = result
        print(mode, json.dumps(result))
    payload = {
        "question": "streaming sessions under concurrent load, server-side vs client-held state",
        "sessions": args.sessions,
        "steps_per_session": args.steps,
        "model": str(args.run or "demo-sized char LSTM E=64 H=256, initial weights"),
        "runtime": "torch eager, 1 thread, micro-batching wait 2 ms",
        "client": "httpx async, one process, loopback",
        "results": report,
        "batching_in_process": batching,
        "machine": {
            "note": "shared, busy 2-core machine; client and server share it",
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(payload, indent=2))
    _readme(payload)


def _readme(payload: dict) -> None:
    lines = [
        "| state | steps done | requests/s | p50 ms | p99 ms | errors | mean model batch | "
        "server / client CPU ms per request | isolation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode, r in payload["results"].items():
        iso = "ok" if r["isolation"]["ok"] else "FAILED"
        lines.append(
            f"| {mode} | {r['isolation']['steps_compared']} | {r['requests_per_s']:.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} | {r['mean_model_batch']:.1f} | "
            f"{r['server_cpu_ms_per_request']:.2f} / {r['client_cpu_ms_per_request']:.2f} | {iso} |"
        )
    lines.append("")
    lines.append(
        f"{payload['sessions']} sessions x {payload['steps_per_session']} steps, "
        f"{payload['runtime']}; client and server on the same shared, busy 2-core machine "
        f"(load average {payload['results']['server_state']['loadavg_before'][0]:.1f} at the "
        "start; `benchmarks/results/serve.json`). Latency is per request in a closed loop of "
        "200 sessions, so it is about sessions / throughput. In process, one batched step of "
        f"{payload['batching_in_process']['streams']} streams takes "
        f"{payload['batching_in_process']['one_batched_step_ms']:.1f} ms against "
        f"{payload['batching_in_process']['one_step_per_stream_ms']:.1f} ms for one step per "
        f"stream ({payload['batching_in_process']['speedup']:.0f}x)."
    )
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- serve-table:start -->", "<!-- serve-table:end -->"
    if start in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        readme.write_text(
            f"{head}{start}\n" + "\n".join(lines) + f"\n{end}{tail}", encoding="utf-8"
        )


if __name__ == "__main__":
    main()
