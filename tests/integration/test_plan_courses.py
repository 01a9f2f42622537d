"""A plan that includes courses grants them with it, extends them with it, and takes
back only what it gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Plan, ProductKind
from bot.services import access, memberships
from bot.services import groups as groups_service
from bot.services.users import TelegramProfile, ensure_creator, upsert_user

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
COURSE = ProductKind.COURSE


async def _setup(db: AsyncSession) -> tuple[Plan, Course, Course, int]:
    memberships.install(grace_hours=24)
    owner, _ = await upsert_user(db, TelegramProfile(id=1, first_name="Cy"), now=T0)
    creator = await ensure_creator(db, owner)
    a = Course(creator_id=creator.id, title="A", published=True)
    b = Course(creator_id=creator.id, title="B", published=True)
    db.add_all([a, b])
    await db.flush()
    spec = groups_service.parse_plan_spec(f"Club stars=100 days=30 course={a.id} course={b.id}")
    assert spec is not None
    plan = await groups_service.save_plan(db, creator, spec)
    assert isinstance(plan, Plan)
    assert plan.course_ids == sorted([a.id, b.id])
    learner, _ = await upsert_user(db, TelegramProfile(id=2, first_name="Lu"), now=T0)
    return plan, a, b, learner.id


async def test_plan_courses_follow_the_plan(db: AsyncSession) -> None:
    plan, a, b, uid = await _setup(db)
    # B was bought on its own, for life, before the plan.
    await access.grant(db, uid, COURSE, b.id, days=None, now=T0 - timedelta(days=5))

    await access.grant(db, uid, ProductKind.PLAN, plan.id, days=30, now=T0)
    ent_a = await access.get_entitlement(db, uid, COURSE, a.id)
    assert ent_a is not None and ent_a.expires_at == T0 + timedelta(days=30)

    # A renewal extends the course with the plan.
    await access.grant(db, uid, ProductKind.PLAN, plan.id, days=30, now=T0 + timedelta(days=10))
    ent_a = await access.get_entitlement(db, uid, COURSE, a.id)
    assert ent_a is not None and ent_a.expires_at == T0 + timedelta(days=60)

    # A refund takes back the plan's course, never the one bought on its own.
    await access.revoke(db, uid, ProductKind.PLAN, plan.id, now=T0 + timedelta(days=11))
    later = T0 + timedelta(days=12)
    assert not await access.has_access(db, uid, COURSE, a.id, now=later)
    assert await access.has_access(db, uid, COURSE, b.id, now=later)


async def test_a_creator_cannot_sell_another_creators_course(db: AsyncSession) -> None:
    _plan, a, _b, _uid = await _setup(db)
    other_user, _ = await upsert_user(db, TelegramProfile(id=3, first_name="Ot"), now=T0)
    other = await ensure_creator(db, other_user)
    spec = groups_service.parse_plan_spec(f"Mine stars=10 days=30 course={a.id}")
    assert spec is not None
    assert await groups_service.save_plan(db, other, spec) == groups_service.PlanError.NOT_YOURS
