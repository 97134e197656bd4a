"""The domain, one module per area; import models from here."""

from webapp.models.ats import STAGES, Application, Candidate, HiringTeamMember, Job
from webapp.models.base import Base, utcnow
from webapp.models.crm import (
    Community,
    CommunityMembership,
    Prospect,
    SourcingTeamMember,
)
from webapp.models.numbers import SendingNumber
from webapp.models.organization import Organization
from webapp.models.user import LoginAttempt, Permission, Role, User

__all__ = [
    "STAGES",
    "Application",
    "Base",
    "Candidate",
    "Community",
    "CommunityMembership",
    "HiringTeamMember",
    "Job",
    "LoginAttempt",
    "Organization",
    "Permission",
    "Prospect",
    "Role",
    "SendingNumber",
    "SourcingTeamMember",
    "User",
    "utcnow",
]
