"""Demo data (the README's demo logins): two customers, the named users, jobs, candidates, communities, numbers.

Every row is found by its natural key before it is created, so running the seed twice changes nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from webapp.accounts import access, permissions
from webapp.billing import credits, pricing
from webapp.inbox import changes as activity
from webapp.interviews import demo as interviews_demo
from webapp.messaging import inbound, optouts, reads, routing, segments
from webapp.models import (
    STAGES,
    Application,
    Candidate,
    Community,
    CommunityMembership,
    Conversation,
    CreditTransaction,
    HiringTeamMember,
    Job,
    Message,
    MessageTemplate,
    OptOut,
    Organization,
    Permission,
    Prospect,
    Role,
    SendingNumber,
    SourcingTeamMember,
    User,
    WhatsappTemplate,
    utcnow,
)

PASSWORD = "relay-demo"
T = TypeVar("T")

ROLES: dict[str, list[str]] = {
    "Administrator": sorted(permissions.CODES),
    "Recruiter": [permissions.RECRUITMENT_SMS],
    "Hiring manager": [],
    "Sourcer": [permissions.RECRUITMENT_SMS, permissions.SOURCING_MESSAGING],
}

# email, name, organisation, role
USERS = [
    ("admin@acme.example", "Ada Lindqvist", "Acme", "Administrator"),
    ("recruiter@acme.example", "Riley Chen", "Acme", "Recruiter"),
    ("manager@acme.example", "Morgan Patel", "Acme", "Hiring manager"),
    ("sourcer@acme.example", "Sam Okafor", "Acme", "Sourcer"),
    ("admin@globex.example", "Gloria Reyes", "Globex", "Administrator"),
    ("recruiter@globex.example", "Glen Park", "Globex", "Recruiter"),
]
STAFF = ("csm@relay.example", "Casey Moore")

# Acme's pool: e164, sms, whatsapp
ACME_NUMBERS = [
    ("+12015550100", True, True),
    ("+12015550101", True, False),
    ("+15062345600", True, False),
    ("+447400123400", True, True),
    ("+447400123401", True, False),
    ("+33612345600", True, False),
    ("+4915123456700", True, True),
]

# organisation, title, location, open, team (email, title)
JOBS = [
    (
        "Acme",
        "Backend Engineer",
        "Berlin",
        True,
        [
            ("recruiter@acme.example", "Recruiter"),
            ("manager@acme.example", "Hiring manager"),
        ],
    ),
    (
        "Acme",
        "Product Designer",
        "London",
        True,
        [("recruiter@acme.example", "Recruiter")],
    ),
    (
        "Acme",
        "Sales Development Representative",
        "Toronto",
        True,
        [("recruiter@acme.example", "Recruiter")],
    ),
    (
        "Acme",
        "Customer Success Manager",
        "Paris",
        True,
        [("recruiter@acme.example", "Recruiter")],
    ),
    (
        "Acme",
        "Data Analyst",
        "Stockholm",
        True,
        [
            ("recruiter@acme.example", "Recruiter"),
            ("manager@acme.example", "Hiring manager"),
        ],
    ),
    (
        "Acme",
        "Warehouse Associate",
        "Newark, NJ",
        True,
        [("recruiter@acme.example", "Recruiter")],
    ),
    ("Acme", "Office Manager", "Remote", False, [("admin@acme.example", "Recruiter")]),
    (
        "Globex",
        "Field Technician",
        "Springfield",
        True,
        [("recruiter@globex.example", "Recruiter")],
    ),
    (
        "Globex",
        "Accountant",
        "Springfield",
        True,
        [("recruiter@globex.example", "Recruiter")],
    ),
]

# Where each job's interviews in person happen (Job.time_zone); "Remote" and Globex's Springfield (which
# one?) keep their organisation's.
JOB_ZONES = {
    "Berlin": "Europe/Berlin",
    "London": "Europe/London",
    "Toronto": "America/Toronto",
    "Paris": "Europe/Paris",
    "Stockholm": "Europe/Stockholm",
    "Newark, NJ": "America/New_York",
}

NAMES: dict[str, list[tuple[str, str]]] = {
    "DE": [
        ("Lena", "Müller"),
        ("Jonas", "Schmidt"),
        ("Mia", "Schneider"),
        ("Felix", "Fischer"),
        ("Hannah", "Weber"),
    ],
    "GB": [
        ("Oliver", "Smith"),
        ("Amelia", "Jones"),
        ("Harry", "Taylor"),
        ("Isla", "Brown"),
        ("George", "Davies"),
    ],
    "US": [
        ("Emma", "Johnson"),
        ("Liam", "Williams"),
        ("Olivia", "Garcia"),
        ("Noah", "Miller"),
        ("Ava", "Davis"),
    ],
    "CA": [
        ("Chloé", "Tremblay"),
        ("Ethan", "Roy"),
        ("Zoe", "Gagnon"),
        ("Lucas", "Côté"),
        ("Maya", "Bouchard"),
    ],
    "FR": [
        ("Louise", "Martin"),
        ("Gabriel", "Bernard"),
        ("Jade", "Dubois"),
        ("Raphaël", "Thomas"),
        ("Léa", "Robert"),
    ],
    "SE": [
        ("Alice", "Andersson"),
        ("William", "Johansson"),
        ("Maja", "Karlsson"),
        ("Hugo", "Nilsson"),
        ("Elsa", "Eriksson"),
    ],
    "NO": [
        ("Nora", "Hansen"),
        ("Jakob", "Johansen"),
        ("Emma", "Olsen"),
        ("Filip", "Larsen"),
    ],
    "DK": [
        ("Ida", "Nielsen"),
        ("Oscar", "Jensen"),
        ("Freja", "Pedersen"),
        ("Alfred", "Christensen"),
    ],
    "FI": [
        ("Aino", "Korhonen"),
        ("Eino", "Virtanen"),
        ("Helmi", "Mäkinen"),
        ("Väinö", "Nieminen"),
    ],
    "NL": [
        ("Tess", "de Jong"),
        ("Daan", "Jansen"),
        ("Sophie", "de Vries"),
        ("Sem", "van den Berg"),
    ],
    "ES": [
        ("Lucía", "García"),
        ("Hugo", "Fernández"),
        ("Martina", "López"),
        ("Mateo", "Sánchez"),
    ],
    "IT": [
        ("Sofia", "Rossi"),
        ("Leonardo", "Russo"),
        ("Giulia", "Ferrari"),
        ("Francesco", "Esposito"),
    ],
    "PL": [
        ("Zuzanna", "Nowak"),
        ("Antoni", "Kowalski"),
        ("Julia", "Wiśniewska"),
        ("Jan", "Wójcik"),
    ],
    "IE": [
        ("Grace", "Murphy"),
        ("Jack", "Kelly"),
        ("Fiadh", "Byrne"),
        ("Conor", "Walsh"),
    ],
    "AU": [("Charlotte", "Wilson"), ("Oliver", "Thompson"), ("Ruby", "White")],
    "BR": [("Helena", "Silva"), ("Miguel", "Santos"), ("Alice", "Oliveira")],
}

GLOBEX_NAMES = [
    ("US", "Homer", "Jay"),
    ("US", "Marge", "Bouvier"),
    ("US", "Lenny", "Leonard"),
    ("US", "Carl", "Carlson"),
    ("CA", "Maude", "Flanders"),
    ("GB", "Edna", "Krabappel"),
    ("US", "Waylon", "Smithers"),
    ("DE", "Otto", "Mann"),
    ("US", "Seymour", "Skinner"),
    ("FR", "Helen", "Lovejoy"),
]

COMMUNITIES = [
    (
        "Engineering talent pool",
        "Engineers we would like to hire in the next year.",
        ["sourcer@acme.example", "recruiter@acme.example"],
    ),
    (
        "Nordic sales network",
        "Sales people in Sweden, Norway, Denmark and Finland.",
        ["sourcer@acme.example"],
    ),
]

# organisation, channel, name, subject, body
# General templates: organisation, channel, name, who they are for (candidates, prospects or both),
# subject, text. Their names say what they are: an "interview invitation" is the kind with a booking
# link (INVITATION_TEMPLATES); these ask for a time by reply.
TEMPLATES = [
    (
        "Acme",
        "sms",
        "Ask for a call (SMS)",
        "candidates",
        None,
        "Hi %FIRSTNAME%, thanks for applying to %JOBTITLE% at %COMPANY%. Could we book a short call this week? "
        "Reply with a time that suits you.",
    ),
    (
        "Acme",
        "sms",
        "Thank you for applying (SMS)",
        "candidates",
        None,
        "Hi %FIRSTNAME%, we have received your application for %JOBTITLE%. We will be in touch soon. /%COMPANY%",
    ),
    (
        "Acme",
        "sms",
        "Are you open to a chat? (SMS)",
        "prospects",
        None,
        "Hi %FIRSTNAME%, %SENDERNAME% from %COMPANY% here. We have new roles that could suit you. "
        "Open to a short chat this month? Reply here.",
    ),
    (
        "Acme",
        "whatsapp",
        "Quick question (WhatsApp)",
        "candidates",
        None,
        "Hi %FIRSTNAME%! This is %SENDERNAME% from %COMPANY% about your application for %JOBTITLE%. "
        "Do you have a minute for a quick question?",
    ),
    (
        "Acme",
        "whatsapp",
        "Documents reminder (WhatsApp)",
        "candidates",
        None,
        "Hi %FIRSTNAME%, a friendly reminder to send us your documents for %JOBTITLE%. Thank you! – %COMPANY%",
    ),
    (
        "Acme",
        "whatsapp",
        "New roles for you (WhatsApp)",
        "prospects",
        None,
        "Hi %FIRSTNAME%! %SENDERNAME% from %COMPANY% here. A few roles have opened that match what you do. "
        "Shall I send you the details?",
    ),
    (
        "Acme",
        "whatsapp",
        "Thanks for your reply (WhatsApp)",
        "both",
        None,
        "Thanks, %FIRSTNAME%! I will get back to you soon. – %SENDERNAME%, %COMPANY%",
    ),
    (
        "Acme",
        "email",
        "Ask for interview times (email)",
        "candidates",
        "Interview for %JOBTITLE% at %COMPANY%",
        "Dear %FIRSTNAME% %LASTNAME%,\n\nThank you for your application for %JOBTITLE%. We would like to invite "
        "you to an interview. Please reply with a few times that suit you.\n\nKind regards,\n%SENDERNAME%\n%COMPANY%",
    ),
    (
        "Acme",
        "email",
        "Application received (email)",
        "candidates",
        "Your application for %JOBTITLE%",
        "Dear %FIRSTNAME%,\n\nWe have received your application for %JOBTITLE% and will get back to you soon."
        "\n\nKind regards,\n%COMPANY%",
    ),
    (
        "Globex",
        "email",
        "Ask for interview times (email)",
        "candidates",
        "Interview for %JOBTITLE%",
        "Dear %FIRSTNAME%,\n\nWe would like to meet you about %JOBTITLE%. When would suit you?\n\n%SENDERNAME%, %COMPANY%",
    ),
    (
        "Globex",
        "email",
        "Application received (email)",
        "candidates",
        "Your application for %JOBTITLE%",
        "Dear %FIRSTNAME%,\n\nThank you for applying for %JOBTITLE%. We will be in touch.\n\n%COMPANY%",
    ),
]
# Demo templates once named for what they were not (general templates called "Interview invitation"):
# a database seeded before keeps its row, renamed, instead of gaining a second one.
RENAMED_TEMPLATES = {
    ("sms", "Interview invitation (SMS)"): "Ask for a call (SMS)",
    ("email", "Interview invitation (email)"): "Ask for interview times (email)",
}
DEMO_CREDITS = 500
# name, locale, approved text, parameters (our placeholders for {{1}}, {{2}}…), who they are for
WHATSAPP_TEMPLATES = [
    (
        "interview_invitation",
        "en_GB",
        "Hi {{1}}, this is {{2}}. We would like to invite you to an interview for "
        "{{3}}. Reply here to pick a time.",
        "%FIRSTNAME% %COMPANY% %JOBTITLE%",
        "candidates",
    ),
    (
        "application_update",
        "en_GB",
        "Hi {{1}}, there is news about your application for {{2}}. Reply here and we will tell you more.",
        "%FIRSTNAME% %JOBTITLE%",
        "candidates",
    ),
    (
        "new_roles",
        "en_GB",
        "Hi {{1}}, this is {{2}}. Some roles have opened that could suit you. Reply here if you would like "
        "to hear more.",
        "%FIRSTNAME% %COMPANY%",
        "prospects",
    ),
]

# Conversations, so that a first look at an application is not empty: job, candidate, and
# the messages as (hours ago, channel, direction, status, text); outbound ones are Riley Chen's. Amelia's
# SMS thread is long enough to scroll; Lena's WhatsApp is inside its 24-hour window with a reply not yet
# read; Felix texted STOP; Oliver has email only.
# fmt: off
DEMO_THREADS: list[tuple[str, str, str, list[tuple[float, str, str, str, str]]]] = [
    (
        "Backend Engineer",
        "Amelia",
        "Jones",
        [
            (150, "email", "outbound", "sent", "Thank you for applying for Backend Engineer at Acme. We will be in touch within a week."),
            (120, "sms", "outbound", "read", "Hi Amelia, this is Riley from Acme about Backend Engineer. Do you have time for a call this week?"),
            (119, "sms", "inbound", "received", "Hi Riley! Yes, Thursday afternoon works for me."),
            (118, "sms", "outbound", "read", "Great. Thursday 14:00 UK time? I will call this number."),
            (117.5, "sms", "inbound", "received", "Perfect, talk then."),
            (96, "sms", "outbound", "rejected", "Reminder: our call is today at 14:00."),
            (95.5, "sms", "outbound", "delivered", "Reminder: our call is today at 14:00 UK time. Speak soon!"),
            (70, "sms", "outbound", "delivered", "Thanks for the chat, Amelia. The team would like you to meet them for a technical interview."),
            (69, "sms", "inbound", "received", "Wonderful! Which days are possible?"),
            (68, "sms", "outbound", "delivered", "Tuesday or Wednesday next week, 10:00 or 15:00. You will meet two engineers for about 90 minutes."),
            (50, "sms", "inbound", "received", "Wednesday 10:00 please. Is it on site in Berlin or remote?"),
            (49, "sms", "outbound", "delivered", "Remote, on video. The link follows by email. Good luck!"),
            (5, "sms", "inbound", "received", "Thank you! One more question: is there a take-home task before it?"),
        ],
    ),
    (
        "Product Designer",
        "Lena",
        "Müller",
        [
            (30, "sms", "outbound", "delivered", "Hallo Lena, thanks for your application for Product Designer. May we write to you on WhatsApp?"),
            (26, "whatsapp", "outbound", "read", "Hi Lena, this is Acme. We would like to invite you to an interview for Product Designer. Reply here to pick a time."),
            (2, "whatsapp", "inbound", "received", "Hi! Yes please, any morning next week works for me."),
        ],
    ),
    (
        "Data Analyst",
        "Felix",
        "Fischer",
        [
            (80, "sms", "outbound", "delivered", "Hi Felix, thanks for applying for Data Analyst at Acme. Could we call you tomorrow?"),
            (79, "sms", "inbound", "received", "STOP"),
        ],
    ),
    (
        "Sales Development Representative",
        "Oliver",
        "Smith",
        [
            (48, "email", "outbound", "sent", "Dear Oliver, thank you for your application for Sales Development Representative. We would like to invite you to an interview."),
        ],
    ),
]
# fmt: on
EMAIL_SUBJECT = "Your application for {job} at Acme"
MORE_CONVERSATIONS = 24
# More conversations (the scripts in turn), written by Riley Chen over the recruiter's other jobs: (channel,
# direction, status, text), oldest first ({first}, {job} filled in). Some end with the candidate's
# reply (they need one), some with ours.
MORE_THREADS: list[list[tuple[str, str, str, str]]] = [
    [
        (
            "sms",
            "outbound",
            "delivered",
            "Hi {first}, thanks for applying for {job} at Acme. Could we call you this week?",
        ),
        ("sms", "inbound", "received", "Yes! Wednesday after 3 pm works for me."),
    ],
    [
        (
            "email",
            "outbound",
            "sent",
            "Dear {first},\n\nthank you for your application for {job}. We will get back to you within a week.\n\nKind regards,\nRiley",
        )
    ],
    [
        (
            "whatsapp",
            "outbound",
            "read",
            "Hi {first}, this is Acme. We would like to invite you to an interview for {job}. Reply here to pick a time.",
        ),
        ("whatsapp", "inbound", "received", "Thank you! Monday morning would be perfect."),
        ("whatsapp", "outbound", "delivered", "Monday 9:30 it is. You will get the video link by email."),
    ],
    [
        (
            "sms",
            "outbound",
            "delivered",
            "Hi {first}, a quick reminder: your interview for {job} is tomorrow at 10:00.",
        ),
        ("sms", "inbound", "received", "Thanks for the reminder, see you then."),
        (
            "email",
            "outbound",
            "sent",
            "Dear {first},\n\nhere is the agenda for tomorrow. Looking forward to it!\n\nRiley",
        ),
    ],
    [
        ("sms", "outbound", "delivered", "Hi {first}, could you send us two references for {job}?"),
        ("sms", "inbound", "received", "Sure, I will email them tonight."),
        ("sms", "inbound", "received", "Sent! Let me know if you need anything else."),
    ],
    [
        (
            "email",
            "outbound",
            "sent",
            "Dear {first},\n\nwe would like to make you an offer for {job}. Do you have time for a call?",
        ),
        ("sms", "outbound", "delivered", "Hi {first}, I just emailed you about {job}, good news inside!"),
        ("sms", "inbound", "received", "Wow, thank you!! Calling you in 10 minutes."),
    ],
    [
        (
            "whatsapp",
            "outbound",
            "delivered",
            "Hi {first}, there is news about your application for {job}. Reply here and we will tell you more.",
        )
    ],
    [
        ("sms", "outbound", "undeliverable", "Hi {first}, are you still interested in {job}?"),
        (
            "email",
            "outbound",
            "sent",
            "Dear {first},\n\nwe could not reach you by text. Are you still interested in {job}?",
        ),
    ],
]
# Prospects in conversation with the sourcer (Sam Okafor), by community.
PROSPECT_THREADS: list[list[tuple[str, str, str, str]]] = [
    [
        (
            "sms",
            "outbound",
            "delivered",
            "Hi {first}, I am Sam from Acme. We are growing our {job}; may I tell you more?",
        ),
        ("sms", "inbound", "received", "Hi Sam, sure, what do you have in mind?"),
    ],
    [
        ("whatsapp", "outbound", "read", "Hi {first}, Sam from Acme here. Would you like to join our {job}?"),
        ("whatsapp", "inbound", "received", "Sounds interesting, send me the details."),
    ],
    [
        (
            "email",
            "outbound",
            "sent",
            "Dear {first},\n\nI would love to keep you posted about openings in our {job}.\n\nSam",
        )
    ],
    [
        (
            "sms",
            "outbound",
            "delivered",
            "Hi {first}, Sam from Acme. We have an event for our {job} next month, interested?",
        ),
        ("sms", "inbound", "received", "Yes please!"),
        ("sms", "outbound", "delivered", "Great, I will send the invitation by email."),
    ],
    [("sms", "outbound", "delivered", "Hi {first}, quick hello from Acme's {job}. Open to a chat?")],
    [
        ("whatsapp", "outbound", "delivered", "Hi {first}, Sam from Acme. Thanks for joining our {job}!"),
        ("whatsapp", "inbound", "received", "Happy to be here 🙂"),
    ],
]

PROSPECTS = [
    ("SE", "Astrid", "Lund"),
    ("NO", "Sindre", "Berg"),
    ("DK", "Karla", "Holm"),
    ("FI", "Otso", "Laine"),
    ("DE", "Paul", "Becker"),
    ("GB", "Evie", "Wright"),
    ("US", "Mason", "Clark"),
    ("NL", "Lotte", "Bakker"),
    ("SE", "Nils", "Ek"),
    ("NO", "Ingrid", "Dahl"),
    ("FR", "Manon", "Petit"),
    ("CA", "Owen", "Leblanc"),
    ("DK", "Emil", "Berg"),
    ("FI", "Venla", "Salo"),
    ("IE", "Aoife", "Ryan"),
    ("US", "Harper", "Lewis"),
]


@cache
def _password_hash() -> str:
    """PASSWORD hashed once for every demo account. They share a published password, so a salt of their
    own protects nothing, and a hash each (scrypt, ~0.13 s) was a fifth of loading the demo."""
    return generate_password_hash(PASSWORD)


def database_is_empty(session: Session) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(Organization)) == 0


def _one(session: Session, model: type[T], keys: dict[str, Any], **values: Any) -> tuple[T, bool]:
    """Find the row by its natural key, or create it with the values; True when created."""
    found = session.scalar(sa.select(model).filter_by(**keys))
    if found is not None:
        return found, False
    row = model(**keys, **values)
    session.add(row)
    session.flush()
    return row, True


def _rename_templates(session: Session, organization_ids: list[int]) -> None:
    """Give a demo template seeded under an old name its new one (and the audience it was written for),
    unless the new name is taken already: seeding again never makes a second copy."""
    wanted = {(channel, name): audience for _, channel, name, audience, _, _ in TEMPLATES}
    for (channel, old), new in RENAMED_TEMPLATES.items():
        for organization_id in organization_ids:
            keys = {"organization_id": organization_id, "channel": channel}
            found = session.scalar(sa.select(MessageTemplate).filter_by(**keys, name=old))
            taken = session.scalar(sa.select(MessageTemplate.id).filter_by(**keys, name=new))
            if found is not None and taken is None and found.kind == "general":
                found.name, found.audience = new, wanted[(channel, new)]
    session.flush()


# US candidates live in states whose own laws hold texts to other hours than the federal ones (the
# composer then says "It is 08:30 in Texas…"): New Jersey, Texas, Florida, California, New York.
_US_AREA_CODES = ("201", "512", "305", "213", "646")


def demo_mobile(country: str, index: int) -> str:
    """A valid mobile of the country, different for each index (libphonenumber's example, varied; in the
    US, in several states)."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    digits = str(example.national_number)
    if country == "US":
        digits = _US_AREA_CODES[index % len(_US_AREA_CODES)] + digits[3:]
    for attempt in range(100):
        suffix = f"{(index * 7 + attempt) % 100:02d}"
        candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-2]}{suffix}")
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    raise ValueError(f"no valid demo mobile for {country}")


def _email(first: str, last: str, domain: str, n: int) -> str:
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    return f"{ascii_name.lower().replace(' ', '')}.{n}@{domain}"


def _threads(session: Session, acme: Organization, users: dict[str, User]) -> None:
    """DEMO_THREADS, then a few dozen more (MORE_THREADS over applications, PROSPECT_THREADS with the
    sourcer), each once: a conversation that exists already (the demo's or a user's) is left alone."""
    now = utcnow()
    pool = session.scalars(
        sa.select(SendingNumber).where(SendingNumber.organization_id == acme.id).order_by(SendingNumber.e164)
    ).all()
    recruiter, sourcer = users["recruiter@acme.example"], users["sourcer@acme.example"]
    made: list[Conversation | None] = []
    for title, first, last, messages in DEMO_THREADS:
        application = session.scalar(
            sa.select(Application)
            .join(Application.job)
            .join(Application.candidate)
            .where(
                Job.organization_id == acme.id,
                Job.title == title,
                Candidate.first_name == first,
                Candidate.last_name == last,
            )
        )
        assert application is not None, (title, first, last)
        made.append(
            _assigned(
                session,
                _thread(
                    session, acme, pool, application, None, messages, recruiter, f"demo-{application.id}", now
                ),
                recruiter,
            )
        )

    # More conversations, so that the inbox has pages: over the recruiter's other jobs (Backend
    # Engineer keeps its few, which the browser tests rely on), some read by the recruiter, some not.
    others = session.scalars(
        sa.select(Application)
        .join(Application.job)
        .join(Application.candidate)
        .where(Job.organization_id == acme.id, Job.title.notin_(("Backend Engineer", "Office Manager")))
        .order_by(Job.title, Candidate.last_name, Candidate.first_name, Application.id)
    ).all()
    for i, application in enumerate(others[: MORE_CONVERSATIONS * 2 : 2]):
        script = MORE_THREADS[i % len(MORE_THREADS)]
        hours = 3 + i * 4.5  # spread over the last five days
        messages = [(hours - k * 0.4, *step) for k, step in enumerate(script)]
        conversation = _thread(
            session, acme, pool, application, None, messages, recruiter, f"demo-{application.id}", now
        )
        made.append(_assigned(session, conversation, recruiter) if i % 2 == 0 else conversation)
        if conversation is not None and i % 3 != 0:
            reads.mark_conversation_read(session, recruiter.id, conversation)

    memberships = session.scalars(
        sa.select(CommunityMembership)
        .join(CommunityMembership.prospect)
        .where(Prospect.organization_id == acme.id)
        .order_by(Prospect.last_name, Prospect.first_name)
    ).all()
    for i, membership in enumerate(memberships[: len(PROSPECT_THREADS)]):
        script = PROSPECT_THREADS[i]
        hours = 6 + i * 11
        messages = [(hours - k * 0.5, *step) for k, step in enumerate(script)]
        conversation = _thread(
            session, acme, pool, None, membership, messages, sourcer, f"demo-m{membership.id}", now
        )
        made.append(_assigned(session, conversation, sourcer) if i % 2 == 0 else conversation)
        if conversation is not None and i % 2:
            reads.mark_conversation_read(session, sourcer.id, conversation)
    session.flush()
    if any(c is not None for c in made):
        _balances_in_time_order(session, acme)


def _assigned(session: Session, conversation: Conversation | None, user: User) -> Conversation | None:
    """A new demo conversation assigned to the user who wrote it, when they are on its team (issue 21:
    *Mine* in their Inbox), as if from the start: no line in its thread."""
    if conversation is not None:
        session.flush()
        team = access.conversation_team(conversation).subquery()
        if session.scalar(sa.select(sa.literal(user.id).in_(sa.select(team.c[0])))):
            conversation.assignee_id = user.id
    return conversation


def _balances_in_time_order(session: Session, acme: Organization) -> None:
    """The threads' debits and refunds are stamped when their messages went, which is not the order the
    demo wrote them in: each row's balance after it is made the running sum in time order again (the
    account began at zero, and every change of it is a row)."""
    account = credits.account_for(session, acme)
    running = 0
    for row in session.scalars(
        sa.select(CreditTransaction)
        .where(CreditTransaction.account_id == account.id)
        .order_by(CreditTransaction.created_at, CreditTransaction.id)
    ):
        running += row.amount
        row.balance_after = running
    assert running == credits.balance(session, acme)
    session.flush()


def _thread(
    session: Session,
    acme: Organization,
    pool: Sequence[SendingNumber],
    application: Application | None,
    membership: CommunityMembership | None,
    messages: list[tuple[float, str, str, str, str]],
    author: User,
    ids: str,
    now: datetime,
) -> Conversation | None:
    """One conversation and its messages, the way real ones end up (credits debited, a rejection
    refunded, STOP opting out, what the inbox keeps), without being sent: the demo never calls a
    provider. None when the conversation was there already."""
    started = now - timedelta(hours=max(m[0] for m in messages) + 1)
    subject = (
        {"application_id": application.id} if application else {"community_membership_id": membership.id}
    )
    conversation, created = _one(session, Conversation, subject, organization_id=acme.id, created_at=started)
    if not created:
        return None
    contact = application.candidate if application else membership.prospect
    about = application.job.title if application else membership.community.name
    assert contact.mobile and contact.email
    for n, (hours, channel, direction, status, text) in enumerate(messages):
        at = now - timedelta(hours=hours)
        outbound = direction == "outbound"
        text = text.format(first=contact.first_name, job=about)
        ours = ""
        if channel != "email":
            flag = SendingNumber.sms if channel == "sms" else SendingNumber.whatsapp
            number = routing.choose_number([p for p in pool if getattr(p, flag.key)], contact.mobile)
            assert number is not None
            ours = number.e164
            if channel == "sms":
                conversation.sms_number = number
            else:
                conversation.whatsapp_number = number
        count = segments.count(text) if channel == "sms" else None
        message = Message(
            conversation_id=conversation.id,
            channel=channel,
            direction=direction,
            author_id=author.id if outbound else None,
            subject=EMAIL_SUBJECT.format(job=about) if channel == "email" else None,
            body=text,
            status=status,
            provider_id=f"{ids}-{n}",
            from_addr=(acme.display_sender if channel == "email" else ours) if outbound else contact.mobile,
            to_addr=(contact.email if channel == "email" else contact.mobile) if outbound else ours,
            encoding=count.encoding if count and outbound else None,
            segments=(count.segments if count else 1) if outbound and channel != "email" else 0,
            credits=pricing.message_credits(channel, count, acme) if outbound else 0,
            created_at=at,
            updated_at=at,
            submitted_at=at if outbound and status != "rejected" else None,
            delivered_at=at + timedelta(seconds=5) if status in ("delivered", "read") else None,
            read_at=at + timedelta(minutes=3) if status == "read" else None,
            received_at=None if outbound else at,
        )
        session.add(message)
        session.flush()
        if outbound:
            debited = credits.debit(session, acme, message)
            if debited is not None:
                debited.created_at = at  # when the message went, not when the demo was loaded
        if status == "rejected":
            message.failed_at = at
            message.error_code, message.error_title = "1320", "Network error"
            message.error_detail = "The carrier could not take the message; try again."
            if credits.refund(session, acme, message, "Rejected by the network"):
                refunded = session.scalar(
                    sa.select(CreditTransaction).where(
                        CreditTransaction.message_id == message.id, CreditTransaction.kind == "refund"
                    )
                )
                assert refunded is not None
                refunded.created_at = at
        if not outbound and optouts.keyword(text) == "stop":
            optouts.opt_out(session, acme.id, contact.mobile, message)
            opted = session.scalar(sa.select(OptOut).where(OptOut.source_message_id == message.id))
            assert opted is not None
            opted.created_at = at  # when the STOP came, not when the demo was loaded
        if not outbound and channel == "whatsapp":
            conversation.whatsapp_window_ends_at = at + inbound.WHATSAPP_WINDOW
        # What the inbox keeps: the latest message, channels, unread for the team, "mine" for the author.
        activity.record(session, conversation, message)
    return conversation


def seed(session: Session) -> dict[str, int]:
    permissions.sync(session)
    perms = {p.code: p for p in session.scalars(sa.select(Permission))}

    acme, _ = _one(
        session,
        Organization,
        {"name": "Acme", "parent_id": None},
        has_messaging=True,
        has_crm=True,
        sms_enabled=True,
        whatsapp_enabled=True,
        sender_name="Acme",
    )
    _one(
        session,
        Organization,
        {"name": "Acme Nordics", "parent_id": acme.id},
        has_messaging=True,
        has_crm=True,
        sms_enabled=True,
        whatsapp_enabled=True,
        sender_name="Acme Nordics",
    )
    globex, _ = _one(
        session,
        Organization,
        {"name": "Globex", "parent_id": None},
        sender_name="Globex",
    )
    orgs = {"Acme": acme, "Globex": globex}

    roles: dict[tuple[str, str], Role] = {}
    for org_name, org in orgs.items():
        for role_name, codes in ROLES.items():
            if org_name == "Globex" and role_name in ("Hiring manager", "Sourcer"):
                continue
            role, created = _one(session, Role, {"organization_id": org.id, "name": role_name})
            if created:
                role.permissions = [perms[c] for c in codes]
            roles[org_name, role_name] = role

    users: dict[str, User] = {}
    for email, name, org_name, role_name in USERS:
        user = session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=name, organization_id=orgs[org_name].id)
            user.password_hash = _password_hash()
            user.roles = [roles[org_name, role_name]]
            session.add(user)
        users[email] = user
    if session.scalar(sa.select(User).where(User.email == STAFF[0])) is None:
        staff = User(email=STAFF[0], name=STAFF[1], is_staff=True)
        staff.password_hash = _password_hash()
        session.add(staff)
    session.flush()

    for e164, sms, whatsapp in ACME_NUMBERS:
        _one(
            session,
            SendingNumber,
            {"e164": e164},
            organization_id=acme.id,
            sms=sms,
            whatsapp=whatsapp,
        )

    now = utcnow()
    jobs: list[Job] = []
    for i, (org_name, title, location, is_open, team) in enumerate(JOBS):
        job, _ = _one(
            session,
            Job,
            {"organization_id": orgs[org_name].id, "title": title},
            location=location,
            time_zone=JOB_ZONES.get(location),
            is_open=is_open,
            created_at=now - timedelta(days=40 - i),
        )
        for email, member_title in team:
            _one(
                session,
                HiringTeamMember,
                {"job_id": job.id, "user_id": users[email].id},
                title=member_title,
            )
        jobs.append(job)
    acme_jobs = [j for j in jobs if j.organization_id == acme.id]
    globex_jobs = [j for j in jobs if j.organization_id == globex.id]

    stages = list(STAGES)
    n = 0
    for country, names in NAMES.items():
        for first, last in names:
            n += 1
            cand, _ = _one(
                session,
                Candidate,
                {
                    "organization_id": acme.id,
                    "email": _email(first, last, "example.com", n),
                },
                first_name=first,
                last_name=last,
                mobile=demo_mobile(country, n),
            )
            # Most apply once, every third twice, so the page shows "other applications".
            for k in range(1 + (n % 3 == 0)):
                job = acme_jobs[(n + k * 3) % len(acme_jobs)]
                _one(
                    session,
                    Application,
                    {"job_id": job.id, "candidate_id": cand.id},
                    stage=stages[(n + k) % len(stages)],
                    created_at=now - timedelta(days=n % 30, hours=n),
                )
    for i, (country, first, last) in enumerate(GLOBEX_NAMES, start=1):
        cand, _ = _one(
            session,
            Candidate,
            {
                "organization_id": globex.id,
                "email": _email(first, last, "example.org", i),
            },
            first_name=first,
            last_name=last,
            mobile=demo_mobile(country, 50 + i),
        )
        _one(
            session,
            Application,
            {"job_id": globex_jobs[i % 2].id, "candidate_id": cand.id},
            stage=stages[i % 4],
            created_at=now - timedelta(days=i),
        )

    communities = []
    for name, description, team in COMMUNITIES:
        community, _ = _one(
            session,
            Community,
            {"organization_id": acme.id, "name": name},
            description=description,
        )
        for email in team:
            _one(
                session,
                SourcingTeamMember,
                {"community_id": community.id, "user_id": users[email].id},
            )
        communities.append(community)
    for i, (country, first, last) in enumerate(PROSPECTS, start=1):
        prospect, _ = _one(
            session,
            Prospect,
            {
                "organization_id": acme.id,
                "email": _email(first, last, "example.net", i),
            },
            first_name=first,
            last_name=last,
            mobile=demo_mobile(country, 80 + i),
        )
        nordic = country in ("SE", "NO", "DK", "FI")
        _one(
            session,
            CommunityMembership,
            {
                "community_id": communities[1 if nordic else 0].id,
                "prospect_id": prospect.id,
            },
        )

    _rename_templates(session, [orgs[name].id for name in {t[0] for t in TEMPLATES}])
    for org_name, channel, name, audience, subject, body in TEMPLATES:
        _one(
            session,
            MessageTemplate,
            {"organization_id": orgs[org_name].id, "channel": channel, "name": name},
            subject=subject,
            body=body,
            audience=audience,
        )
    for name, locale, body, parameters, audience in WHATSAPP_TEMPLATES:
        _one(
            session,
            WhatsappTemplate,
            {"organization_id": acme.id, "name": name, "locale": locale},
            body=body,
            parameters=parameters,
            approved=True,
            audience=audience,
        )
    seed_administration(session, acme)
    if credits.account_for(session, acme).balance == 0 and not session.scalar(
        sa.select(CreditTransaction.id).where(CreditTransaction.kind == "top_up")
    ):
        credits.top_up(session, acme, DEMO_CREDITS, "Demo credits")
    _threads(session, acme, users)
    seed_numbers_and_compliance(session, acme)
    # Slots and invitations on Backend Engineer, after the numbers they are texted from.
    interviews_demo.seed(session, acme)

    session.flush()
    counted = {
        "organisations": Organization,
        "users": User,
        "jobs": Job,
        "candidates": Candidate,
        "applications": Application,
        "prospects": Prospect,
        "sending numbers": SendingNumber,
        "message templates": MessageTemplate,
    }
    return {
        what: session.scalar(sa.select(sa.func.count()).select_from(m)) or 0 for what, m in counted.items()
    }


# --- Sending numbers and compliance documents (issue #11) ------------------------------------------

# Acme's German documents are approved (its DE number sends, and the German conversations keep it);
# its French ones were never uploaded, so the FR number waits in "pending documents" and French
# candidates are texted from the US number until an admin uploads them and staff approve.
DEMO_DE_DOCUMENTS = [
    ("business_name", "commercial_register_excerpt", "Acme GmbH", "Handelsregisterauszug-HRB-123456.pdf"),
    (
        "business_address",
        "commercial_register_excerpt",
        "Friedrichstraße 68, 10117 Berlin",
        "Handelsregisterauszug-Adresse.pdf",
    ),
]


def seed_numbers_and_compliance(session: Session, acme: Organization) -> None:
    """The requirements catalogue, Acme's approved DE submission, and each number's status by the rule
    (webapp.numbers.pool.status_for). Idempotent: an existing submission is left as it is."""
    from flask import current_app

    from webapp import phones
    from webapp.compliance import audit, catalogue, files
    from webapp.compliance.files import Upload
    from webapp.models import ComplianceDocument, ComplianceSubmission
    from webapp.numbers import pool

    catalogue.sync(session)
    admin = session.scalar(sa.select(User).where(User.email == "admin@acme.example"))
    staff = session.scalar(sa.select(User).where(User.email == STAFF[0]))
    assert admin is not None and staff is not None
    now = utcnow()
    submission, created = _one(
        session,
        ComplianceSubmission,
        {"organization_id": acme.id, "country": "DE"},
        status="approved",
        created_at=now - timedelta(days=21),
        submitted_at=now - timedelta(days=20),
        approved_at=now - timedelta(days=19),
    )
    if created:
        store = files.store_for(current_app)
        requirements = {r.code: r for r in catalogue.requirements(session, "DE")}
        for code, kind_code, value, filename in DEMO_DE_DOCUMENTS:
            requirement = requirements[code]
            kind = next(k for k in requirement.documents if k.code == kind_code)
            upload = Upload(filename=filename, content_type="application/pdf", data=_demo_pdf(f"{value}"))
            document = ComplianceDocument(
                submission=submission,
                requirement_id=requirement.id,
                kind_id=kind.id,
                value=value,
                filename=upload.filename,
                content_type=upload.content_type,
                size=upload.size,
                sha256=upload.sha256,
                stored_name=store.write(upload.data),
                status="approved",
                uploaded_by_id=admin.id,
                reviewed_by_id=staff.id,
                reviewed_at=now - timedelta(days=19),
                created_at=now - timedelta(days=21),
            )
            session.add(document)
            session.flush()
            for action, actor, days in (("uploaded", admin, 21), ("document_approved", staff, 19)):
                event = audit.record(
                    session,
                    organization_id=acme.id,
                    country="DE",
                    action=action,
                    actor=actor,
                    detail=f"{requirement.name}: {kind.name} — {filename}"
                    if action == "uploaded"
                    else requirement.name,
                    submission=submission,
                    document=document,
                )
                event.created_at = now - timedelta(days=days)
        for action, actor, days in (("submitted", admin, 20), ("approved", staff, 19)):
            event = audit.record(
                session,
                organization_id=acme.id,
                country="DE",
                action=action,
                actor=actor,
                submission=submission,
            )
            event.created_at = now - timedelta(days=days)
    # Numbers that nobody stopped take the status the documents give them (FR: pending documents).
    for number in pool.numbers_of(session, acme.id):
        if number.status in ("active", "pending_documents"):
            wanted = pool.status_for(session, acme.id, number.country)
            if number.status != wanted:
                number.status = wanted
                audit.record(
                    session,
                    organization_id=acme.id,
                    country=number.country,
                    action="number_pending" if wanted == "pending_documents" else "number_activated",
                    actor=None,
                    detail=phones.display(number.e164),
                    number=number,
                )
    session.flush()


def _demo_pdf(text: str) -> bytes:
    """A one-page PDF saying `text` (enough for a viewer to open; the demo's documents are not real)."""
    safe = (
        text.encode("latin-1", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    )
    stream = b"BT /F1 18 Tf 72 720 Td (Demo document: " + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --- Administration (issue #12) ----------------------------------------------------------------------

# Interview invitations carry the booking link; general templates are in TEMPLATES above.
INVITATION_TEMPLATES = [
    (
        "sms",
        "Invitation to interview (SMS)",
        None,
        "Hi %FIRSTNAME%, we would love to meet you about %JOBTITLE%. Pick a time that suits you: %INVITELINK%\n%COMPANY%",
    ),
    (
        "whatsapp",
        "Invitation to interview (WhatsApp)",
        None,
        "Hi %FIRSTNAME%! %SENDERNAME% from %COMPANY% here. We would like to invite you to an interview for %JOBTITLE%. Book a slot: %INVITELINK%",
    ),
    (
        "email",
        "Invitation to interview (email)",
        "Interview for %JOBTITLE% at %COMPANY%",
        "Dear %FIRSTNAME%,\n\nWe would like to invite you to an interview for %JOBTITLE%. Choose a time here: %INVITELINK%\n\nKind regards,\n%SENDERNAME%\n%COMPANY%",
    ),
]
# email, name, role; the first has been invited and not signed up yet, the second has left.
ADMIN_PEOPLE = [
    ("jordan.blake@acme.example", "Jordan Blake", "Recruiter", "invited"),
    ("pat.former@acme.example", "Pat Former", "Recruiter", "deactivated"),
]
# The demo's 500 credits as Acme bought them: an opening balance and a refill, backdated.
DEMO_LEDGER = [(120, 300, "Opening balance, order 1001"), (40, 200, "Refill, order 1042")]


def seed_administration(session: Session, acme: Organization) -> None:
    """Acme's settings (time zones), its interview-invitation templates, an invited and a deactivated
    colleague, and a credit history with a refill. Before the demo's threads: they spend from it.
    Idempotent."""
    from webapp.accounts import password_links

    acme.time_zone = acme.time_zone if acme.time_zone != "UTC" else "Europe/Berlin"
    nordics = session.scalar(sa.select(Organization).where(Organization.parent_id == acme.id))
    if nordics is not None and nordics.time_zone == "UTC":
        nordics.time_zone = "Europe/Stockholm"
    for channel, name, subject, body in INVITATION_TEMPLATES:
        _one(
            session,
            MessageTemplate,
            {"organization_id": acme.id, "channel": channel, "name": name},
            subject=subject,
            body=body,
            kind="interview_invitation",
            audience="candidates",
        )
    admin = session.scalar(sa.select(User).where(User.email == "admin@acme.example"))
    for email, name, role_name, state in ADMIN_PEOPLE:
        if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            continue
        role = session.scalar(sa.select(Role).where(Role.organization_id == acme.id, Role.name == role_name))
        person = User(email=email, name=name, organization_id=acme.id, password_hash="", roles=[role])
        if state == "deactivated":
            person.password_hash = _password_hash()
            person.active = False
        session.add(person)
        session.flush()
        if state == "invited":
            password_links.issue(session, person, admin)  # the link itself was handed over, not kept
    if not session.scalar(sa.select(CreditTransaction.id).where(CreditTransaction.kind == "top_up")):
        now = utcnow()
        for days_ago, amount, note in DEMO_LEDGER:
            row = credits.top_up(session, acme, amount, note)
            row.created_at = now - timedelta(days=days_ago)
    session.flush()
