"""The gateway: a Sanic server that routes Anthropic Messages API requests by model name.

The package itself stays light (the command line's offline commands import it and must not
pay for Sanic or httpx): run it with ``gateway serve``, or ``gateway.server.serve(...)``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
