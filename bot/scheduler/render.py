"""How scheduled messages look. The app passes an i18n-aware renderer built on the bot's
catalogs (bot/keyboards/learning.py); this plain English one serves tests and benchmarks."""

from __future__ import annotations

from dataclasses import replace
from html import escape
from typing import Protocol

from bot.scheduler.sender import Button, Outgoing
from bot.services.drip import LessonView


class Renderer(Protocol):
    def lesson(self, view: LessonView) -> Outgoing: ...

    def broadcast_progress(
        self,
        locale: str,
        sent: int,
        failed: int,
        total: int,
        eta_seconds: float,
        finished: bool,
        left: int = 0,
        cancelled: int = 0,
        stopped: bool = False,
        cost_tenths: int | None = None,
        no_stars: int = 0,
    ) -> str: ...

    def broadcast_stop_label(self, locale: str) -> str: ...


def lesson_heading(view: LessonView, label: str) -> str:
    title = f" · {escape(view.lesson_title)}" if view.lesson_title else ""
    return f"<b>{escape(view.course_title)}</b>\n{label}{title}"


def lesson_message(view: LessonView, heading: str, buttons: tuple[Button, ...]) -> Outgoing:
    if view.kind == "text" or not view.file_id:
        body = view.text or ""
        return Outgoing(
            kind="text",
            text=f"{heading}\n\n{body}" if body else heading,
            protect_content=view.protect_content,
            buttons=(buttons,),
        )
    caption = view.caption or ""
    return Outgoing(
        kind=view.kind,
        file_id=view.file_id,
        caption=f"{heading}\n\n{caption}" if caption else heading,
        protect_content=view.protect_content,
        buttons=(buttons,),
    )


class PlainRenderer:
    def lesson(self, view: LessonView) -> Outgoing:
        heading = lesson_heading(view, f"Lesson {view.number} of {view.total}")
        if view.kind == "quiz":
            quiz = replace(view, text="A quiz: answer the questions to finish this lesson.")
            start = (
                Button("▶️ Start the quiz", f"qs:{view.delivery_id}:p"),
                Button("🔘 With buttons", f"qs:{view.delivery_id}:b"),
            )
            return lesson_message(quiz, heading, start)
        buttons = (
            Button("✅ Done", f"ls:done:{view.delivery_id}"),
            Button("Next ▶", f"ls:next:{view.delivery_id}"),
        )
        return lesson_message(view, heading, buttons)

    def broadcast_progress(
        self,
        locale: str,
        sent: int,
        failed: int,
        total: int,
        eta_seconds: float,
        finished: bool,
        left: int = 0,
        cancelled: int = 0,
        stopped: bool = False,
        cost_tenths: int | None = None,
        no_stars: int = 0,
    ) -> str:
        skipped = f" {left} no longer enrolled, skipped." if left else ""
        if cost_tenths is not None:
            skipped += f" Paid broadcast: {cost_tenths / 10:.1f} Stars so far."
        if no_stars:
            skipped += f" {no_stars} refused: the bot's Stars balance ran out."
        if stopped:
            return (
                f"Broadcast stopped: {sent} sent, {failed} skipped (blocked the bot or "
                f"unreachable), {cancelled} cancelled.{skipped}"
            )
        if finished:
            return (
                f"Broadcast finished: {sent} of {total} delivered, {failed} unreachable.{skipped}"
            )
        return (
            f"Broadcast: {sent} of {total} sent, {failed} unreachable, "
            f"about {eta_seconds:.0f}s left.{skipped}"
        )

    def broadcast_stop_label(self, locale: str) -> str:
        return "⏹ Stop"
