"""Vonage signs each webhook: a JWT (HS256 with the signature secret) whose `payload_hash` claim is
the SHA-256 of the body. Both must hold, or the request did not come from Vonage unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import jwt

# Vonage signs each delivery when it sends it. A token older than this is a replay, not a delivery;
# one from the future beyond the skew was not made by a clock we can trust.
MAX_AGE_SECONDS = 5 * 60
CLOCK_SKEW_SECONDS = 30


class InvalidSignature(Exception):
    """Why a webhook is not trusted (logged, never shown to the caller)."""


def verify(authorization: str | None, body: bytes, secret: str, now: float | None = None) -> dict[str, Any]:
    if not secret:
        raise InvalidSignature("VONAGE_SIGNATURE_SECRET is not set")
    if not authorization or not authorization.startswith("Bearer "):
        raise InvalidSignature("no bearer token")
    now = time.time() if now is None else now
    claims = _hs256_claims(authorization[len("Bearer ") :].strip(), secret, now)
    issued = claims["iat"]
    if isinstance(issued, bool) or not isinstance(issued, (int, float)) or issued != issued:
        raise InvalidSignature("iat is not a number")
    if issued < now - MAX_AGE_SECONDS:
        raise InvalidSignature(f"token issued {int(now - issued)} s ago (more than {MAX_AGE_SECONDS} s)")
    if issued > now + CLOCK_SKEW_SECONDS:
        raise InvalidSignature(f"token issued {int(issued - now)} s in the future")
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str):
        raise InvalidSignature("payload_hash is not a string")
    if not hmac.compare_digest(claimed.lower(), hashlib.sha256(body).hexdigest()):
        raise InvalidSignature("payload_hash does not match the body")
    return claims


# The token checked here rather than by PyJWT's decode, which checked each character of the token in a
# Python loop: two thirds of the signature check, on every webhook (profiled). The same checks: three
# base64url segments, each with one spelling only; a header naming HS256 and no extension; the HMAC;
# then the claims as a JSON object, iat and payload_hash present, exp and nbf held when given.
# (Stricter in two points, neither of which Vonage sends: no "=" padding, which RFC 7515 leaves out, and
# no "crit" header.)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _segment(text: str) -> bytes:
    if len(text) % 4 == 1 or not _SEGMENT.fullmatch(text):
        raise InvalidSignature("token refused: a segment is not base64url")
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() != text:
        raise InvalidSignature("token refused: a segment is not base64url")
    return decoded


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidSignature(f"token refused: its {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidSignature(f"token refused: its {what} is not a JSON object")
    return value


def _hs256_claims(token: str, secret: str, now: float) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidSignature("token refused: not three segments")
    header_text, payload_text, signature_text = parts
    header = _json_object(_segment(header_text), "header")
    # Only HS256: a token that names another algorithm ("none", RS256 with our secret as a "public key"…)
    # or asks for an extension (crit, an unencoded payload) is refused before any signature check.
    if header.get("alg") != "HS256" or "crit" in header or header.get("b64", True) is not True:
        raise InvalidSignature("token refused: not HS256")
    expected = hmac.digest(secret.encode(), f"{header_text}.{payload_text}".encode(), "sha256")
    if not hmac.compare_digest(expected, _segment(signature_text)):
        raise InvalidSignature("token refused: signature verification failed")
    claims = _json_object(_segment(payload_text), "claims")
    for required in ("iat", "payload_hash"):
        if required not in claims:
            raise InvalidSignature(f'token refused: no "{required}" claim')
    for claim, holds in (("exp", lambda at: now < at), ("nbf", lambda at: at <= now)):
        if claim in claims:
            at = claims[claim]
            if isinstance(at, bool) or not isinstance(at, (int, float)) or not holds(at):
                raise InvalidSignature(f"token refused: {claim} does not hold")
    return claims


def sign(body: bytes, secret: str, now: int | None = None) -> str:
    """A token as Vonage makes it; for the simulator's fake replies (and tests)."""
    import uuid

    claims = {
        "iat": int(now if now is not None else time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    return jwt.encode(claims, secret, algorithm="HS256")
