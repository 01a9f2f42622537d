"""/paysupport puts the learner in touch with the creator of each purchase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator, Order, OrderStatus, Plan, ProductKind, User
from sandbox.formatting import parse_html
from tests.support.updates import Harness, message_update, tg_user

ANN = tg_user(1001, "Ann")


async def shop(db: AsyncSession) -> None:
    """Ann bought a course from Cleo (who has a username) and a plan from Dan (who has
    none), and left an order with Cleo unpaid."""
    db.add_all(
        [
            User(id=501, first_name="Cleo", username="cleo_teaches", referral_code="cleo"),
            User(id=502, first_name="Dan", referral_code="dan"),
            User(id=ANN.id, first_name="Ann", referral_code="ann"),
        ]
    )
    await db.flush()
    cleo = Creator(user_id=501, display_name="Cleo's <Kitchen>")
    dan = Creator(user_id=502, display_name="Dan")
    db.add_all([cleo, dan])
    await db.flush()
    course = Course(creator_id=cleo.id, title="Knife skills for busy cooks", published=True)
    plan = Plan(creator_id=dan.id, title="Dan's club", published=True)
    db.add_all([course, plan])
    await db.flush()
    now = datetime.now(UTC)

    def order(ref: str, creator: Creator, kind: str, pid: int, status: str, ago: int) -> Order:
        return Order(
            public_ref=ref,
            user_id=ANN.id,
            creator_id=creator.id,
            product_kind=kind,
            product_id=pid,
            method="stars",
            currency="XTR",
            list_amount_minor=100,
            amount_minor=100,
            status=status,
            paid_at=None if status == OrderStatus.PENDING else now - timedelta(days=ago),
        )

    db.add_all(
        [
            order("ref-course", cleo, ProductKind.COURSE, course.id, OrderStatus.PAID, 3),
            order("ref-plan", dan, ProductKind.PLAN, plan.id, OrderStatus.REFUNDED, 1),
            order("ref-open", cleo, ProductKind.COURSE, course.id, OrderStatus.PENDING, 0),
        ]
    )
    await db.commit()


def urls(markup: object) -> list[tuple[str, str | None]]:
    assert isinstance(markup, InlineKeyboardMarkup)
    return [(b.text, b.url) for row in markup.inline_keyboard for b in row]


async def test_paysupport_lists_purchases_with_a_button_per_creator(
    harness: Harness, db: AsyncSession
) -> None:
    await shop(db)
    await harness.send("/paysupport", ANN)
    (sent,) = harness.session.of_type(SendMessage)
    text, _entities = parse_html(sent.text)  # valid: the creator's "<Kitchen>" is escaped
    assert "Refunds go back the way you paid" in text
    assert "«Dan's club» from Dan" in text and "order ref-plan (refunded)" in text
    assert "«Knife skills for busy cooks» from Cleo's <Kitchen>" in text
    assert "ref-open" not in text  # not paid: nothing to support
    assert text.index("ref-plan") < text.index("ref-course")  # newest first
    assert urls(sent.reply_markup) == [
        ("✉️ Write to Dan", "tg://user?id=502"),
        ("✉️ Write to Cleo's <Kitchen>", "https://t.me/cleo_teaches"),
    ]


async def test_a_refused_private_link_leaves_the_public_ones(
    harness: Harness, db: AsyncSession
) -> None:
    await shop(db)
    harness.session.add_result(
        TelegramBadRequest(SendMessage(chat_id=ANN.id, text="x"), "BUTTON_USER_PRIVACY_RESTRICTED")
    )
    await harness.send("/paysupport", ANN)
    first, second = harness.session.of_type(SendMessage)
    assert "tg://user?id=502" in str(first.reply_markup)
    assert urls(second.reply_markup) == [
        ("✉️ Write to Cleo's <Kitchen>", "https://t.me/cleo_teaches"),
    ]
    assert "Dan" in second.text  # still named, for the learner to find


async def test_no_purchases_or_a_group_chat_get_the_general_text(
    harness: Harness, db: AsyncSession
) -> None:
    await harness.send("/paysupport", tg_user(1003, "Bo"))
    assert "Refunds go back the way you paid" in harness.last_text()
    assert "recent purchases" not in harness.last_text()
    await shop(db)
    harness.session.clear()
    update = message_update("/paysupport", ANN)
    assert update.message is not None
    group = update.message.chat.model_copy(update={"id": -100123, "type": "supergroup"})
    await harness.feed(update.model_copy(update={"message": update.message.model_copy(
        update={"chat": group})}))  # fmt: skip
    assert "ref-course" not in harness.last_text()  # purchases are private
