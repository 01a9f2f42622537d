"""EASE, RP3beta and the cold start on matrices small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bot.recommend import CourseDoc, Interaction, Profile, Recommender
from bot.recommend import model as m


def matrix(rows: list[list[int]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray(rows, dtype=np.float32))


def test_ease_two_courses_by_hand() -> None:
    # G = X'X = [[2, 1], [1, 1]]; with lambda 1, P = inv([[3, 1], [1, 2]]) = [[2, -1], [-1, 3]]/5
    # and B_ij = -P_ij / P_jj: B_01 = (1/5)/(3/5) = 1/3, B_10 = (1/5)/(2/5) = 1/2.
    b = m.ease(matrix([[1, 1], [1, 0]]), lam=1.0).toarray()
    assert b == pytest.approx(np.array([[0.0, 1 / 3], [1 / 2, 0.0]]), abs=1e-6)


def test_ease_matches_the_closed_form() -> None:
    rng = np.random.default_rng(5)
    x = (rng.random((40, 12)) < 0.3).astype(np.float32)
    x[:, 11] = 0  # a course nobody took: no row, no column
    got = m.ease(sp.csr_matrix(x), lam=3.0, k=50).toarray()
    g = x[:, :11].T.astype(np.float64) @ x[:, :11] + 3.0 * np.eye(11)
    p = np.linalg.inv(g)
    want = -p / np.diag(p)[None, :]
    np.fill_diagonal(want, 0.0)
    want = np.where(want > 0, want, 0.0)  # only the positive weights are kept
    assert got[:11, :11] == pytest.approx(want, abs=1e-4)
    assert not got[11].any() and not got[:, 11].any()


def test_ease_keeps_the_k_strongest_per_row() -> None:
    x = sp.csr_matrix((np.random.default_rng(1).random((60, 10)) < 0.5).astype(np.float32))
    b = m.ease(x, lam=1.0, k=3)
    assert np.diff(b.indptr).max() <= 3


def test_rp3beta_by_hand() -> None:
    # Learners: {0, 1}, {0, 2}, {0, 1}. From course 0 a two-step walk reaches 1 with
    # probability 1/3 and 2 with 1/6; beta divides by popularity^beta (2 and 1 learners).
    x = matrix([[1, 1, 0], [1, 0, 1], [1, 1, 0]])
    plain = m.rp3beta(x, alpha=1.0, beta=0.0).toarray()
    assert plain[0] == pytest.approx([0.0, 2 / 3, 1 / 3])
    assert plain[1] == pytest.approx([1.0, 0.0, 0.0])  # course 1 only ever leads to 0
    # beta 1: 1/3 / 2 == 1/6 / 1, so the rare course catches up with the popular one.
    assert m.rp3beta(x, alpha=1.0, beta=1.0).toarray()[0] == pytest.approx([0.0, 0.5, 0.5])


def test_auto_picks_ease_for_small_catalogs_and_rp3beta_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = [CourseDoc(i, f"course {i}") for i in range(1, 5)]
    inter = [Interaction(u, c, "purchase") for u in range(6) for c in (1, 2, 1 + u % 4)]
    ids = np.arange(1, 5)
    ui = m.user_item_matrix(ids, inter)
    small = Recommender.fit(docs, inter)
    assert (small._s != m.ease(ui)).nnz == 0
    monkeypatch.setattr(m, "EASE_MAX_ITEMS", 3)
    big = Recommender.fit(docs, inter)
    assert (big._s != m.rp3beta(ui)).nnz == 0


def test_interests_only_is_the_most_popular_within_them() -> None:
    docs = [
        CourseDoc(1, "Python Basics", tags=("python",)),
        CourseDoc(2, "Python Web", tags=("python",)),
        CourseDoc(3, "UI Design", tags=("design",)),
    ]
    # Design sells most, then Python Web; Python Basics matches "python" as well.
    inter = [Interaction(u, 3, "purchase") for u in range(9)]
    inter += [Interaction(u, 2, "purchase") for u in range(4)]
    model = Recommender.fit(docs, inter)
    assert model.recommend(Profile(interests=("python",)), k=3) == [2, 1, 3]
    # Interests that match nothing: overall popularity.
    assert model.recommend(Profile(interests=("knitting",)), k=2) == [3, 2]


def test_at_most_per_creator_then_the_rest() -> None:
    titles = ["Python", "Guitar chords", "Watercolour", "Public speaking", "Tax returns"]
    docs = [CourseDoc(i, t, creator_id=1) for i, t in enumerate(titles, start=1)]
    docs.append(CourseDoc(9, "Knitting", creator_id=2))
    inter = [Interaction(u, c, "purchase") for c in range(1, 6) for u in range(10 - c)]
    model = Recommender.fit(docs, inter)
    top = model.recommend(Profile(), k=6)
    assert top[: m.PER_CREATOR] == [1, 2, 3]
    assert top[m.PER_CREATOR] == 9  # the other creator before the fourth of creator 1
    assert sorted(top) == [1, 2, 3, 4, 5, 9]
