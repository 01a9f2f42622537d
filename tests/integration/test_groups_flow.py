"""Paid groups through the real Dispatcher and the app's own scheduler: linking with rights
checks, the join-request gate, the chat_member guard, expiry with reminders and grace,
renewal, trials, Stars subscription renewals and cancel, audits, cross-creator denial."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.methods import (
    AnswerPreCheckoutQuery,
    ApproveChatJoinRequest,
    BanChatMember,
    CreateChatInviteLink,
    CreateInvoiceLink,
    DeclineChatJoinRequest,
    EditUserStarSubscription,
    SendInvoice,
    SendMessage,
    UnbanChatMember,
)
from aiogram.types import (
    Chat,
    ChatFullInfo,
    ChatInviteLink,
    ChatJoinRequest,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberUpdated,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    User,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.keyboards.groups import PlanCB
from bot.models import (
    Creator,
    Entitlement,
    Group,
    GroupMember,
    Job,
    JobStatus,
    Order,
    OrderStatus,
    Plan,
    PlanChat,
    ProductKind,
)
from bot.models import User as UserRow
from bot.payments.checkout import Outcome
from bot.scheduler.clock import ManualClock
from bot.services import access
from bot.services.memberships import INVITE
from tests.support.payments import (
    PayRecordingSession,
    pre_checkout_update,
    stars_subscription_charge,
    successful_payment_update,
)
from tests.support.updates import Harness, settle, tg_user

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CHAT = -1001234
OTHER_CHAT = -1005678
ANA = tg_user(3001, "Ana")  # creator A
BEN = tg_user(3002, "Ben")  # creator B
ANN = tg_user(1001, "Ann")  # learner who pays
BO = tg_user(1002, "Bo")  # learner who does not
BOT = User(id=42, is_bot=True, first_name="Lyceum")
_ids = itertools.count(500_000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def gapp(settings: Settings, engine: AsyncEngine, clock: ManualClock) -> AsyncIterator[App]:
    settings = settings.model_copy(update={"grace_period_hours": 12})
    app = build_app(settings, session=PayRecordingSession(), engine=engine, clock=clock)
    yield app
    await settle(app)


@pytest.fixture
def h(gapp: App) -> Harness:
    return Harness(gapp)


# --- builders -----------------------------------------------------------------------------


def group_chat(chat_id: int = CHAT, title: str = "Club") -> Chat:
    return Chat(id=chat_id, type="supergroup", title=title)


def group_message(text: str, user: User, chat_id: int = CHAT) -> Update:
    entities = [MessageEntity(type="bot_command", offset=0, length=len(text.split()[0]))]
    msg = Message(
        message_id=next(_ids),
        date=T0,
        chat=group_chat(chat_id),
        from_user=user,
        text=text,
        entities=entities,
    )
    return Update(update_id=next(_ids), message=msg)


def join_request(user: User, chat_id: int = CHAT) -> Update:
    req = ChatJoinRequest(chat=group_chat(chat_id), from_user=user, user_chat_id=user.id, date=T0)
    return Update(update_id=next(_ids), chat_join_request=req)


def joined(user: User, by: User | None = None, chat_id: int = CHAT) -> Update:
    upd = ChatMemberUpdated(
        chat=group_chat(chat_id),
        from_user=by or user,
        date=T0,
        old_chat_member=ChatMemberLeft(user=user),
        new_chat_member=ChatMemberMember(user=user),
    )
    return Update(update_id=next(_ids), chat_member=upd)


def admin(user: User, *, invite: bool = True, restrict: bool = True) -> ChatMemberAdministrator:
    return ChatMemberAdministrator(
        user=user,
        can_be_edited=False,
        is_anonymous=False,
        can_manage_chat=True,
        can_delete_messages=False,
        can_manage_video_chats=False,
        can_restrict_members=restrict,
        can_promote_members=False,
        can_change_info=False,
        can_invite_users=invite,
        can_post_stories=False,
        can_edit_stories=False,
        can_delete_stories=False,
        can_send_welcome_messages=False,
    )


def full_chat(chat_id: int = CHAT, title: str = "Club") -> ChatFullInfo:
    return ChatFullInfo(
        id=chat_id,
        type="supergroup",
        title=title,
        accent_color_id=0,
        max_reaction_count=11,
        accepted_gift_types={
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    )


def invite_link(name: str) -> ChatInviteLink:
    return ChatInviteLink(
        invite_link=f"https://t.me/+{name.replace(' ', '')}",
        creator=BOT,
        creates_join_request=True,
        is_primary=False,
        is_revoked=False,
        name=name,
    )


async def seed(
    db: AsyncSession, *, period: int | None = 30, trial: int = 0, sub: bool = False
) -> int:
    """Creators Ana and Ben, learners Ann and Bo; Ana's chat CHAT sold by plan; Ben's chat."""
    for u in (ANA, BEN, ANN, BO):
        db.add(UserRow(id=u.id, first_name=u.first_name, referral_code=f"r{u.id}"))
    await db.flush()
    ana = Creator(user_id=ANA.id, display_name="Ana")
    ben = Creator(user_id=BEN.id, display_name="Ben")
    db.add_all([ana, ben])
    await db.flush()
    plan = Plan(
        creator_id=ana.id,
        title="Club pass",
        stars_price=100,
        period_days=period,
        trial_days=trial,
        stars_subscription=sub,
        published=True,
    )
    db.add(plan)
    await db.flush()
    club = Group(chat_id=CHAT, kind="supergroup", title="Club", creator_id=ana.id)
    db.add(club)
    await db.flush()
    db.add(PlanChat(plan_id=plan.id, group_id=club.id))
    db.add(Group(chat_id=OTHER_CHAT, kind="supergroup", title="Ben's", creator_id=ben.id))
    await db.commit()
    plan_id = plan.id
    await db.close()
    return plan_id


def sent_to(h: Harness, chat_id: int) -> list[SendMessage]:
    return [r for r in h.session.of_type(SendMessage) if int(r.chat_id) == chat_id]


def buttons(req: SendMessage) -> list[str]:
    markup = req.reply_markup
    if not isinstance(markup, InlineKeyboardMarkup):
        return []
    return [b.text for row in markup.inline_keyboard for b in row]


async def grant(gapp: App, user_id: int, plan_id: int, days: int | None, now: datetime) -> None:
    async with gapp.sessionmaker() as s:
        await access.grant(s, user_id, ProductKind.PLAN, plan_id, days=days, now=now)
        await s.commit()


# --- linking ------------------------------------------------------------------------------


async def test_linking_says_exactly_what_is_missing(h: Harness, db: AsyncSession) -> None:
    await seed(db)
    await h.send("/start", tg_user(3003, "Cy"))
    await h.send("/becomecreator", tg_user(3003, "Cy"))
    cy = tg_user(3003, "Cy")
    new_chat = -100999
    # The bot is a plain member; Cy is not an admin.
    h.session.add_result(full_chat(new_chat, "New"))
    h.session.add_result(ChatMemberMember(user=cy))
    h.session.add_result(ChatMemberMember(user=BOT))
    h.session.clear()
    await h.feed(group_message("/linkgroup", cy, new_chat))
    text = h.last_text()
    assert "you are not an admin" in text and "the bot is not an admin" in text
    # Cy is the owner now; the bot is an admin without the right to ban.
    h.session.add_result(full_chat(new_chat, "New"))
    h.session.add_result(ChatMemberOwner(user=cy, is_anonymous=False))
    h.session.add_result(admin(BOT, restrict=False))
    await h.feed(group_message("/linkgroup", cy, new_chat))
    text = h.last_text()
    assert "ban (restrict)" in text and "invite" not in text.split("\n")[1]
    # All rights: linked, and the answer went to Cy in private.
    h.session.add_result(full_chat(new_chat, "New"))
    h.session.add_result(ChatMemberOwner(user=cy, is_anonymous=False))
    h.session.add_result(admin(BOT))
    await h.feed(group_message("/linkgroup", cy, new_chat))
    assert "Linked New" in h.last_text()
    assert int(sent_to(h, cy.id)[-1].chat_id) == cy.id
    group = await db.scalar(select(Group).where(Group.chat_id == new_chat))
    assert group is not None and group.kind == "supergroup"


async def test_private_linking_offers_a_chat_picker(h: Harness, db: AsyncSession) -> None:
    await seed(db)
    # The recording session cannot echo a reply keyboard: answer for it.
    h.session.add_result(
        Message(message_id=1, date=T0, chat=Chat(id=ANA.id, type="private"), from_user=BOT)
    )
    await h.send("/linkgroup", ANA)
    req = h.session.of_type(SendMessage)[-1]
    markup: Any = req.reply_markup
    assert markup.keyboard[0][0].request_chat.bot_administrator_rights.can_invite_users


# --- the gate -----------------------------------------------------------------------------


async def test_paid_member_gets_a_personal_link_and_is_approved_others_declined(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await h.send("/start", ANN)
    h.session.clear()
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann · 1001"))
    await gapp.scheduler.drain()
    create = h.session.of_type(CreateChatInviteLink)
    assert len(create) == 1
    assert create[0].creates_join_request is True and create[0].member_limit is None
    assert "Ann" in (create[0].name or "") and len(create[0].name or "") <= 32
    assert "https://t.me/+Ann·1001" in sent_to(h, ANN.id)[-1].text

    await h.feed(join_request(ANN))
    assert [r.user_id for r in h.session.of_type(ApproveChatJoinRequest)] == [ANN.id]
    # Bo uses Ann's link: his own request is declined and he is told how to buy.
    await h.feed(join_request(BO))
    assert [r.user_id for r in h.session.of_type(DeclineChatJoinRequest)] == [BO.id]
    told = sent_to(h, BO.id)[-1]
    assert "needs an active plan" in told.text and "🛒 Buy access" in buttons(told)


async def test_guard_removes_who_got_in_without_access(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    await h.feed(joined(ANN))
    await h.feed(joined(BO, by=ANN))  # added by a member
    bans = h.session.of_type(BanChatMember)
    assert [b.user_id for b in bans] == [BO.id]
    unbans = h.session.of_type(UnbanChatMember)
    assert [u.only_if_banned for u in unbans] == [True]
    # Whitelisted by the creator: stays.
    h.session.clear()
    await h.send(f"/whitelist {CHAT} {BO.id}", ANA)
    await h.feed(joined(BO))
    assert h.session.of_type(BanChatMember) == []


# --- expiry -------------------------------------------------------------------------------


async def test_reminders_grace_removal_and_coming_back(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    h.session.clear()

    clock.set(T0 + timedelta(days=27, minutes=1))  # 72 h before the end
    await gapp.scheduler.drain()
    reminder = sent_to(h, ANN.id)[-1]
    assert "ends in 72 hours" in reminder.text and "🔄 Renew" in buttons(reminder)
    clock.set(T0 + timedelta(days=29, minutes=1))
    await gapp.scheduler.drain()
    assert "ends in 24 hours" in sent_to(h, ANN.id)[-1].text

    # Expired, within the grace period: still in, nothing removed.
    clock.set(T0 + timedelta(days=30, hours=6))
    await gapp.scheduler.drain()
    assert h.session.of_type(BanChatMember) == []
    # Grace over: ban, then unban only_if_banned, and a message with Renew.
    clock.set(T0 + timedelta(days=30, hours=12, minutes=1))
    await gapp.scheduler.drain()
    assert [b.user_id for b in h.session.of_type(BanChatMember)] == [ANN.id]
    assert [u.only_if_banned for u in h.session.of_type(UnbanChatMember)] == [True]
    assert "has ended" in sent_to(h, ANN.id)[-1].text

    # Paying again: a fresh link, and the join request is approved.
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann again"))
    await gapp.scheduler.drain()
    assert "Ann again".replace(" ", "") in sent_to(h, ANN.id)[-1].text
    await h.feed(join_request(ANN))
    assert [r.user_id for r in h.session.of_type(ApproveChatJoinRequest)] == [ANN.id]


async def test_renewal_extends_and_silences_old_reminders(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    clock.set(T0 + timedelta(days=20))
    await grant(gapp, ANN.id, plan_id, 30, clock.now())  # renewed early
    h.session.add_result(invite_link("Ann2"))
    await gapp.scheduler.drain()
    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == ANN.id))
    assert ent is not None and ent.expires_at == T0 + timedelta(days=60)
    h.session.clear()
    clock.set(T0 + timedelta(days=31))  # the old expiry and its grace are over
    await gapp.scheduler.drain()
    assert sent_to(h, ANN.id) == [] and h.session.of_type(BanChatMember) == []
    clock.set(T0 + timedelta(days=57, minutes=1))
    await gapp.scheduler.drain()
    assert "ends in 72 hours" in sent_to(h, ANN.id)[-1].text


async def test_renew_from_the_reminder_while_active_extends_from_the_old_expiry(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    """Renewing while still active, from the Renew button of the 72 h reminder: the new
    period adds to the old expiry (not to the moment of paying), the old expiry's
    reminders, grace and removal stay silent, and a member inside gets no new link.

    The payment is booked at the real time, so the clock starts 27 days and an hour in
    the past: the reminder falls due now and the learner pays 71 hours before the end.
    """
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=27, hours=1)
    clock.set(start)
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await grant(gapp, ANN.id, plan_id, 30, start)
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    await h.feed(join_request(ANN))
    assert [r.user_id for r in h.session.of_type(ApproveChatJoinRequest)] == [ANN.id]
    old_expiry = start + timedelta(days=30)

    # 72 hours before the end: the reminder, and its Renew button.
    clock.set(start + timedelta(days=27, hours=1))
    await gapp.scheduler.drain()
    reminder = sent_to(h, ANN.id)[-1]
    assert "ends in 72 hours" in reminder.text
    markup = reminder.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    renew = [b for row in markup.inline_keyboard for b in row if b.text == "🔄 Renew"]
    assert [b.callback_data for b in renew] == [PlanCB(a="buy", id=plan_id).pack()]
    h.session.clear()

    # Renew → Stars → invoice → pre-checkout accepted (renewing an active plan) → paid.
    assert renew[0].callback_data is not None
    await h.press(renew[0].callback_data, ANN)
    assert "Club pass" in h.last_text()
    await h.click("Telegram Stars", ANN)
    invoices = h.session.of_type(SendInvoice)
    assert len(invoices) == 1 and invoices[0].currency == "XTR"
    payload = invoices[0].payload
    await h.feed(pre_checkout_update(ANN, payload, "XTR", 100))
    assert h.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    paid_at = datetime.now(UTC)
    await h.feed(successful_payment_update(ANN, payload, "XTR", 100, "renew-1"))
    assert any("Payment received" in t for t in h.session.texts())

    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == ANN.id))
    assert ent is not None and ent.expires_at is not None
    # From the old end, not from the moment of paying (that would be ~3 days short).
    assert ent.expires_at == old_expiry + timedelta(days=30)
    assert ent.expires_at - (paid_at + timedelta(days=30)) > timedelta(days=2)
    await db.close()

    # The old date passes: no 24 h reminder, no removal after grace, no "has ended".
    h.session.clear()
    for at in (
        start + timedelta(days=29, minutes=1),
        old_expiry + timedelta(hours=12, minutes=1),
    ):
        clock.set(at)
        await gapp.scheduler.drain()
    assert sent_to(h, ANN.id) == []
    assert h.session.of_type(BanChatMember) == []
    # Already in the chat: the renewal's invite job ran and made no second link.
    assert h.session.of_type(CreateChatInviteLink) == []
    pending = await db.scalars(
        select(Job).where(Job.kind == INVITE, Job.status == JobStatus.PENDING)
    )
    assert list(pending) == []

    # The new date's reminder does come.
    clock.set(old_expiry + timedelta(days=27, minutes=1))
    await gapp.scheduler.drain()
    texts = [m.text for m in sent_to(h, ANN.id)]
    new_end = (old_expiry + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert len(texts) == 1 and "ends in 72 hours" in texts[0] and new_end in texts[0]


async def test_trial_is_once_per_user(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db, trial=7)
    await h.send("/start", BO)
    data = PlanCB(a="trial", id=plan_id).pack()
    await h.press(data, BO)
    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == BO.id))
    assert ent is not None and ent.is_trial and ent.expires_at == T0 + timedelta(days=7)
    await db.close()
    h.session.clear()
    await h.press(data, BO)
    ents = list(await db.scalars(select(Entitlement).where(Entitlement.user_id == BO.id)))
    assert len(ents) == 1 and ents[0].expires_at == T0 + timedelta(days=7)


async def test_buy_button_offers_the_plan_through_payments(h: Harness, db: AsyncSession) -> None:
    plan_id = await seed(db)
    await h.send("/start", BO)
    await h.press(PlanCB(a="buy", id=plan_id).pack(), BO)
    assert "Club pass" in h.last_text()
    assert any("Stars" in b for b in buttons(sent_to(h, BO.id)[-1]))


# --- Stars subscriptions ------------------------------------------------------------------


async def test_stars_subscription_renews_and_cancels(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    plan_id = await seed(db, sub=True)
    await h.send("/start", ANN)
    h.session.add_result("https://t.me/$sub")
    await h.press(PlanCB(a="sub", id=plan_id).pack(), ANN)
    link = h.session.of_type(CreateInvoiceLink)[-1]
    assert link.subscription_period == 2592000 and link.currency == "XTR"
    payload = link.payload
    first = clock.now()
    async with gapp.sessionmaker() as s:
        result = await stars_subscription_charge(
            s, settings, payload, ANN.id, "stxFIRST", first, first + timedelta(days=30), first=True
        )
        await s.commit()
    assert result.outcome == Outcome.CREDITED
    # A month later Telegram charges again: the same payload, is_recurring.
    later = first + timedelta(days=30)
    for charge in ("stxSECOND", "stxSECOND"):  # the second is a redelivery
        async with gapp.sessionmaker() as s:
            again = await stars_subscription_charge(
                s,
                settings,
                payload,
                ANN.id,
                charge,
                later - timedelta(hours=1),
                later + timedelta(days=30),
                first=False,
            )
            await s.commit()
    assert again.outcome == Outcome.DUPLICATE
    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == ANN.id))
    assert ent is not None and ent.expires_at == first + timedelta(days=60)
    order = await db.scalar(select(Order).where(Order.public_ref == payload))
    assert order is not None and order.status == OrderStatus.PAID
    await db.close()
    # Cancel: editUserStarSubscription with the latest charge; access stays.
    h.session.clear()
    await h.send("/subscriptions", ANN)
    assert "Club pass" in h.last_text()
    await h.click("Cancel renewal", ANN)
    edit = h.session.of_type(EditUserStarSubscription)
    assert edit and edit[0].is_canceled and edit[0].telegram_payment_charge_id == "stxSECOND"
    assert "lasts to the end" in h.last_text()
    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == ANN.id))
    assert ent is not None and ent.revoked_at is None


# --- creators' commands and ownership ------------------------------------------------------


async def test_creator_commands_and_cross_creator_denial(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    await h.send("/groups", ANA)
    assert "Club" in h.last_text() and "Ben's" not in h.last_text()
    await h.send(f"/members {CHAT}", ANA)
    assert "Active: 1" in h.last_text() and str(ANN.id) in h.last_text()
    await h.send(f"/extend {ANN.id} 10", ANA)
    assert "Extended" in h.last_text()
    await h.send(f"/plan {plan_id} days=90 trial=3", ANA)
    assert "90 days" in h.last_text()
    # A second plan may sell the same chat: the first keeps selling it.
    await h.send(f"/plan new VIP stars=900 days=life chat={CHAT}", ANA)
    assert "lifetime" in h.last_text() and "Club" in h.last_text()
    await h.send("/groups", ANA)
    assert f"plan #{plan_id} Club pass, plan #{plan_id + 1} VIP" in h.last_text()
    await h.send("/plan new VIP stars=900 days=life", ANA)
    assert "lifetime" in h.last_text()
    await h.send("/plan new Monthly stars=90 days=90 sub=yes", ANA)
    assert "every 30 days" in h.last_text()

    # Ben may touch nothing of Ana's.
    for cmd in (
        f"/members {CHAT}",
        f"/extend {ANN.id} 10 {plan_id}",
        f"/kick {ANN.id} {plan_id}",
        f"/plan {plan_id} stars=1",
        f"/audit {CHAT}",
        f"/whitelist {CHAT} {BO.id}",
        f"/plan new Steal stars=1 chat={CHAT}",
    ):
        await h.send(cmd, BEN)
        assert "No such chat or plan of yours" in h.last_text(), cmd
    await h.send("/groups", BEN)
    assert "Club" not in h.last_text().replace("Ben's", "")
    # Linking Ana's chat as Ben: refused even with every right.
    h.session.add_result(full_chat())
    h.session.add_result(ChatMemberOwner(user=BEN, is_anonymous=False))
    h.session.add_result(admin(BOT))
    await h.feed(group_message("/linkgroup", BEN))
    assert "another creator" in h.last_text()
    plan = await db.get(Plan, plan_id)
    assert plan is not None and plan.stars_price == 100 and plan.period_days == 90
    # Learners are not creators.
    await h.send(f"/members {CHAT}", ANN)
    assert "Only creators" in h.last_text()
    # The platform owner (ADMIN_IDS=7) may act on all.
    await h.send("/start", tg_user(7, "Olga"))
    await h.send(f"/members {CHAT}", tg_user(7, "Olga"))
    assert "Active: 1" in h.last_text()


async def test_kick_removes_and_revokes(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    await h.send(f"/kick {ANN.id}", ANA)
    await gapp.scheduler.drain()
    assert [b.user_id for b in h.session.of_type(BanChatMember)] == [ANN.id]
    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == ANN.id))
    assert ent is not None and ent.revoked_at is not None


async def test_audit_dry_run_then_confirm(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    group = await db.scalar(select(Group).where(Group.chat_id == CHAT))
    assert group is not None
    # Members the bot saw before it was strict (say, before linking).
    for uid, status in ((ANN.id, "member"), (BO.id, "member"), (ANA.id, "creator")):
        db.add(GroupMember(group_id=group.id, user_id=uid, status=status))
    await db.commit()
    await db.close()
    h.session.clear()
    await h.feed(group_message("/audit", ANA))
    text = h.last_text()
    assert f"would remove 1: {BO.id}" in text
    assert h.session.of_type(BanChatMember) == []  # a dry run
    assert int(sent_to(h, ANA.id)[-1].chat_id) == ANA.id
    await h.click("Confirm", ANA)
    await gapp.scheduler.drain()
    assert [b.user_id for b in h.session.of_type(BanChatMember)] == [BO.id]


async def test_cli_audit_is_a_dry_run_until_confirmed(
    gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    from bot.services.memberships import audit_all

    plan_id = await seed(db)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    group = await db.scalar(select(Group).where(Group.chat_id == CHAT))
    assert group is not None
    db.add_all(
        [
            GroupMember(group_id=group.id, user_id=ANN.id, status="member"),
            GroupMember(group_id=group.id, user_id=BO.id, status="member"),
        ]
    )
    await db.commit()
    lines = await audit_all(db, CHAT, confirm=False, now=clock.now())
    assert lines[0].endswith(f"would remove 1: {BO.id}") and "dry run" in lines[-1]
    assert await db.scalar(select(Job).where(Job.kind == "grp_remove")) is None
    lines = await audit_all(db, None, confirm=True, now=clock.now())
    await db.commit()
    job = await db.scalar(select(Job).where(Job.kind == "grp_remove"))
    assert job is not None and job.payload["users"] == [BO.id]


async def test_renewal_of_a_member_inside_sends_no_new_link(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    await h.feed(join_request(ANN))
    h.session.clear()
    clock.set(T0 + timedelta(days=10))
    await grant(gapp, ANN.id, plan_id, 30, clock.now())
    await gapp.scheduler.drain()
    assert h.session.of_type(CreateChatInviteLink) == []


async def test_linking_a_channel_picked_in_private(h: Harness, db: AsyncSession) -> None:
    from aiogram.types import ChatShared

    await seed(db)
    channel = -100777
    h.session.add_result(
        ChatFullInfo(
            id=channel,
            type="channel",
            title="News",
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types=full_chat().accepted_gift_types,
        )
    )
    h.session.add_result(ChatMemberOwner(user=ANA, is_anonymous=False))
    h.session.add_result(admin(BOT, invite=False))
    h.session.add_result(
        Message(message_id=1, date=T0, chat=Chat(id=ANA.id, type="private"), from_user=BOT)
    )
    shared = ChatShared(request_id=52, chat_id=channel, title="News")
    await h.feed(
        Update(
            update_id=next(_ids),
            message=Message(
                message_id=next(_ids),
                date=T0,
                chat=Chat(id=ANA.id, type="private"),
                from_user=ANA,
                chat_shared=shared,
            ),
        )
    )
    sent = h.session.of_type(SendMessage)[-1]
    assert "invite users via link" in sent.text
    assert await db.scalar(select(Group).where(Group.chat_id == channel)) is None


# --- one chat, several plans ----------------------------------------------------------------


async def second_plan(h: Harness, db: AsyncSession, spec: str) -> int:
    """Ana attaches her chat to one more plan with /plan; returns its id."""
    await h.send(f"/plan new {spec} publish=yes chat={CHAT}", ANA)
    assert "Sells access to: Club" in h.last_text(), h.last_text()
    plan_id = await db.scalar(select(Plan.id).order_by(Plan.id.desc()).limit(1))
    assert plan_id is not None
    await db.close()
    return plan_id


async def test_any_plan_of_the_chat_lets_a_member_in(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    monthly = await seed(db)
    await h.send("/start", ANN)
    await h.send("/start", BO)
    yearly = await second_plan(h, db, "Year pass stars=900 days=365")
    links = list(await db.scalars(select(PlanChat.plan_id).order_by(PlanChat.plan_id)))
    assert links == [monthly, yearly]  # attached, not moved
    # Ann holds the monthly plan, Bo only the yearly one: both are approved.
    await grant(gapp, ANN.id, monthly, 30, clock.now())
    await grant(gapp, BO.id, yearly, 365, clock.now())
    h.session.add_result(invite_link("Ann"))
    h.session.add_result(invite_link("Bo"))
    await gapp.scheduler.drain()
    await h.feed(join_request(ANN))
    await h.feed(join_request(BO))
    approved = sorted(r.user_id for r in h.session.of_type(ApproveChatJoinRequest))
    assert approved == sorted([ANN.id, BO.id])
    assert h.session.of_type(DeclineChatJoinRequest) == []
    # The guard and the audit agree: nobody to remove.
    await h.feed(joined(BO))
    assert h.session.of_type(BanChatMember) == []
    await h.send(f"/audit {CHAT}", ANA)
    assert "everyone the bot has seen may be there" in h.last_text()
    await h.send(f"/members {CHAT}", ANA)
    assert "Active: 2" in h.last_text()


async def test_expiry_of_one_plan_keeps_who_holds_another(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    monthly = await seed(db)
    await h.send("/start", ANN)
    lifetime = await second_plan(h, db, "Forever stars=900 days=life")
    await grant(gapp, ANN.id, monthly, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await gapp.scheduler.drain()
    await h.feed(join_request(ANN))
    # Bought for life while inside: no second link for a chat she is in.
    h.session.clear()
    await grant(gapp, ANN.id, lifetime, None, clock.now())
    await gapp.scheduler.drain()
    assert h.session.of_type(CreateChatInviteLink) == []

    # The monthly plan ends and its grace passes: its expiry job runs, Ann stays.
    clock.set(T0 + timedelta(days=30, hours=12, minutes=1))
    await gapp.scheduler.drain()
    ended = await db.scalar(
        select(Entitlement).where(Entitlement.product_id == monthly, Entitlement.user_id == ANN.id)
    )
    assert ended is not None and not ended.is_active(clock.now())
    assert h.session.of_type(BanChatMember) == []
    await h.feed(joined(ANN))  # the guard agrees
    assert h.session.of_type(BanChatMember) == []
    await h.send(f"/members {CHAT}", ANA)
    report = h.last_text()
    assert "Active: 1" in report and "Expired: 0" in report and f"#{lifetime}" in report

    # Kicked from the monthly plan only: still in through the lifetime one.
    await h.send(f"/kick {ANN.id} {monthly}", ANA)
    assert "another plan keeps them in: Club" in h.last_text()
    await gapp.scheduler.drain()
    assert h.session.of_type(BanChatMember) == []
    # Kicked from the lifetime plan too: now she is removed.
    await h.send(f"/kick {ANN.id} {lifetime}", ANA)
    assert "is being removed" in h.last_text()
    await gapp.scheduler.drain()
    assert [b.user_id for b in h.session.of_type(BanChatMember)] == [ANN.id]


async def test_declined_request_offers_every_plan_of_the_chat(h: Harness, db: AsyncSession) -> None:
    monthly = await seed(db)
    await h.send("/start", BO)
    yearly = await second_plan(h, db, "Year pass stars=900 days=365 trial=3")
    h.session.clear()
    await h.feed(join_request(BO))
    told = sent_to(h, BO.id)[-1]
    assert "needs an active plan" in told.text
    assert "Club pass" in told.text and "Year pass" in told.text
    assert buttons(told) == ["🛒 Buy Club pass", "🛒 Buy Year pass", "🎁 Free trial: Year pass"]
    markup = told.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    data = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert data[:2] == [PlanCB(a="buy", id=monthly).pack(), PlanCB(a="buy", id=yearly).pack()]


async def test_attaching_chats_to_plans_stays_within_one_creator(
    h: Harness, db: AsyncSession
) -> None:
    ana_plan = await seed(db)
    await h.send("/plan new Bens stars=10 days=30", BEN)
    ben_plan = await db.scalar(select(Plan.id).where(Plan.title == "Bens"))
    assert ben_plan is not None
    await db.close()
    for cmd, who in (
        (f"/plan {ben_plan} chat={CHAT}", BEN),  # Ben's plan, Ana's chat
        (f"/plan {ana_plan} chat={OTHER_CHAT}", ANA),  # Ana's plan, Ben's chat
        (f"/plan {ben_plan} chat={OTHER_CHAT}", ANA),  # Ben's plan, Ben's chat
        (f"/plan new Mine stars=1 chat={OTHER_CHAT}", ANA),
    ):
        await h.send(cmd, who)
        assert "No such chat or plan of yours" in h.last_text(), cmd
    # Ben attaches his own chat to his plan; Ana's chat still has only her plan.
    await h.send(f"/plan {ben_plan} chat={OTHER_CHAT}", BEN)
    assert "Sells access to: Ben" in h.last_text()
    pairs = set((await db.execute(select(PlanChat.plan_id, Group.chat_id).join(Group))).tuples())
    assert pairs == {(ana_plan, CHAT), (ben_plan, OTHER_CHAT)}
