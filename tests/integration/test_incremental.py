"""Incremental builds by month.

A month added later rebuilds that month and the months its reversals touch, and the
published figures come out exactly as a full rebuild of the same files gives them.
"""

import shutil
from datetime import date

import duckdb
import pytest

from tests.conftest import run_yibao

pytestmark = pytest.mark.integration

INCREMENTAL = (
    "settlement_monthly",
    "cross_province_settlement_monthly",
    "fund_reconciliation_monthly",
    # Built by int_rule_hits, incremental by settlement and person.
    "rule_hits",
    "rule_hits_monthly",
    # Built on int_coverage_at_month_end and the ranked month ends, incremental from the
    # earliest change.
    "coverage_monthly",
    # Incremental by person, like int_enrollment_history.
    "dim_enrollments",
)


def _marts(home) -> dict[str, list[tuple]]:
    live = (home / "warehouse" / "live.duckdb").resolve()
    con = duckdb.connect(str(live), read_only=True)
    out = {}
    for table in INCREMENTAL:
        cols = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = $t and column_name not like '\\_%' "
                # Each home keys its own pseudonyms.
                "escape '\\' and column_name <> 'person_key' order by ordinal_position",
                {"t": table},
            ).fetchall()
        ]
        out[table] = sorted(
            con.execute(f"select {', '.join(cols)} from marts.{table}").fetchall(), key=repr
        )
    con.close()
    return out


def _built(home) -> dict:
    con = duckdb.connect(str(home / "build" / "warehouse.duckdb"), read_only=True)
    rows = con.execute(
        "select period, max(_built_at) from intermediate.int_settlements_netted group by 1"
    ).fetchall()
    con.close()
    return dict(rows)


def _query(home, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(home / "build" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# What the rule base reads, compared between the homes too (rule_hits only shows hits).
RULE_INPUTS = (
    "select count(*), sum(fund_pay_sumamt) from intermediate.int_rule_settlements",
    "select count(*), count(distinct setl_id), sum(fund_share_amt) "
    "from intermediate.int_rule_fee_lines",
)


def _copy(landing, home, keep) -> None:
    for path in landing.rglob("*"):
        rel = path.relative_to(landing).as_posix()
        if path.is_file() and keep(rel):
            target = home / "landing" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def test_a_month_added_later_gives_the_figures_of_a_full_rebuild(tmp_path):
    source = tmp_path / "source"
    run_yibao(source, "generate", "--scale", "tiny", "--provinces", "11,37,44",
              "--months", "2024-01:2024-03")  # fmt: skip
    landing = source / "landing"

    # Held back from the first delivery, beside March: Beijing's January settlements
    # (so February's reversal of one of them arrives as an orphan) and Guangzhou's
    # January fee lines (their settlements come first, the lines later).
    late = ("period=2024-03", "setl/period=2024-01/admdvs=110100/",
            "fee_list/period=2024-01/admdvs=440100/")  # fmt: skip
    stepwise = tmp_path / "stepwise"
    _copy(landing, stepwise, lambda rel: not any(part in rel for part in late))
    run_yibao(stepwise, "run")
    first = _built(stepwise)
    assert date(2024, 1, 1) in first and date(2024, 3, 1) not in first
    orphans = {r[0] for r in _query(stepwise, "select setl_id from "
               "intermediate.int_settlements_netted where is_orphan_reversal")}  # fmt: skip

    # The rest arrives, with a February batch sent again corrected: one settlement dropped.
    _copy(landing, stepwise, lambda rel: any(part in rel for part in late))
    corrected = sorted((stepwise / "landing" / "setl" / "period=2024-02").glob("*/*.csv"))[0]
    header, dropped_line, *rest = corrected.read_bytes().split(b"\n")
    dropped = dropped_line.split(b",")[header.split(b",").index(b'"setl_id"')].strip(b'"')
    corrected.write_bytes(b"\n".join([header, *rest]))
    # Another February settlement batch sent again with every record removed: its
    # settlements go (the netting finds the batch in the ledger, it has no rows).
    emptied = sorted((stepwise / "landing" / "setl" / "period=2024-02").glob("*/*.csv"))[1]
    emptied_header, *emptied_rows = emptied.read_bytes().split(b"\n")
    emptied_ids = {
        row.split(b",")[emptied_header.split(b",").index(b'"setl_id"')].strip(b'"').decode()
        for row in emptied_rows
        if row.strip()
    }
    assert emptied_ids
    emptied.write_bytes(emptied_header + b"\n")
    # And a February fee-line batch of another region sent again with every line removed:
    # its settlements stay, their lines go (the rule base must not judge them any more).
    lines_dir = stepwise / "landing" / "fee_list" / "period=2024-02"
    emptied_lines = sorted(lines_dir.glob("*/*.csv"))[-1]
    assert emptied_lines.parent.name not in {corrected.parent.name, emptied.parent.name}
    emptied_lines.write_bytes(emptied_lines.read_bytes().split(b"\n")[0] + b"\n")
    # And a February enrollment batch sent again corrected: one change record dropped.
    enrollments = sorted((stepwise / "landing" / "psn_insu" / "period=2024-02").glob("*/*.csv"))
    header, _dropped_change, *rest = enrollments[0].read_bytes().split(b"\n")
    enrollments[0].write_bytes(b"\n".join([header, *rest]))
    # And a January enrollment batch sent again with every record removed, the only
    # January enrollment batch that changes: the month ends from January on must drop
    # its persons (they no longer have any change to be found from).
    january_dir = stepwise / "landing" / "psn_insu" / "period=2024-01"
    january_batches = [
        p for p in sorted(january_dir.glob("*/*.csv")) if p.read_bytes().count(b"\n") > 1
    ]
    emptied_enrollments = min(january_batches, key=lambda p: p.stat().st_size)
    emptied_enrollments.write_bytes(emptied_enrollments.read_bytes().split(b"\n")[0] + b"\n")
    # And February's register snapshot of Shenzhen sent again corrected: pharmacy 5's
    # agreement ended in January, in that snapshot only. The rule base must judge its
    # February settlements again (R022 fires), not its January ones (same version).
    [snapshot] = (stepwise / "landing/fixmedins/period=2024-02/admdvs=440300").glob("*.csv")
    lines = snapshot.read_bytes().split(b"\n")
    [row] = [i for i, line in enumerate(lines) if line.startswith(b'"P44030000005"')]
    assert b'"2029-12-31"' in lines[row]
    lines[row] = lines[row].replace(b'"2029-12-31"', b'"2024-01-20"')
    snapshot.write_bytes(b"\n".join(lines))
    # And February's practitioner snapshot of Shenzhen sent again corrected: a doctor
    # who attended settlements in January and February is not valid (vali_flag 0) in
    # that snapshot only. R009 must fire on the February settlements alone.
    [(doctor,)] = _query(
        stepwise,
        "select s.atddr_no from intermediate.int_rule_settlements s "
        "left join intermediate.int_rule_hits h on h.setl_id = s.setl_id "
        "and not h._is_tombstone and h._scope_key like 's|%' "
        "where s.atddr_no like 'D440300%' group by 1 "
        "having count(h.setl_id) filter (where s.period = '2024-01-01') > 0 "
        "and count(*) filter (where s.period = '2024-02-01') > 0 order by 1 limit 1",
    )
    [register] = (stepwise / "landing/practitioner/period=2024-02/admdvs=440300").glob("*.csv")
    lines = register.read_bytes().split(b"\n")
    [row] = [i for i, line in enumerate(lines) if line.startswith(f'"{doctor}"'.encode())]
    assert lines[row].endswith(b',"1"')
    lines[row] = lines[row][: -len(b'"1"')] + b'"0"'
    register.write_bytes(b"\n".join(lines))
    doctor_hits = (
        "select rule_id, setl_id, period, _built_at from intermediate.int_rule_hits h "
        "where not _is_tombstone and _scope_key like 's|%' and setl_id in (select setl_id "
        f"from intermediate.int_rule_settlements where atddr_no = '{doctor}')"
    )
    doctor_before = set(_query(stepwise, doctor_hits))
    assert "R009" not in {rule for rule, *_ in doctor_before}
    assert date(2024, 1, 1) in {period for _, _, period, _ in doctor_before}
    pharmacy_hits = (
        "select rule_id, setl_id, _built_at from intermediate.int_rule_hits "
        "where fixmedins_code = 'P44030000005' and not _is_tombstone and _scope_key like 's|%'"
    )
    january = {r for r in _query(stepwise, pharmacy_hits + " and period = '2024-01-01'")}
    assert january, "pharmacy 5 needs January hits to keep"
    history_built = "select max(_built_at) from intermediate.int_enrollment_history"
    history_before = _query(stepwise, history_built)
    hits_built = "select max(_built_at) from intermediate.int_rule_hits"
    [(hits_before,)] = _query(stepwise, hits_built)
    run_yibao(stepwise, "run")
    second = _built(stepwise)
    # The month-end counts took in every enrollment batch of the ledger, the emptied one
    # too (it left no row in the history): the next build finds none to redo months from.
    assert _query(
        stepwise,
        "select count(*) from ops.batches where feed = 'psn_insu' and processed_at > "
        "(select max(_source_loaded_at) from intermediate.int_coverage_at_month_end)",
    ) == [(0,)]
    # Rule hits by scope: those of the new and changed settlements and their persons
    # were redone, hits of settlements and persons nothing touched were kept.
    [(hits_rebuilt, hits_rows)] = _query(
        stepwise,
        "select count(*) filter (where _built_at > $b), count(*) from intermediate.int_rule_hits",
        {"b": hits_before},
    )
    assert 0 < hits_rebuilt < hits_rows
    # The corrected snapshot: pharmacy 5's February settlements breach R022 now; its
    # January hits were kept as built (the version in force in January is unchanged).
    february = _query(stepwise, pharmacy_hits + " and period = '2024-02-01'")
    assert "R022" in {rule for rule, _, _ in february}
    assert {r for r in _query(stepwise, pharmacy_hits + " and period = '2024-01-01'")} == january
    # The corrected practitioner: R009 on February's settlements only (March's snapshot
    # has the doctor valid again); the January hits of that doctor kept as built.
    doctor_after = set(_query(stepwise, doctor_hits))
    assert {period for rule, _, period, _ in doctor_after if rule == "R009"} == {date(2024, 2, 1)}
    assert {h for h in doctor_after if h[2] == date(2024, 1, 1)} == {
        h for h in doctor_before if h[2] == date(2024, 1, 1)
    }
    # Enrollment history by person: the persons of March's changes and of the corrected
    # batch were rebuilt, not everyone.
    [(history_rebuilt, history_rows)] = _query(
        stepwise,
        "select count(*) filter (where _built_at > $b), count(*) "
        "from intermediate.int_enrollment_history",
        {"b": history_before[0][0]},
    )
    assert 0 < history_rebuilt < history_rows / 2

    # The new month was built; earlier months were rebuilt only where reversals touched.
    months = sorted(second)
    assert months[-1].month == 3 and second[months[-1]] > max(first.values())
    rebuilt = {m for m in first if second[m] != first[m]}
    assert rebuilt, "March's late reversals touch earlier months: they must be rebuilt"
    # By settlement, not by month: February's corrected batch and the settlements its
    # reversals reverse were rebuilt, the rest of February was not.
    [(feb_rebuilt, feb_rows)] = _query(
        stepwise,
        f"""
        select count(*) filter (where _built_at = '{second[date(2024, 2, 1)]}'), count(*)
        from intermediate.int_settlements_netted where period = '2024-02-01'""",
    )
    assert 0 < feb_rebuilt < feb_rows
    # The dropped settlement and the orphan whose original arrived are withdrawn.
    withdrawn = {r[0] for r in _query(stepwise, "select setl_id from "
                 "intermediate.int_settlements_netted where is_withdrawn")}  # fmt: skip
    assert dropped.decode() in withdrawn
    assert emptied_ids <= withdrawn, "an emptied batch's settlements must be withdrawn"
    assert orphans & withdrawn, "the orphan reversal must give way to its original"

    # Full: everything at once (as finally delivered), in a home of its own.
    full = tmp_path / "full"
    shutil.copytree(stepwise / "landing", full / "landing")
    run_yibao(full, "run")
    assert _marts(stepwise) == _marts(full)
    for sql in RULE_INPUTS:
        assert _query(stepwise, sql) == _query(full, sql), sql

    # A run with nothing new rebuilds nothing; a full refresh rebuilds every month alike.
    history_before = _query(stepwise, history_built)
    hits_before = _query(stepwise, hits_built)
    run_yibao(stepwise, "run")
    assert _built(stepwise) == second
    assert _query(stepwise, history_built) == history_before
    assert _query(stepwise, hits_built) == hits_before

    # A January settlement batch sent again with every record removed, January's only
    # new delivery: the months its settlements were paid in (the fund's cash view) and
    # settled in must lose them, as a full refresh of the same files gives.
    setl_january = sorted((stepwise / "landing" / "setl" / "period=2024-01").glob("*/*.csv"))
    emptied_january = next(p for p in setl_january if p.read_bytes().count(b"\n") > 1)
    emptied_january.write_bytes(emptied_january.read_bytes().split(b"\n")[0] + b"\n")
    run_yibao(stepwise, "run")
    third = _built(stepwise)
    incremental_marts = _marts(stepwise)
    assert incremental_marts != _marts(full), "the emptied batch must change the marts"

    run_yibao(stepwise, "run", "--full-refresh")
    refreshed = _built(stepwise)
    assert set(refreshed) == set(second) and len(set(refreshed.values())) == 1
    assert min(refreshed.values()) > max(third.values())
    assert _marts(stepwise) == incremental_marts
    assert not _query(stepwise, "select 1 from intermediate.int_settlements_netted "
                      "where is_withdrawn")  # fmt: skip
