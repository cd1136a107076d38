#!/usr/bin/env python3
"""The README's picture of the dashboard: a real gateway, fake upstreams, some traffic, Chromium.

    .venv/bin/python scripts/screenshot_dashboard.py [--output docs/dashboard.png] [--width 1440]

What it does, all on loopback, nothing from the internet:
1. starts two fake upstreams from tests/fakes ("anthropic", "zai") and a closed port ("ollama");
2. writes six days of plausible history into a fresh ledger (marked as what it is: synthetic
   rows, so the 7-day charts have bars; the last minutes come from real requests below);
3. starts `gateway serve` on that ledger with a routes.toml of five routes;
4. sends real requests with Claude Code's hint headers: main turns, subagents, Haiku calls,
   compactions; zai then answers 429 with retry-after (a fallback, then a cooldown on its card),
   and "ollama" refuses connections (a circuit opens);
5. opens http://127.0.0.1:PORT/ in headless Chromium and saves a PNG of the whole page.

Needs Chromium (Debian: apt-get install chromium) and the test extras (the official SDK is not
used here; httpx is).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "dashboard"))
# The checkout first: tests/ has a gateway/ folder of its own (its tests), which an editable
# install's import hook would otherwise lose to.
sys.path.insert(0, str(REPO))

from chromium_driver import CHROMIUM, Chromium  # noqa: E402

from fakes import Error, FakeUpstream, Reply, closed_port, unified_headers  # noqa: E402
from fakes.gateway import start_gateway  # noqa: E402
from gateway.ops.ledger.store import COLUMNS, connect  # noqa: E402

CLIENT_KEY = "sk-ant-screenshot-client"
ZAI_KEY = "zai-screenshot-key"

CONFIG = """\
version = 1

[server]
ledger = "{ledger}"

[providers.anthropic]
base_url = "{anthropic}"
key = {{ client = true }}

[providers.zai]
base_url = "{zai}"
key = {{ env = "ZAI_API_KEY" }}

[providers.ollama]
base_url = "http://127.0.0.1:{ollama_port}"
key = {{ value = "local" }}

[[route]]
name = "subagents"
match = "claude-*"
when = {{ request_class = ["subagent", "compaction"] }}
to = [{{ provider = "zai", model = "glm-4.7" }}, {{ provider = "anthropic" }}]

[[route]]
name = "haiku"
match = "claude-haiku-*"
to = [{{ provider = "zai", model = "glm-4.5-air" }}, {{ provider = "anthropic" }}]

[[route]]
name = "local"
match = "local-*"
to = [{{ provider = "ollama", model = "qwen3-coder" }}, {{ provider = "zai", model = "glm-4.7" }}]

[[route]]
name = "default"
match = "*"
to = [{{ provider = "anthropic" }}, {{ provider = "zai", model = "glm-4.7" }}]
"""


def seed_history(path: Path, now: float) -> None:
    """Synthetic rows for the six days before today's traffic (a working day's rhythm)."""
    rng = random.Random(16)
    conn = connect(path, create=True)
    rows = []
    for hour in range(6 * 24, 0, -1):
        start = now - hour * 3600
        local_hour = time.localtime(start).tm_hour
        busy = 9 <= local_hour < 19 and time.localtime(start).tm_wday < 5
        for _ in range(rng.randint(25, 70) if busy else rng.randint(0, 4)):
            kind = rng.random()
            if kind < 0.45:
                route, provider, model, upstream, cls = "default", "anthropic", "claude-sonnet-5-5", "claude-sonnet-5-5", "main"
            elif kind < 0.75:
                route, provider, model, upstream, cls = "subagents", "zai", "claude-sonnet-5-5", "glm-4.7", "subagent"
            elif kind < 0.95:
                route, provider, model, upstream, cls = "haiku", "zai", "claude-haiku-5-5", "glm-4.5-air", "auxiliary"
            else:
                route, provider, model, upstream, cls = "default", "anthropic", "claude-opus-5-5", "claude-opus-5-5", "main"
            values = {
                "ts": start + rng.random() * 3600, "endpoint": "messages", "session": None, "request_class": cls,
                "agent_type": None, "client_model": model, "route": route, "provider": provider,
                "upstream_model": upstream, "status": 200, "stream": 1, "ttfb_ms": rng.uniform(300, 1500),
                "total_ms": rng.uniform(1500, 30000), "input_tokens": rng.randint(200, 6000),
                "output_tokens": rng.randint(50, 2500), "cache_read_tokens": rng.randint(0, 90000),
                "cache_creation_tokens": rng.randint(0, 4000), "tried": 1, "notes": None, "error": None,
            }
            rows.append(tuple(values[c] for c in COLUMNS))
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.execute("COMMIT")
    conn.close()


def traffic(url: str, zai: FakeUpstream, anthropic: FakeUpstream) -> None:
    """Real requests through the gateway, as Claude Code sends them."""
    rng = random.Random(7)
    client = httpx.Client(base_url=url, timeout=30)
    session = "5f0c1d2e-screenshot-session"

    def send(model: str, request_class: str | None = None, agent: str | None = None, stream: bool = True) -> None:
        headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-claude-code-session-id": session}
        if request_class:
            headers["x-claude-code-request-class"] = request_class
        if agent:
            headers["x-claude-code-agent-type"] = agent
        body = {"model": model, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        client.post("/v1/messages?beta=true", json=body, headers=headers).read()

    zai.set_default(Reply(input_tokens=rng.randint(800, 4000), output_tokens=rng.randint(100, 900)))
    # A Claude login's answers say how much of the plan is used: the page draws its windows.
    now = time.time()
    anthropic.set_default(Reply(headers=unified_headers(
        reset=now + 2 * 3600, claim="seven_day",
        windows={"5h": (0.42, now + 2 * 3600 + 1200), "7d": (0.87, now + 2 * 86400 + 5 * 3600)},
    )))
    for _ in range(6):
        send("claude-sonnet-5-5", "main")
        send("claude-haiku-5-5", "auxiliary", stream=False)
        send("claude-sonnet-5-5", "subagent", agent="general-purpose")
    send("claude-opus-5-5", "main")
    send("claude-sonnet-5-5", "compaction")
    for _ in range(4):  # connection refused: the next target answers; after 3 the circuit opens
        send("local-qwen", "main")
    zai.enqueue(Error(429, retry_after=900))  # Z.AI's limit: fall back, then a cooldown
    send("claude-sonnet-5-5", "subagent", agent="Explore")
    send("claude-haiku-5-5", "auxiliary")
    send("claude-sonnet-5-5", "main")


async def shoot(url: str, output: Path, width: int, profile: Path) -> None:
    async with Chromium.launch(profile) as browser:
        await browser.navigate(url + "/")
        await browser.wait_for("document.querySelectorAll('#recent tr').length >= 20", what="the last requests")
        await browser.wait_for("document.querySelectorAll('#chart-day-requests rect').length > 0", what="the charts")
        await asyncio.sleep(3.5)  # let the fresh-row highlight fade, as a person would see the page
        await browser.screenshot(output, width=width)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument("--width", type=int, default=1440)
    args = parser.parse_args()
    if CHROMIUM is None:
        print("Error: no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="dashboard-shot-") as tmp, \
            FakeUpstream("anthropic", api_key=CLIENT_KEY) as anthropic, \
            FakeUpstream("zai", api_key=ZAI_KEY, strict_third_party=True, allowed_betas=None) as zai:
        work = Path(tmp)
        ledger = work / "ledger.db"
        seed_history(ledger, time.time() - 1800)
        config = CONFIG.format(ledger=ledger, anthropic=anthropic.url, zai=zai.url, ollama_port=closed_port())
        gw = start_gateway(config, workdir=work / "gw", env={"ZAI_API_KEY": ZAI_KEY})
        try:
            traffic(gw.url, zai, anthropic)
            asyncio.run(shoot(gw.url, args.output, args.width, work / "chromium"))
        finally:
            gw.stop()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
