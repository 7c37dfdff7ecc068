"""Where a stream's state lives between requests: a bounded server-side store, or the client.

- ``SessionStore``: id -> state, at most ``max_sessions`` (least recently used evicted first) and
  each for at most ``ttl_s`` seconds idle; an evicted or expired id is remembered (bounded) so a
  client hears 410 Gone, not 404, and knows to open a new session.
- ``StateCodec``: the state as an opaque token, ``payload.signature`` with an HMAC-SHA256 over the
  payload (JSON header + raw float32 bytes, base64url) under the server's secret; any worker that
  holds the secret continues any stream, and a token changed by one bit is refused. The header
  names the model (a fingerprint of its metadata), so a token cannot move between models.
- ``MicroBatcher``: steps that arrive together from different streams run as one batched step.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

States = dict[str, np.ndarray]


class Gone(Exception):
    """The session existed but was evicted (LRU) or expired (TTL)."""


@dataclass
class Session:
    state: States | None
    last_used: float
    steps: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SessionStore:
    """Sessions by id with LRU and idle-TTL eviction (see the module docstring)."""

    def __init__(
        self, *, max_sessions: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_sessions < 1 or ttl_s <= 0:
            raise ValueError("max_sessions must be >= 1 and ttl_s > 0")
        self.max_sessions, self.ttl_s, self.clock = max_sessions, ttl_s, clock
        self._live: OrderedDict[str, Session] = OrderedDict()
        self._gone: OrderedDict[str, str] = OrderedDict()  # id -> why, bounded
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._live)

    def open(self) -> str:
        self._expire()
        sid = secrets.token_urlsafe(12)
        self._live[sid] = Session(None, self.clock())
        while len(self._live) > self.max_sessions:
            old, _ = self._live.popitem(last=False)
            self._forget(old, "evicted (least recently used) to admit new sessions")
        return sid

    def get(self, sid: str) -> Session:
        """The live session ``sid`` (now most recently used); ``Gone`` or ``KeyError``."""
        self._expire()
        if sid in self._live:
            session = self._live[sid]
            session.last_used = self.clock()
            self._live.move_to_end(sid)
            return session
        if sid in self._gone:
            raise Gone(self._gone[sid])
        raise KeyError(sid)

    def close(self, sid: str) -> None:
        self.get(sid)
        del self._live[sid]
        self._forget(sid, "closed by the client")

    def _expire(self) -> None:
        now = self.clock()
        while self._live:
            sid, session = next(iter(self._live.items()))
            if now - session.last_used <= self.ttl_s:
                break
            del self._live[sid]
            self._forget(sid, f"expired after {self.ttl_s:g} s idle")

    def _forget(self, sid: str, why: str) -> None:
        self.evicted += why.startswith(("evicted", "expired"))
        self._gone[sid] = why
        while len(self._gone) > 10 * self.max_sessions:
            self._gone.popitem(last=False)


class StateCodec:
    """States <-> HMAC-signed opaque tokens (see the module docstring)."""

    def __init__(self, secret: bytes, *, model_id: str, shapes: dict[str, list[int]]) -> None:
        if len(secret) < 16:
            raise ValueError("the state-signing secret must be at least 16 bytes")
        self._secret, self.model_id, self.shapes = secret, model_id, shapes

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._secret, payload, hashlib.sha256).digest())

    def encode(self, state: States | None, steps: int) -> str:
        names = list(self.shapes)
        header = {"v": 1, "model": self.model_id, "steps": steps, "zero": state is None}
        body = b"" if state is None else b"".join(state[n].astype("<f4").tobytes() for n in names)
        payload = (
            _b64(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64(body)
        ).encode()
        return payload.decode() + "." + self._sign(payload)

    def decode(self, token: str) -> tuple[States | None, int]:
        """Verify and unpack a token; ``ValueError`` naming why it is refused."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3:
            raise ValueError("state token is malformed (expected header.body.signature)")
        payload = f"{parts[0]}.{parts[1]}".encode()
        if not hmac.compare_digest(self._sign(payload), parts[2]):
            raise ValueError(
                "state token signature does not verify: it was altered or not issued here"
            )
        header = json.loads(_unb64(parts[0]))
        if header.get("model") != self.model_id:
            raise ValueError("state token belongs to another model")
        if header.get("zero"):
            return None, int(header["steps"])
        flat = np.frombuffer(_unb64(parts[1]), dtype="<f4")
        state, at = {}, 0
        for name, (layers, size) in self.shapes.items():
            n = layers * size
            state[name] = flat[at : at + n].reshape(layers, 1, size).astype(np.float32)
            at += n
        return state, int(header["steps"])


def model_fingerprint(metadata: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise ValueError("state token is malformed (bad base64)") from None


class MicroBatcher:
    """Collect single steps from many streams for up to ``wait_s`` (or ``max_batch`` of them) and
    run them as one ``step_many`` call on one worker thread.

    ``submit(step, state)`` resolves to ``(answer, new_state)``. The wait is bounded: the first
    step of a batch never waits longer than ``wait_s``, so a lone stream pays at most that.
    """

    def __init__(
        self,
        step_many: Callable[[list[Any], list[States | None]], tuple[list[Any], list[States]]],
        *,
        max_batch: int,
        wait_s: float,
    ) -> None:
        self.step_many, self.max_batch, self.wait_s = step_many, max_batch, wait_s
        self._queue: asyncio.Queue[tuple[Any, States | None, asyncio.Future[Any]]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-step")
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.steps = 0

    async def submit(self, step: Any, state: States | None) -> tuple[Any, States]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((step, state, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            deadline = loop.time() + self.wait_s
            while len(items) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            steps = [i[0] for i in items]
            states = [i[1] for i in items]
            try:
                answers, new = await loop.run_in_executor(self._pool, self.step_many, steps, states)
            except Exception as err:  # one bad batch fails its own requests, not the server
                for *_, fut in items:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            self.batches += 1
            self.steps += len(items)
            for (_, _, fut), answer, state in zip(items, answers, new, strict=True):
                if not fut.done():
                    fut.set_result((answer, state))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
