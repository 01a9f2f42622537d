"""The learner's-language rules and the cross-language query expansion (pure)."""

from __future__ import annotations

from bot.recommend.crosslang import CROSS_WEIGHT, merge, translate
from bot.recommend.language import (
    RECOMMEND_MARGIN,
    by_places,
    merge_by_margin,
    same_language_first,
)
from bot.recommend.search import LANGUAGE_MARGIN, SearchHit

LANG = {1: "en", 2: "zh", 3: "en", 4: "zh", 5: "en"}


def lang(item: int) -> str:
    return LANG[item]


def test_same_language_first_keeps_each_part_in_order() -> None:
    assert same_language_first([1, 2, 3, 4, 5], lang, "zh") == [2, 4, 1, 3, 5]
    assert same_language_first([1, 2, 3, 4, 5], lang, "en") == [1, 3, 5, 2, 4]
    assert same_language_first([1, 2, 3], lang, None) == [1, 2, 3]  # "both languages"


def test_recommend_margin() -> None:
    items, scores = [1, 2, 3], [1.0, 0.6, 0.5]
    # Li (zh): the English course at 1.0 is not clearly better than 0.6; it is than 0.4.
    assert merge_by_margin(items, scores, lang, "zh", RECOMMEND_MARGIN) == [2, 1, 3]
    assert merge_by_margin([1, 2], [1.0, 0.4], lang, "zh", RECOMMEND_MARGIN) == [1, 2]
    assert merge_by_margin([1, 2], [1.0, 0.0], lang, "zh", RECOMMEND_MARGIN) == [1, 2]
    assert merge_by_margin(items, scores, lang, None, RECOMMEND_MARGIN) == items
    assert merge_by_margin([], [], lang, "zh", RECOMMEND_MARGIN) == []


def test_similar_places() -> None:
    # An English course leads for Li only when it ranked more than 5 places higher.
    assert by_places([1, 3, 5, 1, 3, 2], lang, "zh")[0] == 2
    assert by_places([1, 3, 5, 1, 3, 5, 4], lang, "zh")[:2] == [1, 4]


def test_translate_both_ways() -> None:
    assert translate("机器学习") == "machine learning"
    assert translate("Machine learning") == "机器学习"
    assert translate("learn personal finance") == "理财"
    assert translate("python") == ""  # the same word in both scripts
    for bad in ("", "   ", "🐍🐍", "x" * 1000, "'; DROP TABLE users; --", ".*[("):
        assert translate(bad) == ""
    assert len(translate("data " * 300).split()) <= 4


def test_merge_weighs_translations_lower_and_keeps_the_language_rule() -> None:
    own = [SearchHit(1, 90.0)]
    translated = [SearchHit(2, 100.0), SearchHit(1, 100.0)]
    hits = merge(own, translated, LANG.get, None, 10)
    assert [(h.course_id, h.score) for h in hits] == [(1, 90.0), (2, 100.0 * CROSS_WEIGHT)]
    # Ann (en): course 2 (zh) is 80 - margin; Li (zh): course 1 (en) is 90 - margin.
    assert [h.course_id for h in merge(own, translated, LANG.get, "zh", 10)] == [2, 1]
    assert 90.0 - LANGUAGE_MARGIN < 100.0 * CROSS_WEIGHT
