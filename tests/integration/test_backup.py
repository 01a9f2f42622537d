"""`python -m bot backup/restore`: a consistent copy of a SQLite database while another
writer commits rows, restored into a fresh database that migrates and holds every row
committed before the backup began."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.migrate import upgrade
from tests.conftest import is_postgres

pytestmark = pytest.mark.skipif(is_postgres(), reason="backup/restore are for SQLite")


class Writer(threading.Thread):
    """Another process's writes, as the bot makes them: one row per transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.committed: list[int] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                cur = conn.execute(
                    "INSERT INTO events (kind, data, created_at) "
                    "VALUES ('view', ?, '2026-01-01 00:00:00')",
                    (f'{{"n": {n}}}',),
                )
                conn.commit()
                with self.lock:
                    self.committed.append(int(cur.lastrowid or 0))
        finally:
            conn.close()

    def count(self) -> int:
        with self.lock:
            return len(self.committed)

    def snapshot(self) -> set[int]:
        with self.lock:
            return set(self.committed)


def _ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()


def _wait_for(writer: Writer, rows: int) -> None:
    for _ in range(6000):
        if writer.count() >= rows:
            return
        time.sleep(0.005)
    raise AssertionError("the writer did not write")


def test_backup_while_writing_then_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    live = tmp_path / "live.sqlite3"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{live}"))
    # Some weight first, so the copy takes a while and the writer commits meanwhile.
    conn = sqlite3.connect(live)
    conn.executemany(
        "INSERT INTO events (kind, data, created_at) VALUES ('view', ?, '2026-01-01')",
        [(f'{{"pad": "{"x" * 200}"}}',) for _ in range(20_000)],
    )
    conn.commit()
    conn.close()
    preloaded = _ids(live)
    writer = Writer(live)
    writer.start()
    try:
        _wait_for(writer, 200)
        before = writer.snapshot() | preloaded
        monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{live}")
        from bot.config import get_settings

        get_settings.cache_clear()
        copy = tmp_path / "backups" / "copy.sqlite3"
        assert main(["backup", str(copy)]) == 0
        during = writer.count()
        _wait_for(writer, during + 200)  # the writer was never stopped by the copy
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert "backup written to" in capsys.readouterr().out
    in_copy = _ids(copy)
    assert before <= in_copy, "a row committed before the backup began is missing"
    assert len(in_copy) < len(_ids(live)), "the writer went on after the backup"

    # Into a fresh database: restored, then `migrate` passes on it.
    fresh = tmp_path / "fresh" / "lyceum.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{fresh}")
    get_settings.cache_clear()
    assert main(["restore", str(copy)]) == 0
    assert "restored" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert before <= _ids(fresh)
    assert _ids(fresh) == in_copy

    # A second restore over the now non-empty database is refused without --force.
    assert main(["restore", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err
    assert main(["restore", "--force", str(copy)]) == 0
    assert _ids(fresh) == in_copy
    get_settings.cache_clear()


def test_restore_refuses_what_is_not_a_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.config import get_settings

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a database at all" * 100)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    get_settings.cache_clear()
    assert main(["restore", str(junk)]) == 1
    assert main(["restore", str(tmp_path / "missing.sqlite3")]) == 1
    assert "no backup" in capsys.readouterr().err
    get_settings.cache_clear()


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_postgres_is_told_about_pg_dump(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.config import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://lyceum:pw@db.internal/lyceum")
    get_settings.cache_clear()
    try:
        assert main([command, "out.dump"]) != 0
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "pg_dump" in err and "pg_restore" in err
