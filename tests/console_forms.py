"""The campaign console's form, as the browser posts it: shared by the console's tests."""

from __future__ import annotations

import re
from typing import Any

from dialer import runtime
from tests.client import PageClient, logged_in


async def post_form(client: PageClient, path: str, fields: list[tuple[str, str]]) -> tuple[int, str, str]:
    """Post a form as the browser does (the CSRF field included); status, Location, body."""
    async with client.http.post(
        f"{client.base}{path}", data=[("csrf", client.csrf), *fields], allow_redirects=False
    ) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


def everything(**changes: str) -> list[tuple[str, str]]:
    fields = {
        "name": "国保 繰越 10万円未満", "status": "active", "dial_mode": "predictive",
        "caller_id": "０３−１２３４−５６７８", "machine_message": "custom/nhi-call-back",  # U+2212, as IMEs type it
        "w_mon": "09:30〜12:00、13:00−22:00", "w_sat": "なし",
        "r_busy_after_minutes": "１５",
        "target_abandon_pct": "2.5", "max_lines": "２", "amd_false_machine_pct": "１.５％",
        "s_years": "carried_over", "s_unpaid_max_yen": "１００,０００", "s_promise_broken": "never",
        "s_installment_broken": "", "s_exclude_classes": "執行停止、破産", "s_order": "oldest",
    }  # fmt: skip
    fields.update(changes)
    return [*fields.items(), ("s_debt_types", "nhi")]


async def supervisor(product: runtime.Running, login: str = "sv1") -> PageClient:
    return await logged_in(product, login, "/supervisor")


def value_of(page: str, name: str) -> Any:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m is not None, name
    return m.group(1)
