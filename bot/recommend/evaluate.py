"""Offline evaluation: ``python -m bot.recommend.evaluate [--coco DIR] [--mooccube DIR]``.

Prints JSON with precision@10, recall@10 and NDCG@10 of three recommenders:

- ``popularity``: most learners first (what a new store shows everyone);
- ``tfidf``: content only — cosine between a course and the learner's bought courses,
  same analyzer, no co-purchase, no popularity, no diversity;
- ``shipped``: ``Recommender`` with its default blend, diversity included.

Protocols (one held-out course per learner, every other course of theirs is "owned"):

- COCO (Udemy, English): leave-last-out by timestamp (ties broken by course id);
- MOOCCube (XuetangX, Chinese): enrolment lists are unordered sets, so the held-out
  course is drawn at random with a fixed seed.

Only interactions in the training part are used to fit (popularity and co-purchase never
see the held-out course). Datasets: Dessì et al., COCO, WorldCIST 2018; Yu et al.,
MOOCCube, ACL 2020 (see each directory's PROVENANCE.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.recommend.model import Blend, Interaction, Profile, Recommender
from bot.recommend.text import CourseDoc

K = 10
SEED = 20240601
DEFAULT_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


@dataclass(frozen=True, slots=True)
class Split:
    docs: list[CourseDoc]
    train: list[Interaction]
    # (user, courses they own in training, the held-out course)
    cases: list[tuple[int, tuple[int, ...], int]]


def _split(
    docs: list[CourseDoc],
    history: dict[int, list[int]],
    pick: Callable[[int, list[int]], int],
) -> Split:
    train: list[Interaction] = []
    cases: list[tuple[int, tuple[int, ...], int]] = []
    for user in sorted(history):
        courses = list(dict.fromkeys(history[user]))  # first occurrence, order kept
        if len(courses) < 2:
            continue
        held = pick(user, courses)
        owned = tuple(c for c in courses if c != held)
        train.extend(Interaction(user, c, "purchase", float(i)) for i, c in enumerate(owned))
        cases.append((user, owned, held))
    return Split(docs, train, cases)


def load_coco(root: Path) -> Split:
    docs: list[CourseDoc] = []
    with (root / "courses_coco_kg.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            categories = [c.replace("-", " ") for c in r["categories"].split("|") if c]
            concepts = [c for c in r["concepts"].split("|") if c]
            docs.append(
                CourseDoc(
                    id=int(r["course_id"]),
                    title=r["title_slug"].replace("-", " "),
                    description=f"{r['level']} level",
                    tags=tuple(categories + concepts),
                    language="en",
                )
            )
    known = {d.id for d in docs}
    events: dict[int, list[tuple[float, int]]] = defaultdict(list)
    with (root / "interactions_valid_test.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            course = int(r["course_id"])
            if course in known:
                events[int(r["user_id"])].append((float(r["timestamp"]), course))
    history = {u: [c for _, c in sorted(ev)] for u, ev in events.items()}
    return _split(docs, history, lambda _u, courses: courses[-1])


def load_mooccube(root: Path, seed: int = SEED) -> Split:
    raw: list[tuple[str, str]] = []
    with (root / "courses_mooccube_zh.csv").open(newline="", encoding="utf-8") as f:
        raw = [(r["course_id"], r["about_zh"]) for r in csv.DictReader(f)]
    number = {cid: i + 1 for i, cid in enumerate(sorted(c for c, _ in raw))}
    docs = [CourseDoc(id=number[c], title="", description=text, language="zh") for c, text in raw]
    users: dict[str, int] = {}
    history: dict[int, list[int]] = defaultdict(list)
    with (root / "interactions_user_course.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            course = number.get(r["course_id"])
            if course is not None:
                u = users.setdefault(r["user_id"], len(users) + 1)
                history[u].append(course)
    rng = random.Random(seed)
    # Sorted so the draw does not depend on file order.
    return _split(docs, {u: sorted(cs) for u, cs in history.items()}, lambda _u, cs: rng.choice(cs))


Ranker = Callable[[int, tuple[int, ...]], list[int]]


def popularity_ranker(split: Split) -> Ranker:
    counts = Counter(it.course_id for it in split.train)
    ranked = sorted((d.id for d in split.docs), key=lambda c: (-counts[c], c))

    def rank(_user: int, owned: tuple[int, ...]) -> list[int]:
        own = set(owned)
        out: list[int] = []
        for c in ranked:
            if c not in own:
                out.append(c)
                if len(out) == K:
                    break
        return out

    return rank


def recommender_ranker(split: Split, blend: Blend | None) -> Ranker:
    if blend is None:
        model = Recommender.fit(split.docs, split.train)
    else:
        model = Recommender.fit(split.docs, split.train, blend=blend)
    return lambda _user, owned: model.recommend(Profile(owned=owned), k=K)


PLAIN_TFIDF = Blend(content=1.0, copurchase=0.0, popularity=0.0, cold_popularity=0.0, mmr=1.0)


def score(split: Split, rank: Ranker) -> dict[str, float]:
    hits = ndcg = 0.0
    for user, owned, held in split.cases:
        ranked = rank(user, owned)
        if held in ranked:
            hits += 1
            ndcg += 1.0 / math.log2(ranked.index(held) + 2)
    n = max(len(split.cases), 1)
    # One relevant course per case: recall@10 is the hit rate, precision@10 is hit/10.
    return {
        "precision@10": round(hits / (K * n), 5),
        "recall@10": round(hits / n, 5),
        "ndcg@10": round(ndcg / n, 5),
    }


def evaluate(split: Split) -> dict[str, object]:
    started = time.perf_counter()
    results: dict[str, dict[str, float]] = {
        "popularity": score(split, popularity_ranker(split)),
        "tfidf": score(split, recommender_ranker(split, PLAIN_TFIDF)),
        "shipped": score(split, recommender_ranker(split, None)),
    }
    base = results["popularity"]["ndcg@10"]
    return {
        "courses": len(split.docs),
        "users": len(split.cases),
        "train_interactions": len(split.train),
        **results,
        "shipped_vs_popularity_ndcg": round(results["shipped"]["ndcg@10"] / base, 3)
        if base
        else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.recommend.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--coco", type=Path, default=DEFAULT_ROOT / "coco", metavar="DIR")
    parser.add_argument("--mooccube", type=Path, default=DEFAULT_ROOT / "mooccube", metavar="DIR")
    parser.add_argument("--seed", type=int, default=SEED, help="MOOCCube leave-one-out seed")
    args = parser.parse_args(argv)
    report: dict[str, object] = {
        "k": K,
        "coco": {"protocol": "leave-last-out by time", **evaluate(load_coco(args.coco))},
        "mooccube": {
            "protocol": f"random leave-one-out, seed {args.seed}",
            **evaluate(load_mooccube(args.mooccube, args.seed)),
        },
    }
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
