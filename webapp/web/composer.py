"""The composer: the one form a message is written in (Send as, Template, Subject, the text and the live
counter under it), its context, its partial and its send.

Who includes it:
- the conversation panel (webapp.web.conversation_panel), written in one conversation: its WhatsApp
  window and approved templates, a form that swaps itself; the conversation's routes
  (webapp.web.conversations) answer its counter and its sends;
- the interview invitation (webapp.web.interviews), for one candidate or several, with the booking-link
  rule on (webapp.interviews.invitations): the text is checked for the link before any send, and the
  counter shows it as the first candidate reads it, the link counted at its real length.

The parts: a form of the `Composition` family; a `Setup` saying what the composer is for; `context` for
the page (and `counter_context` for the counter's own requests); the partial
templates/composer/_composer.html, whose `composer_form` macro draws the form (imported with context,
the caller's block adding the page's hidden fields and notices), with templates/composer/_counter.html;
and `send`, the one way a composer's message goes: the form and the rules that hold for every
recipient, then a `Write` that stores it through webapp.messaging.compose (`write_to` for one person),
the commit and the hand-over to dispatch. A refusal is answered as every form's is
(webapp.web.refusals.submit), with the page the caller gives.

Bulk messages reuse it as the invitation does: a form of the family carrying the recipients' ids, a
`Setup` for the first recipient with `recipients` their number, `context` and `composer_form` for the
page, then `ready` once and, for each recipient in a transaction of its own, `write_to(about)(draft)`
(webapp.interviews.invitations.invite_many does that loop for invitations). The counter's offer of plain
quotes and dashes is counted for the first recipient; the total it saves over all of them is
webapp.messaging.lookalikes.savings, given one render per recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms import HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from webapp import ids, zones
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import checks, compose, dispatch, follow_ups, timing, whatsapp
from webapp.messaging import templates as message_templates
from webapp.messaging.checks import SendRefused
from webapp.messaging.reply_channel import ReplyChannel
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Conversation, Message, MessageTemplate, utcnow
from webapp.web import refusals
from webapp.web.forms import FlaskForm

# --- The form family -----------------------------------------------------------------------------------


class Composition(FlaskForm):
    """What every composer sends. The channel's choices are the user's, set per request by `context`;
    which channel may be used is decided by webapp.messaging.checks (so that the refusal names the
    missing right), not by WTForms."""

    channel = RadioField(
        "Send as", choices=[SelectChoice(k, v) for k, v in CHANNEL_LABELS.items()], validate_choice=False
    )
    # Only shown again (the page compares it with str(id)); anything but an id is as if none was chosen.
    template_id = SelectField(
        "Template",
        coerce=str,
        validate_choice=False,
        validators=[Optional()],
        filters=[lambda v: v if ids.parse(v) is not None else None],
    )
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("Message", validators=[Length(max=60_000)])
    # Empty: now. A local date and time in the writer's zone, as <input type="datetime-local"> sends it.
    # (No Length: WTForms would add maxlength, which a datetime-local input may not carry; cut when read.)
    send_at = StringField("Send at", validators=[Optional()])
    # Sets the organisation's hours for texts aside (webapp.messaging.timing); never the law's.
    override_reason = StringField(
        "Reason to send outside your organisation's hours", validators=[Optional(), Length(max=300)]
    )


class ComposeForm(Composition):
    """The composer of a conversation."""

    # The id, or None when none (or something that is not an id) was chosen.
    whatsapp_template_id = SelectField(
        "Approved WhatsApp template", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )
    # "all" when the composer sits under every channel's messages interleaved (the Inbox): a send then
    # keeps that view instead of opening the channel's tab.
    view = HiddenField(filters=[lambda v: v if v == "all" else None])
    # "If no reply in N days, send…" (webapp.messaging.follow_ups): asked when its text or a template is
    # given. (A number input: no Length, whose maxlength a number input may not carry.)
    follow_up_days = IntegerField(
        "Days without a reply",
        default=3,
        validators=[
            Optional(),
            NumberRange(
                follow_ups.MIN_DAYS,
                follow_ups.MAX_DAYS,
                f"Pick a number of days from {follow_ups.MIN_DAYS} to {follow_ups.MAX_DAYS}.",
            ),
        ],
    )
    follow_up_template_id = SelectField(
        "Follow-up template",
        coerce=str,
        validate_choice=False,
        validators=[Optional()],
        filters=[lambda v: v if ids.parse(v) is not None else None],
    )
    follow_up_body = TextAreaField("Then send", validators=[Length(max=60_000)])


# --- What a composer is for ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    """The ids of a composer's elements: its labels, its counter's target and the page's scripts and
    links find them; two composers on one page must not share them."""

    form: str
    counter: str
    missing_right: str
    reply_reason: str
    channel_error: str
    template: str
    wa_template: str
    wa_template_error: str
    subject: str
    subject_error: str
    body: str
    body_error: str
    send_at: str
    send_at_error: str
    quick_times: str
    override_reason: str
    override_reason_error: str
    follow_up_days: str
    follow_up_days_error: str
    follow_up_template: str
    follow_up_template_error: str
    follow_up_body: str
    follow_up_body_error: str

    @classmethod
    def numbered(cls, key: int) -> Ids:
        """One of the composers a page may hold (a conversation's): every id ends with its key."""
        names = {f.name: f.name.replace("_", "-") for f in fields(cls)}
        return cls(**{field: f"{name}-{key}" for field, name in names.items()} | {"form": f"composer-{key}"})

    @classmethod
    def of_page(cls, page: str) -> Ids:
        """The only composer of its page: its elements named after the page, the errors after their
        field (as the page's other forms name them)."""
        names = {f.name: f.name.replace("_", "-") for f in fields(cls)}
        return cls(**{field: name if "error" in name else f"{page}-{name}" for field, name in names.items()})


@dataclass(frozen=True)
class Setup:
    """What one composer is for, and where it answers."""

    # The person written to, or the first of several: the counter speaks of them.
    about: Subject
    # The channels the user may write on (webapp.messaging.checks.allowed_channels).
    allowed: list[str]
    ids: Ids
    # Where the form posts, and where its counter asks as the user types.
    action: str
    preview_url: str
    css: str = "composer"
    # Written in a conversation: its WhatsApp window and approved templates, the low-credits banner, and
    # a form that swaps itself (htmx), its counter following the thread.
    conversation: Conversation | None = None
    # Why the channel the composer starts on was chosen (said under "Send as").
    reply: ReplyChannel | None = None
    # Which templates are offered (a MessageTemplate's kind), and whether the form opens on the first of
    # them for its channel (an invitation: ready to send).
    kind: str = "general"
    prefill: bool = False
    # The interview invitation's rule: the booking link (%INVITELINK%) is in the text, apart from it.
    booking_link: bool = False
    recipients: int = 1
    # Refusals the page says in a notice of its own (the invitation's "no free slots"), not on the form.
    said_by_page: tuple[str, ...] = ()


# --- Its context -----------------------------------------------------------------------------------------


def context(form: Composition, setup: Setup, start: str) -> dict[str, Any]:
    """Everything templates/composer/_composer.html draws: the form on the user's channels (on `start`
    unless one was chosen), the templates offered, the notices and the counter. A refused form keeps
    its text; each reason is said once, where it belongs."""
    allowed = setup.allowed
    form.channel.choices = [SelectChoice(c, CHANNEL_LABELS[c]) for c in allowed]
    if form.channel.data not in allowed:
        form.channel.data = start
    templates = compose.templates_for(db.session, current_user, allowed, setup.about.audience, setup.kind)
    form.template_id.choices = [SelectChoice("", "No template")] + [
        SelectChoice(str(t.id), t.name) for t in templates
    ]
    if setup.prefill and not form.body.data and not form.is_submitted():
        _start_from_template(form, templates)
    context: dict[str, Any] = {"form": form, "templates": templates, "allowed": allowed, "reply": setup.reply}
    if setup.conversation is not None:
        context.update(_whatsapp(form, setup))
        form.follow_up_template_id.choices = form.template_id.choices
    wa_template_id = form.whatsapp_template_id.data if isinstance(form, ComposeForm) else None
    counter = counter_context(
        setup,
        form.channel.data or "email",
        form.body.data or "",
        form.subject.data,
        wa_template_id,
        send_at=form.send_at.data or "",
        reason=form.override_reason.data or "",
        follow_up_body=(form.follow_up_body.data or "") if isinstance(form, ComposeForm) else "",
        follow_up_days=str(form.follow_up_days.data or "") if isinstance(form, ComposeForm) else "",
    )
    if setup.conversation is not None or setup.booking_link:
        context.update(quick_times(setup))
    # The missing right is said once, by the notice; why the person cannot be reached on this channel
    # once, by the counter under the text. When either is why a send was refused, that line becomes the
    # error instead of being repeated under "Send as".
    missing, blocked = checks.missing_right(current_user, setup.about), counter["blocked"]
    counter.update(
        missing_right=missing,
        refused_for_right=bool(missing) and missing in form.channel.errors,
        refused_for_reach=bool(blocked) and blocked in form.channel.errors,
        channel_errors=[e for e in form.channel.errors if e not in (missing, blocked)],
        # A missing or glued booking link is said by the counter, which is then the text's error.
        refused=bool(form.body.errors),
    )
    return {**context, **counter}


def _start_from_template(form: Composition, templates: list[MessageTemplate]) -> None:
    """The channel's first template, so that the form opens ready to send."""
    first = next((t for t in templates if t.channel == form.channel.data), None)
    if first is not None:
        form.template_id.data = str(first.id)
        form.body.data = first.body
        form.subject.data = first.subject or ""


def _whatsapp(form: ComposeForm, setup: Setup) -> dict[str, Any]:
    """The conversation's WhatsApp window, and the approved templates that go outside it."""
    about = setup.about
    wa_templates = (
        whatsapp.approved_templates(db.session, about.organization.id, about.audience)
        if "whatsapp" in setup.allowed
        else []
    )
    form.whatsapp_template_id.choices = [SelectChoice("", "Choose an approved template")] + [
        SelectChoice(str(t.id), f"{t.name} ({t.locale})") for t in wa_templates
    ]
    return {"wa_templates": wa_templates, **window_context(setup.conversation)}


def window_context(conversation: Conversation | None) -> dict[str, Any]:
    """What the WhatsApp window's line says (composer/_whatsapp_window.html); the thread's poll
    refreshes that line too."""
    left = whatsapp.time_left(conversation)
    return {"wa_left": left, "wa_left_text": whatsapp.describe(left) if left else ""}


def counter_context(
    setup: Setup,
    channel: str,
    body: str,
    subject: str | None = None,
    whatsapp_template_id: int | None = None,
    send_at: str = "",
    reason: str = "",
    follow_up_body: str = "",
    follow_up_days: str = "",
) -> dict[str, Any]:
    """The line under the text (templates/composer/_counter.html): what it costs, or why it cannot go,
    before the user presses Send — and what its follow-up costs, paid with it."""
    about = setup.about
    org = about.organization
    context: dict[str, Any] = {
        "composer": setup,
        "channel": channel,
        "recipients": setup.recipients,
        "first_name": about.contact.first_name,
        # Said for one person; several each get their own line in the report after sending.
        "blocked": checks.recipient_refusal(db.session, about.contact, channel)
        if setup.recipients == 1
        else None,
        "balance": credits.balance(db.session, org) if org.texts and channel != "email" else None,
        "link_fixes": [],
        "missing_link": None,
        "glued_link": None,
        "refused": False,
        "refused_for_reach": False,
        # The conversation's number can no longer send: said before Send, never switched silently.
        "number_change": compose.number_change(setup.conversation, channel, about.contact.first_name)
        if channel in ("sms", "whatsapp")
        else None,
    }
    if setup.booking_link:
        context.update(_with_booking_link(setup, channel, body, subject))
    else:
        context.update(_as_written(setup, channel, body, whatsapp_template_id))
    context.update(_plain(setup, channel, body, context))
    if setup.recipients > 1 and channel in CHANNEL_LABELS:
        context.update(hours_for_many(send_at))
    if setup.recipients == 1 and not context["blocked"] and channel in CHANNEL_LABELS:
        context.update(hours_context(setup, channel, send_at, reason, whatsapp_template_id is not None))
        refusal = follow_ups.channel_refusal(channel) if follow_up_body.strip() else None
        if refusal is not None:
            context["follow_up_refused"] = refusal.message
        elif follow_up_body.strip():
            context["follow_up"] = compose.preview(about, current_user, channel, follow_up_body)
            if channel == "sms":
                context["follow_up_plain"] = compose.plain_offer(about, current_user, follow_up_body)
                context["follow_up_typed"] = follow_up_body
            days = ids.parse(follow_up_days)
            context["follow_up_days"] = (
                days if days and follow_ups.MIN_DAYS <= days <= follow_ups.MAX_DAYS else None
            )
    return context


def hours_context(
    setup: Setup, channel: str, send_at: str, reason: str, using_template: bool = False
) -> dict[str, Any]:
    """What will happen at Send, said before it (templates/composer/_counter.html): it goes now, it is
    moved to the recipient's morning (and whether a reason can set that aside), it leaves at the picked
    time (on both clocks), or why that time or reason cannot be."""
    zone = zones.name_of_reader(current_user)
    when = compose.hours_said(
        db.session, setup.about, channel, utcnow(), send_at, zone, reason, using_template
    )
    if isinstance(when, SendRefused):
        return {"hours_refusal": when.message, "hours_field": when.field}
    return {
        "hours": when,
        "hours_when": timing.both_times(when.send_at, when.decision, zone) if when.send_at else None,
        "hours_moved": timing.moved_words(when, setup.about, zone) if when.moved else "",
    }


def hours_for_many(send_at: str) -> dict[str, Any]:
    """For several recipients: the picked time on the writer's clock, or why it cannot be; each
    recipient's own hours are applied at Send (night for them: their next allowed moment)."""
    zone = zones.name_of_reader(current_user)
    if not send_at.strip():
        return {"hours_many": ""}
    at = compose.picked_said(send_at, zone, utcnow())
    if isinstance(at, SendRefused):
        return {"hours_refusal": at.message, "hours_field": at.field}
    return {"hours_many": timing.both_times(at, None, zone)}


def quick_times(setup: Setup) -> dict[str, Any]:
    """The composer's quick choices of a time, as datetime-local values on the writer's clock: "in 1
    hour", and "their morning" (09:00 on the recipient's clock, or the first moment after it their hours
    allow) where the person has a mobile number."""
    now = utcnow()
    zone = zones.zone(zones.name_of_reader(current_user))
    soon = (now + timedelta(hours=1, minutes=4)).replace(second=0, microsecond=0)
    soon -= timedelta(minutes=soon.minute % 5)
    choices = {"in_an_hour": f"{soon.astimezone(zone):%Y-%m-%dT%H:%M}", "their_morning": None}
    mobile = setup.about.contact.mobile
    if mobile and setup.recipients == 1:
        at, then = timing.their_morning(setup.about.organization, mobile, now, timing.place_of(setup.about))
        choices["their_morning"] = f"{at.astimezone(zone):%Y-%m-%dT%H:%M}"
        choices["their_morning_label"] = timing.their_time(at, then)
    return choices


def counter_response(setup: Setup, data: Mapping[str, str], counted: Collection[str]) -> str:
    """What the counter's own requests are answered with: the counter for the fields as typed and, where
    the composer offers quick choices of a time, those choices again (out of band), so that "Their
    morning" and "In 1 hour" are as of the last keystroke, not of when the page was drawn."""
    html = render_template("composer/_counter.html", **counter_as_typed(setup, data, counted))
    if setup.conversation is not None or setup.booking_link:
        html += render_template("composer/_quick_times.html", ids=setup.ids, oob=True, **quick_times(setup))
    return html


def counter_as_typed(setup: Setup, data: Mapping[str, str], counted: Collection[str]) -> dict[str, Any]:
    """The counter for the fields as the user is typing them (what the counter's own requests send); a
    channel not among `counted` is counted as email."""
    channel = data.get("channel", "email")
    return counter_context(
        setup,
        channel if channel in counted else "email",
        data.get("body", "")[:60_000],
        data.get("subject", "")[:300],
        ids.parse(data.get("whatsapp_template_id")),
        send_at=data.get("send_at", "")[:40],
        reason=data.get("override_reason", "")[:300],
        follow_up_body=data.get("follow_up_body", "")[:60_000],
        follow_up_days=data.get("follow_up_days", "")[:10],
    )


def _as_written(setup: Setup, channel: str, body: str, whatsapp_template_id: int | None) -> dict[str, Any]:
    """The text's count; on WhatsApp outside the conversation's window, the approved template's text."""
    wa_open = whatsapp.time_left(setup.conversation) is not None
    template = None
    if channel == "whatsapp" and not wa_open and whatsapp_template_id is not None:
        template = whatsapp.approved_template(db.session, setup.about.organization.id, whatsapp_template_id)
    return {
        "preview": compose.preview(setup.about, current_user, channel, body, template),
        "wa_open": wa_open,
        "wa_template": template,
        "wa_template_needed": channel == "whatsapp" and not wa_open and setup.conversation is not None,
    }


def _plain(setup: Setup, channel: str, body: str, context: dict[str, Any]) -> dict[str, Any]:
    """The one-click offer of plain quotes and dashes (webapp.messaging.lookalikes), for an SMS whose
    count is shown and that goes as UCS-2 only because of look-alikes; `typed` is the text it was made
    for, which the field must still hold for the click to apply."""
    if channel != "sms" or context["blocked"] or context["missing_link"] or context["glued_link"]:
        return {"plain": None}
    link = invitations.sample_url(current_app.config["PUBLIC_BASE_URL"]) if setup.booking_link else None
    return {"plain": compose.plain_offer(setup.about, current_user, body, link), "typed": body}


def _with_booking_link(setup: Setup, channel: str, body: str, subject: str | None) -> dict[str, Any]:
    """For the first candidate: the text as they read it, the booking link counted at its real length;
    or why it cannot go, with the one-click fix of a glued link."""
    # The text's own problem is said here; a glued link in an email's subject is said at the subject.
    problem = invitations.link_problem(channel, body) if body.strip() else None
    text = body
    if channel in CHANNEL_LABELS and problem is None and body.strip():
        text = invitations.with_link(channel, body)
    link = invitations.sample_url(current_app.config["PUBLIC_BASE_URL"])
    glued = problem is not None and problem.message == message_templates.GLUED
    return {
        "preview": compose.preview(setup.about, current_user, channel, text, invite_link=link),
        "missing_link": problem.message if problem and not glued else None,
        "glued_link": problem.message if problem and glued else None,
        "link_fixes": message_templates.link_fixes(body, subject if channel == "email" else None),
        "link_length": len(link),
        "wa_template_needed": False,
    }


# --- Its send --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """What the form says to send, as webapp.messaging.compose takes it."""

    channel: str
    body: str
    # An email's subject line; None on the other channels.
    subject: str | None
    # The approved WhatsApp template chosen outside the window; None on the other channels.
    whatsapp_template_id: int | None
    # When it leaves (UTC); None: now, or at the recipient's next allowed moment.
    send_at: datetime | None = None
    # The writer's reason to send outside the organisation's hours for texts.
    override_reason: str | None = None
    # "If no reply in N days, send…": the follow-up to schedule with it (a conversation's composer).
    follow_up: follow_ups.Plan | None = None


# Stores the draft's message in the session's transaction and gives its id; SendRefused says why not.
Write = Callable[[Draft], int]


def draft(form: Composition, about: Subject) -> Draft:
    """The form's message to `about`; SendRefused for a time that is not one."""
    channel = form.channel.data or ""
    # A conversation's composer and a bulk message's have the field; an invitation's has none.
    template_id = form.whatsapp_template_id.data if hasattr(form, "whatsapp_template_id") else None
    send_at = (form.send_at.data or "")[:40].strip()
    return Draft(
        channel,
        form.body.data or "",
        form.subject.data if channel == "email" else None,
        template_id if channel == "whatsapp" else None,
        timing.local_time(send_at, zones.name_of_reader(current_user)) if send_at else None,
        (form.override_reason.data or "").strip() or None,
        _follow_up(form, about, channel) if isinstance(form, ComposeForm) else None,
    )


def _follow_up(form: ComposeForm, about: Subject, channel: str) -> follow_ups.Plan | None:
    """The follow-up asked for: its text as typed, else the chosen template's (of the message's
    channel); None when neither was given."""
    body, subject = form.follow_up_body.data or "", form.subject.data if channel == "email" else None
    template_id = ids.parse(form.follow_up_template_id.data)
    if not body.strip() and template_id is not None:
        body, subject = follow_ups.template_text(
            db.session, current_user, about, template_id, channel, subject
        )
    if not body.strip():
        return None
    return follow_ups.Plan(form.follow_up_days.data, body, subject)


def write_to(about: Subject) -> Write:
    """Writing to one person: the message in their conversation, through webapp.messaging.compose."""

    def write(d: Draft) -> int:
        message = compose.compose(
            db.session,
            current_user,
            about,
            d.channel,
            d.body,
            subject=d.subject,
            whatsapp_template_id=d.whatsapp_template_id,
            send_at=d.send_at,
            override_reason=d.override_reason,
        )
        if d.follow_up is not None:
            follow_ups.schedule(db.session, current_user, about, message, d.follow_up)
        return message.id

    return write


def ready(form: Composition, setup: Setup, page: Callable[[], ResponseReturnValue]) -> Draft:
    """The form's draft once its own checks and, with the booking-link rule, the channel and the link
    pass (the same for every recipient: said once, before any send); else `page` is the answer, the
    reason beside its field (webapp.web.refusals.submit)."""
    return refusals.submit(form, lambda: _checked(form, setup), page)


def send(form: Composition, setup: Setup, write: Write, page: Callable[[], ResponseReturnValue]) -> int:
    """The one way a composer's message goes: the form's checks, the rules of `ready`, `write` and the
    commit (webapp.web.refusals.submit: a refusal stores nothing and `page` is the answer), then the
    hand-over to dispatch. The message's id."""
    message_id = refusals.submit(
        form, lambda: write(_checked(form, setup)), page, said_by_page=setup.said_by_page
    )
    # One held to its time (picked, or the recipient's morning) is the scheduler's to hand over.
    if db.session.get(Message, message_id).status == "queued":  # type: ignore[union-attr]
        dispatch.enqueue(message_id)
    return message_id


def _checked(form: Composition, setup: Setup) -> Draft:
    d = draft(form, setup.about)
    if setup.booking_link:
        invitations.check_text(d.channel, setup.allowed, d.body, d.subject)
    return d
