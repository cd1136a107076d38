"""Reading a request body: the model from the head without a parse, the document only when needed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings

from fakes.json_bodies import bodies, first_model, last_model, top_level_models
from gateway.errors import InvalidRequest
from gateway.wire.body import parse_body
from gateway.wire.rewrite import body_for_target
from gateway.wire.signatures import SignatureStore
from policy.captured import ALL_BODIES, inflated_bytes, request_bytes
from rules.model import KeySource, Provider, Target

PLAIN = Provider("p", "http://up", (KeySource("client"),))


def test_model_first_bodies_are_routed_without_a_parse() -> None:
    body = parse_body(b'{"model":"claude-haiku-5-5","max_tokens":8,"stream":true}')
    assert body.model == "claude-haiku-5-5"
    assert body._doc is None
    assert body.stream is True
    assert body_for_target(body, Target(PLAIN), SignatureStore()) is body.raw
    assert body._doc is None  # nothing needed the document


def test_other_key_orders_and_escaped_names_are_parsed() -> None:
    assert parse_body(b'{"max_tokens":8,"model":"m"}').model == "m"
    assert parse_body(b'{"model":"a\\"b","x":1}').model == 'a"b'


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b'["model"]', "request body must be a JSON object"),
        (b'{"model":""}', "model: field required"),
        (b'{"model":"m"', "request body is not valid JSON"),
    ],
)
def test_bad_bodies_are_400(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_body(raw)
    assert info.value.message.startswith(message)


def test_a_rewrite_parses_once_and_sends_the_rewritten_model() -> None:
    body = parse_body(b'{"model":"claude-haiku-5-5","max_tokens":8}')
    sent = body_for_target(body, Target(PLAIN, "glm-4.7"), SignatureStore())
    assert sent == b'{"model":"glm-4.7","max_tokens":8}'
    assert body.doc["model"] == "claude-haiku-5-5"  # the shared document is untouched


def test_broken_body_behind_a_good_head_is_400_when_a_rewrite_needs_it() -> None:
    body = parse_body(b'{"model":"claude-haiku-5-5", oops}')
    with pytest.raises(InvalidRequest):
        body_for_target(body, Target(PLAIN, "glm-4.7"), SignatureStore())


# --- one reading: the model routed on is the model the upstream reads ----------------------


@pytest.mark.parametrize("name", ALL_BODIES)
def test_claude_codes_bodies_keep_the_fast_path(name: str) -> None:
    # They hold "model" twice (the Agent tool's schema has a `model` property) and still skip the parse.
    for raw in (request_bytes(name), inflated_bytes(name)):
        assert raw.count(b'"model"') >= 2
        body = parse_body(raw)
        assert body._doc is None and body.model == last_model(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"claude-haiku-5-5","max_tokens":8,"model":"claude-opus-5-5"}',
        b'{"model":"claude-haiku-5-5","max_tokens":8,"mod\\u0065l":"claude-opus-5-5"}',
        b'{"model":"claude-haiku-5-5","max_tokens":8, "model" :\n "claude-opus-5-5"}',
        b'{"model":"claude-haiku-5-5","model":null}',
        b'{"max_tokens":8,"model":"a","m\\u006Fdel":"b"}',
    ],
)
def test_a_second_top_level_model_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_body(raw)
    assert "more than once" in info.value.message


def test_nested_model_keys_are_not_duplicates() -> None:
    # A tool_use input that names a model, later in the body: parsed, routed on the top-level one.
    raw = b'{"model":"a","messages":[{"role":"assistant","content":[{"type":"tool_use","input":{"model":"b"}}]}]}'
    body = parse_body(raw)
    assert body.model == "a" and body._doc is not None
    escaped = b'{"messages":[],"x":{"mod\\u0065l":"b"},"model":"a"}'
    assert parse_body(escaped).model == "a"


def test_an_object_valued_model_later_keeps_the_fast_path() -> None:
    # A tool schema's property; at the top level no upstream would take an object for a model.
    raw = b'{"model":"a","tools":[{"input_schema":{"properties":{"model" : {"type":"string"}}}}]}'
    body = parse_body(raw)
    assert body.model == "a" and body._doc is None


MODELS = ("claude-haiku-5-5", "claude-opus-5-5", "")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(MODELS))
@example(b'{"model":"claude-haiku-5-5","messages":[],"max_tokens":16,"mod\\u0065l":"claude-opus-5-5"}')
@example(b'{"model":"claude-haiku-5-5","x":{"model":"claude-opus-5-5"},"model":{"a":1}}')
def test_routing_reads_the_model_every_parser_reads(raw: bytes) -> None:
    last, first = last_model(raw), first_model(raw)
    try:
        body = parse_body(raw)
    except InvalidRequest:
        # Refused only when the body really names no single string model.
        assert top_level_models(raw) != 1 or not isinstance(last, str) or not last
        return
    # Accepted: every parser that reads a string model reads the one routed on (a parser that
    # reads an object there cannot serve the request: a model is a string).
    for reading in (last, first):
        assert reading == body.model or isinstance(reading, dict), (reading, body.model)
    assert isinstance(first, str)
