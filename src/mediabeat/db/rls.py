"""Least privilege on PostgreSQL: the group roles, their grants and the row-level security policies.

Two NOLOGIN group roles, created by migration 0005:

- `mediabeat_app`: what `serve` and `worker` need. Read and write every table's rows, use
  the sequences, read alembic_version. No DDL: migrations run as the schema owner.
- `mediabeat_member`: a connection scoped to one organisation. It reads organizations,
  feeds, articles and crawl jobs, and edits feeds, and row-level security shows it only
  its own organisation's rows.

The organisation of a member connection is the one that the table member_roles maps its
login role (`session_user`) to (migration 0009). Only the owner and the app role can read
or change that table; the policies read it through a SECURITY DEFINER function. Nothing
the client sets (a setting, `SET ROLE`) changes it; a login without a row sees nothing.
Until 0009 the scope was the `app.org_id` setting, which the client chose itself.

Login roles get one of them with `mediabeat db grant-app-role`.
"""

from __future__ import annotations

import re

APP_ROLE = "mediabeat_app"
MEMBER_ROLE = "mediabeat_member"
ORG_SETTING = "app.org_id"
# Tables with per-organisation rows, and the column that names the organisation.
ORG_TABLES = {"organizations": "id", "feeds": "org_id", "articles": "org_id", "media_crawl_jobs": "org_id"}
MEMBER_READ = ("organizations", "feeds", "articles", "media_crawl_jobs")
MEMBER_WRITE = ("feeds",)
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MEMBER_ORG_FUNCTION = "mediabeat_member_org"
MEMBER_ROLES_TABLE = "member_roles"


def org_predicate(column: str) -> str:
    """Migration 0005's scope, which the client chose: kept only to downgrade 0009 to it."""
    return f"{column} = NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint"


def member_org_predicate(column: str) -> str:
    """The row belongs to the organisation of the session's login role (a sub-select: evaluated once)."""
    return f"{column} = (SELECT {MEMBER_ORG_FUNCTION}())"


def member_scope_statements() -> list[str]:
    """Migration 0009: member policies keyed on the login role through member_roles, not on a setting.

    session_user, not current_user: SET ROLE changes current_user (and inside a SECURITY
    DEFINER function current_user is the owner), while session_user is the role that
    authenticated, and only a superuser can change it.
    """
    statements = [
        f"REVOKE ALL ON {MEMBER_ROLES_TABLE} FROM PUBLIC, {MEMBER_ROLE}",
        f"""CREATE FUNCTION {MEMBER_ORG_FUNCTION}() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT org_id FROM public.{MEMBER_ROLES_TABLE} WHERE role_name = session_user $$""",
        f"REVOKE ALL ON FUNCTION {MEMBER_ORG_FUNCTION}() FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {MEMBER_ORG_FUNCTION}() TO {MEMBER_ROLE}",
    ]
    for table, column in ORG_TABLES.items():
        predicate = member_org_predicate(column)
        statements += [
            f"DROP POLICY IF EXISTS mediabeat_member_org ON {table}",
            f"CREATE POLICY mediabeat_member_org ON {table} TO {MEMBER_ROLE} "
            f"USING ({predicate}) WITH CHECK ({predicate})",
        ]
    return statements


def setting_scope_statements() -> list[str]:
    """Downgrade of 0009: back to 0005's policies."""
    statements = []
    for table, column in ORG_TABLES.items():
        predicate = org_predicate(column)
        statements += [
            f"DROP POLICY IF EXISTS mediabeat_member_org ON {table}",
            f"CREATE POLICY mediabeat_member_org ON {table} TO {MEMBER_ROLE} "
            f"USING ({predicate}) WITH CHECK ({predicate})",
        ]
    return [*statements, f"DROP FUNCTION IF EXISTS {MEMBER_ORG_FUNCTION}()"]


def create_role_sql(role: str) -> str:
    """Create a NOLOGIN group role unless it exists; safe when several processes migrate at once."""
    return f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$"""


def upgrade_statements() -> list[str]:
    statements = [create_role_sql(APP_ROLE), create_role_sql(MEMBER_ROLE)]
    statements += [
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {MEMBER_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
        # Tables and sequences that later migrations add (as the same owner) are the app's too.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}",
        f"GRANT SELECT ON {', '.join(MEMBER_READ)} TO {MEMBER_ROLE}",
        f"GRANT INSERT, UPDATE, DELETE ON {', '.join(MEMBER_WRITE)} TO {MEMBER_ROLE}",
        f"GRANT USAGE ON SEQUENCE {', '.join(f'{t}_id_seq' for t in MEMBER_WRITE)} TO {MEMBER_ROLE}",
    ]
    for table, column in ORG_TABLES.items():
        predicate = org_predicate(column)
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY mediabeat_service ON {table} TO {APP_ROLE} USING (true) WITH CHECK (true)",
            f"CREATE POLICY mediabeat_member_org ON {table} TO {MEMBER_ROLE} "
            f"USING ({predicate}) WITH CHECK ({predicate})",
        ]
    return statements


def downgrade_statements() -> list[str]:
    statements: list[str] = []
    for table in ORG_TABLES:
        statements += [
            f"DROP POLICY IF EXISTS mediabeat_member_org ON {table}",
            f"DROP POLICY IF EXISTS mediabeat_service ON {table}",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ]
    statements += [
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}, {MEMBER_ROLE}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}, {MEMBER_ROLE}",
        f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}, {MEMBER_ROLE}",
    ]  # the roles themselves stay: they belong to the whole server, and other databases may use them
    return statements


def sql_literal(text: str) -> str:
    """A PostgreSQL string literal (standard_conforming_strings: only the quote is special)."""
    return "'" + text.replace("'", "''") + "'"


def grant_statements(role: str, *, member: bool, database: str, create: bool, org: str | None = None) -> list[str]:
    """What makes login role `role` a MediaBeat service connection, or with member one scoped to `org`.

    `org` is an organisation's id or name; a member role needs one. The member's scope is its
    row in member_roles; making a role the app's removes any such row.
    """
    if not ROLE_NAME.fullmatch(role):
        raise ValueError(f"{role!r} is not a plain role name: use lower-case letters, digits and _")
    if role in (APP_ROLE, MEMBER_ROLE):
        raise ValueError(f"{role!r} is a group role; name the login role that should get it")
    if member and not org:
        raise ValueError("a member role is scoped to one organisation: name it with --org (its id or name)")
    if org and not member:
        raise ValueError("--org is for a member role (--member); the app role sees every organisation")
    group = MEMBER_ROLE if member else APP_ROLE
    other = APP_ROLE if member else MEMBER_ROLE
    statements = [f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"] if create else []
    statements += [
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"REVOKE {other} FROM {role}",  # one scope only: the policies of both would add up
        f"GRANT {group} TO {role}",
    ]
    if member and org:
        where = f"id = {int(org)}" if org.isdigit() else f"name = {sql_literal(org)}"
        statements.append(
            f"INSERT INTO {MEMBER_ROLES_TABLE} (role_name, org_id, created_at)"
            f" SELECT '{role}', id, now() FROM organizations WHERE {where}"
            " ON CONFLICT (role_name) DO UPDATE SET org_id = excluded.org_id"
        )
    else:
        statements.append(f"DELETE FROM {MEMBER_ROLES_TABLE} WHERE role_name = '{role}'")
    return statements


# Migration 0013's tables: story clusters, one row per clustered article, and the LSH band index.
STORY_TABLES = {"story_clusters": "org_id", "article_clusters": "org_id", "article_bands": "org_id"}


def story_table_statements() -> list[str]:
    """Migration 0013: the story tables get 0009's policies (members read their organisation's rows only)."""
    statements = [f"GRANT SELECT ON {', '.join(STORY_TABLES)} TO {MEMBER_ROLE}"]
    for table, column in STORY_TABLES.items():
        predicate = member_org_predicate(column)
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY mediabeat_service ON {table} TO {APP_ROLE} USING (true) WITH CHECK (true)",
            f"CREATE POLICY mediabeat_member_org ON {table} TO {MEMBER_ROLE} "
            f"USING ({predicate}) WITH CHECK ({predicate})",
        ]
    return statements


def service_only_statements(table: str) -> list[str]:
    """RLS for an org table that holds secrets (websub_subscriptions): the app role sees every row, members none.

    Members get no grant on it; row-level security makes that explicit, so a later broad grant
    still shows a member nothing.
    """
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY mediabeat_service ON {table} TO {APP_ROLE} USING (true) WITH CHECK (true)",
        f"REVOKE ALL ON {table} FROM {MEMBER_ROLE}",
    ]
