"""The marketplace's commands and buttons: reviews, creator pages and follows, creators
for you, the catalog by rating; and the scheduler jobs that tell creators and followers.
"""

from __future__ import annotations

import time
from datetime import datetime
from html import escape

from aiogram import F, Router
from aiogram.filters import CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.handlers import commands, views
from bot.handlers.bundles import bundle_rows, creator_bundle_rows
from bot.handlers.common import Command, clip, current_locale, is_private, show
from bot.i18n import pick_locale
from bot.keyboards.callbacks import (
    CourseCB,
    CreatorCB,
    FollowCB,
    MenuAction,
    MenuCB,
    ModerateCB,
    RateCB,
    RatedPageCB,
    VoteCB,
    packed,
)
from bot.keyboards.menus import callback_button, home_button, short_title
from bot.marketplace import matching, profiles, reviews
from bot.marketplace.card_extras import card_extras as card_extras_of
from bot.models import Course, Creator, Job, User
from bot.models.marketplace import Review
from bot.scheduler.clock import Clock
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing
from bot.services import drip
from bot.services.catalog import CatalogPage, CourseCard
from bot.services.search import CatalogSearch
from bot.services.users import get_creator, is_owner

router = Router(name=__name__)

STARS = "★"


class ProfileSteps(StatesGroup):
    photo = State()


# -- the course card's share ------------------------------------------------------------


def stars(rating: float) -> str:
    full = round(rating)
    return STARS * full + "☆" * (5 - full)


async def card_extras(
    session: AsyncSession, search: CatalogSearch, card: CourseCard, now: datetime
) -> tuple[str, list[list[InlineKeyboardButton]]]:
    """The rating lines under a card and its rows of buttons (rate, votes, creator)."""
    extras = await card_extras_of(search).get(session, card.id, now, owned=card.owned)
    summary = extras.reviews
    lines: list[str] = []
    rows: list[list[InlineKeyboardButton]] = []
    if summary.count:
        lines.append(
            _("{stars} {average} ({count} reviews)").format(
                stars=stars(summary.average), average=f"{summary.average:.1f}", count=summary.count
            )
        )
        for shown in summary.top:
            lines.append(f"{STARS}{shown.rating} «{escape(shown.text)}»")
            if shown.reply:
                lines.append("  ↳ " + _("Creator: {reply}").format(reply=escape(shown.reply)))
            rows.append(
                [
                    callback_button(
                        _("👍 Helpful ({n}) #{id}").format(n=shown.helpful, id=shown.id),
                        packed(VoteCB, r=shown.id, k=0),
                    ),
                    callback_button(_("⚠ Report"), packed(VoteCB, r=shown.id, k=1)),
                ]
            )
    else:
        lines.append(_("No reviews yet."))
    if card.owned:
        rows.append([callback_button(_("⭐ Rate this course"), packed(RateCB, c=card.id, r=0))])
    bundle_lines, bundle_buttons = bundle_rows(extras.bundles)
    lines += bundle_lines
    rows += bundle_buttons
    if card.owned:
        from bot.handlers.challenges import card_rows
        from bot.handlers.qa import ask_button_row

        rows.append(ask_button_row(card.id))
        # Owners only: most card views are not theirs, and those ask nothing more.
        rows.extend(card_rows(extras.challenges))
    faq = extras.faq
    if faq:
        from bot.handlers.qa import faq_button_row

        rows.append(faq_button_row(card.id, faq))
    rows.append(
        [
            callback_button(
                _("👤 {name}").format(name=short_title(card.creator_name)),
                packed(CreatorCB, id=card.creator_id),
            )
        ]
    )
    return "\n".join(lines), rows


async def card_screen(
    session: AsyncSession, search: CatalogSearch, card: CourseCard, back: int, now: datetime
) -> tuple[str, InlineKeyboardMarkup]:
    from bot.keyboards.menus import card_keyboard

    extra_text, rows = await card_extras(session, search, card, now)
    text = views.card_text(card, current_locale()) + "\n\n" + extra_text
    return text, card_keyboard(card, back, rows)


# -- reviews ----------------------------------------------------------------------------


def refusal_text(refusal: reviews.Refusal) -> str:
    texts = {
        reviews.Refusal.NO_COURSE: views.course_unavailable(),
        reviews.Refusal.NOT_BUYER: _("Only learners who bought this course can review it."),
        reviews.Refusal.TOO_SOON: _(
            "You can review a course after you have had it for a day. Come back tomorrow!"
        ),
        reviews.Refusal.BAD_RATING: _("A rating is a whole number from 1 to 5."),
        reviews.Refusal.TOO_LONG: _("A review is at most {n} characters.").format(
            n=reviews.MAX_TEXT
        ),
        reviews.Refusal.OWN_COURSE: _("You cannot review your own course."),
    }
    return texts[refusal]


def rating_keyboard(course_id: int) -> InlineKeyboardMarkup:
    row = [callback_button(f"{n}{STARS}", packed(RateCB, c=course_id, r=n)) for n in range(1, 6)]
    return InlineKeyboardMarkup(inline_keyboard=[row, [home_button()]])


def _saved_text(saved: reviews.Saved, course_id: int) -> str:
    head = _("Thank you! Your review is saved.") if saved.created else _("Your review is updated.")
    hint = _("Add or change your words with /review {id} <i>stars</i> <i>text</i>.").format(
        id=course_id
    )
    return f"{head}\n{hint}"


@router.message(Command("review"), is_private)
async def cmd_review(
    message: Message, command: CommandObject, session: AsyncSession, user: User, clock: Clock
) -> None:
    """/review <course> [stars] [text]"""
    parts = (command.args or "").strip().split(maxsplit=2)
    course_id = parsing.record_id(parts[0]) if parts else None
    if course_id is None:
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("review")))
        return
    if len(parts) == 1:
        allowed = await reviews.may_review(session, user.id, course_id, clock.now())
        if isinstance(allowed, reviews.Refusal):
            await message.answer(refusal_text(allowed))
            return
        await message.answer(
            _("How many stars for «{title}»?").format(title=escape(allowed.title)),
            reply_markup=rating_keyboard(course_id),
        )
        return
    rating_arg = parts[1]
    rating = int(rating_arg) if rating_arg.isascii() and rating_arg.isdigit() else 0
    if len(rating_arg) > 2:
        rating = 0
    text = parts[2] if len(parts) > 2 else ""
    saved = await reviews.save_review(session, user.id, course_id, rating, text, clock.now())
    if isinstance(saved, reviews.Refusal):
        await message.answer(refusal_text(saved))
        return
    await message.answer(_saved_text(saved, course_id))


@router.callback_query(RateCB.filter())
async def on_rate(
    callback: CallbackQuery, callback_data: RateCB, session: AsyncSession, user: User, clock: Clock
) -> None:
    if callback_data.r == 0:
        allowed = await reviews.may_review(session, user.id, callback_data.c, clock.now())
        if isinstance(allowed, reviews.Refusal):
            await callback.answer(refusal_text(allowed), show_alert=True)
            return
        await show(
            callback,
            _("How many stars for «{title}»?").format(title=escape(allowed.title)),
            rating_keyboard(callback_data.c),
        )
        return
    # A rating by button keeps the words of an earlier review.
    earlier = await session.scalar(
        select(Review.text).where(Review.user_id == user.id, Review.course_id == callback_data.c)
    )
    saved = await reviews.save_review(
        session, user.id, callback_data.c, callback_data.r, earlier or "", clock.now()
    )
    if isinstance(saved, reviews.Refusal):
        await callback.answer(refusal_text(saved), show_alert=True)
        return
    await show(callback, _saved_text(saved, callback_data.c), None)


@router.callback_query(VoteCB.filter())
async def on_vote(
    callback: CallbackQuery, callback_data: VoteCB, session: AsyncSession, user: User
) -> None:
    if callback_data.k not in (0, 1):
        await callback.answer(_("This button is no longer valid."), show_alert=True)
        return
    kind = reviews.HELPFUL if callback_data.k == 0 else reviews.REPORT
    done = await reviews.vote(session, callback_data.r, user.id, kind)
    if done is None:
        await callback.answer(_("This review is no longer shown."), show_alert=True)
    elif not done:
        await callback.answer(_("You have already done that for this review."))
    elif kind == reviews.HELPFUL:
        await callback.answer(_("Thanks for your vote!"))
    else:
        await callback.answer(_("Thanks, the platform team will have a look."))


@router.message(Command("answer"), is_private)
async def cmd_answer(
    message: Message, command: CommandObject, session: AsyncSession, user: User, clock: Clock
) -> None:
    """/answer <review id> <text>: the creator's one public answer."""
    head, _sep, text = (command.args or "").strip().partition(" ")
    review_id = parsing.record_id(head)
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("Only creators answer reviews. See /becomecreator."))
        return
    if review_id is None or not text.strip():
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("answer")))
        return
    result = await reviews.reply(session, creator.id, review_id, text, clock.now())
    answers = {
        reviews.ReplyResult.OK: _("Your answer is published under the review."),
        reviews.ReplyResult.NOT_FOUND: _("There is no review #{id}.").format(id=review_id),
        reviews.ReplyResult.NOT_YOURS: _("There is no review #{id}.").format(id=review_id),
        reviews.ReplyResult.ALREADY: _("You have already answered this review."),
        reviews.ReplyResult.TOO_LONG: _("An answer is at most {n} characters.").format(
            n=reviews.MAX_REPLY
        ),
        reviews.ReplyResult.EMPTY: _("Usage: {usage}").format(usage=commands.usage("answer")),
    }
    await message.answer(answers[result])


@router.message(Command("hidereview"), is_private)
async def cmd_hide(
    message: Message, command: CommandObject, session: AsyncSession, user: User, settings: Settings
) -> None:
    """/hidereview <review id> [off]: platform owners only."""
    if not is_owner(user.id, settings.admin_ids):
        await message.answer(_("Only platform owners can hide reviews."))
        return
    parts = (command.args or "").split()
    review_id = parsing.record_id(parts[0]) if parts else None
    if review_id is None or len(parts) > 2 or (len(parts) == 2 and parts[1] != "off"):
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("hidereview")))
        return
    review = await reviews.set_hidden(session, review_id, len(parts) == 1)
    if review is None:
        await message.answer(_("There is no review #{id}.").format(id=review_id))
    elif review.hidden:
        await message.answer(_("Review #{id} is hidden.").format(id=review_id))
    else:
        await message.answer(_("Review #{id} is shown again.").format(id=review_id))


def owners_only() -> str:
    return _("Sorry, only platform owners moderate reviews.")


async def reported_screen(session: AsyncSession) -> tuple[str, InlineKeyboardMarkup]:
    found = await reviews.reported(session)
    if not found:
        return _("No reported reviews: nothing to look at."), InlineKeyboardMarkup(
            inline_keyboard=[[home_button()]]
        )
    lines = [_("⚠ Reported reviews, most reported first:"), ""]
    rows: list[list[InlineKeyboardButton]] = []
    for r in found:
        lines.append(
            _("#{id} · {reports} reports · «{course}» {stars}").format(
                id=r.id, reports=r.reports, course=escape(r.course_title), stars=STARS * r.rating
            )
        )
        lines.append(f"  {escape(r.text) or '—'}")
        rows.append(
            [
                callback_button(
                    _("🙈 Hide #{id}").format(id=r.id), packed(ModerateCB, r=r.id, a=1)
                ),
                callback_button(
                    _("✅ Keep #{id}").format(id=r.id), packed(ModerateCB, r=r.id, a=0)
                ),
            ]
        )
    rows.append([home_button()])
    return clip("\n".join(lines)), InlineKeyboardMarkup(inline_keyboard=rows)


@router.message(Command("reported"), is_private)
async def cmd_reported(
    message: Message, session: AsyncSession, user: User, settings: Settings
) -> None:
    """Platform owners: the reported reviews, with Hide / Keep under each."""
    if not is_owner(user.id, settings.admin_ids):
        await message.answer(owners_only())
        return
    text, markup = await reported_screen(session)
    await message.answer(text, reply_markup=markup)


@router.callback_query(ModerateCB.filter())
async def on_moderate(
    callback: CallbackQuery,
    callback_data: ModerateCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
) -> None:
    if not is_owner(user.id, settings.admin_ids):
        await callback.answer(owners_only(), show_alert=True)
        return
    if callback_data.a not in (0, 1):
        await callback.answer(_("This button is no longer valid."), show_alert=True)
        return
    if callback_data.a == 1:
        review = await reviews.set_hidden(session, callback_data.r, True)
        note = _("Review #{id} is hidden.")
    else:
        review = await reviews.keep(session, callback_data.r)
        note = _("Review #{id} stays; its reports are cleared.")
    if review is None:
        await callback.answer(
            _("There is no review #{id}.").format(id=callback_data.r), show_alert=True
        )
        return
    await callback.answer(note.format(id=callback_data.r))
    await show(callback, *await reported_screen(session))


# -- the catalog by rating --------------------------------------------------------------


@router.callback_query(RatedPageCB.filter())
async def on_rated_page(
    callback: CallbackQuery,
    callback_data: RatedPageCB,
    session: AsyncSession,
    settings: Settings,
    search: CatalogSearch,
) -> None:
    snapshot = await search.snapshot(session)
    scores = await reviews.ratings(search).scores(session, time.monotonic())
    order = reviews.rank_by_rating([s.id for s in snapshot.summaries], scores)
    size = settings.catalog_page_size
    pages = max(1, -(-len(order) // size))
    number = min(max(callback_data.page, 0), pages - 1)
    items = [snapshot.by_id[i] for i in order[number * size : (number + 1) * size]]
    page = CatalogPage(items=items, page=number, pages=pages, total=len(order))
    locale = current_locale()
    lines = [_("⭐ Top rated — page {page} of {pages}").format(page=number + 1, pages=pages), ""]
    for item in items:
        line = views.summary_line(item, locale)
        if item.id in scores:
            n, mean, _b = scores[item.id]
            line += f" · {STARS}{mean:.1f} ({n})"
        lines.append(line)
    if not items:
        lines = [_("The catalog is empty for now. Please come back soon.")]
    rows = [
        [callback_button(short_title(i.title), packed(CourseCB, id=i.id, back=-1, src=0))]
        for i in page.items
    ]
    nav = []
    if number > 0:
        nav.append(callback_button("◀", packed(RatedPageCB, page=number - 1)))
    if number < pages - 1:
        nav.append(callback_button("▶", packed(RatedPageCB, page=number + 1)))
    if nav:
        rows.append(nav)
    rows.append([home_button()])
    await show(callback, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows))


# -- creator pages and follows ----------------------------------------------------------


def profile_text(p: profiles.Profile, bundle_lines: list[str] | None = None) -> str:
    lines = [f"👤 <b>{escape(p.name)}</b>"]
    if p.bio:
        lines.append(escape(p.bio))
    lines.append("")
    if p.reviews:
        lines.append(
            _("{stars} {average} ({count} reviews)").format(
                stars=stars(p.average), average=f"{p.average:.1f}", count=p.reviews
            )
        )
    lines.append(_("Learners: {n} · Followers: {f}").format(n=p.learners, f=p.followers))
    if p.courses:
        lines += ["", _("📚 Courses:")]
        lines += [f"• {escape(c.title)} — /course {c.id}" for c in p.courses]
    if p.plans:
        lines += ["", _("👥 Plans:")]
        lines += [f"• {escape(c.title)}" for c in p.plans]
    if bundle_lines:
        lines += ["", _("📦 Bundles:"), *bundle_lines]
    if not p.courses and not p.plans:
        lines += ["", _("Nothing on sale yet.")]
    return clip("\n".join(lines))


async def profile_screen(
    session: AsyncSession, user: User, creator_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    p = await profiles.profile(session, creator_id)
    if p is None:
        return None
    rows = [
        [callback_button(short_title(c.title), packed(CourseCB, id=c.id, back=-1, src=0))]
        for c in p.courses[:8]
    ]
    bundle_lines, bundle_buttons = await creator_bundle_rows(session, creator_id)
    rows += bundle_buttons
    own = await session.get(Creator, creator_id)
    if own is not None and own.user_id != user.id:
        if await profiles.is_following(session, user.id, creator_id):
            rows.append([callback_button(_("🔕 Unfollow"), packed(FollowCB, id=creator_id, on=0))])
        else:
            rows.append([callback_button(_("🔔 Follow"), packed(FollowCB, id=creator_id, on=1))])
    rows.append([home_button()])
    return profile_text(p, bundle_lines), InlineKeyboardMarkup(inline_keyboard=rows)


def creator_unknown() -> str:
    return _("There is no such creator.")


async def send_profile(
    message: Message, session: AsyncSession, user: User, creator_id: int
) -> None:
    screen = await profile_screen(session, user, creator_id)
    if screen is None:
        await message.answer(creator_unknown())
        return
    text, markup = screen
    p = await session.get(Creator, creator_id)
    if p is not None and p.photo_file_id and len(text) <= 1000:
        await message.answer_photo(p.photo_file_id, caption=text, reply_markup=markup)
    else:
        await message.answer(text, reply_markup=markup)


@router.message(Command("creator"), is_private)
async def cmd_creator(
    message: Message, command: CommandObject, session: AsyncSession, user: User
) -> None:
    creator_id = parsing.record_id((command.args or "").strip())
    if creator_id is None:
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("creator")))
        return
    await send_profile(message, session, user, creator_id)


@router.callback_query(CreatorCB.filter())
async def on_creator(
    callback: CallbackQuery, callback_data: CreatorCB, session: AsyncSession, user: User
) -> None:
    screen = await profile_screen(session, user, callback_data.id)
    if screen is None:
        await callback.answer(creator_unknown(), show_alert=True)
        return
    await show(callback, *screen)


@router.callback_query(FollowCB.filter())
async def on_follow(
    callback: CallbackQuery, callback_data: FollowCB, session: AsyncSession, user: User
) -> None:
    if callback_data.on == 1:
        done = await profiles.follow(session, user.id, callback_data.id)
        if done is None:
            await callback.answer(creator_unknown(), show_alert=True)
            return
        await callback.answer(_("You follow this creator: we'll tell you about new courses."))
    elif callback_data.on == 0:
        await profiles.unfollow(session, user.id, callback_data.id)
        await callback.answer(_("You no longer follow this creator."))
    else:
        await callback.answer(_("This button is no longer valid."), show_alert=True)
        return
    screen = await profile_screen(session, user, callback_data.id)
    if (
        screen is not None
        and callback.message is not None
        and getattr(callback.message, "text", None)
    ):
        await show(callback, *screen)


@router.message(Command("profile"), is_private)
async def cmd_profile(
    message: Message, command: CommandObject, session: AsyncSession, user: User, state: FSMContext
) -> None:
    """/profile bio <text> | /profile photo (then a photo) | /profile photo off"""
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("Profiles are for creators. See /becomecreator."))
        return
    field, _sep, value = (command.args or "").strip().partition(" ")
    if field == "bio" and value.strip():
        if not await profiles.set_bio(session, creator, value):
            await message.answer(_("A bio is at most {n} characters.").format(n=profiles.MAX_BIO))
            return
        await message.answer(
            _("Your bio is saved. See your page: /creator {id}").format(id=creator.id)
        )
    elif field == "photo" and value.strip() == "off":
        await profiles.set_photo(session, creator, None)
        await message.answer(_("Your photo is removed."))
    elif field == "photo" and not value:
        await state.set_state(ProfileSteps.photo)
        await message.answer(_("Send me the photo for your page (or /cancel)."))
    else:
        await message.answer(
            _("Usage: {usage}").format(usage=commands.usage("profile"))
            + "\n"
            + _("Your page: /creator {id}").format(id=creator.id)
        )


@router.message(StateFilter(ProfileSteps.photo))
async def on_profile_photo(
    message: Message, session: AsyncSession, user: User, state: FSMContext
) -> None:
    if not message.photo:
        await message.answer(_("Send me the photo for your page (or /cancel)."))
        return
    creator = await get_creator(session, user.id)
    await state.clear()
    if creator is None:
        return
    await profiles.set_photo(session, creator, message.photo[-1].file_id)
    await message.answer(
        _("Your photo is saved. See your page: /creator {id}").format(id=creator.id)
    )


# -- creators for you -------------------------------------------------------------------


async def creators_screen(
    session: AsyncSession, user: User, search: CatalogSearch
) -> tuple[str, InlineKeyboardMarkup]:
    follows = await profiles.followed(session, user.id)
    found = await matching.creators_for(session, user.id, 5, catalog=search, follows=follows)
    rows = [
        [callback_button("👤 " + short_title(c.name), packed(CreatorCB, id=c.id))] for c in found
    ]
    rows.append([home_button()])
    if not found:
        text = _("No creators to suggest yet. Browse the catalog and come back!")
    else:
        text = _("🧑‍🏫 Creators for you, from your interests and what you learn:")
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


@router.message(Command("creators"), is_private)
async def cmd_creators(
    message: Message, session: AsyncSession, user: User, search: CatalogSearch
) -> None:
    text, markup = await creators_screen(session, user, search)
    await message.answer(text, reply_markup=markup)


@router.callback_query(MenuCB.filter(F.action == MenuAction.CREATORS))
async def on_creators(
    callback: CallbackQuery, session: AsyncSession, user: User, search: CatalogSearch
) -> None:
    await show(callback, *await creators_screen(session, user, search))


# -- the scheduler's jobs ---------------------------------------------------------------


def install(registry: JobRegistry, i18n: I18n, settings: Settings) -> None:
    """The review notice to creators, and the new-course notice to followers."""
    reviews.install()

    def locale_of(user: User | None) -> str:
        if user is None:
            return settings.default_language
        return pick_locale(user.language, user.language_code, settings.default_language)

    async def send(ctx: JobContext, chat_id: int, message: Outgoing) -> None:
        try:
            await ctx.sender.send(chat_id, message)
        except (Unreachable, ChatNotFound, Rejected) as exc:
            import logging

            logging.getLogger(__name__).warning("notice to %s dropped: %s", chat_id, exc)

    async def review_notice(ctx: JobContext, job: Job) -> datetime | None:
        review = await ctx.session.get(Review, int(job.payload["review_id"]))
        if review is None:
            return None
        creator = await ctx.session.get(Creator, review.creator_id)
        course = await ctx.session.get(Course, review.course_id)
        if creator is None or course is None:
            return None
        owner = await ctx.session.get(User, creator.user_id)
        locale = locale_of(owner)
        with i18n.use_locale(locale):
            text = _(
                "New review of «{title}»: {stars}\n{text}\n\nAnswer it once, publicly: "
                "/answer {id} <i>your answer</i>"
            ).format(
                title=escape(course.title),
                stars=STARS * review.rating,
                text=escape(review.text) or "—",
                id=review.id,
            )
        await send(ctx, creator.user_id, Outgoing(text=text))
        return None

    async def fan_out(ctx: JobContext, job: Job) -> datetime | None:
        from sqlalchemy import insert

        from bot.models import JobStatus

        course_id = int(job.payload["course_id"])
        now = ctx.clock.now()
        rows = []
        for follower in await profiles.followers(ctx.session, int(job.payload["creator_id"])):
            at = drip.out_of_quiet_hours(now, drip.Prefs.of(follower))
            rows.append(
                {
                    "kind": profiles.NEW_COURSE_NOTICE,
                    "dedupe_key": f"mk.nf:{course_id}:{follower.id}",
                    "payload": {"course_id": course_id, "user_id": follower.id},
                    "run_at": at,
                    "status": JobStatus.PENDING,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if rows:
            await ctx.session.execute(insert(Job), rows)
        return None

    async def follower_notice(ctx: JobContext, job: Job) -> datetime | None:
        user = await ctx.session.get(User, int(job.payload["user_id"]))
        course = await ctx.session.get(Course, int(job.payload["course_id"]))
        if user is None or user.is_blocked or course is None or not course.published:
            return None
        if not await profiles.is_following(ctx.session, user.id, course.creator_id):
            return None  # unfollowed since
        now = ctx.clock.now()
        later = drip.out_of_quiet_hours(now, drip.Prefs.of(user))
        if later > now:
            return later  # quiet hours began since the fan-out: wait for their end
        creator = await ctx.session.get(Creator, course.creator_id)
        name = creator.display_name if creator is not None else ""
        with i18n.use_locale(locale_of(user)):
            text = _("🆕 {creator} published a new course: «{title}»").format(
                creator=escape(name), title=escape(course.title)
            )
            buttons = (
                (Button(_("📖 Open"), packed(CourseCB, id=course.id, back=-1, src=0)),),
                (Button(_("🔕 Unfollow"), packed(FollowCB, id=course.creator_id, on=0)),),
            )
        await send(ctx, user.id, Outgoing(text=text, buttons=buttons))
        return None

    registry.register(reviews.REVIEW_NOTICE, review_notice)
    registry.register(profiles.NEW_COURSE, fan_out)
    registry.register(profiles.NEW_COURSE_NOTICE, follower_notice)
