"""The GE contract of coverage_monthly, run on a real DuckDB file through GE's SQL data source."""

import duckdb
import pytest

from expectations.marts import coverage_monthly
from yibao.validate import validate_relation

GOOD = """
    select date '2024-01-01' as period, '370100' as admdvs, 'prefecture' as admdvs_level,
           'all' as insutype, 95 as insured_persons, 1 as duplicate_enrollments,
           100 as resident_pop, 0.95::double as coverage_rate
"""


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(f"create table marts.coverage_monthly as {GOOD}")
    con.close()
    return path


def _add(db, sql):
    con = duckdb.connect(str(db))
    con.execute(f"insert into marts.coverage_monthly {sql}")
    con.close()


def test_good_mart_passes_and_file_is_released(db):
    outcome = validate_relation(db, "marts.coverage_monthly", coverage_monthly())
    assert outcome.success, outcome.describe_failures()
    # The next step (or the next run in this process) writes with its own configuration.
    duckdb.connect(str(db), config={"threads": 1}).close()


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("replace(1.2::double as coverage_rate)", "coverage_rate"),
        ("replace('3701' as admdvs)", "unexpected_rows_expectation"),
        ("replace('city' as admdvs_level)", "admdvs_level"),
        ("replace(-1 as insured_persons)", "insured_persons"),
    ],
)
def test_each_broken_contract_is_named(db, bad, expected):
    con = duckdb.connect(str(db))
    con.execute(f"create or replace table marts.coverage_monthly as select * {bad} from ({GOOD})")
    con.close()
    outcome = validate_relation(db, "marts.coverage_monthly", coverage_monthly())
    assert not outcome.success
    assert expected in outcome.describe_failures()


def test_duplicate_keys_fail(db):
    _add(db, GOOD)
    outcome = validate_relation(db, "marts.coverage_monthly", coverage_monthly())
    assert "expect_compound_columns_to_be_unique" in outcome.describe_failures()


def test_dashboard_sums_of_rule_hits_must_equal_the_hits(tmp_path):
    from expectations.marts import rule_hits_monthly

    path = tmp_path / "r.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.rule_hits as select * from (values "
        "('R001', date '2024-01-01', 10.00::decimal(18, 2)), "
        "('R001', date '2024-01-01', 5.00::decimal(18, 2))) as t(rule_id, period, suspect_amt)"
    )
    monthly = (
        "select date '2024-01-01' as period, '370000' as province, 'R001' as rule_id, "
        "{hits}::bigint as hits, 2::bigint as settlements_flagged, "
        "15.00::decimal(18, 2) as suspect_amt"
    )
    con.execute(f"create table marts.rule_hits_monthly as {monthly.format(hits=2)}")
    con.close()
    assert validate_relation(path, "marts.rule_hits_monthly", rule_hits_monthly()).success
    con = duckdb.connect(str(path))
    con.execute(f"create or replace table marts.rule_hits_monthly as {monthly.format(hits=3)}")
    con.close()
    outcome = validate_relation(path, "marts.rule_hits_monthly", rule_hits_monthly())
    assert not outcome.success
    assert "equal marts.rule_hits" in outcome.describe_failures()
