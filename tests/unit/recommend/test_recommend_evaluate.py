"""The offline evaluation command on tiny made-up files (never the real datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.recommend import evaluate


def write_coco(root: Path) -> None:
    root.mkdir()
    rows = ["course_id,kg_eid,title_slug,categories,concepts,level,language,target_audience"]
    for i, slug in enumerate(
        ["learn-python", "python-advanced", "ui-design", "figma-basics", "guitar-101"]
    ):
        cat = "development|programming" if "python" in slug else "design|art"
        rows.append(f"{100 + i},{i},{slug},{cat},Python,all,english,")
    (root / "courses_coco_kg.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    events = ["user_id,course_id,timestamp,source_split"]
    for u in range(1, 7):
        events += [f"{u},100,10,valid", f"{u},102,20,valid", f"{u},101,30,test"]
    (root / "interactions_valid_test.csv").write_text("\n".join(events) + "\n", encoding="utf-8")


def write_mooccube(root: Path) -> None:
    root.mkdir()
    courses = ["course_id,about_zh,about_zh_jieba"]
    texts = ["机器学习与数据分析", "数据挖掘入门", "古典音乐欣赏", "钢琴基础"]
    for i, text in enumerate(texts):
        courses.append(f"C_{i},{text},{text}")
    (root / "courses_mooccube_zh.csv").write_text("\n".join(courses) + "\n", encoding="utf-8")
    events = ["user_id,course_id"]
    for u in range(1, 5):
        events += [f"U_{u},C_0", f"U_{u},C_1", f"U_{u},C_2"]
    (root / "interactions_user_course.csv").write_text("\n".join(events) + "\n", encoding="utf-8")


def test_leave_last_out_holds_out_the_latest(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    split = evaluate.load_coco(tmp_path / "coco")
    assert len(split.cases) == 6
    assert all(held == 101 and set(owned) == {100, 102} for _, owned, held in split.cases)
    # The held-out course is never in the training interactions.
    assert all(it.course_id != 101 for it in split.train)


def test_random_leave_one_out_is_seeded(tmp_path: Path) -> None:
    write_mooccube(tmp_path / "mooc")
    a = evaluate.load_mooccube(tmp_path / "mooc", seed=1)
    b = evaluate.load_mooccube(tmp_path / "mooc", seed=1)
    assert a.cases == b.cases
    assert {d.language for d in a.docs} == {"zh"}


def test_command_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_coco(tmp_path / "coco")
    write_mooccube(tmp_path / "mooc")
    code = evaluate.main(["--coco", str(tmp_path / "coco"), "--mooccube", str(tmp_path / "mooc")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("coco", "mooccube"):
        for model in ("popularity", "tfidf", "shipped"):
            metrics = report[name][model]
            assert set(metrics) == {"precision@10", "recall@10", "ndcg@10"}
            assert 0.0 <= metrics["ndcg@10"] <= metrics["recall@10"] <= 1.0
    # Five courses, two owned: every candidate fits in the top 10; text similarity
    # ("learn python" → "python advanced") ranks the held-out course first.
    assert report["coco"]["shipped"]["recall@10"] == 1.0
    assert report["coco"]["shipped"]["ndcg@10"] == 1.0
