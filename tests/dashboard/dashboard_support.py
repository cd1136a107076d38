"""Helpers for the dashboard's tests: a config with secrets to look for, this machine's LAN address."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from fakes.config import routes_toml

ZAI_KEY = "zai-dashboard-secret-5e6f7a8b"
VALUE_KEY = "sk-value-dashboard-secret-9c0d1e"
CLIENT_API_KEY = "sk-ant-api03-dashboard-client-2f3a4b"
GATEWAY_KEY = "gw-dashboard-key-7d8e9f0a1b2c"
SECRETS = (ZAI_KEY, VALUE_KEY, CLIENT_API_KEY, GATEWAY_KEY)
ENV = {"ZAI_API_KEY": ZAI_KEY, "GATEWAY_CLIENT_KEY": GATEWAY_KEY}


def dashboard_config(anthropic_url: str, zai_url: str, *, client_keys: bool = False, **server: Any) -> str:
    """Three providers (client, env and literal keys), a `when` route and a spill_at target."""
    if client_keys:
        server["client_keys"] = [{"env": "GATEWAY_CLIENT_KEY"}]
    return routes_toml(
        providers={
            "anthropic": {"base_url": anthropic_url, "key": {"client": True}},
            "zai": {"base_url": zai_url, "key": {"env": "ZAI_API_KEY"}},
            "literal": {"base_url": anthropic_url, "key": {"value": VALUE_KEY}},
        },
        routes=[
            {"name": "subagents", "match": "claude-*", "when": {"request_class": ["subagent"]},
             "to": [{"provider": "zai", "model": "glm-4.7"}]},
            {"name": "default", "match": "*",
             "to": [{"provider": "anthropic", "spill_at": {"7d": 0.85}}, {"provider": "zai", "model": "glm-4.7"}]},
        ],
        server=server or None,
    )


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text or s[-12:] in text]


def lan_address() -> str | None:
    """A non-loopback IPv4 address of this machine that accepts connections, or None."""
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing: it only picks a route
            candidates.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        candidates += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        pass
    for address in candidates:
        if not ipaddress.ip_address(address).is_loopback:
            return str(address)
    return None
