"""CSV cells that spreadsheet programs will not run as formulas. Pure."""

from __future__ import annotations


def cell(value: object) -> str:
    """Excel runs a cell starting with = + - @ (or a tab or CR) as a formula: never let a value do that."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
