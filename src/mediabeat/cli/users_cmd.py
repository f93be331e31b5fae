"""`mediabeat users` and `mediabeat tokens`: accounts and API tokens without a browser."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mediabeat.app import Services
from mediabeat.auth.service import AuthService, UserInputError
from mediabeat.cli.common import CliError, print_json, table, when, with_services
from mediabeat.db.stores.tokens import TokenRecord
from mediabeat.db.stores.users import UserRecord

users_app = typer.Typer(help="Users: create, list, set-password.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
EmailArg = Annotated[str, typer.Argument(help="The user's email address")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (first line)")
]


def _auth(services: Services) -> AuthService:
    return AuthService(services.db, services.settings, services.clock)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input", 2)
        return password
    if not sys.stdin.isatty():
        raise CliError("give --password-stdin to read the password from standard input", 2)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(password)


async def _user(auth: AuthService, email: str) -> UserRecord:
    user = await auth.users.get_by_email(email)
    if user is None:
        raise CliError(f"no user with email {email.strip().lower()}")
    return user


def user_json(user: UserRecord) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "org": user.org_name,
        "is_active": user.is_active,
        "last_login_at": when(user.last_login_at),
        "created_at": when(user.created_at),
    }


@users_app.command("create")
def create_user(
    email: EmailArg,
    role: Annotated[str, typer.Option(help="admin or member")] = "member",
    org: Annotated[str | None, typer.Option(help="The organisation's name (created if missing)")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; the password comes from standard input with --password-stdin."""
    if role not in ("admin", "member"):
        raise CliError(f"--role must be admin or member, not {role!r}", 2)
    password = _read_password(password_stdin)

    async def body(services: Services) -> UserRecord:
        auth = _auth(services)
        org_id = await auth.org_id(org, create=True) if org else None
        try:
            user = await auth.create_user(email, role=role, org_id=org_id, password=password)
        except UserInputError as exc:
            raise CliError(str(exc), 2) from None
        await auth.audit.record(
            actor="cli",
            action="user.create",
            target_type="user",
            target_id=user.id,
            details={"email": user.email, "role": role, "org": org},
            now=services.clock.now(),
        )
        return user

    user = with_services(body)
    typer.echo(f"created {user.role} {user.email} (id {user.id})" + (f" in {org}" if org else ""))


@users_app.command("list")
def list_users(as_json: JsonFlag = False) -> None:
    """Every user with role, organisation and last sign-in."""

    async def body(services: Services) -> list[UserRecord]:
        return await _auth(services).users.list()

    users = with_services(body)
    if as_json:
        print_json([user_json(u) for u in users])
        return
    table(
        ["id", "email", "role", "org", "active", "last login"],
        [[u.id, u.email, u.role, u.org_name, u.is_active, when(u.last_login_at)] for u in users],
    )


@users_app.command("set-password")
def set_password(email: EmailArg, password_stdin: PasswordStdin = False) -> None:
    """Change a user's password (their sessions end)."""
    password = _read_password(password_stdin)

    async def body(services: Services) -> None:
        auth = _auth(services)
        user = await _user(auth, email)
        try:
            await auth.set_password(user, password)
        except UserInputError as exc:
            raise CliError(str(exc), 2) from None
        await auth.audit.record(
            actor="cli", action="user.set_password", target_type="user", target_id=user.id, now=services.clock.now()
        )

    with_services(body)
    typer.echo(f"password changed for {email.strip().lower()}")


@tokens_app.command("create")
def create_token(email: EmailArg, name: Annotated[str, typer.Option(help="What the token is for")] = "cli") -> None:
    """Create an API token for a user and print it (alone, once: it is stored only as a hash)."""

    async def body(services: Services) -> str:
        auth = _auth(services)
        user = await _user(auth, email)
        try:
            token, record = await auth.create_token(user, name)
        except UserInputError as exc:
            raise CliError(str(exc), 2) from None
        await auth.audit.record(
            actor="cli",
            action="token.create",
            target_type="token",
            target_id=record.id,
            details={"email": user.email, "name": record.name},
            now=services.clock.now(),
        )
        typer.echo(f"token {record.id} ({record.name}) for {user.email}; it is shown only now", err=True)
        return token

    typer.echo(with_services(body))


@tokens_app.command("list")
def list_tokens(as_json: JsonFlag = False) -> None:
    """Every token: owner, name, prefix, last use, revocation (never the token itself)."""

    async def body(services: Services) -> list[TokenRecord]:
        return await _auth(services).tokens.list()

    tokens = with_services(body)
    rows = [
        {
            "id": t.id,
            "email": t.email,
            "name": t.name,
            "prefix": t.prefix,
            "last_used_at": when(t.last_used_at),
            "revoked_at": when(t.revoked_at),
            "created_at": when(t.created_at),
        }
        for t in tokens
    ]
    if as_json:
        print_json(rows)
        return
    table(list(rows[0]) if rows else ["id"], [list(r.values()) for r in rows])


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[int, typer.Argument(help="The token's id (from tokens list)")]) -> None:
    """Revoke a token: requests with it get 401 from now on."""

    async def body(services: Services) -> TokenRecord:
        auth = _auth(services)
        record = await auth.tokens.revoke(token_id, now=services.clock.now())
        if record is None:
            raise CliError(f"no token with id {token_id}")
        await auth.audit.record(
            actor="cli", action="token.revoke", target_type="token", target_id=token_id, now=services.clock.now()
        )
        return record

    record = with_services(body)
    typer.echo(f"revoked token {record.id} ({record.name}) of {record.email}")
