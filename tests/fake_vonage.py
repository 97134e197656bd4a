"""A fake Vonage Messages API over real HTTPS on 127.0.0.1, for testing the real SDK end to end.

The SDK always builds `https://{api_host}/v1/messages`, so the fake serves TLS with a self-signed
certificate for IP:127.0.0.1. `requests` trusts `REQUESTS_CA_BUNDLE` (then `CURL_CA_BUNDLE`) over any
`session.verify`, and this machine sets both to the system bundle, so a test must point
`REQUESTS_CA_BUNDLE` at the fake's certificate. `requests` reads the variable on every request, so
setting it any time before the send is enough. A test does:

    from tests.fake_vonage import running_fake_vonage
    from webapp.providers.vonage.sending import VonageSender as VonageProvider

    def test_something(tmp_path, monkeypatch):
        with running_fake_vonage(tmp_path) as fake:
            fake.patch_env(monkeypatch)  # REQUESTS_CA_BUNDLE=fake.ca_file, and 127.0.0.1 bypasses proxies
            provider = VonageProvider(fake.application_id, str(fake.private_key_path), fake.api_host)
            fake.fail(422, "Invalid params", "The value of one or more parameters is invalid.")
            ...
            assert fake.requests[0].body["to"] == "447400123456"

(`monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))` is the one line that matters, if you
would rather not call patch_env.) For the app, set VONAGE_API_HOST=fake.api_host,
VONAGE_APPLICATION_ID=fake.application_id and VONAGE_PRIVATE_KEY_PATH=fake.private_key_path.

It also serves the Numbers API's `GET /account/numbers` (what `client.numbers.list_owned_numbers` calls
on the REST host): HTTP Basic with `fake.api_key`/`fake.api_secret` (401 otherwise), `size` and `index`
paging, `country` and `pattern`/`search_pattern` filters, and Vonage's shape
`{"count": N, "numbers": [{"country", "msisdn", "type", "features", "messagesCallbackType", …}]}` (no
`numbers` key when there are none). `fake.own("+447400123456", …)` sets the account's numbers; point
the app at it with VONAGE_REST_HOST=fake.api_host, VONAGE_API_KEY and VONAGE_API_SECRET.
`fake.offer(…)` puts numbers on sale: `GET /number/search` lists them (`country` required, `features`
such as "SMS,VOICE" all present, `type`, and `pattern` with `search_pattern` 0 starts with, 1 contains,
2 ends with, on the digits with the country code), and `POST /number/buy` (form `country`, `msisdn`)
moves one to the owned numbers with `{"error-code": "200", "error-code-label": "success"}` and takes
its `cost` from the account's balance. Vonage answers every purchase it refuses with 420
`{"error-code": "420", "error-code-label": "method failed"}`, and so does the fake: for a number not on
offer (taken meanwhile), and for one the balance cannot pay (`fake.balance`, 10.0 euros to start; served
as Vonage's Account API serves it, `GET /account/get-balance` → `{"value": …, "autoReload": false}`).
`fake.buy_delay` holds every purchase's answer that many seconds (for races). `POST /number/update`
(form `country`, `msisdn`, `app_id`, …) sets an owned number's application (`fake.linked` maps its
msisdn to the app_id), or answers 420 "method failed" for a number the account does not own;
`fake.fail_updates(n, status)` makes the next n updates fail (420 "method failed", or a 5xx).

Every POST /v1/messages is recorded (`fake.requests`, a snapshot list of RecordedRequest), its
`Authorization: Bearer` JWT checked (RS256, signed by the application key, `application_id` claim
matching); an unverified token is answered 401 like Vonage would, unless `require_auth=False`.
Each record carries its arrival time (`received_at`, for the pacing tests); `most_at_once()` is the most
POSTs the fake held at one moment (received, not yet answered), from the times it received and answered
each. `rate_limit(n)` makes the
fake answer 429 with `Retry-After: 1` past n requests in any second, as Vonage does past the account's
limit. Otherwise the answer comes from a script: queued behaviours (`respond`, `fail`, `hang`, `drop`) are
used once each, in order; with the queue empty the answer is 202 `{"message_uuid": <new uuid4>}`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hmac
import ipaddress
import json
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import phonenumbers
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MESSAGES_PATH = "/v1/messages"
OWNED_NUMBERS_PATH = "/account/numbers"
SEARCH_PATH = "/number/search"
BUY_PATH = "/number/buy"
UPDATE_PATH = "/number/update"
BALANCE_PATH = "/account/get-balance"
METHOD_FAILED = {"error-code": "420", "error-code-label": "method failed"}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON, or None when the body was not JSON
    raw_body: bytes
    jwt_header: dict[str, Any] | None
    jwt_claims: dict[str, Any] | None  # decoded without verification, so a bad token can still be inspected
    jwt_verified: bool
    jwt_error: str | None
    status: int | None  # what the fake answered; None when it dropped the connection
    response_body: Any
    # When the request's body had arrived: time.time() (comparable across processes) and
    # time.monotonic() (for intervals within the fake's process).
    received_at: float = 0.0
    received_monotonic: float = 0.0


@dataclass(frozen=True)
class _Behaviour:
    status: int = 202
    body: Any = None  # None with a 2xx status: a fresh message_uuid
    content_type: str = "application/json"
    delay: float = 0.0
    drop: bool = False
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class FakeVonage:
    directory: Path
    application_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    require_auth: bool = True
    api_key: str = "fa4e0b1c"
    api_secret: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    # HTTP/1.1 with connections kept open between requests, as an API behind a load balancer does. Off by
    # default (HTTP/1.0, one request per connection): stop() then has no idle connection to wait for, and
    # each request its own TLS handshake. The benchmarks compare both (bench/pacing.py --keep-alive).
    keep_alive: bool = False

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.directory / "fake-vonage-cert.pem"
        self.private_key_path = self.directory / "vonage-application.key"
        self.errors: list[BaseException] = []  # failures inside handler threads, kept for inspection
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._answered: dict[int, float] = {}  # index in _requests → time.monotonic() once answered
        self._script: deque[_Behaviour] = deque()
        self._owned: list[dict[str, Any]] = []
        self._offered: list[dict[str, Any]] = []
        self.balance = 10.0  # euros, as Vonage keeps an account's balance
        self.buy_delay = 0.0
        self.linked: dict[str, str] = {}  # msisdn → app_id, set by POST /number/update
        self._update_failures: deque[int] = deque()
        self._default = _Behaviour()  # what an empty script answers: 202 at once
        self._rate_limit = 0
        self._accepted_at: deque[float] = deque()  # arrival times of requests not refused by rate_limit
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._accepted = 0  # connections accepted (each one TLS handshake)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        app_key = _application_key()
        self.private_key_path.write_bytes(
            app_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self._public_key = app_key.public_key()
        key_file = self.directory / "fake-vonage-tls.key"
        write_self_signed_certificate(self.ca_file, key_file)
        self._ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ssl_context.load_cert_chain(self.ca_file, key_file)

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> FakeVonage:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-vonage", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes any hang() at once
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Unblock a handler still waiting to read; the plain-socket shutdown leaves the TLS object alone.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        server.server_close()  # joins every handler thread (daemon_threads is off)
        thread.join()
        self._server = self._thread = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake is not running"
        return self._server.server_address[1]

    @property
    def api_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def app_settings(self) -> dict[str, str]:
        """The settings (as an app takes them, or a process from its environment) that send through
        this fake."""
        return {
            "MESSAGING_PROVIDER": "vonage",
            "VONAGE_API_HOST": self.api_host,
            "VONAGE_APPLICATION_ID": self.application_id,
            "VONAGE_PRIVATE_KEY_PATH": str(self.private_key_path),
        }

    def patch_env(self, monkeypatch: Any) -> None:
        """Make `requests` trust the fake's certificate and talk to it directly, for this test only."""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self.ca_file))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    # -- the script ---------------------------------------------------------------------------------------

    def respond(self, status: int, json_body: Any = None) -> None:
        """Answer the next request with this status and JSON body (None: a fresh message_uuid on 2xx)."""
        self._queue(_Behaviour(status=status, body=json_body))

    def fail(
        self, status: int, title: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        """Answer the next request with an RFC 7807 problem, the way Vonage reports errors (and these
        response headers: `fail(429, "Rate Limit Hit", headers={"Retry-After": "2"})`)."""
        body = {
            "type": f"https://developer.vonage.com/api-errors/messages#{status}",
            "title": title,
            "detail": detail,
            "instance": str(uuid.uuid4()),
            **extra,
        }
        self._queue(
            _Behaviour(
                status=status,
                body=body,
                content_type="application/problem+json",
                headers=tuple((headers or {}).items()),
            )
        )

    def rate_limit(self, per_second: int) -> None:
        """Answer 429 "Rate Limit Hit" (Retry-After: 1) to any request that would make more than
        `per_second` requests within one second, as Vonage does past the account's limit (0: no limit)."""
        with self._lock:
            self._rate_limit = per_second

    def hang(self, seconds: float) -> None:
        """Wait this long before answering the next request (then answer as usual: 202)."""
        self._queue(_Behaviour(delay=seconds))

    def drop(self) -> None:
        """Close the next connection without answering (the client sees RemoteDisconnected)."""
        self._queue(_Behaviour(drop=True))

    def answer_every_request(
        self, *, delay: float = 0.0, status: int = 202, drop: bool = False, title: str = ""
    ) -> None:
        """Change what requests get once the script is empty (a latency, a lasting outage …)."""
        body = None
        if status >= 300:
            body = _problem(status, title or "Error", "The fake was told to fail every request.")
        with self._lock:
            self._default = _Behaviour(status=status, body=body, delay=delay, drop=drop)

    def own(
        self, *numbers: str, features: tuple[str, ...] = ("VOICE", "SMS"), number_type: str = "mobile-lvn"
    ) -> None:
        """Add numbers (E.164) to what the account owns, as the Numbers API lists them."""
        with self._lock:
            for number in numbers:
                parsed = phonenumbers.parse(number)
                self._owned.append(
                    {
                        "country": phonenumbers.region_code_for_number(parsed),
                        "msisdn": number.lstrip("+"),
                        "type": number_type,
                        "features": list(features),
                        "messagesCallbackType": "app",
                        "messagesCallbackValue": self.application_id,
                        "voiceCallbackType": "app",
                        "voiceCallbackValue": self.application_id,
                        "app_id": self.application_id,
                    }
                )

    def offer(
        self,
        *numbers: str,
        features: tuple[str, ...] = ("SMS", "VOICE"),
        number_type: str = "mobile-lvn",
        cost: str = "1.25",
    ) -> None:
        """Put numbers (E.164) on sale, as the Numbers API's search lists them."""
        with self._lock:
            for number in numbers:
                parsed = phonenumbers.parse(number)
                self._offered.append(
                    {
                        "country": phonenumbers.region_code_for_number(parsed),
                        "msisdn": number.lstrip("+"),
                        "type": number_type,
                        "cost": cost,
                        "features": list(features),
                    }
                )

    def fail_updates(self, times: int = 1, status: int = 420) -> None:
        """Make the next `times` POST /number/update fail: 420 "method failed" (Vonage's refusal), or
        another status (a 500: Vonage itself failing)."""
        with self._lock:
            self._update_failures.extend([status] * times)

    def search_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        country = (query.get("country") or [""])[0]
        wanted = set(filter(None, (query.get("features") or [""])[0].split(",")))
        number_type = (query.get("type") or [""])[0]
        with self._lock:
            numbers = [n for n in self._offered if n["country"] == country and wanted <= set(n["features"])]
        if number_type:
            numbers = [n for n in numbers if n["type"] == number_type]
        numbers = _matching(numbers, query)
        size = int((query.get("size") or ["10"])[0])
        index = int((query.get("index") or ["1"])[0])
        page = numbers[(index - 1) * size : index * size]
        return {"count": len(numbers), "numbers": page} if page else {"count": len(numbers)}

    def buy(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str]]:
        msisdn = (form.get("msisdn") or [""])[0]
        country = (form.get("country") or [""])[0]
        with self._lock:
            found = next(
                (n for n in self._offered if n["msisdn"] == msisdn and n["country"] == country), None
            )
            if found is None or float(found["cost"]) > self.balance:
                return 420, dict(METHOD_FAILED)
            self._offered.remove(found)
            self.balance -= float(found["cost"])
            # Bought, it is linked to no application yet: POST /number/update does that.
            self._owned.append({k: found[k] for k in ("country", "msisdn", "type", "features")})
        return 200, {"error-code": "200", "error-code-label": "success"}

    def update(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str]]:
        msisdn = (form.get("msisdn") or [""])[0]
        country = (form.get("country") or [""])[0]
        app_id = (form.get("app_id") or [""])[0]
        with self._lock:
            failure = self._update_failures.popleft() if self._update_failures else None
            owned = next((n for n in self._owned if n["msisdn"] == msisdn and n["country"] == country), None)
            if failure is not None or owned is None:
                if failure is not None and failure != 420:
                    return failure, {"error-code": str(failure), "error-code-label": "internal error"}
                return 420, dict(METHOD_FAILED)
            if app_id:
                owned.update(
                    app_id=app_id,
                    messagesCallbackType="app",
                    messagesCallbackValue=app_id,
                    voiceCallbackType="app",
                    voiceCallbackValue=app_id,
                )
                self.linked[msisdn] = app_id
        return 200, {"error-code": "200", "error-code-label": "success"}

    def balance_page(self) -> dict[str, Any]:
        with self._lock:
            return {"value": round(self.balance, 4), "autoReload": False}

    def owned_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of /account/numbers, filtered and paged the way Vonage does."""
        with self._lock:
            numbers = list(self._owned)
        country = (query.get("country") or [""])[0]
        if country:
            numbers = [n for n in numbers if n["country"] == country]
        numbers = _matching(numbers, query)
        size = int((query.get("size") or ["10"])[0])
        index = int((query.get("index") or ["1"])[0])
        page = numbers[(index - 1) * size : index * size]
        return {"count": len(numbers), "numbers": page} if page else {"count": len(numbers)}

    def _basic_auth_ok(self, authorization: str) -> bool:
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        scheme, _, value = authorization.partition(" ")
        return scheme == "Basic" and hmac.compare_digest(value.strip(), expected)

    def arrivals(self) -> list[tuple[float, str | None, int | None]]:
        """(arrival time, client_ref, status answered) of each POST /v1/messages, in order of arrival."""
        found = [
            (r.received_at, r.body.get("client_ref") if isinstance(r.body, dict) else None, r.status)
            for r in self.requests
            if r.path == MESSAGES_PATH
        ]
        return sorted(found, key=lambda arrival: arrival[0])

    def most_at_once(self, since: int = 0) -> int:
        """The most POST /v1/messages in flight at the same moment: received (their body read) and not yet
        answered (or dropped). Above 1 only when a client had a second request out before the first's
        answer, whatever the machine's speed. `since`: only the requests from this index of `requests`."""
        with self._lock:
            spans = [
                (r.received_monotonic, self._answered.get(index, float("inf")))
                for index, r in enumerate(self._requests)
                if index >= since and r.path == MESSAGES_PATH
            ]
        # An answer at the same instant as an arrival ends first: (time, 0) sorts before (time, 1).
        events = sorted([(start, 1) for start, _ in spans] + [(end, 0) for _, end in spans])
        most = now = 0
        for _, starts in events:
            now += 1 if starts else -1
            most = max(most, now)
        return most

    def accepted(self) -> int:
        """Connections accepted so far: with keep_alive, fewer than the requests when clients reuse them."""
        with self._lock:
            return self._accepted

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def _queue(self, behaviour: _Behaviour) -> None:
        with self._lock:
            self._script.append(behaviour)

    def _next(self, arrived: float) -> _Behaviour:
        with self._lock:
            if self._rate_limit:
                while self._accepted_at and self._accepted_at[0] <= arrived - 1.0:
                    self._accepted_at.popleft()
                if len(self._accepted_at) >= self._rate_limit:
                    return _Behaviour(
                        status=429,
                        body=_problem(429, "Rate Limit Hit", "Please wait, then retry your request"),
                        content_type="application/problem+json",
                        headers=(("Retry-After", "1"),),
                    )
                self._accepted_at.append(arrived)
            return self._script.popleft() if self._script else self._default

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            return len(self._requests) - 1

    def _answered_now(self, index: int) -> None:
        with self._lock:
            self._answered[index] = time.monotonic()

    def _check_jwt(self, authorization: str) -> tuple[dict | None, dict | None, bool, str | None]:
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return None, None, False, "no Bearer token"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            return None, None, False, f"malformed token: {error}"
        if header.get("alg") != "RS256":
            return header, claims, False, f"alg is {header.get('alg')!r}, not RS256"
        try:
            jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "jti", "application_id"]},
            )
        except jwt.PyJWTError as error:
            return header, claims, False, f"{type(error).__name__}: {error}"
        if claims.get("application_id") != self.application_id:
            return header, claims, False, f"application_id is {claims.get('application_id')!r}"
        return header, claims, True, None


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads are tracked, so server_close() can join them all.
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeVonage) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        with self.fake._lock:
            self.fake._accepted += 1
        # The handshake happens in the handler's thread, so a stalled client cannot block accept().
        tls = self.fake._ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left, a refused certificate: expected in tests, so kept, not printed.
        error = sys.exc_info()[1]
        if error is not None:
            with self.fake._lock:
                self.fake.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5  # a client that connects and says nothing cannot hold stop() for long
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads to wait for

    def setup(self) -> None:
        if self.server.fake.keep_alive:
            self.protocol_version = "HTTP/1.1"
        with self.server.fake._lock:
            self.server.fake._connections.add(self.request)
        try:
            # Before super().setup() makes the socket's file objects: if the handshake fails (a client that
            # distrusts the certificate), finish() never runs, and those files would keep the socket open.
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        except BaseException:
            with self.server.fake._lock:
                self.server.fake._connections.discard(self.request)
            raise
        super().setup()

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.request)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default writes every request to stderr

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received_at, received_monotonic = time.time(), time.monotonic()
        path = urlsplit(self.path).path
        if path == BUY_PATH:
            if fake.buy_delay:
                fake._stopping.wait(fake.buy_delay)
            self._numbers_api(lambda: fake.buy(parse_qs(raw.decode())), raw)
            return
        if path == UPDATE_PATH:
            self._numbers_api(lambda: fake.update(parse_qs(raw.decode())), raw)
            return
        if self.path != MESSAGES_PATH:
            self._answer(404, _problem(404, "Not Found", f"No route for POST {self.path}"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        header, claims, verified, jwt_error = fake._check_jwt(self.headers.get("Authorization", ""))
        if fake.require_auth and not verified:
            behaviour = _Behaviour(
                status=401,
                body=_problem(401, "Unauthorized", "You did not provide correct credentials."),
                content_type="application/problem+json",
            )
        else:
            behaviour = fake._next(received_monotonic)
        response_body = behaviour.body
        if response_body is None and 200 <= behaviour.status < 300 and not behaviour.drop:
            response_body = {"message_uuid": str(uuid.uuid4())}
        index = fake._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers=dict(self.headers.items()),
                body=body,
                raw_body=raw,
                jwt_header=header,
                jwt_claims=claims,
                jwt_verified=verified,
                jwt_error=jwt_error,
                status=None if behaviour.drop else behaviour.status,
                response_body=None if behaviour.drop else response_body,
                received_at=received_at,
                received_monotonic=received_monotonic,
            )
        )
        stopping = bool(behaviour.delay) and fake._stopping.wait(behaviour.delay)
        # Stamped before the answer goes out: a client that waits for it cannot have its next request
        # received before this time (most_at_once).
        fake._answered_now(index)
        if stopping:
            self.close_connection = True
            return  # shutting down: nobody is waiting for this answer any more
        if behaviour.drop:
            self.close_connection = True
            with contextlib.suppress(OSError, ValueError):
                self.request.unwrap()  # a clean TLS close, so the client sees "no response", not a TLS error
            return
        self._answer(behaviour.status, response_body, behaviour.content_type, behaviour.headers)

    def do_GET(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == OWNED_NUMBERS_PATH:
            self._numbers_api(lambda: (200, fake.owned_page(query)))
        elif url.path == SEARCH_PATH:
            self._numbers_api(lambda: (200, fake.search_page(query)))
        elif url.path == BALANCE_PATH:
            self._numbers_api(lambda: (200, fake.balance_page()))
        else:
            self._answer(404, _problem(404, "Not Found", f"No route for GET {self.path}"))

    def _numbers_api(self, answer: Any, raw: bytes = b"") -> None:
        """A Numbers API request: HTTP Basic with the account's key and secret, then `answer()`."""
        fake = self.server.fake
        authorised = fake._basic_auth_ok(self.headers.get("Authorization", ""))
        if authorised:
            status, body = answer()
        else:
            status, body = 401, {"error-code": "401", "error-code-label": "authentication failed"}
        fake._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers=dict(self.headers.items()),
                body=parse_qs(raw.decode()) if raw else None,
                raw_body=raw,
                jwt_header=None,
                jwt_claims=None,
                jwt_verified=False,
                jwt_error=None,
                status=status,
                response_body=body,
            )
        )
        self._answer(status, body, "application/json")

    def _answer(
        self,
        status: int,
        body: Any,
        content_type: str = "application/problem+json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _matching(numbers: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The numbers whose msisdn matches `pattern` as `search_pattern` says (0, the default: starts with;
    1: contains; 2: ends with), as the Numbers API filters both its lists."""
    pattern, how = (query.get("pattern") or [""])[0], (query.get("search_pattern") or ["0"])[0]
    if not pattern:
        return numbers
    test = {"0": str.startswith, "1": str.__contains__, "2": str.endswith}[how]
    return [n for n in numbers if test(n["msisdn"], pattern)]


def _problem(status: int, title: str, detail: str) -> dict[str, str]:
    return {
        "type": f"https://developer.vonage.com/api-errors/messages#{status}",
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }


# RSA key generation is the slow part (~0.1 s a key); one pair per test session is plenty.
@functools.cache
def _application_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _tls_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_self_signed_certificate(cert_file: Path, key_file: Path) -> None:
    """A certificate for IP:127.0.0.1 and localhost that is its own trust anchor, and its key (PEM)."""
    key = _tls_key()
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(_self_signed_certificate(key))


def _self_signed_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-vonage.test")])
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@contextlib.contextmanager
def running_fake_vonage(tmp_path: Path, *, require_auth: bool = True) -> Iterator[FakeVonage]:
    """Start a fake in `tmp_path / "fake-vonage"`; stop it (threads joined, sockets closed) on exit."""
    fake = FakeVonage(Path(tmp_path) / "fake-vonage", require_auth=require_auth)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


MODES = {
    "ok": {},
    "hang": {"delay": 3600.0},
    "500": {"status": 500, "title": "Internal Error"},
    "429": {"status": 429, "title": "Rate Limit Hit"},
    "drop": {"drop": True},
}


def main(argv: list[str] | None = None) -> None:
    """Run the fake on its own, to point `make run` at it and watch what Relay does."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.fake_vonage", description=main.__doc__)
    parser.add_argument("--mode", choices=sorted(MODES), default="ok", help="how every request is answered")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer (mode ok)")
    parser.add_argument("--dir", default="instance/fake-vonage", help="where the key and certificate go")
    args = parser.parse_args(argv)
    fake = FakeVonage(Path(args.dir), require_auth=True).start()
    settings = dict(MODES[args.mode])
    if args.mode == "ok":
        settings["delay"] = args.delay
    fake.answer_every_request(**settings)
    print(
        f"Fake Vonage on https://{fake.api_host} ({args.mode}) application {fake.application_id}. "
        "Start Relay with:\n"
        f"  MESSAGING_PROVIDER=vonage VONAGE_API_HOST={fake.api_host} "
        f"VONAGE_APPLICATION_ID={fake.application_id} VONAGE_PRIVATE_KEY_PATH={fake.private_key_path} "
        f"REQUESTS_CA_BUNDLE={fake.ca_file} VONAGE_SIGNATURE_SECRET=<32+ characters> make run",
        flush=True,
    )
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            for request in fake.requests[seen:]:
                body = request.body or {}
                print(
                    f"POST {request.path} client_ref={body.get('client_ref')} → {request.status}", flush=True
                )
            seen = len(fake.requests)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
