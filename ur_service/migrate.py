"""Alembic migrations, run by the service itself: ``create_app`` and gunicorn's master upgrade to head.

Several processes may start at once (gunicorn workers, several hosts), so the upgrade runs inside one
transaction holding the store's migration lock; the second process waits, then finds the database at head.

    python -m ur_service.migrate upgrade URL        # what create_app does
    python -m ur_service.migrate current URL
    python -m ur_service.migrate revision URL -m "add a column" [--autogenerate]   # for developers
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from .db import create_db_engine, write_transaction

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x55520001  # advisory lock id (PostgreSQL), distinct from the chains'


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``; a no-op when it is there already."""
    cfg = _config()
    with write_transaction(engine, MIGRATION_LOCK) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (for an operator rolling back a release)."""
    cfg = _config()
    with write_transaction(engine, MIGRATION_LOCK) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ur_service.migrate")
    parser.add_argument("action", choices=["upgrade", "current", "revision"])
    parser.add_argument("url")
    parser.add_argument("-m", "--message", default="change")
    parser.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)
    engine = create_db_engine(args.url)
    try:
        if args.action == "upgrade":
            upgrade(engine)
            print(current(engine))
        elif args.action == "current":
            print(current(engine) or "(empty)", "head" if current(engine) == head() else f"(head is {head()})")
        else:
            cfg = _config()
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.revision(cfg, message=args.message, autogenerate=args.autogenerate)
    finally:
        engine.dispose()


if __name__ == "__main__":  # pragma: no cover
    main()
