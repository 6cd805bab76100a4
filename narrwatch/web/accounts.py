"""Accounts and roles, audit trail. Used by the app and by ``narrwatch users``.

Roles, each with what the one below it may do: reader (reads every page), analyst (verdicts, seeds,
promoting clusters), operator (feeds), admin (accounts).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from narrwatch.context import AppContext
from narrwatch.db.models import AuditEvent, User

Role = Literal["reader", "analyst", "operator", "admin"]
ROLES: tuple[Role, ...] = ("reader", "analyst", "operator", "admin")
PERMISSIONS: dict[str, Role] = {
    "read": "reader",
    "verdict": "analyst",
    "seed": "analyst",
    "promote": "analyst",
    "audit": "analyst",
    "feeds": "operator",
    "accounts": "admin",
}
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()
#: Verified against when the user is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("narrwatch-no-such-user")


class AccountError(ValueError):
    pass


def allowed(role: str, permission: str) -> bool:
    needed = PERMISSIONS[permission]
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


def _account(user: User) -> Account:
    return Account(user.id, user.username, user.role, user.disabled, user.created_at, user.last_login_at)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"no user named {username!r} (see `narrwatch users list`)")
    return user


def add_user(
    ctx: AppContext, username: str, role: str, password: str | None, now: dt.datetime, *, by: str = "cli"
) -> Account:
    """A new account; ``password`` None makes an SSO-only account (trusted proxy header)."""
    if not USERNAME.match(username):
        raise AccountError("a user name has 1-100 letters, digits or . _ @ -")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if password is not None:
        _check_password(password)
    with ctx.transaction() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise AccountError(f"user {username!r} exists already (use `narrwatch users passwd`)")
        user = User(
            username=username,
            password_hash=_hasher.hash(password) if password is not None else None,
            role=role,
            disabled=False,
            created_at=now,
        )
        session.add(user)
        record(session, by, "user.add", f"user:{username}", {"role": role}, now)
        session.flush()
        return _account(user)


def set_password(ctx: AppContext, username: str, password: str, now: dt.datetime, *, by: str = "cli") -> None:
    _check_password(password)
    with ctx.transaction() as session:
        _user(session, username).password_hash = _hasher.hash(password)
        record(session, by, "user.passwd", f"user:{username}", {}, now)


def set_disabled(
    ctx: AppContext, username: str, disabled: bool, now: dt.datetime, *, by: str = "cli"
) -> None:
    with ctx.transaction() as session:
        _user(session, username).disabled = disabled
        record(session, by, "user.disable" if disabled else "user.enable", f"user:{username}", {}, now)


def set_role(ctx: AppContext, username: str, role: str, now: dt.datetime, *, by: str = "cli") -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    with ctx.transaction() as session:
        _user(session, username).role = role
        record(session, by, "user.role", f"user:{username}", {"role": role}, now)


def list_users(ctx: AppContext) -> list[Account]:
    with ctx.transaction() as session:
        return [_account(user) for user in session.scalars(select(User).order_by(User.username))]


def authenticate(ctx: AppContext, username: str, password: str, now: dt.datetime) -> Account | None:
    """The account if the name and password are right and it is enabled; None otherwise."""
    with ctx.transaction() as session:
        user = session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled or not user.password_hash:
            return None
        if _hasher.check_needs_rehash(stored):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = now
        return _account(user)


def account_by_id(session: Session, user_id: int) -> Account | None:
    user = session.get(User, user_id)
    return None if user is None or user.disabled else _account(user)


def account_by_name(session: Session, username: str) -> Account | None:
    user = session.scalar(select(User).where(User.username == username))
    return None if user is None or user.disabled else _account(user)


# --- audit --------------------------------------------------------------------------------------


def record(
    session: Session, username: str, action: str, subject: str, details: dict[str, Any], now: dt.datetime
) -> None:
    session.add(AuditEvent(at=now, username=username, action=action, subject=subject, details=details))


def audit_events(
    session: Session, *, limit: int, offset: int = 0, username: str | None = None, action: str | None = None
) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if username:
        query = query.where(AuditEvent.username == username)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    return list(session.scalars(query.limit(limit).offset(offset)))
