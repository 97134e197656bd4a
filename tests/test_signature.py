"""Vonage's webhook token (webapp.providers.vonage.signature) is checked by our own code, not PyJWT's
decode (issue #19: that decode checked each character of the token in a Python loop, two thirds of
the check). The same tokens must pass and fail as with PyJWT: compared here on many made-up ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.providers.vonage import signature

SECRET = "a-signature-secret-that-is-long-enough-0123456789"
BODY = b'{"message_uuid": "abc"}'
NOW = time.time()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _token(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing}.{_b64(hmac.digest(secret.encode(), signing.encode(), 'sha256'))}"


def _by_pyjwt(token: str) -> dict[str, Any] | None:
    """What the check did before: PyJWT's decode with the same options."""
    try:
        return jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": ["iat", "payload_hash"], "verify_aud": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None


def _by_ours(token: str) -> dict[str, Any] | None:
    try:
        return signature._hs256_claims(token, SECRET, time.time())
    except signature.InvalidSignature:
        return None


headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256", "HS512", "none", "RS256", "hs256"])},
    optional={
        "typ": st.sampled_from(["JWT", "jwt"]),
        "kid": st.text(max_size=5),
        "crit": st.just(["b64"]),
        "b64": st.booleans(),
    },
)
times = st.one_of(
    st.integers(min_value=int(NOW) - 10**6, max_value=int(NOW) + 10**6),
    st.floats(min_value=NOW - 10**6, max_value=NOW + 10**6),
)
# Mostly tokens as Vonage makes them, so that many pass; some without a claim they need.
headers = st.one_of(st.just({"alg": "HS256", "typ": "JWT"}), headers)
claims = st.one_of(
    st.fixed_dictionaries(
        {"iat": times, "payload_hash": st.just(hashlib.sha256(BODY).hexdigest())},
        optional={"exp": times, "nbf": times, "jti": st.text(max_size=8), "iss": st.just("Vonage")},
    ),
    st.fixed_dictionaries(
        {}, optional={"iat": times, "payload_hash": st.just(hashlib.sha256(BODY).hexdigest()), "exp": times}
    ),
)


def _mutate(token: str, how: int, where: int) -> str:
    if how == 0:
        return token
    if how == 1:  # one character changed
        at = where % len(token)
        changed = "A" if token[at] != "A" else "B"
        return token[:at] + changed + token[at + 1 :]
    if how == 2:  # a segment dropped or added
        parts = token.split(".")
        return ".".join(parts[:-1]) if where % 2 else token + ".e30"
    if how == 3:  # a character outside base64url
        at = where % len(token)
        return token[:at] + "!+/é"[where % 4] + token[at:]
    return token[: where % len(token)]  # cut short


@settings(max_examples=400, deadline=None)
@given(
    header=headers,
    claimed=claims,
    right_secret=st.sampled_from([True, True, True, False]),
    how=st.sampled_from([0, 0, 0, 1, 2, 3, 4]),
    where=st.integers(min_value=0, max_value=10**6),
)
def test_a_token_passes_and_fails_as_with_pyjwt(header, claimed, right_secret, how, where) -> None:
    token = _mutate(_token(header, claimed, SECRET if right_secret else SECRET + "x"), how, where)
    # Stricter than PyJWT in one point: no "crit" header (Vonage sends none; PyJWT allows ["b64"]).
    assert _by_ours(token) == (None if "crit" in header else _by_pyjwt(token))


def test_a_real_token_passes_and_pyjwt_decode_is_not_called(monkeypatch) -> None:
    token = signature.sign(BODY, SECRET)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("PyJWT's decode was called")

    monkeypatch.setattr(jwt, "decode", refused)
    claims = signature.verify(f"Bearer {token}", BODY, SECRET)
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest() and claims["iss"] == "Vonage"


@pytest.mark.parametrize(
    ("header", "reason"),
    [({"alg": "none"}, "not HS256"), ({"alg": "HS256", "crit": ["b64"], "b64": False}, "not HS256")],
)
def test_another_algorithm_or_an_extension_is_refused_before_the_signature(header, reason) -> None:
    token = _token(header, {"iat": int(NOW), "payload_hash": hashlib.sha256(BODY).hexdigest()}, SECRET)
    with pytest.raises(signature.InvalidSignature, match=reason):
        signature.verify(f"Bearer {token}", BODY, SECRET, now=NOW)
