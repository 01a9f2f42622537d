from __future__ import annotations

from bot.middlewares.throttling import ThrottlingMiddleware


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = Clock()
    mw = ThrottlingMiddleware(rate=0.5, burst=3, clock=clock)
    assert [mw.allow(1) for _ in range(4)] == [True, True, True, False]
    assert mw.allow(2)  # other users are not affected
    clock.now += 0.5
    assert mw.allow(1)
    assert not mw.allow(1)


def test_disabled() -> None:
    mw = ThrottlingMiddleware(rate=0, burst=1)
    assert all(mw.allow(1) for _ in range(100))


async def test_payment_updates_are_never_dropped() -> None:
    from datetime import UTC, datetime

    from aiogram.types import Chat, Message, PreCheckoutQuery, SuccessfulPayment, Update, User

    user = User(id=1, is_bot=False, first_name="Ann")
    chat = Chat(id=1, type="private")
    now = datetime.now(UTC)
    text = Update(update_id=1, message=Message(message_id=1, date=now, chat=chat, text="hi"))
    paid = Update(
        update_id=2,
        message=Message(
            message_id=2,
            date=now,
            chat=chat,
            successful_payment=SuccessfulPayment(
                currency="XTR",
                total_amount=5,
                invoice_payload="p",
                telegram_payment_charge_id="t",
                provider_payment_charge_id="",
            ),
        ),
    )
    checkout = Update(
        update_id=3,
        pre_checkout_query=PreCheckoutQuery(
            id="q", from_user=user, currency="XTR", total_amount=5, invoice_payload="p"
        ),
    )
    mw = ThrottlingMiddleware(rate=60, burst=1)
    seen: list[int] = []

    async def handler(event: Update, data: dict[str, object]) -> None:
        seen.append(event.update_id)

    for update in (text, text, paid, checkout, text):
        await mw(handler, update, {"event_from_user": user})  # type: ignore[arg-type]
    assert seen == [1, 2, 3]
