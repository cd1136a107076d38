"""SIGHUP reloads routes.toml, as a change of the file does: in every worker, with --no-watch too.

`kill -HUP` used to end the gateway; systemd's `reload` (ExecReload) sends it. Live reload is off
in these tests (the fixture's default, --no-watch), so only the signal can apply the edit.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
from _reload_helpers import answered_by, health, two_providers, wait_for

from fakes import FakeUpstream

Factory = Callable[..., Any]


def _both(upstream_factory: Factory) -> tuple[FakeUpstream, FakeUpstream]:
    return upstream_factory("a"), upstream_factory("b")


def test_sighup_applies_an_edit_without_the_watcher(upstream_factory: Factory, gateway_factory: Factory) -> None:
    a, b = _both(upstream_factory)
    gw = gateway_factory(two_providers(a, b, haiku="a"))
    assert answered_by(gw, "claude-haiku-5-5") == "a"
    gw.write_config(two_providers(a, b, haiku="b"))
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: health(gw)["config"]["generation"] == 2, "generation 2 after SIGHUP")
    assert answered_by(gw, "claude-haiku-5-5") == "b"
    assert gw.running
    gw.wait_for_log("config reloaded: generation 2 (routes changed: haiku)")


def test_sighup_with_the_file_unchanged_says_so_and_keeps_serving(
    upstream_factory: Factory, gateway_factory: Factory
) -> None:
    a, b = _both(upstream_factory)
    gw = gateway_factory(two_providers(a, b))
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_for_log("config: reload asked (SIGHUP): ")
    assert "is unchanged; still serving generation 1" in gw.logs()
    assert gw.running and health(gw)["config"]["generation"] == 1


def test_sighup_to_the_main_process_reloads_every_worker(upstream_factory: Factory, gateway_factory: Factory) -> None:
    a, b = _both(upstream_factory)
    gw = gateway_factory(two_providers(a, b, haiku="a"), args=("--workers", "2"))
    workers: set[int] = set()

    def seen_both_at(wanted: int) -> bool:
        # A fresh connection each time: either worker may accept it.
        doc = httpx.get(gw.url + "/health", timeout=5.0).json()
        if doc["config"]["generation"] == wanted:
            workers.add(doc["pid"])
        return len(workers) == 2

    wait_for(lambda: seen_both_at(1), "both workers up", timeout=20)
    gw.write_config(two_providers(a, b, haiku="b"))
    gw.proc.send_signal(signal.SIGHUP)  # the main process, as systemd's $MAINPID
    workers.clear()
    wait_for(lambda: seen_both_at(2), "both workers at generation 2", timeout=20)
    assert gw.running
