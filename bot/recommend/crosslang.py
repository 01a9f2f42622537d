"""Cross-language discovery: the query's subject terms in the other language.

机器学习 also finds "Machine Learning Foundations" and "machine learning" also finds
机器学习基础: the subject terms a query names (bot.recommend.vocab_en_zh) are translated,
the translation is searched as a query of its own, and its matches join the results at
``CROSS_WEIGHT`` of their score: a course that matches the words typed stays ahead of one
that matches only their translation. The search scoring itself is untouched. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from bot.recommend.search import LANGUAGE_MARGIN, SearchHit
from bot.recommend.text import normalize
from bot.recommend.vocab_en_zh import PAIRS

# A translated match counts at most 80 of 100 points: below any exact title match, and
# with the learner's-language margin (15) an English learner's own-language match at
# 65+ still leads a Chinese course found only through the translation.
CROSS_WEIGHT = 0.8
# Terms translated per query: a long query is not turned into many searches.
MAX_TERMS = 4

_CJK = re.compile(r"[\u3400-\u9fff]")


def _build() -> tuple[dict[tuple[str, ...], str], dict[str, str], int]:
    en: dict[tuple[str, ...], str] = {}
    zh: dict[str, str] = {}
    for english, chinese in PAIRS:
        e, c = normalize(english), normalize(chinese)
        if not e or not c or e == c:
            continue  # the same word in both scripts: the query already has it
        if _CJK.search(c):
            en.setdefault(tuple(e.split()), c)  # the first pair listed is the usual term
            zh.setdefault(c, e)
    longest = max((len(k) for k in en), default=1)
    return en, zh, longest


_EN_TO_ZH, _ZH_TO_EN, _LONGEST = _build()
# Longer Chinese terms first: 机器学习 before 学习.
_ZH_TERMS = sorted(_ZH_TO_EN, key=len, reverse=True)


def _english_terms(words: list[str]) -> list[tuple[int, str]]:
    """(position, translation) of the longest known word sequences, left to right."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            chinese = _EN_TO_ZH.get(tuple(words[i : i + n]))
            if chinese is not None:
                out.append((i, chinese))
                i += n
                break
        else:
            i += 1
    return out


def _chinese_terms(text: str) -> list[tuple[int, str]]:
    """(position, translation) of known terms in the Chinese text, longest first, never
    two overlapping."""
    taken = [False] * len(text)
    out: list[tuple[int, str]] = []
    for term in _ZH_TERMS:
        start = text.find(term)
        while start >= 0:
            span = range(start, start + len(term))
            if not any(taken[j] for j in span):
                for j in span:
                    taken[j] = True
                out.append((start, _ZH_TO_EN[term]))
            start = text.find(term, start + len(term))
    return out


def translate(query: str) -> str:
    """The query's subject terms in the other language, in query order, as one query;
    "" when it names none."""
    text = normalize(query)
    if not text:
        return ""
    chinese = _CJK.search(text) is not None
    found = _chinese_terms(text) if chinese else _english_terms(text.split())
    found.sort()
    terms = list(dict.fromkeys(t for _, t in found))[:MAX_TERMS]
    return " ".join(terms)


def merge(
    own: Iterable[SearchHit],
    translated: Iterable[SearchHit],
    language_of: Callable[[int], str | None],
    language: str | None,
    limit: int,
) -> list[SearchHit]:
    """The query's own matches and its translation's (at CROSS_WEIGHT), best first; with
    ``language``, the same rule as SearchIndex.search: another language's course leads
    only when it scores LANGUAGE_MARGIN points more (an exact title match always leads)."""
    best: dict[int, float] = {}
    for hit in own:
        best[hit.course_id] = hit.score
    for hit in translated:
        score = hit.score * CROSS_WEIGHT
        if score > best.get(hit.course_id, -1.0):
            best[hit.course_id] = score

    def key(item: tuple[int, float]) -> tuple[float, int]:
        course_id, score = item
        if language and score < 100.0 and language_of(course_id) != language:
            score -= LANGUAGE_MARGIN
        return (-score, course_id)

    ranked = sorted(best.items(), key=key)[:limit]
    return [SearchHit(course_id=c, score=round(s, 2)) for c, s in ranked]
