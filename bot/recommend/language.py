"""The learner's language first, in every list. Pure: no DB, no aiogram.

Rules (the README's "Language-aware ranking"):

- search: a course in the other language leads only when it scores ``LANGUAGE_MARGIN``
  (15 of 100) points more (``SearchIndex.search(language=...)``; cross-language matches
  through the topic vocabulary use the same rule);
- recommendations (/foryou, onboarding, receipts, finished lessons, inline): a course in
  the other language is put ahead of a same-language one only when its relevance (0..1,
  relative to the learner's best course) exceeds that course's by ``RECOMMEND_MARGIN``;
- similar courses (no comparable scores): only when it ranked more than
  ``SIMILAR_PLACES`` places higher;
- the catalog: same-language courses first, the order otherwise unchanged.

Within each language the order is the model's own (its diversity step included).
``language=None`` (a learner who chose "both languages") leaves every list as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# Half the learner's best score: interests are matched in both languages' keywords, and
# Chinese titles and tags match several of them at once (数据, 数据分析, 机器学习), so a
# Chinese course often tops an English learner's interests-only scores by 0.2-0.5 (demo
# catalog: "data" 1.0 against 0.77; "languages" 1.0 against 0.51). Not a clearly better
# match; an other-language course several times as relevant still leads.
RECOMMEND_MARGIN = 0.5
SIMILAR_PLACES = 5


def same_language_first(
    items: Sequence[T], language_of: Callable[[T], str], language: str | None
) -> list[T]:
    """A stable partition: the learner's language first, each part in its own order."""
    if not language:
        return list(items)
    mine = [i for i in items if language_of(i) == language]
    return mine + [i for i in items if language_of(i) != language]


def merge_by_margin(
    items: Sequence[T],
    scores: Sequence[float],
    language_of: Callable[[T], str],
    language: str | None,
    margin: float,
) -> list[T]:
    """Merge the two languages' lists, each kept in its given order: the other language's
    next item goes first only when its score beats the next same-language item's by more
    than ``margin`` (or no same-language item is left)."""
    if not language:
        return list(items)
    mine = [(s, i) for s, i in zip(scores, items, strict=True) if language_of(i) == language]
    other = [(s, i) for s, i in zip(scores, items, strict=True) if language_of(i) != language]
    out: list[T] = []
    a = b = 0
    while a < len(mine) or b < len(other):
        take_other = b < len(other) and (a >= len(mine) or other[b][0] - margin > mine[a][0])
        if take_other:
            out.append(other[b][1])
            b += 1
        else:
            out.append(mine[a][1])
            a += 1
    return out


def by_places(items: Sequence[T], language_of: Callable[[T], str], language: str | None) -> list[T]:
    """For ranked lists without comparable scores: positions as scores."""
    scores = [-float(n) for n in range(len(items))]
    return merge_by_margin(items, scores, language_of, language, float(SIMILAR_PLACES))
