"""Creators in chat: /newcourse (a guided conversation), lessons, schedules, broadcasts.

Every handler resolves the creator first and every service call re-checks that the
course or lesson is theirs; the handler only parses and words the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.growth import segments
from bot.handlers import commands
from bot.handlers.common import Command, clip, current_locale, has_text, is_private, show
from bot.keyboards.authoring import (
    NewCourseCB,
    PreviewCB,
    language_choice,
    preview_keyboard,
    preview_lesson_message,
    publish_choice,
)
from bot.keyboards.growth import (
    SegmentCB,
    SendCB,
    StopCB,
    confirm_keyboard,
    segment_label,
    segments_keyboard,
    stop_keyboard,
)
from bot.keyboards.learning import I18nRenderer, stars_text
from bot.models import Course, Creator, ProductKind, ReleaseRule, User
from bot.scheduler import broadcast
from bot.scheduler.clock import Clock
from bot.scheduler.errors import Rejected
from bot.scheduler.sender import Outgoing
from bot.scheduler.worker import Scheduler
from bot.services import authoring
from bot.services import groups as groups_service
from bot.services.authoring import CourseDraft, LessonContent
from bot.services.search import CatalogSearch
from bot.telegram.sender import CAPTION_LIMIT, TelegramSender
from bot.text import TEXT_LIMIT, visible_length

router = Router(name=__name__)
router.message.filter(is_private)


class NewCourse(StatesGroup):
    title = State()
    description = State()
    tags = State()
    language = State()
    price = State()
    stars = State()
    confirm = State()


class LessonInput(StatesGroup):
    add = State()
    replace = State()


class BroadcastInput(StatesGroup):
    segment = State()
    text = State()
    confirm = State()


def not_creator() -> str:
    return _("Only creators can do this. Send /becomecreator to start selling courses.")


def not_found() -> str:
    return _("No such course or lesson among yours. /courses lists them.")


async def _creator(session: AsyncSession, user: User, settings: Settings) -> Creator | None:
    return await authoring.creator_for(session, user, settings.admin_ids)


async def creator_or_say(
    message: Message, session: AsyncSession, user: User, settings: Settings
) -> Creator | None:
    """The creator behind a command; anyone else is told how to become one."""
    creator = await _creator(session, user, settings)
    if creator is None:
        await message.answer(not_creator())
    return creator


async def own_course_arg(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    usage: str,
) -> Course | None:
    """The creator's course named by the command's first argument; otherwise the sender
    is told why (not a creator, not their course, or how to use it)."""
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return None
    args = _int_args(command, 1)
    course = await authoring.own_course(session, creator, args[0]) if args else None
    if course is None:
        await message.answer(not_found() if args else usage)
    return course


async def _ask_for(
    message: Message, state: FSMContext, step: State, course: Course, prompt: str
) -> None:
    """Wait for the creator's next message (a lesson, a broadcast) for this course."""
    await state.set_state(step)
    await state.set_data({"course_id": course.id})
    await message.answer(prompt.format(title=escape(course.title)))


def _int_args(command: CommandObject, count: int) -> list[int] | None:
    """The first `count` words as ids; None when one is not an id we could have issued."""
    parts = (command.args or "").split()
    ids = [parsing.record_id(p) for p in parts[:count]]
    if len(ids) < count or None in ids:
        return None
    return [i for i in ids if i is not None]


@router.message(Command("cancel"), StateFilter("*"))
async def cmd_cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("Cancelled."))


@router.message(Command("becomecreator"))
async def cmd_become_creator(message: Message, session: AsyncSession, user: User) -> None:
    _creator_row, created = await authoring.become_creator(session, user)
    if created:
        await message.answer(
            _(
                "You are a creator now. /newcourse creates a course, /courses lists yours, "
                "/creatorhelp shows every creator command."
            )
        )
    else:
        await message.answer(_("You are already a creator. /creatorhelp lists what you can do."))


@router.message(Command("creatorhelp"))
async def cmd_creator_help(message: Message, user: User, settings: Settings) -> None:
    for page in commands.creator_help(owner=user.id in settings.admin_ids):
        await message.answer(page)


# --- /newcourse -------------------------------------------------------------------------


@router.message(Command("newcourse"))
async def cmd_new_course(
    message: Message, session: AsyncSession, user: User, settings: Settings, state: FSMContext
) -> None:
    if await creator_or_say(message, session, user, settings) is None:
        return
    await state.set_state(NewCourse.title)
    await state.set_data({})
    await message.answer(_("New course. What is its title? (/cancel to stop)"))


def _text(message: Message) -> str:
    return (message.html_text if message.text else "").strip()


@router.message(StateFilter(NewCourse.title), has_text)
async def on_title(message: Message, state: FSMContext) -> None:
    title = (message.text or "").strip()
    if not title or title.startswith("/"):
        await message.answer(_("Please send the title as text."))
        return
    await state.update_data(title=title[: authoring.MAX_TITLE])
    await state.set_state(NewCourse.description)
    await message.answer(_("Describe the course in a few sentences."))


@router.message(StateFilter(NewCourse.description), has_text)
async def on_description(message: Message, state: FSMContext) -> None:
    await state.update_data(description=(message.text or "").strip()[:3000])
    await state.set_state(NewCourse.tags)
    await message.answer(_("Tags, separated by commas (or - for none):"))


@router.message(StateFilter(NewCourse.tags), has_text)
async def on_tags(message: Message, state: FSMContext) -> None:
    await state.update_data(tags=authoring.parse_tags(message.text or ""))
    await state.set_state(NewCourse.language)
    await message.answer(_("Which language is the course in?"), reply_markup=language_choice())


@router.callback_query(StateFilter(NewCourse.language), NewCourseCB.filter(F.action == "lang"))
async def on_language(
    callback: CallbackQuery, callback_data: NewCourseCB, state: FSMContext
) -> None:
    language = callback_data.value if callback_data.value in ("en", "zh") else "en"
    await state.update_data(language=language)
    await state.set_state(NewCourse.price)
    await callback.answer()
    if callback.message is not None:
        await callback.message.answer(
            _("Card price, e.g. <code>19.99 USD</code>, or 0 for no card payments:")
        )


def price_limit() -> str:
    return _("A card price is at most {max} in its currency, e.g. <code>19.99 USD</code>.").format(
        max=f"{parsing.MAX_PRICE_MAJOR:,}"
    )


def stars_limit() -> str:
    return _("A Stars price is a whole number from 0 to {max}.").format(
        max=f"{parsing.MAX_STARS:,}"
    )


def field_limits(field: str) -> str:
    """What a field accepts, told with the refusal so the creator can fix it at once."""
    if field == "price":
        return " " + price_limit()
    if field == "stars":
        return " " + stars_limit()
    if field == "language":
        return " " + _("Languages: en, zh.")
    return ""


@router.message(StateFilter(NewCourse.price), has_text)
async def on_price(message: Message, state: FSMContext) -> None:
    price = authoring.parse_price(message.text or "")
    if price is None:
        await message.answer(_("I could not read that price.") + " " + price_limit())
        return
    await state.update_data(price_minor=price[0], currency=price[1])
    await state.set_state(NewCourse.stars)
    await message.answer(_("Price in Telegram Stars (a whole number, 0 for none):"))


@router.message(StateFilter(NewCourse.stars), has_text)
async def on_stars(message: Message, state: FSMContext) -> None:
    stars = authoring.parse_stars(message.text or "")
    if stars is None:
        await message.answer(
            _("Please send a whole number of Stars, e.g. 250.") + " " + stars_limit()
        )
        return
    await state.update_data(stars_price=stars)
    await state.set_state(NewCourse.confirm)
    data = await state.get_data()
    await message.answer(
        _("Ready: <b>{title}</b>. Publish it now or keep it as a draft?").format(
            title=escape(data.get("title", ""))
        ),
        reply_markup=publish_choice(),
    )


@router.callback_query(
    StateFilter(NewCourse.confirm), NewCourseCB.filter(F.action.in_({"publish", "draft"}))
)
async def on_confirm(
    callback: CallbackQuery,
    callback_data: NewCourseCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
    search: CatalogSearch,
) -> None:
    creator = await _creator(session, user, settings)
    data: dict[str, Any] = await state.get_data()
    await state.clear()
    await callback.answer()
    if creator is None or not data.get("title") or callback.message is None:
        return
    draft = CourseDraft(
        title=data["title"],
        description=data.get("description", ""),
        tags=data.get("tags", []),
        language=data.get("language", "en"),
        price_minor=int(data.get("price_minor", 0)),
        currency=data.get("currency", "USD"),
        stars_price=int(data.get("stars_price", 0)),
    )
    course = await authoring.create_course(session, creator, draft)
    search.invalidate()
    # A new course has no lessons, and a course without lessons is never published:
    # "Publish" gets the same draft, with the reason and the way there.
    text = (
        _(
            "Course #{id} «{title}» is saved as a draft: a course is published once it has "
            "a lesson. Add lessons with /addlesson {id}, then /publish {id}."
        )
        if callback_data.action == "publish"
        else _(
            "Course #{id} «{title}» is saved as a draft. Add lessons with /addlesson {id}, "
            "then /publish {id} when ready."
        )
    )
    await callback.message.answer(text.format(id=course.id, title=escape(course.title)))


@router.message(StateFilter(NewCourse))
async def on_new_course_other(message: Message) -> None:
    await message.answer(_("Please answer with text, or /cancel."))


# --- course management ------------------------------------------------------------------


@router.message(Command("courses"))
async def cmd_courses(
    message: Message, session: AsyncSession, user: User, settings: Settings
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    courses = await authoring.my_courses(session, creator)
    if not courses:
        await message.answer(_("You have no courses yet. /newcourse creates one."))
        return
    lines = [_("Your courses:")]
    for c in courses:
        status = _("published") if c.published else _("draft")
        lines.append(
            _("#{id} <b>{title}</b> — {status}, {lessons}, {learners}").format(
                id=c.id,
                title=escape(c.title),
                status=status,
                lessons=ngettext("{n} lesson", "{n} lessons", c.lessons).format(n=c.lessons),
                learners=ngettext("{n} learner", "{n} learners", c.learners).format(n=c.learners),
            )
        )
    await message.answer(clip("\n".join(lines)))


@router.message(Command("editcourse"))
async def cmd_edit_course(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    parts = (command.args or "").split(maxsplit=2)
    course_id = parsing.record_id(parts[0]) if parts else None
    if len(parts) < 3 or course_id is None or parts[1] not in authoring.EDITABLE:
        await message.answer(
            _("Usage: /editcourse <i>id field value</i>; fields: {fields}").format(
                fields=", ".join(authoring.EDITABLE)
            )
        )
        return
    result = await authoring.edit_course(session, creator, course_id, parts[1], parts[2])
    if result is None:
        await message.answer(not_found())
    elif result is False:
        await message.answer(
            _("That value does not fit the field {field}.").format(field=parts[1])
            + field_limits(parts[1])
        )
    else:
        search.invalidate()
        await message.answer(_("Saved."))


async def _publish(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
    published: bool,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    args = _int_args(command, 1)
    if args is None:
        usage = (
            _("Usage: /publish <i>course id</i>")
            if published
            else _("Usage: /unpublish <i>course id</i>")
        )
        await message.answer(usage)
        return
    course = await authoring.set_published(session, creator, args[0], published)
    if course is None:
        await message.answer(not_found())
        return
    if not isinstance(course, Course):
        await message.answer(
            _(
                "Course #{id} has no lessons yet, so it stays a draft. Add one with "
                "/addlesson {id}, then /publish {id}."
            ).format(id=args[0] if args else "")
        )
        return
    search.invalidate()
    text = _("«{title}» is published.") if published else _("«{title}» is unpublished.")
    await message.answer(text.format(title=escape(course.title)))


@router.message(Command("publish"))
async def cmd_publish(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
) -> None:
    await _publish(message, command, session, user, settings, search, True)


@router.message(Command("unpublish"))
async def cmd_unpublish(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
) -> None:
    await _publish(message, command, session, user, settings, search, False)


@router.message(Command("protect"))
async def cmd_protect(
    message: Message, command: CommandObject, session: AsyncSession, user: User, settings: Settings
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    parts = (command.args or "").split()
    course_id = parsing.record_id(parts[0]) if parts else None
    if len(parts) != 2 or course_id is None or parts[1] not in ("on", "off"):
        await message.answer(_("Usage: /protect <i>course id</i> on|off"))
        return
    course = await authoring.set_protect(session, creator, course_id, parts[1] == "on")
    if course is None:
        await message.answer(not_found())
    elif course.protect_content:
        await message.answer(_("Lessons of this course can't be forwarded or saved."))
    else:
        await message.answer(_("Lessons of this course may be forwarded and saved."))


# --- lessons ----------------------------------------------------------------------------


def content_of(message: Message) -> LessonContent | None:
    caption = message.html_text if message.caption else None
    if message.photo:
        return LessonContent("photo", file_id=message.photo[-1].file_id, caption=caption)
    if message.video:
        return LessonContent("video", file_id=message.video.file_id, caption=caption)
    if message.document:
        return LessonContent("document", file_id=message.document.file_id, caption=caption)
    if message.voice:
        return LessonContent("voice", file_id=message.voice.file_id, caption=caption)
    if message.text and not message.text.startswith("/"):
        return LessonContent("text", text=message.html_text)
    return None


@router.message(Command("addlesson"))
async def cmd_add_lesson(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
) -> None:
    course = await own_course_arg(
        message, command, session, user, settings, _("Usage: /addlesson <i>course id</i>")
    )
    if course is not None:
        await _ask_for(
            message,
            state,
            LessonInput.add,
            course,
            _(
                "Send the lesson for «{title}»: text, a photo, a video, a document or a voice "
                "message, with a caption if you like. /cancel to stop."
            ),
        )


@router.message(Command("editlesson"))
async def cmd_edit_lesson(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    args = _int_args(command, 1)
    owned = await authoring.own_lesson(session, creator, args[0]) if args else None
    if owned is None:
        await message.answer(not_found() if args else _("Usage: /editlesson <i>lesson id</i>"))
        return
    await state.set_state(LessonInput.replace)
    await state.set_data({"lesson_id": owned[0].id})
    await message.answer(_("Send the new content of this lesson. /cancel to stop."))


@router.message(StateFilter(LessonInput))
async def on_lesson_content(
    message: Message,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    creator = await _creator(session, user, settings)
    content = content_of(message)
    if creator is None or content is None:
        await message.answer(
            _("Please send text, a photo, a video, a document or a voice message.")
        )
        return
    step = await state.get_state()
    data = await state.get_data()
    await state.clear()
    if not data.get("lesson_id") and "course_id" not in data:
        # A state without its data (Redis keeps them apart): nothing to add the lesson to.
        await message.answer(_("Cancelled."))
        return
    try:
        if data.get("lesson_id"):
            lesson = await authoring.replace_content(
                session, creator, data["lesson_id"], content, clock.now()
            )
            await message.answer(_("Lesson updated.") if lesson else not_found())
            return
        lesson = await authoring.add_lesson(
            session, creator, data["course_id"], content, clock.now()
        )
    except authoring.LessonTooLong as exc:
        # Still waiting for this lesson: the creator sends a shorter one.
        await state.set_state(step)
        await state.set_data(data)
        await message.answer(too_long_text(exc))
        return
    if lesson is None:
        await message.answer(not_found())
        return
    await message.answer(
        _(
            "Lesson #{id} added as number {position}, released {rule}. "
            "/release {id} changes that; /addlesson {course} adds another."
        ).format(
            id=lesson.id,
            position=lesson.position,
            rule=rule_text(lesson.release_rule, lesson.release_days, None),
            course=data["course_id"],
        )
    )


def too_long_text(exc: authoring.LessonTooLong) -> str:
    what = _("text") if exc.limit == TEXT_LIMIT else _("caption")
    return _(
        "Telegram would refuse this lesson: with the heading the bot adds, its {what} is "
        "{length} characters and the limit is {limit} (an emoji counts as 2). Keep it "
        "under {room} characters and send it again, or /cancel."
    ).format(what=what, length=exc.length, limit=exc.limit, room=exc.room)


def rule_text(rule: str, days: int, at: Any) -> str:
    if rule == ReleaseRule.AT_DATE and at is not None:
        return _("on {date} (learner's local time)").format(date=at.strftime("%Y-%m-%d %H:%M"))
    if rule == ReleaseRule.AFTER_PREVIOUS:
        return _("when the previous lesson is done")
    if days == 0:
        return _("at enrollment")
    return ngettext("{days} day after enrollment", "{days} days after enrollment", days).format(
        days=days
    )


@router.message(Command("lessons"))
async def cmd_lessons(
    message: Message, command: CommandObject, session: AsyncSession, user: User, settings: Settings
) -> None:
    course = await own_course_arg(
        message, command, session, user, settings, _("Usage: /lessons <i>course id</i>")
    )
    if course is None:
        return
    lessons = await authoring.lessons_of(session, course.id)
    if not lessons:
        await message.answer(_("No lessons yet. /addlesson {id} adds one.").format(id=course.id))
        return
    lines = [f"<b>{escape(course.title)}</b>"]
    for number, lesson in enumerate(lessons, start=1):
        lines.append(
            f"{number}. [#{lesson.id}] {escape(lesson.title)} — "
            + rule_text(lesson.release_rule, lesson.release_days, lesson.release_at)
        )
    await message.answer(clip("\n".join(lines)))


@router.message(Command("release"))
async def cmd_release(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    parts = (command.args or "").split(maxsplit=1)
    lesson_id = parsing.record_id(parts[0]) if parts else None
    release = authoring.parse_release(parts[1]) if len(parts) == 2 else None
    if lesson_id is None or release is None:
        await message.answer(
            _(
                "Usage: /release <i>lesson id</i> days <i>N</i> | at <i>YYYY-MM-DD HH:MM</i> "
                "| after\nDays: 0 to {days}. Dates: {first} to {last}."
            ).format(days=parsing.MAX_DAYS, first=parsing.MIN_YEAR, last=parsing.MAX_YEAR)
        )
        return
    result = await authoring.set_release(session, creator, lesson_id, release, clock.now())
    if result is None:
        await message.answer(not_found())
        return
    lesson, count = result
    await message.answer(
        ngettext(
            "Lesson #{id} is now released {rule}. Re-planned for {count} enrolled learner.",
            "Lesson #{id} is now released {rule}. Re-planned for {count} enrolled learners.",
            count,
        ).format(
            id=lesson.id,
            rule=rule_text(lesson.release_rule, lesson.release_days, lesson.release_at),
            count=count,
        )
    )


@router.message(Command("movelesson"))
async def cmd_move_lesson(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    parts = (command.args or "").split()
    lesson_id = parsing.record_id(parts[0]) if parts else None
    if len(parts) != 2 or lesson_id is None or parts[1] not in ("up", "down"):
        await message.answer(_("Usage: /movelesson <i>lesson id</i> up|down"))
        return
    delta = -1 if parts[1] == "up" else 1
    course = await authoring.move_lesson(session, creator, lesson_id, delta, clock.now())
    await message.answer(
        _("Moved. /lessons {id} shows the order.").format(id=course.id) if course else not_found()
    )


@router.message(Command("dellesson"))
async def cmd_delete_lesson(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    args = _int_args(command, 1)
    if args is None:
        await message.answer(_("Usage: /dellesson <i>lesson id</i>"))
        return
    try:
        course = await authoring.delete_lesson(session, creator, args[0], clock.now())
    except authoring.LastLessonOfPublished:
        await message.answer(
            _(
                "This is the only lesson of a published course, so it stays: a course on "
                "sale must deliver something. Add another lesson first, or /unpublish the "
                "course."
            )
        )
        return
    await message.answer(_("Lesson deleted.") if course else not_found())


@router.message(Command("preview"))
async def cmd_preview(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    parts = (command.args or "").split()
    course_id = parsing.record_id(parts[0]) if parts else None
    day = parsing.days(parts[1], low=0) if len(parts) > 1 else None
    if course_id is None or day is None:
        await message.answer(
            _("Usage: /preview <i>course id</i> <i>day</i> (day 0 to {days})").format(
                days=parsing.MAX_DAYS
            )
        )
        return
    args = [course_id, day]
    tz = user.timezone or settings.timezone
    items = await authoring.preview(session, creator, args[0], args[1], tz, clock.now())
    if items is None:
        await message.answer(not_found())
        return
    text, markup = preview_listing(items, args[0], args[1])
    await message.answer(text, reply_markup=markup)


def preview_listing(
    items: list[authoring.PreviewItem], course_id: int, day: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    have = [i.number for i in items if i.available]
    lines = [
        ngettext(
            "A learner who enrolls today has {n} of {total} lesson on day {day}:",
            "A learner who enrolls today has {n} of {total} lessons on day {day}:",
            len(items),
        ).format(n=len(have), total=len(items), day=day)
    ]
    for item in items:
        mark = "✅" if item.available else "⏳"
        when = _("day {day}").format(day=item.day)
        lines.append(f"{mark} {item.number}. {escape(item.title)} ({when})")
    if have:
        lines.append(_("Tap a number to get that lesson exactly as the learner does."))
    return clip("\n".join(lines)), preview_keyboard(course_id, day, have)


@router.callback_query(PreviewCB.filter())
async def on_preview(
    callback: CallbackQuery,
    callback_data: PreviewCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
    bot: Bot,
) -> None:
    """A lesson of the preview, sent as the learner gets it; nothing is recorded."""
    creator = await _creator(session, user, settings)
    course = await authoring.own_course(session, creator, callback_data.course) if creator else None
    if creator is None or course is None:
        await callback.answer(not_found(), show_alert=True)
        return
    tz = user.timezone or settings.timezone
    day = callback_data.day
    if callback_data.n == 0:
        items = await authoring.preview(session, creator, course.id, day, tz, clock.now())
        text, markup = preview_listing(items or [], course.id, day)
        await callback.answer()
        await bot.send_message(user.id, text, reply_markup=markup)
        return
    lesson = await authoring.preview_lesson(
        session, creator, course.id, day, callback_data.n, tz, clock.now()
    )
    if lesson is None:
        await callback.answer(
            _("A learner does not have this lesson on day {day}.").format(day=day),
            show_alert=True,
        )
        return
    outgoing = preview_lesson_message(
        lesson.view, course.id, day, lesson.previous, lesson.following
    )
    try:
        # The scheduler's own sender: the same Telegram method and fields as for a learner.
        await TelegramSender(bot).send(user.id, outgoing)
    except Rejected as exc:
        await callback.answer(
            _("Telegram refused this lesson: {error}").format(error=str(exc)[:150]),
            show_alert=True,
        )
        return
    await callback.answer()


# --- broadcasts -------------------------------------------------------------------------


@router.message(Command("broadcast"))
async def cmd_broadcast(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
) -> None:
    """`/broadcast` (all of the creator's products), `/broadcast <course id>` or
    `/broadcast plan=<id>`: first the segment, then the message, then Send."""
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    usage = _("Usage: /broadcast [<i>course id</i> | plan=<i>id</i>]")
    words = (command.args or "").split()
    kind: str | None = None
    product_id = 0
    title = ""
    if len(words) > 1:
        await message.answer(usage)
        return
    if words:
        key, sep, value = words[0].partition("=")
        if sep and key.lower() == "plan":
            number = parsing.record_id(value)
            plan = await groups_service.owned_plan(session, creator, number) if number else None
            if plan is None:
                await message.answer(
                    _("No such plan among yours. /plans lists them.") if number else usage
                )
                return
            kind, product_id, title = ProductKind.PLAN, plan.id, plan.title
        elif not sep and (number := parsing.record_id(key)) is not None:
            course = await authoring.own_course(session, creator, number)
            if course is None:
                await message.answer(not_found())
                return
            kind, product_id, title = ProductKind.COURSE, course.id, course.title
        else:
            await message.answer(usage)
            return
    await state.set_state(BroadcastInput.segment)
    await state.set_data({"kind": kind, "pid": product_id})
    prompt = (
        _("Who should get it? «{title}»").format(title=escape(title))
        if kind
        else _("Who should get it? Your audience across all your courses and plans.")
    )
    await message.answer(prompt, reply_markup=segments_keyboard(kind, product_id))


async def _audience(
    session: AsyncSession, creator: Creator, data: dict[str, Any]
) -> segments.Audience | None:
    """The segment the conversation chose, re-checked: still a segment of this kind,
    the product still the creator's."""
    try:
        segment = segments.Segment(str(data.get("seg")))
    except ValueError:
        return None
    kind, product_id = data.get("kind"), int(data.get("pid") or 0)
    if kind and segments.kind_of(segment) != kind:
        return None
    if product_id:
        own: object = (
            await groups_service.owned_plan(session, creator, product_id)
            if kind == ProductKind.PLAN
            else await authoring.own_course(session, creator, product_id)
        )
        if own is None:
            return None
    return await segments.audience(session, creator, segment, product_id or None)


def _size_text(size: segments.AudienceSize) -> str:
    text = ngettext("{n} recipient", "{n} recipients", size.reachable).format(n=size.reachable)
    if size.blocked:
        text += " " + ngettext(
            "(and {n} who blocked the bot, left out)",
            "(and {n} who blocked the bot, left out)",
            size.blocked,
        ).format(n=size.blocked)
    return text


@router.callback_query(SegmentCB.filter(), StateFilter(BroadcastInput.segment))
async def on_segment(
    callback: CallbackQuery,
    callback_data: SegmentCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    creator = await _creator(session, user, settings)
    data = await state.get_data()
    data["seg"] = callback_data.s
    audience = (
        await _audience(session, creator, data)
        if creator is not None and callback_data.id == int(data.get("pid") or 0)
        else None
    )
    if audience is None:
        await state.clear()
        await callback.answer(_("Cancelled."), show_alert=True)
        return
    size = await segments.size(session, audience, clock.now())
    await state.set_state(BroadcastInput.text)
    await state.set_data(data)
    await show(
        callback,
        _(
            "{segment}: {size}.\nNow send the message: text, a photo, a video or a "
            "document (with a caption). /cancel to stop."
        ).format(segment=segment_label(audience.segment), size=_size_text(size)),
    )


def _content(message: Message) -> Outgoing | None:
    """What the creator sent, as the scheduler's message: text, or a file_id + caption.
    Read as a lesson's content is (content_of); a broadcast takes no voice message."""
    content = content_of(message)
    if content is None or content.kind == "voice":
        return None
    if content.kind == "text":
        return Outgoing(text=content.text)
    return Outgoing(kind=content.kind, file_id=content.file_id, caption=content.caption)


@router.message(StateFilter(BroadcastInput.text))
async def on_broadcast_text(
    message: Message,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    creator = await _creator(session, user, settings)
    data = await state.get_data()
    if creator is None or (message.text or "").startswith("/") or "seg" not in data:
        await state.clear()
        await message.answer(_("Cancelled."))
        return
    content = _content(message)
    if content is None:
        await message.answer(_("Send text, a photo, a video or a document, or /cancel to stop."))
        return
    # The whole HTML: cut, it would break inside a tag and reach nobody.
    body = content.text if content.kind == "text" else content.caption
    limit = TEXT_LIMIT if content.kind == "text" else CAPTION_LIMIT
    length = visible_length(body or "")
    if length > limit:
        await message.answer(
            _(
                "Telegram would refuse this broadcast: it is {length} characters and the "
                "limit is {limit} (an emoji counts as 2). Nothing was sent."
            ).format(length=length, limit=limit)
        )
        return
    audience = await _audience(session, creator, data)
    if audience is None:
        await state.clear()
        await message.answer(_("Cancelled."))
        return
    size = await segments.size(session, audience, clock.now())
    data["msg"] = broadcast.dump_message(content)
    await state.set_state(BroadcastInput.confirm)
    await state.set_data(data)
    paid = broadcast.paid_estimate(
        size.reachable, settings.scheduler_rate, settings.paid_broadcast_rate
    )
    await message.answer(
        _("Ready to send to {size}. Estimated time: {eta}. Send it?").format(
            size=_size_text(size),
            eta=duration(broadcast.eta(size.reachable, settings.scheduler_rate)),
        )
        + "\n\n"
        + _(
            "⚡ Paid broadcast (fast): about {eta}, for about {stars} Stars from the bot's "
            "balance (0.1 Star for each message above Telegram's free 30 per second)."
        ).format(eta=duration(paid.seconds), stars=stars_text(paid.stars_tenths)),
        reply_markup=confirm_keyboard(),
    )


@router.message(StateFilter(BroadcastInput.confirm, BroadcastInput.segment))
async def on_broadcast_waiting(message: Message) -> None:
    await message.answer(_("Press a button above, or /cancel to stop."))


@router.callback_query(SendCB.filter())
async def on_send(
    callback: CallbackQuery,
    callback_data: SendCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    current = await state.get_state()
    data = await state.get_data()
    if callback_data.a not in ("send", "paid") or current != BroadcastInput.confirm.state:
        if current in (BroadcastInput.segment.state, BroadcastInput.confirm.state):
            await state.clear()
            await show(callback, _("Cancelled. Nothing was sent."))
        else:
            await callback.answer(_("This broadcast is over. /broadcast starts a new one."))
        return
    # Cleared first: a second press (or a second device) finds nothing to send.
    await state.clear()
    creator = await _creator(session, user, settings)
    audience = await _audience(session, creator, data) if creator is not None else None
    if audience is None or not data.get("msg"):
        await show(callback, _("Cancelled. Nothing was sent."))
        return
    now = clock.now()
    protect = False
    if audience.kind == ProductKind.COURSE and len(audience.product_ids) == 1:
        course = await session.get(Course, audience.product_ids[0])
        protect = course is not None and course.protect_content
    paid = callback_data.a == "paid"
    plan = await broadcast.queue_to(
        session,
        recipients=await segments.recipients(session, audience, now),
        message=broadcast.load_message(data["msg"], protect, paid),
        access_check=audience.access_check,
        creator_chat_id=callback.from_user.id,
        creator_user_id=user.id,
        locale=current_locale(),
        protect_content=protect,
        per_second=settings.paid_broadcast_rate if paid else settings.scheduler_rate,
        now=now,
        paid=paid,
    )
    await show(
        callback,
        ngettext(
            "📣 Broadcast queued for {total} learner. Estimated time: {eta}.",
            "📣 Broadcast queued for {total} learners. Estimated time: {eta}.",
            plan.total,
        ).format(total=plan.total, eta=duration(plan.eta_seconds)),
        stop_keyboard(plan.job_id) if plan.total else None,
    )
    if isinstance(callback.message, Message):
        await authoring.attach_status(session, plan.job_id, callback.message.message_id)


@router.callback_query(StopCB.filter())
async def on_stop(
    callback: CallbackQuery,
    callback_data: StopCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
    scheduler: Scheduler,
    after_commit: list[Callable[[], object]],
) -> None:
    """Stop a running broadcast: its creator only; anything else changes nothing."""
    result = await broadcast.stop(session, callback_data.id, user.id, clock.now())
    if result.outcome == broadcast.StopOutcome.NOT_YOURS:
        await callback.answer(_("Only the creator who started this broadcast can stop it."))
        return
    if result.outcome != broadcast.StopOutcome.STOPPED or result.progress is None:
        await callback.answer(_("This broadcast is over: nothing left to stop."))
        return
    p = result.progress
    text = I18nRenderer(i18n).broadcast_progress(
        current_locale(), p.sent, p.failed, p.total, 0, True, p.left, p.cancelled, True
    )
    # The scheduler writes the final counts (a message in flight may still land).
    after_commit.append(scheduler.wake)
    await show(callback, text, None, _("Stopped. Nothing more will be sent."))


def duration(seconds: float) -> str:
    from bot.keyboards.learning import duration as fmt

    return fmt(seconds, _)
