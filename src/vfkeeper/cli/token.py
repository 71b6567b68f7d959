"""``vfkeeper token``: API bearer tokens, managed directly in the controller's database."""

from __future__ import annotations

import json

import typer
from sqlalchemy import select

from vfkeeper.controller.auth import check_role, create_token
from vfkeeper.controller.errors import ControllerError
from vfkeeper.controller.settings import DEFAULT_DB_URL
from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.errors import StoreError
from vfkeeper.store.models import Token

token_app = typer.Typer(name="token", help="Create and list API tokens (needs the database).",
                        no_args_is_help=True)

_DB = typer.Option(DEFAULT_DB_URL, "--db", envvar="VFKEEPER_DB",
                   help="The controller's database URL.")


def _open(url: str) -> Database:
    try:
        db = Database(url)
        migrate.upgrade(db.engine)
    except StoreError as exc:
        typer.secho(f"Error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    return db


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
        raise typer.Exit(2) from exc
    database = _open(db)
    with database.write() as session:
        token = create_token(session, role, name or role)
    database.dispose()
    typer.echo(token)


@token_app.command("list")
def list_tokens(db: str = _DB, as_json: bool = typer.Option(False, "--json")) -> None:
    """List tokens (name, role, creation time; never the tokens themselves)."""
    database = _open(db)
    with database.read() as session:
        rows = [{"id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at.isoformat()}
                for t in session.scalars(select(Token).order_by(Token.id))]
    database.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['id']:>4}  {row['role']:<24} {row['name']}  {row['created_at']}")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app)
