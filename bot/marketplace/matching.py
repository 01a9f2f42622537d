"""Creators for you: the recommender's course scores, summed per creator.

A creator's score is a discounted sum of their best new (not owned) courses' scores
(1, 1/2, 1/4, … over the top ``TOP_COURSES``): one excellent match counts most, a
creator with several good ones beats a creator with one. Creators the learner already
bought from get ``REPEAT_BONUS`` times their best owned course's share on top, since
learners come back to creators they liked. Never the learner themself, never a creator
they follow. Followed creators' courses count as viewed in the profile, so following
says something about taste.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator
from bot.recommend import Profile
from bot.services.recommendations import load_profile, recommendations
from bot.services.search import CatalogSearch

TOP_COURSES = 3
REPEAT_BONUS = 0.5


def rank_creators(
    ids: Sequence[int],
    scores: NDArray[np.float64],
    creator_of: Mapping[int, int],
    owned: Collection[int],
    exclude: Collection[int],
    k: int = 10,
) -> list[int]:
    """Creator ids, best first. ``scores[i]`` is the score of course ``ids[i]``."""
    totals = creator_totals(ids, scores, creator_of, owned, exclude)
    return sorted(totals, key=lambda c: (-totals[c], c))[:k]


def creator_totals(
    ids: Sequence[int],
    scores: NDArray[np.float64],
    creator_of: Mapping[int, int],
    owned: Collection[int],
    exclude: Collection[int],
) -> dict[int, float]:
    """Each creator with a course left to buy → their score (see the module's doc)."""
    own = set(owned)
    per: dict[int, list[float]] = defaultdict(list)
    repeat: dict[int, float] = defaultdict(float)
    for course_id, score in zip(ids, scores.tolist(), strict=True):
        creator = creator_of.get(course_id)
        if creator is None or creator in exclude or not np.isfinite(score):
            continue
        if course_id in own:
            repeat[creator] = max(repeat[creator], score)
        else:
            per[creator].append(score)
    totals: dict[int, float] = {}
    for creator, values in per.items():
        values.sort(reverse=True)
        totals[creator] = sum(v / 2**i for i, v in enumerate(values[:TOP_COURSES]))
    for creator, best in repeat.items():
        if creator in totals:
            totals[creator] += REPEAT_BONUS * best
    return totals


@dataclass(frozen=True, slots=True)
class CreatorLine:
    id: int
    name: str


async def creators_for(
    session: AsyncSession,
    user_id: int,
    k: int = 5,
    *,
    catalog: CatalogSearch,
    follows: Collection[int] = (),
) -> list[CreatorLine]:
    fitted = await recommendations(catalog).fitted(session)
    docs = fitted.snapshot.docs
    creator_of = {d.id: d.creator_id for d in docs if d.creator_id is not None}
    profile = await load_profile(session, user_id)
    followed_courses = tuple(c for c, who in creator_of.items() if who in set(follows))
    profile = Profile(
        interests=profile.interests,
        viewed=tuple(dict.fromkeys((*profile.viewed, *followed_courses))),
        owned=profile.owned,
    )
    exclude = set(follows)
    mine = await session.scalar(select(Creator.id).where(Creator.user_id == user_id))
    if mine is not None:
        exclude.add(mine)
    ids = [int(i) for i in fitted.model.ids]
    if not ids:
        return []
    scores = fitted.model.scores(profile)
    ranked = rank_creators(ids, scores, creator_of, profile.owned, exclude, k)
    if not ranked:
        return []
    rows = await session.execute(
        select(Creator.id, Creator.display_name).where(Creator.id.in_(ranked))
    )
    names = {int(i): str(n) for i, n in rows}
    # Only creators with something on sale now.
    live = set(
        await session.scalars(
            select(Course.creator_id).where(
                Course.creator_id.in_(ranked), Course.published.is_(True)
            )
        )
    )
    return [CreatorLine(c, names[c]) for c in ranked if c in names and c in live]
