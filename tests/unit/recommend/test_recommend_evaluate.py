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


def test_coco_splits_never_fit_on_the_held_out_row(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    splits = evaluate.coco_splits(tmp_path / "coco")
    test, valid, strict = splits["coco_test"], splits["coco_valid"], splits["coco_time"]
    assert len(test.cases) == 6
    assert all(c.held == 101 and set(c.owned) == {100, 102} for c in test.cases)
    # valid: the latest valid row is held out; the test rows are never seen.
    assert all(c.held == 102 and c.owned == (100,) for c in valid.cases)
    assert {it.course_id for it in valid.train} == {100}
    # The held-out course is never in the training interactions.
    for split in (test, strict):
        assert all(it.course_id != 101 for it in split.train)
    assert all(c.held == 101 for c in strict.cases)


def test_random_leave_one_out_is_seeded(tmp_path: Path) -> None:
    write_mooccube(tmp_path / "mooc")
    a = evaluate.load_mooccube(tmp_path / "mooc", seed=1)
    b = evaluate.load_mooccube(tmp_path / "mooc", seed=1)
    assert a.cases == b.cases
    assert {d.language for d in a.docs} == {"zh"}


def test_command_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_coco(tmp_path / "coco")
    write_mooccube(tmp_path / "mooc")
    args = ["--coco", str(tmp_path / "coco"), "--mooccube", str(tmp_path / "mooc")]
    code = evaluate.main([*args, "--json", "--seeds", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("coco_valid", "coco_test", "coco_time", "mooccube"):
        rows = report[name]["rows"]
        assert set(rows) == {"popularity", "tfidf", "itemknn", "rp3beta", "ease", "shipped"}
        for metrics in rows.values():
            assert {"recall@10", "ndcg@10", "coverage@10", "one_ndcg@10"} <= set(metrics)
    assert report["mooccube"]["rows"]["shipped"]["ndcg@10"][1] >= 0.0  # [mean, std]
    # Five courses, two owned: every candidate fits in the top 10; text similarity
    # ("learn python" → "python advanced") ranks the held-out course first.
    assert report["coco_test"]["rows"]["shipped"]["recall@10"] == 1.0
    assert report["coco_test"]["rows"]["shipped"]["ndcg@10"] == 1.0


def test_table_prints_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_coco(tmp_path / "coco")
    write_mooccube(tmp_path / "mooc")
    assert (
        evaluate.main(["--coco", str(tmp_path / "coco"), "--mooccube", str(tmp_path / "mooc")]) == 0
    )
    out = capsys.readouterr().out
    assert "coco_test" in out and "mean±std over 5 seeds" in out
    assert out.count("shipped") == 4
