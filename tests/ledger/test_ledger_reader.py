"""The dashboard's reader: it follows the file by id and lists the last Messages calls."""

from __future__ import annotations

import time
from pathlib import Path

from ledger_support import seed

from gateway.ops.ledger.reader import LedgerReader


def test_the_reader_follows_new_rows_and_lists_the_last_ones(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    now = time.time()
    seed(path, [now - 9 * 86400, now - 120, now - 60], provider="zai", input_tokens=100, output_tokens=1)
    seed(path, [now - 30], endpoint="count_tokens")
    reader = LedgerReader(path)
    first = reader.read(now, 0)
    assert sum(first["charts"]["providers"]["zai"]["day_requests"]) == 2  # 9 days ago is off the chart
    assert len(first["recent"]) == 3  # count_tokens calls are not listed
    seed(path, [now - 1], provider="anthropic", client_model="claude-opus-5-5")
    second = reader.read(now, 0)
    assert second["recent"][0]["client_model"] == "claude-opus-5-5"
    assert second["charts"]["providers"]["anthropic"]["day_requests"][-1] == 1
    assert sum(second["charts"]["providers"]["zai"]["day_tokens"]) == 202
    reader.close()
    assert LedgerReader(tmp_path / "none.db").read(now, 0)["error"].startswith("no ledger at ")
