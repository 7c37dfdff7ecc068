"""``rnnkit serve``: a run (or an exported ONNX model) over HTTP, with streaming sessions."""

from __future__ import annotations

import os
from collections.abc import Sequence


def main(args: Sequence[str]) -> int:
    from jsonargparse import ArgumentParser

    from rnnkit.cli import COMMANDS

    parser = ArgumentParser(
        prog="rnnkit serve", description=COMMANDS["serve"][1], exit_on_error=False
    )
    parser.add_argument("--run", type=str | None, default=None, help="a run directory (torch)")
    parser.add_argument("--onnx", type=str | None, default=None, help="an exported .onnx file")
    parser.add_argument("--host", type=str, default="127.0.0.1", help="0.0.0.0 exposes it")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the model")
    parser.add_argument("--client_state", type=bool, default=False, help="state as signed tokens")
    parser.add_argument("--max_body_bytes", type=int, default=1 << 20)
    parser.add_argument("--max_seq_len", type=int, default=4096)
    parser.add_argument("--max_batch", type=int, default=256)
    parser.add_argument("--max_sessions", type=int, default=10_000)
    parser.add_argument("--session_ttl_s", type=float, default=900.0)
    parser.add_argument("--max_new_tokens", type=int, default=2000)
    parser.add_argument("--batch_wait_ms", type=float, default=2.0)
    ns = parser.parse_args(list(args))
    if (ns.run is None) == (ns.onnx is None):
        raise ValueError("give exactly one of --run DIR or --onnx FILE")
    from rnnkit.predictor import Predictor
    from rnnkit.serve import ServeConfig, serve

    if ns.run is not None:
        import torch

        torch.set_num_threads(ns.threads)
        predictor = Predictor.from_run(ns.run)
    else:
        predictor = Predictor.from_onnx(ns.onnx, threads=ns.threads)
    # The bearer token and the HMAC secret come from the environment, never from argv (ps shows it).
    secret = os.environ.get("RNNKIT_SERVE_SECRET")
    config = ServeConfig(
        token=os.environ.get("RNNKIT_SERVE_TOKEN") or None,
        max_body_bytes=ns.max_body_bytes,
        max_seq_len=ns.max_seq_len,
        max_batch=ns.max_batch,
        max_sessions=ns.max_sessions,
        session_ttl_s=ns.session_ttl_s,
        max_new_tokens=ns.max_new_tokens,
        batch_wait_ms=ns.batch_wait_ms,
        client_state=ns.client_state,
        secret=secret.encode() if secret else None,
    )
    print(f"rnnkit serve: {predictor.task} model on http://{ns.host}:{ns.port} (docs at /docs)")
    serve(predictor, config, host=ns.host, port=ns.port)
    return 0
