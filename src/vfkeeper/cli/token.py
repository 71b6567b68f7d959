"""``vfkeeper token create|list|revoke``: API bearer tokens, managed directly in the
controller's database.

A controller trusts a token it verified for ``token_cache_ttl_s`` (``serve
--token-cache-ttl``, 10 s by default) without looking it up again, so a revoked token stops
working within that time.
"""

from __future__ import annotations

import json

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.cli.app import FAILED, USAGE_ERROR
from vfkeeper.cli.client import table
from vfkeeper.cli.database import open_database
from vfkeeper.controller.auth import check_role, create_token
from vfkeeper.controller.errors import ControllerError
from vfkeeper.controller.settings import DEFAULT_DB_URL
from vfkeeper.domain.timestamps import iso_z
from vfkeeper.store.models import Token

token_app = typer.Typer(name="token",
                        help="Create, list and revoke API tokens (needs the database).",
                        no_args_is_help=True)

_DB = typer.Option(DEFAULT_DB_URL, "--db", envvar="VFKEEPER_DB", metavar="URL",
                   help="The controller's database URL.")


@token_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="admin, viewer or agent:<host>."),
    name: str = typer.Option("", "--name", help="A note saying who or what holds the token."),
    db: str = _DB,
) -> None:
    """Create a token and print it. It is shown only this once; the store keeps its hash."""
    try:
        check_role(role)
    except ControllerError as exc:
        typer.echo(f"Error: --role: {exc.message}", err=True)
        raise typer.Exit(USAGE_ERROR) from exc
    database = open_database(db)
    with database.write() as session:
        token = create_token(session, role, name or role)
    database.dispose()
    typer.echo(token)


@token_app.command("list")
def list_tokens(db: str = _DB, as_json: bool = typer.Option(False, "--json")) -> None:
    """List tokens (id, name, role, creation time; never the tokens themselves)."""
    database = open_database(db)
    with database.read() as session:
        rows = [{"id": t.id, "name": t.name, "role": t.role, "created_at": iso_z(t.created_at)}
                for t in session.scalars(select(Token).order_by(Token.id))]
    database.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo("no tokens: create one with 'vfkeeper token create --role admin'")
    else:
        table(rows, ("id", "name", "role", "created_at"), ("ID", "NAME", "ROLE", "CREATED"))


def _find(session: Session, key: str) -> Token:
    """The token with id ``key``, else the one named ``key``; exit 1 when there is none, or
    when several share the name."""
    is_id = key.isascii() and key.isdigit() and len(key) <= 18  # ids fit 64 bits
    token = session.get(Token, int(key)) if is_id else None
    if token is not None:
        return token
    named = list(session.scalars(select(Token).where(Token.name == key).order_by(Token.id)))
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(str(t.id) for t in named)
        typer.echo(f"Error: {len(named)} tokens are named {key!r} (ids {ids}); revoke one by "
                   "its id (vfkeeper token list)", err=True)
    else:
        typer.echo(f"Error: no token has the id or name {key!r}; see vfkeeper token list",
                   err=True)
    raise typer.Exit(FAILED)


@token_app.command("revoke")
def revoke(key: str = typer.Argument(..., metavar="ID-OR-NAME",
                                     help="The token's id or name, as token list shows them."),
           db: str = _DB) -> None:
    """Delete a token. Controllers stop accepting it within their token cache time
    (serve --token-cache-ttl, 10 s by default)."""
    database = open_database(db)
    try:
        with database.write() as session:
            token = _find(session, key)
            shown = f"token {token.id} ({token.name}, role {token.role})"
            session.delete(token)
    finally:
        database.dispose()
    typer.echo(f"revoked {shown}; controllers stop accepting it within their token cache time "
               "(--token-cache-ttl, 10 s by default)")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app)
