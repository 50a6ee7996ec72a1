from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyserve import Context, Principal
from polyserve.errors import ConfigurationError
from polyserve.identity import header_trust, unverified_claims
from polyserve_testkit.tokens import segment


def test_principals_compare_by_source_and_id_and_hide_claims_in_repr() -> None:
    a = Principal("u1", "idp", {"email": "u1@example.com"})
    b = Principal("u1", "idp", {"email": "changed@example.com"})
    assert a == b
    assert hash(a) == hash(b)
    assert a != Principal("u1", "other")
    assert "example.com" not in repr(a)
    assert Principal("u2", "idp").claims == {}
    with pytest.raises(AttributeError):
        a.id = "u3"  # type: ignore[misc]  # frozen: assigning is the error under test


def test_context_principal_is_read_once_on_first_use() -> None:
    calls: list[object] = []

    def reader(source: object) -> Principal | None:
        calls.append(source)
        return Principal("u1", "test")

    assert Context("test").principal is None
    ctx = Context("test")
    ctx.principal_from(reader, "raw-event")
    assert calls == []
    assert ctx.principal == Principal("u1", "test")
    assert ctx.principal == Principal("u1", "test")
    assert calls == ["raw-event"]


def test_setting_the_principal_replaces_a_pending_reader() -> None:
    ctx = Context("test")
    ctx.principal_from(lambda source: pytest.fail("never read"), None)
    ctx.principal = Principal("u2", "test")
    assert ctx.principal == Principal("u2", "test")


def test_unverified_claims_reads_padded_and_unpadded_payloads() -> None:
    payload = {"sub": "123", "email": "a@example.com"}
    token = f"{segment({'alg': 'ES256'})}.{segment(payload)}.sig"
    padded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    assert unverified_claims(token) == payload
    assert unverified_claims(f"x.{padded}.SIGNATURE_REMOVED_BY_GOOGLE") == payload


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "x.!!!.y", f"x.{segment([1, 2])}.y", f"x.{segment('text')}.y",
     "x." + base64.urlsafe_b64encode(b"\xff\xfe").decode() + ".y", 42],
)  # fmt: skip
def test_unverified_claims_of_anything_else_is_none(token: Any) -> None:
    assert unverified_claims(token) is None


class _Verifier:
    def verify(self, token: str) -> dict[str, Any]:
        return {}


def test_header_trust_keeps_the_sources_opted_into() -> None:
    verifier = _Verifier()
    trust = header_trust({"a": True, "b": False, "c": verifier}, {"a", "b", "c"})
    assert trust == {"a": True, "c": verifier}
    assert header_trust(None, {"a"}) == {}


def test_header_trust_refuses_unknown_sources_and_values() -> None:
    with pytest.raises(ConfigurationError, match="unknown identity header source"):
        header_trust({"nope": True}, {"a"})
    with pytest.raises(ConfigurationError, match="TokenVerifier"):
        header_trust({"a": "yes"}, {"a"})  # type: ignore[dict-item]  # the wrong type is the test


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip


@given(st.text(max_size=200) | json_values.map(lambda v: f"e30.{segment(v)}.sig"))
def test_unverified_claims_never_raises(token: str) -> None:
    claims = unverified_claims(token)
    assert claims is None or isinstance(claims, dict)


@given(json_values, json_values)
def test_the_aws_reader_never_raises_on_any_request_context(context: Any, headers: Any) -> None:
    from polyserve_aws._identity import Identity

    for shape in ({"requestContext": context, "headers": headers},
                  {"requestContext": {"authorizer": context, "identity": headers}},
                  {"requestContext": {"elb": {}}, "multiValueHeaders": headers}):  # fmt: skip
        principal = Identity({"alb_oidc": True})(shape)
        assert principal is None or (isinstance(principal.id, str) and principal.id)
