"""Alembic environment: migrations run on the connection the service hands over (see ur_service.migrate)."""

from alembic import context

from ur_service.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone points the alembic CLI here
    raise SystemExit("run migrations with `python -m ur_service.migrate upgrade URL`")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
