"""The data model: one module per aggregate. Importing this package registers every table."""

from bot.models.access import Entitlement, Group, GroupMember, PlanChat
from bot.models.analytics import FunnelProgress, MoneyDaily, Nudge, PlanDaily, ViewsDaily
from bot.models.base import Base, utcnow
from bot.models.catalog import ContentType, Course, Lesson, Plan, ReleaseRule
from bot.models.challenges import Challenge, ChallengeMember, CheckIn
from bot.models.charts import ChartCache
from bot.models.drip import Delivery, DeliveryStatus, Enrollment, Job, JobStatus
from bot.models.events import Event, EventKind
from bot.models.growth import (
    AffiliateAttribution,
    AffiliateEntry,
    AffiliateEntryKind,
    AffiliateLink,
    AffiliateProgram,
    Gift,
    GiftStatus,
)
from bot.models.growth_messages import CheckoutReminder, ReminderCoupon, WinbackOffer
from bot.models.marketplace import Bundle, BundleCourse, Follow, Review, ReviewVote
from bot.models.orders import (
    Coupon,
    CouponKind,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    ProductKind,
)
from bot.models.partners import PartnerOptIn, Partnership, PartnerStatus
from bot.models.promotions import (
    CampaignStatus,
    PromoCampaign,
    PromoClick,
    PromoEntry,
    PromoEntryKind,
    PromoImpression,
)
from bot.models.qa import CourseOptions, Question, QuestionStatus
from bot.models.quizzes import (
    Certificate,
    Quiz,
    QuizAnswer,
    QuizAttempt,
    QuizMode,
    QuizQuestion,
)
from bot.models.users import Creator, CreatorRole, User

__all__ = [
    "AffiliateAttribution",
    "AffiliateEntry",
    "AffiliateEntryKind",
    "AffiliateLink",
    "AffiliateProgram",
    "Base",
    "Bundle",
    "BundleCourse",
    "CampaignStatus",
    "Certificate",
    "Challenge",
    "ChallengeMember",
    "ChartCache",
    "CheckIn",
    "CheckoutReminder",
    "ContentType",
    "Coupon",
    "CouponKind",
    "Course",
    "CourseOptions",
    "Creator",
    "CreatorRole",
    "Delivery",
    "DeliveryStatus",
    "Enrollment",
    "Entitlement",
    "Event",
    "EventKind",
    "Follow",
    "FunnelProgress",
    "Gift",
    "GiftStatus",
    "Group",
    "GroupMember",
    "Job",
    "JobStatus",
    "LedgerEntry",
    "LedgerKind",
    "Lesson",
    "MoneyDaily",
    "Nudge",
    "Order",
    "OrderStatus",
    "PartnerOptIn",
    "PartnerStatus",
    "Partnership",
    "Payment",
    "PaymentMethod",
    "Plan",
    "PlanChat",
    "PlanDaily",
    "ProductKind",
    "PromoCampaign",
    "PromoClick",
    "PromoEntry",
    "PromoEntryKind",
    "PromoImpression",
    "Question",
    "QuestionStatus",
    "Quiz",
    "QuizAnswer",
    "QuizAttempt",
    "QuizMode",
    "QuizQuestion",
    "ReleaseRule",
    "ReminderCoupon",
    "Review",
    "ReviewVote",
    "User",
    "ViewsDaily",
    "WinbackOffer",
    "utcnow",
]
