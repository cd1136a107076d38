"""`gateway doctor`: config, key sources, the running gateway, Claude Code's settings, --probe."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops_support import CLIENT_KEY, OAUTH_TOKEN, SECRETS, ZAI_KEY, leaked, run_cli

from fakes import closed_port
from fakes.config import routes_toml
from fakes.gateway import write_claude_credentials
from gateway.ops.doctor import probe_model
from rules.loader import load_bytes

Factory = Callable[..., Any]
NONESSENTIAL = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def config(zai_url: str, anthropic_url: str, **server: Any) -> str:
    return routes_toml(
        server=server or None,
        providers={
            "zai": {"base_url": zai_url, "key": {"env": "ZAI_API_KEY"}},
            "anthropic": {"base_url": anthropic_url, "key": {"oauth_file": True}},
        },
        routes=[
            {"name": "haiku", "match": "*haiku*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
            {"name": "default", "match": "*", "to": "anthropic"},
        ],
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return path


def test_everything_in_place_passes_and_probes_each_provider(
    upstream_factory: Factory, gateway_factory: Factory, tmp_path: Path
) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    anthropic = upstream_factory("anthropic", bearer=OAUTH_TOKEN, oauth_beta_required=True)
    home = tmp_path / "home"
    credentials = write_claude_credentials(home, OAUTH_TOKEN)
    os.chmod(credentials, 0o600)
    text = config(zai.url, anthropic.url)
    gw = gateway_factory(text, env={"ZAI_API_KEY": ZAI_KEY}, home=home)
    path = write(tmp_path, text)

    done = run_cli("doctor", "--config", str(path), "--url", gw.url, "--probe", home=home, cwd=tmp_path,
                   env={"ZAI_API_KEY": ZAI_KEY, **NONESSENTIAL})

    assert done.code == 0, done.text
    assert "ok    zai: env ZAI_API_KEY is set" in done.out
    assert f"ok    anthropic: oauth_file default (~/.claude/.credentials.json): logged in ({credentials})" in done.out
    assert f"ok    {gw.url} answers: gateway " in done.out
    assert "ok    zai: glm-4.7 answered in " in done.out
    assert "ok    anthropic: claude-sonnet-5-5 answered in " in done.out or "ok    anthropic: claude-" in done.out
    assert done.out.rstrip().endswith("no problems found")
    probe = zai.requests[-1].json
    assert probe["max_tokens"] == 1 and probe["model"] == "glm-4.7"
    assert anthropic.requests[-1].json["max_tokens"] == 1
    assert leaked(done.text) == []


def test_claude_code_lines_and_the_nonessential_traffic_warning(tmp_path: Path) -> None:
    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1", client_keys=[{"env": "GATEWAY_CLIENT_KEY"}]))

    done = run_cli("doctor", "--config", str(path), "--url", f"http://127.0.0.1:{closed_port()}", home=tmp_path,
                   cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY, "GATEWAY_CLIENT_KEY": CLIENT_KEY})

    assert "warn  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is not set" in done.out
    assert 'export ANTHROPIC_CUSTOM_HEADERS="x-gateway-key: <value of $GATEWAY_CLIENT_KEY>"' in done.out
    assert "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in done.out
    block = done.out[done.out.index("      {\n"):done.out.index("\n      }\n") + 8]
    assert json.loads(block)["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert CLIENT_KEY not in done.text


def test_nonessential_traffic_set_in_settings_json_counts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": NONESSENTIAL}))
    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1"))

    done = run_cli("doctor", "--config", str(path), home=home, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY})

    assert "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is not set" not in done.out
    assert f"in {home / '.claude' / 'settings.json'}:" in done.out


def conditional_config() -> str:
    return routes_toml(
        providers={"zai": {"base_url": "http://127.0.0.1:1", "key": {"env": "ZAI_API_KEY"}},
                   "anthropic": {"base_url": "http://127.0.0.1:1", "key": {"client": True}}},
        routes=[
            {"name": "helpers", "match": "*", "when": {"request_class": ["subagent"]}, "to": "zai"},
            {"name": "default", "match": "*", "to": "anthropic"},
        ],
    )


def test_routes_on_request_classes_without_hint_headers_are_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, conditional_config())

    done = run_cli("doctor", "--config", str(path), home=tmp_path, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY, **NONESSENTIAL})

    assert "warn  route(s) helpers depend on what Claude Code says about each request, but " \
           "CLAUDE_CODE_GATEWAY_HINT_HEADERS is not 1" in done.out
    assert "export CLAUDE_CODE_GATEWAY_HINT_HEADERS=1" in done.out
    block = done.out[done.out.index("      {\n"):done.out.index("\n      }\n") + 8]
    assert json.loads(block)["env"]["CLAUDE_CODE_GATEWAY_HINT_HEADERS"] == "1"


def test_hint_headers_set_in_settings_json_count_and_model_only_configs_need_none(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": {"CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1"}}))
    path = write(tmp_path, conditional_config())
    done = run_cli("doctor", "--config", str(path), home=home, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY, **NONESSENTIAL})
    assert "HINT_HEADERS is not 1" not in done.out

    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1"))
    done = run_cli("doctor", "--config", str(path), home=tmp_path, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY, **NONESSENTIAL})
    assert "CLAUDE_CODE_GATEWAY_HINT_HEADERS" not in done.out


def test_a_gateway_that_is_not_running_is_a_problem(tmp_path: Path) -> None:
    port = closed_port()
    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1", port=port))

    done = run_cli("doctor", "--config", str(path), home=tmp_path, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY, **NONESSENTIAL})

    assert done.code == 1
    assert f"FAIL  nothing answers at http://127.0.0.1:{port}/health (connection refused): start it with `gateway serve`" in done.out
    assert f"export ANTHROPIC_BASE_URL=http://127.0.0.1:{port}" in done.out


def test_missing_expired_and_exposed_credentials_are_problems(tmp_path: Path) -> None:
    home = tmp_path / "home"
    credentials = write_claude_credentials(home, OAUTH_TOKEN, expires_at_ms=int((time.time() - 7200) * 1000))
    os.chmod(credentials, 0o644)
    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1"))

    done = run_cli("doctor", "--config", str(path), home=home, cwd=tmp_path, env=NONESSENTIAL)

    assert done.code == 1
    assert "FAIL  zai: env ZAI_API_KEY: environment variable ZAI_API_KEY is not set" in done.out
    assert f"holds a Claude login and is open to group/others (mode 0644): chmod 600 {credentials}" in done.out
    assert f"the login in {credentials} expired 2 h 0 min ago: run `claude` to renew it" in done.out
    assert leaked(done.text) == []


def test_lan_bind_without_client_keys_and_a_shared_login_are_flagged(tmp_path: Path) -> None:
    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1", host="0.0.0.0", port=closed_port()))

    done = run_cli("doctor", "--config", str(path), home=tmp_path, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY})

    assert done.code == 1
    assert "FAIL  listens on 0.0.0.0 without server.client_keys: anyone on the network can use your providers" in done.out
    assert "sharing one subscription with other machines breaks Anthropic's terms; use { client = true }" in done.out


def test_client_key_that_accepts_nobody_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1", host="0.0.0.0",
                                  client_keys=[{"env": "GATEWAY_CLIENT_KEY"}]))

    done = run_cli("doctor", "--config", str(path), home=tmp_path, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY})

    assert (
        "FAIL  server.client_keys[0]: environment variable GATEWAY_CLIENT_KEY is not set, so this key accepts nobody"
        in done.out
    )


def test_an_invalid_config_is_reported_with_its_location(tmp_path: Path) -> None:
    path = write(tmp_path, 'version = 1\n[providers.a]\nbase_url = "http://x"\nkey = { env = "K" }\n\n[[route]]\n'
                           'name = "r"\nmatch = "*"\nto = "b"\n')

    done = run_cli("doctor", "--config", str(path), home=tmp_path, cwd=tmp_path)

    assert done.code == 1
    assert f"FAIL  {path}:9: route[0].to: unknown provider" in done.out or f"FAIL  {path}:9:" in done.out
    assert "the gateway would not start" in done.out


def test_probe_failure_shows_the_upstream_error_without_secrets(upstream_factory: Factory, tmp_path: Path) -> None:
    zai = upstream_factory("zai", api_key="a-different-key-0000")
    path = write(tmp_path, config(zai.url, zai.url))

    done = run_cli("doctor", "--config", str(path), "--url", f"http://127.0.0.1:{closed_port()}", "--probe",
                   home=tmp_path, cwd=tmp_path, env={"ZAI_API_KEY": ZAI_KEY, **NONESSENTIAL})

    assert done.code == 1
    assert "FAIL  zai: glm-4.7 answered 401: authentication_error:" in done.out
    assert "FAIL  anthropic: not probed: no credential for provider 'anthropic'" in done.out
    assert leaked(done.text, SECRETS) == []


def test_a_keyless_provider_is_fine_and_probed_without_a_credential(upstream_factory: Factory, tmp_path: Path) -> None:
    ollama = upstream_factory("ollama")
    text = routes_toml(
        providers={"ollama": {"preset": "ollama", "base_url": ollama.url}},
        routes=[{"name": "all", "match": "*", "to": [{"provider": "ollama", "model": "qwen3-coder"}]}],
    )
    path = write(tmp_path, text)

    done = run_cli("doctor", "--config", str(path), "--url", f"http://127.0.0.1:{closed_port()}", "--probe",
                   home=tmp_path, cwd=tmp_path, env={"ANTHROPIC_API_KEY": CLIENT_KEY, **NONESSENTIAL})

    assert "ok    ollama: no credential is sent (preset ollama)" in done.out
    assert "ok    ollama: qwen3-coder answered in" in done.out
    assert ollama.last.credentials == [] and not ollama.saw(CLIENT_KEY)


def test_probe_model_prefers_a_target_model_then_an_exact_pattern_then_a_tier() -> None:
    text = routes_toml(
        providers={p: {"base_url": "http://127.0.0.1:1", "key": {"client": True}} for p in ("a", "b", "c", "d")},
        routes=[
            {"name": "x", "match": "*haiku*", "to": [{"provider": "a", "model": "glm-4.7"}]},
            {"name": "y", "match": ["kimi-*", "kimi-k2"], "to": "b"},
            {"name": "z", "match": "*", "to": "c"},
        ],
    )
    ruleset = load_bytes(text.encode(), file="r.toml")

    assert probe_model(ruleset, "a") == "glm-4.7"
    assert probe_model(ruleset, "b") == "kimi-k2"
    assert probe_model(ruleset, "c") == "claude-sonnet-5-5"
    assert probe_model(ruleset, "d") == "claude-haiku-5-5"
