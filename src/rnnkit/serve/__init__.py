"""HTTP serving of a ``Predictor``: FastAPI routes, sessions, signed state, micro-batching."""

from rnnkit.serve.app import BodyLimit, ServeConfig, create_app, serve

__all__ = ["BodyLimit", "ServeConfig", "create_app", "serve"]
