"""Platform owners are ADMIN_IDS as configured now: someone removed from it keeps no
owner rights, whatever the creators table still says."""

from __future__ import annotations

from aiogram.methods import RefundStarPayment
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import build_app, sync_owners
from bot.models import Course, Creator, CreatorRole, Order, OrderStatus
from tests.integration.test_payments_admin import BOSS, MAYA, paid_stars_order
from tests.support.payments import PayRecordingSession, make_course, pay_settings
from tests.support.updates import Harness, settle


async def _role(db: AsyncSession, user_id: int) -> str | None:
    db.expire_all()
    role = await db.scalar(select(Creator.role).where(Creator.user_id == user_id))
    await db.close()
    return role


async def test_removed_from_admin_ids_loses_the_owner_role(
    database_url: str, engine: AsyncEngine, db: AsyncSession
) -> None:
    maya_id, course_id = await make_course(db)
    await db.commit()
    await db.close()

    before = build_app(pay_settings(database_url), session=PayRecordingSession(), engine=engine)
    h = Harness(before)
    ref = await paid_stars_order(h, course_id)
    # An owner now: everyone's sales, anyone's course.
    await h.send("/sales", BOSS)
    assert "Sales (platform)" in h.last_text()
    await h.send(f"/editcourse {course_id} title Edited by the owner", BOSS)
    assert h.last_text() == "Saved."
    assert await _role(db, BOSS.id) == CreatorRole.OWNER
    await settle(before)

    # Restarted with BOSS out of ADMIN_IDS. The stored role still says owner: rights are
    # checked against the setting on every call, not read from that row.
    after = build_app(
        pay_settings(database_url, admin_ids=""), session=PayRecordingSession(), engine=engine
    )
    h = Harness(after)
    await h.send("/sales", BOSS)
    assert h.last_text() == "No sales yet."
    await h.send(f"/sales {maya_id}", BOSS)
    assert h.last_text() == "No sales yet."
    await h.send(f"/editcourse {course_id} title Mine now", BOSS)
    assert "No such course or lesson among yours" in h.last_text()
    await h.send(f"/refund {ref}", BOSS)
    assert "No payment found" in h.last_text()
    assert h.session.of_type(RefundStarPayment) == []
    # Maya herself still sees her sale.
    await h.send("/sales", MAYA)
    assert "Your sales" in h.last_text() and "1 sale," in h.last_text()
    await settle(after)

    db.expire_all()
    assert await db.scalar(select(Course.title).where(Course.id == course_id)) == (
        "Edited by the owner"
    )
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None and order.status == OrderStatus.PAID
    await db.close()
    assert await _role(db, BOSS.id) == CreatorRole.CREATOR


async def test_start_up_syncs_the_stored_roles(
    database_url: str, engine: AsyncEngine, db: AsyncSession
) -> None:
    await make_course(db)  # Maya, a creator (user 501)
    await make_course(db, creator_user=7, title="Boss's own")
    boss = await db.scalar(select(Creator).where(Creator.user_id == 7))
    assert boss is not None
    boss.role = CreatorRole.OWNER
    await db.commit()
    await db.close()

    app = build_app(
        pay_settings(database_url, admin_ids="501"), session=PayRecordingSession(), engine=engine
    )
    await sync_owners(app)
    await settle(app)
    assert await _role(db, 7) == CreatorRole.CREATOR
    assert await _role(db, MAYA.id) == CreatorRole.OWNER
