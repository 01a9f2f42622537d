"""/start with deep links, language choice and interests: the learner's first minute."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.analytics import sources
from bot.analytics.sources import Source
from bot.config import Settings
from bot.growth import affiliates
from bot.growth.affiliates import ClickOutcome
from bot.handlers import growth, market, quizzes, views
from bot.handlers.common import CommandStart, is_private, list_language, show
from bot.handlers.recommend import suggestion_rows
from bot.i18n import SUPPORTED
from bot.keyboards.callbacks import BothLangCB, InterestCB, LangCB, MenuAction, MenuCB
from bot.keyboards.menus import interests_keyboard, language_keyboard, main_menu
from bot.models import EventKind, ProductKind, User
from bot.scheduler.clock import Clock
from bot.scheduler.worker import Scheduler
from bot.services import users as users_service
from bot.services.events import EventBuffer
from bot.services.search import CatalogSearch

router = Router(name=__name__)
router.message.filter(is_private)

MAX_DEEP_LINK = 64


@dataclass(frozen=True, slots=True)
class StartLink:
    referral: str = ""
    course_id: int | None = None
    source: Source = Source.DEEP_LINK
    affiliate: str = ""  # a_<code>: an affiliate's personal link (bot.growth.affiliates)
    gift: str = ""  # g_<token>: a gift's claim link (bot.growth.gifts)
    creator_id: int | None = None  # p_<id>: a creator's page
    verify: str = ""  # v_<serial>: check a certificate (bot.services.certificates)


def parse_start(args: str) -> StartLink:
    """c_<id>, c_<id>_<letter> (where the link was shared), r_<code>, r_<code>_c<id>,
    a_<code>, g_<token>, p_<creator id>, v_<certificate serial>."""
    if args.startswith("v_"):
        return StartLink(verify=args[2:] or "-")
    if args.startswith("a_"):
        return StartLink(affiliate=args[2:] or "-")
    if args.startswith("g_"):
        return StartLink(gift=args[2:] or "-")
    if args.startswith("p_"):
        number = args[2:]
        if number.isascii() and number.isdigit() and 0 < int(number) < 2**31:
            return StartLink(creator_id=int(number))
        return StartLink()
    if args.startswith("r_"):
        code, _sep, course = args[2:].partition("_c")
        course_id = int(course) if course.isascii() and course.isdigit() else None
        return StartLink(code, course_id if course_id else None, Source.REFERRAL)
    if args.startswith("c_"):
        number, _sep, letter = args[2:].partition("_")
        if number.isascii() and number.isdigit() and 0 < int(number) < 2**31:
            return StartLink("", int(number), sources.from_link_suffix(letter))
    return StartLink()


@router.message(CommandStart())
async def cmd_start(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    events: EventBuffer,
    search: CatalogSearch,
    clock: Clock,
    bot: Bot,
    settings: Settings,
    i18n: I18n,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    args = (command.args or "").strip()[:MAX_DEEP_LINK]
    events.record(EventKind.START, user_id=user.id, data={"args": args} if args else None)
    link = parse_start(args)
    if link.verify:
        await message.answer(await quizzes.verify_text(session, link.verify))
        return
    if link.referral:
        await users_service.apply_referral(session, user, link.referral)
    if link.gift:
        await growth.claim_gift(
            message,
            link.gift,
            session,
            user,
            bot,
            settings,
            clock,
            i18n,
            scheduler,
            sessionmaker,
            after_commit,
        )
        return
    if link.affiliate:
        clicked = await affiliates.click(session, link.affiliate, user.id, clock.now())
        if clicked.outcome == ClickOutcome.FORGED:
            await message.answer(
                _("This link is not valid. Check that it was copied whole, or see /catalog.")
            )
            return
        if clicked.product_kind == ProductKind.COURSE and clicked.product_id is not None:
            link = StartLink(course_id=clicked.product_id, source=Source.AFFILIATE)
        elif clicked.product_kind == ProductKind.PLAN and clicked.product_id is not None:
            from bot.handlers.groups import send_plan_card

            if await send_plan_card(
                message, session, user, clicked.product_id, events, Source.AFFILIATE
            ):
                return
    if link.course_id is not None:
        card = await search.card(session, link.course_id, user.id, clock.now())
        if card is None:
            await message.answer(views.course_unavailable())
        else:
            events.record(
                EventKind.VIEW,
                user_id=user.id,
                course_id=card.id,
                creator_id=card.creator_id,
                data={"src": link.source},
            )
            text, markup = await market.card_screen(session, search, card, -1, clock.now())
            await message.answer(text, reply_markup=markup)
            return
    if link.creator_id is not None:
        await market.send_profile(message, session, user, link.creator_id)
        return
    if not user.onboarded:
        await message.answer(views.welcome_new(user.first_name), reply_markup=language_keyboard())
    else:
        await message.answer(views.menu_text(user.first_name), reply_markup=main_menu())


@router.callback_query(LangCB.filter())
async def on_language(
    callback: CallbackQuery, callback_data: LangCB, session: AsyncSession, user: User, i18n: I18n
) -> None:
    if callback_data.code not in SUPPORTED:
        await callback.answer(_("Unknown language."), show_alert=True)
        return
    await users_service.set_language(session, user, callback_data.code)
    # Answer in the language just chosen, not in the one this update arrived with.
    with i18n.use_locale(callback_data.code):
        if not user.onboarded:
            await show(callback, views.choose_interests(), interests_keyboard(user.interests))
        else:
            await show(callback, views.menu_text(user.first_name), main_menu())


def language_settings_text(both: bool) -> str:
    if both:
        rule = _("Courses in English and Chinese are listed alike, best match first.")
    else:
        rule = _(
            "Courses in your language come first, unless one in the other language "
            "is a clearly better match."
        )
    return "\n\n".join((_("Choose your language:"), rule))


@router.callback_query(MenuCB.filter(F.action == MenuAction.LANGUAGE))
async def on_language_menu(callback: CallbackQuery, user: User) -> None:
    both = user.both_languages
    await show(callback, language_settings_text(both), language_keyboard(both))


@router.callback_query(BothLangCB.filter())
async def on_both_languages(
    callback: CallbackQuery, callback_data: BothLangCB, session: AsyncSession, user: User
) -> None:
    both = users_service.BOTH_LANGUAGES_MODES.get(callback_data.mode)
    if both is None:
        await callback.answer(_("This option is no longer available."), show_alert=True)
        return
    users_service.set_both_languages(user, both)
    await show(callback, language_settings_text(both), language_keyboard(both))


@router.callback_query(MenuCB.filter(F.action == MenuAction.INTERESTS))
async def on_interests_menu(callback: CallbackQuery, user: User) -> None:
    await show(callback, views.choose_interests(), interests_keyboard(user.interests))


@router.callback_query(InterestCB.filter())
async def on_interest(
    callback: CallbackQuery,
    callback_data: InterestCB,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
) -> None:
    if not callback_data.key:
        users_service.finish_onboarding(user)
        await session.flush()
        # The interests just picked count at once: first suggestions above the menu.
        suggestions = await suggestion_rows(session, user.id, search, language=list_language(user))
        menu = main_menu()
        markup = InlineKeyboardMarkup(inline_keyboard=[*suggestions, *menu.inline_keyboard])
        await show(callback, views.all_set(user.interests), markup)
        return
    if not users_service.toggle_interest(user, callback_data.key):
        await callback.answer(_("This option is no longer available."), show_alert=True)
        return
    await show(callback, views.choose_interests(), interests_keyboard(user.interests))


@router.callback_query(MenuCB.filter(F.action == MenuAction.HOME))
async def on_home(callback: CallbackQuery, user: User) -> None:
    await show(callback, views.menu_text(user.first_name), main_menu())
