"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for testing email end to end.

    from tests.smtp_sink import running_smtp_sink
    from webapp.providers.smtp import SmtpProvider

    def test_something():
        with running_smtp_sink() as sink:
            provider = SmtpProvider(sink.url)            # smtp://127.0.0.1:<port>/?from=noreply@relay.example
            provider.send(outbound)
            [received] = sink.messages                   # ReceivedEmail: .mail_from, .rcpt_tos, .message
            assert received.message["To"] == "ada@example.com"

            sink.refuse_next(550, "5.1.1 No such user")  # the next RCPT TO gets "550 5.1.1 No such user"
            sink.refuse_next(451, "4.3.0 Try later", at="data")  # or at "mail" / "data"
            sink.stall_next(2.0)  # the next email is kept, but its "250" comes only 2 s later

For the app, set SMTP_URL=sink.url. Each refusal is used once, by the next command of that kind.

TLS and login, to test `smtps://` and `starttls=1` with `user:pass@`:

    with running_smtp_sink(tls="implicit", credentials=("mailer", "s3cret")) as sink:  # or tls="starttls"
        monkeypatch.setenv("SSL_CERT_FILE", str(sink.ca_file))  # ssl.create_default_context() trusts it
        SmtpProvider(sink.url).send(outbound)  # smtps://mailer:s3cret@127.0.0.1:<port>/?from=...

A wrong login is answered 535. With tls="starttls" the sink also refuses MAIL FROM (530) before STARTTLS
and before a login; with tls="implicit" it lets a client that does not log in send anyway (an aiosmtpd
limit: it only counts STARTTLS as TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ssl
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fake_vonage import write_self_signed_certificate

DEFAULT_FROM = "noreply@relay.example"
Stage = Literal["mail", "rcpt", "data"]
Tls = Literal["none", "starttls", "implicit"]


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes  # exactly as received, CRLF line ends
    message: EmailMessage  # parsed with email.policy.default from raw with \n line ends


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list
    ) -> str:
        refusal = self.sink._refusal("mail")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list
    ) -> str:
        refusal = self.sink._refusal("rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self.sink._refusal("data")
        if refusal:
            return refusal
        raw = envelope.original_content
        # SMTP carries CRLF; the parsed copy uses \n so bodies compare with what the app wrote.
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        self.sink._store(ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed))
        stall = self.sink._stall()
        if stall:
            await asyncio.sleep(stall)  # kept already: a client that stops waiting cannot know
        return "250 OK: queued"


class _Controller(Controller):
    """aiosmtpd's Controller, on port 0: it reads back the port the OS chose before its readiness probe."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    def __init__(
        self,
        from_address: str = DEFAULT_FROM,
        *,
        tls: Tls = "none",
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"tls must be none, starttls or implicit, not {tls!r}")
        self.from_address = from_address
        self.tls = tls
        self.credentials = credentials
        self.ca_file: Path | None = None  # the certificate to trust, when tls is not "none"
        self._lock = threading.Lock()
        self._messages: list[ReceivedEmail] = []
        self._refusals: dict[Stage, deque[str]] = {"mail": deque(), "rcpt": deque(), "data": deque()}
        self._stalls: deque[float] = deque()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

        options: dict[str, Any] = {}
        if tls != "none":
            self._tempdir = tempfile.TemporaryDirectory(prefix="smtp-sink-")
            self.ca_file = Path(self._tempdir.name) / "smtp-sink-cert.pem"
            key_file = Path(self._tempdir.name) / "smtp-sink.key"
            write_self_signed_certificate(self.ca_file, key_file)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, key_file)
            if tls == "implicit":
                options["ssl_context"] = context
            else:
                options.update(tls_context=context, require_starttls=True)
        if credentials is not None:
            if tls == "implicit":
                # aiosmtpd only counts STARTTLS as TLS, so it would hide AUTH here. Letting AUTH through
                # without "TLS" (the socket is TLS anyway) is only quiet if AUTH is not also required.
                options.update(authenticator=self._authenticate, auth_require_tls=False)
            else:
                options.update(authenticator=self._authenticate, auth_required=True)
        self._controller = _Controller(_Handler(self), hostname="127.0.0.1", port=0, **options)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()  # cancels the sessions, closes the server and the loop, joins its thread
        if self._tempdir is not None:
            self._tempdir.cleanup()

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        login = ""
        if self.credentials is not None:
            user, password = self.credentials
            login = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        starttls = "&starttls=1" if self.tls == "starttls" else ""
        return f"{scheme}://{login}127.0.0.1:{self.port}/?from={self.from_address}{starttls}"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self.credentials
        ok = (
            expected is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == expected
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 235 / 535 reply

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._messages)

    def refuse_next(self, code: int, text: str = "", at: Stage = "rcpt") -> None:
        """Answer the next MAIL FROM / RCPT TO / end of DATA with `code text` instead of accepting it."""
        if at not in self._refusals:
            raise ValueError(f"at must be one of {sorted(self._refusals)}, not {at!r}")
        reply = f"{code} {text or ('Refused' if code >= 500 else 'Try again later')}"
        with self._lock:
            self._refusals[at].append(reply)

    def stall_next(self, seconds: float) -> None:
        """Keep the next email, then wait this long before answering the end of its DATA."""
        with self._lock:
            self._stalls.append(seconds)

    def _stall(self) -> float:
        with self._lock:
            return self._stalls.popleft() if self._stalls else 0.0

    def _refusal(self, stage: Stage) -> str | None:
        with self._lock:
            queue = self._refusals[stage]
            return queue.popleft() if queue else None

    def _store(self, received: ReceivedEmail) -> None:
        with self._lock:
            self._messages.append(received)


@contextlib.contextmanager
def running_smtp_sink(
    from_address: str = DEFAULT_FROM, *, tls: Tls = "none", credentials: tuple[str, str] | None = None
) -> Iterator[SmtpSink]:
    sink = SmtpSink(from_address, tls=tls, credentials=credentials).start()
    try:
        yield sink
    finally:
        sink.stop()
