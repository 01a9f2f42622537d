"""Payments and Stars: invoices and invoice links, the payment flow (pre_checkout_query with
its deadline, successful_payment), Stars balances, refunds, transactions and subscriptions."""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.api.messages import MessagesApi
from sandbox.core import QUERY_INVALID, SUBSCRIPTION_PERIOD, bad
from sandbox.state import Invoice, Payment, Subscription, UserState, new_id


class PaymentsApi(MessagesApi):
    def reset(self) -> None:
        super().reset()
        self.invoices: dict[str, Invoice] = {}  # by link slug
        self.payments: dict[str, Payment] = {}
        self.subscriptions: dict[str, Subscription] = {}  # by first charge id
        self.star_transactions: list[dict[str, Any]] = []
        # Telegram's own Stars affiliate programme: a user who came through an affiliate's
        # link, {user id: (affiliate user id, commission per mille)}. Their Stars payments
        # carry `affiliate` (AffiliateInfo) and the bot receives the rest.
        self.star_affiliates: dict[int, tuple[int, int]] = {}
        self.pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}

    async def shutdown(self) -> None:
        await super().shutdown()
        for fut in self.pre_checkouts.values():
            if not fut.done():
                fut.cancel()

    def check_invoice(self, p: dict[str, Any]) -> Invoice:
        payload = p["payload"]
        if not 1 <= len(payload.encode()) <= 128:
            raise bad("INVOICE_PAYLOAD_INVALID")
        if not 1 <= len(p["title"]) <= 32:
            raise bad("INVOICE_TITLE_INVALID" if p["title"] else "title is empty")
        if not 1 <= len(p["description"]) <= 255:
            raise bad("INVOICE_DESCRIPTION_INVALID")
        prices = p["prices"]
        if not prices:
            raise bad("prices must be non-empty")
        currency = p["currency"].upper()
        if currency == "XTR":
            if p.get("provider_token"):
                raise bad("PROVIDER_TOKEN_INVALID")  # Stars take an empty provider token
            if len(prices) != 1:
                raise bad("STARS_INVOICE_INVALID")
        elif not p.get("provider_token"):
            raise bad("PAYMENT_PROVIDER_INVALID")
        if p.get("subscription_period") is not None:
            if p["subscription_period"] != SUBSCRIPTION_PERIOD:
                raise bad("SUBSCRIPTION_PERIOD_INVALID")
            if currency != "XTR":
                raise bad("SUBSCRIPTION_EXPORT_MISSING")  # subscriptions are Stars-only
        total = sum(int(x["amount"]) for x in prices)
        if total <= 0:
            raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        return Invoice(
            title=p["title"],
            description=p["description"],
            payload=payload,
            currency=currency,
            prices=prices,
            provider_token=p.get("provider_token") or "",
            subscription_period=p.get("subscription_period"),
            start_parameter=p.get("start_parameter") or "",
        )

    async def api_sendInvoice(self, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        inv = self.check_invoice(p)
        body: dict[str, Any] = {
            "invoice": {
                "title": inv.title,
                "description": inv.description,
                "start_parameter": inv.start_parameter,
                "currency": inv.currency,
                "total_amount": inv.total_amount,
            }
        }
        if not p.get("reply_markup"):
            label = f"Pay ⭐️{inv.total_amount}" if inv.currency == "XTR" else (
                f"Pay {inv.total_amount / 100:.2f} {inv.currency}")  # fmt: skip
            body["reply_markup"] = {"inline_keyboard": [[{"text": label, "pay": True}]]}
        else:
            rows = p["reply_markup"].get("inline_keyboard") or [[]]
            if not rows[0] or not rows[0][0].get("pay"):
                raise bad("REPLY_MARKUP_BUY_EMPTY")
        msg = self.bot_sends(p, body, chat, meta={"invoice": inv})
        inv.chat_id, inv.message_id = chat.id, msg["message_id"]
        return msg

    async def api_createInvoiceLink(self, p: dict[str, Any]) -> Any:
        inv = self.check_invoice(p)
        slug = new_id("", 10)
        inv.link = f"https://t.me/$${slug}".replace("$$", "$")
        self.invoices[slug] = inv
        return inv.link

    def invoice_by_link(self, link: str) -> Invoice | None:
        slug = link.rsplit("$", 1)[-1]
        return self.invoices.get(slug)

    # --- the payment flow -----------------------------------------------------------------------

    async def api_answerPreCheckoutQuery(self, p: dict[str, Any]) -> Any:
        fut = self.pre_checkouts.get(p["pre_checkout_query_id"])
        if fut is None or fut.done():
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        if not p["ok"] and not p.get("error_message"):
            raise bad("error_message is required when ok is False")
        fut.set_result((bool(p["ok"]), p.get("error_message")))
        return True

    async def pay(
        self, user: UserState, inv: Invoice, *, fail: str | None = None
    ) -> dict[str, Any]:
        """The user presses Pay: pre_checkout_query → the bot's answer → successful_payment."""
        self.private_chat(user)
        user.started = True
        if fail:
            self.bump()
            return {"status": "failed", "reason": fail}
        total = inv.total_amount
        if inv.currency == "XTR" and user.stars < total:
            return {"status": "failed", "reason": "insufficient_stars"}
        if inv.subscription_period:
            active = [
                s for s in self.subscriptions.values()
                if s.user_id == user.id and s.invoice is inv and s.expires_at > self.now()
            ]  # fmt: skip
            if active:
                return {"status": "failed", "reason": "already_subscribed"}
        query_id = new_id("", 12)
        fut: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        self.pre_checkouts[query_id] = fut
        self.push_update(
            "pre_checkout_query",
            {
                "id": query_id,
                "from": user.to_tg(),
                "currency": inv.currency,
                "total_amount": total,
                "invoice_payload": inv.payload,
            },
        )
        try:
            ok, error = await asyncio.wait_for(
                asyncio.shield(fut), timeout=self.config.pre_checkout_timeout
            )
        except TimeoutError:
            fut.cancel()
            self.bump()
            return {"status": "failed", "reason": "timeout", "pre_checkout_query_id": query_id}
        finally:
            self.pre_checkouts.pop(query_id, None)
        if not ok:
            self.bump()
            return {"status": "failed", "reason": "rejected", "error_message": error}
        payment = self.charge(user, inv, first_recurring=bool(inv.subscription_period))
        return {
            "status": "paid",
            "telegram_payment_charge_id": payment.telegram_payment_charge_id,
            "provider_payment_charge_id": payment.provider_payment_charge_id,
            "total_amount": total,
            "currency": inv.currency,
        }

    def charge(
        self,
        user: UserState,
        inv: Invoice,
        *,
        first_recurring: bool = False,
        renewal_of: Subscription | None = None,
    ) -> Payment:
        total = inv.total_amount
        stars = inv.currency == "XTR"
        charge_id = new_id("stxT" if stars else "tgCH", 24)
        payment = Payment(
            user_id=user.id,
            currency=inv.currency,
            total_amount=total,
            payload=inv.payload,
            telegram_payment_charge_id=charge_id,
            provider_payment_charge_id=new_id("stars_" if stars else "ch_", 16),
            date=self.now(),
        )
        body: dict[str, Any] = {
            "currency": inv.currency,
            "total_amount": total,
            "invoice_payload": inv.payload,
            "telegram_payment_charge_id": payment.telegram_payment_charge_id,
            "provider_payment_charge_id": payment.provider_payment_charge_id,
        }
        if inv.subscription_period:
            if renewal_of is None:
                expires = self.now() + inv.subscription_period
                self.subscriptions[charge_id] = Subscription(
                    user.id, inv, charge_id, charge_id, expires
                )
            else:
                expires = max(self.now(), renewal_of.expires_at) + inv.subscription_period
                renewal_of.expires_at = expires
                renewal_of.last_charge_id = charge_id
            payment.subscription_expiration_date = expires
            payment.is_recurring = True
            payment.is_first_recurring = first_recurring
            body["subscription_expiration_date"] = expires
            body["is_recurring"] = True
            if first_recurring:
                body["is_first_recurring"] = True
        self.payments[charge_id] = payment
        if stars:
            user.stars -= total
            source: dict[str, Any] = {
                "type": "user",
                "transaction_type": "invoice_payment",
                "user": user.to_tg(),
                "invoice_payload": inv.payload,
            }
            cut = self.affiliate_cut(user.id, total)
            if cut is not None:
                source["affiliate"] = cut
            received = total - (cut["amount"] if cut else 0)
            self.bot_stars += received
            if inv.subscription_period:
                source["subscription_period"] = inv.subscription_period
            self.star_transactions.append(
                {"id": charge_id, "amount": received, "date": self.now(), "source": source}
            )
        chat = self.chats.get(inv.chat_id or user.id) or self.private_chat(user)
        if chat.type != "private" and not chat.member(user.id).is_member:
            chat = self.private_chat(user)
        msg = self.store_message(chat, user, {"successful_payment": body}, outgoing=False)
        self.push_update("message", msg.tg)
        return payment

    def affiliate_cut(self, user_id: int, total: int, sign: int = 1) -> dict[str, Any] | None:
        """AffiliateInfo of a payment by a referred user (negative for its refund)."""
        referred = self.star_affiliates.get(user_id)
        if referred is None:
            return None
        affiliate_id, per_mille = referred
        affiliate = self.users.get(affiliate_id)
        info: dict[str, Any] = {
            "commission_per_mille": per_mille,
            "amount": sign * (total * per_mille // 1000),
        }
        if affiliate is not None:
            info["affiliate_user"] = affiliate.to_tg()
        return info

    def renew_subscriptions(self, user_id: int | None = None) -> list[dict[str, Any]]:
        """A renewal date comes: every active subscription is charged again (or lapses)."""
        out: list[dict[str, Any]] = []
        for sub in list(self.subscriptions.values()):
            if user_id is not None and sub.user_id != user_id:
                continue
            user = self.users[sub.user_id]
            if sub.canceled_by_bot or sub.canceled_by_user:
                out.append({"first_charge_id": sub.first_charge_id, "status": "canceled"})
                continue
            if user.stars < sub.invoice.total_amount:
                out.append({"first_charge_id": sub.first_charge_id, "status": "insufficient_stars"})
                continue
            payment = self.charge(user, sub.invoice, renewal_of=sub)
            out.append(
                {
                    "first_charge_id": sub.first_charge_id,
                    "status": "renewed",
                    "telegram_payment_charge_id": payment.telegram_payment_charge_id,
                    "subscription_expiration_date": sub.expires_at,
                }
            )
        return out

    # --- Stars ----------------------------------------------------------------------------------

    async def api_refundStarPayment(self, p: dict[str, Any]) -> Any:
        payment = self.payments.get(p["telegram_payment_charge_id"])
        if payment is None or payment.user_id != p["user_id"] or payment.currency != "XTR":
            raise bad("CHARGE_NOT_FOUND")
        if payment.refunded:
            raise bad("CHARGE_ALREADY_REFUNDED")
        # The affiliate's cut comes back from the affiliate: the bot returns what it got.
        cut = self.affiliate_cut(payment.user_id, payment.total_amount, sign=-1)
        returned = payment.total_amount + (cut["amount"] if cut else 0)
        if self.bot_stars < returned:
            raise bad("BALANCE_TOO_LOW")
        payment.refunded = True
        user = self.users[payment.user_id]
        user.stars += payment.total_amount
        self.bot_stars -= returned
        receiver: dict[str, Any] = {
            "type": "user",
            "transaction_type": "invoice_payment",
            "user": user.to_tg(),
            "invoice_payload": payment.payload,
        }
        if cut is not None:
            receiver["affiliate"] = cut
        self.star_transactions.append(
            {
                "id": new_id("rf", 16),
                "amount": returned,
                "date": self.now(),
                "receiver": receiver,
            }
        )
        chat = self.private_chat(user)
        body = {
            "refunded_payment": {
                "currency": "XTR",
                "total_amount": payment.total_amount,
                "invoice_payload": payment.payload,
                "telegram_payment_charge_id": payment.telegram_payment_charge_id,
                "provider_payment_charge_id": payment.provider_payment_charge_id,
            }
        }
        msg = self.store_message(chat, user, body, outgoing=False)
        self.push_update("message", msg.tg)
        return True

    async def api_getStarTransactions(self, p: dict[str, Any]) -> Any:
        offset = p.get("offset") or 0
        limit = min(max(p.get("limit") or 100, 1), 100)
        return {"transactions": self.star_transactions[offset : offset + limit]}

    async def api_getMyStarBalance(self, p: dict[str, Any]) -> Any:
        return {"amount": self.bot_stars}

    async def api_editUserStarSubscription(self, p: dict[str, Any]) -> Any:
        charge = p["telegram_payment_charge_id"]
        sub = self.subscriptions.get(charge) or next(
            (s for s in self.subscriptions.values() if s.last_charge_id == charge), None
        )
        if sub is None or sub.user_id != p["user_id"]:
            raise bad("SUBSCRIPTION_NOT_FOUND")
        if not p["is_canceled"] and sub.canceled_by_user:
            raise bad("SUBSCRIPTION_CANCELED_BY_USER")
        sub.canceled_by_bot = bool(p["is_canceled"])
        return True
