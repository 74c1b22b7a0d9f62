"""Exports imported again and again: the same file changes nothing, a newer one updates in place,
the newest is right about residents and their numbers, and a death or a move ends the calls."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import asyncpg

from campaigns import segments
from dialer.imports import mapping, report
from dialer.imports.sample import write_households
from dialer.store import segments as segment_store
from tests import factory
from tests.test_imports import _nhi_toml, row, run, snapshot, write


async def test_reimporting_the_same_file_changes_nothing(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "kokuho.csv"
    write_households(path, 50)
    await run(nhi, path)
    before = await snapshot(nhi)
    again = await run(nhi, path)
    assert again.status == "done"
    for table in ("households", "persons", "phones", "debts"):
        assert again.counts[table] == {"inserted": 0, "updated": 0}, table
    assert await snapshot(nhi) == before


async def test_a_newer_export_updates_in_place(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    first = write(
        tmp_path / "v1.csv", [row(住所="見本市見本町1-1", 調定額="30000", 収納額="0", 未納額="30000")]
    )
    await run(nhi, first, as_of=date(2025, 10, 1))
    await nhi.execute("update person set nationality = 'JP' where atena_no = 'A001'")  # not in this layout
    newer = write(
        tmp_path / "v2.csv",
        [
            row(
                住所="見本市試験台2-2",
                調定額="30000",
                収納額="10000",
                未納額="20000",
                電話番号2="090-1111-2222",
            )
        ],
    )
    info = await run(nhi, newer, as_of=date(2025, 11, 1))
    assert info.counts["households"] == {"inserted": 0, "updated": 1}
    assert info.counts["debts"] == {"inserted": 0, "updated": 1}
    assert info.counts["phones"] == {"inserted": 1, "updated": 0}
    assert await nhi.fetchval("select count(*) from household") == 1
    assert await nhi.fetchval("select address from household") == "見本市試験台2-2"
    assert await nhi.fetchval("select nationality from person") == "JP"  # unmapped: left alone
    assert await nhi.fetchval("select unpaid_yen from household") == 20000
    # an older export arriving late never overwrites the newer figures
    await run(nhi, first, as_of=date(2025, 10, 1))
    assert await nhi.fetchval("select paid_yen from debt") == 10000


async def test_the_newest_export_is_right_about_residents_and_their_numbers(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    """A number the newer export no longer gives is set aside (not dialed) until one gives it again;
    an older export arriving late adds what it alone has and changes nobody stored."""
    v1 = [row(氏名="山田 太郎", 住所="見本町1-1", 電話番号1="03-1234-5678", 電話番号2="", 携帯電話番号="")]
    await run(nhi, write(tmp_path / "v1.csv", v1), as_of=date(2025, 10, 1))
    staff_number = await nhi.fetchval(  # a number staff added: theirs, whatever the exports say
        """insert into phone (household_id, department_id, number, kind, source, priority)
           select id, 'nhi', '0312349999', 'landline', 'staff', 9 from household returning id"""
    )
    v2 = [
        row(
            氏名="山田 次郎",
            住所="見本町2-2",
            死亡日="2025-10-20",
            電話番号1="03-1111-3333",
            電話番号2="",
            携帯電話番号="",
        )
    ]
    info = await run(nhi, write(tmp_path / "v2.csv", v2), as_of=date(2025, 11, 1))
    assert info.counts["phones_set_aside"] == 1
    phones = {r["number"]: r for r in await nhi.fetch("select * from phone")}
    assert not phones["0312345678"]["valid"]
    assert phones["0312345678"]["invalid_reason"] == "最新の取込データにない番号です"
    assert phones["0311113333"]["valid"]
    assert phones["0312349999"]["valid"]
    assert phones["0312349999"]["id"] == staff_number

    late = [
        *v1,
        row(世帯番号="H002", 宛名番号="A002", 電話番号1="03-2222-4444", 電話番号2="", 携帯電話番号=""),
    ]
    info = await run(nhi, write(tmp_path / "late.csv", late), as_of=date(2025, 10, 1))
    assert info.counts["older_than"] == "2025-11-01"
    assert "older than the export of 2025-11-01" in report.summary(info)
    person = await nhi.fetchrow("select * from person where atena_no = 'A001'")
    assert (person["name_kanji"], person["death_date"]) == ("山田 次郎", date(2025, 10, 20))
    assert await nhi.fetchval("select address from household where household_no = 'H001'") == "見本町2-2"
    assert not await nhi.fetchval("select valid from phone where number = '0312345678'")
    assert await nhi.fetchval("select count(*) from person where atena_no = 'A002'") == 1  # new: added
    assert await nhi.fetchval("select valid from phone where number = '0322224444'")

    v3 = [row(氏名="山田 次郎", 死亡日="2025-10-20", 電話番号1="03-1234-5678", 電話番号2="", 携帯電話番号="")]
    info = await run(nhi, write(tmp_path / "v3.csv", v3), as_of=date(2025, 12, 1))
    phones = {r["number"]: r for r in await nhi.fetch("select * from phone")}
    assert (phones["0312345678"]["valid"], phones["0312345678"]["invalid_reason"]) == (True, None)
    assert not phones["0311113333"]["valid"]
    assert info.counts["phones_set_aside"] == 1
    # another layout (another system's export) knows other numbers: it sets none of these aside
    other_layout = mapping.parse({**_nhi_toml(), "name": "another-system"}, "another-system")
    v4 = [
        row(氏名="山田 次郎", 死亡日="2025-10-20", 電話番号1="090-5555-6666", 電話番号2="", 携帯電話番号="")
    ]
    info = await run(nhi, write(tmp_path / "v4.csv", v4), m=other_layout, as_of=date(2025, 12, 2))
    assert info.counts["phones_set_aside"] == 0
    assert await nhi.fetchval("select valid from phone where number = '0312345678'")


async def test_a_head_reported_deceased_leaves_every_campaign_at_once(
    nhi: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    both = [row(世帯番号="H001", 宛名番号="A001"), row(世帯番号="H002", 宛名番号="A002")]
    await run(nhi, write(tmp_path / "v1.csv", both), as_of=date(2025, 10, 1))
    cid = await factory.campaign(pool, "nhi")
    await pool.execute(
        """insert into campaign_target (campaign_id, household_id, department_id, state, lease_owner,
                                        lease_expires_at)
           select $1, id, 'nhi', case household_no when 'H001' then 'leased' else 'pending' end,
                  case household_no when 'H001' then 'dialer-1' end,
                  case household_no when 'H001' then now() + interval '1 minute' end
           from household""",
        cid,
    )
    newer = [
        row(世帯番号="H001", 宛名番号="A001", 死亡日="R07.10.20"),
        row(世帯番号="H002", 宛名番号="A002", 区民でなくなった日="R07.10.31"),
    ]
    info = await run(nhi, write(tmp_path / "v2.csv", newer), as_of=date(2025, 11, 1))
    assert info.counts["targets_excluded"] == 2
    targets = await pool.fetch(
        """select h.household_no, t.state, t.last_outcome, t.lease_owner from campaign_target t
           join household h on h.id = t.household_id order by 1"""
    )
    assert [tuple(t) for t in targets] == [
        ("H001", "excluded", "deceased", None),  # its queued call is taken back
        ("H002", "excluded", "moved_out", None),
    ]


def _documented_layout() -> mapping.Mapping:
    """The example layout of docs/data.md §2, as printed there."""
    text = (Path(__file__).parents[1] / "docs" / "data.md").read_text(encoding="utf-8")
    section = text[text.index("## 2. The column mapping file") :]
    block = section[section.index("```toml\n") + len("```toml\n") :]
    return mapping.parse(tomllib.loads(block[: block.index("```")]), "docs/data.md")


async def test_the_documented_layout_imports_though_it_gives_no_address(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    """A layout without 住所 or 郵便番号 (the docs' own example): a household has nothing of its own
    to update, and its import must still run, again change nothing, and a newer one update debts."""
    layout = _documented_layout()
    assert not {"address", "postal_code"} & set(layout.columns)
    header = ("世帯番号", "宛名番号", "氏名", "カナ氏名", "生年月日", "電話番号1", "電話番号2", "携帯電話番号",
              "年度", "期別", "調定額", "収納額", "納期限")  # fmt: skip
    line = ["H9", "A9", "見本 花子", "ミホン ハナコ", "S50.1.2", "03-1234-5678", "", "090-1234-5678", "R06",
            "随", "30000", "0", "R06.07.31"]  # fmt: skip
    first = write(tmp_path / "v1.csv", [line], header=header)
    info = await run(nhi, first, layout, as_of=date(2025, 10, 1))
    assert (info.status, info.rows_rejected) == ("done", 0)
    assert await nhi.fetchval("select installment from debt") == 0  # 随 translated as the docs say
    before = await snapshot(nhi)
    again = await run(nhi, first, layout, as_of=date(2025, 10, 1))
    assert again.counts["households"] == {"inserted": 0, "updated": 0}
    assert await snapshot(nhi) == before
    newer = write(tmp_path / "v2.csv", [[*line[:11], "10000", line[12]]], header=header)
    await run(nhi, newer, layout, as_of=date(2025, 11, 1))
    assert await nhi.fetchval("select unpaid_yen from household") == 20000


async def test_a_complete_export_closes_the_debts_it_no_longer_lists(
    nhi: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A layout whose files list every debt still owed (`complete = true`): a debt an earlier file
    gave and a newer one does not is closed and owes nothing, so a household with nothing open
    leaves its campaigns; listed again, it is open again and a fill brings it back. A late older
    file changes none of it, and nothing is closed on the strength of a line that could not be
    read, nor by a file that leaves out more than half of what is open (cut short)."""
    layout = mapping.parse({**_nhi_toml(), "name": "nhi-complete", "complete": True}, "nhi-complete")

    def debt(household: str, atena: str, period: str, yen: str = "30000") -> list[str]:
        return row(世帯番号=household, 宛名番号=atena, 期別=period, 調定額=yen, 収納額="0", 未納額=yen)

    h3 = [debt("H003", "A003", "1"), debt("H003", "A003", "2")]
    a = [debt("H001", "A001", "1"), debt("H001", "A001", "2"), debt("H002", "A002", "1", "10000"), *h3]
    await run(nhi, write(tmp_path / "a.csv", a), layout, as_of=date(2025, 10, 1))
    cid = await factory.campaign(pool, "nhi")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) select $1, id, 'nhi' from household",
        cid,
    )
    owed = "select household_no, unpaid_yen from household order by household_no"
    targets = """select h.household_no, t.state || ':' || coalesce(t.last_outcome, '')
                 from campaign_target t join household h on h.id = t.household_id"""

    b = [debt("H001", "A001", "2"), *h3]  # 期別 1 of H001 and H002's only debt are gone: 2 of 5
    info = await run(nhi, write(tmp_path / "b.csv", b), layout, as_of=date(2025, 11, 1))
    assert info.counts["debts_closed"] == 2
    assert "debts closed: 2" in report.summary(info)
    assert [tuple(r) for r in await nhi.fetch(owed)] == [("H001", 30000), ("H002", 0), ("H003", 60000)]
    assert dict(await pool.fetch(targets)) == {
        "H001": "pending:",
        "H002": "excluded:closed",
        "H003": "pending:",
    }  # fmt: skip  (not "paid": nobody said so)
    closed_on = await nhi.fetchval("select closed_on from debt where source_key like 'A002|%'")
    assert closed_on == date(2025, 11, 1)

    # a late older file lists them all again: it reopens nothing
    await run(nhi, write(tmp_path / "a.csv", a), layout, as_of=date(2025, 10, 1))
    assert [tuple(r) for r in await nhi.fetch(owed)][1] == ("H002", 0)

    c = [debt("H001", "A001", "2"), debt("H002", "A002", "1", "10000"), *h3]  # listed again: open again
    info = await run(nhi, write(tmp_path / "c.csv", c), layout, as_of=date(2025, 12, 1))
    assert info.counts["debts_closed"] == 0
    assert [tuple(r) for r in await nhi.fetch(owed)] == [("H001", 30000), ("H002", 10000), ("H003", 60000)]
    await segment_store.fill(pool, cid, "nhi", segments.Segment(), date.today())  # it owes again: back
    assert dict(await pool.fetch(targets))["H002"] == "pending:"

    # cut short in transfer: only H001's line, which would close 3 of the 4 open debts: none closed
    info = await run(
        nhi, write(tmp_path / "cut.csv", [debt("H001", "A001", "2")]), layout, as_of=date(2025, 12, 2)
    )
    assert (info.counts["debts_closed"], info.counts["debts_not_closed_too_many"]) == (0, "3/4")
    assert "leaves out 3 of the 4 open debts" in report.summary(info)
    assert [tuple(r) for r in await nhi.fetch(owed)] == [("H001", 30000), ("H002", 10000), ("H003", 60000)]

    # H002's line cannot be read this time: its debt is not closed for being "missing"
    d = [debt("H001", "A001", "2"), row(世帯番号="H002", 宛名番号="A002", 期別="1", 調定額="十万"), *h3]
    info = await run(nhi, write(tmp_path / "d.csv", d), layout, as_of=date(2026, 1, 5))
    assert (info.rows_rejected, info.counts["debts_closed"]) == (1, 0)
    assert [tuple(r) for r in await nhi.fetch(owed)][1] == ("H002", 10000)
    # a rejected line that names nobody: nothing is closed at all, and the summary says why
    e = [debt("H001", "A001", "2"), *h3, row(世帯番号="H004", 宛名番号="")]
    info = await run(nhi, write(tmp_path / "e.csv", e), layout, as_of=date(2026, 2, 2))
    assert (info.counts["debts_closed"], info.counts["debts_not_closed"]) == (0, 1)
    assert [tuple(r) for r in await nhi.fetch(owed)][1] == ("H002", 10000)

    # a layout that does not say it is complete never closes anything (the shipped samples)
    info = await run(nhi, write(tmp_path / "b.csv", b), as_of=date(2026, 3, 2))
    assert "debts_closed" not in info.counts
    assert [tuple(r) for r in await nhi.fetch(owed)][1] == ("H002", 10000)


async def test_a_household_its_debtor_moved_out_of_says_so(
    nhi: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A person and their debts move to another household: the one left owes nothing and leaves its
    campaigns as `moved_out` (it paid nothing; before, its entry said `paid`)."""
    both = [row(世帯番号="H001", 宛名番号="A001"), row(世帯番号="H002", 宛名番号="A002")]
    await run(nhi, write(tmp_path / "v1.csv", both), as_of=date(2025, 10, 1))
    cid = await factory.campaign(pool, "nhi")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) select $1, id, 'nhi' from household",
        cid,
    )
    moved = [row(世帯番号="H001", 宛名番号="A001"), row(世帯番号="H001", 宛名番号="A002", 期別="2")]
    await run(nhi, write(tmp_path / "v2.csv", moved), as_of=date(2025, 11, 1))
    left = await pool.fetchrow(
        """select t.state, t.last_outcome, h.unpaid_yen from campaign_target t join household h on h.id = t.household_id
           where h.household_no = 'H002'"""
    )
    assert tuple(left) == ("excluded", "moved_out", 0)
