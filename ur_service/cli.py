"""The service's ``ur`` commands, ``serve`` and ``keys``: registered through the ``ur_engine.commands`` entry
point group, so the engine's CLI offers them without importing the service."""

from __future__ import annotations

import sys

import click

from ur_engine.cli.common import RULES_HELP, print_rule_errors
from ur_engine.errors import RuleError, UrError

from . import ROLES


@click.command()
@click.option("--rules", type=click.Path(file_okay=False), help=RULES_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(rules, host, port) -> None:
    """Serve the review API (embedded: the development server, default rules, localhost).

    SIGHUP or POST /v1/admin/reload re-reads the rules; a candidate serves only if it loads and its tests pass.
    """
    import signal

    from api import create_app

    from .store import Actor

    try:
        app = create_app({"RULES_DIR": rules})
    except UrError as exc:
        print_rule_errors(exc, rules) if isinstance(exc, RuleError) else click.echo(str(exc), err=True)
        sys.exit(1)
    reloads = app.extensions["ur_reloads"]

    def on_hup(signum, frame):
        result, _ = reloads.reload_from_folder(Actor("-", "SIGHUP"))
        click.echo(f"SIGHUP reload: {'ok ' + result.digest if result.ok else 'refused'}", err=True)
        for line in result.errors:
            click.echo(f"  {line}", err=True)

    signal.signal(signal.SIGHUP, on_hup)
    app.run(host=host, port=port)


@click.group()
def keys() -> None:
    """API keys for the review service: stored hashed, shown once."""


DATABASE_HELP = "Audit store URL (default: $UR_DATABASE_URL, else sqlite:///ur-audit.db)."


def _store(database: str | None):
    from .db import DEFAULT_URL
    from .store import Store

    return Store(database or DEFAULT_URL)


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="reviewer: submit and read reviews; physician: decide pended cases; rules_admin: reload rules.")
@click.option("--name", help="Who holds the key, as the audit trail shows it (default: the role).")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_create(role, name, database) -> None:
    """Create an API key for ROLE and print it; only its hash is stored, so it cannot be shown again."""
    from .auth import create_key

    store = _store(database)
    try:
        key = create_key(store, role, name)
    finally:
        store.close()
    click.echo(key)
    click.echo(f"created key {key.split('_')[1]} ({role}); keep it now, it is not shown again", err=True)


@keys.command("list")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_list(database) -> None:
    """List key ids, names, roles and dates (never the keys)."""
    store = _store(database)
    try:
        for k in store.list_keys():
            click.echo(f"{k['key_id']}  {k['role']:<12} {k['name']:<24} created {k['created_at']}"
                       + (f"  revoked {k['revoked_at']}" if k["revoked_at"] else ""))
    finally:
        store.close()


@keys.command("revoke")
@click.argument("key_id")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_revoke(key_id, database) -> None:
    """Revoke the key KEY_ID (the part after ur_); it stops working at once."""
    store = _store(database)
    try:
        if not store.revoke_key(key_id):
            click.echo(f"no active key {key_id}", err=True)
            sys.exit(2)
    finally:
        store.close()
    click.echo(f"revoked {key_id}", err=True)


@keys.command("role")
@click.argument("key_id")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_role(key_id, role, database) -> None:
    """Give the active key KEY_ID another ROLE: a new row in the key chain, the old one stays as it was."""
    store = _store(database)
    try:
        if not store.set_role(key_id, role):
            click.echo(f"no active key {key_id}", err=True)
            sys.exit(2)
    finally:
        store.close()
    click.echo(f"{key_id} is now {role}", err=True)


@click.group()
def audit() -> None:
    """The audit store's hash chains: print their heads (an anchor to keep elsewhere), or verify them."""


@audit.command("head")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def audit_head(database) -> None:
    """Print each chain's head as chain:seq:hash,… — keep it outside the database (a write-once store, a ticket)."""
    store = _store(database)
    try:
        click.echo(store.head())
    finally:
        store.close()


@audit.command("verify")
@click.option("--expect-head", help="An anchor printed earlier by `ur audit head` (or a verify report's anchor): "
                                    "each chain must still reach it.")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def audit_verify(expect_head, database) -> None:
    """Walk every chain; exit 1 and list the problems when any is found."""
    from .store import parse_anchor

    try:
        expect = parse_anchor(expect_head) if expect_head else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect-head") from None
    store = _store(database)
    try:
        report = store.verify(expect)
    finally:
        store.close()
    for p in report["problems"]:
        click.echo(f"{p['table']} row {p['seq']}: {p['problem']}", err=True)
    click.echo(report["anchor"])
    sys.exit(0 if report["ok"] else 1)
