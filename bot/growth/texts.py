"""How growth messages look: a port the keyboards layer fills with the learner's language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.scheduler.sender import Outgoing


@dataclass(frozen=True, slots=True)
class Discount:
    code: str
    kind: str  # CouponKind: percent | fixed
    value: int
    currency: str | None


class GrowthTexts(Protocol):
    def reminder(
        self, locale: str, kind: str, product_id: int, title: str, discount: Discount | None
    ) -> Outgoing: ...

    def winback(
        self, locale: str, plan_id: int, title: str, discount: Discount, days: int
    ) -> Outgoing: ...

    def payable(self, locale: str, amount: int, currency: str, creator: str) -> Outgoing: ...


class PlainTexts:
    """English only, for tests that build a scheduler without the app."""

    def reminder(
        self, locale: str, kind: str, product_id: int, title: str, discount: Discount | None
    ) -> Outgoing:
        code = f" Code {discount.code}." if discount else ""
        return Outgoing(text=f"You left {title} at checkout.{code}")

    def winback(
        self, locale: str, plan_id: int, title: str, discount: Discount, days: int
    ) -> Outgoing:
        return Outgoing(text=f"Come back to {title}: {discount.value}% off with {discount.code}")

    def payable(self, locale: str, amount: int, currency: str, creator: str) -> Outgoing:
        return Outgoing(text=f"Your commission of {amount} {currency} from {creator} is payable.")
