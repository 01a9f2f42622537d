"""The hybrid recommender: collaborative (EASE or RP3beta) + TF-IDF content + popularity.

Scores for one learner, each scaled to 0..1 over the catalog:

- content: cosine between every course and the learner's profile vector — the TF-IDF
  rows of bought (weight 1) and viewed (weight ``VIEW_WEIGHT``) courses plus the onboarding
  interests as a pseudo-course;
- collaborative: item-item weights from who bought/finished what — EASE (closed form)
  up to ``EASE_MAX_ITEMS`` courses, RP3beta (sparse, blocked) above; item-kNN cosine is
  kept as a baseline. The ``NEIGHBOURS`` strongest weights per course are kept;
- popularity: log of distinct learners per course, weighed in more for one course.

A learner with interests only gets the most popular courses within those interests.
Then a light re-rank: at most ``PER_CREATOR`` per creator and no near-copy titles in a
row before the rest of the pool (``evaluate`` measures all of it: ``python -m
bot.recommend.evaluate``).

TF-IDF uses feature hashing (no vocabulary dict: bounded memory, fast fit). A request is a
few gathers over precomputed CSR arrays (~1 ms at 100k courses); ``fit`` is the expensive
part and belongs in a worker thread.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from rapidfuzz import fuzz
from scipy.linalg import lapack
from sklearn.feature_extraction.text import HashingVectorizer

from bot.recommend.text import CourseDoc, doc_features, normalize

KIND_WEIGHT = {"purchase": 1.0, "done": 1.0, "view": 0.25}
VIEW_WEIGHT = 0.5  # a viewed course says less about the learner than a bought one
INTEREST_WEIGHT = 1.0
NEIGHBOURS = 100
NEIGHBOUR_BLOCK_PAIRS = 1_000_000
HASH_FEATURES = 2**20
HASH_BLOCK = 5000
MAX_DF = 0.5  # in catalogs of MAX_DF_MIN_DOCS+, words in more than half the courses rank
MAX_DF_MIN_DOCS = 1000  # nothing and cost the most; tiny catalogs keep every word
# The profile vector is cut to its strongest features, and to those whose postings fit in
# a budget: a common word costs 30k postings per request and barely moves the ranking.
QUERY_FEATURES = 64
POSTINGS_BUDGET = 60_000
POOL = 40
PER_CREATOR = 3  # at most this many courses of one creator in a list, the rest go last
NEAR_TITLE = 85.0  # titles this alike (rapidfuzz ratio) are near-copies: "Python Basics Part 1/2/3"
# EASE (Steck 2019) inverts the dense item Gram matrix: n^2 float32 during the fit (256 MB
# and ~8 s on one core at 8k courses). Catalogs above this size use RP3beta (sparse, blocked).
EASE_MAX_ITEMS = 10_000
EASE_LAMBDA = 200.0
RP3_ALPHA = 1.0
RP3_BETA = 0.5
VIEWED_DEMOTE = 0.3  # already seen, not bought: suggest again only behind fresh courses
# The one-course popularity weight is chosen at fit time on the store's own data: a sample of
# learners with 2+ bought courses lose one course drawn at random (seeded; not the latest:
# stores whose timestamps are only an order would learn that order), the fit is redone
# without it and each weight of the grid ranks it from the latest remaining course alone
# (NDCG@10). Popularity
# wins where learners are alike (MOOCCube's most active ones) and loses on long tails
# (COCO), so no fixed weight suits every store.
ONE_POPULARITY_GRID = (0.0, 0.05, 0.3, 1.0, 3.0, 10.0)
ONE_POPULARITY_DEFAULT = 1.0  # too few learners to choose: COCO-valid's choice
ONE_SPLIT_LEARNERS = 2000
ONE_SPLIT_MIN = 50  # fewer sampled learners than this: the choice would be noise
ONE_SPLIT_CELLS = 100_000_000  # learners x courses x weights scored: bounds the cost
ONE_SPLIT_SEED = 20240601
ONE_SPLIT_K = 10

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
Ints = NDArray[np.int64]


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
    copurchase: float = 1.0  # the collaborative signal, whichever method ``collab`` picks
    popularity: float = 0.05  # content and popularity: the best on COCO-valid (evaluate --grid)
    # Added to ``popularity`` for a learner with exactly one course: one course is a thin
    # collaborative signal and what most learners take is a strong prior. None: ``fit``
    # chooses it from ONE_POPULARITY_GRID on the store's own data (see there).
    one_popularity: float | None = None
    # Interests only: courses whose interest match reaches this share of the best match
    # are "within the interests" and ranked by popularity (text breaks ties).
    cold_match: float = 0.3
    cold_popularity: float = 1.0  # 0: interests only rank by text alone (a baseline)
    collab: str = "auto"  # "ease" | "rp3" | "knn"; auto: EASE up to EASE_MAX_ITEMS
    diversify: bool = True  # False: plain top-k (``evaluate``'s baselines)


def _scale(x: F64) -> F64:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


def _scale_into(x: F64, weight: float) -> None:
    """x *= weight / max(x), in place (one pass over a catalog-sized array)."""
    top = float(x.max()) if x.size else 0.0
    if top > 0:
        x *= weight / top


def _gather(m: sp.csr_matrix, rows: Ints, weights: F64) -> tuple[Ints, F64]:
    """Column indices and weighted values of the given rows, concatenated."""
    starts = m.indptr[rows]
    ends = m.indptr[rows + 1]
    if int((ends - starts).sum()) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    cols = np.concatenate([m.indices[s:e] for s, e in zip(starts, ends, strict=True)])
    vals = np.concatenate([m.data[s:e] for s, e in zip(starts, ends, strict=True)])
    return cols.astype(np.int64), vals * np.repeat(weights, ends - starts)


def _bincount(idx: Ints, weights: F64, size: int = 0) -> F64:
    return np.bincount(idx, weights=weights, minlength=size).astype(np.float64, copy=False)


def _sum_sparse(cols: Ints, vals: F64) -> tuple[Ints, F64]:
    """Merge duplicate columns of a sparse vector (sorted by column)."""
    if cols.size == 0:
        return cols, vals
    uniq, inv = np.unique(cols, return_inverse=True)
    return uniq.astype(np.int64), _bincount(inv.astype(np.int64), vals)


def _top_rows(scores: F64, n: int) -> Ints:
    """The ``n`` best rows, best first, ties in row order (never dependent on how the
    partition fell). Scores are >= 0, or -inf for rows that are not allowed."""
    if n <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    # Partition only the positive scores: with most of a big catalog at 0, numpy's
    # introselect on the whole array degrades (5-15 ms instead of 0.5 ms at 100k).
    pos = np.flatnonzero(scores > 0)
    if len(pos) > n:
        sub = scores[pos]
        cut = sub[np.argpartition(-sub, n - 1)[n - 1]]
        above = pos[sub > cut]
        rows = np.concatenate([above, pos[sub == cut][: n - len(above)]])
    else:
        rows = np.concatenate([pos, np.flatnonzero(scores == 0)[: n - len(pos)]])
    return rows[np.lexsort((rows, -scores[rows]))].astype(np.int64)


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


def _tfidf(ordered: list[CourseDoc]) -> tuple[sp.csr_matrix, F32]:
    """L2-normalised sublinear TF-IDF rows (scikit-learn's smooth idf), computed in place:
    at 100k courses every copy of the matrix is ~26 MB."""
    n = len(ordered)
    hasher = _hasher()
    # In blocks: hashing a whole catalog at once peaks far higher.
    blocks = [hasher.transform(ordered[i : i + HASH_BLOCK]) for i in range(0, n, HASH_BLOCK)]
    for b in blocks:
        b.sum_duplicates()
    # Stacked by hand, freeing each block once copied: vstack would hold two full copies.
    nnz = sum(b.nnz for b in blocks)
    index_dtype = np.int32 if nnz < 2**31 else np.int64
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=index_dtype)
    indptr = np.zeros(n + 1, dtype=index_dtype)
    pos = row = 0
    blocks.reverse()
    while blocks:
        b = blocks.pop()
        data[pos : pos + b.nnz] = b.data
        indices[pos : pos + b.nnz] = b.indices
        indptr[row + 1 : row + 1 + b.shape[0]] = b.indptr[1:] + pos
        pos += b.nnz
        row += b.shape[0]
        del b
    x = sp.csr_matrix((data, indices, indptr), shape=(n, HASH_FEATURES), copy=False)
    df = np.bincount(x.indices, minlength=HASH_FEATURES)
    if n >= MAX_DF_MIN_DOCS:
        x.data[df[x.indices] > MAX_DF * n] = 0.0
        x.eliminate_zeros()
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    del df
    np.log(x.data, out=x.data)
    x.data += 1.0
    x.data *= idf[x.indices]
    row_sq = np.add.reduceat(x.data**2, x.indptr[:-1]) if x.nnz else np.zeros(n)
    row_sq[np.diff(x.indptr) == 0] = 0.0  # reduceat repeats a value for empty rows
    norms = np.sqrt(row_sq).astype(np.float32)
    norms[norms == 0] = 1.0
    x.data /= np.repeat(norms, np.diff(x.indptr))
    return x, idf


def _hasher() -> HashingVectorizer:
    return HashingVectorizer(
        analyzer=doc_features,
        n_features=HASH_FEATURES,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )


def user_item_matrix(ids: Ints, interactions: Iterable[Interaction]) -> sp.csr_matrix:
    """Learners x courses, one strength per pair: the strongest event (bought beats viewed).
    Events of courses not in ``ids`` are ignored."""
    return _user_item(ids, interactions)[0]


def _user_item(ids: Ints, interactions: Iterable[Interaction]) -> tuple[sp.csr_matrix, F64]:
    """``user_item_matrix`` and the time of each stored entry (aligned with its ``data``)."""
    n = len(ids)
    users: dict[int, int] = {}
    # C arrays rather than a dict of pairs: a store has millions of events.
    user_col, course_col, weight_col = array("i"), array("q"), array("f")
    ts_col = array("d")
    add_user, add_course, add_weight = user_col.append, course_col.append, weight_col.append
    add_ts = ts_col.append
    weight_of, user_number = KIND_WEIGHT.get, users.get
    for it in interactions:
        weight = weight_of(it.kind, 0.0)
        if weight > 0:
            number = user_number(it.user_id)
            if number is None:
                number = users[it.user_id] = len(users)
            add_user(number)
            add_course(it.course_id)
            add_weight(weight)
            add_ts(it.ts)
    u = np.frombuffer(user_col, dtype=np.int32).astype(np.int64)
    # Rows in learner-id order, not arrival order: the fit-time sample (see
    # ``_one_course_split``) must not depend on the order the store returns events in.
    uid = np.fromiter(users, dtype=np.int64, count=len(users))
    rank = np.empty(len(uid), dtype=np.int64)
    rank[np.argsort(uid, kind="stable")] = np.arange(len(uid))
    u = rank[u]
    course = np.frombuffer(course_col, dtype=np.int64)
    w = np.frombuffer(weight_col, dtype=np.float32)
    ts = np.frombuffer(ts_col, dtype=np.float64)
    r = np.searchsorted(ids, course) if n else np.zeros(len(course), dtype=np.int64)
    known = r < n
    known[known] = ids[r[known]] == course[known]
    u, r, w, ts = u[known], r[known], w[known], ts[known]
    key = u * n + r
    order = np.lexsort((ts, w, key))  # per pair the strongest event, then the latest
    last = np.ones(len(order), dtype=bool)
    last[:-1] = key[order][1:] != key[order][:-1]
    pick = order[last]  # sorted by (learner, course): already CSR order
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(u[pick], minlength=len(users)), out=indptr[1:])
    ui = sp.csr_matrix(
        (w[pick].astype(np.float32), r[pick], indptr), shape=(len(users), n), dtype=np.float32
    )
    return ui, ts[pick]


def _blocked_item_item(
    left: sp.csr_matrix,
    right: sp.csr_matrix,
    finish: Callable[[sp.csr_matrix, Ints], None],
    k: int = NEIGHBOURS,
    l1_rows: bool = False,
) -> sp.csr_matrix:
    """``left @ right`` (courses x learners times learners x courses), in blocks of
    courses pruned to the ``k`` strongest per row as they come: the full co-occurrence
    matrix of a big store is many times larger than what we keep. A block ends when its
    rows' co-occurrence bound (the sum of their learners' course counts) reaches
    NEIGHBOUR_BLOCK_PAIRS, so the popular head does not make one huge block. ``finish``
    rescales a block's entries in place (given their row numbers); the diagonal is
    dropped (a course is not its own neighbour). ``l1_rows``: each kept row sums to 1
    (done per block: normalising the stacked matrix would copy it, 80 MB at 100k courses)."""
    n = left.shape[0]
    per_user = np.diff(right.indptr).astype(np.float64)
    bound = np.cumsum(np.asarray(left.astype(bool) @ per_user).ravel())
    cuts = np.searchsorted(
        bound, np.arange(1, 1 + bound[-1] // NEIGHBOUR_BLOCK_PAIRS) * NEIGHBOUR_BLOCK_PAIRS
    )
    edges = np.unique(np.concatenate([[0], cuts + 1, [n]]).clip(0, n))
    blocks = []
    for start, stop in pairwise(edges.tolist()):
        co = sp.csr_matrix((left[start:stop] @ right).tocsr(), dtype=np.float32)
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr)) + start
        finish(co, rows)
        co.data[co.indices == rows] = 0.0
        co.eliminate_zeros()
        kept = _prune_rows(co, k)
        if l1_rows and kept.nnz:
            counts = np.diff(kept.indptr)
            row_of = np.repeat(np.arange(len(counts)), counts)
            sums = np.bincount(row_of, weights=kept.data, minlength=len(counts))
            kept.data /= sums[row_of].astype(np.float32)
        blocks.append(kept)
        del co, rows, kept
    return sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float32)


def item_knn(ui: sp.csr_matrix, k: int = NEIGHBOURS) -> sp.csr_matrix:
    """Item-item cosine over who bought what, the ``k`` strongest neighbours per course.
    Heavy users (who bought half the catalog) would make every pair co-occur: each user's
    contribution is damped by 1/log2(2 + their course count)."""
    damp = (1.0 / np.log2(2.0 + np.diff(ui.indptr))).astype(np.float32)
    weighted = (sp.diags(damp) @ ui).tocsr()
    norms = np.sqrt(np.asarray(ui.multiply(weighted).sum(axis=0), dtype=np.float64).ravel())
    norms[norms == 0] = 1.0
    inv = (1.0 / norms).astype(np.float32)

    def finish(co: sp.csr_matrix, rows: Ints) -> None:
        co.data *= inv[rows] * inv[co.indices]

    return _blocked_item_item(ui.T.tocsr(), weighted, finish, k)


def rp3beta(
    ui: sp.csr_matrix, alpha: float = RP3_ALPHA, beta: float = RP3_BETA, k: int = NEIGHBOURS
) -> sp.csr_matrix:
    """RP3beta (Paudel et al. 2017): the probability of a two-step walk course -> learner
    -> course, raised to ``alpha``, divided by the target's popularity to the ``beta``
    (so the popular head does not neighbour everything), then rows L1-normalised."""
    binary = ui.astype(bool).astype(np.float32)
    user_deg = np.asarray(binary.sum(axis=1), dtype=np.float64).ravel()
    item_deg = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
    p_ui = (sp.diags((1.0 / np.maximum(user_deg, 1)).astype(np.float32)) @ binary).tocsr()
    p_iu = (sp.diags((1.0 / np.maximum(item_deg, 1)).astype(np.float32)) @ binary.T).tocsr()
    penalty = (1.0 / np.maximum(item_deg, 1) ** beta).astype(np.float32)
    del binary  # the fit's peak is what the 300 MB goal at 100k courses is about

    def finish(co: sp.csr_matrix, _rows: Ints) -> None:
        if alpha != 1.0:
            np.power(co.data, alpha, out=co.data)
        co.data *= penalty[co.indices]

    return _blocked_item_item(p_iu, p_ui, finish, k, l1_rows=True)


def ease(ui: sp.csr_matrix, lam: float = EASE_LAMBDA, k: int = NEIGHBOURS) -> sp.csr_matrix:
    """EASE (Steck 2019): B = I - P diagMat(1/diag(P)), P = (X'X + lam I)^-1, over the
    courses anyone has bought; row i holds what owning i adds to every other course.
    Kept sparse: the ``k`` largest positive weights per row (the request is a gather)."""
    n = ui.shape[1]
    binary = ui.astype(bool).astype(np.float32).tocsc()
    active = np.flatnonzero(np.diff(binary.indptr))
    if len(active) == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    x = binary[:, active]
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
    gram[np.diag_indices_from(gram)] += lam
    # Cholesky then its inverse: a third of the work of np.linalg.inv, in place (the
    # transpose of a symmetric C array is the same matrix in LAPACK's Fortran order, so
    # no copy: the peak is one m x m float32 array, 400 MB at EASE_MAX_ITEMS courses).
    chol, info = lapack.spotrf(gram.T, lower=1, overwrite_a=1)
    del gram
    if info != 0:  # cannot happen for lam > 0; fall back rather than fail a refresh
        return item_knn(ui, k)
    p, info = lapack.spotri(chol, lower=1, overwrite_c=1)
    del chol
    m = len(active)
    step = 1024
    for s in range(0, m, step):  # the lower triangle holds P: mirror it, block by block
        e = min(s + step, m)
        block = p[s:e, s:e]
        block[:] = np.tril(block) + np.tril(block, -1).T
        p[s:e, e:] = p[e:, s:e].T
    diag = np.diag(p).copy()
    rows_out, cols_out, vals_out = [], [], []
    for s in range(0, m, step):
        e = min(s + step, m)
        b = -p[s:e] / diag[None, :]
        b[np.arange(e - s), np.arange(s, e)] = 0.0
        top = min(k, m - 1) if m > 1 else 1
        idx = np.argpartition(-b, top - 1, axis=1)[:, :top]
        vals = np.take_along_axis(b, idx, axis=1)
        keep = vals > 0
        rows_out.append(np.repeat(np.arange(s, e), keep.sum(axis=1)))
        cols_out.append(idx[keep])
        vals_out.append(vals[keep])
    del p
    r = active[np.concatenate(rows_out)]
    c = active[np.concatenate(cols_out)]
    return sp.csr_matrix(
        (np.concatenate(vals_out).astype(np.float32), (r, c)), shape=(n, n), dtype=np.float32
    )


def _method(collab: str, n: int) -> Callable[[sp.csr_matrix], sp.csr_matrix]:
    if collab == "auto":  # by catalog size: the memory and refit time are predictable
        collab = "ease" if n <= EASE_MAX_ITEMS else "rp3"
    methods: dict[str, Callable[[sp.csr_matrix], sp.csr_matrix]] = {
        "ease": ease,
        "rp3": rp3beta,
        "knn": item_knn,
    }
    return methods[collab]


def _collaborative(
    ui: sp.csr_matrix, method: Callable[[sp.csr_matrix], sp.csr_matrix]
) -> tuple[sp.csr_matrix, F64]:
    """Item-item weights and popularity (0..1, log of learners per course)."""
    n = ui.shape[1]
    if ui.nnz == 0:
        return sp.csr_matrix((n, n), dtype=np.float32), np.zeros(n)
    popularity = np.log1p(np.asarray(ui.sum(axis=0), dtype=np.float64).ravel())
    return method(ui), _scale(popularity)


def _one_course_split(ui: sp.csr_matrix, ts: F64) -> tuple[sp.csr_matrix, Ints, Ints] | None:
    """Training matrix without the held-out entries, the one course each sampled learner
    keeps (their latest other bought course) and the course held out (a random one)."""
    n_users, n = ui.shape
    bought = ui.data >= 1.0  # purchases and finished lessons; views say less
    row_of = np.repeat(np.arange(n_users), np.diff(ui.indptr))
    eligible = np.flatnonzero(np.bincount(row_of[bought], minlength=n_users) >= 2)
    cap = min(ONE_SPLIT_LEARNERS, ONE_SPLIT_CELLS // max(n * len(ONE_POPULARITY_GRID), 1))
    # At most half of them: in a small store the other half keeps its co-purchases intact.
    size = min(cap, len(eligible) // 2)
    if size < ONE_SPLIT_MIN:
        return None
    rng = np.random.default_rng(ONE_SPLIT_SEED)
    users = np.sort(rng.choice(eligible, size=size, replace=False))
    given, held, drop = [], [], []
    for u in users.tolist():
        pos = np.arange(ui.indptr[u], ui.indptr[u + 1])[bought[ui.indptr[u] : ui.indptr[u + 1]]]
        pos = pos[np.lexsort((ui.indices[pos], ts[pos]))]  # oldest first, ties by course
        i = int(rng.integers(len(pos)))
        rest = np.delete(pos, i)
        given.append(int(ui.indices[rest[-1]]))
        held.append(int(ui.indices[pos[i]]))
        drop.append(int(pos[i]))
    train = ui.copy()
    train.data[np.asarray(drop, dtype=np.int64)] = 0.0
    train.eliminate_zeros()
    return train, np.asarray(given, dtype=np.int64), np.asarray(held, dtype=np.int64)


def _choose_one_popularity(
    ui: sp.csr_matrix,
    ts: F64,
    method: Callable[[sp.csr_matrix], sp.csr_matrix],
    content: sp.csr_matrix,
    blend: Blend,
) -> float:
    """The weight of ONE_POPULARITY_GRID with the best NDCG@10 on a split of the store's own
    training data (see ONE_POPULARITY_GRID); ties go to the smaller weight. A one-course
    learner is scored as ``scores`` does, without building a second model (its inverted
    index would cost a copy of the TF-IDF matrix at the fit's peak): text is the cosine to
    the course's full row, and the diversity re-rank is skipped (~0.0001 NDCG@10)."""
    split = _one_course_split(ui, ts)
    if split is None:
        return ONE_POPULARITY_DEFAULT
    train, given, held = split
    neighbours, pop = _collaborative(train, method)
    del train
    grid = np.asarray(ONE_POPULARITY_GRID)[:, None]
    gains = np.zeros(len(ONE_POPULARITY_GRID))
    for g, h in zip(given.tolist(), held.tolist(), strict=True):
        base = np.asarray((content @ content[g].T).toarray(), dtype=np.float64).ravel()
        _scale_into(base, blend.content)
        start, end = neighbours.indptr[g], neighbours.indptr[g + 1]
        cf = np.zeros(len(base))
        cf[neighbours.indices[start:end]] = neighbours.data[start:end]
        _scale_into(cf, blend.copurchase)
        base += cf
        base += blend.popularity * pop
        base[g] = -np.inf
        scores = base[None, :] + grid * pop[None, :]
        rank = (scores > scores[:, h : h + 1]).sum(axis=1)
        gains += np.where(rank < ONE_SPLIT_K, 1.0 / np.log2(rank + 2.0), 0.0)
    if gains.max() <= 0:
        return ONE_POPULARITY_DEFAULT
    return float(ONE_POPULARITY_GRID[int(np.argmax(gains))])


class Recommender:
    def __init__(
        self,
        ids: Ints,
        titles: list[str],
        creators: Ints,
        idf: F32 | None,
        content: sp.csr_matrix,
        neighbours: sp.csr_matrix,
        popularity: F64,
        blend: Blend,
        one_popularity: float = ONE_POPULARITY_DEFAULT,
    ) -> None:
        self._ids = ids
        self._titles = titles  # the docs' own strings, for near-copy detection
        self._creators = creators  # -1: unknown; for at most PER_CREATOR per list
        self._idf = idf  # per hashed feature, for vectors built at request time
        self._interest_cache: dict[tuple[str, ...], tuple[Ints, F64]] = {}
        self._x = content  # courses x features, rows L2-normalised
        self._xt = content.T.tocsr()  # features x courses: the inverted index
        self._s = neighbours  # courses x courses, co-purchase cosine, top NEIGHBOURS a row
        self._pop = popularity
        self.blend = blend
        self._one_pop = one_popularity  # used while ``blend.one_popularity`` is None
        # (ids array, their rows, found): the promoted courses' rows, looked up once per
        # reload of the campaigns rather than on every recommendation (see ``ranked``).
        self._rows_memo: tuple[Ints, Ints, NDArray[np.bool_]] | None = None

    # -- fitting ---------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        docs: Sequence[CourseDoc],
        interactions: Iterable[Interaction] = (),
        blend: Blend | None = None,
    ) -> Recommender:
        blend = blend or Blend()
        by_id = {d.id: d for d in docs}
        ids = np.asarray(sorted(by_id), dtype=np.int64)
        ordered = [by_id[int(i)] for i in ids]
        del by_id
        n = len(ids)
        idf: F32 | None = None
        x = sp.csr_matrix((n, HASH_FEATURES), dtype=np.float32)
        if n:
            x, idf = _tfidf(ordered)
        titles = [d.title for d in ordered]
        creators = np.asarray(
            [-1 if d.creator_id is None else d.creator_id for d in ordered], dtype=np.int64
        )
        del ordered
        ui, ts = _user_item(ids, interactions)
        method = _method(blend.collab, n)
        one_pop = ONE_POPULARITY_DEFAULT
        # Chosen before the real fit (its model freed first): one fit's peak at a time.
        if blend.one_popularity is None:
            one_pop = _choose_one_popularity(ui, ts, method, x, blend)
        del ts
        neighbours, popularity = _collaborative(ui, method)
        return cls(ids, titles, creators, idf, x, neighbours, popularity, blend, one_pop)

    @property
    def one_popularity(self) -> float:
        """The one-course popularity weight in use (the blend's, or the one ``fit`` chose)."""
        b = self.blend.one_popularity
        return self._one_pop if b is None else b

    # -- scoring ---------------------------------------------------------------------

    @property
    def ids(self) -> Ints:
        """Course ids in row order (ascending): the order of ``scores``."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def _row(self, course_id: int) -> int | None:
        r = int(np.searchsorted(self._ids, course_id))
        return r if r < len(self._ids) and int(self._ids[r]) == course_id else None

    def _rows(self, course_ids: Iterable[int]) -> list[int]:
        wanted = np.unique(np.fromiter(course_ids, dtype=np.int64))
        r = np.searchsorted(self._ids, wanted)
        found = r < len(self._ids)
        found[found] = self._ids[r[found]] == wanted[found]
        return [int(x) for x in r[found]]

    def _profile_vector(
        self, interests: Sequence[str], weighted_rows: dict[int, float]
    ) -> tuple[Ints, F64]:
        rows = np.asarray(sorted(weighted_rows), dtype=np.int64)
        weights = np.asarray([weighted_rows[int(r)] for r in rows], dtype=np.float64)
        cols, vals = _sum_sparse(*_gather(self._x, rows, weights))
        if vals.size:
            vals = vals / float(np.sqrt((vals**2).sum()))
        if interests and self._idf is not None:
            icols, ivals = self._interest_vector(tuple(interests))
            cols, vals = _sum_sparse(
                np.concatenate([cols, icols]), np.concatenate([vals, INTEREST_WEIGHT * ivals])
            )
        if vals.size:
            order = np.lexsort((cols, -vals))[:QUERY_FEATURES]
            df = self._xt.indptr[cols[order] + 1] - self._xt.indptr[cols[order]]
            within = np.cumsum(df) <= POSTINGS_BUDGET
            within[0] = True  # the strongest feature always counts
            keep = np.sort(order[within])
            cols, vals = cols[keep], vals[keep]
        return cols, vals

    def _interest_vector(self, interests: tuple[str, ...]) -> tuple[Ints, F64]:
        """Onboarding interests as a TF-IDF vector of a pseudo-course titled with them.
        Learners pick from a handful of topics, so the vectors are cached."""
        hit = self._interest_cache.get(interests)
        if hit is not None:
            return hit
        assert self._idf is not None
        counts = _hasher().transform([CourseDoc(id=0, title=" ".join(interests))]).tocsr()
        cols = counts.indices.astype(np.int64)
        vals = (1.0 + np.log(counts.data.astype(np.float64))) * self._idf[cols].astype(np.float64)
        norm = float(np.sqrt((vals**2).sum()))
        vec = (cols, vals / norm if norm > 0 else vals)
        if len(self._interest_cache) < 4096:
            self._interest_cache[interests] = vec
        return vec

    def _content_scores(self, cols: Ints, vals: F64) -> F64:
        rows, w = _gather(self._xt, cols, vals)
        return _bincount(rows, w, len(self._ids))

    def _copurchase_scores(self, weighted_rows: dict[int, float]) -> F64:
        if not weighted_rows or self._s.nnz == 0:
            return np.zeros(len(self._ids))
        rows = np.asarray(sorted(weighted_rows), dtype=np.int64)
        weights = np.asarray([weighted_rows[int(r)] for r in rows], dtype=np.float64)
        cols, w = _gather(self._s, rows, weights)
        return _bincount(cols, w, len(self._ids))

    def _diversify(self, scores: F64, k: int) -> list[int]:
        """Top ``k`` by score, with a light re-rank: a near-copy of a chosen course (titles
        alike, "Python Basics Part 1/2/3") or a creator's course beyond ``PER_CREATOR``
        waits until the fresh courses of the pool are used. Only titles of chosen courses
        are compared, so it costs a few rapidfuzz calls, not a pairwise matrix."""
        pool = _top_rows(scores, max(POOL, 3 * k))
        if not self.blend.diversify:
            return [int(self._ids[r]) for r in pool[:k]]
        chosen: list[int] = []
        deferred: list[int] = []
        titles: list[str] = []
        per_creator: dict[int, int] = {}
        for r in pool.tolist():
            if len(chosen) == k:
                break
            creator = int(self._creators[r])
            title = normalize(self._titles[r])
            crowded = creator >= 0 and per_creator.get(creator, 0) >= PER_CREATOR
            alike = bool(title) and any(fuzz.ratio(title, t) >= NEAR_TITLE for t in titles)
            if crowded or alike:
                deferred.append(r)
                continue
            chosen.append(r)
            titles.append(title)
            if creator >= 0:
                per_creator[creator] = per_creator.get(creator, 0) + 1
        chosen += deferred[: k - len(chosen)]
        return [int(self._ids[r]) for r in chosen]

    def scores(self, profile: Profile) -> F64:
        """Blended relevance of every course (row order = ascending course id)."""
        b = self.blend
        weighted: dict[int, float] = {}
        for r in self._rows(profile.viewed):
            weighted[r] = VIEW_WEIGHT
        for r in self._rows(profile.owned):
            weighted[r] = 1.0
        total = self._content_scores(*self._profile_vector(profile.interests, weighted))
        if not weighted:
            return self._cold_scores(total)
        _scale_into(total, b.content)
        cf = self._copurchase_scores(weighted)
        _scale_into(cf, b.copurchase)
        total += cf
        total += (b.popularity + (self.one_popularity if len(weighted) == 1 else 0.0)) * self._pop
        return total

    def _cold_scores(self, match: F64) -> F64:
        """Interests only: the most popular courses within the interests (a match of at
        least ``cold_match`` of the best one), then everything else by popularity. The
        text match breaks ties, and ranks alone while nothing has been bought."""
        _scale_into(match, 1.0)
        within = match >= max(self.blend.cold_match, 1e-9)
        return self.blend.cold_popularity * self._pop + 2.0 * within + 0.01 * match

    def recommend(self, profile: Profile, k: int = 10) -> list[int]:
        return self.ranked(profile, k)[0]

    def ranked(self, profile: Profile, k: int = 10) -> tuple[list[int], Callable[[Ints], F64]]:
        """The recommendations, and the relevance (0..1, relative to this learner's best
        score) of any other courses, from the same scores: a sponsored slot is judged by
        what the learner would be recommended, without scoring the catalog twice."""
        if k <= 0 or not len(self._ids):
            return [], lambda wanted: np.zeros(len(wanted))
        scores = self.scores(profile)
        scores[self._rows(profile.viewed)] *= VIEWED_DEMOTE
        scores[self._rows((*profile.owned, *profile.exclude))] = -np.inf

        def relevance(wanted: Ints) -> F64:
            best = float(scores.max()) if len(wanted) else 0.0
            if best <= 0:
                return np.zeros(len(wanted))
            rows, found = self._rows_of(wanted)
            rel = np.where(found, scores[rows], -np.inf) / best
            return np.maximum(np.nan_to_num(rel, neginf=0.0), 0.0)

        return self._diversify(scores, k), relevance

    def _rows_of(self, wanted: Ints) -> tuple[Ints, NDArray[np.bool_]]:
        """Rows of these course ids and which of them exist, remembered for the last array
        asked about (the campaigns' ids stay one array until they are reloaded)."""
        memo = self._rows_memo
        if memo is not None and memo[0] is wanted:
            return memo[1], memo[2]
        rows = np.minimum(np.searchsorted(self._ids, wanted), len(self._ids) - 1)
        found = self._ids[rows] == wanted
        self._rows_memo = (wanted, rows, found)
        return rows, found

    def similar(self, course_id: int, k: int = 5) -> list[int]:
        r = self._row(course_id)
        if r is None or k <= 0:
            return []
        b = self.blend
        one = {r: 1.0}
        cols, vals = self._profile_vector((), one)
        content = _scale(self._content_scores(cols, vals))
        cf = _scale(self._copurchase_scores(one))
        scores = b.content * content + b.copurchase * cf + b.popularity * self._pop
        scores[(content <= 0) & (cf <= 0)] = -np.inf  # popularity alone is no similarity
        scores[r] = -np.inf
        return self._diversify(scores, k)
