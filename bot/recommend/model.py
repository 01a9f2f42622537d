"""The hybrid recommender: TF-IDF content + co-purchase neighbours + popularity, then MMR.

Scores for one learner, each scaled to 0..1 over the catalog:

- content: cosine between every course and the learner's profile vector — the TF-IDF
  rows of bought (weight 1) and viewed (weight ``VIEW_WEIGHT``) courses plus the onboarding
  interests as a pseudo-document, so interests count before anything is bought;
- co-purchase: item-item cosine over who bought/finished what ("learners who bought X also
  bought Y"), kept to the ``NEIGHBOURS`` strongest neighbours per course;
- popularity: log of distinct learners per course, the prior for learners with no signal.

Then maximal marginal relevance (MMR) over the best ``POOL`` candidates, so the first five
are not five near-copies of the same course.

Everything at request time is sparse algebra over precomputed matrices (~1 ms at 100k
courses); ``fit`` is the expensive part and belongs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.recommend.text import CourseDoc, analyze, doc_text, normalize

KIND_WEIGHT = {"purchase": 1.0, "done": 1.0, "view": 0.25}
VIEW_WEIGHT = 0.5  # a viewed course says less about the learner than a bought one
INTEREST_WEIGHT = 1.0
NEIGHBOURS = 100
QUERY_FEATURES = 96  # profile vector pruned to its strongest features: bounds request cost
POOL = 60
MMR_LAMBDA = 0.8
NEAR_COPY = 0.8  # content cosine above which a course is a near-copy of a chosen one
NEAR_TITLE = 85.0  # or titles this alike (rapidfuzz ratio): "Python Basics Part 1/2/3"
VIEWED_DEMOTE = 0.3  # already seen, not bought: suggest again only behind fresh courses


@dataclass(frozen=True, slots=True)
class Interaction:
    user_id: int
    course_id: int
    kind: str  # "view" | "purchase" | "done" (finished a lesson)
    ts: float = 0.0


@dataclass(frozen=True, slots=True)
class Profile:
    interests: tuple[str, ...] = ()  # onboarding topics, e.g. ("python", "design", "数据")
    viewed: tuple[int, ...] = ()
    owned: tuple[int, ...] = ()  # bought: weighted higher, and always excluded from results
    exclude: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Blend:
    """How the three signals mix; ``evaluate`` compares settings of these."""

    content: float = 0.35
    copurchase: float = 1.0
    popularity: float = 0.1
    cold_popularity: float = 0.25  # interests only: a mild nudge towards what sells
    mmr: float = MMR_LAMBDA


def _scale(x: NDArray[np.float32]) -> NDArray[np.float32]:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


def _top_rows(scores: NDArray[np.float32], n: int, allowed: NDArray[np.bool_]) -> NDArray[np.intp]:
    """The ``n`` best allowed rows, best first, ties in row order (deterministic)."""
    cand = np.flatnonzero(allowed)
    if len(cand) > n:
        part = np.argpartition(-scores[cand], n - 1)[:n]
        # argpartition is not stable at the cut: include every row tied with the n-th.
        cut = scores[cand[part]].min()
        cand = cand[scores[cand] >= cut]
    return cand[np.lexsort((cand, -scores[cand]))][:n]


def _prune_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row (ties: lower column)."""
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if counts.size == 0 or counts.max() <= k:
        return m
    row = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data, row))
    rank = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    keep = order[rank < k]
    return sp.csr_matrix(
        (m.data[keep], (row[keep], m.indices[keep])), shape=m.shape, dtype=np.float32
    )


class Recommender:
    def __init__(
        self,
        ids: NDArray[np.int64],
        titles: list[str],
        vectorizer: TfidfVectorizer | None,
        docs_by_feature: sp.csr_matrix,
        content: sp.csr_matrix,
        neighbours: sp.csr_matrix,
        popularity: NDArray[np.float32],
        blend: Blend,
    ) -> None:
        self._ids = ids
        self._row = {int(i): r for r, i in enumerate(ids)}
        self._titles = titles  # normalised, for near-copy detection
        self._vectorizer = vectorizer
        self._xt = docs_by_feature  # features x courses: the inverted index
        self._x = content  # courses x features, rows L2-normalised
        self._s = neighbours  # courses x courses, co-purchase cosine, top NEIGHBOURS a row
        self._pop = popularity
        self.blend = blend

    # -- fitting ---------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        docs: Sequence[CourseDoc],
        interactions: Iterable[Interaction] = (),
        blend: Blend | None = None,
    ) -> Recommender:
        by_id = {d.id: d for d in docs}
        ids = np.asarray(sorted(by_id), dtype=np.int64)
        n = len(ids)
        row = {int(i): r for r, i in enumerate(ids)}
        vectorizer: TfidfVectorizer | None = None
        x = sp.csr_matrix((n, 0), dtype=np.float32)
        if n:
            vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float32)
            try:
                x = vectorizer.fit_transform([doc_text(by_id[int(i)]) for i in ids]).tocsr()
            except ValueError:  # every document empty: no vocabulary
                vectorizer = None
        neighbours, popularity = cls._collaborative(row, n, interactions)
        return cls(
            ids,
            [normalize(by_id[int(i)].title) for i in ids],
            vectorizer,
            x.T.tocsr(),
            x,
            neighbours,
            popularity,
            blend or Blend(),
        )

    @staticmethod
    def _collaborative(
        row: dict[int, int], n: int, interactions: Iterable[Interaction]
    ) -> tuple[sp.csr_matrix, NDArray[np.float32]]:
        strength: dict[tuple[int, int], float] = {}
        users: dict[int, int] = {}
        for it in interactions:
            r = row.get(it.course_id)
            w = KIND_WEIGHT.get(it.kind, 0.0)
            if r is None or w <= 0:
                continue
            u = users.setdefault(it.user_id, len(users))
            key = (u, r)
            if strength.get(key, 0.0) < w:
                strength[key] = w
        if not strength:
            return sp.csr_matrix((n, n), dtype=np.float32), np.zeros(n, dtype=np.float32)
        keys = np.fromiter((k for pair in strength for k in pair), dtype=np.int64).reshape(-1, 2)
        vals = np.fromiter(strength.values(), dtype=np.float32)
        ui = sp.csr_matrix((vals, (keys[:, 0], keys[:, 1])), shape=(len(users), n))
        popularity = np.log1p(np.asarray(ui.sum(axis=0)).ravel()).astype(np.float32)
        # Item-item cosine. Heavy users (who bought half the catalog) would make every pair
        # co-occur: damp each user's contribution by 1/log(2 + their item count).
        per_user = np.diff(ui.indptr)
        damp = sp.diags((1.0 / np.log2(2.0 + per_user)).astype(np.float32))
        co = (ui.T @ damp @ ui).tocsr().astype(np.float32)
        co.setdiag(0.0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray((ui.multiply(ui)).T @ (1.0 / np.log2(2.0 + per_user))))
        norms = np.asarray(norms, dtype=np.float32).ravel()
        norms[norms == 0] = 1.0
        inv = sp.diags(1.0 / norms)
        co = (inv @ co @ inv).tocsr().astype(np.float32)
        return _prune_rows(co, NEIGHBOURS), _scale(popularity)

    # -- scoring ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def _rows(self, course_ids: Iterable[int]) -> list[int]:
        return sorted({r for r in map(self._row.get, course_ids) if r is not None})

    def _content_scores(self, q: sp.csr_matrix) -> NDArray[np.float32]:
        out = np.zeros(len(self._ids), dtype=np.float32)
        if q.nnz == 0:
            return out
        if q.nnz > QUERY_FEATURES:
            keep = np.argsort(-q.data, kind="stable")[:QUERY_FEATURES]
            q = sp.csr_matrix(
                (q.data[keep], (np.zeros(len(keep), dtype=np.int64), q.indices[keep])),
                shape=q.shape,
            )
        res = (q @ self._xt).tocsr()
        out[res.indices] = res.data
        return out

    def _profile_vector(
        self, interests: Sequence[str], weighted_rows: dict[int, float]
    ) -> sp.csr_matrix:
        width = self._x.shape[1]
        q = sp.csr_matrix((1, width), dtype=np.float32)
        if weighted_rows:
            rows = sorted(weighted_rows)
            w = sp.csr_matrix(np.asarray([[weighted_rows[r] for r in rows]], dtype=np.float32))
            q = (w @ self._x[rows]).tocsr()
            total = float(np.sqrt(q.multiply(q).sum()))
            if total > 0:
                q = q / total
        if interests and self._vectorizer is not None:
            iv = self._vectorizer.transform([" ".join(interests)]).astype(np.float32)
            q = q + INTEREST_WEIGHT * iv
        return sp.csr_matrix(q, dtype=np.float32)

    def _copurchase_scores(self, weighted_rows: dict[int, float]) -> NDArray[np.float32]:
        out = np.zeros(len(self._ids), dtype=np.float32)
        if not weighted_rows or self._s.nnz == 0:
            return out
        rows = sorted(weighted_rows)
        w = sp.csr_matrix(np.asarray([[weighted_rows[r] for r in rows]], dtype=np.float32))
        res = (w @ self._s[rows]).tocsr()
        out[res.indices] = res.data
        return out

    def _diversify(
        self, scores: NDArray[np.float32], allowed: NDArray[np.bool_], k: int
    ) -> list[int]:
        pool = _top_rows(scores, max(POOL, 3 * k), allowed)
        if len(pool) == 0:
            return []
        rel = scores[pool].astype(np.float64)
        lo, hi = rel.min(), rel.max()
        rel = (rel - lo) / (hi - lo) if hi > lo else np.ones_like(rel)
        xp = self._x[pool]
        sim = (xp @ xp.T).toarray() if xp.shape[1] else np.zeros((len(pool), len(pool)))
        np.fill_diagonal(sim, 0.0)
        lam = self.blend.mmr
        if lam >= 1.0:  # diversity off (the plain baselines in ``evaluate``)
            return [int(self._ids[r]) for r in pool[:k]]
        titles = [self._titles[r] for r in pool]
        chosen: list[int] = []
        max_sim = np.zeros(len(pool))
        copy = np.zeros(len(pool), dtype=bool)
        free = np.ones(len(pool), dtype=bool)
        for _ in range(min(k, len(pool))):
            mmr = lam * rel - (1.0 - lam) * max_sim
            # A near-copy of something already chosen only fills what is left at the end.
            mmr = np.where(copy, mmr - 2.0, mmr)
            mmr = np.where(free, mmr, -np.inf)
            best = int(np.argmax(mmr))  # first maximum: ties go to the better-ranked row
            chosen.append(best)
            free[best] = False
            max_sim = np.maximum(max_sim, sim[best])
            copy |= sim[best] >= NEAR_COPY
            if titles[best]:
                alike = process.cdist([titles[best]], titles, scorer=fuzz.ratio, processor=None)
                copy |= alike[0] >= NEAR_TITLE
        return [int(self._ids[pool[i]]) for i in chosen]

    def scores(self, profile: Profile) -> NDArray[np.float32]:
        """Blended relevance of every course (row order = ascending course id)."""
        b = self.blend
        weighted: dict[int, float] = {}
        for r in self._rows(profile.viewed):
            weighted[r] = VIEW_WEIGHT
        for r in self._rows(profile.owned):
            weighted[r] = 1.0
        content = _scale(self._content_scores(self._profile_vector(profile.interests, weighted)))
        if not weighted:
            return content + b.cold_popularity * self._pop
        cf = _scale(self._copurchase_scores(weighted))
        return b.copurchase * cf + b.content * content + b.popularity * self._pop

    def recommend(self, profile: Profile, k: int = 10) -> list[int]:
        if k <= 0 or not len(self._ids):
            return []
        allowed = np.ones(len(self._ids), dtype=bool)
        allowed[self._rows((*profile.owned, *profile.exclude))] = False
        scores = self.scores(profile)
        scores[self._rows(profile.viewed)] *= VIEWED_DEMOTE
        return self._diversify(scores, allowed, k)

    def similar(self, course_id: int, k: int = 5) -> list[int]:
        r = self._row.get(course_id)
        if r is None or k <= 0:
            return []
        b = self.blend
        one = {r: 1.0}
        content = _scale(self._content_scores(self._x[r].tocsr()))
        cf = _scale(self._copurchase_scores(one))
        scores = b.content * content + b.copurchase * cf + b.popularity * self._pop
        allowed = np.ones(len(self._ids), dtype=bool)
        allowed[r] = False
        # Only courses that share something with this one; popularity alone is no similarity.
        allowed &= (content > 0) | (cf > 0)
        return self._diversify(scores, allowed, k)
