"""Operators from the command line: `users create --role operator`, `users set --role`, and what their token opens."""

from __future__ import annotations

from tests.integration.api_fixtures import ADMIN_EMAIL, MEMBER_EMAIL, ApiEnv
from tests.integration.test_content_services import cli, ok

PASSWORD = "an-operator-password-1\n"


async def test_an_operator_made_on_the_command_line_steers_the_scheduler_and_manages_no_one(api: ApiEnv) -> None:
    with_org = await cli(
        api, "users", "create", "ops@example.test", "--role", "operator", "--org", "new-desk", "--password-stdin",
        stdin=PASSWORD,
    )  # fmt: skip
    assert with_org.exit_code == 2 and "an operator belongs to no organisation" in with_org.stderr
    assert "new-desk" not in {o.name for o in await api.services.content.orgs.list()}  # not made for nothing
    made = ok(
        await cli(api, "users", "create", "ops@example.test", "--role", "operator", "--password-stdin", stdin=PASSWORD)
    )
    assert "created operator ops@example.test" in made
    assert '"role": "operator"' in ok(await cli(api, "users", "list", "--json"))
    token = ok(await cli(api, "tokens", "create", "ops@example.test", "--name", "runbook")).strip()
    async with api.client(token) as client:
        me = (await client.get("/api/v1/auth/me")).json()["user"]
        assert me["role"] == "operator" and me["org_id"] is None
        assert "pause_scheduler" in me["permissions"] and "manage_users" not in me["permissions"]
        assert (await client.get("/api/v1/scheduler/tasks")).status_code == 200
        assert (await client.post("/api/v1/scheduler/pause")).status_code == 200
        refused = await client.get("/api/v1/users")
        assert refused.status_code == 403
        assert (
            refused.json()["error"]["message"] == "operators may not manage users and API tokens: this needs an admin"
        )


async def test_users_set_changes_roles_and_the_last_admin_stays_one(api: ApiEnv) -> None:
    last = await cli(api, "users", "set", ADMIN_EMAIL, "--role", "operator")
    assert last.exit_code == 2 and "the last admin cannot become an operator" in last.stderr
    nothing = await cli(api, "users", "set", MEMBER_EMAIL)
    assert nothing.exit_code != 0 and "nothing to change" in nothing.stderr
    assert "is now an active operator" in ok(await cli(api, "users", "set", MEMBER_EMAIL, "--role", "operator"))
    member = await api.services.content.accounts.get_user_by_email(MEMBER_EMAIL)
    assert member.role == "operator" and member.org_id == api.org_id  # kept on record, for the way back
    async with api.member() as client:  # the same token, now an operator's: no organisation's articles
        assert (await client.get("/api/v1/articles")).status_code == 403
        assert (await client.get("/api/v1/jobs")).status_code == 200
    assert "is now an active member" in ok(await cli(api, "users", "set", MEMBER_EMAIL, "--role", "member"))
    assert "is now an inactive member" in ok(await cli(api, "users", "set", MEMBER_EMAIL, "--inactive"))
    async with api.member() as client:
        assert (await client.get("/api/v1/articles")).status_code == 401
