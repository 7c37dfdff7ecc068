"""``rnnkit serve`` for real: uvicorn on a free loopback port, httpx as the client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from rnnkit.predictor import Predictor

pytest.importorskip("fastapi", reason="fastapi is not installed (the serve extra)")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (the serve extra)")

from rnnkit.serve import ServeConfig, create_app  # noqa: E402


@contextmanager
def server(predictor: Predictor, config: ServeConfig) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free port of 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(predictor, config)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def lm(runs: dict[str, Path]) -> Predictor:
    return Predictor.from_run(runs["language_model"])


def _offline(predictor: Predictor, text: str) -> list[np.ndarray]:
    """The model's own ``step`` (``Recurrent.step``) over ``text``: next-token probabilities."""
    model = predictor.runtime.model
    vocab = predictor.prep.vocab
    assert vocab is not None
    state, out = None, []
    with torch.no_grad():
        for ch in text:
            logits, state = model.step(torch.tensor([vocab.index(ch)]), state)
            out.append(torch.softmax(logits[0].double(), -1).numpy())
    return out


TEXTS = ["abcabcab", "The king", "xyz  zyx", "to be or"]


async def _stream(base: str, text: str, *, client_state: bool) -> list[list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        opened = (await c.post("/sessions")).json()
        key = opened.get("id") or opened["state"]
        probs = []
        for i in range(0, len(text), 3):  # several steps per request
            chunk = list(text[i : i + 3])
            if client_state:
                r = await c.post("/sessions/step", json={"state": key, "inputs": chunk})
                key = r.json()["state"]
            else:
                r = await c.post(f"/sessions/{key}/step", json={"inputs": chunk})
            assert r.status_code == 200, r.text
            probs += [o["probabilities"] for o in r.json()["outputs"]]
        return probs


@pytest.mark.parametrize("client_state", [False, True])
def test_concurrent_sessions_are_isolated_and_batched(lm: Predictor, client_state: bool):
    config = ServeConfig(client_state=client_state, batch_wait_ms=20)
    with server(lm, config) as base:

        async def all_streams() -> list[list[list[float]]]:
            return await asyncio.gather(
                *[_stream(base, t, client_state=client_state) for t in TEXTS]
            )

        results = asyncio.run(all_streams())
        health = httpx.get(f"{base}/health").json()
    for text, got in zip(TEXTS, results, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.stack(_offline(lm, text)), atol=1e-5)
    assert health["status"] == "ok"


def test_eviction_gives_410_and_expiry_too(lm: Predictor):
    with (
        server(lm, ServeConfig(max_sessions=2, session_ttl_s=0.5)) as base,
        httpx.Client(base_url=base) as c,
    ):
        first, second, third = (c.post("/sessions").json()["id"] for _ in range(3))
        r = c.post(f"/sessions/{first}/step", json={"inputs": ["a"]})
        assert r.status_code == 410 and "evicted (least recently used)" in r.json()["error"]
        assert c.post(f"/sessions/{third}/step", json={"inputs": ["a"]}).status_code == 200
        time.sleep(0.7)
        r = c.post(f"/sessions/{third}/step", json={"inputs": ["a"]})
        assert r.status_code == 410 and "expired after 0.5 s idle" in r.json()["error"]
        assert c.post("/sessions/nope/step", json={"inputs": ["a"]}).status_code == 404
        sid = c.post("/sessions").json()["id"]
        assert c.delete(f"/sessions/{sid}").status_code == 200
        assert c.post(f"/sessions/{sid}/step", json={"inputs": ["a"]}).status_code == 410
        del second


def test_tampered_state_token_is_refused(lm: Predictor):
    with server(lm, ServeConfig(client_state=True)) as base, httpx.Client(base_url=base) as c:
        token = c.post("/sessions").json()["state"]
        token = c.post("/sessions/step", json={"state": token, "inputs": ["a", "b"]}).json()[
            "state"
        ]
        header, body, sig = token.split(".")
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        for bad in (f"{header}.{flipped}.{sig}", f"{header}.{body}.{sig[:-1]}x", "garbage"):
            r = c.post("/sessions/step", json={"state": bad, "inputs": ["c"]})
            assert r.status_code == 403, r.text
        ok = c.post("/sessions/step", json={"state": token, "inputs": ["c"]})
        assert ok.status_code == 200
        np.testing.assert_allclose(
            ok.json()["outputs"][0]["probabilities"], _offline(lm, "abc")[-1], atol=1e-5
        )


def test_limits_auth_and_errors(lm: Predictor):
    config = ServeConfig(token="s3cret", max_body_bytes=2000, max_seq_len=50, max_new_tokens=20)
    auth = {"Authorization": "Bearer s3cret"}
    with server(lm, config) as base, httpx.Client(base_url=base) as c:
        assert c.get("/health").status_code == 200  # open for load balancers
        assert c.get("/metadata").status_code == 401
        assert c.get("/metadata", headers={"Authorization": "Bearer wrong"}).status_code == 401
        meta = c.get("/metadata", headers=auth).json()
        assert meta["task"] == "language_model" and "token" not in meta["limits"]
        r = c.post("/predict", headers=auth, json={"inputs": ["x" * 3000]})
        assert r.status_code == 413 and "2000 bytes" in r.json()["error"]
        r = c.post("/predict", headers=auth, json={"inputs": ["x" * 60]})
        assert r.status_code == 413 and "max_seq_len=50" in r.json()["error"]
        r = c.post("/predict", headers=auth, json={"inputs": [[5, 100000]]})
        assert r.status_code == 400 and r.json()["error"].startswith("inputs[0]: token id 100000")
        r = c.post("/predict", headers=auth, json={"wrong": 1})
        assert r.status_code == 422 and r.json()["error"].startswith("body.inputs")
        r = c.post("/generate", headers=auth, json={"prompt": "ab", "max_tokens": 21})
        assert r.status_code == 413
        r = c.post("/generate", headers=auth, json={"prompt": "The ", "max_tokens": 7, "seed": 3})
        tokens = [line[6:] for line in r.text.splitlines() if line.startswith('data: {"token')]
        want = list(lm.generate("The ", max_tokens=7, seed=3))
        assert [json.loads(t)["token"] for t in tokens] == want
        assert r.text.rstrip().endswith("event: end\ndata: {}")
        assert c.get("/docs", headers=auth).status_code == 200
