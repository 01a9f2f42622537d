"""The interest topics offered at onboarding.

Keys are stored on the user; keywords (English and Chinese) feed the recommender's
cold start, so a learner who picks "data" also matches courses tagged 数据.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    key: str
    keywords: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic("programming", ("programming", "python", "javascript", "coding", "编程", "程序设计")),
    Topic("data", ("data", "data science", "machine learning", "ai", "数据", "机器学习")),
    Topic("design", ("design", "ui", "ux", "illustration", "设计")),
    Topic("business", ("business", "startup", "management", "商业", "管理", "创业")),
    Topic("marketing", ("marketing", "seo", "social media", "营销", "市场")),
    Topic("finance", ("finance", "investing", "accounting", "金融", "投资", "理财")),
    Topic("languages", ("language", "english", "chinese", "语言", "英语", "中文")),
    Topic("personal", ("productivity", "personal growth", "habits", "效率", "个人成长")),
    Topic("music", ("music", "guitar", "piano", "音乐")),
    Topic("photo", ("photography", "video", "摄影", "视频")),
)

TOPIC_KEYS = frozenset(t.key for t in TOPICS)


def interest_keywords(keys: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    by_key = {t.key: t for t in TOPICS}
    words: list[str] = []
    for key in keys:
        topic = by_key.get(key)
        if topic:
            words.extend(topic.keywords)
    return tuple(words)
