"""The usage ledger: one SQLite row per request, kept across restarts.

- ``store``: the file (where it is, its schema, how a connection is opened);
- ``rows``: an ``Exchange`` as a row;
- ``writer``: the exchange listener and its writer thread (batches, retention, size bound);
- ``reader``: what the dashboard reads (the last requests, per-provider time buckets);
- ``report``: ``gateway stats --since`` (grouped totals read straight from the file).
"""

from __future__ import annotations

__all__: list[str] = []
