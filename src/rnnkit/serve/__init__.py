"""HTTP serving of a ``Predictor``: FastAPI routes, sessions, signed state, micro-batching."""

from rnnkit.serve.app import ServeConfig, create_app, serve

__all__ = ["ServeConfig", "create_app", "serve"]
