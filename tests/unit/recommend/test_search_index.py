from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.recommend import CourseDoc, SearchHit, SearchIndex
from bot.recommend import search as search_module
from bot.recommend.search import BruteForce


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
    assert ids(BruteForce(catalog).search("python", limit=3))


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


def test_a_short_rare_word_is_found_among_many_courses() -> None:
    # The first stage looks words up, it does not cut by n-gram overlap: one course in
    # 20,000 with a three-letter word is still found, and a four-letter word with a typo.
    rng = random.Random(5)
    common = ["learn", "python", "data", "design", "basics", "advanced", "course", "guide"]
    docs = [CourseDoc(i, " ".join(rng.sample(common, 3))) for i in range(1, 20_001)]
    docs += [CourseDoc(30_001, "Zig Systems Programming"), CourseDoc(30_002, "Java Basics")]
    index = SearchIndex.build(docs)
    assert ids(index.search("zig"))[0] == 30_001
    assert ids(index.search("jvaa basics"))[0] == 30_002  # a swap is one edit


def test_tags_never_cost_a_course_its_place() -> None:
    tagged = CourseDoc(1, "Python Basics", tags=("cooking", "travel", "history", "art"))
    plain = CourseDoc(2, "Python Basics Extra")
    index = SearchIndex.build([tagged, plain])
    assert ids(index.search("pyton basics")) == [1, 2]
    # A tag still finds a course whose title does not have the word, below title matches.
    assert ids(SearchIndex.build([tagged, plain]).search("cooking")) == [1]


def test_an_exact_title_wins_and_repeated_words_are_kept() -> None:
    docs = [
        CourseDoc(1, "Python, Python!"),
        CourseDoc(2, "Python"),
        CourseDoc(3, "Python Python Python Pro"),
    ]
    index = SearchIndex.build(docs)
    assert ids(index.search("python python"))[0] == 1
    assert ids(index.search("PYTHON"))[0] == 2
    assert index.search("python python")[0].score == 100.0


def test_in_order_and_title_start_rank_higher() -> None:
    docs = [
        CourseDoc(1, "Learning Machine Design"),
        CourseDoc(2, "Machine Learning Design"),
        CourseDoc(3, "Design for Machine Learning"),
    ]
    index = SearchIndex.build(docs)
    assert ids(index.search("machine learning"))[0] == 2


def test_the_learners_language_first_unless_clearly_better() -> None:
    docs = [
        CourseDoc(1, "Python 编程入门", language="zh"),
        CourseDoc(2, "Python for Beginners", language="en"),
    ]
    index = SearchIndex.build(docs)
    assert ids(index.search("python", language="zh")) == [1, 2]
    assert ids(index.search("python", language="en")) == [2, 1]
    assert ids(index.search("python for beginners", language="zh"))[0] == 2


def test_a_long_chinese_title_is_still_an_exact_match() -> None:
    title = "毕业设计（论文）（材料科学与工程专业方向）"  # more characters than query tokens
    docs = [CourseDoc(1, "毕业设计（论文）（材料科学与工程）"), CourseDoc(2, title)]
    hits = SearchIndex.build(docs).search(title)
    assert hits[0].course_id == 2 and hits[0].score == 100.0
