"""Unsigned JWTs, as identity headers carry them once a platform has checked them.

Identity tests need tokens whose payload is readable and whose signature is whatever
the test says (a platform marker, garbage, or one a fake verifier accepts); real
signed tokens come from the JWKS server of ``tests/unit/test_auth.py``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["segment", "unsigned_token"]


def segment(value: Any) -> str:
    """``value`` as a JWT segment: JSON, base64url without padding."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def unsigned_token(
    claims: dict[str, Any], signature: str = "c2ln", header: dict[str, Any] | None = None
) -> str:
    """A compact JWT of ``claims`` with ``signature`` as its third part (not a signature)."""
    head = {"alg": "RS256", "kid": "k"} if header is None else header
    return f"{segment(head)}.{segment(claims)}.{signature}"
