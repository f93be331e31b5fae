"""Who may do what: each role's permissions, in one table that the API, the dashboard and the docs follow.

Three roles, after the operator conventions of job dashboards (Oban Web's access levels, Sidekiq Web's
read-only mode): an admin may do everything; an operator watches and steers the running system (the
scheduler, the crawl queue, the feeds' fetch state) but changes no definitions, no accounts and no
organisation's content; a member works with their own organisation's feeds, articles and monitors.

The operator does not read the audit log: it records sign-ins with addresses and every change to
users and tokens, which is account management, and what an operator needs from it is on the runs and
the pause switch already (`triggered_by`, `cancelled_by`, `changed_by`).
"""

from __future__ import annotations

import enum

from mediabeat.domain.content import Role


class Permission(enum.StrEnum):
    """One thing a user may be allowed to do; the value is what the docs' role table names."""

    VIEW_SCHEDULER = "view_scheduler"  # tasks, runs, run logs, stats, nodes, handlers, pause state, /metrics
    OPERATE_TASKS = "operate_tasks"  # run a task now, switch a task on or off
    CANCEL_RUNS = "cancel_runs"
    PAUSE_SCHEDULER = "pause_scheduler"  # pause and resume the scheduler on every node
    EDIT_TASKS = "edit_tasks"  # create, change (cron, policies, chain) and delete tasks
    VIEW_CRAWL_QUEUE = "view_crawl_queue"  # crawl jobs, and every organisation's feeds with their fetch state
    RETRY_JOBS = "retry_jobs"  # queue failed crawl jobs again
    READ_CONTENT = "read_content"  # articles, search, stories, monitors, OPML export (scope: see EVERY_ORGANISATION)
    EDIT_CONTENT = "edit_content"  # add, change, fetch and delete feeds; import OPML; manage monitors
    EVERY_ORGANISATION = "every_organisation"  # the content permissions reach every organisation, not one
    MANAGE_ORGS = "manage_orgs"
    MANAGE_USERS = "manage_users"  # users, their roles and passwords, API tokens
    READ_AUDIT = "read_audit"


OPERATOR_PERMISSIONS = frozenset(
    {
        Permission.VIEW_SCHEDULER,
        Permission.OPERATE_TASKS,
        Permission.CANCEL_RUNS,
        Permission.PAUSE_SCHEDULER,
        Permission.VIEW_CRAWL_QUEUE,
        Permission.RETRY_JOBS,
        Permission.EVERY_ORGANISATION,  # only the feeds' fetch state: an operator reads no content
    }
)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: OPERATOR_PERMISSIONS,
    Role.MEMBER: frozenset({Permission.READ_CONTENT, Permission.EDIT_CONTENT}),
}
# What a refusal says the caller lacked, e.g. "operators may not manage users".
PERMISSION_WORDS = {
    Permission.VIEW_SCHEDULER: "see the scheduler",
    Permission.OPERATE_TASKS: "run tasks or switch them on and off",
    Permission.CANCEL_RUNS: "cancel runs",
    Permission.PAUSE_SCHEDULER: "pause or resume the scheduler",
    Permission.EDIT_TASKS: "create, change or delete tasks",
    Permission.VIEW_CRAWL_QUEUE: "see the crawl queue",
    Permission.RETRY_JOBS: "retry crawl jobs",
    Permission.READ_CONTENT: "read organisations' articles, stories and monitors",
    Permission.EDIT_CONTENT: "change organisations' feeds and monitors",
    Permission.EVERY_ORGANISATION: "reach every organisation",
    Permission.MANAGE_ORGS: "manage organisations",
    Permission.MANAGE_USERS: "manage users and API tokens",
    Permission.READ_AUDIT: "read the audit log",
}


def permissions_of(role: str) -> frozenset[Permission]:
    """The role's permissions; a role this version does not know (a newer one's) has none."""
    try:
        return ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()


def allows(role: str, permission: Permission) -> bool:
    return permission in permissions_of(role)


def roles_with(permission: Permission) -> list[Role]:
    """The roles that have it, most powerful first."""
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]


def refusal(role: str, permission: Permission) -> str:
    """Why a user with `role` is refused, in words: what they tried and which roles may."""
    needed = " or ".join(f"an {r.value}" if r.value[0] in "aeiou" else f"a {r.value}" for r in roles_with(permission))
    return f"{role}s may not {PERMISSION_WORDS[permission]}: this needs {needed}"


def organisation_problem(role: str, has_org: bool) -> str | None:
    """What is wrong with giving a new user of `role` an organisation (or none), or None when it fits."""
    if role == Role.MEMBER and not has_org:
        return "a member belongs to an organisation: give one"
    if role == Role.OPERATOR and has_org:
        return "an operator belongs to no organisation (they read no organisation's content): leave it out"
    return None
