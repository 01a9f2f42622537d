"""Course search by words: each query word finds its closest title words, then a small
candidate set is ranked by coverage, order and position.

Why words and not one fuzzy string: ``WRatio`` over "title + tags" punishes long texts and
cannot tell a rare word from a common one, so one mistyped word or a half-typed title lost
to unrelated short titles (issue 18). Here:

* Text becomes tokens: a Latin-script word, or one CJK character (Chinese has no spaces,
  and one character is the unit a learner mistypes or leaves out).
* Each query token is looked up in the vocabulary: exactly, within a typo budget that
  grows with its length (0 edits up to 3 characters, 1 up to 7, 2 beyond; transpositions
  count as one edit), and — for the last token, which may still be being typed — as a
  prefix. Typo look-up is a SymSpell deletion neighbourhood (hashes of every word with up
  to 1–2 letters deleted, in a sorted numpy array), so it is exact and costs the same at
  100 courses or 100,000: the first stage cannot lose a short rare word the way an n-gram
  overlap cut-off can.
* A token weighs its idf: rare words decide, "for" and "the" barely count. The title is
  the main field; tags and the description's first words are a second field at
  ``TAG_WEIGHT`` that can only add (a course never loses for having tags).
* The postings of the matched words give every course a coverage score; the best
  ``CANDIDATES`` are then scored in Python: coverage of the query, coverage of the title
  (a short title that is all query beats a long one that mentions it), query words in the
  title's order, next to each other, and at its start. A title equal to the normalised
  query always ranks first.

The index is immutable once built: build a new one in a worker thread and swap the
reference (see ``bot.services.search``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.recommend.text import CourseDoc, normalize, search_text

MAX_QUERY_CHARS = 200
# Tokens of a query that count: a pasted paragraph costs no more than a long title.
MAX_QUERY_TOKENS = 12
# Longer "words" are pasted junk: their deletion neighbourhood would cost ~n² strings.
MAX_TYPO_WORD = 24
# Courses scored in Python after the vectorised first stage.
CANDIDATES = 64
# Completions of a half-typed last word used to find candidates (the most common first);
# the ranking stage still recognises every completion.
PREFIX_COMPLETIONS = 48
# Typo alternatives per query word (the closest first).
MAX_ALTERNATIVES = 24
# A second-field (tags, description) match counts this much of a title match.
TAG_WEIGHT = 0.35
# Description words that join the second field: its opening says what the course is.
DESCRIPTION_WORDS = 40
# Below this share of the query's weight matched, a course is noise.
MIN_COVERAGE = 0.3
# Ranking: share of the query matched, share of the title covered, query words in the
# title's order, next to each other, the first at the title's start (sum 1).
WEIGHTS = (0.70, 0.12, 0.06, 0.08, 0.04)
# Similarity of a word within one / two edits, and of a prefix (grows with the share typed).
SIM_EDIT = (1.0, 0.82, 0.66)
SIM_PREFIX_BASE, SIM_PREFIX_SPAN = 0.72, 0.2

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")


@dataclass(frozen=True, slots=True)
class SearchHit:
    course_id: int
    score: float  # 0..100


def tokens(text: str) -> list[str]:
    """Latin-script words and single CJK characters of NFKC-folded, case-folded text, in
    order, repeats kept."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def title_key(text: str) -> str:
    """What "the same title" means: case, width and punctuation folded."""
    return " ".join(tokens(text))


def typo_budget(word: str) -> int:
    """Edits forgiven in a query word: none for short words (too many neighbours) or
    numbers and CJK (a different number or character is a different thing)."""
    if len(word) <= 3 or len(word) > MAX_TYPO_WORD or not word.isalpha() or _is_cjk(word):
        return 0
    return 1 if len(word) <= 7 else 2


def _is_cjk(token: str) -> bool:
    return len(token) == 1 and _CJK_CHAR.match(token) is not None


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def _index_depth(word: str) -> int:
    # A query word within 2 edits is 8+ letters, so a word shorter than 6 never needs
    # depth 2; one within 1 edit is 4+ letters, so 3 letters is the shortest at depth 1.
    if not word.isalpha() or _is_cjk(word) or len(word) < 3 or len(word) > MAX_TYPO_WORD + 2:
        return 0
    return 2 if len(word) >= 6 else 1


def _best(scores: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    """Positions of the ``n`` highest scores; ties at the cut go to the lowest positions,
    so the answer never depends on how the partition fell. Unordered."""
    if len(scores) <= n:
        return np.arange(len(scores))
    cut = scores[np.argpartition(-scores, n - 1)[n - 1]]
    above = np.flatnonzero(scores > cut)
    tied = np.flatnonzero(scores == cut)[: n - len(above)]
    return np.concatenate([above, tied])


def _ints(values: array[int]) -> NDArray[np.int32]:
    return np.frombuffer(values, dtype=np.int32) if len(values) else np.empty(0, np.int32)


def _indptr(lengths: array[int]) -> NDArray[np.int64]:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(_ints(lengths), out=out[1:])
    return out


def _postings(
    flat: NDArray[np.int32], indptr: NDArray[np.int64], words: int, dedupe: bool
) -> sp.csc_matrix:
    """(course -> word ids) into (word -> courses) postings, each list in course order."""
    # A copy: scipy keeps the arrays it is given and sum_duplicates sorts them in place.
    m = sp.csr_matrix(
        (np.ones(len(flat), dtype=np.int8), flat.copy(), indptr.copy()),
        shape=(len(indptr) - 1, words),
    )
    if dedupe:
        m.sum_duplicates()  # a repeated title word is one posting
    return m.tocsc()


@dataclass(slots=True)
class _QueryToken:
    text: str
    weight: float
    # word id -> similarity (exact 1.0, typo alternatives less).
    alternatives: dict[int, float]
    # Word ids [lo, hi) of the sorted vocabulary that complete a half-typed last word.
    prefix: tuple[int, int]

    def sim(self, wid: int, vocab: list[str]) -> float:
        s = self.alternatives.get(wid, 0.0)
        lo, hi = self.prefix
        if lo <= wid < hi and s < 1.0:
            share = len(self.text) / max(len(vocab[wid]), 1)
            s = max(s, SIM_PREFIX_BASE + SIM_PREFIX_SPAN * share)
        return s


class SearchIndex:
    __slots__ = (
        "_del_keys",
        "_del_words",
        "_exact_keys",
        "_exact_rows",
        "_idf",
        "_ids",
        "_langs",
        "_max_idf",
        "_second",
        "_title",
        "_title_idf",
        "_title_indptr",
        "_title_tokens",
        "_vocab",
        "_word_id",
    )

    def __init__(self) -> None:
        self._ids: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._langs: list[str] = []
        self._vocab: list[str] = []
        self._word_id: dict[str, int] = {}
        self._idf: NDArray[np.float32] = np.empty(0, dtype=np.float32)
        self._max_idf = 1.0
        self._title: sp.csc_matrix = sp.csc_matrix((0, 0))
        self._second: sp.csc_matrix = sp.csc_matrix((0, 0))
        self._title_tokens: NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._title_indptr: NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._title_idf: NDArray[np.float32] = np.empty(0, dtype=np.float32)
        self._exact_keys: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._exact_rows: NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._del_keys: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._del_words: NDArray[np.int32] = np.empty(0, dtype=np.int32)

    @classmethod
    def build(cls, docs: Iterable[CourseDoc]) -> SearchIndex:
        # Sorted by id so that ties break the same way whatever order the docs came in.
        by_id = {d.id: d for d in docs}
        ordered = [by_id[i] for i in sorted(by_id)]
        self = cls()
        self._ids = np.fromiter((d.id for d in ordered), dtype=np.int64, count=len(ordered))
        self._langs = [d.language for d in ordered]
        # One pass, straight to word ids in flat C arrays: 100,000 courses hold ~2M
        # tokens, and lists of token strings would cost hundreds of MB at the peak.
        first_seen: dict[str, int] = {}
        title_flat, title_len = array("i"), array("i")
        second_flat, second_len = array("i"), array("i")
        exact = array("q")
        for d in ordered:
            ts = tokens(d.title)
            title_flat.extend([first_seen.setdefault(t, len(first_seen)) for t in ts])
            title_len.append(len(ts))
            exact.append(hash(" ".join(ts)))
            extra = tokens(" ".join((*d.tags, *d.description.split()[:DESCRIPTION_WORDS])))
            wids = sorted({first_seen.setdefault(t, len(first_seen)) for t in extra})
            second_flat.extend(wids)
            second_len.append(len(wids))
        # Word ids in sorted order, so that a prefix's completions are one id range.
        vocab = sorted(first_seen)
        remap = np.empty(len(vocab), dtype=np.int32)
        for new_id, word in enumerate(vocab):
            remap[first_seen[word]] = new_id
        self._vocab = vocab
        self._word_id = {w: i for i, w in enumerate(vocab)}
        del first_seen
        title_ids = remap[_ints(title_flat)]
        self._title_tokens = title_ids
        self._title_indptr = _indptr(title_len)
        self._title = _postings(title_ids, self._title_indptr, len(vocab), dedupe=True)
        self._second = _postings(
            remap[_ints(second_flat)], _indptr(second_len), len(vocab), dedupe=False
        )
        df = np.diff(self._title.indptr).astype(np.float64)
        # A word only in tags counts half a document: it is weaker evidence of the topic.
        df += 0.5 * np.diff(self._second.indptr)
        n = max(len(ordered), 1)
        self._idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        self._max_idf = float(math.log(1.0 + n) + 1.0)
        lengths = np.diff(self._title_indptr)
        owner = np.repeat(np.arange(len(ordered)), lengths)
        sums = np.bincount(owner, weights=self._idf[title_ids], minlength=len(ordered))
        # An empty title (punctuation only) divides by 1, not 0.
        self._title_idf = np.maximum(sums, 1.0).astype(np.float32)
        keys = np.frombuffer(exact, dtype=np.int64) if len(exact) else np.empty(0, np.int64)
        order = np.argsort(keys, kind="stable")
        self._exact_keys, self._exact_rows = keys[order], order.astype(np.int32)
        self._build_deletes()
        return self

    def _build_deletes(self) -> None:
        keys = array("q")
        words = array("i")
        for wid, word in enumerate(self._vocab):
            depth = _index_depth(word)
            if depth == 0:
                continue
            variants = _deletes(word, depth)
            keys.extend(map(hash, variants))
            words.extend([wid] * len(variants))
        k = np.frombuffer(keys, dtype=np.int64) if len(keys) else np.empty(0, np.int64)
        w = np.frombuffer(words, dtype=np.int32) if len(words) else np.empty(0, np.int32)
        order = np.argsort(k, kind="stable")
        self._del_keys, self._del_words = k[order], w[order]

    def __len__(self) -> int:
        return len(self._ids)

    # -- query analysis -------------------------------------------------------------

    def _typo_alternatives(self, word: str) -> dict[int, float]:
        budget = typo_budget(word)
        out: dict[int, float] = {}
        exact = self._word_id.get(word)
        if exact is not None:
            out[exact] = 1.0
        if budget == 0 or len(self._del_keys) == 0:
            return out
        probes = np.fromiter(map(hash, _deletes(word, budget)), dtype=np.int64)
        lo = np.searchsorted(self._del_keys, probes, "left")
        hi = np.searchsorted(self._del_keys, probes, "right")
        found: set[int] = set()
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            if b > a:
                found.update(self._del_words[a:b].tolist())
        found.discard(exact if exact is not None else -1)
        scored = []
        for wid in found:
            d = OSA.distance(word, self._vocab[wid], score_cutoff=budget)
            if d <= budget:
                scored.append((d, -float(self._idf[wid]), wid))
        # Closest first; among equals, the more common word (a spelling prior).
        scored.sort(key=lambda t: (t[0], -t[1], t[2]))
        for d, _, wid in scored[:MAX_ALTERNATIVES]:
            out[wid] = SIM_EDIT[d]
        return out

    def _prefix_range(self, word: str) -> tuple[int, int]:
        lo = bisect_left(self._vocab, word)
        hi = bisect_left(self._vocab, word + "\U0010ffff", lo)
        return lo, hi

    def _analyse(self, toks: list[str]) -> list[_QueryToken]:
        out: list[_QueryToken] = []
        for n, tok in enumerate(toks, 1):
            alts = self._typo_alternatives(tok)
            last_latin = n == len(toks) and not _is_cjk(tok)
            prefix = self._prefix_range(tok) if last_latin else (0, 0)
            if alts:
                best = max(alts.values())
                weight = max(float(self._idf[w]) for w, s in alts.items() if s == best)
            elif prefix[1] > prefix[0]:
                weight = float(self._idf[prefix[0] : prefix[1]].min())
            else:
                weight = self._max_idf  # matches nothing: counts against every course alike
            out.append(_QueryToken(tok, weight, alts, prefix))
        return out

    def _seed_words(self, tok: _QueryToken) -> list[tuple[int, float]]:
        """The word ids whose postings find candidates for one token, with similarity."""
        seeds = dict(tok.alternatives)
        lo, hi = tok.prefix
        if hi > lo:
            span = np.arange(lo, hi)
            if hi - lo > PREFIX_COMPLETIONS:
                df = np.diff(self._title.indptr)[lo:hi]
                span = span[_best(df.astype(np.float64), PREFIX_COMPLETIONS)]
            for wid in span.tolist():
                seeds[wid] = max(seeds.get(wid, 0.0), tok.sim(wid, self._vocab))
        # Ascending similarity: a later (better) assignment overwrites an earlier one.
        return sorted(seeds.items(), key=lambda kv: kv[1])

    # -- search -----------------------------------------------------------------------

    def search(self, query: str, limit: int = 10, language: str | None = None) -> list[SearchHit]:
        """Up to ``limit`` courses for ``query``, best first. With ``language``, courses
        in it come first unless another one scores ``LANGUAGE_MARGIN`` points more."""
        if limit <= 0 or len(self) == 0:
            return []
        words = tokens(query[:MAX_QUERY_CHARS])
        qtoks = self._analyse(words[:MAX_QUERY_TOKENS])
        if not qtoks:
            return []
        # Every word, not just the first MAX_QUERY_TOKENS: a long Chinese title is one
        # token per character.
        exact = self._exact_matches(words)
        rows, seconds = self._first_stage(qtoks)
        matcher = self._matcher(qtoks)
        rows = np.union1d(rows, np.asarray(exact, dtype=np.intp)) if exact else rows
        exact_set = set(exact)
        scored = []
        total_weight = sum(t.weight for t in qtoks)
        for row in rows.tolist():
            cov, score = self._score(row, qtoks, matcher, seconds, total_weight)
            if row in exact_set:
                scored.append((100.0, row))
            elif cov >= MIN_COVERAGE:
                scored.append((min(score, 99.9), row))
        return self._order(scored, limit, language)

    def _exact_matches(self, words: list[str]) -> list[int]:
        """Rows whose title is the query, case, width and punctuation aside."""
        key = hash(" ".join(words))
        lo = int(np.searchsorted(self._exact_keys, key, "left"))
        hi = int(np.searchsorted(self._exact_keys, key, "right"))
        if lo == hi:
            return []
        wanted = [self._word_id.get(w, -1) for w in words]
        rows = []
        for row in self._exact_rows[lo:hi].tolist():  # a hash match: check the words
            a, b = self._title_indptr[row], self._title_indptr[row + 1]
            if self._title_tokens[a:b].tolist() == wanted:
                rows.append(row)
        return rows

    def _first_stage(
        self, qtoks: list[_QueryToken]
    ) -> tuple[NDArray[np.intp], list[NDArray[np.float32]]]:
        """Every course sharing a word with the query gets a weighted coverage; the best
        ``CANDIDATES`` go on. Also returns each token's second-field similarity per
        course, for the ranking stage."""
        n = len(self)
        total = np.zeros(n, dtype=np.float32)
        title_part = np.zeros(n, dtype=np.float32)
        # Scratch for one token's title similarity; only touched rows are reset, so a
        # token costs its postings, not the catalog's size.
        t_sim = np.zeros(n, dtype=np.float32)
        seconds = []
        for tok in qtoks:
            s_sim = np.zeros(n, dtype=np.float32)
            touched = []
            for wid, s in self._seed_words(tok):
                a, b = self._title.indptr[wid], self._title.indptr[wid + 1]
                rows = self._title.indices[a:b]
                t_sim[rows] = s
                touched.append(rows)
                a, b = self._second.indptr[wid], self._second.indptr[wid + 1]
                rows = self._second.indices[a:b]
                s_sim[rows] = s
                touched.append(rows)
            seconds.append(s_sim)
            if not touched:
                continue
            u = np.concatenate(touched)
            # Repeated rows in ``u`` add once: a fancy-index += is a gather, then a scatter.
            total[u] += tok.weight * np.maximum(t_sim[u], TAG_WEIGHT * s_sim[u])
            title_part[u] += tok.weight * t_sim[u]
            t_sim[u] = 0.0
        hit = np.flatnonzero(total)
        if len(hit) > CANDIDATES:
            # Query coverage first; how much of the title the query covers breaks ties,
            # so "python" keeps the short Python titles, not the first 64 by id.
            weight = sum(t.weight for t in qtoks)
            title_cov = np.minimum(title_part[hit] / self._title_idf[hit], 1.0)
            prelim = total[hit] / weight + 0.15 * title_cov
            hit = np.sort(hit[_best(prelim.astype(np.float64), CANDIDATES)])
        return hit, seconds

    def _matcher(self, qtoks: list[_QueryToken]) -> dict[int, list[tuple[int, float]]]:
        """word id -> (query token, similarity) for every exact or typo alternative."""
        out: dict[int, list[tuple[int, float]]] = {}
        for i, tok in enumerate(qtoks):
            for wid, s in tok.alternatives.items():
                out.setdefault(wid, []).append((i, s))
        return out

    def _score(
        self,
        row: int,
        qtoks: list[_QueryToken],
        matcher: dict[int, list[tuple[int, float]]],
        seconds: list[NDArray[np.float32]],
        total_weight: float,
    ) -> tuple[float, float]:
        """(share of the query's weight matched, score 0..100) of one course."""
        a, b = self._title_indptr[row], self._title_indptr[row + 1]
        title = self._title_tokens[a:b].tolist()
        # Where each query token could go in the title: one dict look-up per title word.
        spots: list[list[tuple[float, int]]] = [[] for _ in qtoks]
        last = qtoks[-1]
        lo, hi = last.prefix
        for j, wid in enumerate(title):
            for i, s in matcher.get(wid, ()):
                spots[i].append((s, j))
            if lo <= wid < hi:
                spots[-1].append((last.sim(wid, self._vocab), j))
        used: set[int] = set()
        matched = 0.0
        title_matched = 0.0
        pairs = in_order = adjacent = 0
        prev = -1
        start = 0.0
        for i, tok in enumerate(qtoks):
            pos, best = -1, 0.0
            for s, j in spots[i]:
                if j in used:
                    continue
                # Equal matches: the first after the previous word's (in order) wins.
                if s > best or (s == best and pos < prev < j):
                    pos, best = j, s
            second = TAG_WEIGHT * float(seconds[i][row])
            matched += tok.weight * max(best, second)
            if pos < 0:
                prev = -1
                continue
            used.add(pos)
            title_matched += float(self._idf[title[pos]])
            if i == 0 and pos == 0:
                start = 1.0
            if prev >= 0:
                pairs += 1
                in_order += pos > prev
                adjacent += pos == prev + 1
            prev = pos
        cov = matched / total_weight
        title_cov = min(title_matched / float(self._title_idf[row]), 1.0)
        if pairs:
            order, adj = in_order / pairs, adjacent / pairs
        else:
            order = adj = 1.0 if used else 0.0
        w_cov, w_title, w_order, w_adj, w_start = WEIGHTS
        score = 100.0 * (
            w_cov * cov + w_title * title_cov + w_order * order + w_adj * adj + w_start * start
        )
        return cov, score

    def _order(
        self, scored: list[tuple[float, int]], limit: int, language: str | None
    ) -> list[SearchHit]:
        def key(item: tuple[float, int]) -> tuple[float, int]:
            score, row = item
            if language and score < 100.0 and self._langs[row] != language:
                score -= LANGUAGE_MARGIN
            return (-score, row)

        scored.sort(key=key)
        return [
            SearchHit(course_id=int(self._ids[row]), score=round(score, 2))
            for score, row in scored[:limit]
        ]


class BruteForce:
    """WRatio over every course's title and tags: the previous search, which the benchmarks
    keep as their baseline. Not part of ``SearchIndex``: its strings cost ~9 MB at 100,000
    courses, which the bot never needs."""

    def __init__(self, docs: Iterable[CourseDoc]) -> None:
        by_id = {d.id: d for d in docs}
        self._ids = np.asarray(sorted(by_id), dtype=np.int64)
        self._texts = [search_text(by_id[int(i)]) for i in self._ids]

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        q = normalize(query[: MAX_QUERY_CHARS * 2])[:MAX_QUERY_CHARS]
        if not q or not self._texts:
            return []
        scores = process.cdist([q], self._texts, scorer=fuzz.WRatio, processor=None, workers=1)[0]
        keep = np.flatnonzero(scores >= 55.0)
        order = keep[np.lexsort((keep, -scores[keep]))][:limit]
        return [
            SearchHit(course_id=int(self._ids[i]), score=round(float(scores[i]), 2)) for i in order
        ]


# A course in another language than the learner's is shown first only when it scores
# this many points (of 100) more: e.g. all query words matched against half of them.
LANGUAGE_MARGIN = 15.0
