"""``gateway doctor``: is everything in place for Claude Code to work through the gateway?

Checks, in order, each printed as ``ok``, ``warn`` or ``FAIL`` with what to do about it:

- the config: found where ``serve`` would find it, valid, its warnings;
- each provider's key sources: environment variable set? OAuth login present, not expired, and
  its file not readable by group or others? a provider with no credential at all;
- access: a LAN bind without client keys, client keys that accept nobody, a Claude login
  shared over the LAN;
- the gateway: does it answer ``/health`` on its address, and does it serve this config?
- Claude Code: the environment (and ``settings.json``) lines to use; a warning when
  ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` is not set, and when routes read Claude Code's
  hint headers (``when``) but ``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1`` is not set;
- ``--probe``: a 1-token request straight to each provider, with the gateway's credentials and
  wire policy (costs one output token per provider).

Exit 0 when nothing FAILed (warnings allowed), 1 otherwise. Secrets are never printed: key
sources are described (``env ZAI_API_KEY``), and upstream error messages have every credential
we sent cut out before they are shown.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from gateway.client_keys import HEADER, resolve_keys
from gateway.ops import http
from gateway.ops.health import CANONICAL_TIERS
from gateway.proxy.facts import HINT_HEADERS_VARIABLE
from gateway.settings import is_loopback, listen_address, load_config, local_url
from gateway.timefmt import ago, duration
from gateway.upstream.credentials import CredentialResolver, KeyUnavailable, oauth_path
from rules.errors import ConfigError
from rules.model import RuleSet

__all__ = ["DoctorOptions", "probe_model", "run"]

Level = Literal["ok", "info", "warn", "fail"]
_MARK = {"ok": "ok  ", "info": "  - ", "warn": "warn", "fail": "FAIL"}
_EXPIRY_WARNING_S = 600.0  # less than this left: say so (Claude Code renews it when used)
_NONESSENTIAL = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"
_PROBE_PROMPT = "Reply with one word: ok"


@dataclass(frozen=True)
class DoctorOptions:
    """The command line of ``gateway doctor``."""

    config: str | None = None
    url: str | None = None  # default: the config's [server] host and port
    probe: bool = False
    timeout: float = 5.0  # per network check (the probe waits up to 6x this)


@dataclass
class _Report:
    out: TextIO
    failures: int = 0
    warnings: int = 0
    secrets: list[str] = field(default_factory=list)  # cut out of anything shown

    def section(self, title: str) -> None:
        self.out.write(f"\n{title}\n")

    def add(self, level: Level, text: str) -> None:
        if level == "fail":
            self.failures += 1
        elif level == "warn":
            self.warnings += 1
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        self.out.write(f"  {_MARK[level]}  {text}\n")

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            self.out.write(f"      {line}\n" if line else "\n")


def _group_or_other_access(path: str) -> str | None:
    """``mode 0644`` when group or others may read or write ``path`` (POSIX only), else None."""
    if os.name == "nt":
        return None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return f"mode {mode:04o}" if mode & 0o077 else None


def _load(options: DoctorOptions, env: Mapping[str, str], cwd: Path, report: _Report) -> RuleSet | None:
    report.section("Config")
    try:
        found = load_config(options.config, env, cwd)
    except ConfigError as exc:
        for problem in exc.problems:
            report.add("fail", problem.render())
        report.add("fail", "the config is invalid: the gateway would not start (check it with `gateway validate`)")
        return None
    ruleset = found.ruleset
    report.add("ok", f"{found.origin}: {len(ruleset.routes)} route(s), {len(ruleset.providers)} provider(s)")
    for warning in ruleset.warnings:
        report.add("warn", warning.render())
    dotenv = cwd / ".env"
    loose = _group_or_other_access(str(dotenv)) if dotenv.exists() else None
    if loose:
        report.add("warn", f"{dotenv} may hold keys and is open to group/others ({loose}): chmod 600 {dotenv}")
    return ruleset


def _check_providers(ruleset: RuleSet, env: Mapping[str, str], report: _Report) -> None:
    report.section("Providers")
    resolver = CredentialResolver(env)
    for name, provider in ruleset.providers.items():
        states = resolver.availability(provider)
        usable = any(s.get("available") is not False for s in states)
        if not provider.key:  # a keyless preset: nothing to check
            report.add("ok", f"{name}: {states[0]['detail']}")
        for number, (source, state) in enumerate(zip(provider.key, states), start=1):
            where = f"{name}: key[{number - 1}] {state['source']}" if len(provider.key) > 1 else f"{name}: {state['source']}"
            available = state.get("available")
            if source.kind == "client":
                report.add("info", f"{where}: the credentials each request brings (Claude Code's own login or key)")
                continue
            if source.kind == "oauth_file":
                _check_oauth(oauth_path(source, env), resolver, where, usable, report)
                continue
            if available:
                level: Level = "warn" if source.kind == "value" else "ok"
                extra = " (written in routes.toml: prefer { env = \"NAME\" })" if source.kind == "value" else " is set"
                report.add(level, f"{where}{extra}")
            else:
                report.add("warn" if usable else "fail", f"{where}: {state.get('detail', 'not available')}")
        if not usable and len(provider.key) > 1:
            report.add("fail", f"{name}: no key source yields a credential: requests sent to it get 401")


def _check_oauth(path: str, resolver: CredentialResolver, where: str, usable: bool, report: _Report) -> None:
    try:
        token = resolver.oauth.token(path)
    except KeyUnavailable as exc:
        report.add("warn" if usable else "fail", f"{where}: {exc}")
        return
    loose = _group_or_other_access(path)
    if loose:
        report.add("fail", f"{where}: {path} holds a Claude login and is open to group/others ({loose}): chmod 600 {path}")
    if token.expires_at_ms is None:
        report.add("ok", f"{where}: logged in ({path})")
        return
    left = token.expires_at_ms / 1000 - time.time()
    if left <= 0:
        report.add(
            "warn" if usable else "fail",
            f"{where}: the login in {path} expired {ago(-left)}: run `claude` to renew it "
            "(the gateway never refreshes it itself)",
        )
    elif left < _EXPIRY_WARNING_S:
        report.add("warn", f"{where}: the login in {path} expires in {duration(left)}; using `claude` renews it")
    else:
        report.add("ok", f"{where}: logged in ({path}), valid for {duration(left)}")


def _check_access(ruleset: RuleSet, host: str, env: Mapping[str, str], report: _Report) -> None:
    report.section("Access")
    lan = not is_loopback(host)
    keys = ruleset.server.client_keys
    if not lan:
        report.add("ok", f"listens on {host}: only this machine can connect")
    elif not keys:
        report.add(
            "fail",
            f"listens on {host} without server.client_keys: anyone on the network can use your providers; "
            'add client_keys = [{ env = "GATEWAY_CLIENT_KEY" }] under [server] (see examples/lan.toml)',
        )
    if keys:
        accepted = resolve_keys(keys, env)
        for problem in accepted.problems:
            report.add("fail", problem)
        if accepted.keys:
            report.add("ok", f"{len(accepted.keys)} client key(s) usable; requests must send one in x-gateway-key")
    if lan:
        shared = [n for n, p in ruleset.providers.items() if any(s.kind == "oauth_file" for s in p.key)]
        if shared:
            report.add(
                "warn",
                f"provider(s) {', '.join(shared)} use this machine's Claude login (oauth_file) on a LAN bind: "
                "sharing one subscription with other machines breaks Anthropic's terms; use { client = true } "
                "so each machine brings its own login",
            )


def _gateway_url(options: DoctorOptions, ruleset: RuleSet) -> tuple[str, str]:
    """(URL to check from here, URL for Claude Code) from --url or the config's address."""
    if options.url:
        url = options.url.rstrip("/")
        return url, url
    host, port = listen_address(ruleset)
    check_url = local_url(host, port)
    if host in ("0.0.0.0", "::", ""):
        return check_url, local_url(_lan_address(), port)
    return check_url, check_url


def _lan_address() -> str:
    """This machine's address on the network (no packet is sent), or a placeholder."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            address = str(probe.getsockname()[0])
            return address if not address.startswith("127.") else "<this-machine's-address>"
    except OSError:
        return "<this-machine's-address>"


def _key_header(ruleset: RuleSet) -> str | None:
    keys = ruleset.server.client_keys
    if not keys:
        return None
    source = keys[0]
    hint = f"<value of ${source.ref}>" if source.kind == "env" else "<your client key>"
    return f"x-gateway-key: {hint}"


def _check_gateway(check_url: str, ruleset: RuleSet, env: Mapping[str, str], timeout: float, report: _Report) -> None:
    report.section("Gateway")
    headers = {}
    keys = resolve_keys(ruleset.server.client_keys, env).keys
    if keys:
        headers[HEADER] = keys[0].decode("utf-8", "surrogateescape")
    try:
        answer = http.request("GET", check_url + "/health", headers=headers, timeout=timeout)
    except http.Unreachable as exc:
        report.add(
            "fail",
            f"{exc.message}: start it with `gateway serve`, or `gateway service install` to run it at login",
        )
        return
    try:
        doc: Any = answer.json()
    except ValueError:
        doc = None
    if answer.status != 200 or not isinstance(doc, dict) or "config" not in doc:
        report.add("fail", f"{check_url}/health answered {answer.status}, not the gateway's /health: "
                           "is another program using this port?")
        return
    config = doc.get("config") or {}
    report.add("ok", f"{check_url} answers: gateway {doc.get('version')}, config generation "
                     f"{config.get('generation')} from {config.get('reason') or config.get('source')}")
    local_sha = ruleset.source.sha256
    if local_sha and config.get("sha256") and config["sha256"] != local_sha:
        report.add("warn", "the running gateway serves a different version of the config than the file on "
                           "disk (a reload pending or failed, or another config)")
    last_error = config.get("last_error")
    if isinstance(last_error, dict):
        report.add("fail", f"the last reload failed; still serving the previous config: {last_error.get('message')}")


def _settings_env(env: Mapping[str, str]) -> tuple[Path, dict[str, Any]]:
    directory = env.get("CLAUDE_CONFIG_DIR")
    base = Path(directory).expanduser() if directory else Path(env.get("HOME") or Path.home()) / ".claude"
    path = base / "settings.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path, {}
    block = doc.get("env") if isinstance(doc, dict) else None
    return path, block if isinstance(block, dict) else {}


def _claude_code(client_url: str, ruleset: RuleSet, env: Mapping[str, str], report: _Report) -> None:
    report.section("Claude Code")
    settings_path, settings = _settings_env(env)
    wanted: dict[str, str] = {"ANTHROPIC_BASE_URL": client_url}
    header = _key_header(ruleset)
    if header:
        wanted["ANTHROPIC_CUSTOM_HEADERS"] = header
    wanted[_NONESSENTIAL] = "1"
    if ruleset.conditional:  # routes read the hint headers, which Claude Code sends only when told
        wanted[HINT_HEADERS_VARIABLE] = "1"

    current = env.get("ANTHROPIC_BASE_URL") or settings.get("ANTHROPIC_BASE_URL")
    if current and str(current).rstrip("/") != client_url:
        report.add("warn", f"ANTHROPIC_BASE_URL is {current}, not this gateway ({client_url})")
    elif current:
        report.add("ok", f"ANTHROPIC_BASE_URL points at this gateway ({client_url})")
    if not (env.get(_NONESSENTIAL) or settings.get(_NONESSENTIAL)):
        report.add(
            "warn",
            f"{_NONESSENTIAL} is not set: Claude Code still sends telemetry, error reports and update "
            "checks straight to their services, outside the gateway; set it to 1 (below)",
        )
    if ruleset.conditional and str(env.get(HINT_HEADERS_VARIABLE) or settings.get(HINT_HEADERS_VARIABLE) or "") != "1":
        conditional = [r.name for r in ruleset.routes if r.when is not None]
        report.add(
            "warn",
            f"route(s) {', '.join(conditional)} depend on what Claude Code says about each request, but "
            f"{HINT_HEADERS_VARIABLE} is not 1 in its environment or {settings_path}: without it every request "
            "counts as request_class unknown; set it to 1 (below)",
        )
    report.add("info", "for one shell (on each machine that uses the gateway):")
    report.lines([f"export {k}={_shell_quote(v)}" for k, v in wanted.items()])
    report.add("info", f"or for every session, in {settings_path}:")
    report.lines(json.dumps({"env": wanted}, indent=2).splitlines())


def _shell_quote(value: str) -> str:
    return value if value.replace(":", "").replace("/", "").replace(".", "").isalnum() else json.dumps(value)


def probe_model(ruleset: RuleSet, provider: str) -> str:
    """A model name the routes send to ``provider``: a target's model, an exact pattern, a tier."""
    for route in ruleset.routes:
        for target in route.to:
            if target.provider.name == provider and target.model:
                return target.model
    for route in ruleset.routes:
        if any(t.provider.name == provider for t in route.to):
            for pattern in route.match:
                if not any(c in pattern for c in "*?["):
                    return pattern
    for tier in CANONICAL_TIERS.values():
        resolved = ruleset.resolve(tier)
        if resolved is not None and any(t.provider.name == provider for t in resolved.to):
            return tier
    return CANONICAL_TIERS["haiku"]


def _probe(ruleset: RuleSet, env: Mapping[str, str], timeout: float, report: _Report) -> None:
    from gateway.errors import ClientError
    from gateway.wire.body import parse_body
    from gateway.wire.headers import upstream_headers
    from gateway.wire.rewrite import body_for_target
    from gateway.wire.signatures import SignatureStore
    from rules.model import Target

    report.section("Probe (one 1-token request per provider)")
    client_headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    # What Claude Code would send, for providers whose key is { client = true }.
    if env.get("ANTHROPIC_API_KEY"):
        client_headers["x-api-key"] = env["ANTHROPIC_API_KEY"]
    if env.get("ANTHROPIC_AUTH_TOKEN"):
        client_headers["authorization"] = f"Bearer {env['ANTHROPIC_AUTH_TOKEN']}"
    resolver = CredentialResolver(env)
    for name, provider in ruleset.providers.items():
        model = probe_model(ruleset, name)
        try:
            credential = resolver.resolve(provider, client_headers)
        except ClientError as exc:
            hint = " (for { client = true }: set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN here)" \
                if any(s.kind == "client" for s in provider.key) else ""
            report.add("fail", f"{name}: not probed: {exc.message}{hint}")
            continue
        report.secrets.extend(v.split(" ", 1)[-1] for _, v in credential.headers if v)
        raw = json.dumps({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": _PROBE_PROMPT}]})
        body = body_for_target(parse_body(raw.encode()), Target(provider, model), SignatureStore())
        headers = upstream_headers(client_headers.items(), provider, credential)
        started = time.perf_counter()
        try:
            # A model may take a while to answer even one token: six times the check timeout.
            answer = http.request("POST", provider.base_url + "/v1/messages", headers=dict(headers),
                                  body=body, timeout=timeout * 6)
        except http.Unreachable as exc:
            report.add("fail", f"{name}: cannot reach {provider.base_url}: {exc.message}")
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status == 200:
            report.add("ok", f"{name}: {model} answered in {elapsed:.0f} ms")
        else:
            report.add("fail", f"{name}: {model} answered {answer.status}: {_error_text(answer.text)}")


def _error_text(text: str) -> str:
    try:
        doc = json.loads(text)
        error = doc.get("error", {}) if isinstance(doc, dict) else {}
        text = f"{error.get('type', '')}: {error.get('message', '')}" if isinstance(error, dict) else text
    except ValueError:
        pass
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _known_secrets(env: Mapping[str, str]) -> list[str]:
    """Values that must never be printed: credentials of the environment Claude Code and we read."""
    names = [n for n in env if n.endswith(("_API_KEY", "_AUTH_TOKEN", "_CLIENT_KEY", "_TOKEN", "_KEY", "_SECRET"))]
    return sorted({env[n] for n in names if len(env[n]) >= 8}, key=len, reverse=True)


def run(options: DoctorOptions, env: Mapping[str, str], cwd: Path, out: TextIO | None = None) -> int:
    """Run every check, print the report; returns the exit code (0 ok or warnings, 1 problems)."""
    report = _Report(out or sys.stdout, secrets=_known_secrets(env))
    report.out.write("gateway doctor\n")
    ruleset = _load(options, env, cwd, report)
    if ruleset is not None:
        sources = [k for p in ruleset.providers.values() for k in p.key] + list(ruleset.server.client_keys)
        report.secrets += [k.ref for k in sources if k.kind == "value" and len(k.ref) >= 4]
        report.secrets += [env[k.ref] for k in sources if k.kind == "env" and len(env.get(k.ref, "")) >= 4]
        _check_providers(ruleset, env, report)
        _check_access(ruleset, listen_address(ruleset)[0], env, report)
        check_url, client_url = _gateway_url(options, ruleset)
        _check_gateway(check_url, ruleset, env, options.timeout, report)
        _claude_code(client_url, ruleset, env, report)
        if options.probe:
            _probe(ruleset, env, options.timeout, report)
    verdict = (
        f"{report.failures} problem(s), {report.warnings} warning(s)"
        if report.failures or report.warnings
        else "no problems found"
    )
    report.out.write(f"\n{verdict}\n")
    return 1 if report.failures else 0
