"""What the payment services need from the outside world, as small protocols.

Services never import aiogram: the Telegram side (refundStarPayment, getStarTransactions)
is adapted in the handlers layer, the Stripe side lives in bot.payments.stripe_api.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ProviderError(Exception):
    """The payment provider refused or failed; `detail` is safe to show to staff."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AlreadyRefunded(ProviderError):
    """The provider says this charge was refunded before (CHARGE_ALREADY_REFUNDED)."""


class NotConfigured(ProviderError):
    """The provider needed for this payment is not configured here."""


class StarsApi(Protocol):
    async def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None: ...

    async def star_transactions(self, offset: int, limit: int) -> list[StarTxn]: ...


class CardApi(Protocol):
    async def refund(self, charge_id: str, idempotency_key: str | None = None) -> str:
        """Refund a whole charge (ch_...) or payment intent (pi_...); returns the refund id."""
        ...


@dataclass(frozen=True, slots=True)
class StarTxn:
    """One entry of getStarTransactions, reduced to what reconciliation needs."""

    id: str
    amount: int
    date: int
    # "in": a user paid the bot; "out": the bot paid a user back (a refund) or withdrew.
    direction: str
    user_id: int | None
    invoice_payload: str | None
    # Telegram's own Stars affiliate programme: the Stars an affiliate took from this
    # payment (negative on its refund), per mille of the payment; 0 when none.
    affiliate_amount: int = 0
    affiliate_per_mille: int = 0
    # "user" (a payment or its refund), "affiliate_program" (our bot's own commission as
    # someone else's affiliate), or another TransactionPartner type.
    partner: str = "user"


@dataclass(frozen=True, slots=True)
class Gateways:
    stars: StarsApi | None = None
    card: CardApi | None = None
