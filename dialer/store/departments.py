"""Departments (所管課): the tenants sharing one server. Created and changed by an administrator
with `dialer departments`; each change is in the audit log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from dialer.errors import ConfigError
from dialer.jpformat import is_japanese_number, phone_digits
from dialer.store import audit
from dialer.store.db import Conn, transaction

_ID = re.compile(r"[a-z][a-z0-9_]{1,31}")
ENCODINGS = ("cp932", "utf-8", "utf-8-sig")


@dataclass(frozen=True)
class Department:
    id: str
    name_ja: str
    name_en: str
    callback_number: str  # digits; read out in the abandon message, the line residents call
    export_encoding: str


def _name(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    name = " ".join(text.split())
    if not name or len(name) > 100:
        raise ConfigError(f"{what}: 1-100 characters.")
    return name


def _callback(text: str | None) -> str | None:
    if text is None:
        return None
    digits = phone_digits(text)
    if digits is None or (digits and not is_japanese_number(digits)):
        raise ConfigError(
            f"--callback-number: a Japanese number of 10 or 11 digits, e.g. 03-1234-5678 (got {text!r})."
        )
    return digits


def _encoding(text: str | None) -> str | None:
    if text is not None and text not in ENCODINGS:
        raise ConfigError(f"--export-encoding: one of {', '.join(ENCODINGS)} (got {text!r}).")
    return text


async def listed(conn: Conn) -> list[Department]:
    rows = await conn.fetch(
        "select id, name_ja, name_en, callback_number, export_encoding from department order by id"
    )
    return [Department(**dict(r)) for r in rows]


async def add(
    conn: Conn,
    *,
    department_id: str,
    name_ja: str,
    name_en: str,
    callback_number: str = "",
    export_encoding: str = "cp932",
    via: dict[str, Any],
) -> Department:
    if not _ID.fullmatch(department_id):
        raise ConfigError(
            f"--id: 2-32 lower-case letters, digits or _, starting with a letter, e.g. nhi (got {department_id!r})."
        )
    d = Department(
        id=department_id,
        name_ja=_name(name_ja, "--ja") or "",
        name_en=_name(name_en, "--en") or "",
        callback_number=_callback(callback_number) or "",
        export_encoding=_encoding(export_encoding) or "cp932",
    )
    async with transaction(conn) as tx:
        try:
            await tx.execute(
                """insert into department (id, name_ja, name_en, callback_number, export_encoding)
                   values ($1, $2, $3, $4, $5)""",
                d.id, d.name_ja, d.name_en, d.callback_number, d.export_encoding,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise ConfigError(
                f"Department {department_id!r} exists already (`dialer departments set` changes it)."
            ) from None
        await audit.record(
            tx, action="department.add", user_id=None, department_id=d.id, object_type="department",
            object_id=d.id, detail={"after": d.__dict__, **via},
        )  # fmt: skip
    return d


async def change(
    conn: Conn,
    department_id: str,
    *,
    name_ja: str | None = None,
    name_en: str | None = None,
    callback_number: str | None = None,
    export_encoding: str | None = None,
    via: dict[str, Any],
) -> Department:
    changes = {
        "name_ja": _name(name_ja, "--ja"),
        "name_en": _name(name_en, "--en"),
        "callback_number": _callback(callback_number),
        "export_encoding": _encoding(export_encoding),
    }
    async with transaction(conn) as tx:
        before = next((d for d in await listed(tx) if d.id == department_id), None)
        if before is None:
            raise ConfigError(f"No department {department_id!r} (`dialer departments list` shows them).")
        after = Department(**{**before.__dict__, **{k: v for k, v in changes.items() if v is not None}})
        await tx.execute(
            """update department set name_ja = $2, name_en = $3, callback_number = $4, export_encoding = $5
               where id = $1""",
            after.id, after.name_ja, after.name_en, after.callback_number, after.export_encoding,
        )  # fmt: skip
        await audit.record(
            tx, action="department.set", user_id=None, department_id=after.id, object_type="department",
            object_id=after.id, detail={"before": before.__dict__, "after": after.__dict__, **via},
        )  # fmt: skip
    return after


async def require(conn: Conn, department_id: str | None) -> None:
    """A department named by a command (`--department`) exists; else a clear error (exit 2): a
    list of nothing for a mistyped id reads as "none there"."""
    if department_id is not None and not await conn.fetchval(
        "select exists (select 1 from department where id = $1)", department_id
    ):
        raise ConfigError(f"No department {department_id!r} (`dialer departments list` shows them).")
