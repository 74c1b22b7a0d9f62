"""The message catalogues (web/messages/*.toml): both languages complete, every literal key used exists."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from dialer.errors import ImportFileError
from web.i18n import CATALOG, translate, translate_count

WEB = Path(__file__).resolve().parents[1] / "web"


def test_japanese_and_english_have_the_same_keys() -> None:
    # (a form for exactly one, "…_one", only where a language has it: translate_count)
    assert {k for k in CATALOG["ja"] if not k.endswith("_one")} == {
        k for k in CATALOG["en"] if not k.endswith("_one")
    }
    assert all(k.removesuffix("_one") in cat for cat in CATALOG.values() for k in cat if k.endswith("_one"))
    assert all(v.strip() for cat in CATALOG.values() for v in cat.values())


def test_every_key_the_pages_name_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for html in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"tn?\(lang, '([a-z_.]+)'[,)]", html.read_text(encoding="utf-8")))
    for js in (WEB / "static").glob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z_.]+)"\)', js.read_text(encoding="utf-8")))
    for py in WEB.glob("*.py"):
        used |= set(re.findall(r'_error\("([a-z_.]+)"', py.read_text(encoding="utf-8")))
    assert len(used) > 50  # the scan found the pages' keys
    assert sorted(used - set(CATALOG["ja"])) == []


def test_translate_falls_back_to_japanese_then_to_the_key() -> None:
    assert translate("en", "imp.heading") == "Import arrears, payments, installment plans and contact history"
    assert translate("fr", "imp.heading") == CATALOG["ja"]["imp.heading"]
    assert translate("en", "no.such.key") == "no.such.key"


def test_every_reason_a_file_is_refused_for_can_be_said_in_both_languages() -> None:
    params = {
        "encoding": "cp932",
        "columns": "「宛名番号」",
        "mapping": "nhi-sample",
        "department": "police",
        "departments": "nhi",
    }
    for reason in ImportFileError.REASONS:
        for lang in ("ja", "en"):
            text = CATALOG[lang][f"import.reason.{reason}"].format(**params)
            assert "{" not in text
    assert "宛名番号" in translate("ja", "import.reason.no_columns").format(**params)


def test_the_results_export_names_outcomes_as_the_pages_do() -> None:
    """The export (dialer/store/exports.py, which does not read the web catalogue) writes each
    outcome in the words the operator's and supervisor's pages use; a new outcome needs both."""
    from dialer.calls.state import Outcome
    from dialer.store.exports import OUTCOME_LABELS

    assert set(OUTCOME_LABELS) == {o.value for o in Outcome} | {""}
    for value, label in OUTCOME_LABELS.items():
        key = f"outcome.{value or 'in_progress'}"
        assert unicodedata.normalize("NFKC", CATALOG["ja"][key]) == label, key


def test_every_call_phase_the_operator_page_is_sent_has_words() -> None:
    """The page shows `call.<phase>`; the engine sends each milestone but AMD's as the phase (a
    raw `call.channel` showed for half a second on every call)."""
    from dialer.calls.state import Milestone

    phases = {m.value for m in Milestone if m is not Milestone.AMD} | {"dialing"}
    for lang in ("ja", "en"):
        assert sorted(p for p in phases if f"call.{p}" not in CATALOG[lang]) == [], lang


def test_a_count_of_one_reads_as_one_in_english() -> None:
    assert translate_count("en", "camp.households", 1) == "household"
    assert translate_count("en", "camp.households", 2) == "households"
    assert translate_count("en", "camp.households", 0) == "households"
    assert translate_count("ja", "camp.households", 1) == "世帯"
    assert translate_count("en", "camp.name", 1) == translate("en", "camp.name")  # no form for one: as it is
