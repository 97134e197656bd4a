"""Vonage signs each webhook: a JWT (HS256 with the signature secret) whose `payload_hash` claim is
the SHA-256 of the body. Both must hold, or the request did not come from Vonage unchanged."""

from __future__ import annotations

import hashlib
import hmac
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
    token = authorization[len("Bearer ") :].strip()
    try:
        # Only HS256: a token that names another algorithm ("none", RS256 with our secret as a
        # "public key"…) is refused before any signature check.
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            # The age of iat is checked below, both ways, against one clock.
            options={"require": ["iat", "payload_hash"], "verify_aud": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidSignature(f"token refused: {exc}") from exc
    issued = claims["iat"]
    if isinstance(issued, bool) or not isinstance(issued, (int, float)) or issued != issued:
        raise InvalidSignature("iat is not a number")
    now = time.time() if now is None else now
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
