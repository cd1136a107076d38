"""count_tokens: the local estimate, and one upstream call per burst of identical calls."""

from __future__ import annotations

import asyncio

import pytest

from gateway.proxy.count_tokens import (
    Answer,
    CountTokensCache,
    cache_key,
    estimate_answer,
)
from gateway.wire.estimate import IMAGE_TOKENS, estimate_tokens, text_tokens
from policy.captured import COUNT_TOKENS_REQUEST, request_body, request_bytes

# The examples of Anthropic's token-counting guide, with the counts it publishes.
SCIENTIST = {"model": "m", "system": "You are a scientist", "messages": [{"role": "user", "content": "Hello, Claude"}]}
WEATHER = {
    "model": "m",
    "tools": [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": {
                "type": "object",
                "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}},
                "required": ["location"],
            },
        }
    ],
    "messages": [{"role": "user", "content": "What's the weather like in San Francisco?"}],
}


def test_documented_examples_within_the_stated_error() -> None:
    assert estimate_tokens(SCIENTIST) == 14
    assert abs(estimate_tokens(WEATHER) - 403) / 403 < 0.10


def test_words_numbers_and_punctuation() -> None:
    assert text_tokens("") == 0
    assert text_tokens("You are a scientist") == 4
    assert text_tokens("Hello, Claude") == 3
    assert text_tokens("12345678") == 3
    assert text_tokens("日本語") == 3


def test_earlier_thinking_is_not_counted_but_a_prefilled_one_is() -> None:
    thought = {"type": "thinking", "thinking": "word " * 100, "signature": "s"}
    earlier = {"model": "m", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [thought, {"type": "text", "text": "a"}]},
        {"role": "user", "content": "again"},
    ]}
    without = {**earlier, "messages": [earlier["messages"][0], {"role": "assistant", "content": [{"type": "text", "text": "a"}]}, earlier["messages"][2]]}
    assert estimate_tokens(earlier) == estimate_tokens(without)
    prefilled = {"model": "m", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [thought]}]}
    assert estimate_tokens(prefilled) > 100


def test_images_and_forced_tool_choice_use_the_documented_constants() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    with_image = {"model": "m", "messages": [{"role": "user", "content": [image]}]}
    assert estimate_tokens(with_image) == 3 + 3 + IMAGE_TOKENS
    forced = {**WEATHER, "tool_choice": {"type": "any"}}
    assert estimate_tokens(WEATHER) - estimate_tokens(forced) == 346 - 313


def test_captured_count_tokens_request_is_estimated_from_its_content() -> None:
    doc = request_body(COUNT_TOKENS_REQUEST)
    estimate = estimate_tokens(doc)
    # 12 tool definitions plus the tool prompt: thousands of tokens, and about 1 per 4 bytes.
    assert 346 < estimate
    assert 0.7 < estimate / (len(request_bytes(COUNT_TOKENS_REQUEST)) / 4) < 1.4


def test_estimate_answer_is_marked() -> None:
    answer = estimate_answer(SCIENTIST)
    assert answer.status == 200
    assert answer.content == b'{"input_tokens":14}'
    assert ("x-gateway-estimate", "true") in answer.headers


def test_cache_key_covers_credential_and_body_but_not_other_headers() -> None:
    base = [("x-api-key", "k1"), ("anthropic-version", "2023-06-01"), ("x-stainless-retry-count", "0")]
    key = cache_key("zai", "http://u/v1/messages/count_tokens", base, b"{}")
    retry = [*base[:2], ("x-stainless-retry-count", "1")]
    assert cache_key("zai", "http://u/v1/messages/count_tokens", retry, b"{}") == key
    other_user = [("x-api-key", "k2"), *base[1:]]
    assert cache_key("zai", "http://u/v1/messages/count_tokens", other_user, b"{}") != key
    assert cache_key("zai", "http://u/v1/messages/count_tokens", base, b"{ }") != key
    assert cache_key("anthropic", "http://u/v1/messages/count_tokens", base, b"{}") != key
    assert b"k1" not in key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


OK = Answer(200, (("content-type", "application/json"),), b'{"input_tokens":5}')


async def test_25_identical_concurrent_calls_make_one_upstream_call() -> None:
    cache = CountTokensCache()
    calls: list[int] = []
    release = asyncio.Event()

    async def produce() -> Answer:
        calls.append(1)
        await release.wait()
        return OK

    waiters = [asyncio.ensure_future(cache.get(b"k", produce)) for _ in range(25)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*waiters)
    assert calls == [1] and cache.upstream_calls == 1
    assert all(answer is OK for answer in answers)


async def test_a_200_is_kept_for_the_ttl_and_then_asked_again() -> None:
    clock = Clock()
    cache = CountTokensCache(ttl_s=30.0, clock=clock)
    calls: list[int] = []

    async def produce() -> Answer:
        calls.append(1)
        return OK

    await cache.get(b"k", produce)
    clock.now += 29.0
    await cache.get(b"k", produce)
    assert len(calls) == 1
    clock.now += 2.0
    await cache.get(b"k", produce)
    assert len(calls) == 2


async def test_errors_are_shared_by_waiters_but_never_kept() -> None:
    cache = CountTokensCache()
    answers = [Answer(429, (), b"slow down"), OK]

    async def produce() -> Answer:
        return answers.pop(0)

    first = await cache.get(b"k", produce)
    assert first.status == 429
    assert (await cache.get(b"k", produce)) is OK  # asked again: the 429 was not kept

    async def broken() -> Answer:
        raise ConnectionError("down")

    results = await asyncio.gather(cache.get(b"e", broken), cache.get(b"e", broken), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert cache.upstream_calls == 3


async def test_a_caller_leaving_does_not_cancel_the_call_for_the_others() -> None:
    cache = CountTokensCache()
    release = asyncio.Event()

    async def produce() -> Answer:
        await release.wait()
        return OK

    leaving = asyncio.ensure_future(cache.get(b"k", produce))
    staying = asyncio.ensure_future(cache.get(b"k", produce))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert (await staying) is OK
    with pytest.raises(asyncio.CancelledError):
        await leaving


def test_the_cache_is_bounded() -> None:
    cache = CountTokensCache(max_entries=2)
    for key in (b"a", b"b", b"c"):
        cache.keep(key, OK)
    assert cache.cached(b"a") is None and cache.cached(b"c") is OK


