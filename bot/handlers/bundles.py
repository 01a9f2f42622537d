"""Bundles: /bundle for creators (make, list, unpublish) and a bundle's page for learners,
whose Pay buttons are the ordinary ones (bot/handlers/payments.py, kind "bundle")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.handlers import commands
from bot.handlers.common import Command, clip, current_locale, is_private, show
from bot.keyboards.callbacks import BundleCB, packed
from bot.keyboards.menus import callback_button, home_button, short_title
from bot.keyboards.payments import methods_keyboard
from bot.marketplace import bundles
from bot.models import Bundle, Course, ProductKind, User
from bot.money import STARS, format_money
from bot.payments.orders import Offer, OfferProblem, make_offer
from bot.scheduler.clock import Clock
from bot.services import access
from bot.services.users import get_creator

router = Router(name=__name__)


def problem_text(invalid: bundles.Invalid) -> str:
    course = invalid.course_id
    texts = {
        bundles.Problem.USAGE: _("Usage: {usage}").format(usage=escape(commands.usage("bundle")))
        + "\n"
        + _("For example: /bundle new Python path 12,15,16 450⭐ (or 29.99 USD, or both)"),
        bundles.Problem.TITLE: _("A bundle's title is 1 to {n} characters.").format(
            n=bundles.MAX_TITLE
        ),
        bundles.Problem.TOO_FEW: _("A bundle has at least {n} different courses.").format(
            n=bundles.MIN_COURSES
        ),
        bundles.Problem.TOO_MANY: _("A bundle has at most {n} courses.").format(
            n=bundles.MAX_COURSES
        ),
        bundles.Problem.DUPLICATE: _("Course {id} is listed twice.").format(id=course),
        bundles.Problem.NOT_YOURS: _("You have no course {id}. See /courses.").format(
            id=course if course is not None else "?"
        ),
        bundles.Problem.UNPUBLISHED: _(
            "Course {id} is not published: publish it first, then bundle it."
        ).format(id=course),
        bundles.Problem.BAD_PRICE: _(
            "A price is a whole number of Stars from 1 to {stars} (like 450⭐) or an amount "
            "with its currency (like 29.99 USD), above 0."
        ).format(stars=parsing.MAX_STARS),
        bundles.Problem.NO_STARS: _(
            "Course {id} is not sold for Stars, so the bundle cannot be either."
        ).format(id=course),
        bundles.Problem.NO_CARD: _(
            "Course {id} is not sold by card in this currency, so the bundle cannot be either."
        ).format(id=course),
        bundles.Problem.NOT_CHEAPER: _(
            "A bundle must cost less than its courses bought separately ({total})."
        ).format(
            total=", ".join(format_money(a, c, current_locale()) for a, c in invalid.separately)
        ),
        bundles.Problem.LIMIT: _(
            "You have {n} bundles on sale, the most there can be. Unpublish one first."
        ).format(n=bundles.MAX_BUNDLES),
    }
    return texts[invalid.problem]


def _price(bundle: Bundle | bundles.Shown, locale: str) -> str:
    parts = []
    if bundle.stars_price > 0:
        parts.append(format_money(bundle.stars_price, STARS, locale))
    if bundle.price_minor > 0:
        parts.append(format_money(bundle.price_minor, bundle.currency, locale))
    return " · ".join(parts)


async def _creator_list(session: AsyncSession, creator_id: int) -> tuple[str, InlineKeyboardMarkup]:
    mine = await bundles.of_creator(session, creator_id, published_only=False)
    locale = current_locale()
    lines = [_("📦 Your bundles:"), ""]
    rows: list[list[InlineKeyboardButton]] = []
    for b in mine:
        courses = await bundles.members(session, b.id)
        state = "" if b.published else " · " + _("unpublished")
        ids = ",".join(str(c.id) for c in courses)
        lines.append(f"#{b.id} <b>{escape(b.title)}</b> — {_price(b, locale)} ({ids}){state}")
        if b.published:
            rows.append(
                [
                    callback_button(
                        _("🚫 Unpublish #{id}").format(id=b.id), packed(BundleCB, id=b.id, off=1)
                    )
                ]
            )
    if not mine:
        lines = [_("You have no bundles yet.")]
    lines += ["", _("New one: {usage}").format(usage=escape(commands.usage("bundle")))]
    rows.append([home_button()])
    return clip("\n".join(lines)), InlineKeyboardMarkup(inline_keyboard=rows)


@router.message(Command("bundle"), is_private)
async def cmd_bundle(
    message: Message, command: CommandObject, session: AsyncSession, user: User
) -> None:
    """/bundle | /bundle new <title> <ids> <price> | /bundle off <id>"""
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("Bundles are made by creators. See /becomecreator."))
        return
    action, _sep, rest = (command.args or "").strip().partition(" ")
    if not action:
        text, markup = await _creator_list(session, creator.id)
        await message.answer(text, reply_markup=markup)
    elif action == "new":
        await message.answer(await _new_bundle(session, creator.id, rest))
    elif action == "off" and (bundle_id := parsing.record_id(rest)) is not None:
        await message.answer(await _unpublish_text(session, creator.id, bundle_id))
    else:
        await message.answer(problem_text(bundles.Invalid(bundles.Problem.USAGE)))


async def _new_bundle(session: AsyncSession, creator_id: int, args: str) -> str:
    spec = bundles.parse_spec(args)
    if isinstance(spec, bundles.Invalid):
        return problem_text(spec)
    made = await bundles.create(session, creator_id, spec)
    if isinstance(made, bundles.Invalid):
        return problem_text(made)
    return _(
        "📦 Bundle #{id} «{title}» is on sale: {price}. Learners see it on each of "
        "its courses and on your page."
    ).format(id=made.id, title=escape(made.title), price=_price(made, current_locale()))


async def _unpublish_text(session: AsyncSession, creator_id: int, bundle_id: int) -> str:
    bundle = await bundles.unpublish(session, creator_id, bundle_id)
    if bundle is None:
        return _("You have no bundle #{id}.").format(id=bundle_id)
    return _("Bundle #{id} is no longer sold. Those who bought it keep its courses.").format(
        id=bundle_id
    )


# -- a bundle's page ---------------------------------------------------------------------


def _course_line(course: Course, owned: bool, locale: str) -> str:
    from bot.keyboards.menus import price_line

    price = price_line(course.price_minor, course.currency, course.stars_price, locale)
    mark = " ✅ " + _("yours") if owned else ""
    return f"• {escape(course.title)} — {price}{mark}"


def _offer_lines(offer: Offer | OfferProblem, bundle: Bundle, locale: str) -> list[str]:
    if offer == OfferProblem.OWNED:
        return [_("You own every course of this bundle.")]
    if offer == OfferProblem.NOT_WORTH:
        return [
            _(
                "You already own some of these courses: the bundle would not cost you less "
                "than buying the others separately."
            )
        ]
    if not isinstance(offer, Offer):
        return [_("This bundle cannot be bought right now.")]
    full = {"stars": bundle.stars_price, "card": bundle.price_minor, "web": bundle.price_minor}
    lines = [_("Bundle price: {price}").format(price=_price(bundle, locale))]
    if any(q.amount < full.get(q.method, q.amount) for q in offer.quotes):
        prices = sorted({format_money(q.amount, q.currency, locale) for q in offer.quotes})
        lines.append(
            _("Your price, for the courses you do not own yet: {price}").format(
                price=" · ".join(prices)
            )
        )
    return lines


async def bundle_screen(
    session: AsyncSession, user: User, bundle_id: int, settings: Settings, now: datetime
) -> tuple[str, InlineKeyboardMarkup] | None:
    bundle = await session.get(Bundle, bundle_id)
    if bundle is None or not bundle.published:
        return None
    courses = await bundles.members(session, bundle.id)
    locale = current_locale()
    owned = {
        c.id: await access.has_access(session, user.id, ProductKind.COURSE, c.id, now)
        for c in courses
    }
    offer = await make_offer(session, user.id, ProductKind.BUNDLE, bundle.id, settings, now=now)
    lines = [f"📦 <b>{escape(bundle.title)}</b>", ""]
    lines += [_course_line(c, owned[c.id], locale) for c in courses]
    lines += ["", *_offer_lines(offer, bundle, locale)]
    if isinstance(offer, Offer):
        quotes = [(q.method, q.amount, q.currency) for q in offer.quotes]
        markup = methods_keyboard(ProductKind.BUNDLE, bundle.id, quotes, 0, locale)
        rows = list(markup.inline_keyboard)
    else:
        rows = []
    rows += [[callback_button(short_title(c.title), packed_course(c.id))] for c in courses[:8]]
    rows.append([home_button()])
    return clip("\n".join(lines)), InlineKeyboardMarkup(inline_keyboard=rows)


def packed_course(course_id: int) -> str:
    from bot.keyboards.callbacks import CourseCB

    return packed(CourseCB, id=course_id, back=-1, src=0)


@router.callback_query(BundleCB.filter())
async def on_bundle(
    callback: CallbackQuery,
    callback_data: BundleCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    if callback_data.off == 1:
        creator = await get_creator(session, user.id)
        if creator is None:
            await callback.answer(_("This button is no longer valid."), show_alert=True)
            return
        await callback.answer(await _unpublish_text(session, creator.id, callback_data.id))
        await show(callback, *await _creator_list(session, creator.id))
        return
    if callback_data.off != 0:
        await callback.answer(_("This button is no longer valid."), show_alert=True)
        return
    screen = await bundle_screen(session, user, callback_data.id, settings, clock.now())
    if screen is None:
        await callback.answer(_("This bundle is no longer on sale."), show_alert=True)
        return
    await show(callback, *screen)


# -- the other pages' share ----------------------------------------------------------------


def bundle_rows(
    found: Sequence[bundles.Shown],
) -> tuple[list[str], list[list[InlineKeyboardButton]]]:
    """A course card's "Also in bundle …" lines and buttons (the bundles come with the
    card's other extras, from memory: bot.marketplace.card_extras)."""
    locale = current_locale()
    lines = [
        _("📦 Also in bundle «{title}» — {price}").format(
            title=escape(b.title), price=_price(b, locale)
        )
        for b in found[:3]
    ]
    rows = [
        [callback_button("📦 " + short_title(b.title), packed(BundleCB, id=b.id, off=0))]
        for b in found[:3]
    ]
    return lines, rows


async def creator_bundle_rows(
    session: AsyncSession, creator_id: int
) -> tuple[list[str], list[list[InlineKeyboardButton]]]:
    """A creator page's bundles."""
    found = await bundles.of_creator(session, creator_id, published_only=True)
    locale = current_locale()
    lines = [f"• {escape(b.title)} — {_price(b, locale)}" for b in found]
    rows = [
        [callback_button("📦 " + short_title(b.title), packed(BundleCB, id=b.id, off=0))]
        for b in found[:5]
    ]
    return lines, rows
