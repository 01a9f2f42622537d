"""Texts of the learner's screens. Everything a creator or user typed is HTML-escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from aiogram.utils.i18n import gettext as _

from bot.keyboards.menus import price_line, topic_label
from bot.services.catalog import CatalogPage, CourseCard, CourseSummary, LibraryItem
from bot.services.drip import CourseProgress, local_time
from bot.services.groups import HeldPlan
from bot.text import shorten

CARD_DESCRIPTION_CHARS = 3000


def welcome_new(name: str) -> str:
    return _(
        "Welcome to Lyceum, {name}! 👋\n"
        "Courses, lessons and paid communities, right here in the chat.\n\n"
        "First, choose your language:"
    ).format(name=escape(name))


def choose_interests() -> str:
    return _("What would you like to learn? Pick any topics, then press Done.")


def menu_text(name: str) -> str:
    return _("Hello, {name}! What would you like to do?").format(name=escape(name))


def all_set(interests: list[str]) -> str:
    if not interests:
        return _("You're all set. Browse the catalog or search for a course.")
    topics = ", ".join(topic_label(k) for k in interests)
    return _("You're all set. We'll suggest courses about: {topics}.").format(topics=topics)


def catalog_text(page: CatalogPage, locale: str) -> str:
    if page.total == 0:
        return _("The catalog is empty for now. Please come back soon.")
    lines = [
        _("📚 Catalog — page {page} of {pages}").format(page=page.page + 1, pages=page.pages),
        "",
    ]
    for item in page.items:
        lines.append(summary_line(item, locale))
    return "\n".join(lines)


def language_flag(language: str) -> str:
    """Every list marks each course's language: cross-language matches stand out."""
    return "🇨🇳" if language == "zh" else "🇬🇧"


def summary_line(item: CourseSummary, locale: str) -> str:
    flag = language_flag(item.language)
    price = price_line(item.price_minor, item.currency, item.stars_price, locale)
    return f"{flag} <b>{escape(item.title)}</b> — {price}"


def card_text(card: CourseCard, locale: str) -> str:
    description = shorten(card.description, CARD_DESCRIPTION_CHARS)
    lines = [
        f"<b>{escape(card.title)}</b>",
        _("by {creator}").format(creator=escape(card.creator_name)),
        "",
        escape(description),
        "",
        _("Price: {price}").format(
            price=price_line(card.price_minor, card.currency, card.stars_price, locale)
        ),
        _("Lessons: {count}").format(count=card.lesson_count),
    ]
    if card.tags:
        lines.append(" ".join("#" + escape(t.replace(" ", "_")) for t in card.tags[:8]))
    if card.owned:
        lines += ["", _("✅ You own this course. Find it in /my.")]
    return "\n".join(lines)


def course_unavailable() -> str:
    return _("This course is not available. It may have been removed or unpublished.")


def search_results(query: str, items: list[CourseSummary], locale: str) -> str:
    lines = [_("🔎 Results for «{query}»:").format(query=escape(query)), ""]
    lines += [summary_line(item, locale) for item in items]
    return "\n".join(lines)


def nothing_found(query: str) -> str:
    return _("Nothing found for «{query}». Try other words, or browse the catalog.").format(
        query=escape(query)
    )


def search_prompt() -> str:
    return _("Send me a few words about what you want to learn, e.g. “python” or “设计”.")


def library_text(
    items: list[LibraryItem],
    progress: dict[int, CourseProgress] | None = None,
    plans: Sequence[HeldPlan] = (),
) -> str:
    if not items and not plans:
        return _(
            "Your library is empty. Open a course in the catalog and press Buy; "
            "paid courses appear here and their lessons arrive in this chat."
        )
    lines = [_("🎒 Your library:"), ""]
    for item in items:
        lines.append(_held_line(item.title, item.expires_at))
        p = (progress or {}).get(item.course_id)
        if p is not None and p.total:
            lines.append("  " + progress_line(p))
    if plans:
        if items:
            lines.append("")
        lines.append(_("👥 Your plans:"))
        lines.extend(_held_line(plan.title, plan.expires_at) for plan in plans)
        lines.append(
            _(
                "Your personal invite link came in this chat; the 🔗 button below sends a "
                "new one. Renewal and cancelling: /subscriptions"
            )
        )
    return "\n".join(lines)


def _held_line(title: str, expires_at: datetime | None) -> str:
    if expires_at is None:
        return f"• <b>{escape(title)}</b>"
    until = _("until {date}").format(date=expires_at.strftime("%Y-%m-%d"))
    return f"• <b>{escape(title)}</b> ({until})"


def progress_line(p: CourseProgress) -> str:
    line = _("{done} of {total} done").format(done=p.done, total=p.total)
    if p.completed:
        return line + " · " + _("completed 🎉")
    if p.paused:
        return line + " · " + _("paused")
    if p.next_at is not None:
        return line + " · " + _("next lesson on {date}").format(date=local_time(p.next_at, p.tz))
    return line
