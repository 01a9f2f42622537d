"""`python -m bot backup <file>` and `python -m bot restore <file>` for SQLite.

The copy is made with SQLite's online backup API (sqlite3.Connection.backup) in one
step: it reads one consistent snapshot of the database, which holds every transaction
committed before the backup began, while the bot goes on writing (the database is in WAL
mode, so writers are not blocked by the reader). The copy is written next to the target
and moved into place only once it passed `PRAGMA integrity_check`, so a backup that fails
half way never leaves a broken file under the name asked for.

PostgreSQL has its own tools, which do the same better (pg_dump takes one snapshot of a
live database too): both commands say how to use them and exit non-zero.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

PG_BACKUP = (
    "This database is PostgreSQL: back it up with PostgreSQL's own tools, which copy a "
    "running database consistently, e.g.\n"
    "  pg_dump --format=custom --file=lyceum.dump <database>\n"
    "and restore into an empty database with\n"
    "  pg_restore --no-owner --dbname=<database> lyceum.dump\n"
    "then run `python -m bot migrate`. `python -m bot backup/restore` are for SQLite only."
)


class BackupError(Exception):
    """A refusal or failure, said to the operator as it is."""


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("DATABASE_URL is an in-memory SQLite database: nothing to back up")
    return Path(url.database)


def _connect(path: Path) -> sqlite3.Connection:
    # The same busy timeout as the bot's engine: wait for a writer rather than fail.
    return sqlite3.connect(path, timeout=30)


def _check(conn: sqlite3.Connection, what: str) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchone()
    if not result or result[0] != "ok":
        raise BackupError(f"{what} failed SQLite's integrity check: {result}")


def revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def backup(source: Path, target: Path) -> str | None:
    """Copy `source` (live or not) to `target`; returns the copy's schema revision."""
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = _connect(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            # pages=-1: the whole database in one step, i.e. from one read snapshot. In
            # steps, every write by the bot between two steps would restart the copy.
            src.backup(dst, pages=-1)
            _check(dst, "the copy")
            found = revision(dst)
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return found


def user_rows(conn: sqlite3.Connection) -> int:
    """Rows in every table but Alembic's own: 0 for a fresh or migrated, empty database."""
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        if name != "alembic_version"
    ]
    return sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)


def _running(target: Path) -> bool:
    """The bot's scheduler holds `<db>.worker.lock` while it runs (bot.scheduler.worker)."""
    lock = Path(f"{target}.worker.lock")
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def restore(source: Path, target: Path, *, force: bool) -> str | None:
    """Put the backup `source` in place of the database `target`."""
    if not source.exists():
        raise BackupError(f"there is no backup at {source}")
    src = _connect(source)
    try:
        try:
            _check(src, f"the backup {source}")
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source} is not a SQLite database ({exc})") from exc
        found = revision(src)
        if found is None:
            raise BackupError(f"{source} is not a Lyceum backup (it has no schema revision)")
        if _running(target):
            raise BackupError("the bot is running on this database: stop it, then restore")
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = _connect(target)
        try:
            held = user_rows(dst)
            if held and not force:
                raise BackupError(
                    f"the database {target} is not empty ({held} rows): restore would "
                    "replace them. Stop the bot, back it up if you may need it, and run "
                    "again with --force to overwrite it."
                )
            # Through the backup API as well: it replaces the pages of the open database,
            # WAL included, which copying the file over it would not.
            src.backup(dst, pages=-1)
            _check(dst, "the restored database")
        finally:
            dst.close()
    finally:
        src.close()
    return found


def cmd_backup(database_url: str, file: Path) -> int:
    try:
        path = sqlite_path(database_url)
        if path is None:
            print(PG_BACKUP, file=sys.stderr)
            return 2
        found = backup(path, file)
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    size = file.stat().st_size
    print(f"backup written to {file} ({size} bytes, schema revision {found or 'none'})")
    return 0


def cmd_restore(database_url: str, file: Path, *, force: bool) -> int:
    try:
        path = sqlite_path(database_url)
        if path is None:
            print(PG_BACKUP.replace("back it up", "restore it"), file=sys.stderr)
            return 2
        found = restore(file, path, force=force)
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"restored {file} into {path} (schema revision {found}). "
        "Run `python -m bot migrate` before starting the bot."
    )
    return 0
