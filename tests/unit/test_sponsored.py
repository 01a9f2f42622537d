"""The sponsored-slot auction as plain functions: second price, relevance floor, spacing."""

from __future__ import annotations

import numpy as np

from bot.handlers.promote import Pick, _data
from bot.keyboards.callbacks import SponsoredCB
from bot.marketplace import sponsored
from bot.marketplace.sponsored import Live, LiveSet
from bot.services.catalog import CourseSummary

A = Live(1, course_id=10, creator_user_id=100, bid=10)
B = Live(2, course_id=20, creator_user_id=200, bid=6)
C = Live(3, course_id=30, creator_user_id=300, bid=2)


async def nobody_owns(course_id: int) -> bool:
    return False


async def test_a_winner_pays_the_least_that_keeps_its_place() -> None:
    ranked = sponsored.rank([(A, 0.5), (B, 1.0), (C, 1.0)], floor=0.0)
    # Ranks: B 6.0, A 5.0, C 2.0.
    won = await sponsored.auction(ranked, 2, 1, set(), nobody_owns)
    assert [(s.live, s.price) for s in won] == [(B, 5), (A, 4)]  # ceil(5/1), ceil(2/0.5)
    # Alone: the minimum bid; never more than its own bid.
    [alone] = await sponsored.auction([(C, 1.0)], 1, 1, set(), nobody_owns)
    assert alone.price == 1


async def test_owners_the_creator_and_courses_on_screen_are_skipped() -> None:
    ranked = [(A, 1.0), (B, 1.0), (C, 1.0)]

    async def owns_b(course_id: int) -> bool:
        return course_id == 20

    won = await sponsored.auction(ranked, 1, user_id=100, on_screen=set(), owns=owns_b)
    assert [s.live for s in won] == [C]  # A is the learner's own course, B is owned
    won = await sponsored.auction(ranked, 1, user_id=1, on_screen={10}, owns=nobody_owns)
    assert [s.live for s in won] == [B] and won[0].price == 2  # C's rank sets B's price


def test_search_relevance_floor_keeps_a_big_bid_out() -> None:
    live = LiveSet.build([A, Live(4, course_id=40, creator_user_id=400, bid=1000)], 0)
    hits = [(10, 90.0), (40, 56.0)]  # 40 matches the query barely (noise level)
    assert [x.course_id for x, _ in sponsored.for_search(live, hits)] == [10]
    assert sponsored.for_search(live, [(99, 100.0)]) == []  # no match, no slot


def test_recommendation_candidates_need_relevance_and_rank_by_relevance_times_bid() -> None:
    live = LiveSet.build([A, B, C], 0)

    def relevance(ids: np.ndarray) -> np.ndarray:
        return np.array([{10: 0.2, 20: 0.5, 30: 1.0}[int(i)] for i in ids])

    got = [(x.course_id, r) for x, r in sponsored.for_recommendations(live, relevance)]
    assert got == [(20, 0.5), (30, 1.0)]  # A under the floor; B 3.0 before C 2.0


def test_at_most_one_slot_in_five() -> None:
    for organic in range(30):
        s = sponsored.slots_for(organic)
        assert s * sponsored.SPACING <= organic + s
    assert [sponsored.slots_for(n) for n in (3, 4, 5, 6, 8)] == [0, 1, 1, 1, 2]


def test_the_slot_button_is_sponsored_callback_data() -> None:
    pick = Pick(CourseSummary(1, "x", 0, "XTR", 1, "en"), "Ab-_12345678")
    assert _data(pick) == SponsoredCB(t="Ab-_12345678").pack()
    assert SponsoredCB.unpack(_data(pick)).t == "Ab-_12345678"
