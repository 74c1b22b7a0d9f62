"""Users and their web sessions. Session tokens are stored hashed: a stolen table logs nobody in."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from dialer.errors import DialerError
from dialer.store.db import Conn
from dialer.store.passwords import DUMMY_HASH, hash_password, verify_password

ROLES = ("operator", "supervisor", "staff", "admin")


class UserError(DialerError):
    error_id = "user_invalid"
    exit_code = 2


@dataclass(frozen=True)
class User:
    id: int
    login: str
    display_name: str
    role: str
    department_id: str | None
    extension: str | None
    pbx: str | None = None  # the Asterisk server the phone is on (AMI_SERVERS); None: the first

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> User:
        return cls(
            id=row["id"],
            login=row["login"],
            display_name=row["display_name"],
            role=row["role"],
            department_id=row["department_id"],
            extension=row["extension"],
            pbx=row["pbx"],
        )


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    lang: str


_USER_COLUMNS = "u.id, u.login, u.display_name, u.role, u.department_id, u.extension, u.pbx"


def login_id(text: str) -> str:
    """A login ID as people type it: full-width letters and digits (ｏｐ１) are the same ID (op1)."""
    return unicodedata.normalize("NFKC", text).strip()


async def create_user(
    conn: Conn,
    *,
    login: str,
    password: str,
    display_name: str,
    role: str,
    department_id: str | None,
    extension: str | None = None,
    pbx: str | None = None,
) -> User:
    login = login_id(login)
    if not login:
        raise UserError("a login ID is needed")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if len(password) < 8:
        raise UserError("password must be at least 8 characters")
    try:
        row = await conn.fetchrow(
            f"""insert into app_user as u (login, display_name, role, department_id, extension, password_hash, pbx)
                values ($1, $2, $3, $4, $5, $6, $7) returning {_USER_COLUMNS}""",
            login,
            display_name,
            role,
            department_id,
            extension,
            hash_password(password),
            pbx,
        )
    except asyncpg.UniqueViolationError:
        raise UserError(f"a user with login {login!r} or extension {extension!r} already exists") from None
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise UserError(f"invalid user: {exc.detail or exc}") from None
    assert row is not None
    return User.from_row(row)


async def authenticate(conn: Conn, login: str, password: str) -> User | None:
    row = await conn.fetchrow(
        f"select {_USER_COLUMNS}, u.password_hash from app_user u where u.login = $1 and u.active", login
    )
    if row is None:
        verify_password(password, DUMMY_HASH)
        return None
    return User.from_row(row) if verify_password(password, row["password_hash"]) else None


async def recent_failures(conn: Conn, login: str, window: timedelta) -> int:
    """Failed logins for this user ID within the window (from the audit log)."""
    count: int = await conn.fetchval(
        """select count(*) from audit_log where action = 'login.failed' and detail->>'login' = $1
           and at > now() - $2::interval""",
        login,
        window,
    )
    return count


def _hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def open_session(conn: Conn, user: User, *, hours: int, lang: str = "ja") -> str:
    """Return a new session token (the cookie value)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        """insert into web_session (token_hash, user_id, csrf_token, lang, expires_at)
           values ($1, $2, $3, $4, now() + $5::interval)""",
        _hash_token(token),
        user.id,
        secrets.token_urlsafe(24),
        lang,
        timedelta(hours=hours),
    )
    return token


async def load_session(conn: Conn, token: str) -> Session | None:
    row = await conn.fetchrow(
        f"""select {_USER_COLUMNS}, s.csrf_token, s.lang from web_session s
            join app_user u on u.id = s.user_id
            where s.token_hash = $1 and s.expires_at > now() and u.active""",
        _hash_token(token),
    )
    if row is None:
        return None
    return Session(user=User.from_row(row), csrf_token=row["csrf_token"], lang=row["lang"])


async def set_session_lang(conn: Conn, token: str, lang: str) -> None:
    await conn.execute("update web_session set lang = $2 where token_hash = $1", _hash_token(token), lang)


async def close_session(conn: Conn, token: str) -> None:
    await conn.execute("delete from web_session where token_hash = $1", _hash_token(token))
