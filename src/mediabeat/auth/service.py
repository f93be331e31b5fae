"""Sign-in, credentials and users: the rules that the API and the CLI share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from mediabeat.auth.emails import InvalidEmail, check_email
from mediabeat.auth.passwords import (
    WeakPassword,
    check_policy,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.db.stores.audit import AuditStore
from mediabeat.db.stores.login_failures import LoginLimit, LoginLimiter
from mediabeat.db.stores.sessions import SessionStore
from mediabeat.db.stores.tokens import Owner, TokenStore
from mediabeat.db.stores.users import ROLES, UserStore, normalise_email
from mediabeat.db.tables import organizations as orgs_t
from mediabeat.domain.access import organisation_problem
from mediabeat.domain.content import ROLE_NAMES, EmailTaken, InvalidInput, TokenRecord, UserRecord
from mediabeat.domain.secrets import generate_token, hash_secret, looks_like_token, token_prefix
from mediabeat.settings import Settings

__all__ = ["AuthService", "InvalidCredentials", "LoginThrottled", "UserInputError", "WeakPassword"]

DEFAULT_ADMIN_EMAIL = "admin@localhost"
INVALID_CREDENTIALS = "wrong email or password"


class InvalidCredentials(Exception):
    """Unknown user, wrong password or disabled account: one message for all, so none leaks."""

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


# Bad input for a user or token operation; `field` names it. One type with the content services' errors.
UserInputError = InvalidInput


@dataclass(frozen=True, slots=True)
class SignIn:
    user: UserRecord
    session_id: str
    csrf_token: str


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    """A changed password: the user, and the session that replaces the caller's (None for token callers)."""

    user: UserRecord
    session_id: str | None
    csrf_token: str | None


class AuthService:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.users = UserStore(db)
        self.tokens = TokenStore(db)
        self.sessions = SessionStore(db)
        self.audit = AuditStore(db)
        self.limiter = LoginLimiter(
            db,
            LoginLimit(
                max_per_account=settings.login_max_failures,
                max_per_ip=settings.login_max_failures_per_ip,
                window=timedelta(seconds=settings.login_window_seconds),
            ),
        )

    # -- sign-in -----------------------------------------------------------------------

    async def login(self, email: str, password: str, *, ip: str, user_agent: str | None) -> SignIn:
        email = normalise_email(email)
        now = self.clock.now()
        retry_after = await self.limiter.retry_after(email, ip, now=now)
        if retry_after is not None:
            raise LoginThrottled(retry_after)
        user = await self.users.get_by_email(email)
        valid = verify_password(user.password_hash if user else None, password)
        if user is None or not valid or not user.is_active:
            await self.limiter.record_failure(email, ip, now=now)
            await self.audit.record(actor=email, action="auth.login_failed", now=now, ip=ip)
            raise InvalidCredentials()
        await self.limiter.clear_account(email)
        if needs_rehash(user.password_hash):
            await self.users.set_password(user.id, hash_password(password), must_change=user.must_change_password)
        await self.users.mark_login(user.id, now)
        session_id, csrf = await self.sessions.create(
            user.id, now=now, lifetime=timedelta(hours=self.settings.session_hours), ip=ip, user_agent=user_agent
        )
        await self.audit.record(
            actor=user.email,
            actor_user_id=user.id,
            action="auth.login",
            target_type="user",
            target_id=user.id,
            now=now,
            ip=ip,
        )
        return SignIn(user=user, session_id=session_id, csrf_token=csrf)

    async def owner_of_token(self, token: str) -> Owner | None:
        if not looks_like_token(token):
            return None
        return await self.tokens.owner_of(hash_secret(token), now=self.clock.now())

    async def owner_of_session(self, session_id: str) -> Owner | None:
        if not 20 <= len(session_id) <= 200:
            return None
        return await self.sessions.owner_of(session_id, now=self.clock.now())

    # -- users and tokens ------------------------------------------------------------------

    async def org_id(self, name: str, *, create: bool = False) -> int | None:
        """The id of the organisation with that name; with create, make it when missing."""
        async with self.db.read() as conn:
            found = (await conn.execute(sa.select(orgs_t.c.id).where(orgs_t.c.name == name))).scalar()
        if found is not None or not create:
            return None if found is None else int(found)
        async with self.db.write() as conn:
            found = (await conn.execute(sa.select(orgs_t.c.id).where(orgs_t.c.name == name))).scalar()
            if found is None:
                found = (
                    await conn.execute(
                        orgs_t.insert().values(name=name, created_at=self.clock.now()).returning(orgs_t.c.id)
                    )
                ).scalar_one()
        return int(found)

    async def create_user(
        self, email: str, *, role: str, org_id: int | None, password: str, must_change_password: bool = False
    ) -> UserRecord:
        email = normalise_email(email)
        try:
            check_email(email)
        except InvalidEmail as exc:
            raise UserInputError("email", str(exc)) from None
        if role not in ROLES:
            raise UserInputError("role", f"role must be one of {ROLE_NAMES}, not {role!r}")
        problem = organisation_problem(role, org_id is not None)
        if problem is not None:
            raise UserInputError("org", problem)
        try:
            check_policy(password, email=email)
        except WeakPassword as exc:
            raise UserInputError("password", str(exc)) from None
        if await self.users.get_by_email(email) is not None:
            raise EmailTaken(email)
        return await self.users.create(
            email,
            role,
            org_id,
            hash_password(password),
            now=self.clock.now(),
            must_change_password=must_change_password,
        )

    async def set_password(self, user: UserRecord, password: str, *, must_change: bool = False) -> None:
        """An admin's reset: with must_change, the user chooses their own at the next sign-in."""
        try:
            check_policy(password, email=user.email)
        except WeakPassword as exc:
            raise UserInputError("password", str(exc)) from None
        await self.users.set_password(user.id, hash_password(password), must_change=must_change)
        await self.sessions.delete_for_user(user.id)

    async def change_own_password(
        self, user_id: int, current: str, new: str, *, ip: str, user_agent: str | None, new_session: bool
    ) -> PasswordChanged:
        """A user's own change: the current password proves it is them; every session ends (with new_session,
        a fresh one replaces the one the change came from).

        A wrong current password counts as a failed sign-in (the same throttle), so this is no side door for guessing.
        """
        now = self.clock.now()
        user = await self.users.get(user_id)
        if user is None or not user.is_active:
            raise InvalidCredentials()
        retry_after = await self.limiter.retry_after(user.email, ip, now=now)
        if retry_after is not None:
            raise LoginThrottled(retry_after)
        if not verify_password(user.password_hash, current):
            await self.limiter.record_failure(user.email, ip, now=now)
            raise UserInputError("current_password", "the current password is wrong")
        if new == current:
            raise UserInputError("new_password", "choose a password that differs from the current one")
        try:
            check_policy(new, email=user.email)
        except WeakPassword as exc:
            raise UserInputError("new_password", str(exc)) from None
        await self.users.set_password(user.id, hash_password(new), must_change=False)
        await self.sessions.delete_for_user(user.id)
        fresh = await self.users.get(user.id) or user
        if not new_session:
            return PasswordChanged(user=fresh, session_id=None, csrf_token=None)
        session_id, csrf = await self.sessions.create(
            user.id, now=now, lifetime=timedelta(hours=self.settings.session_hours), ip=ip, user_agent=user_agent
        )
        return PasswordChanged(user=fresh, session_id=session_id, csrf_token=csrf)

    async def create_token(self, user: UserRecord, name: str) -> tuple[str, TokenRecord]:
        """A new token for a user: (the token, shown once; its record)."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise UserInputError("name", "a token name has 1 to 200 characters")
        token = generate_token()
        record = await self.tokens.create(user.id, name, hash_secret(token), token_prefix(token), now=self.clock.now())
        return token, record

    async def ensure_admin(self) -> tuple[str, str | None] | None:
        """Create the first admin if there is none: (email, generated password or None if it came from settings)."""
        if await self.users.count_admins() > 0:
            return None
        email = self.settings.admin_email or DEFAULT_ADMIN_EMAIL
        generated = self.settings.admin_password is None
        password = self.settings.admin_password or generate_password()
        user = await self.create_user(
            email, role="admin", org_id=None, password=password, must_change_password=generated
        )
        await self.audit.record(
            actor="system",
            action="user.create",
            target_type="user",
            target_id=user.id,
            details={"email": user.email, "role": "admin", "first_admin": True},
            now=self.clock.now(),
        )
        return user.email, password if generated else None
