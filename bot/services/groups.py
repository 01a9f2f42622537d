"""Paid groups: linking chats, plans, who may be in a chat, member reports and audits.

Plain data in and out; the handlers talk to Telegram. Ownership is checked here, once:
a creator acts only on their own chats and plans, platform owners (ADMIN_IDS) on all.
Nothing here schedules work: bot.services.memberships builds on this module (jobs,
invites, removals, the CLI audit), never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.models import (
    Course,
    Creator,
    CreatorRole,
    Entitlement,
    Group,
    GroupMember,
    Order,
    Payment,
    PaymentMethod,
    Plan,
    PlanChat,
    ProductKind,
)
from bot.services import access

# Members the bot has seen as present in a chat.
PRESENT = ("member", "restricted", "administrator", "creator")
ADMIN_STATUSES = ("administrator", "creator")
# Stars subscriptions renew every 30 days (Telegram's only subscription_period).
SUBSCRIPTION_DAYS = 30
SUBSCRIPTION_PERIOD = SUBSCRIPTION_DAYS * 24 * 3600


# --- rights -------------------------------------------------------------------------------


class Missing(StrEnum):
    CALLER_NOT_ADMIN = "caller_not_admin"
    BOT_NOT_ADMIN = "bot_not_admin"
    CAN_INVITE = "can_invite_users"
    CAN_RESTRICT = "can_restrict_members"


@dataclass(frozen=True, slots=True)
class MemberView:
    """What getChatMember said, as plain data."""

    status: str
    can_invite_users: bool = False
    can_restrict_members: bool = False


def missing_rights(caller: MemberView, bot: MemberView) -> list[Missing]:
    """Everything that stops linking, all at once, so the creator fixes it in one go."""
    missing: list[Missing] = []
    if caller.status not in ADMIN_STATUSES:
        missing.append(Missing.CALLER_NOT_ADMIN)
    if bot.status != "administrator":
        missing.append(Missing.BOT_NOT_ADMIN)
        return missing
    if not bot.can_invite_users:
        missing.append(Missing.CAN_INVITE)
    if not bot.can_restrict_members:
        missing.append(Missing.CAN_RESTRICT)
    return missing


# --- ownership ----------------------------------------------------------------------------


def is_owner(creator: Creator) -> bool:
    return creator.role == CreatorRole.OWNER


class LinkProblem(StrEnum):
    OTHER_CREATOR = "other_creator"


async def link_chat(
    session: AsyncSession, creator: Creator, chat_id: int, kind: str, title: str
) -> Group | LinkProblem:
    group = await session.scalar(select(Group).where(Group.chat_id == chat_id))
    if group is None:
        group = Group(chat_id=chat_id, kind=kind, title=title[:255], creator_id=creator.id)
        session.add(group)
    elif group.creator_id != creator.id and not is_owner(creator):
        return LinkProblem.OTHER_CREATOR
    else:
        group.title = title[:255]
        group.kind = kind
    await session.flush()
    return group


async def group_by_chat(session: AsyncSession, chat_id: int) -> Group | None:
    return await session.scalar(select(Group).where(Group.chat_id == chat_id))


async def owned_group(session: AsyncSession, creator: Creator, ref: int) -> Group | None:
    """A chat by Telegram chat id or by our group id, only if this creator may act on it."""
    group = await group_by_chat(session, ref)
    if group is None and 0 < ref < 2**31:
        group = await session.get(Group, ref)
    if group is None or not (group.creator_id == creator.id or is_owner(creator)):
        return None
    return group


async def owned_plan(session: AsyncSession, creator: Creator, plan_id: int) -> Plan | None:
    plan = await session.get(Plan, plan_id)
    if plan is None or not (plan.creator_id == creator.id or is_owner(creator)):
        return None
    return plan


async def my_groups(session: AsyncSession, creator: Creator) -> list[tuple[Group, list[Plan]]]:
    """The creator's chats, each with the plans that sell it (by plan id)."""
    query = (
        select(Group, Plan)
        .outerjoin(PlanChat, PlanChat.group_id == Group.id)
        .outerjoin(Plan, Plan.id == PlanChat.plan_id)
        .order_by(Group.id, Plan.id)
    )
    if not is_owner(creator):
        query = query.where(Group.creator_id == creator.id)
    out: dict[int, tuple[Group, list[Plan]]] = {}
    for group, plan in (await session.execute(query)).tuples():
        _group, plans = out.setdefault(group.id, (group, []))
        if plan is not None:
            plans.append(plan)
    return list(out.values())


async def my_plans(session: AsyncSession, creator: Creator) -> list[Plan]:
    query = select(Plan).order_by(Plan.id)
    if not is_owner(creator):
        query = query.where(Plan.creator_id == creator.id)
    return list(await session.scalars(query))


async def plan_groups(session: AsyncSession, plan_id: int) -> list[Group]:
    """The chats a plan sells."""
    query = (
        select(Group)
        .join(PlanChat, PlanChat.group_id == Group.id)
        .where(PlanChat.plan_id == plan_id)
        .order_by(Group.id)
    )
    return list(await session.scalars(query))


def _group_plan_ids(group: Group) -> Select[int]:
    return select(PlanChat.plan_id).where(PlanChat.group_id == group.id)


async def group_plans(session: AsyncSession, group: Group) -> list[Plan]:
    """The plans that sell a chat, by plan id."""
    query = select(Plan).where(Plan.id.in_(_group_plan_ids(group))).order_by(Plan.id)
    return list(await session.scalars(query))


async def attach(session: AsyncSession, plan: Plan, group: Group) -> None:
    """The plan sells this chat too (once; the chat's other plans keep selling it)."""
    link = await session.get(PlanChat, (plan.id, group.id))
    if link is None:
        session.add(PlanChat(plan_id=plan.id, group_id=group.id))
        await session.flush()


# --- plans --------------------------------------------------------------------------------


class PlanError(StrEnum):
    BAD_ARGS = "bad_args"
    NO_TITLE = "no_title"
    NOT_YOURS = "not_yours"
    SUBSCRIPTION_MONTHLY = "subscription_monthly"


@dataclass
class PlanSpec:
    title: str | None = None
    stars: int | None = None
    price_minor: int | None = None
    currency: str | None = None
    days: int | None = None
    lifetime: bool = False
    trial: int | None = None
    winback: int | None = None  # percent off one renewal for who cancels or lapses; 0 = off
    subscription: bool | None = None
    publish: bool | None = None
    chats: list[int] = field(default_factory=list)
    courses: list[int] = field(default_factory=list)


def parse_plan_spec(text: str) -> PlanSpec | None:
    """`Title words stars=500 days=30|life trial=7 sub=yes publish=yes chat=-100… course=12`."""
    spec = PlanSpec()
    title: list[str] = []
    # Every number is bounded here (bot.parsing): days=99999999 or price=1e308 would
    # otherwise be stored and overflow only when a learner pays for the plan.
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep:
            title.append(word)
            continue
        key = key.lower()
        number: int | None = 0
        if key == "stars":
            number = spec.stars = parsing.whole(value, 0, parsing.MAX_STARS)
        elif key == "price":
            amount, _, currency = value.partition(":")
            spec.currency = (currency or "USD").upper()[:3]
            number = spec.price_minor = _price_minor(amount)
        elif key == "days":
            if value.lower() in ("life", "lifetime", "forever"):
                spec.lifetime = True
            else:
                number = spec.days = parsing.days(value)
        elif key == "trial":
            number = spec.trial = parsing.days(value, low=0)
        elif key == "winback":
            number = spec.winback = parsing.whole(value, 0, 90)
        elif key == "sub":
            spec.subscription = value.lower() in ("1", "yes", "on", "true")
        elif key == "publish":
            spec.publish = value.lower() in ("1", "yes", "on", "true")
        elif key == "chat":
            number = parsing.telegram_id(value)
            spec.chats.append(number or 0)  # 0 is never kept: None returns below
        elif key == "course":
            number = parsing.record_id(value)
            spec.courses.append(number or 0)
        else:
            return None
        if number is None:
            return None
    spec.title = " ".join(title)[:200] or None
    return spec


def _price_minor(text: str) -> int | None:
    """A card price in cents, finite and at most parsing.MAX_PRICE_MAJOR."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 <= amount <= parsing.MAX_PRICE_MAJOR:
        return None
    return round(amount * 100)


async def save_plan(
    session: AsyncSession, creator: Creator, spec: PlanSpec, plan: Plan | None = None
) -> Plan | PlanError:
    """Create (plan None) or edit a plan; attach the chats named in `chat=`.

    A chat may already be sold by other plans: it is added, never moved, so their members
    keep their access. A plan sells only chats of its own creator (owners included).
    """
    seller = plan.creator_id if plan is not None else creator.id
    groups = []
    for ref in spec.chats:
        group = await owned_group(session, creator, ref)
        if group is None or group.creator_id != seller:
            return PlanError.NOT_YOURS
        groups.append(group)
    for course_id in spec.courses:
        course = await session.get(Course, course_id)
        if course is None or course.creator_id != creator.id:
            return PlanError.NOT_YOURS
    if plan is None and not spec.title:
        return PlanError.NO_TITLE
    # Validate before touching anything: the caller's transaction stays clean on refusal.
    default_period = plan.period_days if plan is not None else SUBSCRIPTION_DAYS
    period = None if spec.lifetime else (spec.days if spec.days is not None else default_period)
    sub = spec.subscription
    if sub is None:
        sub = plan.stars_subscription if plan is not None else False
    if sub and period != SUBSCRIPTION_DAYS:
        return PlanError.SUBSCRIPTION_MONTHLY
    if plan is None:
        assert spec.title is not None
        plan = Plan(creator_id=creator.id, title=spec.title, period_days=30)
        session.add(plan)
    elif spec.title:
        plan.title = spec.title
    if spec.stars is not None:
        plan.stars_price = spec.stars
    if spec.price_minor is not None:
        plan.price_minor = spec.price_minor
        plan.currency = spec.currency or plan.currency
    if spec.lifetime:
        plan.period_days = None
    elif spec.days is not None:
        plan.period_days = spec.days
    if spec.trial is not None:
        plan.trial_days = spec.trial
    if spec.winback is not None:
        plan.winback_percent = spec.winback or None
    if spec.subscription is not None:
        plan.stars_subscription = spec.subscription
    if spec.publish is not None:
        plan.published = spec.publish
    if spec.courses:
        plan.course_ids = sorted(set(spec.courses))
    await session.flush()
    for group in groups:
        await attach(session, plan, group)
    return plan


# --- who may be in a chat -----------------------------------------------------------------


def _chat_entitlements(group: Group) -> Select[Entitlement]:
    """Entitlements to any plan that sells this chat."""
    return select(Entitlement).where(
        Entitlement.product_kind == ProductKind.PLAN,
        Entitlement.product_id.in_(_group_plan_ids(group)),
    )


async def is_allowed(session: AsyncSession, group: Group, user_id: int, now: datetime) -> bool:
    """Whitelisted, or holding an active entitlement to any plan that sells the chat."""
    if user_id in (group.whitelist or []):
        return True
    held = await session.scalars(_chat_entitlements(group).where(Entitlement.user_id == user_id))
    return any(ent.is_active(now) for ent in held)


async def note_member(session: AsyncSession, group: Group, user_id: int, status: str) -> None:
    query = select(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.user_id == user_id
    )
    row = await session.scalar(query)
    if row is None:
        # Telegram sends a join, a ban and an unban close together, handled concurrently:
        # the first insert wins, the others update.
        try:
            async with session.begin_nested():
                session.add(GroupMember(group_id=group.id, user_id=user_id, status=status))
            return
        except IntegrityError:
            row = await session.scalar(query)
            if row is None:
                return
    row.status = status
    await session.flush()


async def is_present(session: AsyncSession, group: Group, user_id: int) -> bool:
    """The bot last saw this user inside the chat."""
    status = await session.scalar(
        select(GroupMember.status).where(
            GroupMember.group_id == group.id, GroupMember.user_id == user_id
        )
    )
    return status in PRESENT


@dataclass(frozen=True, slots=True)
class Subscription:
    """A learner's Stars subscription to a plan, as Telegram knows it: its latest charge."""

    plan_id: int
    plan_title: str
    charge_id: str
    # The end of the period Telegram was last paid for: it renews then, unless cancelled.
    renews_at: datetime | None = None


async def subscription(session: AsyncSession, user_id: int, plan_id: int) -> Subscription | None:
    """The learner's subscription to a plan, whatever the plan's state now.

    Deliberately not limited to plans on sale: a creator unpublishing (or editing) a plan
    stops new sales, never a subscriber's right to stop paying for it.
    """
    rows = await session.execute(
        select(Payment.telegram_payment_charge_id, Payment.raw, Plan.title)
        .join(Order, Order.id == Payment.order_id)
        .outerjoin(Plan, Plan.id == Order.product_id)
        .where(
            Payment.user_id == user_id,
            Order.product_kind == ProductKind.PLAN,
            Order.product_id == plan_id,
            Payment.method == PaymentMethod.STARS,
        )
        .order_by(Payment.id.desc())
    )
    for charge_id, raw, title in rows.tuples():
        until = (raw or {}).get("subscription_expiration_date")
        if charge_id and until:
            renews_at = datetime.fromtimestamp(until, UTC) if isinstance(until, int) else None
            return Subscription(plan_id, title or f"#{plan_id}", charge_id, renews_at)
    return None


@dataclass(frozen=True, slots=True)
class HeldPlan:
    """A plan as its holder sees it (/my, /subscriptions)."""

    plan_id: int
    title: str
    expires_at: datetime | None  # None: lifetime
    active: bool
    subscription: Subscription | None
    has_chats: bool  # False: a plan of courses only, no invite link to give


async def plans_of(
    session: AsyncSession, user_id: int, now: datetime, *, renewing: bool = False
) -> list[HeldPlan]:
    """The learner's active plans; with `renewing`, also any whose Stars subscription may
    still renew although access ended (refunded, kicked): Telegram would charge again, so
    the learner must see it to cancel."""
    rows = await session.execute(
        select(Entitlement, Plan.title)
        .outerjoin(Plan, Plan.id == Entitlement.product_id)
        .where(Entitlement.user_id == user_id, Entitlement.product_kind == ProductKind.PLAN)
        .order_by(Entitlement.product_id)
    )
    out = []
    for ent, title in rows.tuples():
        active = ent.is_active(now)
        if not active and not renewing:
            continue
        sub = await subscription(session, user_id, ent.product_id)
        if not active and (sub is None or sub.renews_at is None or sub.renews_at <= now):
            continue
        name = title or f"#{ent.product_id}"
        chats = bool(await plan_groups(session, ent.product_id))
        out.append(HeldPlan(ent.product_id, name, ent.expires_at, active, sub, chats))
    return out


class TrialProblem(StrEnum):
    NO_TRIAL = "no_trial"
    USED = "used"


async def start_trial(
    session: AsyncSession, user_id: int, plan: Plan, now: datetime
) -> Entitlement | TrialProblem:
    """A free trial, once per user and plan: any earlier access (paid or trial) uses it up."""
    if plan.trial_days <= 0 or not plan.published:
        return TrialProblem.NO_TRIAL
    if await access.get_entitlement(session, user_id, ProductKind.PLAN, plan.id) is not None:
        return TrialProblem.USED
    return await access.grant(
        session, user_id, ProductKind.PLAN, plan.id, days=plan.trial_days, now=now, is_trial=True
    )


# --- reports ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberLine:
    user_id: int
    expires_at: datetime | None
    is_trial: bool
    plan_id: int


@dataclass
class MemberReport:
    active: list[MemberLine] = field(default_factory=list)
    expiring: list[MemberLine] = field(default_factory=list)
    expired: list[MemberLine] = field(default_factory=list)


async def member_report(
    session: AsyncSession, group: Group, now: datetime, soon: timedelta = timedelta(days=3)
) -> MemberReport:
    """One line per learner who ever held a plan of the chat: the entitlement that lasts
    longest (an active one before any ended one) decides where they stand."""
    report = MemberReport()
    best: dict[int, Entitlement] = {}
    for ent in await session.scalars(_chat_entitlements(group).order_by(Entitlement.id)):
        held = best.get(ent.user_id)
        if held is None or _lasts_longer(ent, held, now):
            best[ent.user_id] = ent
    never = datetime.max.replace(tzinfo=now.tzinfo)
    for ent in sorted(best.values(), key=lambda e: (e.expires_at or never, e.user_id)):
        line = MemberLine(ent.user_id, ent.expires_at, ent.is_trial, ent.product_id)
        if not ent.is_active(now):
            report.expired.append(line)
        elif ent.expires_at is not None and ent.expires_at - now <= soon:
            report.expiring.append(line)
        else:
            report.active.append(line)
    return report


def _lasts_longer(ent: Entitlement, than: Entitlement, now: datetime) -> bool:
    if ent.is_active(now) != than.is_active(now):
        return ent.is_active(now)
    if than.expires_at is None:
        return False
    return ent.expires_at is None or ent.expires_at > than.expires_at


async def audit(session: AsyncSession, group: Group, now: datetime) -> list[int]:
    """Members the bot has seen in the chat who may not be there: would be removed."""
    seen = await session.scalars(
        select(GroupMember)
        .where(GroupMember.group_id == group.id, GroupMember.status.in_(PRESENT))
        .order_by(GroupMember.user_id)
    )
    out = []
    for member in seen:
        if member.status in ADMIN_STATUSES:
            continue
        if not await is_allowed(session, group, member.user_id, now):
            out.append(member.user_id)
    return out


async def set_whitelist(session: AsyncSession, group: Group, user_id: int, on: bool) -> None:
    current = set(group.whitelist or [])
    current = current | {user_id} if on else current - {user_id}
    group.whitelist = sorted(current)
    await session.flush()


async def extend(
    session: AsyncSession, plan: Plan, user_id: int, days: int, now: datetime
) -> Entitlement:
    return await access.grant(session, user_id, ProductKind.PLAN, plan.id, days=days, now=now)


async def kick(session: AsyncSession, plan: Plan, user_id: int, now: datetime) -> bool:
    """Revoke the plan; True when that happened now (its revoke hook removes them)."""
    ent = await access.get_entitlement(session, user_id, ProductKind.PLAN, plan.id)
    if ent is None or ent.revoked_at is not None:
        return False
    await access.revoke(session, user_id, ProductKind.PLAN, plan.id, now=now)
    return True


async def still_allowed(
    session: AsyncSession, plan: Plan, user_id: int, now: datetime
) -> list[Group]:
    """The plan's chats this user may stay in anyway (another plan of the chat, whitelist)."""
    return [
        group
        for group in await plan_groups(session, plan.id)
        if await is_allowed(session, group, user_id, now)
    ]
