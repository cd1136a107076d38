"""Live reload, end to end: the real `gateway serve`, real files, real watchfiles.

Every wait polls with a deadline; the one wall-clock bound asserted is the issue's own (a change
applies within 1 s).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest
from _reload_helpers import (
    HAIKU,
    HEADERS,
    SONNET,
    ConfigMapDir,
    GatedStream,
    answered_by,
    ask,
    config_state,
    generation,
    health,
    stream_text,
    two_providers,
    wait_for,
    write_by_rename,
    write_in_place,
)
from watchfiles import Change

from fakes import FakeUpstream
from fakes.config import profile_with_urls, routes_toml
from fakes.gateway import GatewayProcess, write_claude_credentials
from gateway.reload.changes import describe_changes, restart_only_changes
from gateway.reload.live import LiveConfig
from gateway.reload.paths import WatchPlan, watched_paths
from gateway.reload.reloader import ConfigReloader
from gateway.reload.watcher import describe_watch
from rules.discover import Discovery
from rules.loader import load_bytes
from rules.model import RuleSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def upstreams(upstream_factory) -> tuple[FakeUpstream, FakeUpstream]:
    return upstream_factory("a"), upstream_factory("b")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stops_cleanly(gw: GatewayProcess) -> None:
    code = gw.stop()
    assert code == 0, gw.logs()
    assert "Traceback" not in gw.logs()


# --- the ways a file changes ---------------------------------------------------------------------


def test_edit_in_place_applies_and_the_log_says_what_changed(upstreams, gateway_factory) -> None:
    a, b = upstreams
    gw = gateway_factory(two_providers(a, b, haiku="a"), watch=True)
    assert answered_by(gw, HAIKU) == "a"

    new = two_providers(a, b, haiku="b")
    write_in_place(gw.config_path, new)

    wait_for(lambda: generation(gw) == 2, "generation 2")
    assert answered_by(gw, HAIKU) == "b"
    state = config_state(gw)
    assert state["sha256"] == _sha256(new)
    assert state["last_error"] is None
    gw.wait_for_log("config reloaded: generation 2 (routes changed: haiku)")
    _stops_cleanly(gw)


def test_write_temp_then_rename_applies_and_warns_about_server_settings(upstreams, gateway_factory) -> None:
    a, b = upstreams
    gw = gateway_factory(two_providers(a, b, haiku="a"), watch=True)

    write_by_rename(gw.config_path, two_providers(a, b, haiku="b", server={"port": 1, "max_body_mb": 8}))

    wait_for(lambda: generation(gw) == 2, "generation 2")
    assert answered_by(gw, HAIKU) == "b"
    logs = gw.wait_for_log("only apply when the gateway restarts")
    assert "server.port unset -> 1, server.max_body_mb 32 -> 8 changed" in logs
    assert f"keeps serving 127.0.0.1:{gw.port}" in logs


def test_kubernetes_configmap_symlink_swap_applies_every_time(upstreams, gateway_factory, tmp_path) -> None:
    a, b = upstreams
    configmap = ConfigMapDir(tmp_path / "configmap")
    configmap.publish(two_providers(a, b, haiku="a"))
    gw = gateway_factory(None, args=["--config", str(configmap.path)], watch=True)
    assert answered_by(gw, HAIKU) == "a"

    configmap.publish(two_providers(a, b, haiku="b"))
    wait_for(lambda: generation(gw) == 2, "generation 2 after the first ..data swap")
    assert answered_by(gw, HAIKU) == "b"

    # The real file now lives in another directory: the watch must have followed the swap.
    configmap.publish(two_providers(a, b, haiku="a", haiku_model="glm-4.7"))
    wait_for(lambda: generation(gw) == 3, "generation 3 after the second ..data swap")
    assert answered_by(gw, HAIKU) == "a"
    assert a.last.model == "glm-4.7"
    assert config_state(gw)["last_error"] is None


# --- broken versions -----------------------------------------------------------------------------

_GOOD_LINE = 'to = [{ provider = "a" }]'


def _broken(kind: str, good: str) -> tuple[str, str, str]:
    """(broken text, the text of the line that is wrong, the config path /health names)."""
    if kind == "toml":
        return good.replace('match = "*haiku*"', 'match = "*haiku*'), 'match = "*haiku*', ""
    if kind == "schema":
        line = "tiemout_s = 5"
        return good.replace('key = { client = true }\n', f"key = {{ client = true }}\n{line}\n", 1), line, \
            "providers.a.tiemout_s"
    line = 'to = [{ provider = "zaii" }]'
    return good.replace(_GOOD_LINE, line), line, "route[0].to[0].provider"


@pytest.mark.parametrize("kind", ["toml", "schema", "semantic"])
def test_broken_version_keeps_the_last_good_rules_until_fixed(kind, upstreams, gateway_factory) -> None:
    a, b = upstreams
    good = two_providers(a, b, haiku="a")
    assert _GOOD_LINE in good
    gw = gateway_factory(good, watch=True)
    broken, bad_line, path = _broken(kind, good)
    line = broken.splitlines().index(bad_line) + 1

    gw.write_config(broken)
    state = wait_for(lambda: (s := config_state(gw))["last_error"] and s, "last_error in /health")

    error = state["last_error"]
    assert state["generation"] == 1
    assert (error["file"], error["line"], error["path"]) == (str(gw.config_path), line, path)
    assert error["message"].startswith(f"{gw.config_path}:{line}: ")
    assert health(gw)["status"] == "degraded"
    assert answered_by(gw, HAIKU) == "a"  # still the last good rules

    gw.write_config(broken)  # the same broken bytes once more: nothing new to say
    gw.write_config(two_providers(a, b, haiku="b"))
    wait_for(lambda: generation(gw) == 2, "generation 2 after the fix")
    assert config_state(gw)["last_error"] is None
    assert answered_by(gw, HAIKU) == "b"
    logs = gw.logs()
    assert logs.count(f"config reload failed, still serving generation 1: {gw.config_path}:{line}: ") == 1


def test_deleted_file_keeps_the_rules_and_recreating_it_applies(upstreams, gateway_factory) -> None:
    a, b = upstreams
    gw = gateway_factory(two_providers(a, b, haiku="a"), watch=True)

    gw.config_path.unlink()
    state = wait_for(lambda: (s := config_state(gw))["last_error"] and s, "last_error after the delete")
    assert "the config file is gone" in state["last_error"]["message"]
    assert state["generation"] == 1
    assert answered_by(gw, HAIKU) == "a"
    gw.wait_for_log("the config file is gone")

    recreated = two_providers(a, b, haiku="b")
    write_in_place(gw.config_path, recreated)
    wait_for(lambda: generation(gw) == 2, "generation 2 after recreating the file")
    assert config_state(gw)["last_error"] is None
    assert answered_by(gw, HAIKU) == "b"

    # Gone again, then back with the very bytes in use: the error clears, no new generation.
    gw.config_path.unlink()
    wait_for(lambda: config_state(gw)["last_error"], "last_error after the second delete")
    write_in_place(gw.config_path, recreated)
    wait_for(lambda: config_state(gw)["last_error"] is None, "last_error cleared")
    assert generation(gw) == 2


def test_burst_of_50_writes_ends_on_the_last_content(upstreams, gateway_factory) -> None:
    a, b = upstreams
    gw = gateway_factory(two_providers(a, b, haiku="a"), watch=True)

    versions = [two_providers(a, b, haiku="a", haiku_model=f"model-{i}") for i in range(50)]
    for text in versions:
        write_in_place(gw.config_path, text)

    final = _sha256(versions[-1])
    wait_for(lambda: (s := config_state(gw))["sha256"] == final and s["last_error"] is None,
             "the last version to be in use")
    assert answered_by(gw, HAIKU) == "a"
    assert a.last.model == "model-49"
    # Debounced: the burst is taken in a few reloads, not one per write.
    assert generation(gw) < 10


# --- in-flight requests and workers --------------------------------------------------------------


def test_stream_in_flight_finishes_on_old_rules_while_new_requests_move(upstream_factory, gateway_factory) -> None:
    """The issue's scenario on examples/mixed.toml: move haiku, break the file, fix it."""
    zai, anthropic = upstream_factory("zai"), upstream_factory("anthropic")
    mixed = profile_with_urls(EXAMPLES / "mixed.toml", {"zai": zai.url, "anthropic": anthropic.url})
    zai_haiku = 'to = [{ provider = "zai", model = "glm-4.7" }]'
    assert zai_haiku in mixed
    gw = gateway_factory(mixed, env={"ZAI_API_KEY": "zai-key"}, watch=True)
    gate = GatedStream("zai")
    zai.enqueue(gate.behaviour)

    body = {"model": HAIKU, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=30.0) as client, client.stream(
        "POST", gw.url + "/v1/messages?beta=true", json=body, headers=HEADERS
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        seen: list[str] = []
        while sum(line.startswith("data:") for line in seen) < gate.hold_after:
            seen.append(next(lines))
        assert gate.started.is_set() and not gate.finished.is_set()

        written = time.monotonic()
        gw.write_config(mixed.replace(zai_haiku, 'to = "anthropic"'))
        wait_for(lambda: answered_by(gw, HAIKU) == "anthropic", "a haiku request on the new rules")
        applied_after = time.monotonic() - written
        assert applied_after < 1.0, f"the edit took {applied_after:.2f}s to apply"

        gate.release()
        seen.extend(lines)
    text, events = stream_text(seen)
    assert text.startswith("[zai] model=glm-4.7")
    assert events[-1] == "message_stop" and "error" not in events
    assert gate.finished.is_set()  # the old upstream sent it all, nothing was cut

    # A typo keeps the current rules serving and shows in /health; fixing it applies.
    gw.write_config(mixed.replace(zai_haiku, 'to = "anthropicc"'))
    state = wait_for(lambda: (s := config_state(gw))["last_error"] and s, "the typo in /health")
    assert "anthropicc" in state["last_error"]["message"]
    assert state["generation"] == 2
    assert answered_by(gw, HAIKU) == "anthropic"
    gw.write_config(mixed)
    wait_for(lambda: generation(gw) == 3, "generation 3 after the fix")
    assert answered_by(gw, HAIKU) == "zai"
    assert answered_by(gw, SONNET) == "anthropic"


def test_every_worker_applies_the_change(upstreams, gateway_factory) -> None:
    a, b = upstreams
    gw = gateway_factory(two_providers(a, b, haiku="a"), args=["--workers", "2"], watch=True)
    generations: dict[int, int] = {}

    def poll() -> dict[int, int]:
        doc = health(gw)  # a fresh connection each time: any worker may take it
        generations[doc["pid"]] = doc["config"]["generation"]
        return generations

    wait_for(lambda: len(poll()) >= 2, "both workers to answer /health", timeout=20.0)
    gw.write_config(two_providers(a, b, haiku="b"))
    wait_for(lambda: len(poll()) >= 2 and set(generations.values()) == {2}, "both workers on generation 2",
             timeout=20.0)
    assert len(generations) == 2
    assert gw.logs().count("config reloaded: generation 2") == 2
    _stops_cleanly(gw)


# --- credentials files and what the startup log says -----------------------------------------------


def test_claude_login_is_noticed_and_used(upstream_factory, gateway_factory, gateway_home) -> None:
    anthropic = upstream_factory("anthropic", bearer="login-token-2")
    config = (
        f'version = 1\n[providers.anthropic]\nbase_url = "{anthropic.url}"\nkey = {{ oauth_file = true }}\n'
        '[[route]]\nname = "default"\nmatch = "*"\nto = "anthropic"\n'
    )
    gw = gateway_factory(config, home=gateway_home, watch=True)  # no ~/.claude yet
    credentials = gateway_home / ".claude" / ".credentials.json"
    gw.wait_for_log(f"watching credentials file {credentials}")
    assert ask(gw, HAIKU).status_code == 401  # no login yet

    write_claude_credentials(gateway_home, "login-token-1")
    gw.wait_for_log(f"credentials file changed: {credentials} (a login valid until")
    write_claude_credentials(gateway_home, "login-token-2")
    wait_for(lambda: gw.logs().count(f"credentials file changed: {credentials}") == 2, "the second login")
    assert answered_by(gw, HAIKU) == "anthropic"
    assert "login-token" not in gw.logs()


def test_no_watch_turns_live_reload_off(upstreams, gateway_factory) -> None:
    a, b = upstreams
    gw = gateway_factory(two_providers(a, b, haiku="a"), watch=False)
    gw.wait_for_log("live reload is off (--no-watch)")
    assert "watching" not in gw.logs()

    gw.write_config(two_providers(a, b, haiku="b"))
    # Nothing must happen: watch for longer than a change takes to apply (under 1 s).
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert generation(gw) == 1
        time.sleep(0.1)
    assert answered_by(gw, HAIKU) == "a"


def test_embedded_default_is_not_watched_and_the_log_says_so(upstreams, gateway_factory) -> None:
    a, _ = upstreams
    gw = gateway_factory(None, env={"GATEWAY_ANTHROPIC_BASE_URL": a.url}, watch=True)
    logs = gw.wait_for_log("the config comes from the embedded default, which is not watched")
    assert "restart the gateway to change it" in logs
    assert "for changes" not in logs  # no config file is watched
    credentials = gw.home / ".claude" / ".credentials.json"
    assert f"watching credentials file {credentials}" in logs
    write_claude_credentials(gw.home, "login-token")  # the login is still watched
    gw.wait_for_log(f"credentials file changed: {credentials} (a login valid until")
    _stops_cleanly(gw)


# --- the pieces, without a server -------------------------------------------------------------------


def _ruleset(text: str, file: str = "routes.toml") -> RuleSet:
    return load_bytes(text.encode(), file=file)


def _config(haiku: str = "a", server: dict[str, object] | None = None, **extra_providers: str) -> str:
    providers = {"a": {"base_url": "http://127.0.0.1:1", "key": {"client": True}},
                 "b": {"base_url": "http://127.0.0.1:2", "key": {"client": True}}}
    providers.update({name: {"base_url": url, "key": {"client": True}} for name, url in extra_providers.items()})
    return routes_toml(server=server, providers=providers, routes=[
        {"name": "haiku", "match": "*haiku*", "to": haiku},
        {"name": "default", "match": "*", "to": "b"},
    ])


def test_watched_paths_follow_a_configmap_to_its_real_file(tmp_path) -> None:
    configmap = ConfigMapDir(tmp_path)
    configmap.publish("version = 1\n")
    real = tmp_path.resolve()
    assert watched_paths(configmap.path) == (
        f"{real}/routes.toml", f"{real}/..data", f"{real}/..2024_01_01_00_00_00.1/routes.toml",
    )
    configmap.publish("version = 1\n# two\n")
    assert watched_paths(configmap.path)[-1] == f"{real}/..2024_01_01_00_00_00.2/routes.toml"


def test_watched_paths_of_a_missing_file_and_of_a_symlink_loop(tmp_path) -> None:
    real = tmp_path.resolve()
    assert watched_paths(tmp_path / "sub" / "routes.toml") == (f"{real}/sub/routes.toml",)
    os.symlink("loop-b", tmp_path / "loop-a")
    os.symlink("loop-a", tmp_path / "loop-b")
    paths = watched_paths(tmp_path / "loop-a")  # ends instead of spinning
    assert set(paths) == {f"{real}/loop-a", f"{real}/loop-b"}


def test_watch_plan_watches_the_nearest_existing_directory_until_the_file_can_appear(tmp_path) -> None:
    home = tmp_path.resolve()
    credentials = f"{home}/.claude/.credentials.json"
    plan = WatchPlan.of([credentials])
    assert plan.directories == {str(home)}
    assert plan.relevant(Change.added, f"{home}/.claude")  # the directory appearing counts
    assert plan.relevant(Change.modified, credentials)
    assert not plan.relevant(Change.modified, f"{home}/.claude/history.jsonl")
    assert not plan.relevant(Change.added, f"{home}/notes.txt")


def test_describe_changes_names_routes_and_providers() -> None:
    old = _ruleset(_config(haiku="a"))
    assert describe_changes(old, _ruleset(_config(haiku="a") + "\n# a comment\n")) == \
        "no change in effect (comments or formatting only)"
    new = _ruleset(_config(haiku="c", c="http://127.0.0.1:3"))
    assert describe_changes(old, new) == "routes changed: haiku; providers added: c"
    assert describe_changes(new, old) == "routes changed: haiku; providers removed: c"


def test_restart_only_changes_lists_listener_and_body_limit() -> None:
    old = _ruleset(_config())
    new = _ruleset(_config(server={"host": "0.0.0.0", "max_body_mb": 4}))
    assert restart_only_changes(old, new) == ["server.host unset -> '0.0.0.0'", "server.max_body_mb 32 -> 4"]
    assert restart_only_changes(old, old) == []


def test_describe_watch_says_what_is_watched() -> None:
    ruleset = _ruleset(_config())
    on_file = describe_watch(Discovery("file", Path("/etc/gw/routes.toml"), "--config"), ruleset, {}, True)
    assert on_file[0].startswith("watching /etc/gw/routes.toml for changes")
    legacy = describe_watch(Discovery("env", None, "legacy environment"), ruleset, {}, True)
    assert legacy == ["the config comes from the legacy environment, which is not watched: "
                      "restart the gateway to change it"]
    off = describe_watch(Discovery("file", Path("/etc/gw/routes.toml"), "--config"), ruleset, {}, False)
    assert off == ["live reload is off (--no-watch): changes to the config apply at the next start"]


async def test_reloader_applies_each_version_once_and_keeps_the_last_good(tmp_path) -> None:
    path = tmp_path / "routes.toml"
    first = _config(haiku="a")
    path.write_text(first)
    live = LiveConfig(_ruleset(first, str(path)), "--config")
    swapped: list[int] = []
    reloader = ConfigReloader(path, live, {}, on_swap=lambda loaded: swapped.append(loaded.generation))

    assert await reloader.check() is None  # the bytes in use
    path.write_text(first + "oops = [\n")
    assert await reloader.check() is None
    assert live.last_error is not None and live.last_error.line == first.count("\n") + 1
    path.write_text(first)  # undo: back to the rules in use, no new generation
    assert await reloader.check() is None
    assert live.last_error is None and live.current.generation == 1
    path.write_text(_config(haiku="b"))
    loaded = await reloader.check()
    assert loaded is not None and loaded.generation == 2 and swapped == [2]
    assert live.current.ruleset.resolve("claude-haiku-5-5").to[0].provider.name == "b"
    assert await reloader.check() is None  # nothing new
    path.unlink()
    assert await reloader.check() is None
    assert live.last_error is not None and "gone" in live.last_error.message
    assert live.current.generation == 2
