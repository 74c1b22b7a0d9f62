"""Column mapping files (TOML): how one municipality's export layout maps onto our fields.

A mapping names, for each of our fields, the column holding it, by its header text ("世帯番号")
or by its position (3 = the third column, for files without a header line); or gives a constant
for the whole file; and may translate the codes a column holds ("01" → "nhi"). Shipped mappings
live in dialer/imports/mappings/; `--mapping` takes one of their names or a path. docs/data.md
describes the format. Every mistake in a mapping is reported at once, before any row is read.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.errors import ConfigError, ImportFileError

SHIPPED = Path(__file__).parent / "mappings"

# field -> (kind of value, required). Kinds: key, text, name, note (text whose ①, ㈱ are kept), date, fy (年度), inst (期別), yen, flag, sex,
# postal, code, seq (分納の回), plan_status, time, when (a date, or a date and a time), method (経過記録の方法).
HOUSEHOLD_FIELDS: dict[str, tuple[str, bool]] = {
    "household_no": ("key", True),
    "atena_no": ("key", True),
    "name_kanji": ("name", True),
    "name_kana": ("name", False),
    "birth_date": ("date", False),
    "sex": ("sex", False),
    "relationship": ("text", False),
    "is_head": ("flag", False),
    "death_date": ("date", False),
    "resident_from": ("date", False),
    "resident_until": ("date", False),
    "nationality": ("text", False),
    "postal_code": ("postal", False),
    "address": ("text", False),
    "debt_type": ("code", False),
    "fiscal_year": ("fy", False),
    "assessed_year": ("fy", False),
    "installment": ("inst", False),
    "notice_no": ("key", False),
    "assessed_yen": ("yen", False),
    "paid_yen": ("yen", False),
    "unpaid_yen": ("yen", False),
    "due_date": ("date", False),
    "late_fee_yen": ("yen", False),
    "last_paid_on": ("date", False),
    "account_transfer": ("flag", False),
    "delinquency_class": ("text", False),
}
# a row carries a debt when fiscal_year is mapped; then these must be mapped too
DEBT_REQUIRED = ("debt_type", "fiscal_year", "due_date")

PAYMENT_FIELDS: dict[str, tuple[str, bool]] = {
    "receipt_no": ("key", False),
    "atena_no": ("key", True),
    "debt_type": ("code", True),
    "fiscal_year": ("fy", True),
    "assessed_year": ("fy", False),
    "installment": ("inst", False),
    "notice_no": ("key", False),
    "amount_yen": ("yen", True),
    "paid_on": ("date", True),
    "channel": ("text", False),
}
# 分納: one line per instalment of a plan; a plan's lines give its whole schedule
PLAN_FIELDS: dict[str, tuple[str, bool]] = {
    "plan_no": ("key", True),
    "atena_no": ("key", True),
    "agreed_on": ("date", True),
    "status": ("plan_status", False),
    "total_yen": ("yen", False),
    "seq": ("seq", True),
    "due_date": ("date", True),
    "amount_yen": ("yen", True),
    "paid_yen": ("yen", False),
    "paid_on": ("date", False),
}
# 経過記録: one line per entry the delinquency system holds (a visit, the counter, a letter, a call)
CONTACT_FIELDS: dict[str, tuple[str, bool]] = {
    "entry_no": ("key", False),
    "atena_no": ("key", True),
    "contacted_on": ("when", True),  # a date, or a date and time in one cell
    "contacted_at": ("time", False),
    "method": ("method", True),
    "place": ("note", False),
    "party": ("text", False),
    "reached": ("flag", False),
    "content": ("note", False),
}
KINDS = {
    "households": HOUSEHOLD_FIELDS,
    "payments": PAYMENT_FIELDS,
    "plans": PLAN_FIELDS,
    "contacts": CONTACT_FIELDS,
}
ENCODINGS = {
    "auto": "auto",
    "cp932": "cp932",
    "shift_jis": "cp932",  # Windows exports say Shift_JIS and mean its superset cp932 (NEC/IBM extensions)
    "sjis": "cp932",
    "ms932": "cp932",
    "windows-31j": "cp932",
    "utf-8": "utf-8-sig",  # a BOM, if any, is skipped
    "utf8": "utf-8-sig",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
}


@dataclass(frozen=True)
class Mapping:
    name: str
    kind: str
    source: str  # where it was read from
    encoding: str = "auto"
    delimiter: str = ","
    header: bool = True
    skip_lines: int = 0
    last_line_break: bool = (
        True  # a last line without one is refused as cut short (false: a source never ends it)
    )
    columns: dict[str, str | int] = field(default_factory=dict)
    phones: tuple[str | int, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    departments: tuple[str, ...] = ()  # the departments whose files this layout describes; (): any
    # each file lists every debt still owed: one an earlier file of the layout gave and it does not is closed
    complete: bool = False
    complete_closes_at_most: float = 0.5  # of the layout's open debts; more: a file cut short, nothing closed

    @property
    def fields(self) -> dict[str, tuple[str, bool]]:
        return KINDS[self.kind]

    def provides(self, name: str) -> bool:
        return name in self.columns or name in self.constants

    @property
    def has_debts(self) -> bool:
        return self.kind == "households" and self.provides("fiscal_year")


def shipped() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def load(name_or_path: str) -> Mapping:
    """A shipped mapping by name, or a mapping file by path. Raises ConfigError listing every problem."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SHIPPED / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(f"No mapping named {name_or_path!r}. Shipped mappings: {', '.join(shipped())}.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the mapping file {path}: {exc.strerror}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The mapping file {path} is not valid TOML (UTF-8): {exc}.") from None
    return parse(data, str(path))


def parse(data: dict[str, Any], source: str) -> Mapping:
    problems: list[str] = []
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{source}: kind must be one of {', '.join(KINDS)} (got {kind!r}).")
    fields = KINDS[kind]
    _unknown(
        problems,
        data,
        {
            "name",
            "kind",
            "departments",
            "complete",
            "complete_closes_at_most",
            "file",
            "columns",
            "constants",
            "values",
        },
        "",
    )
    complete = data.get("complete", False)
    if not isinstance(complete, bool):
        problems.append("complete must be true or false")
    at_most = data.get("complete_closes_at_most", 0.5)
    if isinstance(at_most, bool) or not isinstance(at_most, int | float) or not 0 < at_most <= 1:
        problems.append("complete_closes_at_most must be a share above 0 and at most 1 (0.5: half)")
        at_most = 0.5
    departments = data.get("departments", [])
    if not isinstance(departments, list) or not all(isinstance(d, str) and d for d in departments):
        problems.append('departments must be a list of department ids (departments = ["nhi"])')
        departments = []
    f = _table(problems, data, "file")
    _unknown(problems, f, {"encoding", "delimiter", "header", "skip_lines", "last_line_break"}, "[file] ")
    encoding = ENCODINGS.get(str(f.get("encoding", "auto")).lower())
    if encoding is None:
        problems.append(f"[file] encoding must be one of {', '.join(ENCODINGS)}")
    delimiter = f.get("delimiter", ",")
    if delimiter not in (",", "\t", ";", "|"):
        problems.append("[file] delimiter must be ',', '\\t', ';' or '|'")
    header = f.get("header", True)
    skip = f.get("skip_lines", 0)
    if not isinstance(header, bool):
        problems.append("[file] header must be true or false")
    if not isinstance(skip, int) or not 0 <= skip <= 100:
        problems.append("[file] skip_lines must be a whole number 0–100")
    last_break = f.get("last_line_break", True)
    if not isinstance(last_break, bool):
        problems.append("[file] last_line_break must be true or false")

    given = _table(problems, data, "columns")
    columns: dict[str, str | int] = {}
    phones: tuple[str | int, ...] = ()
    for key, ref in given.items():
        if key == "phones" and kind == "households":
            refs = ref if isinstance(ref, list) else [ref]
            if not refs or not all(_ref_ok(r, header) for r in refs):
                problems.append(f"[columns] phones must be a list of {_refs(header, many=True)}")
            phones = tuple(refs)
        elif key not in fields:
            problems.append(f"[columns] {key}: not a field of a {kind} file (fields: {', '.join(fields)})")
        elif not _ref_ok(ref, header):
            problems.append(f"[columns] {key}: give {_refs(header, many=False)}")
        else:
            columns[key] = ref
    constants = {}
    for key, value in _table(problems, data, "constants").items():
        if key not in fields:
            problems.append(f"[constants] {key}: not a field of a {kind} file")
        elif key in given:
            problems.append(f"{key}: both a column and a constant; give one")
        elif isinstance(value, bool) or not isinstance(value, str | int):
            problems.append(f"[constants] {key}: give a text or a number")
        else:
            constants[key] = str(value)
    values = {}
    for key, table in _table(problems, data, "values").items():
        if not isinstance(table, dict):
            problems.append(
                f'[values.{key}] must be a table of codes ([values.{key}] then "code" = "value" lines)'
            )
        elif key not in given:
            problems.append(f"[values.{key}] translates a column that is not mapped in [columns]")
        else:
            values[key] = {str(k): str(v) for k, v in table.items()}
    mapping = Mapping(
        name=str(data.get("name", Path(source).stem)),
        kind=kind,
        source=source,
        encoding=encoding or "auto",
        delimiter=delimiter,
        header=header is True,
        skip_lines=skip if isinstance(skip, int) else 0,
        last_line_break=last_break is not False,
        columns=columns,
        phones=phones,
        constants=constants,
        values=values,
        departments=tuple(departments),
        complete=complete is True,
        complete_closes_at_most=float(at_most),
    )
    for name, (_, required) in fields.items():
        if required and not mapping.provides(name) and name not in given:  # a bad column: said above
            problems.append(f"{name} is required: map it in [columns] (or [constants])")
    if mapping.complete and not mapping.has_debts:
        problems.append("complete = true is for a households layout with debts (fiscal_year mapped)")
    if mapping.has_debts:
        problems += [
            f"{n} is required when fiscal_year is mapped" for n in DEBT_REQUIRED if not mapping.provides(n)
        ]
        if not (mapping.provides("assessed_yen") or mapping.provides("unpaid_yen")):
            problems.append(
                "assessed_yen (調定額) or unpaid_yen (未納額) is required when fiscal_year is mapped"
            )
    if problems:
        raise ConfigError(f"The mapping {source} has problems:\n  - " + "\n  - ".join(problems))
    return mapping


def _table(problems: list[str], data: dict[str, Any], name: str) -> dict[str, Any]:
    """A section of the file ([file], [columns]…): a table, or a problem and nothing."""
    table = data.get(name, {})
    if isinstance(table, dict):
        return table
    problems.append(f"{name} must be a table: a [{name}] line, then key = value lines (got {table!r})")
    return {}


def _refs(header: object, many: bool) -> str:
    """How columns are named, as a mistake's message says it."""
    if header is False:
        named = "column positions" if many else "a column position"
        return f"{named} (1, 2, …): [file] header = false, so the file has no column names"
    if many:
        return "column names (the header's text) or positions (1, 2, …)"
    return "a column name (the header's text) or a position (1, 2, …)"


def _ref_ok(ref: object, header: object) -> bool:
    if isinstance(ref, bool):
        return False
    if isinstance(ref, int):
        return 1 <= ref <= 1000
    return isinstance(ref, str) and bool(ref.strip()) and header is not False


def _unknown(problems: list[str], table: dict[str, Any], allowed: set[str], where: str) -> None:
    problems += [
        f"{where}{k}: unknown setting (allowed: {', '.join(sorted(allowed))})"
        for k in table
        if k not in allowed
    ]


def check_department(mapping: Mapping, department_id: str) -> None:
    """A layout written for one department's files (its debt types, its codes) is not used for
    another's: NHI rows imported into the tax department would be residents it must not see."""
    if mapping.departments and department_id not in mapping.departments:
        listed = ", ".join(mapping.departments)
        raise ImportFileError(
            f"The layout {mapping.name!r} is for the department(s) {listed}, not {department_id!r}: "
            f'choose that department\'s layout (a copy of this one with departments = ["{department_id}"] '
            "if its files look the same).",
            "wrong_department",
            mapping=mapping.name,
            departments=listed,
            department=department_id,
        )
