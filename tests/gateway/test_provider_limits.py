"""max_concurrent gates of gateway.limits."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import Overloaded
from gateway.upstream.limits import Limits, ProviderLimit
from rules.model import KeySource, Provider


async def test_requests_beyond_the_limit_wait_in_order_and_get_slots_handed_over() -> None:
    gate = ProviderLimit(limit=1, queue_limit=2)
    await gate.acquire("p")
    order: list[int] = []

    async def waiter(n: int) -> None:
        await gate.acquire("p")
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    assert order == [] and gate.in_flight == 1
    gate.release()
    await asyncio.sleep(0)
    assert order == [1] and gate.in_flight == 1
    gate.release()
    await asyncio.gather(*tasks)
    assert order == [1, 2]
    gate.release()
    assert gate.in_flight == 0


async def test_full_queue_answers_overloaded() -> None:
    gate = ProviderLimit(limit=1, queue_limit=1)
    await gate.acquire("zai")
    queued = asyncio.create_task(gate.acquire("zai"))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as info:
        await gate.acquire("zai")
    assert info.value.status == 529
    assert "provider 'zai' is at its max_concurrent limit (1 in flight, 1 waiting)" in info.value.message
    queued.cancel()


async def test_cancelled_waiter_leaves_the_queue_without_leaking_a_slot() -> None:
    gate = ProviderLimit(limit=1, queue_limit=4)
    await gate.acquire("p")
    queued = asyncio.create_task(gate.acquire("p"))
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.release()
    assert gate.in_flight == 0
    await gate.acquire("p")
    assert gate.in_flight == 1


async def test_a_release_between_a_cancel_and_its_cleanup_leaves_no_error_and_no_leak() -> None:
    # The client of a queued request leaves (its task is cancelled: the waiter future at once,
    # the task's cleanup a loop turn later) while the request in flight finishes in between:
    # release() has already taken the cancelled waiter off the queue.
    gate = ProviderLimit(limit=1, queue_limit=4)
    await gate.acquire("p")
    queued = [asyncio.create_task(gate.acquire("p")) for _ in range(3)]
    await asyncio.sleep(0)
    for task in queued[:2]:
        task.cancel()
    gate.release()  # before the cancelled tasks ran: pops both cancelled waiters, hands the slot on
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert [type(r) for r in results] == [asyncio.CancelledError, asyncio.CancelledError, type(None)]
    assert gate.in_flight == 1 and not gate._waiters
    gate.release()
    assert gate.in_flight == 0


def test_limits_follow_config_changes() -> None:
    limits = Limits()
    base = Provider("p", "http://x", (KeySource("client"),), max_concurrent=2)
    first = limits.for_provider(base)
    assert first is not None and first.limit == 2 and first.queue_limit == 8
    assert limits.for_provider(base) is first
    changed = limits.for_provider(Provider("p", "http://x", (KeySource("client"),), max_concurrent=3, max_queue=0))
    assert changed is not first and changed is not None and changed.queue_limit == 0
    assert limits.for_provider(Provider("q", "http://x", (KeySource("client"),))) is None
