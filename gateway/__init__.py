"""The gateway: a Sanic server that routes Anthropic Messages API requests by model name."""

__version__ = "0.1.0"
