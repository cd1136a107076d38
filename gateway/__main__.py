"""``python -m gateway``: the same command line as the ``gateway`` script."""

from __future__ import annotations

from gateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
