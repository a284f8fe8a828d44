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
    # Built on int_rule_settlements and int_rule_fee_lines, incremental by month too.
    "rule_hits",
    "rule_hits_monthly",
    # Built on int_enrollments_at_month_end, incremental from the earliest change.
    "coverage_monthly",
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
                "escape '\\' order by ordinal_position",
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


def test_a_month_added_later_gives_the_figures_of_a_full_rebuild(tmp_path):
    source = tmp_path / "source"
    run_yibao(source, "generate", "--scale", "tiny", "--provinces", "11,37,44",
              "--months", "2024-01:2024-03")  # fmt: skip
    landing = source / "landing"

    # Incremental: the first two months, then the third as it arrives.
    stepwise = tmp_path / "stepwise"
    for path in landing.rglob("*"):
        if path.is_file() and "period=2024-03" not in path.as_posix():
            target = stepwise / "landing" / path.relative_to(landing)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    run_yibao(stepwise, "run")
    first = _built(stepwise)
    assert date(2024, 1, 1) in first and date(2024, 3, 1) not in first
    for path in landing.rglob("*"):
        if path.is_file() and "period=2024-03" in path.as_posix():
            target = stepwise / "landing" / path.relative_to(landing)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    run_yibao(stepwise, "run")
    second = _built(stepwise)

    # The new month was built; a month untouched by its reversals was not rebuilt.
    months = sorted(second)
    assert months[-1].month == 3 and second[months[-1]] > max(first.values())
    rebuilt = {m for m in first if second[m] != first[m]}
    assert rebuilt, "March's late reversals touch earlier months: they must be rebuilt"

    # Full: everything at once, in a home of its own.
    full = tmp_path / "full"
    shutil.copytree(landing, full / "landing")
    run_yibao(full, "run")
    assert _marts(stepwise) == _marts(full)

    # A run with nothing new rebuilds nothing; a full refresh rebuilds every month alike.
    run_yibao(stepwise, "run")
    assert _built(stepwise) == second
    run_yibao(stepwise, "run", "--full-refresh")
    refreshed = _built(stepwise)
    assert set(refreshed) == set(second) and len(set(refreshed.values())) == 1
    assert min(refreshed.values()) > max(second.values())
    assert _marts(stepwise) == _marts(full)
