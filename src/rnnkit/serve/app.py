"""``rnnkit serve``: a ``Predictor`` behind FastAPI, with streaming sessions and hard limits.

Routes: ``POST /predict`` (a batch of raw inputs), ``POST /generate`` (a language model's tokens as
server-sent events), ``POST /sessions`` -> id, ``POST /sessions/{id}/step`` (one or more steps; the
state stays on the server), ``DELETE /sessions/{id}``, ``GET /health``, ``GET /metadata``, and
OpenAPI docs at ``/docs``. With ``client_state`` the state travels instead: ``POST /sessions``
returns a signed token and ``POST /sessions/step`` takes and returns it (no server-side store).

Steps of different streams that arrive together run as one batched model step (``MicroBatcher``).
Every error is a JSON ``{"error": "..."}`` with a 4xx status; nothing is ever unpickled.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rnnkit.predictor import Predictor
from rnnkit.serve._state import Gone, MicroBatcher, SessionStore, StateCodec, model_fingerprint


@dataclass
class ServeConfig:
    """Limits and modes of the server (every field is a CLI flag of ``rnnkit serve``)."""

    token: str | None = None  # bearer token every route but /health and /docs requires
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_seq_len: int = 4096  # steps per input sequence (and per step request)
    max_batch: int = 256  # inputs per /predict, and streams per batched step
    max_sessions: int = 10_000  # live server-side sessions (LRU eviction beyond)
    session_ttl_s: float = 900.0  # idle seconds before a session expires
    max_new_tokens: int = 2000  # /generate length cap
    batch_wait_ms: float = 2.0  # how long a step waits for others to share its batch
    client_state: bool = False  # state as an HMAC-signed token held by the client
    secret: bytes | None = None  # HMAC key for client_state (shared by workers); random if None


class PredictBody(BaseModel):
    inputs: list[Any] = Field(description="raw inputs: strings, token ids, or numbers per step")
    max_len: int = Field(64, ge=1, le=1024, description="seq2seq: longest target decoded")


class StepBody(BaseModel):
    inputs: list[Any] = Field(description="one or more steps, in order")


class ClientStepBody(StepBody):
    state: str = Field(description="the token of the previous step (or of POST /sessions)")


class GenerateBody(BaseModel):
    prompt: str | list[int]
    max_tokens: int = Field(100, ge=1)
    temperature: float = Field(0.8, ge=0.0)
    top_k: int | None = Field(None, ge=1)
    seed: int = 0


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Guard:
    """Plain ASGI middleware (cheaper per request than ``@app.middleware``): the bearer token on
    every route but ``OPEN_PATHS`` (401), and the body limit by header or by counting (413)."""

    OPEN_PATHS = ("/health", "/docs", "/openapi.json")

    def __init__(self, app: ASGIApp, *, token: str | None, limit: int) -> None:
        self.app, self.limit = app, limit
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.expected is not None and scope["path"] not in self.OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await _json(send, 401, "missing or wrong bearer token")
                return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _json(send, 413, f"request body exceeds {self.limit} bytes")
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a chunked body without a length
                raise HttpError(413, f"request body exceeds {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


async def _json(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(predictor: Predictor, config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI application serving ``predictor`` under ``config``'s limits."""
    cfg = config or ServeConfig()
    meta = predictor.metadata()
    app = FastAPI(title="rnnkit serve", description=f"{meta['task']} model from {meta['source']}")
    store = SessionStore(max_sessions=cfg.max_sessions, ttl_s=cfg.session_ttl_s)
    codec = StateCodec(
        cfg.secret or secrets.token_bytes(32),
        model_id=model_fingerprint(meta),
        shapes=predictor.prep.state,
    )
    batcher = MicroBatcher(
        predictor.step_many, max_batch=cfg.max_batch, wait_s=cfg.batch_wait_ms / 1e3
    )
    app.state.store, app.state.batcher = store, batcher

    @app.exception_handler(HttpError)
    async def _http_error(_: Request, err: HttpError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, err: ValueError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    app.add_middleware(Guard, token=cfg.token, limit=cfg.max_body_bytes)

    def check_steps(inputs: list[Any]) -> None:
        if not inputs:
            raise HttpError(400, "inputs: give at least one step")
        if len(inputs) > cfg.max_seq_len:
            raise HttpError(
                413, f"inputs: {len(inputs)} steps exceed max_seq_len={cfg.max_seq_len}"
            )

    async def run_steps(inputs: list[Any], state: Any) -> tuple[list[Any], Any]:
        if predictor.prep.streaming is not None:
            raise HttpError(400, f"this model cannot stream: {predictor.prep.streaming}")
        steps = [predictor.encode_step(x, field=f"inputs[{i}]") for i, x in enumerate(inputs)]
        outputs = []
        for step in steps:
            answer, state = await batcher.submit(step, state)
            outputs.append(answer)
        return outputs, state

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "task": meta["task"],
            "sessions": len(store),
            "steps": batcher.steps,  # steps run, and the batched model calls that ran them
            "model_calls": batcher.batches,
        }

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        limits = {k: v for k, v in vars(cfg).items() if k not in ("token", "secret")}
        return {**meta, "limits": limits}

    @app.post("/predict", response_class=JSONResponse)
    async def predict(body: PredictBody) -> JSONResponse:
        if not body.inputs or len(body.inputs) > cfg.max_batch:
            raise HttpError(400 if not body.inputs else 413, f"inputs: give 1 to {cfg.max_batch}")
        for i, raw in enumerate(body.inputs):
            if isinstance(raw, list | str) and len(raw) > cfg.max_seq_len:
                raise HttpError(413, f"inputs[{i}]: longer than max_seq_len={cfg.max_seq_len}")
        outputs = await asyncio.to_thread(predictor.predict, body.inputs, max_len=body.max_len)
        return JSONResponse({"outputs": outputs})

    @app.post("/generate")
    async def generate(body: GenerateBody) -> StreamingResponse:
        if body.max_tokens > cfg.max_new_tokens:
            raise HttpError(413, f"max_tokens exceeds max_new_tokens={cfg.max_new_tokens}")
        if len(body.prompt) > cfg.max_seq_len:
            raise HttpError(413, f"prompt: longer than max_seq_len={cfg.max_seq_len}")
        tokens = predictor.generate(  # checks the prompt and the task before streaming starts
            body.prompt,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_k=body.top_k,
            seed=body.seed,
        )
        first = await asyncio.to_thread(next, tokens)

        def events() -> Iterator[str]:
            yield f"data: {json.dumps({'token': first})}\n\n"
            for token in tokens:
                yield f"data: {json.dumps({'token': token})}\n\n"
            yield "event: end\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/sessions", status_code=201)
    async def open_session() -> dict[str, Any]:
        if predictor.prep.streaming is not None:
            raise HttpError(400, f"this model cannot stream: {predictor.prep.streaming}")
        if cfg.client_state:
            return {"state": codec.encode(None, 0)}
        return {"id": store.open()}

    # Hot routes return JSONResponse directly: FastAPI's response encoding walks every float.
    @app.post("/sessions/step", response_class=JSONResponse)
    async def client_step(body: ClientStepBody) -> JSONResponse:
        if not cfg.client_state:
            raise HttpError(400, "this server keeps state itself: use POST /sessions/{id}/step")
        check_steps(body.inputs)
        try:
            state, steps = codec.decode(body.state)
        except ValueError as err:
            raise HttpError(403, str(err)) from None
        outputs, state = await run_steps(body.inputs, state)
        token = codec.encode(state, steps + len(body.inputs))
        return JSONResponse({"outputs": outputs, "state": token})

    def session(sid: str) -> Any:
        if cfg.client_state:
            raise HttpError(400, "this server returns state to the client: POST /sessions/step")
        try:
            return store.get(sid)
        except Gone as why:
            raise HttpError(410, f"session {sid} is gone: {why}") from None
        except KeyError:
            raise HttpError(404, f"no session {sid}") from None

    @app.post("/sessions/{sid}/step", response_class=JSONResponse)
    async def step(sid: str, body: StepBody) -> JSONResponse:
        check_steps(body.inputs)
        s = session(sid)
        async with s.lock:  # steps of one stream run in order
            outputs, s.state = await run_steps(body.inputs, s.state)
            s.steps += len(body.inputs)
            return JSONResponse({"outputs": outputs, "steps": s.steps})

    @app.delete("/sessions/{sid}")
    async def close(sid: str) -> dict[str, Any]:
        session(sid)
        store.close(sid)
        return {"closed": sid}

    return app


def serve(
    predictor: Predictor,
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
) -> None:
    """Run the app under uvicorn until interrupted."""
    import uvicorn

    app = create_app(predictor, config)
    # httptools and uvloop (the serve extra) are picked up by uvicorn when installed.
    # Keep idle connections longer than a client's pause between steps (uvicorn's 5 s default
    # races with clients that reuse a pooled connection just as the server closes it).
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=75,
    )
