"""Engine and session factory. Nothing connects at import time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, echo=echo, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers run beside the one writer. A small pool rather than a single
    # connection: code that holds a session and opens another (a test's own session, a
    # background refresh) must not deadlock. Writers still queue on SQLite's lock, so
    # handlers keep write transactions short and read paths write nothing.
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=5,
        max_overflow=5,
        connect_args={"timeout": 30},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        if database and database != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "savepoint")
    def _begin_before_savepoint(conn, _name):  # type: ignore[no-untyped-def]
        # The sqlite3 driver opens a transaction only before INSERT/UPDATE/DELETE, so
        # after nothing but reads SQLite sees no transaction, and a SAVEPOINT there
        # starts one of its own that its RELEASE commits: a payment row written in a
        # SAVEPOINT was kept although the rest of its update rolled back. BEGIN first
        # nests the SAVEPOINT in the session's transaction, which commits or rolls back
        # everything together.
        if not conn.connection.driver_connection.in_transaction:
            conn.exec_driver_sql("BEGIN")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
