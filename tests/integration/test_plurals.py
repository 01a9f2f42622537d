"""Counted texts use ngettext: "1 day" and "2 days", "1 lesson", in English and Chinese."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Lesson
from tests.integration.test_authoring_flow import OWNER, new_course
from tests.support.updates import Harness, tg_user


async def test_one_day_two_days_one_lesson(harness: Harness, db: AsyncSession) -> None:
    await new_course(harness, publish=False)
    cid = await db.scalar(select(Course.id))
    await db.close()
    await harness.send(f"/addlesson {cid}", OWNER)
    await harness.send("Welcome!", OWNER)
    lesson_id = await db.scalar(select(Lesson.id))
    await db.close()

    await harness.send(f"/release {lesson_id} days 1", OWNER)
    assert "released 1 day after enrollment." in harness.last_text()
    assert "Re-planned for 0 enrolled learners." in harness.last_text()
    await harness.send(f"/release {lesson_id} days 2", OWNER)
    assert "released 2 days after enrollment." in harness.last_text()
    await harness.send("/courses", OWNER)
    assert "1 lesson, 0 learners" in harness.last_text()
    await harness.send(f"/preview {cid} 5", OWNER)
    assert "has 1 of 1 lesson on day 5" in harness.last_text()


async def test_chinese_has_one_form(harness: Harness, db: AsyncSession) -> None:
    await new_course(harness, publish=False)
    li = tg_user(7, "Olga", "zh")  # the same owner, her Telegram now in Chinese
    cid = await db.scalar(select(Course.id))
    await db.close()
    await harness.send(f"/addlesson {cid}", li)
    await harness.send("欢迎！", li)
    lesson_id = await db.scalar(select(Lesson.id))
    await db.close()
    await harness.send(f"/release {lesson_id} days 1", li)
    assert "报名 1 天后" in harness.last_text()
    await harness.send("/courses", li)
    assert "1 节课，0 位学员" in harness.last_text()
