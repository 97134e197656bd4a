"""Email: SMTP through the standard library, or the log when no SMTP_URL is set (development).

SMTP_URL looks like `smtp://user:pass@host:587/?from=noreply@relay.example&starttls=1`, or
`smtps://...` for TLS from the first byte (port 465). `from` is the address every email is sent from; the
company's sender name goes in front of it.

Failures: only a reply about this message (the sender, the recipient or the content refused with a 5xx)
is Rejected. A 4xx reply, a refused connection, and a server that will not let us in at all (greeting,
EHLO, STARTTLS, login) are TemporaryFailure: the email itself is fine and may go once the server, or our
settings, are. A timeout or a dropped connection once the transaction has begun is OutcomeUnknown: the
server may have taken the email before it went quiet, so it is not sent again blindly.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email import errors
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from webapp.config import ConfigError

from .base import Outbound, OutcomeUnknown, ProviderError, Rejected, TemporaryFailure

log = logging.getLogger("relay.email")

DEFAULT_TIMEOUT = 10.0
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    from_address: str
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False  # smtps://
    starttls: bool = False

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme or url!r}")
        if not parts.hostname:
            raise ConfigError("SMTP_URL has no host")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        from_address = query.get("from", "").strip()
        if "@" not in from_address:
            raise ConfigError("SMTP_URL needs the sender address as ?from=noreply@your.domain")
        implicit_tls = parts.scheme == "smtps"
        starttls = query.get("starttls", "").strip().lower() in _TRUE
        if implicit_tls and starttls:
            raise ConfigError("SMTP_URL: smtps:// is TLS already; drop starttls=1 (or use smtp://)")
        try:
            port = parts.port or (465 if implicit_tls else 587 if starttls else 25)
        except ValueError:
            raise ConfigError("SMTP_URL has an invalid port") from None
        return cls(
            host=parts.hostname,
            port=port,
            from_address=from_address,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit_tls,
            starttls=starttls,
        )


class SmtpProvider:
    """Sends `email` messages; returns the Message-ID it gave the email (angle brackets included)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.settings = SmtpSettings.from_url(url)
        self.timeout = float(timeout)

    def send(self, outbound: Outbound) -> str:
        message = compose(outbound, self.settings.from_address)
        message_id = message["Message-ID"]
        smtp = self._connect()
        try:
            smtp.send_message(message, from_addr=self.settings.from_address, to_addrs=[outbound.to])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _by_code(code, reply, "The mail server refused the recipient") from error
        except smtplib.SMTPSenderRefused as error:
            raise _by_code(error.smtp_code, error.smtp_error, "The mail server refused the sender") from error
        except smtplib.SMTPDataError as error:
            raise _by_code(error.smtp_code, error.smtp_error, "The mail server refused the email") from error
        except smtplib.SMTPNotSupportedError as error:
            # An internationalised address the server cannot route: this email will never go there.
            raise Rejected("The mail server cannot take this address", str(error)) from error
        except smtplib.SMTPResponseException as error:
            raise _by_code(error.smtp_code, error.smtp_error, "The mail server refused the email") from error
        except (smtplib.SMTPException, OSError) as error:
            raise _lost(error) from error
        finally:
            _quit_quietly(smtp)
        return message_id

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if settings.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            return smtp
        except smtplib.SMTPResponseException as error:
            if smtp is not None:
                _quit_quietly(smtp)
            reply = _text(error.smtp_error)
            raise TemporaryFailure(
                "The mail server would not take email from us",
                f"{error.smtp_code} {reply}".strip(),
                code=str(error.smtp_code),
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            if smtp is not None:
                _quit_quietly(smtp)
            raise _unreachable(error) from error


class LogEmailProvider:
    """Development without SMTP_URL: the email goes to the log (logger "relay.email"), nowhere else."""

    def send(self, outbound: Outbound) -> str:
        if outbound.channel != "email":
            raise ValueError(f"LogEmailProvider cannot send on channel {outbound.channel!r}")
        provider_id = f"log-{uuid.uuid4()}"
        log.info(
            "Email not sent (no SMTP_URL), logged instead: id=%s message=%s from=%r to=%s reply-to=%s "
            "subject=%r\n%s",
            provider_id,
            outbound.message_id,
            outbound.sender,
            outbound.to,
            outbound.reply_to or "-",
            _subject(outbound),
            outbound.body,
        )
        return provider_id


def from_config(config: Mapping[str, Any]) -> SmtpProvider | LogEmailProvider:
    """SmtpProvider when SMTP_URL is set, else LogEmailProvider (README, Settings)."""
    url = config.get("SMTP_URL")
    if not url:
        return LogEmailProvider()
    raw_timeout = config.get("SMTP_TIMEOUT") or DEFAULT_TIMEOUT
    try:
        timeout = float(raw_timeout)
    except (TypeError, ValueError):
        raise ConfigError(f"SMTP_TIMEOUT must be a number of seconds, not {raw_timeout!r}") from None
    if timeout <= 0:
        raise ConfigError(f"SMTP_TIMEOUT must be more than 0 seconds, not {raw_timeout!r}")
    return SmtpProvider(url, timeout=timeout)


# RFC 5322's limit for a line; 78 is only what it recommends.
_LONGEST_LINE = 998
_ADDRESS_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})
# Headers a mail client reads as they stand: folded past 78 characters, Python's folder turns the whole
# List-Unsubscribe value into RFC 2047 words (`=?utf-8?q?=3Chttp=3A//…?=`), which RFC 2369 does not
# allow there, and Gmail and Outlook then offer no unsubscribe. Our values are ASCII (a signed link).
_VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_UNFOLDED_HEADERS = _ADDRESS_HEADERS | _VERBATIM_HEADERS


class _Policy(EmailPolicy):
    """email.policy.default, except that address headers (and List-Unsubscribe, see _VERBATIM_HEADERS)
    are not folded below RFC 5322's 998 characters.

    Python's folder (3.11's at least) breaks a quoted display name that does not fit a 78-character line
    into bare words and drops its quotes: `"Acme … Notifications <security@bank.example>"
    <noreply@relay.example>` went out as `Acme … Notifications\n <security@bank.example>
    <noreply@relay.example>`, which every reader takes as From security@bank.example; a comma made two
    From addresses. Unfolded, the header stays exactly as the header registry wrote it (quoted, or one
    RFC 2047 word for a name outside ASCII). Our longest address header, a 100-character sender name
    (organizations.SENDER_NAME_LENGTH) with every character escaped or encoded and the address, fits well
    within 998. Every other header (the subject) folds as the default policy folds it."""

    def fold(self, name: str, value: str) -> str:
        return EmailPolicy.fold(self._for(name), name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        return EmailPolicy.fold_binary(self._for(name), name, value)

    def _for(self, name: str) -> EmailPolicy:
        # A clone keeps the line ends and the utf8 flag smtplib sets for this one send.
        return self.clone(max_line_length=_LONGEST_LINE) if name.lower() in _UNFOLDED_HEADERS else self


POLICY = _Policy()  # email.policy.default is EmailPolicy() too


def address(addr_spec: str, display_name: str = "") -> Address:
    """One address, built by the header registry: a display name is quoted or encoded as it needs, and
    anything that is not exactly one address (a second address, a line break) is a ValueError."""
    try:
        return Address(display_name=_one_line(display_name), addr_spec=addr_spec)
    except errors.NonASCIILocalPartDefect:
        # One address whose local part is outside ASCII (zoë@example.de): the registry builds it from its
        # parts, and smtplib asks the server for SMTPUTF8 (or the send is refused as it was before).
        local, _, domain = addr_spec.rpartition("@")
        return Address(display_name=_one_line(display_name), username=local, domain=domain)


def compose(outbound: Outbound, from_address: str) -> EmailMessage:
    """The email for one outbound message, with a fresh Message-ID. Every address header is built by
    the header registry (never by formatting a string), so a sender name is only ever a display name."""
    if outbound.channel != "email":
        raise ValueError(f"SmtpProvider cannot send on channel {outbound.channel!r}")
    domain = from_address.rpartition("@")[2]
    message = EmailMessage(policy=POLICY)
    try:
        message["From"] = address(from_address, outbound.sender)
        message["To"] = address(outbound.to)
        if outbound.reply_to:
            message["Reply-To"] = address(outbound.reply_to)
    except (ValueError, IndexError) as error:
        # Header injection attempts and unparseable addresses end here; no server would take them.
        raise Rejected("Invalid email address", str(error)) from error
    message["Subject"] = _subject(outbound)
    message["Date"] = formatdate(localtime=True)
    # Our own domain, not socket.getfqdn(): that can block on DNS and leaks the host name.
    message["Message-ID"] = make_msgid(domain=domain)
    if outbound.message_id is not None:
        message["X-Relay-Message-Id"] = str(outbound.message_id)
    for name, value in outbound.headers:
        # One line each: a header value is ours (a signed link), never a way to add another header.
        message[name] = _one_line(value)
    message.set_content(outbound.body)
    return message


def _subject(outbound: Outbound) -> str:
    return _one_line(outbound.subject or "") or f"Message from {_one_line(outbound.sender)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _by_code(code: int, reply: bytes | str, title: str) -> ProviderError:
    detail = f"{code} {_text(reply)}".strip()
    if 500 <= code < 600:
        return Rejected(title, detail, code=str(code))
    log.warning("SMTP server deferred an email: %s", detail)
    return TemporaryFailure(title.replace("refused", "deferred"), detail, code=str(code))


def _unreachable(error: BaseException) -> TemporaryFailure:
    log.warning("Could not talk to the SMTP server: %r", error)
    # smtplib reports a read timeout as SMTPServerDisconnected("timed out"); the TimeoutError is its context.
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return TemporaryFailure("The mail server did not answer in time", str(error) or "Timed out")
    if isinstance(error, OSError) and error.strerror:
        return TemporaryFailure("Could not reach the mail server", error.strerror)
    return TemporaryFailure("Could not reach the mail server", str(error) or type(error).__name__)


def _lost(error: BaseException) -> OutcomeUnknown:
    log.warning("The SMTP server went quiet during a transaction: %r", error)
    reason = (
        "it did not answer in time"
        if (isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError))
        else (getattr(error, "strerror", None) or str(error) or type(error).__name__)
    )
    return OutcomeUnknown(
        "The mail server stopped answering", f"{reason}; it may have taken the email before it did."
    )


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    # After a send the email is out (or refused) already; a failed QUIT changes nothing about that.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
