"""`flask seed-demo` loads the demo the README describes, and running it twice changes nothing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from webapp.accounts import access, permissions
from webapp.extensions import db
from webapp.models import (
    Candidate,
    Job,
    MessageTemplate,
    Organization,
    SendingNumber,
    User,
    WhatsappTemplate,
)

NAMED_USERS = {
    "admin@acme.example",
    "recruiter@acme.example",
    "manager@acme.example",
    "sourcer@acme.example",
    "admin@globex.example",
    "recruiter@globex.example",
    "csm@relay.example",
}


def dump() -> dict[str, list[tuple]]:
    out = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def test_seed_is_complete_and_idempotent(app, runner) -> None:
    first = runner.invoke(args=["seed-demo", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "Demo data ready" in first.output
    before = dump()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert dump() == before
    skipped = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "already has data" in skipped.output

    s = db.session
    everyone = {u.email: u for u in s.scalars(sa.select(User))}
    # Besides the named users, the administration demo has an invited and a deactivated colleague.
    users = {e: u for e, u in everyone.items() if u.active and u.password_hash}
    assert set(users) == NAMED_USERS
    assert all(u.check_password("relay-demo") for u in users.values())
    assert not everyone["jordan.blake@acme.example"].check_password("relay-demo")  # invited, no password
    assert not everyone["pat.former@acme.example"].is_active
    assert users["csm@relay.example"].is_staff and users["csm@relay.example"].organization_id is None

    acme = s.scalar(sa.select(Organization).where(Organization.name == "Acme"))
    globex = s.scalar(sa.select(Organization).where(Organization.name == "Globex"))
    assert acme.children and acme.children[0].parent is acme
    assert acme.channels == ["email", "sms", "whatsapp"] and acme.has_crm
    assert globex.channels == ["email"] and not globex.has_crm

    assert access.has_permission(users["recruiter@acme.example"], permissions.RECRUITMENT_SMS)
    assert not access.has_permission(users["manager@acme.example"], permissions.RECRUITMENT_SMS)
    assert access.is_org_admin(users["admin@acme.example"])

    countries = set(
        s.scalars(sa.select(SendingNumber.country).where(SendingNumber.organization_id == acme.id))
    )
    assert countries == {"US", "CA", "GB", "FR", "DE"}

    assert s.scalar(sa.select(sa.func.count()).select_from(Job)) >= 6
    candidates = s.scalars(sa.select(Candidate)).all()
    assert len(candidates) >= 60
    assert all(c.mobile and c.mobile.startswith("+") and c.country for c in candidates)
    assert len({c.country for c in candidates}) >= 8
    assert {"DE", "SE", "US"} <= {c.country for c in candidates}

    manager_jobs = {j.title for j in s.scalars(access.visible_jobs(users["manager@acme.example"]))}
    all_acme = {j.title for j in s.scalars(access.visible_jobs(users["admin@acme.example"]))}
    assert manager_jobs and manager_jobs < all_acme
    assert not {j.title for j in s.scalars(access.visible_jobs(users["recruiter@globex.example"]))} & all_acme


def test_the_demo_has_conversations_to_look_at(app, runner) -> None:
    from webapp.messaging import optouts, whatsapp
    from webapp.models import Conversation, ConversationState, CreditAccount, Message

    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    s = db.session
    conversations = s.scalars(sa.select(Conversation)).all()
    assert len(conversations) >= 3
    by_channel = dict(s.execute(sa.select(Message.channel, sa.func.count()).group_by(Message.channel)).all())
    assert set(by_channel) == {"email", "sms", "whatsapp"} and by_channel["sms"] >= 10
    statuses = set(s.scalars(sa.select(Message.status)))
    assert {"delivered", "read", "received", "rejected", "sent"} <= statuses
    assert any(whatsapp.time_left(c) for c in conversations)  # one WhatsApp window open
    acme = s.scalar(sa.select(Organization).where(Organization.name == "Acme"))
    contacts = [
        c.application.candidate if c.application else c.community_membership.prospect for c in conversations
    ]
    opted = [c for c in contacts if optouts.active(s, acme.id, c.mobile)]
    assert len(opted) == 1
    # A first inbox is not empty: a few dozen conversations, read and unread, prospects with the sourcer.
    assert len(conversations) >= 30
    states = s.scalars(sa.select(ConversationState)).all()
    recruiter = s.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
    sourcer = s.scalar(sa.select(User).where(User.email == "sourcer@acme.example"))
    mine = [st for st in states if st.user_id == recruiter.id]
    assert any(st.unread for st in mine) and any(st.wrote and not st.unread for st in mine)
    prospects = [c for c in conversations if c.community_membership_id]
    assert len(prospects) >= 5
    # The sourcer may text the prospects they are in conversation with (the CRM's right).
    assert permissions.SOURCING_MESSAGING in sourcer.permission_codes
    assert permissions.SOURCING_MESSAGING not in recruiter.permission_codes
    assert {st.conversation_id for st in states if st.user_id == sourcer.id and st.wrote} >= {
        c.id for c in prospects
    }
    assert all(c.last_message_id and c.last_preview for c in conversations)
    # What the history cost came off the ledger (the rejection was given back).
    account = s.scalar(sa.select(CreditAccount))
    spent = s.scalar(sa.select(sa.func.sum(Message.credits)).where(Message.status != "rejected"))
    assert account.balance == 500 - spent


def test_demo_templates_say_what_they_are_and_who_they_are_for(app, runner) -> None:
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    found = db.session.scalars(sa.select(MessageTemplate)).all()
    assert found
    for t in found:
        # "Invitation"/"invite" in a name is the kind that carries the booking link, and only that.
        named_invitation = "invitation" in t.name.lower() or "invite" in t.name.lower()
        assert named_invitation == (t.kind == "interview_invitation"), t.name
        if t.kind == "general":
            assert "%INVITELINK%" not in t.body, t.name
        elif t.channel != "email":
            assert "%INVITELINK%" in t.body, t.name
        # An invitation, or a text about an application, is for candidates; a prospect's is about neither.
        if t.kind == "interview_invitation" or "appl" in t.body.lower():
            assert t.audience == "candidates", t.name
        if t.audience == "prospects":
            assert "appl" not in t.body.lower() and "interview" not in t.body.lower(), t.name
    acme = {t.channel: t for t in found if t.audience == "prospects"}
    assert {"sms", "whatsapp"} <= set(acme)  # a sourcer has something to start from
    approved = {w.name: w.audience for w in db.session.scalars(sa.select(WhatsappTemplate))}
    assert approved == {
        "interview_invitation": "candidates",
        "application_update": "candidates",
        "new_roles": "prospects",
    }


def test_a_database_seeded_with_the_old_template_names_is_renamed_not_doubled(app, runner) -> None:
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    s = db.session
    # As an older seed left it: the general SMS template called "Interview invitation (SMS)".
    old = s.scalar(sa.select(MessageTemplate).where(MessageTemplate.name == "Ask for a call (SMS)"))
    old.name, old.audience = "Interview invitation (SMS)", "both"
    s.commit()
    count = s.scalar(sa.select(sa.func.count()).select_from(MessageTemplate))
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    s.expire_all()
    assert s.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == count
    renamed = s.get(MessageTemplate, old.id)
    assert (renamed.name, renamed.audience, renamed.kind) == ("Ask for a call (SMS)", "candidates", "general")
    assert not s.scalar(
        sa.select(MessageTemplate.id).where(MessageTemplate.name.like("Interview invitation%"))
    )
    before = dump()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert dump() == before


def test_the_demo_ledger_is_stamped_when_its_messages_went(app, runner) -> None:
    """Each debit and refund of the demo's conversations carries its message's time (not the moment the
    demo was loaded), and the balance after each row is the running sum in time order."""
    from webapp.models import CreditTransaction, Message

    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    s = db.session
    rows = s.execute(
        sa.select(CreditTransaction, Message)
        .outerjoin(Message, Message.id == CreditTransaction.message_id)
        .order_by(CreditTransaction.created_at, CreditTransaction.id)
    ).all()
    debits = [(row, message) for row, message in rows if row.kind == "debit"]
    refunds = [(row, message) for row, message in rows if row.kind == "refund"]
    assert len(debits) >= 20 and refunds
    # (The interview invitations go out as the demo loads, through compose: their debit follows a moment
    # after the message.)
    assert all(abs(row.created_at - message.created_at) < timedelta(seconds=5) for row, message in debits)
    assert all(row.created_at == message.failed_at for row, message in refunds)
    days = {row.created_at.date() for row, _ in debits}
    assert len(days) >= 5  # the threads went over days, not in the second the demo was loaded
    running = 0
    for row, _ in rows:
        running += row.amount
        assert row.balance_after == running, (row.kind, row.created_at, row.note)
