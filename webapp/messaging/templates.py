"""Communication templates: the rules a template must follow, and its preview with sample data.

A template is checked as the message it would become: its text rendered for a sample candidate goes
through the same checks as a message (webapp.messaging.checks.check_body: SMS segments, lengths, an
email's subject), and is counted by webapp.messaging.segments, so the admin's preview, the composer's
counter and the send agree. The rules of its own are the booking link's: an interview invitation by
SMS or WhatsApp must carry %INVITELINK%, or the candidate gets no way to book; only an invitation has a
link to put there; and the link stands as a word of its own (glued_invitelink), here and in every
invitation written (webapp.interviews.invitations). A template also says who it is written for
(its audience: candidates, prospects or both); a composer offers only those written for its person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp import unique
from webapp.billing import pricing
from webapp.messaging import checks, lookalikes, placeholders, segments
from webapp.models import (
    CHANNEL_LABELS,
    TEMPLATE_AUDIENCES,
    TEMPLATE_KINDS,
    Message,
    MessageTemplate,
    Organization,
    User,
    WhatsappTemplate,
    utcnow,
)
from webapp.refusals import Refused

INVITELINK = "%INVITELINK%"
NAME_LENGTH = 200
# What a booking link looks like, for the preview's count (the real token is as long).
SAMPLE_BOOKING_PATH = "/book/Xy7Qm2Lp9Rt4Vw8Zb3Nc5K"


class TemplateRefused(Refused):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class Draft:
    name: str
    channel: str
    kind: str
    subject: str | None
    body: str
    audience: str = "both"


def offered_to(audience: str) -> tuple[str, ...]:
    """The template audiences a composer for these people offers ("candidates" or "prospects")."""
    return (audience, "both")


def audience_for(kind: str, audience: str) -> str:
    """The audience a template is kept with: an interview invitation's is always "candidates" (only a
    candidate has an application to book an interview for); another keeps the one chosen."""
    return "candidates" if kind == "interview_invitation" else audience


@dataclass(frozen=True)
class Preview:
    text: str
    subject: str | None
    count: segments.SegmentCount | None  # SMS only
    credits: int
    unknown: list[str]
    problem: str | None  # what would refuse it, said while typing
    fixes: list[LinkFix]  # the fields whose %INVITELINK% is glued, with their fix
    # SMS only: plain quotes and dashes instead of look-alikes, when they alone make it UCS-2.
    plain: lookalikes.Plain | None = None


# What %JOBTITLE% stands for in the preview: a job's title for a candidate, a community's name for a
# prospect (webapp.messaging.subjects).
SAMPLE_TITLE = {"prospects": "Engineering talent"}


def sample_person(audience: str) -> str:
    """Who the preview is written for, in words."""
    if audience == "prospects":
        return f"a sample prospect: Alex Morgan, {SAMPLE_TITLE['prospects']} community"
    return "a sample candidate: Alex Morgan, Backend Engineer"


def sample_recipient(
    org: Organization, user: User, base_url: str, audience: str = "both"
) -> placeholders.Recipient:
    return placeholders.Recipient(
        first_name="Alex",
        last_name="Morgan",
        job_title=SAMPLE_TITLE.get(audience, "Backend Engineer"),  # as sample_person says
        company=org.display_sender,
        sender_name=user.name,
        invite_link=base_url.rstrip("/") + SAMPLE_BOOKING_PATH,
    )


def needs_invitelink(channel: str, kind: str) -> bool:
    return kind == "interview_invitation" and channel in ("sms", "whatsapp")


# A phone finds a link by reading on from "https://" to the next space. A letter, digit or "/" touching
# %INVITELINK% becomes part of the link ("…/book/<token>Hi": "This link does not work"), or hides where it
# starts; so does another placeholder (it becomes letters) or a "%". (What follows the link is made safe
# when it is rendered too: webapp.messaging.placeholders puts a space after it.)
_GLUE = r"[\w/%]"
_GLUED = re.compile(rf"(?<={_GLUE}){re.escape(INVITELINK)}|{re.escape(INVITELINK)}(?={_GLUE})")
_GLUED_BEFORE = re.compile(rf"(?<={_GLUE})(?={re.escape(INVITELINK)})")
_GLUED_AFTER = re.compile(rf"(?<={re.escape(INVITELINK)})(?={_GLUE})")
GLUED = (
    f"{INVITELINK} touches the text beside it: the candidate's phone would read that into the link, "
    "and the link would not work. Put a space on each side of it."
)


def glued_invitelink(text: str) -> bool:
    """Whether %INVITELINK% touches a letter, digit, "/", "%" or placeholder on either side."""
    return bool(_GLUED.search(text))


def space_invitelink(text: str) -> str:
    """The text with a space put on each side of %INVITELINK% where it was glued, and nothing else
    changed: the one-click fix offered with GLUED."""
    return _GLUED_AFTER.sub(" ", _GLUED_BEFORE.sub(" ", text))


@dataclass(frozen=True)
class LinkFix:
    """A field whose %INVITELINK% is glued: its text as typed, and as the one-click fix makes it."""

    field: str
    text: str
    fixed: str


def link_fixes(body: str, subject: str | None = None) -> list[LinkFix]:
    """The fields (body, then subject) whose %INVITELINK% is glued, each with its fix."""
    fields = (("body", body), ("subject", subject or ""))
    return [LinkFix(f, text, space_invitelink(text)) for f, text in fields if glued_invitelink(text)]


def _check(draft: Draft, recipient: placeholders.Recipient) -> None:
    """Raise TemplateRefused for the first thing wrong, naming its field."""
    if not draft.name.strip():
        raise TemplateRefused("Give the template a name.", "name")
    if len(draft.name.strip()) > NAME_LENGTH:
        raise TemplateRefused(f"Keep the name under {NAME_LENGTH} characters.", "name")
    if draft.channel not in CHANNEL_LABELS:
        raise TemplateRefused("Choose SMS, WhatsApp or email.", "channel")
    if draft.kind not in TEMPLATE_KINDS:
        raise TemplateRefused("Choose general or interview invitation.", "kind")
    if draft.audience not in TEMPLATE_AUDIENCES:
        raise TemplateRefused("Choose who it is for: candidates, prospects or both.", "audience")
    if draft.kind == "interview_invitation" and draft.audience == "prospects":
        raise TemplateRefused(
            "An interview invitation goes to candidates: a prospect has no application to book an "
            "interview for. Choose Candidates, or the kind General.",
            "audience",
        )
    has_link = INVITELINK in draft.body or INVITELINK in (draft.subject or "")
    if needs_invitelink(draft.channel, draft.kind) and INVITELINK not in draft.body:
        raise TemplateRefused(
            f"An interview invitation by {CHANNEL_LABELS[draft.channel]} must contain {INVITELINK}: "
            "without it the candidate gets no booking link.",
            "body",
        )
    if has_link and draft.kind != "interview_invitation":
        raise TemplateRefused(
            f"{INVITELINK} is filled in only in interview invitations: choose that kind, or take it out.",
            "body",
        )
    glued = link_fixes(draft.body, draft.subject if draft.channel == "email" else None)
    if glued:
        raise TemplateRefused(GLUED, glued[0].field)
    text = placeholders.render(draft.body, recipient)
    subject = placeholders.render(draft.subject or "", recipient) if draft.channel == "email" else None
    try:
        checks.check_body(draft.channel, text, subject if draft.channel == "email" else None)
    except checks.SendRefused as refusal:
        raise TemplateRefused(str(refusal), refusal.field or "body") from refusal


def preview(draft: Draft, org: Organization, user: User, base_url: str) -> Preview:
    """The template as a sample candidate reads it, its cost, and what would refuse it."""
    recipient = sample_recipient(org, user, base_url, draft.audience)
    text = placeholders.render(draft.body, recipient)
    channel = draft.channel if draft.channel in CHANNEL_LABELS else "sms"
    count = segments.count(text) if channel == "sms" else None
    cost = pricing.message_credits(channel, count, org)
    problem = None
    if draft.body.strip():
        try:
            _check(
                Draft(draft.name or "-", channel, draft.kind, draft.subject, draft.body, draft.audience),
                recipient,
            )
        except TemplateRefused as refusal:
            problem = (
                str(refusal)
                if refusal.field in ("body", "kind", "audience") or str(refusal) == GLUED
                else None
            )
    return Preview(
        text=text,
        subject=placeholders.render(draft.subject or "", recipient) if channel == "email" else None,
        count=count,
        credits=cost,
        unknown=placeholders.unknown(draft.body + " " + (draft.subject or "")),
        problem=problem,
        fixes=link_fixes(draft.body, draft.subject if channel == "email" else None)
        if problem == GLUED
        else [],
        plain=plain(draft, org, user, base_url) if channel == "sms" else None,
    )


def draft_of(template: MessageTemplate) -> Draft:
    """A kept template as the draft it was saved from."""
    return Draft(
        template.name, template.channel, template.kind, template.subject, template.body, template.audience
    )


def plain(draft: Draft, org: Organization, user: User, base_url: str) -> lookalikes.Plain | None:
    """For an SMS template: what plain quotes and dashes would give instead of its look-alikes, counted
    as the sample person reads it (webapp.messaging.lookalikes.plain); None for another channel, or when
    look-alikes are not all that makes it UCS-2."""
    if draft.channel != "sms":
        return None
    recipient = sample_recipient(org, user, base_url, draft.audience)
    return lookalikes.plain(draft.body, org, lambda text: placeholders.render(text, recipient))


def templates_of(session: Session, organization_id: int) -> list[MessageTemplate]:
    return list(
        session.scalars(
            sa.select(MessageTemplate)
            .where(MessageTemplate.organization_id == organization_id)
            .order_by(MessageTemplate.channel, MessageTemplate.kind, MessageTemplate.name)
        )
    )


def get(session: Session, organization_id: int, template_id: int) -> MessageTemplate | None:
    return session.scalar(
        sa.select(MessageTemplate).where(
            MessageTemplate.id == template_id, MessageTemplate.organization_id == organization_id
        )
    )


def channels_for(org: Organization, template: MessageTemplate | None = None) -> list[str]:
    """The channels a template of the organisation may be written for: its own (an email-only one keeps
    no SMS or WhatsApp templates), and the template's, if that was switched off since."""
    channels = list(org.channels)
    if template is not None and template.channel not in channels:
        channels.append(template.channel)
    return [c for c in CHANNEL_LABELS if c in channels]


def save(
    session: Session,
    org: Organization,
    user: User,
    draft: Draft,
    base_url: str,
    template: MessageTemplate | None = None,
) -> MessageTemplate:
    """Create (template None) or change a template of the organisation; TemplateRefused if it breaks a
    rule, and then nothing is written."""
    draft = Draft(
        draft.name.strip(),
        draft.channel,
        draft.kind,
        (draft.subject or "").strip() or None if draft.channel == "email" else None,
        draft.body,
        draft.audience,
    )
    if draft.channel in CHANNEL_LABELS and draft.channel not in channels_for(org, template):
        raise TemplateRefused("Choose one of your organisation's channels.", "channel")
    _check(draft, sample_recipient(org, user, base_url, draft.audience))
    clash = session.scalar(
        sa.select(MessageTemplate.id).where(
            MessageTemplate.organization_id == org.id,
            MessageTemplate.channel == draft.channel,
            MessageTemplate.name == draft.name,
            MessageTemplate.id != (template.id if template else 0),
        )
    )
    taken = TemplateRefused(
        f"There is already a {CHANNEL_LABELS[draft.channel]} template called “{draft.name}”.", "name"
    )
    if clash is not None:
        raise taken
    with unique.refusing(session, {"uq_message_template_organization_id_channel_name": taken}):
        if template is None:
            template = MessageTemplate(organization_id=org.id)
            session.add(template)
        else:
            template.updated_at = utcnow()
        template.name, template.channel, template.kind = draft.name, draft.channel, draft.kind
        template.subject, template.body = draft.subject, draft.body
        template.audience = audience_for(draft.kind, draft.audience)
    return template


# --- Approved WhatsApp templates ---------------------------------------------------------------------
# Kept as Meta approved them: the name and language the provider sends, the approved text with {{1}} … slots,
# and which of our placeholders fills each slot.

WA_NAME = re.compile(r"[a-z0-9_]{1,200}")
WA_LOCALE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
WA_BODY_LENGTH = 1024  # Meta's limit for a template's body
_SLOT = re.compile(r"\{\{(\d+)\}\}")


@dataclass(frozen=True)
class WhatsappDraft:
    name: str
    locale: str
    body: str
    parameters: str
    approved: bool
    audience: str = "both"


def _check_whatsapp(draft: WhatsappDraft) -> None:
    if not WA_NAME.fullmatch(draft.name):
        raise TemplateRefused(
            "Type the name exactly as Meta approved it: lower-case letters, digits and underscores.", "name"
        )
    if draft.audience not in TEMPLATE_AUDIENCES:
        raise TemplateRefused("Choose who it is for: candidates, prospects or both.", "audience")
    if not WA_LOCALE.fullmatch(draft.locale):
        raise TemplateRefused("Type the language code as Meta has it, e.g. en, en_GB or pt_BR.", "locale")
    if not draft.body.strip():
        raise TemplateRefused("Paste the approved text.", "body")
    if len(draft.body) > WA_BODY_LENGTH:
        raise TemplateRefused(f"An approved text holds at most {WA_BODY_LENGTH} characters.", "body")
    slots = sorted({int(n) for n in _SLOT.findall(draft.body)})
    if slots != list(range(1, len(slots) + 1)):
        raise TemplateRefused("Number the slots {{1}}, {{2}}, … without gaps.", "body")
    params = draft.parameters.split()
    unknown = [p for p in params if p not in placeholders.PLACEHOLDERS]
    if unknown:
        raise TemplateRefused(
            f"Unknown placeholder{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"Use {', '.join(placeholders.PLACEHOLDERS)}.",
            "parameters",
        )
    if len(params) != len(slots):
        raise TemplateRefused(
            f"The text has {len(slots)} slot{'s' if len(slots) != 1 else ''}; give one placeholder for each "
            f"(you gave {len(params)}).",
            "parameters",
        )


def whatsapp_templates_of(session: Session, organization_id: int) -> list[WhatsappTemplate]:
    return list(
        session.scalars(
            sa.select(WhatsappTemplate)
            .where(WhatsappTemplate.organization_id == organization_id)
            .order_by(WhatsappTemplate.name, WhatsappTemplate.locale)
        )
    )


def get_whatsapp(session: Session, organization_id: int, template_id: int) -> WhatsappTemplate | None:
    return session.scalar(
        sa.select(WhatsappTemplate).where(
            WhatsappTemplate.id == template_id, WhatsappTemplate.organization_id == organization_id
        )
    )


def save_whatsapp(
    session: Session, org: Organization, draft: WhatsappDraft, template: WhatsappTemplate | None = None
) -> WhatsappTemplate:
    draft = WhatsappDraft(
        draft.name.strip(),
        draft.locale.strip(),
        draft.body.strip(),
        " ".join(draft.parameters.split()),
        draft.approved,
        draft.audience,
    )
    _check_whatsapp(draft)
    clash = session.scalar(
        sa.select(WhatsappTemplate.id).where(
            WhatsappTemplate.organization_id == org.id,
            WhatsappTemplate.name == draft.name,
            WhatsappTemplate.locale == draft.locale,
            WhatsappTemplate.id != (template.id if template else 0),
        )
    )
    taken = TemplateRefused(f"{draft.name} ({draft.locale}) is here already.", "name")
    if clash is not None:
        raise taken
    with unique.refusing(session, {"uq_whatsapp_template_organization_id_name_locale": taken}):
        if template is None:
            template = WhatsappTemplate(organization_id=org.id)
            session.add(template)
        template.name, template.locale, template.body = draft.name, draft.locale, draft.body
        template.parameters, template.approved = draft.parameters, draft.approved
        template.audience = draft.audience
    return template


def remove_whatsapp(session: Session, template: WhatsappTemplate) -> bool:
    """Delete it, or, if messages were sent with it (they keep pointing at it), withdraw it: it can no
    longer be chosen. True when deleted."""
    used = session.scalar(sa.select(Message.id).where(Message.whatsapp_template_id == template.id).limit(1))
    if used is not None:
        template.approved = False
        return False
    session.delete(template)
    return True
