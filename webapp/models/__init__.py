"""The domain, one module per area; import models from here."""

from webapp.models.ats import STAGES, Application, Candidate, HiringTeamMember, Job
from webapp.models.base import Base, utcnow
from webapp.models.bulk import Batch, BatchRecipient
from webapp.models.compliance import (
    AcceptableDocument,
    ComplianceDocument,
    ComplianceEvent,
    ComplianceRequirement,
    ComplianceSubmission,
)
from webapp.models.credits import CreditAccount, CreditTransaction, RefillRequest
from webapp.models.crm import (
    Community,
    CommunityMembership,
    Prospect,
    SourcingTeamMember,
)
from webapp.models.health import NumberDay, NumberDayFailure, NumberHealth, NumberNotice
from webapp.models.ingest import WebhookEvent
from webapp.models.interviews import INVITATION_STATES, BookingVisit, InterviewSlot, Invitation
from webapp.models.messaging import (
    CHANNEL_LABELS,
    TEMPLATE_AUDIENCES,
    TEMPLATE_KINDS,
    ActivityClock,
    Conversation,
    ConversationEvent,
    ConversationRead,
    ConversationState,
    Message,
    MessageTemplate,
    NoteMention,
    Notification,
    OptOut,
    WhatsappTemplate,
)
from webapp.models.number_requests import NumberRequest
from webapp.models.numbers import SendingNumber
from webapp.models.organization import Organization
from webapp.models.scheduling import ScheduledRun
from webapp.models.user import (
    NOTIFY_CHOICES,
    LoginAttempt,
    Permission,
    Role,
    SetPasswordLink,
    User,
    UserSession,
)

__all__ = [
    "CHANNEL_LABELS",
    "INVITATION_STATES",
    "NOTIFY_CHOICES",
    "STAGES",
    "TEMPLATE_AUDIENCES",
    "TEMPLATE_KINDS",
    "AcceptableDocument",
    "ActivityClock",
    "Application",
    "Base",
    "Batch",
    "BatchRecipient",
    "BookingVisit",
    "Candidate",
    "Community",
    "CommunityMembership",
    "ComplianceDocument",
    "ComplianceEvent",
    "ComplianceRequirement",
    "ComplianceSubmission",
    "Conversation",
    "ConversationEvent",
    "ConversationRead",
    "ConversationState",
    "CreditAccount",
    "CreditTransaction",
    "HiringTeamMember",
    "InterviewSlot",
    "Invitation",
    "Job",
    "LoginAttempt",
    "Message",
    "MessageTemplate",
    "NoteMention",
    "Notification",
    "NumberDay",
    "NumberDayFailure",
    "NumberHealth",
    "NumberNotice",
    "NumberRequest",
    "OptOut",
    "Organization",
    "Permission",
    "Prospect",
    "RefillRequest",
    "Role",
    "ScheduledRun",
    "SendingNumber",
    "SetPasswordLink",
    "SourcingTeamMember",
    "User",
    "UserSession",
    "WebhookEvent",
    "WhatsappTemplate",
    "utcnow",
]
