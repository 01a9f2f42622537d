"""Stars reconciliation: our payments against Telegram's getStarTransactions.

A gap means money and books disagree: a Stars payment Telegram has but we never
credited (a lost successful_payment), one we credited that Telegram does not know, an
amount that differs, or a refund only one side has seen. And, over every payment of any
method, our books against themselves: money received must have its sale in the ledger,
and money kept (not refunded) must have bought its entitlement.

Telegram's own Stars affiliate programme (a learner who came to the bot through a
Telegram affiliate link) takes its commission out of the payment before it reaches the
bot: the transaction says how much (`affiliate`), and the bot's amount is the rest. Such
a payment agrees with ours when its amount plus the affiliate's equals what the learner
paid; the deductions are listed apart, as are commissions our bot earned as someone
else's affiliate (incoming, from an `affiliate_program`). Our ledger keeps the learner's
price as gross: the Telegram affiliate's cut is a cost the report shows, not a booking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    Entitlement,
    LedgerEntry,
    LedgerKind,
    Order,
    Payment,
    PaymentMethod,
    ProductKind,
    PromoEntry,
)
from bot.payments.gateways import StarsApi, StarTxn

PAGE = 100
MAX_PAGES = 10_000


@dataclass
class ReconcileReport:
    remote_payments: int = 0
    local_payments: int = 0
    missing_locally: list[StarTxn] = field(default_factory=list)
    missing_remotely: list[str] = field(default_factory=list)
    amount_mismatch: list[tuple[str, int, int]] = field(default_factory=list)
    refunded_only_remotely: list[str] = field(default_factory=list)
    refunded_only_locally: list[str] = field(default_factory=list)
    # Payments (any method) whose sale is not fully in our books, one line each.
    unbooked: list[str] = field(default_factory=list)
    # Telegram's Stars affiliate programme: (charge id, Stars the affiliate took, per mille)
    # of each payment it cut; and Stars our bot received as another bot's affiliate.
    telegram_affiliate: list[tuple[str, int, int]] = field(default_factory=list)
    affiliate_income: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.unbooked
            or self.missing_locally
            or self.missing_remotely
            or self.amount_mismatch
            or self.refunded_only_remotely
            or self.refunded_only_locally
        )

    def lines(self) -> list[str]:
        out = [
            f"Telegram Stars payments: {self.remote_payments}; recorded here: {self.local_payments}"
        ]
        for txn in self.missing_locally:
            out.append(
                f"MISSING HERE: {txn.id} {txn.amount} XTR from user {txn.user_id} "
                f"(payload {txn.invoice_payload!r})"
            )
        out += [f"MISSING AT TELEGRAM: {charge}" for charge in self.missing_remotely]
        out += [
            f"AMOUNT DIFFERS: {charge} Telegram {remote} XTR, here {local} XTR"
            for charge, remote, local in self.amount_mismatch
        ]
        out += [f"REFUNDED AT TELEGRAM ONLY: {c}" for c in self.refunded_only_remotely]
        out += [f"REFUNDED HERE ONLY: {c}" for c in self.refunded_only_locally]
        if self.telegram_affiliate:
            kept = sum(amount for _, amount, _ in self.telegram_affiliate)
            out.append(
                f"Telegram affiliate programme: {len(self.telegram_affiliate)} payment(s) "
                f"carried a Telegram affiliate's commission, {kept} XTR in all (deducted by "
                "Telegram, not a gap)"
            )
            out += [
                f"  affiliate cut: {charge} {amount} XTR ({per_mille}‰)"
                for charge, amount, per_mille in self.telegram_affiliate
            ]
        if self.affiliate_income:
            earned = sum(amount for _, amount in self.affiliate_income)
            out.append(
                f"Commissions received as a Telegram affiliate: {len(self.affiliate_income)}, "
                f"{earned} XTR"
            )
        out += self.unbooked
        out.append("OK: no gaps" if self.ok else "GAPS FOUND")
        return out


async def fetch_all(stars: StarsApi) -> list[StarTxn]:
    txns: list[StarTxn] = []
    for page in range(MAX_PAGES):
        batch = await stars.star_transactions(page * PAGE, PAGE)
        txns.extend(batch)
        if len(batch) < PAGE:
            break
    return txns


def compare(txns: list[StarTxn], local: list[Payment]) -> ReconcileReport:
    incoming = {t.id: t for t in txns if t.direction == "in" and t.user_id is not None}
    refunded_remote = _refunded(incoming, [t for t in txns if t.direction == "out"])
    mine = {p.telegram_payment_charge_id: p for p in local if p.telegram_payment_charge_id}
    report = ReconcileReport(remote_payments=len(incoming), local_payments=len(mine))
    report.affiliate_income = [
        (t.id, t.amount) for t in txns if t.direction == "in" and t.partner == "affiliate_program"
    ]
    for charge, txn in incoming.items():
        payment = mine.get(charge)
        if payment is None:
            report.missing_locally.append(txn)
            continue
        if txn.affiliate_amount:
            report.telegram_affiliate.append(
                (charge, txn.affiliate_amount, txn.affiliate_per_mille)
            )
        if payment.amount_minor not in _paid_amounts(txn):
            report.amount_mismatch.append((charge, txn.amount, payment.amount_minor))
        if charge in refunded_remote and payment.refunded_at is None:
            report.refunded_only_remotely.append(charge)
        if charge not in refunded_remote and payment.refunded_at is not None:
            report.refunded_only_locally.append(charge)
    report.missing_remotely = sorted(c for c in mine if c not in incoming)
    return report


def _paid_amounts(txn: StarTxn) -> tuple[int, ...]:
    """What the learner paid for this transaction to agree: the bot's amount, plus the
    Telegram affiliate's cut when there is one (the amount is the bot's share, or, should
    Telegram ever report the whole payment, the whole payment)."""
    if txn.affiliate_amount > 0:
        return (txn.amount + txn.affiliate_amount, txn.amount)
    return (txn.amount,)


def _refunded(incoming: dict[str, StarTxn], outgoing: list[StarTxn]) -> set[str]:
    """Charge ids of refunded payments. Telegram gives a refund the id of the payment it
    refunds; a refund with another id is matched by user, payload and amount instead."""
    refunded = {t.id for t in outgoing if t.id in incoming}
    for txn in outgoing:
        if txn.id in incoming or txn.user_id is None or not txn.invoice_payload:
            continue
        for charge, paid in incoming.items():
            if charge not in refunded and (paid.user_id, paid.invoice_payload, paid.amount) == (
                txn.user_id,
                txn.invoice_payload,
                txn.amount,
            ):
                refunded.add(charge)
                break
    return refunded


async def unbooked_payments(session: AsyncSession) -> list[str]:
    """Every payment without its ledger sale, or kept without the entitlement it bought."""
    # A promotion top-up is booked in the promotion ledger and grants no access.
    is_topup = Order.product_kind == ProductKind.PROMOTION
    has_sale = or_(
        exists().where(LedgerEntry.payment_id == Payment.id, LedgerEntry.kind == LedgerKind.SALE),
        exists().where(PromoEntry.payment_id == Payment.id),
    )
    has_access = or_(
        is_topup,
        exists().where(
            Entitlement.user_id == Order.user_id,
            Entitlement.product_kind == Order.product_kind,
            Entitlement.product_id == Order.product_id,
        ),
    )
    rows = await session.execute(
        select(Payment, Order.public_ref, has_sale, has_access)
        .join(Order, Order.id == Payment.order_id)
        .order_by(Payment.id)
    )
    out: list[str] = []
    for payment, ref, sale, access in rows.tuples():
        what = (
            f"payment {payment.id} ({payment.method} "
            f"{payment.telegram_payment_charge_id or payment.provider_payment_charge_id}, "
            f"{payment.amount_minor} {payment.currency}, order {ref}, user {payment.user_id})"
        )
        if not sale:
            out.append(f"NO LEDGER ROW: {what}")
        if payment.refunded_at is not None:
            continue
        if not (payment.raw or {}).get("credited"):
            out.append(f"NOT CREDITED, NOT REFUNDED: {what}")
        elif not access:
            out.append(f"NO ENTITLEMENT: {what}")
    return out


async def reconcile_stars(session: AsyncSession, stars: StarsApi) -> ReconcileReport:
    txns = await fetch_all(stars)
    local = list(
        await session.scalars(select(Payment).where(Payment.method == PaymentMethod.STARS))
    )
    report = compare(txns, local)
    report.unbooked = await unbooked_payments(session)
    return report
