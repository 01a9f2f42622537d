from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.recommend import CourseDoc, Interaction, Profile, Recommender
from tests.unit.recommend.conftest import CATALOG

PYTHONISH = {1, 2, 3, 16}
DESIGNISH = {5, 6, 11}


def purchases(pairs: list[tuple[int, int]]) -> list[Interaction]:
    return [Interaction(u, c, "purchase", float(i)) for i, (u, c) in enumerate(pairs)]


def test_cold_start_uses_interests_alone(catalog: tuple[CourseDoc, ...]) -> None:
    model = Recommender.fit(catalog)
    top = model.recommend(Profile(interests=("python",)), k=3)
    assert set(top) <= PYTHONISH
    assert set(model.recommend(Profile(interests=("design",)), k=2)) <= DESIGNISH


def test_chinese_interests_find_chinese_courses(catalog: tuple[CourseDoc, ...]) -> None:
    model = Recommender.fit(catalog)
    assert set(model.recommend(Profile(interests=("数据",)), k=2)) == {9, 10}
    assert model.recommend(Profile(interests=("音乐",)), k=1) == [12]


def test_owned_and_excluded_are_never_recommended(catalog: tuple[CourseDoc, ...]) -> None:
    model = Recommender.fit(catalog, purchases([(1, 1), (1, 2), (2, 1), (2, 3)]))
    owned = (1, 2, 3)
    for k in (1, 5, len(catalog)):
        recs = model.recommend(Profile(interests=("python",), owned=owned, exclude=(16,)), k=k)
        assert not set(recs) & {1, 2, 3, 16}
    everything = model.recommend(Profile(owned=tuple(d.id for d in catalog)), k=20)
    assert everything == []


def test_only_catalog_ids_come_back(catalog: tuple[CourseDoc, ...]) -> None:
    # Interactions with unpublished (unknown) courses are ignored, never returned.
    model = Recommender.fit(catalog, purchases([(1, 999), (1, 1), (2, 999), (2, 4)]))
    recs = model.recommend(Profile(owned=(1,), viewed=(999,)), k=50)
    assert set(recs) <= {d.id for d in catalog}
    assert 999 not in model.similar(1, k=50)
    assert model.similar(999) == []


def test_copurchase_signal_is_used(catalog: tuple[CourseDoc, ...]) -> None:
    # Everyone who bought the guitar course also bought personal finance: unrelated text.
    pairs = [(u, c) for u in range(10) for c in (13, 8)]
    model = Recommender.fit(catalog, purchases(pairs))
    assert model.recommend(Profile(owned=(13,)), k=1) == [8]
    assert 8 in model.similar(13, k=3)


def test_popular_courses_for_learners_with_no_signal(catalog: tuple[CourseDoc, ...]) -> None:
    pairs = [(u, 7) for u in range(20)] + [(u, 14) for u in range(10)]
    model = Recommender.fit(catalog, purchases(pairs))
    assert model.recommend(Profile(), k=2) == [7, 14]


def test_purchases_outweigh_views(catalog: tuple[CourseDoc, ...]) -> None:
    model = Recommender.fit(catalog)
    assert model.recommend(Profile(owned=(5,), viewed=(1,)), k=1) == [6]
    assert model.recommend(Profile(owned=(1,), viewed=(5,)), k=1)[0] in PYTHONISH


def test_top_five_are_not_near_copies() -> None:
    copies = [
        CourseDoc(
            i, f"Python Basics Part {i}", "Learn Python basics: variables and loops.", ("python",)
        )
        for i in range(1, 9)
    ]
    others = [
        CourseDoc(
            20,
            "Python for Data Science",
            "Pandas, numpy and plots with Python.",
            ("python", "data"),
        ),
        CourseDoc(21, "Python Web Apps", "Flask and Django with Python.", ("python", "web")),
        CourseDoc(
            22, "Automate Boring Stuff with Python", "Scripts for files and email.", ("python",)
        ),
    ]
    model = Recommender.fit(copies + others)
    top5 = model.recommend(Profile(interests=("python",)), k=5)
    assert len(top5) == 5
    assert len(set(top5) & {20, 21, 22}) >= 2


def test_similar_courses(catalog: tuple[CourseDoc, ...]) -> None:
    model = Recommender.fit(catalog)
    sims = model.similar(1, k=3)
    assert 1 not in sims
    assert set(sims) & PYTHONISH
    assert 10 in model.similar(9, k=2)


def test_results_are_deterministic_for_a_fixed_catalog(catalog: tuple[CourseDoc, ...]) -> None:
    pairs = [(u, c) for u in range(30) for c in random.Random(u).sample(range(1, 17), 3)]
    shuffled = list(catalog)
    random.Random(3).shuffle(shuffled)
    inter = purchases(pairs)
    a = Recommender.fit(catalog, inter)
    b = Recommender.fit(shuffled, list(reversed(inter)))
    for profile in (
        Profile(),
        Profile(interests=("python", "数据")),
        Profile(owned=(1,), viewed=(5, 9)),
        Profile(owned=(13, 8), interests=("design",)),
    ):
        first = a.recommend(profile, k=8)
        assert first == a.recommend(profile, k=8) == b.recommend(profile, k=8)
    assert a.similar(4, k=5) == b.similar(4, k=5)


def test_empty_inputs() -> None:
    assert Recommender.fit([]).recommend(Profile(interests=("python",))) == []
    model = Recommender.fit([CourseDoc(1, "")])
    assert model.recommend(Profile(interests=("python",))) == [1]
    assert model.similar(1) == []


@settings(max_examples=40, deadline=None)
@given(
    owned=st.lists(st.integers(0, 20), max_size=6),
    viewed=st.lists(st.integers(0, 20), max_size=6),
    k=st.integers(0, 20),
)
def test_recommendations_are_unique_and_never_owned(
    owned: list[int], viewed: list[int], k: int
) -> None:
    model = _MODEL
    recs = model.recommend(Profile(owned=tuple(owned), viewed=tuple(viewed)), k=k)
    assert len(recs) == len(set(recs)) <= k
    assert not set(recs) & set(owned)


_MODEL = Recommender.fit(
    CATALOG, purchases([(u, 1 + (u * 7 + j) % 16) for u in range(20) for j in range(3)])
)
