"""Users and API tokens as admins manage them (the API's /users and /tokens, the CLI's users and tokens)."""

from __future__ import annotations

from typing import Any

from mediabeat.auth.service import AuthService
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.access import organisation_problem
from mediabeat.domain.content import (
    ROLE_NAMES,
    Actor,
    InvalidInput,
    Role,
    TokenNotFound,
    TokenRecord,
    UserNotFound,
    UserRecord,
)
from mediabeat.domain.ids import valid_id
from mediabeat.services.audit import AuditService


class AccountService:
    """Create and change users and tokens on top of AuthService's credential rules; every change is audited."""

    def __init__(self, *, auth: AuthService, orgs: OrgStore, audit: AuditService) -> None:
        self.auth = auth
        self.orgs = orgs
        self.audit = audit

    async def list_users(self) -> list[UserRecord]:
        return await self.auth.users.list()

    async def get_user(self, user_id: int) -> UserRecord:
        user = await self.auth.users.get(user_id) if valid_id(user_id) else None
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def get_user_by_email(self, email: str) -> UserRecord:
        user = await self.auth.users.get_by_email(email)
        if user is None:
            raise UserNotFound(f"with email {email.strip().lower()}")
        return user

    async def create_user(
        self, email: str, *, role: str, org_id: int | None, password: str, actor: Actor
    ) -> UserRecord:
        """A new user; a member needs an organisation that exists, an operator has none."""
        if org_id is not None and (not valid_id(org_id) or await self.orgs.get(org_id) is None):
            raise InvalidInput("org_id", f"no organisation with id {org_id}")
        user = await self.auth.create_user(email, role=role, org_id=org_id, password=password)
        details = {"email": user.email, "role": user.role, "org_id": user.org_id}
        await self.audit.record(actor, "user.create", target_type="user", target_id=user.id, details=details)
        return user

    async def create_user_in(
        self, email: str, *, role: str, org_name: str | None, password: str, actor: Actor
    ) -> UserRecord:
        """A new user in the organisation of that name, made when missing (the CLI's way); the organisation is
        only made once the role is known to take one."""
        problem = organisation_problem(role, org_name is not None)
        if problem is not None:
            raise InvalidInput("org", problem)
        org_id = await self.org_id_for(org_name, actor) if org_name is not None else None
        return await self.create_user(email, role=role, org_id=org_id, password=password, actor=actor)

    async def org_id_for(self, name: str, actor: Actor) -> int:
        """The id of the organisation with that name, made (and audited) when missing."""
        found = await self.orgs.get_by_name(name)
        if found is not None:
            return found.id
        org_id = await self.auth.org_id(name, create=True)
        assert org_id is not None  # create=True always returns one
        await self.audit.record(actor, "org.create", target_type="org", target_id=org_id, details={"name": name})
        return org_id

    async def update_user(
        self,
        user_id: int,
        actor: Actor,
        *,
        is_active: bool | None = None,
        password: str | None = None,
        must_change_password: bool = False,
        role: str | None = None,
    ) -> UserRecord:
        """Deactivate or reactivate a user (deactivating ends their sessions), set their password
        (with must_change_password, they choose their own at the next sign-in) and/or their role."""
        user = await self.get_user(user_id)
        if is_active is False and user.id == actor.user_id:
            raise InvalidInput("is_active", "you cannot deactivate yourself")
        if role is not None and role != user.role:
            await self._check_role_change(user, role, actor)
        if password is not None:
            await self.auth.set_password(user, password, must_change=must_change_password)
        if role is not None and role != user.role:
            await self.auth.users.set_role(user.id, role)
        if is_active is not None:
            await self.auth.users.set_active(user.id, is_active)
            if not is_active:
                await self.auth.sessions.delete_for_user(user.id)
        details: dict[str, Any] = {"email": user.email}
        if is_active is not None:
            details["is_active"] = is_active
        if password is not None:
            details["password_changed"] = True
            details["must_change_password"] = must_change_password
        if role is not None and role != user.role:
            details["role"] = role
        await self.audit.record(actor, "user.update", target_type="user", target_id=user.id, details=details)
        return await self.get_user(user_id)

    async def _check_role_change(self, user: UserRecord, role: str, actor: Actor) -> None:
        """An operator keeps the organisation on record (to be made a member again) but it grants them nothing."""
        if role not in {r.value for r in Role}:
            raise InvalidInput("role", f"role must be one of {ROLE_NAMES}, not {role!r}")
        if user.id == actor.user_id:
            raise InvalidInput("role", "you cannot change your own role")
        if role == Role.MEMBER and user.org_id is None:
            raise InvalidInput("role", f"{user.email} belongs to no organisation, so cannot be a member")
        if user.role == Role.ADMIN and role != Role.ADMIN and await self.auth.users.count_admins() <= 1:
            raise InvalidInput("role", f"the last admin cannot become {'an' if role == Role.OPERATOR else 'a'} {role}")

    async def list_tokens(self, *, user_id: int | None = None) -> list[TokenRecord]:
        if user_id is not None and not valid_id(user_id):
            return []
        return await self.auth.tokens.list(user_id=user_id)

    async def create_token(self, owner: UserRecord, name: str, actor: Actor) -> tuple[str, TokenRecord]:
        """A new token for `owner`: (the token, shown once; its record)."""
        token, record = await self.auth.create_token(owner, name)
        details = {"owner": owner.email, "name": record.name}
        await self.audit.record(actor, "token.create", target_type="token", target_id=record.id, details=details)
        return token, record

    async def revoke_token(self, token_id: int, actor: Actor) -> TokenRecord:
        record = await self.auth.tokens.revoke(token_id, now=self.auth.clock.now()) if valid_id(token_id) else None
        if record is None:
            raise TokenNotFound(token_id)
        details = {"owner": record.email}
        await self.audit.record(actor, "token.revoke", target_type="token", target_id=token_id, details=details)
        return record
