"""Offline evaluation: ``python -m bot.recommend.evaluate [--coco DIR] [--mooccube DIR] [--json]``.

Prints one table per protocol (``--json``: the same as JSON): recall@10 (one held-out
course per learner, so it is the hit rate), NDCG@10 and coverage@10 (share of the catalog
that appears in anyone's top 10) of

- ``popularity``: most learners first; ``tfidf``: plain content cosine to the learner's
  courses; ``itemknn`` (cosine, 100 neighbours), ``rp3beta`` (alpha 1, beta 0.5) and
  ``ease`` (lambda 200): the collaborative signal alone, no text, no popularity;
- ``shipped``: ``Recommender`` with its default blend and diversity re-rank.

and two cold-start slices of the same learners: ``interests`` (no courses, only the
categories of their training courses as onboarding interests; COCO only, MOOCCube has no
categories) and ``one`` (only their latest / one random training course). Collaborative
baselines have no interests-only answer (null).

Protocols:

- ``coco_valid``: fit on the ``valid`` rows without each learner's latest one, which is
  held out. The shipped blend's settings were chosen here (``--grid`` reprints the search).
- ``coco_test`` (the reported figure): fit on all ``valid`` rows, hold out each learner's
  first ``test`` row (every learner's valid rows are earlier than their test rows).
- ``coco_time``: strict global time split: fit only on rows before the 80th percentile
  timestamp, hold out each learner's first row after it (learners with rows on both sides).
- ``mooccube``: enrolment lists are unordered sets (no timestamps): a seeded random
  leave-one-out, mean ± std over ``--seeds`` seeds.

COCO learners are subsampled (``--users``, fixed seed) to keep the run near ten minutes
on two cores. Datasets: Dessì et al., COCO, WorldCIST 2018; Yu et al., MOOCCube, ACL 2020
(see each directory's PROVENANCE.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from bot.recommend.model import Blend, Interaction, Profile, Recommender
from bot.recommend.text import CourseDoc

K = 10
SEED = 20240601
USERS = 4000
SEEDS = 5
TIME_QUANTILE = 0.8
# ../shared/datasets of the checkout, or of a worktree's parent (worktrees live one deeper).
DEFAULT_ROOT = next(
    (
        p / "shared" / "datasets"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "datasets").is_dir()
    ),
    Path("shared") / "datasets",
)

ONLY_CF = Blend(content=0.0, popularity=0.0, one_popularity=0.0, diversify=False)
PLAIN_TFIDF = replace(ONLY_CF, content=1.0, copurchase=0.0, cold_popularity=0.0)


class Case(NamedTuple):  # a tuple: bot.marketplace.evaluate unpacks it
    user: int
    owned: tuple[int, ...]  # training courses, oldest first
    held: int


@dataclass(slots=True)
class Split:
    docs: list[CourseDoc]
    train: list[Interaction]
    cases: list[Case]
    topics: dict[int, tuple[str, ...]] = field(default_factory=dict)  # course -> categories


@dataclass(frozen=True, slots=True)
class Event:
    user: int
    course: int
    ts: float
    part: str  # COCO's source_split: "valid" | "test"


def _purchases(pairs: list[tuple[int, int]]) -> list[Interaction]:
    return [Interaction(u, c, "purchase", float(i)) for i, (u, c) in enumerate(pairs)]


def _sample(cases: list[Case], users: int | None) -> list[Case]:
    if users is None or len(cases) <= users:
        return cases
    return sorted(random.Random(SEED).sample(cases, users), key=lambda c: c.user)


def read_coco(root: Path) -> tuple[list[CourseDoc], dict[int, tuple[str, ...]], list[Event]]:
    docs: list[CourseDoc] = []
    topics: dict[int, tuple[str, ...]] = {}
    with (root / "courses_coco_kg.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            categories = [c.replace("-", " ") for c in r["categories"].split("|") if c]
            concepts = [c for c in r["concepts"].split("|") if c]
            topics[int(r["course_id"])] = tuple(categories)
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
    events: list[Event] = []
    with (root / "interactions_valid_test.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            course = int(r["course_id"])
            if course in known:
                events.append(
                    Event(int(r["user_id"]), course, float(r["timestamp"]), r["source_split"])
                )
    # Time order, ties by course id: the same order on every run.
    events.sort(key=lambda e: (e.user, e.ts, e.course))
    return docs, topics, events


def _histories(events: list[Event]) -> dict[int, list[Event]]:
    by_user: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by_user[e.user].append(e)
    return by_user


def coco_splits(root: Path, users: int | None = USERS) -> dict[str, Split]:
    docs, topics, events = read_coco(root)
    by_user = _histories(events)
    splits: dict[str, Split] = {}
    # valid: each learner's latest valid row held out, earlier valid rows are theirs.
    pairs, cases = [], []
    for u, evs in sorted(by_user.items()):
        valid = list(dict.fromkeys(e.course for e in evs if e.part == "valid"))
        pairs += [(u, c) for c in valid[:-1]]
        if len(valid) >= 2:
            cases.append(Case(u, tuple(valid[:-1]), valid[-1]))
    splits["coco_valid"] = Split(docs, _purchases(pairs), _sample(cases, users), topics)
    # test: fit on every valid row, hold out the first test row.
    pairs, cases = [], []
    for u, evs in sorted(by_user.items()):
        valid = list(dict.fromkeys(e.course for e in evs if e.part == "valid"))
        pairs += [(u, c) for c in valid]
        test = [e.course for e in evs if e.part == "test" and e.course not in valid]
        if valid and test:
            cases.append(Case(u, tuple(valid), test[0]))
    splits["coco_test"] = Split(docs, _purchases(pairs), _sample(cases, users), topics)
    # strict time: nothing at or after the cut is seen by the fit.
    stamps = sorted(e.ts for e in events)
    cut = stamps[int(TIME_QUANTILE * (len(stamps) - 1))] if stamps else 0.0
    pairs, cases = [], []
    for u, evs in sorted(by_user.items()):
        before = list(dict.fromkeys(e.course for e in evs if e.ts < cut))
        after = [e.course for e in evs if e.ts >= cut and e.course not in before]
        pairs += [(u, c) for c in before]
        if before and after:
            cases.append(Case(u, tuple(before), after[0]))
    splits["coco_time"] = Split(docs, _purchases(pairs), _sample(cases, users), topics)
    return splits


def load_mooccube(root: Path, seed: int = SEED) -> Split:
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
    pairs, cases = [], []
    for u in sorted(history):
        courses = sorted(set(history[u]))  # sorted: the draw does not depend on file order
        if len(courses) < 2:
            continue
        held = rng.choice(courses)
        owned = tuple(c for c in courses if c != held)
        pairs += [(u, c) for c in owned]
        cases.append(Case(u, owned, held))
    return Split(docs, _purchases(pairs), cases)


Ranker = Callable[[Profile], list[int]]


def popularity_ranker(split: Split) -> Ranker:
    counts = Counter(it.course_id for it in split.train)
    ranked = sorted((d.id for d in split.docs), key=lambda c: (-counts[c], c))

    def rank(profile: Profile) -> list[int]:
        own = set(profile.owned)
        return [c for c in ranked[: K + len(own)] if c not in own][:K]

    return rank


def rankers(
    split: Split, shipped: Blend | None = None, chosen: dict[str, float] | None = None
) -> dict[str, Ranker | None]:
    """Every row of a table. One fit per collaborative method; blends share it. ``chosen``
    receives the one-course popularity weight the shipped model chose at fit time."""
    # The baselines fix their one-course weight (0): no fit-time choice to pay for.
    fits = {
        m: Recommender.fit(split.docs, split.train, replace(ONLY_CF, collab=m))
        for m in ("knn", "rp3", "ease")
    }
    default = Recommender.fit(split.docs, split.train, shipped or Blend())
    if chosen is not None:
        chosen["one_popularity"] = default.one_popularity

    def with_blend(model: Recommender, blend: Blend) -> Ranker:
        def rank(profile: Profile) -> list[int]:
            model.blend = blend
            return model.recommend(profile, k=K)

        return rank

    return {
        "popularity": popularity_ranker(split),
        "tfidf": with_blend(fits["ease"], PLAIN_TFIDF),
        "itemknn": with_blend(fits["knn"], replace(ONLY_CF, collab="knn")),
        "rp3beta": with_blend(fits["rp3"], replace(ONLY_CF, collab="rp3")),
        "ease": with_blend(fits["ease"], replace(ONLY_CF, collab="ease")),
        "shipped": with_blend(default, default.blend),
    }


def _metrics(split: Split, rank: Ranker, profiles: list[Profile]) -> dict[str, float]:
    hits = ndcg = 0.0
    shown: set[int] = set()
    for case, profile in zip(split.cases, profiles, strict=True):
        ranked = rank(profile)
        shown.update(ranked)
        if case.held in ranked:
            hits += 1
            ndcg += 1.0 / math.log2(ranked.index(case.held) + 2)
    n = max(len(split.cases), 1)
    return {
        "recall@10": round(hits / n, 5),
        "ndcg@10": round(ndcg / n, 5),
        "coverage@10": round(len(shown) / max(len(split.docs), 1), 5),
    }


def _interests(split: Split, case: Case) -> tuple[str, ...]:
    """A learner's onboarding interests, as they might pick them: the two categories most
    common among their training courses."""
    counts = Counter(t for c in case.owned for t in split.topics.get(c, ()))
    return tuple(t for t, _ in counts.most_common(2))


COLD_CF = ("itemknn", "rp3beta", "ease")


def evaluate(split: Split, shipped: Blend | None = None) -> dict[str, object]:
    started = time.perf_counter()
    full = [Profile(owned=c.owned) for c in split.cases]
    one = [Profile(owned=c.owned[-1:]) for c in split.cases]
    cold = [Profile(interests=_interests(split, c)) for c in split.cases]
    rows: dict[str, dict[str, float | None]] = {}
    chosen: dict[str, float] = {}
    for name, rank in rankers(split, shipped, chosen).items():
        assert rank is not None
        row: dict[str, float | None] = dict(_metrics(split, rank, full))
        row["one_ndcg@10"] = _metrics(split, rank, one)["ndcg@10"]
        cold_ok = bool(split.topics) and name not in COLD_CF
        row["interests_ndcg@10"] = _metrics(split, rank, cold)["ndcg@10"] if cold_ok else None
        rows[name] = row
    return {
        "courses": len(split.docs),
        "cases": len(split.cases),
        "train_interactions": len(split.train),
        "rows": rows,
        "one_popularity": chosen["one_popularity"],  # chosen by the shipped fit
        "seconds": round(time.perf_counter() - started, 1),
    }


def over_seeds(root: Path, seeds: int) -> dict[str, object]:
    runs = [evaluate(load_mooccube(root, SEED + i)) for i in range(seeds)]
    first = runs[0]
    rows: dict[str, dict[str, object]] = {}
    for name, row in first["rows"].items():  # type: ignore[attr-defined]
        rows[name] = {}
        for metric in row:
            values = [r["rows"][name][metric] for r in runs]  # type: ignore[index]
            if any(v is None for v in values):
                rows[name][metric] = None
                continue
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            rows[name][metric] = [round(statistics.fmean(values), 5), round(sd, 5)]
    return {
        "courses": first["courses"],
        "cases": first["cases"],
        "seeds": seeds,
        "rows": rows,
        "one_popularity": [r["one_popularity"] for r in runs],
        "seconds": round(sum(float(str(r["seconds"])) for r in runs), 1),
    }


def grid(split: Split) -> list[tuple[float, float, float]]:
    """NDCG@10 of blends on ``coco_valid``: (content, popularity, ndcg), best first."""
    model = Recommender.fit(split.docs, split.train)
    out = []
    for content in (0.0, 0.1, 0.2, 0.35, 0.5):
        for pop in (0.0, 0.05, 0.1, 0.2):
            model.blend = Blend(content=content, popularity=pop)
            rank: Ranker = lambda p: model.recommend(p, k=K)  # noqa: E731
            m = _metrics(split, rank, [Profile(owned=c.owned) for c in split.cases])
            out.append((content, pop, m["ndcg@10"]))
    return sorted(out, key=lambda t: -t[2])


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return f"{v[0]:.4f}±{v[1]:.4f}"
    return f"{float(v):.4f}"  # type: ignore[arg-type]


def table(name: str, result: dict[str, object]) -> str:
    rows: dict[str, dict[str, object]] = result["rows"]  # type: ignore[assignment]
    metrics = list(next(iter(rows.values())))
    head = f"{name}: {result['courses']} courses, {result['cases']} learners"
    if "seeds" in result:
        head += f", mean±std over {result['seeds']} seeds"
    if "one_popularity" in result:
        head += f", one-course popularity weight chosen at fit: {result['one_popularity']}"
    lines = [head, f"{'':12}" + "".join(f"{m:>22}" for m in metrics)]
    lines += [f"{r:12}" + "".join(f"{_cell(v[m]):>22}" for m in metrics) for r, v in rows.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.recommend.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--coco", type=Path, default=DEFAULT_ROOT / "coco", metavar="DIR")
    parser.add_argument("--mooccube", type=Path, default=DEFAULT_ROOT / "mooccube", metavar="DIR")
    parser.add_argument("--users", type=int, default=USERS, help="COCO learners per split")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="MOOCCube leave-one-out seeds")
    parser.add_argument("--grid", action="store_true", help="reprint the blend search")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"k": K}
    coco = coco_splits(args.coco, args.users)
    if args.grid:
        report["coco_valid_grid"] = grid(coco["coco_valid"])
    for name, split in coco.items():
        report[name] = evaluate(split)
    report["mooccube"] = over_seeds(args.mooccube, args.seeds)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    for name, result in report.items():
        if isinstance(result, dict):
            print(table(name, result), end="\n\n")
        elif isinstance(result, list):
            print("coco_valid blend search (content, popularity, ndcg@10):", result[:5], "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
