"""Sending through the Vonage Messages API: SMS and WhatsApp text, with the official SDK.

Threading: the SDK's HttpClient is not safe to share between threads. It keeps one mutable header dict
that every call rewrites (the Authorization JWT, Content-Type) before handing it to a shared
`requests.Session`, and it records `_last_response` on itself. So each thread gets its own client,
built on first use and reused for every later send from that thread.

No retries: dispatch owns them. `max_retries=0` switches off urllib3's retries, and `pool_maxsize=1`
switches off the SDK's own loop that re-sends a request after a `RemoteDisconnected` (it tries up to
`pool_maxsize` times, which for a POST could text a candidate twice). A pool of one is enough because
no two threads share a client.

What a failure means decides what dispatch may do next: a 4xx is `Rejected`; no connection at all
(refused, DNS, TLS handshake, connect timeout) or a 429 is a `TemporaryFailure` (nothing reached Vonage,
so a retry cannot double-text); a read timeout, a 5xx or a connection broken after the request was
written is `OutcomeUnknown` (Vonage may have sent it; its status webhook will say).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import requests
import urllib3
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError
from vonage_http_client import Auth, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_messages import Messages
from vonage_messages.models import (
    Sms,
    WhatsappTemplate,
    WhatsappTemplateResource,
    WhatsappTemplateSettings,
    WhatsappText,
)

from webapp.config import ConfigError
from webapp.providers.base import Outbound, OutcomeUnknown, Rejected, TemporaryFailure
from webapp.providers.vonage.http import http_client

log = logging.getLogger("relay.vonage")

DEFAULT_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 3.0
# How long one signed application JWT is used for, by every thread of this sender. The SDK's tokens
# expire 15 minutes after they are made (vonage_jwt: exp = iat + 900); Vonage accepts the same token again
# until then ("we will not accept the same token if it is more than 24 hours after the issued at time",
# https://api.support.vonage.com/hc/en-us/articles/360000958407). Signing one per request cost an RSA
# signature and PyJWT's encoding each time; five minutes leaves ten of validity for clock skew.
JWT_REUSE_SECONDS = 300.0


class VonageSender:
    """Sends `sms` and `whatsapp` messages; returns Vonage's `message_uuid`."""

    def __init__(
        self,
        application_id: str,
        private_key_path: str,
        api_host: str,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if not timeout or timeout <= 0 or not connect_timeout or connect_timeout <= 0:
            raise ValueError("timeouts must be positive numbers of seconds (the SDK's default waits forever)")
        self.application_id = application_id
        self.api_host = api_host
        # Bounds one call: connect_timeout to connect, then timeout between bytes of the answer.
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self._private_key = _load_private_key(private_key_path)
        self._key_object = serialization.load_pem_private_key(self._private_key.encode(), password=None)
        self._local = threading.local()
        # Weak, so a client dies with its thread; close() reaches the ones still alive.
        self._clients: weakref.WeakSet[Messages] = weakref.WeakSet()
        self._clients_lock = threading.Lock()
        self._jwt: _ReusedJwt | None = None
        # Build one now so a bad application id or key fails at start-up, not on the first send.
        self._client()

    def send(self, outbound: Outbound) -> str:
        message = self._build(outbound)
        try:
            response = self._client().send(message)
        except HttpRequestError as error:
            raise _from_http_error(error) from error
        except requests.ConnectTimeout as error:
            # Before the ReadTimeout branch: ConnectTimeout is a Timeout too, but nothing was sent.
            log.warning("Could not connect to Vonage for message %s: %s", outbound.message_id, error)
            raise TemporaryFailure(
                "Could not reach Vonage", f"No connection within {self.connect_timeout:g} seconds."
            ) from error
        except requests.Timeout as error:
            log.warning(
                "Vonage did not answer within %s s for message %s: %s",
                self.timeout,
                outbound.message_id,
                error,
            )
            raise OutcomeUnknown(
                "Vonage did not answer in time",
                f"No answer within {self.timeout:g} seconds; Vonage may have accepted the message.",
            ) from error
        except requests.RequestException as error:
            reason = _network_reason(error)
            if _never_connected(error):
                log.warning("Could not reach Vonage for message %s: %s", outbound.message_id, reason)
                raise TemporaryFailure("Could not reach Vonage", reason) from error
            # The connection broke after the request was written: Vonage may have it.
            log.warning("Vonage's connection broke for message %s: %s", outbound.message_id, reason)
            raise OutcomeUnknown(
                "The connection to Vonage broke", f"{reason}; Vonage may have accepted the message."
            ) from error
        return response.message_uuid

    def close(self) -> None:
        """Close the HTTP connections of every client still alive (optional; for tidy shutdowns)."""
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            client.http_client._session.close()

    def _build(self, outbound: Outbound) -> Sms | WhatsappText | WhatsappTemplate:
        fields = {
            "to": _digits(outbound.to),
            "from_": _digits(outbound.sender),
            "text": outbound.body,
            "client_ref": str(outbound.message_id),
        }
        try:
            if outbound.channel == "sms":
                return Sms(**fields)
            if outbound.channel == "whatsapp" and outbound.template_name:
                del fields["text"]
                return WhatsappTemplate(
                    **fields,
                    template=WhatsappTemplateResource(
                        name=outbound.template_name, parameters=list(outbound.template_parameters)
                    ),
                    whatsapp=WhatsappTemplateSettings(locale=outbound.template_locale or "en_US"),
                )
            if outbound.channel == "whatsapp":
                return WhatsappText(**fields)
        except ValidationError as error:
            # The SDK's own checks (number format, text length): Vonage would refuse it the same way.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise Rejected("Invalid message", problems) from error
        raise ValueError(f"VonageSender cannot send on channel {outbound.channel!r}")

    def _client(self) -> Messages:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Messages(
                http_client(
                    Auth(application_id=self.application_id, private_key=self._private_key),
                    _http_options(self.api_host, self.connect_timeout, self.timeout),
                )
            )
            _sign_with_loaded_key(client, self._key_object)
            auth = client.http_client.auth
            if self._jwt is None:
                self._jwt = _ReusedJwt(auth.create_jwt_auth_string)
            # The SDK asks its Auth for the Authorization header of every request: one token for all.
            auth.create_jwt_auth_string = self._jwt
            self._local.client = client
            with self._clients_lock:
                self._clients.add(client)
        return client


class _ReusedJwt:
    """The SDK's "Bearer <JWT>" header, signed again only every JWT_REUSE_SECONDS (thread-safe)."""

    def __init__(self, sign: Any) -> None:
        self._sign = sign
        self._lock = threading.Lock()
        self._header: bytes | None = None
        self._signed_at = 0.0

    def __call__(self) -> bytes:
        header = self._header
        if header is None or self._stale():
            with self._lock:
                if self._header is None or self._stale():
                    self._header = self._sign()
                    self._signed_at = time.monotonic()
                header = self._header
        return header

    def _stale(self) -> bool:
        return time.monotonic() - self._signed_at >= JWT_REUSE_SECONDS


def from_config(config: Mapping[str, Any]) -> VonageSender:
    """Build the sender from the Flask config (the VONAGE_* settings)."""
    missing = [name for name in ("VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY_PATH") if not config.get(name)]
    if missing:
        raise ConfigError(f"MESSAGING_PROVIDER=vonage needs {' and '.join(missing)}")
    return VonageSender(
        application_id=config["VONAGE_APPLICATION_ID"],
        private_key_path=config["VONAGE_PRIVATE_KEY_PATH"],
        api_host=config.get("VONAGE_API_HOST") or "api.nexmo.com",
        timeout=_seconds(config, "VONAGE_TIMEOUT", DEFAULT_TIMEOUT),
        connect_timeout=_seconds(config, "VONAGE_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
    )


def _seconds(config: Mapping[str, Any], name: str, default: float) -> float:
    raw = config.get(name) or default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0 seconds, not {raw!r}")
    return value


def _http_options(api_host: str, connect_timeout: float, timeout: float) -> HttpClientOptions:
    options = HttpClientOptions(
        api_host=api_host, timeout=math.ceil(timeout), max_retries=0, pool_connections=1, pool_maxsize=1
    )
    # HttpClientOptions types timeout as int and refuses 0.5 or a (connect, read) pair; requests takes
    # both. model_copy(update=) skips validation, and HttpClient keeps a built options object as it is.
    return options.model_copy(update={"timeout": (connect_timeout, timeout)})


def _sign_with_loaded_key(client: Messages, key: Any) -> None:
    """Sign each request's JWT with a key parsed once, not from PEM text every time.

    The SDK hands its PEM string to PyJWT for every request, and parsing (with cryptography's key
    check) cost 36 ms of CPU per message, more than the rest of a send together (bench/README.md).
    PyJWT takes a loaded key object as it is. If a later SDK moves these attributes, sends still work,
    only slower.
    """
    jwt_client = getattr(getattr(client.http_client, "auth", None), "_jwt_client", None)
    if jwt_client is not None and hasattr(jwt_client, "_private_key"):
        jwt_client._private_key = key


def _load_private_key(path_or_pem: str) -> str:
    """Return the key as PKCS#8 PEM text, which is the only form the SDK accepts as a string.

    Reading the file ourselves avoids two SDK traps: it takes a path only when the name has an extension,
    and it refuses a PKCS#1 (`BEGIN RSA PRIVATE KEY`) key given as text.
    """
    if "-----BEGIN" in path_or_pem:
        data = path_or_pem.encode()
    else:
        try:
            with open(path_or_pem, "rb") as key_file:
                data = key_file.read()
        except OSError as error:
            raise ConfigError(
                f"Cannot read the Vonage private key {path_or_pem!r}: {error.strerror}"
            ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"The Vonage private key is not an unencrypted PEM private key: {error}") from None
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _digits(number: str) -> str:
    """Vonage wants E.164 without the `+` (the SDK checks it for SMS only, so WhatsApp relies on us)."""
    return number.strip().removeprefix("+")


def _network_reason(error: BaseException) -> str:
    """The innermost cause in a few words ("Connection refused"), not urllib3's nested repr."""
    current: BaseException | None = error
    deepest = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        deepest = current
        inner = getattr(current, "reason", None)  # urllib3's MaxRetryError keeps the cause here
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = inner or current.__cause__
    return str(deepest) or type(deepest).__name__


def _never_connected(error: requests.RequestException) -> bool:
    """True when no byte of the request can have reached Vonage: refused, no route, DNS, TLS handshake."""
    if isinstance(error, requests.exceptions.SSLError):
        return True  # the handshake comes before the request
    if not isinstance(error, requests.ConnectionError):
        return False  # an invalid URL, a redirect loop …: unknown what went out, so not "never"
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            return True  # includes NameResolutionError and connection refused
        if isinstance(current, urllib3.exceptions.ProtocolError):
            return False  # "Connection aborted": the request was (maybe partly) written
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = inner or current.__cause__
    return False


def _from_http_error(error: HttpRequestError) -> Rejected | TemporaryFailure | OutcomeUnknown:
    response = error.response
    status = response.status_code
    title, detail = _problem(response)
    log.warning("Vonage answered %s: %s %s", status, title, detail)
    if status == 429:
        # Vonage refused it for now: certainly not accepted, so it may be tried again (not before it says).
        wait = retry_after(response.headers.get("Retry-After"))
        return TemporaryFailure(title, detail, code=str(status), retry_after=wait)
    if status >= 500:
        # It had the request and broke while handling it: it may have sent the message anyway.
        return OutcomeUnknown(title, detail, code=str(status))
    if 400 <= status < 500:
        return Rejected(title, detail, code=str(status))
    # A 3xx that requests did not follow: nothing was sent that we know of, and it may pass later.
    return TemporaryFailure(title, detail, code=str(status))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date (RFC 9110 10.2.3).
    None when absent or unreadable; never negative (a date in the past means now)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _problem(response: requests.Response) -> tuple[str, str]:
    """Title and detail from an RFC 7807 body, else the HTTP reason phrase."""
    fallback = response.reason or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return fallback, ""
    if not isinstance(body, dict):
        return fallback, ""
    title = str(body.get("title") or fallback)
    detail = str(body.get("detail") or "")
    # Vonage names the offending fields here; "one or more parameters is invalid" alone helps nobody.
    invalid = body.get("invalid_parameters")
    if isinstance(invalid, list) and invalid:
        names = ", ".join(
            f"{p.get('name')}: {p.get('reason')}" if isinstance(p, dict) else str(p) for p in invalid
        )
        detail = f"{detail} ({names})" if detail else names
    return title, detail
