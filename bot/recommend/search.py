"""Typo-tolerant course search: an n-gram prefilter, then a rapidfuzz rerank.

rapidfuzz ``WRatio`` over every title costs ~420 ms at 100,000 courses (DESIGN.md), so a
query first collects candidates from an inverted index of character n-grams (padded
trigrams for Latin words, 1–2-grams for CJK), weighted by idf; only the few hundred best
candidates — half by shared grams, half by shared grams relative to the text's length,
because WRatio favours texts about as long as the query — are scored by ``WRatio``. A typo
changes at most three trigrams of a word, so the right course still shares most of its
grams with the query.

The index is immutable once built: build a new one in a worker thread and swap the
reference (see ``bot.services.search``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from bot.recommend.text import CourseDoc, fuzzy_grams, normalize, search_text

MAX_QUERY_CHARS = 200
# Candidates reranked per query: enough to hold brute force's top 10 (bench: >= 90%
# overlap at 100k courses) while the rerank stays ~1–3 ms.
CANDIDATES = 300
QUERY_GRAMS = 48
# WRatio below this is noise (random titles score 20–45 against a word).
MIN_SCORE = 55.0


@dataclass(frozen=True, slots=True)
class SearchHit:
    course_id: int
    score: float  # 0..100


def _best(scores: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    """Positions of the ``n`` highest scores; ties at the cut go to the lowest positions,
    so the answer never depends on how the partition fell. Unordered."""
    if len(scores) <= n:
        return np.arange(len(scores))
    cut = scores[np.argpartition(-scores, n - 1)[n - 1]]
    above = np.flatnonzero(scores > cut)
    tied = np.flatnonzero(scores == cut)[: n - len(above)]
    return np.concatenate([above, tied])


class SearchIndex:
    __slots__ = ("_gram_ids", "_idf", "_ids", "_indptr", "_inv_len", "_postings", "_texts")

    def __init__(
        self,
        ids: NDArray[np.int64],
        texts: list[str],
        gram_ids: dict[str, int],
        indptr: NDArray[np.int64],
        postings: NDArray[np.int32],
        idf: NDArray[np.float32],
        inv_len: NDArray[np.float32],
    ) -> None:
        self._ids = ids
        self._texts = texts
        self._gram_ids = gram_ids
        self._indptr = indptr
        self._postings = postings
        self._idf = idf
        self._inv_len = inv_len

    @classmethod
    def build(cls, docs: Iterable[CourseDoc]) -> SearchIndex:
        # Sorted by id so that ties break the same way whatever order the docs came in.
        by_id = {d.id: d for d in docs}
        ordered = [by_id[i] for i in sorted(by_id)]
        texts = [search_text(d) for d in ordered]
        gram_ids: dict[str, int] = {}
        lookup = gram_ids.get
        # C int arrays, not lists: 100k courses make ~4M (doc, gram) pairs.
        gram_col = array("i")
        lengths = array("i")
        for text in texts:
            grams = fuzzy_grams(text)
            known = list(map(lookup, grams))
            if None in known:  # new grams: rare once the common ones are in
                known = [gram_ids.setdefault(g, len(gram_ids)) for g in grams]
            gram_col.extend(known)  # type: ignore[arg-type]
            lengths.append(len(grams))
        # Transposing the (doc -> grams) CSR gives the (gram -> docs) postings, each in
        # doc order; scipy does it in C without a 4M-element argsort.
        doc_indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(lengths, dtype=np.int32), out=doc_indptr[1:])
        gram_arr = np.frombuffer(gram_col, dtype=np.int32)
        by_doc = sp.csr_matrix(
            (np.ones(len(gram_arr), dtype=np.int8), gram_arr, doc_indptr),
            shape=(len(texts), len(gram_ids)),
        )
        by_gram = by_doc.tocsc()
        del by_doc, gram_arr, gram_col
        postings = by_gram.indices.astype(np.int32, copy=False)
        indptr = by_gram.indptr.astype(np.int64)
        df = np.diff(indptr)
        n = max(len(texts), 1)
        idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        ids = np.fromiter((d.id for d in ordered), dtype=np.int64, count=len(ordered))
        # WRatio favours texts about as long as the query: so does the prefilter, or a
        # short query ("sql") would fill its candidates with long texts that merely
        # mention the word, and miss the short titles WRatio ranks first.
        grams_per_doc = np.maximum(np.frombuffer(lengths, dtype=np.int32), 1)
        inv_len = (1.0 / np.sqrt(grams_per_doc)).astype(np.float32)
        return cls(ids, texts, gram_ids, indptr, postings, idf, inv_len)

    def __len__(self) -> int:
        return len(self._texts)

    def candidates(
        self, normalized_query: str, limit: int = CANDIDATES
    ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Rows of the docs sharing the most idf-weighted grams with the query (in row
        order), and those overlap scores."""
        gids = [
            g
            for g in map(self._gram_ids.get, fuzzy_grams(normalized_query, query=True))
            if g is not None
        ]
        if not gids:
            return np.empty(0, dtype=np.intp), np.empty(0)
        if len(gids) > QUERY_GRAMS:
            # A long query: its rarest grams pick the candidates (bounded cost).
            rarest = np.argsort(-self._idf[gids], kind="stable")[:QUERY_GRAMS]
            gids = [gids[i] for i in sorted(rarest.tolist())]
        starts = self._indptr[gids]
        ends = self._indptr[np.asarray(gids) + 1]
        rows = np.concatenate([self._postings[s:e] for s, e in zip(starts, ends, strict=True)])
        weights = np.repeat(self._idf[gids], ends - starts)
        scores = np.bincount(rows, weights=weights, minlength=len(self._texts))
        hit = np.flatnonzero(scores)
        raw = scores[hit].astype(np.float64)
        if len(hit) > limit:
            # Half by raw overlap (long queries: whole titles), half by overlap relative
            # to the text's length (short queries: WRatio favours texts about as long as
            # the query).
            keep = np.union1d(_best(raw, limit // 2), _best(raw * self._inv_len[hit], limit // 2))
            hit, raw = hit[keep], raw[keep]
        return hit, raw

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        q = normalize(query[: MAX_QUERY_CHARS * 2])[:MAX_QUERY_CHARS]
        if not q or limit <= 0:
            return []
        rows, overlap = self.candidates(q, max(CANDIDATES, limit * 3))
        if len(rows) == 0:
            return []
        choices = [self._texts[r] for r in rows]
        scores = process.cdist([q], choices, scorer=fuzz.WRatio, processor=None, workers=1)[0]
        keep = np.flatnonzero(scores >= MIN_SCORE)
        # Best score first; among equal scores, more shared rare grams, then catalog order.
        order = keep[np.lexsort((rows[keep], -overlap[keep], -scores[keep]))][:limit]
        return [
            SearchHit(course_id=int(self._ids[rows[i]]), score=round(float(scores[i]), 2))
            for i in order
        ]

    def brute_force(self, query: str, limit: int = 10) -> list[SearchHit]:
        """WRatio over every course: the reference the benchmark compares ``search`` with."""
        q = normalize(query[: MAX_QUERY_CHARS * 2])[:MAX_QUERY_CHARS]
        if not q or not self._texts:
            return []
        scores = process.cdist([q], self._texts, scorer=fuzz.WRatio, processor=None, workers=1)[0]
        keep = np.flatnonzero(scores >= MIN_SCORE)
        order = keep[np.lexsort((keep, -scores[keep]))][:limit]
        return [
            SearchHit(course_id=int(self._ids[i]), score=round(float(scores[i]), 2)) for i in order
        ]
