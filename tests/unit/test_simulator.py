"""The simulator against the source contract: every feed, every identity, the calibration."""

import duckdb
import pyarrow.csv as pacsv
import pytest

from yibao.ingest.feeds import FEEDS
from yibao.simulate.calibration import TARGETS, measure
from yibao.simulate.generator import generate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    home = tmp_path_factory.mktemp("sim")
    counts = generate(home, "tiny", "2024-01:2024-04", ["37", "44"], seed=11)
    return home, counts


def _view(con, landing, feed):
    con.execute(
        f"create or replace view {feed} as select * from read_csv('{landing / feed}/**/*.csv', "
        "all_varchar = true, union_by_name = true, hive_partitioning = false)"
    )


def test_every_feed_follows_the_contract(tiny):
    home, counts = tiny
    landing = home / "landing"
    produced = {p.name for p in landing.iterdir()}
    assert {"psn_insu", "population", "setl", "fee_list", "fixmedins", "practitioner",
            "fund_ledger"} <= produced  # fmt: skip
    for feed in produced:
        expected = [f.name for f in FEEDS[feed].fields]
        for path in (landing / feed).rglob("*.csv"):
            header = pacsv.read_csv(path).column_names
            assert header == expected, path
    assert all(n >= 0 for n in counts.values()) and counts["setl"] > 1000


def test_settlement_identities_hold_to_the_cent(tiny):
    landing = tiny[0] / "landing"
    con = duckdb.connect()
    _view(con, landing, "setl")
    _view(con, landing, "fee_list")
    d = "::decimal(18,2)"
    bad = con.execute(
        f"""
        select
            count(*) filter (where fund_pay_sumamt{d} <> hifp_pay{d} + cvlserv_pay{d}
                + hifes_pay{d} + hifmi_pay{d} + hifob_pay{d} + maf_pay{d} + oth_pay{d}),
            count(*) filter (where psn_part_amt{d} <> acct_pay{d} + psn_cash_pay{d}),
            count(*) filter (where medfee_sumamt{d} <> fund_pay_sumamt{d} + psn_part_amt{d}
                + hosp_part_amt{d})
        from setl
        """
    ).fetchall()[0]
    assert bad == (0, 0, 0)
    lines = con.execute(
        f"select count(*) filter (where cnt::decimal(18,4) * pric{d} <> det_item_fee_sumamt{d}) "
        "from fee_list"
    ).fetchall()[0][0]
    assert lines == 0
    unbalanced = con.execute(
        f"""
        select count(*) from (
            select s.setl_id from setl s join fee_list f using (setl_id)
            group by s.setl_id having any_value(s.medfee_sumamt{d}) <> sum(f.det_item_fee_sumamt{d})
        )
        """
    ).fetchall()[0][0]
    assert unbalanced == 0
    assert con.execute(
        "select count(*) from setl anti join fee_list using (setl_id)"
    ).fetchall() == [(0,)]


def test_reversals_negate_an_earlier_settlement(tiny):
    con = duckdb.connect()
    _view(con, tiny[0] / "landing", "setl")
    rows = con.execute(
        """
        select r.setl_id, r.medfee_sumamt::decimal(18,2) + o.medfee_sumamt::decimal(18,2),
               r.setl_time >= o.setl_time
        from setl r join setl o on o.setl_id = r.init_setl_id
        where r.refd_setl_flag = '1'
        """
    ).fetchall()
    n_reversals = con.execute("select count(*) from setl where refd_setl_flag = '1'").fetchall()
    assert rows and len(rows) == n_reversals[0][0]
    assert all(total == 0 and later for _, total, later in rows)


def test_fund_ledger_balances_chain(tiny):
    con = duckdb.connect()
    _view(con, tiny[0] / "landing", "fund_ledger")
    d = "::decimal(18,2)"
    broken = con.execute(
        f"""
        select
            count(*) filter (where bal_close{d} <> bal_open{d} + inc_contrib{d} + inc_subsidy{d}
                + inc_interest{d} + inc_other{d} - exp_benefit{d} - exp_other{d}),
            count(*) filter (where prev_close is not null and prev_close <> bal_open{d})
        from (
            select *, lag(bal_close{d}) over (partition by admdvs, fund_type order by period)
                as prev_close
            from fund_ledger
        )
        """
    ).fetchall()[0]
    assert broken == (0, 0)


def test_ground_truth_names_landed_records(tiny):
    home = tiny[0]
    truth = pacsv.read_csv(home / "truth" / "defects.csv").column("key").to_pylist()
    con = duckdb.connect()
    _view(con, home / "landing", "psn_insu")
    landed = {r[0] for r in con.execute("select psn_no from psn_insu").fetchall()}
    assert truth and set(map(str, truth)) <= landed


def test_calibration_within_tolerance_at_small(tmp_path):
    generate(tmp_path, "small", "2024-01:2024-06", seed=20240101)
    figures = measure(tmp_path / "landing")
    misses = [
        f"{t.name}: {figures[t.name]:.4g} vs {t.value} ± {t.tolerance}"
        for t in TARGETS
        if abs(figures[t.name] - t.value) > t.tolerance
    ]
    assert not misses, misses
