"""Stars for bot.payments: refundStarPayment and getStarTransactions through aiogram.

bot.payments declares what it needs (gateways.StarsApi) and never imports aiogram; this
adapter is built by the handlers and app.py.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import TransactionPartnerUser

from bot.payments.gateways import AlreadyRefunded, ProviderError, StarTxn


class TelegramStars:
    """refundStarPayment and getStarTransactions for bot.payments (which has no aiogram)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        try:
            await self.bot.refund_star_payment(
                user_id=user_id, telegram_payment_charge_id=telegram_payment_charge_id
            )
        except TelegramBadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" in exc.message.upper():
                raise AlreadyRefunded(exc.message) from exc
            raise ProviderError(exc.message) from exc
        except TelegramAPIError as exc:
            raise ProviderError(exc.message) from exc

    async def star_transactions(self, offset: int, limit: int) -> list[StarTxn]:
        result = await self.bot.get_star_transactions(offset=offset, limit=limit)
        out: list[StarTxn] = []
        for txn in result.transactions:
            partner = txn.source if txn.source is not None else txn.receiver
            is_user = isinstance(partner, TransactionPartnerUser)
            affiliate = partner.affiliate if isinstance(partner, TransactionPartnerUser) else None
            out.append(
                StarTxn(
                    id=txn.id,
                    amount=txn.amount,
                    date=int(txn.date.timestamp()) if hasattr(txn.date, "timestamp") else 0,
                    direction="in" if txn.source is not None else "out",
                    user_id=partner.user.id if is_user else None,  # type: ignore[union-attr]
                    invoice_payload=partner.invoice_payload if is_user else None,  # type: ignore[union-attr]
                    affiliate_amount=affiliate.amount if affiliate is not None else 0,
                    affiliate_per_mille=(
                        affiliate.commission_per_mille if affiliate is not None else 0
                    ),
                    partner=_partner_type(partner),
                )
            )
        return out


def _partner_type(partner: object) -> str:
    kind = getattr(partner, "type", None)  # a str, or aiogram's TransactionPartnerType
    return str(getattr(kind, "value", kind) or "other")
