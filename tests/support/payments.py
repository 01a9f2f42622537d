"""Shared builders for the payments tests (no tests here): a recording session that
also answers invoice methods, a seeded course, and payment updates as Telegram sends them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from aiogram.methods import (
    CreateInvoiceLink,
    GetStarTransactions,
    SendInvoice,
    TelegramMethod,
)
from aiogram.types import (
    Chat,
    Invoice,
    Message,
    PreCheckoutQuery,
    StarTransaction,
    StarTransactions,
    SuccessfulPayment,
    Update,
    User,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.models import Course, Creator, PaymentMethod
from bot.payments.checkout import PaymentResult, record_payment
from bot.services.users import TelegramProfile, upsert_user
from tests.support.recording import RecordingSession
from tests.support.settings import bot_settings

_ids = itertools.count(900_000)

CREATOR_USER = 501
OTHER_CREATOR_USER = 502
ADMIN = 7


class PayRecordingSession(RecordingSession):
    """RecordingSession that also makes plausible answers for the payment methods."""

    def __init__(self) -> None:
        super().__init__()
        self.star_transactions: list[StarTransaction] = []

    def _default(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, SendInvoice):
            return Message(
                message_id=next(_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                from_user=self.me,
                invoice=Invoice(
                    title=method.title,
                    description=method.description,
                    start_parameter="",
                    currency=method.currency,
                    total_amount=sum(p.amount for p in method.prices),
                ),
            )
        if isinstance(method, CreateInvoiceLink):
            return f"https://t.me/$invoice{next(_ids)}"
        if isinstance(method, GetStarTransactions):
            offset = method.offset or 0
            limit = method.limit or 100
            return StarTransactions(transactions=self.star_transactions[offset : offset + limit])
        return super()._default(method)


def pay_settings(database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_ids": str(ADMIN),
        "payments_provider_token": "284685063:TEST:stripe-token",
        "platform_fee_percent": "10",
    }
    values.update(extra)
    return bot_settings(database_url, **values)


async def make_creator(db: AsyncSession, user_id: int = CREATOR_USER, name: str = "Maya") -> int:
    await upsert_user(db, TelegramProfile(id=user_id, first_name=name))
    creator = Creator(user_id=user_id, display_name=name)
    db.add(creator)
    await db.flush()
    return creator.id


async def make_course(
    db: AsyncSession,
    *,
    creator_user: int = CREATOR_USER,
    title: str = "Python from zero",
    price_minor: int = 1999,
    currency: str = "USD",
    stars: int = 500,
    accepts_stars: bool = True,
    accepts_card: bool = True,
) -> tuple[int, int]:
    """(creator id, course id), committed so the bot's own session sees them."""
    from sqlalchemy import select

    creator_id = await db.scalar(select(Creator.id).where(Creator.user_id == creator_user))
    if creator_id is None:
        creator_id = await make_creator(db, creator_user)
    course = Course(
        creator_id=creator_id,
        title=title,
        description="Learn Python by building small things.",
        price_minor=price_minor,
        currency=currency,
        stars_price=stars,
        accepts_stars=accepts_stars,
        accepts_card=accepts_card,
        published=True,
    )
    db.add(course)
    await db.commit()
    return creator_id, course.id


async def stars_subscription_charge(
    session: AsyncSession,
    settings: Settings,
    payload: str,
    payer_id: int,
    charge: str,
    at: datetime,
    expires: datetime,
    first: bool,
) -> PaymentResult:
    """A 100-Star subscription charge booked as Telegram reports it (is_recurring, the
    first one is_first_recurring, paid up to expires); not committed."""
    raw: dict[str, Any] = {
        "is_recurring": True,
        "subscription_expiration_date": int(expires.timestamp()),
    }
    if first:
        raw["is_first_recurring"] = True
    return await record_payment(
        session,
        payload=payload,
        payer_id=payer_id,
        method=PaymentMethod.STARS,
        currency="XTR",
        amount=100,
        settings=settings,
        telegram_charge_id=charge,
        raw=raw,
        now=at,
    )


def tg(user_id: int, first_name: str = "Ann", language_code: str = "en") -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, language_code=language_code)


def pre_checkout_update(user: User, payload: str, currency: str, amount: int) -> Update:
    query = PreCheckoutQuery(
        id=str(next(_ids)),
        from_user=user,
        currency=currency,
        total_amount=amount,
        invoice_payload=payload,
    )
    return Update(update_id=next(_ids), pre_checkout_query=query)


def successful_payment_update(
    user: User,
    payload: str,
    currency: str,
    amount: int,
    charge_id: str,
    provider_charge_id: str = "",
) -> Update:
    message = Message(
        message_id=next(_ids),
        date=datetime.now(UTC),
        chat=Chat(id=user.id, type="private", first_name=user.first_name),
        from_user=user,
        successful_payment=SuccessfulPayment(
            currency=currency,
            total_amount=amount,
            invoice_payload=payload,
            telegram_payment_charge_id=charge_id,
            provider_payment_charge_id=provider_charge_id,
        ),
    )
    return Update(update_id=next(_ids), message=message)
