"""Quiz buttons: start (as polls or as buttons), retry, answer, and finish authoring."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.models import QuizMode, QuizQuestion

# In callback data the mode is one letter: every byte counts toward the 64.
MODE_LETTER = {QuizMode.POLL: "p", QuizMode.BUTTONS: "b"}
LETTER_MODE = {v: k for k, v in MODE_LETTER.items()}


class QuizStartCB(CallbackData, prefix="qs"):
    d: int  # Delivery.id of the quiz lesson
    m: str  # "p": Telegram quiz polls, "b": inline buttons


class QuizAnswerCB(CallbackData, prefix="qa"):
    a: int  # QuizAttempt.id
    q: int  # QuizQuestion.id
    o: int  # the chosen option, 0-based


class QuizDraftCB(CallbackData, prefix="qd"):
    action: str  # "finish"


def start_buttons(delivery_id: int, retry: bool = False) -> list[list[InlineKeyboardButton]]:
    polls = _("🔁 Retry") if retry else _("▶️ Start the quiz")
    return [
        [
            InlineKeyboardButton(
                text=polls, callback_data=QuizStartCB(d=delivery_id, m="p").pack()
            ),
            InlineKeyboardButton(
                text=_("🔘 With buttons"), callback_data=QuizStartCB(d=delivery_id, m="b").pack()
            ),
        ]
    ]


def retry_keyboard(delivery_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=start_buttons(delivery_id, retry=True))


def answer_keyboard(attempt_id: int, question: QuizQuestion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=option[:60],
                    callback_data=QuizAnswerCB(a=attempt_id, q=question.id, o=i).pack(),
                )
            ]
            for i, option in enumerate(question.options)
        ]
    )


def finish_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("✅ Finish the quiz"),
                    callback_data=QuizDraftCB(action="finish").pack(),
                )
            ]
        ]
    )
