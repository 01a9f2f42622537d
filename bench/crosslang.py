"""Cross-language search cost; prints JSON.

    .venv/bin/python bench/crosslang.py [--courses 100000]

On the search benchmark's catalog (real English and Chinese titles, padded with variants),
CPU time per query of the index search alone, and of what a query naming a subject costs
uncached in ``CatalogSnapshot`` (bot.services.search): the search, the translated query's
search (bot.recommend.crosslang) and the merge. Goal: p99 within search's 10 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import load_real, make_catalog

from bot.recommend import SearchIndex, crosslang

QUERIES = (
    "machine learning",
    "机器学习",
    "data analysis with python",
    "数据分析",
    "personal finance",
    "deep learning",
    "深度学习 神经网络",
    "digital marketing",
    "英语 写作",
    "ui design",
    "project management",
    "统计学",
    "web development",
    "算法 数据结构",
    "public speaking",
    "linux command line",
    "photography basics",
    "摄影",
    "guitar",
    "财务分析",
)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--courses", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    docs = make_catalog(load_real(), args.courses, random.Random(3))
    index = SearchIndex.build(docs)
    language = {d.id: d.language for d in docs}
    plain: list[float] = []
    cross: list[float] = []
    for query in QUERIES * args.rounds:
        t = time.process_time()
        index.search(query, limit=8, language="en")
        plain.append(time.process_time() - t)
        t = time.process_time()
        translated = crosslang.translate(query)
        own, other = index.search(query, limit=40), index.search(translated, limit=40)
        crosslang.merge(own, other, language.get, "en", 8)
        cross.append(time.process_time() - t)
    print(
        json.dumps(
            {
                "courses": len(docs),
                "queries": len(plain),
                "search_cpu_ms": {"p50": pct(plain, 0.5), "p99": pct(plain, 0.99)},
                "with_translation_cpu_ms": {"p50": pct(cross, 0.5), "p99": pct(cross, 0.99)},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
