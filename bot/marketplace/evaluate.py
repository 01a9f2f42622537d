"""Offline evaluation of creator matching: ``python -m bot.marketplace.evaluate``.

Protocol: the recommender's own splits (``bot.recommend.evaluate``): one held-out course
per learner, every other course of theirs owned; only training interactions are fitted.
A case is a hit when the held-out course's creator ranks in the top 10 creators
(NDCG@10, one relevant creator per case). Two rankers, in the same run:

- ``popular_creators``: creators by distinct learners in training (the baseline);
- ``matching``: ``rank_creators`` over the shipped recommender's course scores.

Neither excludes anyone (the data has no follows), so both may rank a creator the
learner already bought from.

Creators: COCO's derived files carry no instructor (courses_coco_kg.csv has categories,
concepts, level, language, audience). Checked upstream too: the source repository's
preprocessed/r_map.txt has exactly those five relations, and the products.txt its
main.py writes with ``provider_id`` (from COCO's teach_latest.csv) is not in the
repository nor in ../shared/datasets; so COCO cannot be scored and is reported as
skipped. No dataset here has real creators (sjtu-courses has schools but no learners).
MOOCCube has no teachers either, but each XuetangX course id names its school
(``course-v1:TsinghuaX+…``): the school stands in for the creator.

Why the 1.3× goal cannot be met on MOOCCube: one school (TsinghuaX) is the held-out
creator for about 70% of learners, so "most popular" ranks it first and scores 1.0 on
all of those. Even a perfect ranker (the held-out creator always first, NDCG 1.0) is
only ``1 / baseline`` better; the run prints that ceiling (about 1.34×), so 1.3× would
need 97% of perfect. The run also prints the ratio on the learners whose held-out
creator is another school, and the creator-macro NDCG (each held-out creator weighs
the same), where the baseline cannot win by naming the biggest school first.

Data: Yu et al., MOOCCube, ACL 2020; Dessì et al., COCO, WorldCIST 2018 (PROVENANCE.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.marketplace.matching import creator_totals, rank_creators
from bot.recommend.evaluate import DEFAULT_ROOT, SEED, K, Split, load_mooccube
from bot.recommend.model import Profile, Recommender

CreatorRanker = Callable[[int, tuple[int, ...]], list[int]]
GOAL = 1.3  # issue 15: NDCG@10 at least 1.3x "most popular creators"


def school(course_id: str) -> str:
    """``C_course-v1:TsinghuaX+ATOC185x+2015_T1`` → ``TsinghuaX``."""
    tail = course_id.partition("course-v1:")[2] or course_id
    return tail.partition("+")[0]


def mooccube_creators(root: Path) -> dict[int, int]:
    """The numbering of ``load_mooccube`` (sorted raw ids, from 1) → a school number."""
    with (root / "courses_mooccube_zh.csv").open(newline="", encoding="utf-8") as f:
        raw = sorted(r["course_id"] for r in csv.DictReader(f))
    schools: dict[str, int] = {}
    return {i + 1: schools.setdefault(school(c), len(schools) + 1) for i, c in enumerate(raw)}


def popular_creators(split: Split, creator_of: dict[int, int]) -> CreatorRanker:
    learners: dict[int, set[int]] = defaultdict(set)
    for it in split.train:
        creator = creator_of.get(it.course_id)
        if creator is not None:
            learners[creator].add(it.user_id)
    ranked = sorted(learners, key=lambda c: (-len(learners[c]), c))[:K]
    return lambda _user, _owned: ranked


def matching(split: Split, creator_of: dict[int, int]) -> CreatorRanker:
    model = Recommender.fit(split.docs, split.train)
    ids = [int(i) for i in model.ids]

    def rank(_user: int, owned: tuple[int, ...]) -> list[int]:
        scores = model.scores(Profile(owned=owned))
        return rank_creators(ids, scores, creator_of, owned, (), K)

    return rank


def _shares(split: Split, creator_of: dict[int, int]) -> dict[int, Counter[int]]:
    """Per learner, how many of their training courses each creator made."""
    bought: dict[int, Counter[int]] = defaultdict(Counter)
    for it in split.train:
        creator = creator_of.get(it.course_id)
        if creator is not None:
            bought[it.user_id][creator] += 1
    return bought


def blended(
    split: Split, creator_of: dict[int, int], affinity: float, neighbours: float
) -> CreatorRanker:
    """``matching`` plus the purchase-history signals the issue suggests, each scaled to
    the best creator's score: ``affinity`` × the learner's share of their purchases made
    by that creator (repeat buying), ``neighbours`` × how much the 50 learners with the
    most similar creator mix bought from that creator (popularity among similar learners).
    Tried and printed for the record; neither is shipped (see the README)."""
    model = Recommender.fit(split.docs, split.train)
    ids = [int(i) for i in model.ids]
    bought = _shares(split, creator_of)
    users = sorted(bought)
    row = {u: i for i, u in enumerate(users)}
    creators = sorted(set(creator_of.values()))
    col = {c: j for j, c in enumerate(creators)}
    mix = np.zeros((len(users), len(creators)))
    for u, counts in bought.items():
        for c, n in counts.items():
            mix[row[u], col[c]] = n
    unit = mix / (np.linalg.norm(mix, axis=1, keepdims=True) + 1e-12)

    def near(user: int) -> dict[int, float]:
        if user not in row:
            return {}
        sims = unit @ unit[row[user]]
        sims[row[user]] = 0.0
        top = np.argsort(-sims)[:50]
        votes = (sims[top, None] * (mix[top] > 0)).sum(axis=0)
        return {creators[j]: float(v) for j, v in enumerate(votes) if v > 0}

    def rank(user: int, owned: tuple[int, ...]) -> list[int]:
        totals = creator_totals(ids, model.scores(Profile(owned=owned)), creator_of, owned, ())
        counts = bought.get(user, Counter())
        extras = [
            (affinity, {c: n / max(sum(counts.values()), 1) for c, n in counts.items()}),
            (neighbours, near(user) if neighbours else {}),
        ]
        top = max(totals.values(), default=0.0) or 1.0
        for weight, signal in extras:
            peak = max(signal.values(), default=0.0) or 1.0
            for c in totals:
                totals[c] += weight * top * signal.get(c, 0.0) / peak
        return sorted(totals, key=lambda c: (-totals[c], c))[:K]

    return rank


def score(split: Split, creator_of: dict[int, int], rank: CreatorRanker) -> dict[str, float]:
    hits = ndcg = 0.0
    per_creator: dict[int | None, list[float]] = defaultdict(list)
    for user, owned, held in split.cases:
        ranked = rank(user, owned)
        target = creator_of.get(held)
        gain = 0.0
        if target in ranked:
            hits += 1
            gain = 1.0 / math.log2(ranked.index(target) + 2)
            ndcg += gain
        per_creator[target].append(gain)
    n = max(len(split.cases), 1)
    # Each held-out creator weighs the same: does the ranker find the small ones too?
    macro = sum(sum(g) / len(g) for g in per_creator.values()) / max(len(per_creator), 1)
    return {
        "hit@10": round(hits / n, 5),
        "ndcg@10": round(ndcg / n, 5),
        "creator_macro_ndcg@10": round(macro, 5),
    }


def ratio(ours: dict[str, float], base: dict[str, float], key: str = "ndcg@10") -> float | None:
    return round(ours[key] / base[key], 3) if base[key] else None


def evaluate(split: Split, creator_of: dict[int, int]) -> dict[str, object]:
    started = time.perf_counter()
    base = score(split, creator_of, popular_creators(split, creator_of))
    ours = score(split, creator_of, matching(split, creator_of))
    held = Counter(creator_of.get(h) for _u, _o, h in split.cases)
    # The same, on the cases whose held-out creator is not the dominant one: there the
    # baseline cannot win by always naming the biggest school first.
    top = held.most_common(1)[0][0] if held else None
    rest = Split(split.docs, split.train, [c for c in split.cases if creator_of.get(c[2]) != top])
    base_rest = score(rest, creator_of, popular_creators(split, creator_of))
    ours_rest = score(rest, creator_of, matching(split, creator_of))
    tried = {}
    for name, affinity, neighbours in (("affinity", 0.5, 0.0), ("similar_learners", 0.0, 0.2)):
        rank = blended(split, creator_of, affinity, neighbours)
        overall, other = score(split, creator_of, rank), score(rest, creator_of, rank)
        tried[f"matching+{name}"] = {
            "ndcg@10": overall["ndcg@10"],
            "vs_popular": ratio(overall, base),
            "without_top_creator_vs_popular": ratio(other, base_rest),
        }
    return {
        "courses": len(split.docs),
        "creators": len(set(creator_of.values())),
        "users": len(split.cases),
        "top_creator_share_of_held_out": round(held.most_common(1)[0][1] / len(split.cases), 3)
        if split.cases
        else None,
        "popular_creators": base,
        "matching": ours,
        "matching_vs_popular_ndcg": ratio(ours, base),
        # A perfect ranker's NDCG@10 is 1.0: the most any ranker can beat the baseline by.
        "ceiling_vs_popular_ndcg": round(1 / base["ndcg@10"], 3) if base["ndcg@10"] else None,
        "matching_vs_popular_creator_macro_ndcg": ratio(ours, base, "creator_macro_ndcg@10"),
        "goal_1.3x_overall": bool((ratio(ours, base) or 0) >= GOAL),
        "without_top_creator": {
            "users": len(rest.cases),
            "popular_creators": base_rest,
            "matching": ours_rest,
            "matching_vs_popular_ndcg": ratio(ours_rest, base_rest),
            "goal_1.3x": bool((ratio(ours_rest, base_rest) or 0) >= GOAL),
        },
        "tried_not_shipped": tried,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.marketplace.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mooccube", type=Path, default=DEFAULT_ROOT / "mooccube", metavar="DIR")
    parser.add_argument("--seed", type=int, default=SEED, help="MOOCCube leave-one-out seed")
    args = parser.parse_args(argv)
    split = load_mooccube(args.mooccube, args.seed)
    report: dict[str, object] = {
        "k": K,
        "coco": {
            "skipped": "no instructor: neither the derived files nor the upstream preprocessed "
            "KG (r_map.txt: category, concept, level, language, audience) carry one"
        },
        "mooccube": {
            "protocol": f"random leave-one-out, seed {args.seed}; creator = school in course id",
            **evaluate(split, mooccube_creators(args.mooccube)),
        },
    }
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
