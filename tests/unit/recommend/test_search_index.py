from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.recommend import CourseDoc, SearchHit, SearchIndex
from bot.recommend import search as search_module


def ids(hits: list[SearchHit]) -> list[int]:
    return [h.course_id for h in hits]


def test_exact_title_comes_first(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    assert len(index) == len(catalog)
    assert ids(index.search("UI Design Basics"))[0] == 5


def test_english_typo_is_forgiven(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    assert set(ids(index.search("pyhton", limit=4))) <= {1, 2, 3, 16}
    assert 1 in ids(index.search("pyhton begginers", limit=3))
    assert ids(index.search("machne lerning"))[0] == 4


def test_chinese_query_with_a_typo_finds_the_chinese_course(
    catalog: tuple[CourseDoc, ...],
) -> None:
    index = SearchIndex.build(catalog)
    # 器 → 气: a homophone typo a pinyin keyboard makes.
    assert ids(index.search("机气学习"))[0] == 9
    assert ids(index.search("数据分晰"))[0] == 10
    assert ids(index.search("吉他"))[0] == 12


def test_tags_are_searched(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    assert 7 in ids(index.search("social media"))


def test_full_width_and_case_are_normalised(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    assert ids(index.search("ＦＩＧＭＡ"))[0] == 6


def test_nothing_reasonable_gives_an_empty_list(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    assert index.search("xyzzy qwq") == []
    assert index.search("") == []
    assert index.search("   !!! ") == []
    assert SearchIndex.build([]).search("python") == []


def test_scores_are_bounded_and_sorted(catalog: tuple[CourseDoc, ...]) -> None:
    hits = SearchIndex.build(catalog).search("data", limit=10)
    assert hits
    assert all(0 <= h.score <= 100 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_limit_is_respected(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    assert len(index.search("python", limit=2)) == 2
    assert index.search("python", limit=0) == []


def test_results_do_not_depend_on_input_order(catalog: tuple[CourseDoc, ...]) -> None:
    shuffled = list(catalog)
    random.Random(7).shuffle(shuffled)
    a, b = SearchIndex.build(catalog), SearchIndex.build(shuffled)
    for q in ("python", "数据", "design", "gitar"):
        assert a.search(q) == b.search(q)


def test_the_candidate_cut_loses_nothing_on_a_larger_catalog(
    catalog: tuple[CourseDoc, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2,000 look-alike titles bury the real ones: the first stage must still hand the
    # right courses to the ranking stage, as scoring every course would.
    rng = random.Random(3)
    words = [
        "python",
        "data",
        "design",
        "guitar",
        "basics",
        "advanced",
        "learning",
        "web",
        "course",
        "intro",
    ]
    filler = [
        CourseDoc(1000 + i, " ".join(rng.sample(words, 3)), tags=(rng.choice(words),))
        for i in range(2000)
    ]
    index = SearchIndex.build([*catalog, *filler])
    queries = ("pyhton begginers", "machne lerning", "guitar ch", "数据分晰", "UI Design Basics")
    fast = [ids(index.search(q, limit=3)) for q in queries]
    monkeypatch.setattr(search_module, "CANDIDATES", 10**9)
    assert fast == [ids(index.search(q, limit=3)) for q in queries]
    assert fast[0][0] == 1 and fast[1][0] == 4 and fast[2][0] == 13 and fast[3][0] == 10


def test_brute_force_reference_still_answers(catalog: tuple[CourseDoc, ...]) -> None:
    # The previous WRatio search, kept as the benchmark's baseline.
    assert ids(SearchIndex.build(catalog).brute_force("python", limit=3))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_query_is_safe(query: str) -> None:
    index = SearchIndex.build([CourseDoc(1, "Python"), CourseDoc(2, "数据")])
    hits = index.search(query)
    assert all(h.course_id in (1, 2) for h in hits)


def test_a_half_typed_last_word_still_narrows(catalog: tuple[CourseDoc, ...]) -> None:
    # Inline mode sees every keystroke: "guitar c" is on its way to "guitar chords".
    index = SearchIndex.build(catalog)
    assert ids(index.search("guitar c"))[0] == 13
    assert ids(index.search("python w"))[0] == 16


def test_long_queries_are_bounded(catalog: tuple[CourseDoc, ...]) -> None:
    index = SearchIndex.build(catalog)
    query = "python data design marketing finance guitar 机器学习 数据分析 " * 20
    hits = index.search(query, limit=5)
    assert len(hits) <= 5
