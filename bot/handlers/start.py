"""/start with deep links, language choice and interests: the learner's first minute."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers import views
from bot.handlers.common import CommandStart, current_locale, is_private, show
from bot.handlers.recommend import suggestion_rows
from bot.i18n import SUPPORTED
from bot.keyboards.callbacks import InterestCB, LangCB, MenuAction, MenuCB
from bot.keyboards.menus import card_keyboard, interests_keyboard, language_keyboard, main_menu
from bot.models import EventKind, User
from bot.scheduler.clock import Clock
from bot.services import users as users_service
from bot.services.events import EventBuffer
from bot.services.search import CatalogSearch

router = Router(name=__name__)
router.message.filter(is_private)

MAX_DEEP_LINK = 64


@router.message(CommandStart())
async def cmd_start(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    events: EventBuffer,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    args = (command.args or "").strip()[:MAX_DEEP_LINK]
    events.record(EventKind.START, user_id=user.id, data={"args": args} if args else None)
    if args.startswith("r_"):
        await users_service.apply_referral(session, user, args[2:])
    elif args.startswith("c_") and args[2:].isdigit():
        card = await search.card(session, int(args[2:]), user.id, clock.now())
        if card is None:
            await message.answer(views.course_unavailable())
        else:
            events.record(
                EventKind.VIEW, user_id=user.id, course_id=card.id, creator_id=card.creator_id
            )
            await message.answer(
                views.card_text(card, current_locale()), reply_markup=card_keyboard(card, -1)
            )
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


@router.callback_query(MenuCB.filter(F.action == MenuAction.LANGUAGE))
async def on_language_menu(callback: CallbackQuery) -> None:
    await show(callback, _("Choose your language:"), language_keyboard())


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
        suggestions = await suggestion_rows(session, user.id, search)
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
