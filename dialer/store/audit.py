"""The audit log: every view of a resident's record, every export, every login."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dialer.store.db import Conn


async def record(
    conn: Conn,
    *,
    action: str,
    user_id: int | None,
    department_id: str | None,
    object_type: str = "",
    object_id: str | int = "",
    detail: Mapping[str, Any] | None = None,
    remote_addr: str = "",
) -> None:
    await conn.execute(
        """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
           values ($1, $2, $3, $4, $5, $6::jsonb, $7)""",
        user_id,
        department_id,
        action,
        object_type,
        str(object_id),
        json.dumps(dict(detail or {}), ensure_ascii=False),
        remote_addr,
    )
