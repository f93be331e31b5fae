"""`mediabeat users` and `mediabeat tokens`: accounts and API tokens without a browser."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, cli_actor, print_json, table, when, with_services
from mediabeat.domain.content import Role, TokenRecord, UserRecord

users_app = typer.Typer(help="Users: create, list, set (role, active), set-password.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)

ROLE_HELP = (
    "admin (everything), operator (run the scheduler and the crawl queue; no accounts, task definitions "
    "or content) or member (their organisation's feeds and articles)"
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
EmailArg = Annotated[str, typer.Argument(help="The user's email address")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (first line)")
]


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
    role: Annotated[Role, typer.Option(help=ROLE_HELP)] = Role.MEMBER,
    org: Annotated[
        str | None, typer.Option(help="The organisation's name (created if missing); members need one, operators none")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; the password comes from standard input with --password-stdin."""
    password = _read_password(password_stdin)

    async def body(services: Services) -> UserRecord:
        return await services.content.accounts.create_user_in(
            email, role=role, org_name=org, password=password, actor=cli_actor()
        )

    user = with_services(body)
    typer.echo(f"created {user.role} {user.email} (id {user.id})" + (f" in {org}" if org else ""))


@users_app.command("list")
def list_users(as_json: JsonFlag = False) -> None:
    """Every user with role, organisation and last sign-in."""

    users = with_services(lambda s: s.content.accounts.list_users())
    if as_json:
        print_json([user_json(u) for u in users])
        return
    table(
        ["id", "email", "role", "org", "active", "last login"],
        [[u.id, u.email, u.role, u.org_name, u.is_active, when(u.last_login_at)] for u in users],
    )


@users_app.command("set")
def set_user(
    email: EmailArg,
    role: Annotated[Role | None, typer.Option(help=ROLE_HELP)] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Reactivate, or deactivate (their sessions end)")
    ] = None,
) -> None:
    """Change a user's role or switch them on or off; the last admin stays an admin."""
    if role is None and active is None:
        raise CliError("nothing to change: give --role, --active or --inactive", 2)

    async def body(services: Services) -> UserRecord:
        accounts = services.content.accounts
        user = await accounts.get_user_by_email(email)
        return await accounts.update_user(user.id, cli_actor(), role=role, is_active=active)

    user = with_services(body)
    typer.echo(f"{user.email} is now {'an active' if user.is_active else 'an inactive'} {user.role}")


@users_app.command("set-password")
def set_password(email: EmailArg, password_stdin: PasswordStdin = False) -> None:
    """Change a user's password (their sessions end)."""
    password = _read_password(password_stdin)

    async def body(services: Services) -> None:
        accounts = services.content.accounts
        user = await accounts.get_user_by_email(email)
        await accounts.update_user(user.id, cli_actor(), password=password)

    with_services(body)
    typer.echo(f"password changed for {email.strip().lower()}")


@tokens_app.command("create")
def create_token(email: EmailArg, name: Annotated[str, typer.Option(help="What the token is for")] = "cli") -> None:
    """Create an API token for a user and print it (alone, once: it is stored only as a hash)."""

    async def body(services: Services) -> str:
        accounts = services.content.accounts
        user = await accounts.get_user_by_email(email)
        token, record = await accounts.create_token(user, name, cli_actor())
        typer.echo(f"token {record.id} ({record.name}) for {user.email}; it is shown only now", err=True)
        return token

    typer.echo(with_services(body))


@tokens_app.command("list")
def list_tokens(as_json: JsonFlag = False) -> None:
    """Every token: owner, name, prefix, last use, revocation (never the token itself)."""

    tokens: list[TokenRecord] = with_services(lambda s: s.content.accounts.list_tokens())
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

    record: TokenRecord = with_services(lambda s: s.content.accounts.revoke_token(token_id, cli_actor()))
    typer.echo(f"revoked token {record.id} ({record.name}) of {record.email}")
