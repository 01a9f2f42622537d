"""The one-course popularity weight ``fit`` chooses on the store's own data."""

from __future__ import annotations

import random

from bot.recommend import CourseDoc, Interaction, Profile, Recommender
from bot.recommend import model as m
from bot.recommend.model import Blend

WORDS = ["alpha", "bravo", "delta", "gamma", "kappa", "lambda", "omega", "sigma", "theta", "zeta"]


def catalog(n: int) -> list[CourseDoc]:
    rng = random.Random(3)
    return [CourseDoc(i, " ".join(rng.sample(WORDS, 3)) + f" c{i}") for i in range(1, n + 1)]


def popular_head(learners: int = 400) -> list[Interaction]:
    """Everyone buys one of three hit courses and two random others: whatever a learner
    bought says nothing about their next course, what everybody buys says a lot."""
    rng = random.Random(11)
    out = []
    for u in range(learners):
        courses = [rng.choice((1, 2, 3)), *rng.sample(range(4, 121), 2)]
        rng.shuffle(courses)
        out += [Interaction(u, c, "purchase", float(t)) for t, c in enumerate(courses)]
    return out


def strict_pairs(learners: int = 400) -> list[Interaction]:
    """Courses come in pairs (2k-1, 2k) and every learner buys exactly one pair, the
    low pairs far more often: the course one has says which is next, popularity misleads."""
    rng = random.Random(12)
    out = []
    for u in range(learners):
        k = min(int(rng.expovariate(0.15)), 59)
        pair = [2 * k + 1, 2 * k + 2]
        rng.shuffle(pair)
        out += [Interaction(u, c, "purchase", float(t)) for t, c in enumerate(pair)]
    return out


def test_popularity_wins_where_courses_say_nothing() -> None:
    model = Recommender.fit(catalog(120), popular_head())
    assert model.one_popularity >= 3.0
    assert set(model.recommend(Profile(owned=(50,)), k=3)) == {1, 2, 3}


def test_popularity_stays_low_where_the_course_says_what_is_next() -> None:
    model = Recommender.fit(catalog(120), strict_pairs())
    assert model.one_popularity <= 0.3
    assert model.recommend(Profile(owned=(40,)), k=1) == [39]


def test_the_choice_is_deterministic_and_a_blend_can_fix_it() -> None:
    docs, inter = catalog(120), popular_head()
    assert (
        Recommender.fit(docs, inter).one_popularity
        == Recommender.fit(docs, list(reversed(inter))).one_popularity
    )
    fixed = Recommender.fit(docs, inter, Blend(one_popularity=0.0))
    assert fixed.one_popularity == 0.0


def test_too_few_learners_keep_the_default() -> None:
    model = Recommender.fit(catalog(120), popular_head(learners=2 * m.ONE_SPLIT_MIN - 1))
    assert model.one_popularity == m.ONE_POPULARITY_DEFAULT
