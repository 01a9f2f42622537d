from __future__ import annotations

from bot.services.authoring import LESSON_TITLE_CHARS, LessonContent, lesson_title
from bot.text import shorten


def test_short_text_is_left_alone() -> None:
    assert shorten("SQL in 10 days", 14) == "SQL in 10 days"
    assert shorten("", 5) == ""


def test_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    assert shorten("Introduction to relational databases", 20) == "Introduction to…"
    # A comma or dash before the cut does not stay in front of the ellipsis.
    assert shorten("Joins, windows and more", 10) == "Joins…"
    assert shorten("Part one — the basics", 12) == "Part one…"
    # The limit counts the ellipsis.
    assert len(shorten("word " * 40, 24)) <= 24


def test_one_long_word_is_cut_inside() -> None:
    assert shorten("Supercalifragilisticexpialidocious", 10) == "Supercali…"
    # A space too early would keep almost nothing: cut the long word instead.
    assert shorten("A Supercalifragilisticexpialidocious", 12) == "A Supercali…"


def test_cjk_is_cut_at_a_character() -> None:
    assert shorten("数据库系统原理与实践入门", 6) == "数据库系统…"
    # Mixed: a Latin word is kept whole, Chinese may break anywhere.
    assert shorten("Python 数据分析入门教程", 12) == "Python 数据分析…"
    assert shorten("学习Python编程基础", 9) == "学习Python…"
    assert shorten("学习Python编程基础", 6) == "学习Pyt…"  # too little before the word


def test_lesson_titles_end_at_a_word() -> None:
    text = "Welcome to the course! " * 6 + "\nSecond line"
    title = lesson_title(LessonContent("text", text=text), 1)
    assert len(title) <= LESSON_TITLE_CHARS and title.endswith(" Welcome to…")
    assert text.startswith(title[:-1] + " ")
    zh = lesson_title(LessonContent("text", text="欢" * 100), 1)
    assert zh == "欢" * (LESSON_TITLE_CHARS - 1) + "…"
    # Only the first line, tags stripped and entities read.
    assert lesson_title(LessonContent("photo", caption="<b>Joins &amp; keys</b>\nmore"), 2) == (
        "Joins & keys"
    )
    assert lesson_title(LessonContent("voice"), 3) == "#3"
