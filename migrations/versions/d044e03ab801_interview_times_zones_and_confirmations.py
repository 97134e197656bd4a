"""interviews (issue #17): an interviewer's slots never overlap (a stored end, and on PostgreSQL an
exclusion constraint), slots and jobs have a time zone, an invitation counts its confirmations, booking
visits keep the token they asked for

Existing data is made to fit, as follows (nothing a candidate was told is changed):

- `interview_slot.ends_at` is `starts_at + minutes`; `interview_slot.time_zone` is the organisation's
  zone, the one every slot was entered in and shown in until now.
- `job.time_zone` is set where the job's location names a city of the tz database on its own ("Berlin"
  → Europe/Berlin, "Toronto" → America/Toronto); other jobs keep None (the organisation's zone) until a
  recruiter chooses one for a slot.
- Overlapping slots of one interviewer. A slot that a candidate has booked is kept. Of a booked slot and
  a free one that overlaps it, the free one is deleted (nobody holds it; it could only be booked into a
  double booking). Of two free ones, the one added first stays. Two *booked* slots that overlap are
  both kept — each candidate was told their time — and the later one loses its interviewer ("No
  interviewer named" on the slots page): the team must find someone else for it, and the database
  can then hold the rule.

Revision ID: d044e03ab801
Revises: ed12287babcb
Create Date: 2026-12-04 20:42:31.183406

"""
from datetime import timedelta
from zoneinfo import available_timezones

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd044e03ab801'
down_revision = 'ed12287babcb'
branch_labels = None
depends_on = None

slot = sa.table(
    'interview_slot',
    sa.column('id', sa.Integer),
    sa.column('job_id', sa.Integer),
    sa.column('starts_at', sa.DateTime),
    sa.column('minutes', sa.Integer),
    sa.column('ends_at', sa.DateTime),
    sa.column('time_zone', sa.String),
    sa.column('interviewer_id', sa.Integer),
)
job = sa.table(
    'job',
    sa.column('id', sa.Integer),
    sa.column('organization_id', sa.Integer),
    sa.column('location', sa.String),
    sa.column('time_zone', sa.String),
)
organization = sa.table('organization', sa.column('id', sa.Integer), sa.column('time_zone', sa.String))
invitation = sa.table('invitation', sa.column('slot_id', sa.Integer))


def _zone_of_city(location):
    """The one tz zone whose city is the location's first part ("Berlin", "Toronto, ON"), else None."""
    city = (location or '').split(',')[0].strip().replace(' ', '_').casefold()
    if not city:
        return None
    found = [
        name for name in available_timezones()
        if '/' in name and not name.startswith(('Etc/', 'SystemV/', 'US/', 'posix/', 'right/'))
        and name.rsplit('/', 1)[1].casefold() == city
    ]
    return found[0] if len(found) == 1 else None


def _fill(conn):
    for id_, starts_at, minutes in conn.execute(sa.select(slot.c.id, slot.c.starts_at, slot.c.minutes)).all():
        conn.execute(
            sa.update(slot).where(slot.c.id == id_).values(ends_at=starts_at + timedelta(minutes=minutes))
        )
    zones = dict(
        conn.execute(
            sa.select(job.c.id, organization.c.time_zone).join(organization, organization.c.id == job.c.organization_id)
        ).all()
    )
    for job_id, zone in zones.items():
        conn.execute(sa.update(slot).where(slot.c.job_id == job_id).values(time_zone=zone or 'UTC'))
    for job_id, location in conn.execute(sa.select(job.c.id, job.c.location)).all():
        zone = _zone_of_city(location)
        if zone:
            conn.execute(sa.update(job).where(job.c.id == job_id).values(time_zone=zone))


def _untangle(conn):
    """Make every interviewer's slots disjoint, as the module's docstring says."""
    held = set(conn.execute(sa.select(invitation.c.slot_id).where(invitation.c.slot_id.is_not(None))).scalars())
    rows = conn.execute(
        sa.select(slot.c.id, slot.c.interviewer_id, slot.c.starts_at, slot.c.ends_at)
        .where(slot.c.interviewer_id.is_not(None))
        .order_by(slot.c.interviewer_id, slot.c.starts_at, slot.c.id)
    ).all()
    by_interviewer = {}
    for row in rows:
        by_interviewer.setdefault(row.interviewer_id, []).append(row)
    unname, delete = [], []
    for own in by_interviewer.values():
        kept = []

        def clashes(row):
            return any(row.starts_at < k.ends_at and k.starts_at < row.ends_at for k in kept)

        for row in [r for r in own if r.id in held]:  # booked first, soonest first
            (unname if clashes(row) else kept).append(row)
        for row in sorted((r for r in own if r.id not in held), key=lambda r: r.id):  # then free, oldest first
            (delete if clashes(row) else kept).append(row)
    if unname:
        conn.execute(sa.update(slot).where(slot.c.id.in_([r.id for r in unname])).values(interviewer_id=None))
    if delete:
        conn.execute(sa.delete(slot).where(slot.c.id.in_([r.id for r in delete])))


def upgrade():
    with op.batch_alter_table('booking_visit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_booking_visit_token_at', ['token_hash', 'created_at'], unique=False)

    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))

    with op.batch_alter_table('interview_slot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ends_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_interview_slot_interviewer_start', ['interviewer_id', 'starts_at'], unique=False)

    conn = op.get_bind()
    _fill(conn)
    _untangle(conn)

    with op.batch_alter_table('interview_slot', schema=None) as batch_op:
        batch_op.alter_column('ends_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_check_constraint(op.f('ck_interview_slot_ends_after_start'), 'ends_at > starts_at')

    if conn.dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS btree_gist')
        op.execute(
            'ALTER TABLE interview_slot ADD CONSTRAINT ex_interview_slot_interviewer_overlap '
            'EXCLUDE USING gist (interviewer_id WITH =, tsrange(starts_at, ends_at) WITH &&) '
            'WHERE (interviewer_id IS NOT NULL)'
        )

    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmations', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.drop_column('confirmations')

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE interview_slot DROP CONSTRAINT ex_interview_slot_interviewer_overlap')

    with op.batch_alter_table('interview_slot', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_interview_slot_ends_after_start'), type_='check')
        batch_op.drop_index('ix_interview_slot_interviewer_start')
        batch_op.drop_column('time_zone')
        batch_op.drop_column('ends_at')

    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('time_zone')

    with op.batch_alter_table('booking_visit', schema=None) as batch_op:
        batch_op.drop_index('ix_booking_visit_token_at')
        batch_op.drop_column('token_hash')
