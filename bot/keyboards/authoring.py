"""Buttons of the creator's flows."""

from __future__ import annotations

from dataclasses import replace

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.models import ContentType
from bot.scheduler.render import lesson_heading, lesson_message
from bot.scheduler.sender import Button, Outgoing
from bot.services.drip import LessonView


class NewCourseCB(CallbackData, prefix="nc"):
    # lang:<code> while asking the language; publish / draft at the end.
    action: str
    value: str = ""


def language_choice() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="English", callback_data=NewCourseCB(action="lang", value="en").pack()
                ),
                InlineKeyboardButton(
                    text="中文", callback_data=NewCourseCB(action="lang", value="zh").pack()
                ),
            ]
        ]
    )


def publish_choice() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🚀 Publish"), callback_data=NewCourseCB(action="publish").pack()
                ),
                InlineKeyboardButton(
                    text=_("📝 Keep as draft"), callback_data=NewCourseCB(action="draft").pack()
                ),
            ]
        ]
    )


class PreviewCB(CallbackData, prefix="pv"):
    course: int
    day: int
    n: int  # lesson number (1-based); 0: the day's list


# Telegram allows at most 100 buttons on one message.
PREVIEW_BUTTONS = 100


def preview_keyboard(course_id: int, day: int, numbers: list[int]) -> InlineKeyboardMarkup | None:
    """A button per lesson the learner has on that day, five to a row."""
    buttons = [
        InlineKeyboardButton(
            text=f"📖 {n}", callback_data=PreviewCB(course=course_id, day=day, n=n).pack()
        )
        for n in numbers[:PREVIEW_BUTTONS]
    ]
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 5] for i in range(0, len(buttons), 5)]
    )


def preview_lesson_message(
    view: LessonView, course_id: int, day: int, previous: int | None, following: int | None
) -> Outgoing:
    """The lesson exactly as the learner gets it (the same heading, content and
    protect_content), with preview navigation where the learner has Done and Next."""
    label = _("Lesson {number} of {total}").format(number=view.number, total=view.total)
    if view.kind == ContentType.QUIZ:
        view = replace(view, text=_("📝 A quiz: answer the questions to finish this lesson."))
    buttons: list[Button] = []
    if previous is not None:
        buttons.append(
            Button(_("◀ Previous"), PreviewCB(course=course_id, day=day, n=previous).pack())
        )
    buttons.append(
        Button(_("☰ Day {day}").format(day=day), PreviewCB(course=course_id, day=day, n=0).pack())
    )
    if following is not None:
        buttons.append(
            Button(_("Next ▶"), PreviewCB(course=course_id, day=day, n=following).pack())
        )
    return lesson_message(view, lesson_heading(view, label), tuple(buttons))
