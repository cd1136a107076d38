"""Reading a request body: the model from the head without a parse, the document only when needed."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.wire.body import parse_body
from gateway.wire.rewrite import body_for_target
from gateway.wire.signatures import SignatureStore
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
