"""A small bilingual catalog for the recommend/search unit tests (never the real datasets)."""

from __future__ import annotations

import pytest

from bot.recommend import CourseDoc

CATALOG: tuple[CourseDoc, ...] = (
    CourseDoc(
        1,
        "Python for Beginners",
        "Variables, loops and functions in Python.",
        ("python", "programming"),
    ),
    CourseDoc(
        2, "Advanced Python Patterns", "Decorators, generators, asyncio.", ("python", "programming")
    ),
    CourseDoc(
        3, "Data Analysis with Pandas", "Clean and explore data in Python.", ("data", "python")
    ),
    CourseDoc(
        4,
        "Machine Learning Foundations",
        "Regression, classification, scikit-learn.",
        ("data", "machine learning"),
    ),
    CourseDoc(5, "UI Design Basics", "Layout, colour and typography for apps.", ("design", "ui")),
    CourseDoc(
        6,
        "Figma for UI Designers",
        "Prototypes and components for UI design in Figma.",
        ("design", "ui", "ux"),
    ),
    CourseDoc(
        7,
        "Marketing on Social Media",
        "Grow an audience and run campaigns.",
        ("marketing", "social media"),
    ),
    CourseDoc(
        8, "Personal Finance 101", "Budgets, saving and investing.", ("finance", "investing")
    ),
    CourseDoc(
        9,
        "机器学习入门",
        "从线性回归到神经网络，用 Python 实践机器学习。",
        ("数据", "机器学习"),
        "zh",
    ),
    CourseDoc(10, "数据分析实战", "用表格和可视化理解数据。", ("数据", "数据分析"), "zh"),
    CourseDoc(11, "平面设计基础", "排版、色彩与构图。", ("设计",), "zh"),
    CourseDoc(12, "吉他弹唱速成", "和弦、节奏与弹唱技巧。", ("音乐", "吉他"), "zh"),
    CourseDoc(13, "Guitar Chords in 30 Days", "Strumming, chords and songs.", ("music", "guitar")),
    CourseDoc(14, "Startup Management", "From idea to a team of ten.", ("business", "startup")),
    CourseDoc(15, "SQL for Data Analysts", "Queries, joins and window functions.", ("data", "sql")),
    CourseDoc(
        16, "Python Web Development with Django", "Build and deploy a web app.", ("python", "web")
    ),
)


@pytest.fixture
def catalog() -> tuple[CourseDoc, ...]:
    return CATALOG
