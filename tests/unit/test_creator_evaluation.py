"""The creator-matching evaluation's arithmetic, checked by hand on a tiny split."""

from __future__ import annotations

import math

from bot.marketplace import evaluate
from bot.recommend.evaluate import Split
from bot.recommend.model import Interaction
from bot.recommend.text import CourseDoc

CREATOR_OF = {1: 10, 2: 10, 3: 20, 4: 30}


def tiny() -> Split:
    docs = [CourseDoc(id=i, title=f"c{i}") for i in CREATOR_OF]
    train = [
        Interaction(1, 1, "purchase"),
        Interaction(2, 1, "purchase"),
        Interaction(3, 3, "purchase"),
    ]
    # Learners 1 and 2 held out a course of creator 10, learner 3 one of creator 30.
    cases = [(1, (1,), 2), (2, (1,), 2), (3, (3,), 4)]
    return Split(docs, train, cases)


def test_school_is_the_org_in_the_course_id() -> None:
    assert evaluate.school("C_course-v1:TsinghuaX+ATOC185x+2015_T1") == "TsinghuaX"


def test_popular_creators_and_the_scores() -> None:
    split = tiny()
    rank = evaluate.popular_creators(split, CREATOR_OF)
    assert rank(1, ()) == [10, 20]  # two learners bought from 10, one from 20; 30 none
    got = evaluate.score(split, CREATOR_OF, rank)
    # 10 is first for learners 1 and 2 (gain 1 each); 30 is not ranked for learner 3.
    assert got["hit@10"] == round(2 / 3, 5)
    assert got["ndcg@10"] == round(2 / 3, 5)
    # Per held-out creator: 10 → 1.0, 30 → 0.0.
    assert got["creator_macro_ndcg@10"] == 0.5
    second = evaluate.score(split, CREATOR_OF, lambda _u, _o: [20, 30, 10])
    expected = (2 / math.log2(4) + 1 / math.log2(3)) / 3
    assert second["ndcg@10"] == round(expected, 5)
    assert evaluate.ratio(second, got) == round(second["ndcg@10"] / got["ndcg@10"], 3)
