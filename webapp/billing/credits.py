"""Credit balances and their ledger. The balance never changes without a ledger row.

The debit is one conditional UPDATE (`balance >= amount`): PostgreSQL locks the row and re-checks the
condition for each concurrent writer, SQLite serialises writers, so the balance can never go below zero
and exactly as many messages go out as the credits pay for.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp import metrics
from webapp.messaging import conversations
from webapp.models import CreditAccount, CreditTransaction, Message, Organization, User, utcnow
from webapp.models.upsert import insert_ignore
from webapp.refusals import Refused

# The balance and the ledger's amounts are INTEGER columns; the ledger's note is VARCHAR(500).
MAX_BALANCE = 2**31 - 1
NOTE_LENGTH = 500


class RefillRefused(Refused):
    """A top-up that cannot be made; `field` says which input is wrong ("amount" or "note"). Written as
    the command line prints it after "Error: " (str), and as a sentence for a form (`message`)."""

    def __init__(self, message: str, field: str = "amount") -> None:
        super().__init__(message, field)
        self.message = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


class InsufficientCredits(Exception):
    def __init__(self, needed: int, left: int) -> None:
        self.needed = needed
        self.left = left
        super().__init__(
            f"This message needs {needed} credit{'s' if needed != 1 else ''} and your organisation has "
            f"{left} left. Contact your Customer Success Manager to refill."
        )


def account_for(session: Session, organization: Organization) -> CreditAccount:
    """The account of the organisation's top parent, created empty the first time it is needed."""
    top = organization.top
    account = session.scalar(sa.select(CreditAccount).where(CreditAccount.organization_id == top.id))
    if account is None:
        # Two first views of the credits page (or a top-up and a send) at once: one account, not a 500.
        insert_ignore(
            session,
            CreditAccount,
            {"organization_id": top.id, "balance": 0, "updated_at": utcnow()},
            ["organization_id"],
        )
        account = session.scalar(sa.select(CreditAccount).where(CreditAccount.organization_id == top.id))
        assert account is not None
    return account


def balance(session: Session, organization: Organization) -> int:
    top = organization.top
    value = session.scalar(sa.select(CreditAccount.balance).where(CreditAccount.organization_id == top.id))
    return value or 0


def _change(
    session: Session, account_id: int, amount: int, *, require: int = 0, ceiling: int | None = None
) -> int | None:
    """Add `amount` (may be negative) if the balance is at least `require` and the new balance at most
    `ceiling`; the new balance or None."""
    query = sa.update(CreditAccount).where(CreditAccount.id == account_id, CreditAccount.balance >= require)
    if ceiling is not None:
        query = query.where(CreditAccount.balance <= ceiling - amount)
    result = session.execute(
        query.values(balance=CreditAccount.balance + amount, updated_at=utcnow()).returning(
            CreditAccount.balance
        )
    )
    return result.scalar_one_or_none()


def debit(session: Session, organization: Organization, message: Message) -> CreditTransaction | None:
    """Take the message's credits from the shared balance, in the caller's transaction."""
    if message.credits <= 0:
        return None
    account = account_for(session, organization)
    new_balance = _change(session, account.id, -message.credits, require=message.credits)
    if new_balance is None:
        metrics.credits_refused(message.channel)
        session.refresh(account)
        raise InsufficientCredits(message.credits, account.balance)
    row = CreditTransaction(
        account_id=account.id,
        kind="debit",
        amount=-message.credits,
        balance_after=new_balance,
        message_id=message.id,
        user_id=message.author_id,
        note=f"{message.channel.upper()} message",
    )
    session.add(row)
    session.flush()
    return row


def refund(session: Session, organization: Organization, message: Message, note: str = "") -> bool:
    """Give back what the message cost, once; False when there was nothing (left) to refund."""
    debited = session.scalar(
        sa.select(CreditTransaction).where(
            CreditTransaction.message_id == message.id, CreditTransaction.kind == "debit"
        )
    )
    already = session.scalar(
        sa.select(CreditTransaction.id).where(
            CreditTransaction.message_id == message.id, CreditTransaction.kind == "refund"
        )
    )
    if debited is None or already is not None:
        return False
    # The conversation's row before the credits, in a reply's order (conversations.lock): a rejection,
    # a held message or a cancel that took the credits first could wait for a reply cancelling a
    # follow-up in that conversation, which holds its row and waits for the credits.
    conversations.lock(session, message.conversation_id)
    new_balance = _change(session, debited.account_id, -debited.amount)
    assert new_balance is not None  # adding never fails the condition
    session.add(
        CreditTransaction(
            account_id=debited.account_id,
            kind="refund",
            amount=-debited.amount,
            balance_after=new_balance,
            message_id=message.id,
            note=note or "Message not sent",
        )
    )
    session.flush()
    return True


def top_up(
    session: Session, organization: Organization, amount: int, note: str, user: User | None = None
) -> CreditTransaction:
    """Customer success refills a balance (on the top organisation): the CLI and the staff page."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise RefillRefused("a top-up adds a whole number of credits")
    if amount <= 0:
        raise RefillRefused("a top-up adds a positive number of credits")
    if amount > MAX_BALANCE:
        raise RefillRefused(f"a top-up adds at most {MAX_BALANCE} credits")
    if not note.strip():
        raise RefillRefused("say why in the note (e.g. the order or ticket number)", "note")
    if "\x00" in note:
        raise RefillRefused("the note contains a NUL character", "note")
    if len(note.strip()) > NOTE_LENGTH:
        raise RefillRefused(
            f"the note is {len(note.strip())} characters long; at most {NOTE_LENGTH} fit", "note"
        )
    account = account_for(session, organization)
    new_balance = _change(session, account.id, amount, ceiling=MAX_BALANCE)
    if new_balance is None:
        session.refresh(account)
        raise RefillRefused(
            f"the balance ({account.balance}) plus {amount} would be over the most an account holds "
            f"({MAX_BALANCE})"
        )
    row = CreditTransaction(
        account_id=account.id,
        kind="top_up",
        amount=amount,
        balance_after=new_balance,
        user_id=user.id if user else None,
        note=note.strip(),
    )
    session.add(row)
    session.flush()
    return row


def parse_amount(text: str) -> int:
    """A number of credits as typed into a form ("500", " +500 "); RefillRefused for anything that is
    not a whole number written in ASCII digits. The sign is kept, so that top_up says why a negative
    amount is refused."""
    value = (text or "").strip()
    digits = value.lstrip("+-")
    if not value:
        raise RefillRefused("enter the number of credits to add")
    if not digits.isascii() or not digits.isdigit() or len(value) - len(digits) > 1:
        raise RefillRefused(f"“{value[:40]}” is not a whole number of credits")
    if len(digits) > 12:  # far past MAX_BALANCE: do not make Python build a huge int to say so
        raise RefillRefused(f"a top-up adds at most {MAX_BALANCE} credits")
    return -int(digits) if value.startswith("-") else int(digits)


def low_balance(session: Session, organization: Organization) -> int | None:
    """The shared balance if it is at or below the top organisation's threshold, else None."""
    value = balance(session, organization)
    return value if value <= organization.top.low_credit_threshold else None


def ledger_sum(session: Session, account_id: int) -> int:
    return (
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(CreditTransaction.amount), 0)).where(
                CreditTransaction.account_id == account_id
            )
        )
        or 0
    )


def refunded_ids(session: Session, message_ids: list[int]) -> set[int]:
    """Which of these messages had their credits given back (from the ledger, the one truth)."""
    if not message_ids:
        return set()
    return set(
        session.scalars(
            sa.select(CreditTransaction.message_id).where(
                CreditTransaction.kind == "refund", CreditTransaction.message_id.in_(message_ids)
            )
        )
    )
