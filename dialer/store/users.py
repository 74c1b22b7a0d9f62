"""Users and their web sessions. Session tokens are stored hashed: a stolen table logs nobody in."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dialer.errors import DialerError
from dialer.store import audit, lockouts
from dialer.store.db import Conn, transaction
from dialer.store.passwords import digest_for, dummy_hash, hash_password, verify_password

ROLES = ("operator", "supervisor", "staff", "admin")
# An administrator's department would narrow what they read (the supervisors' list, one department's
# campaigns) without making them anyone's colleague: they have none.
ADMIN_EVERYWHERE = "an administrator belongs to no department: they see every one"


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


def display_name_of(text: str) -> str:
    """A person's name as the pages show it: half-width kana whole (ﾀﾅｶ → タナカ), full-width
    spaces and runs of spaces one space, as imported names are (dialer.imports.values)."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


# The passwords tried first by anyone guessing (and the login lockout allows five guesses an ID).
_COMMON = frozenset(
    {
        "password", "password1", "password123", "passw0rd", "p@ssw0rd", "12345678", "123456789", "1234567890",
        "87654321", "11111111", "00000000", "88888888", "abcd1234", "abc12345", "qwertyui", "qwertyuiop",
        "asdfghjk", "iloveyou", "letmein1", "welcome1", "admin123", "administrator", "changeme", "changeme1",
        "dialer123", "sunshine", "baseball",
    }
)  # fmt: skip


def password_problem(password: str, login: str) -> str | None:
    """Why a password is refused (None: it is accepted): too short, the login ID (or it backwards),
    one of the first guessed, or one or two characters repeated."""
    if len(password) < 8:
        return "password must be at least 8 characters"
    lowered = password.lower()
    if lowered in _COMMON or len(set(lowered)) <= 2:
        return "password is one of the first a guesser tries: choose another"
    if login and lowered in (login_id(login).lower(), login_id(login).lower()[::-1]):
        return "password must not be the login ID"
    return None


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
    if problem := password_problem(password, login):
        raise UserError(problem)
    if role == "admin" and department_id:
        raise UserError(ADMIN_EVERYWHERE)
    try:
        row = await conn.fetchrow(
            f"""insert into app_user as u (login, display_name, role, department_id, extension, password_hash, pbx)
                values ($1, $2, $3, $4, $5, $6, $7) returning {_USER_COLUMNS}""",
            login,
            display_name_of(display_name),
            role,
            department_id,
            extension,
            hash_password(password),
            pbx,
        )
    except asyncpg.UniqueViolationError as exc:
        if "extension" in (exc.constraint_name or ""):
            raise UserError(f"extension {extension!r} belongs to another user already") from None
        raise UserError(
            f"a user with login {login!r} already exists (`dialer users set` changes one)"
        ) from None
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise UserError(_refusal(exc)) from None
    assert row is not None
    return User.from_row(row)


@dataclass(frozen=True)
class Listed:
    user: User
    active: bool
    created_at: datetime


async def listed(conn: Conn, department_id: str | None = None) -> list[Listed]:
    """Every user (of one department, with its administrators), active or not, by login ID."""
    rows = await conn.fetch(
        f"""select {_USER_COLUMNS}, u.active, u.created_at from app_user u
            where $1::text is null or u.department_id = $1 or u.department_id is null order by u.login""",
        department_id,
    )
    return [Listed(User.from_row(r), r["active"], r["created_at"]) for r in rows]


CHANGEABLE = ("display_name", "role", "department_id", "extension", "pbx")


async def change(
    conn: Conn,
    login: str,
    changes: Mapping[str, str | None],
    *,
    password: str | None = None,
    active: bool | None = None,
    via: Mapping[str, Any],
) -> Listed:
    """Change a user: `changes` holds CHANGEABLE fields (None: none, for department_id, extension
    and pbx); a new password; or switch the login off (a leaver: refused at once, every session and
    open page ended) or on again. In one transaction with the audit log's entry (before and after,
    never the password)."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(unknown)
    if "role" in changes and changes["role"] not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {changes['role']!r}")
    if "display_name" in changes and not (changes["display_name"] or "").strip():
        raise UserError("a display name is needed")
    if password is not None and (problem := password_problem(password, login)):
        raise UserError(problem)
    async with transaction(conn) as tx:
        row = await tx.fetchrow(
            f"select {_USER_COLUMNS}, u.active, u.created_at from app_user u where u.login = $1 for update",
            login_id(login),
        )
        if row is None:
            raise UserError(f"no user {login_id(login)!r} (`dialer users list` shows them)")
        before = Listed(User.from_row(row), row["active"], row["created_at"])
        fields = {**{k: getattr(before.user, k) for k in CHANGEABLE}, **changes}
        fields["display_name"] = display_name_of(fields["display_name"] or "")
        fields["active"] = before.active if active is None else active
        # checked when either is changed: an administrator given a department by an older version
        # can still be switched off or given a new password at once
        if {"role", "department_id"} & set(changes) and fields["role"] == "admin" and fields["department_id"]:
            raise UserError(ADMIN_EVERYWHERE + " (--department '' takes it away)")
        try:
            await tx.execute(
                """update app_user set display_name = $2, role = $3, department_id = $4, extension = $5,
                                       pbx = $6, active = $7
                   where id = $1""",
                before.user.id, fields["display_name"], fields["role"], fields["department_id"],
                fields["extension"], fields["pbx"], fields["active"],
            )  # fmt: skip
            if password is not None:  # (set, never read: the product's role cannot read hashes, sql/0045)
                await tx.execute("update app_user set password_hash = $2 where id = $1", before.user.id,
                                 hash_password(password))  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise UserError(f"extension {fields['extension']!r} belongs to another user already") from None
        except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as exc:
            raise UserError(_refusal(exc)) from None
        after = Listed(
            User(before.user.id, before.user.login, **{k: fields[k] for k in CHANGEABLE}),
            fields["active"],
            before.created_at,
        )
        ends_sessions = (
            password is not None
            or not after.active
            or after.user.role != before.user.role
            or (after.user.department_id != before.user.department_id)
        )
        if ends_sessions:  # logged out everywhere: open pages close within session_check_s
            await tx.execute("delete from web_session where user_id = $1", before.user.id)
        if password is not None:  # (forgotten, mistyped five times): the ID's lock goes with it
            await lockouts.lift(tx, login=before.user.login, via={"new_password": True, **via})
        await audit.record(
            tx, action=_action(before, after), user_id=None, department_id=after.user.department_id,
            object_type="app_user", object_id=after.user.login,
            detail={"before": _shown(before), "after": _shown(after), "password_changed": password is not None,
                    "sessions_ended": ends_sessions, **via},
        )  # fmt: skip
    return after


def _action(before: Listed, after: Listed) -> str:
    if before.active != after.active:
        return "user.enable" if after.active else "user.disable"
    return "user.set"


def _shown(u: Listed) -> dict[str, Any]:
    return {**{k: getattr(u.user, k) for k in CHANGEABLE}, "active": u.active}


def _refusal(exc: asyncpg.PostgresError) -> str:
    constraint = getattr(exc, "constraint_name", "") or ""
    if constraint == "app_user_check":
        return "only an administrator may belong to no department (--department)"
    if "login" in constraint:
        return "a login ID is 2-64 letters, digits, '.', '_' or '-' (no spaces)"
    if "department" in constraint:
        return "no such department (`dialer departments list` shows them)"
    if "extension" in constraint:
        return "an extension is 2-8 digits"
    if "display_name" in constraint:
        return "a display name is 1-100 characters"
    if "pbx" in constraint:
        return "a PBX name is lower-case letters, digits, - or _ (as in AMI_SERVERS)"
    return f"invalid user: {getattr(exc, 'detail', None) or exc}"


async def authenticate(conn: Conn, login: str, password: str) -> User | None:
    """The user whose login and password these are. The product's role never reads a digest: the
    database gives the login's salt and parameters, and says whether the digest of the password
    typed matches (sql/0046; it refuses a flood of checks for one login)."""
    row = await conn.fetchrow(
        f"select {_USER_COLUMNS}, password_params_of(u.login) as params from app_user u"
        " where u.login = $1 and u.active",
        login,
    )
    if row is None or row["params"] is None:
        verify_password(password, dummy_hash())  # (as long as a known login's check)
        return None
    digest = digest_for(password, row["params"])
    try:
        matches = digest is not None and await conn.fetchval("select password_matches($1, $2)", login, digest)
    except asyncpg.InsufficientPrivilegeError:  # more checks for this login in a minute than a person makes
        return None
    return User.from_row(row) if matches else None


def _hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


IDLE_ROLES = ("staff", "admin")  # whose pages show whole records: their sessions end when left idle


async def open_session(conn: Conn, user: User, *, hours: int, lang: str = "ja", idle_minutes: int = 0) -> str:
    """Return a new session token (the cookie value). `idle_minutes` (staff and administrators):
    the session also ends after that long without a request made by the person (`touch_session`)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        """insert into web_session (token_hash, user_id, csrf_token, lang, expires_at, idle_minutes)
           values ($1, $2, $3, $4, now() + $5::interval, $6)""",
        _hash_token(token),
        user.id,
        secrets.token_urlsafe(24),
        lang,
        timedelta(hours=hours),
        idle_minutes if user.role in IDLE_ROLES else 0,
    )
    return token


async def touch_session(conn: Conn, token: str) -> None:
    """Something was done on this session (not a page polling by itself): its idle time starts again.
    Written at most every 30 seconds."""
    await conn.execute(
        """update web_session set last_active = now()
           where token_hash = $1 and idle_minutes > 0 and last_active < now() - interval '30 seconds'""",
        _hash_token(token),
    )


async def load_session(conn: Conn, token: str) -> Session | None:
    row = await conn.fetchrow(
        f"""select {_USER_COLUMNS}, s.csrf_token, s.lang from web_session s
            join app_user u on u.id = s.user_id
            where s.token_hash = $1 and s.expires_at > now() and u.active
              and (s.idle_minutes = 0 or s.last_active > now() - make_interval(mins => s.idle_minutes))""",
        _hash_token(token),
    )
    if row is None:
        return None
    return Session(user=User.from_row(row), csrf_token=row["csrf_token"], lang=row["lang"])


async def set_session_lang(conn: Conn, token: str, lang: str) -> None:
    await conn.execute("update web_session set lang = $2 where token_hash = $1", _hash_token(token), lang)


async def close_session(conn: Conn, token: str) -> None:
    await conn.execute("delete from web_session where token_hash = $1", _hash_token(token))
