"""The simulator against the source contract, its ground truth and the calibration.

The truth checks recompute each planted pattern from the landed files with plain SQL
and demand the same set of keys as `truth/defects.csv`: nothing planted is missing
from the data, and the normal population never produces a pattern by chance.
"""

import duckdb
import pyarrow.csv as pacsv
import pytest

from yibao.ingest.feeds import FEEDS
from yibao.ingest.loader import ingest
from yibao.simulate import claims
from yibao.simulate.calibration import TARGETS, measure
from yibao.simulate.defects import RATES, ROW_DEFECTS
from yibao.simulate.generator import generate

# Abuse and data-quality rates raised so that a tiny sample holds several of each.
BOOSTED = {
    **RATES,
    **{k: min(1.0, v * 8) for k, v in RATES.items() if k not in ROW_DEFECTS},
}
D = "::decimal(18,2)"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("sim")
    counts = generate(home, "tiny", "2024-01:2024-04", ["37", "44", "11"], 11, BOOSTED, "csv")
    con = duckdb.connect()
    for feed in ("psn_insu", "setl", "fee_list", "fixmedins", "practitioner", "fund_ledger"):
        con.execute(
            f"create view {feed} as select * from read_csv('{home}/landing/{feed}/**/*.csv', "
            "all_varchar = true, union_by_name = true, hive_partitioning = false)"
        )
    con.execute(f"create view truth as select * from read_csv('{home}/truth/defects.csv')")
    catalogue = claims.CATALOGUE
    con.execute(
        "create table catalogue as select * from (values "
        + ", ".join(f"('{c}', '{f}', '{lv}')" for c, f, lv in
                    zip(catalogue.code, catalogue.flag, catalogue.lv, strict=True))
        + ") t(code, flag, lv)"
    )  # fmt: skip
    yield home, counts, con
    con.close()


def _truth(con, defect: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(f"select key from truth where defect_type = '{defect}'").fetchall()
    }


def _keys(con, sql: str) -> set[str]:
    return {r[0] for r in con.execute(sql).fetchall()}


def test_every_feed_follows_the_contract(world):
    home, counts, _ = world
    landing = home / "landing"
    produced = {p.name for p in landing.iterdir()}
    assert set(FEEDS) - {"supervision_case", "fund_recovery"} <= produced <= set(FEEDS)
    for feed in produced:
        expected = [f.name for f in FEEDS[feed].fields]
        for path in (landing / feed).rglob("*.csv"):
            assert pacsv.read_csv(path).column_names == expected, path
    assert counts["setl"] > 1000 and counts["fee_list"] > 4 * counts["setl"]


def test_settlement_identities_hold_except_where_planted(world):
    con = world[2]
    broken = _keys(
        con,
        f"""select setl_id from setl where
            fund_pay_sumamt{D} <> hifp_pay{D} + cvlserv_pay{D} + hifes_pay{D} + hifmi_pay{D}
                + hifob_pay{D} + maf_pay{D} + oth_pay{D}
            or psn_part_amt{D} <> acct_pay{D} + psn_cash_pay{D}
            or medfee_sumamt{D} <> fund_pay_sumamt{D} + psn_part_amt{D} + hosp_part_amt{D}""",
    )
    assert broken == _truth(con, "amount_identity_broken") and broken
    not_qty_price = _keys(
        con,
        f"select setl_id from fee_list "
        f"where cnt::decimal(18,4) * pric{D} <> det_item_fee_sumamt{D}",
    )
    assert not_qty_price == _truth(con, "line_not_qty_x_price") and not_qty_price
    not_adding = _keys(
        con,
        f"""select s.setl_id from setl s join fee_list f using (setl_id) group by s.setl_id
            having any_value(s.medfee_sumamt{D}) <> sum(f.det_item_fee_sumamt{D})""",
    )
    assert not_adding == _truth(con, "fee_lines_not_adding_up") and not_adding
    assert con.execute(
        "select count(*) from setl anti join fee_list using (setl_id)"
    ).fetchall() == [(0,)]


def test_reversals_negate_an_earlier_settlement(world):
    con = world[2]
    rows = con.execute(
        f"""select r.setl_id, r.medfee_sumamt{D} + o.medfee_sumamt{D}, r.setl_time >= o.setl_time,
                   left(r.setl_time, 7) > left(o.setl_time, 7)
            from setl r join setl o on o.setl_id = r.init_setl_id where r.refd_setl_flag = '1'"""
    ).fetchall()
    n = con.execute("select count(*) from setl where refd_setl_flag = '1'").fetchall()[0][0]
    assert rows and len(rows) == n
    assert all(total == 0 and later for _, total, later, _ in rows)
    assert {r[0] for r in rows if r[3]} == _truth(con, "late_reversal")


def test_fund_ledger_balances_chain(world):
    con = world[2]
    broken = con.execute(
        f"""select
            count(*) filter (where bal_close{D} <> bal_open{D} + inc_contrib{D} + inc_subsidy{D}
                + inc_interest{D} + inc_other{D} - exp_benefit{D} - exp_other{D}),
            count(*) filter (where prev_close is not null and prev_close <> bal_open{D}),
            count(distinct fund_type)
        from (select *, lag(bal_close{D}) over (partition by admdvs, fund_type order by period)
                  as prev_close from fund_ledger)"""
    ).fetchall()[0]
    assert broken == (0, 0, 5)  # 310_pool, 310_acct, 390, 510 and ltc in pilot cities


def test_duplicate_enrollments_are_the_same_certificate_elsewhere(world):
    con = world[2]
    twice = _keys(
        con,
        """select psn_no from psn_insu where insutype in ('310', '390') and certno in (
               select certno from psn_insu where insutype in ('310', '390')
               group by certno having count(distinct insuplc_admdvs) > 1)
           qualify row_number() over (partition by certno order by right(psn_no, 14) desc) = 1""",
    )
    assert twice == _truth(con, "duplicate_enrollment") and twice


def test_sex_and_age_conflicts_are_exactly_the_planted_ones(world):
    con = world[2]
    sex = _keys(
        con,
        """select setl_id from setl where
             (gend = '1' and (diag_code in ('N83.200', 'O80.000', 'Z34.900')
                              or oprn_oprt_code in ('68.1200', '73.5900')))
          or (gend = '2' and (diag_code in ('C61.x00', 'N40.x00')
                              or oprn_oprt_code = '60.2900'))""",
    )
    assert sex == _truth(con, "sex_conflict") and sex
    age = _keys(
        con,
        """select setl_id from setl where
             (diag_code = 'P07.300' and date_diff('year', brdy::date, enddate::date) >= 1)
          or (diag_code = 'Z31.200' and date_diff('year', brdy::date, enddate::date) >= 56)
          or (diag_code in ('O80.000', 'Z34.900')
              and date_diff('year', brdy::date, enddate::date) not between 12 and 55)""",
    )
    assert age == _truth(con, "age_conflict") and age


def test_practitioner_and_agreement_defects_are_exactly_the_planted_ones(world):
    con = world[2]
    unregistered = _keys(
        con, "select setl_id from setl where atddr_no not in (select dr_code from practitioner)"
    )
    assert unregistered == _truth(con, "unregistered_practitioner") and unregistered
    after_end = _keys(
        con,
        """select s.setl_id from setl s join (select distinct fixmedins_code, agmt_enddate
                                               from fixmedins) f using (fixmedins_code)
           where s.enddate::date > f.agmt_enddate::date and s.refd_setl_flag = '0'""",
    )
    assert after_end == _truth(con, "after_agreement_end") and after_end


def test_fee_line_abuse_is_exactly_the_planted_ones(world):
    con = world[2]
    fund_paid = """select distinct f.setl_id from fee_list f
                   join catalogue c on c.code = f.hilist_code
                   where f.selfpay_prop::decimal(9,4) < 1 and f.det_item_fee_sumamt{d} > 0
                     and {cond}"""
    excluded = _keys(con, fund_paid.format(d=D, cond="c.flag like 'excluded_%'"))
    assert excluded == _truth(con, "excluded_item_billed") and excluded
    class_c = _keys(con, fund_paid.format(d=D, cond="c.lv = '03' and c.flag not like 'excluded_%'"))
    assert class_c == _truth(con, "class_c_paid_by_fund") and class_c
    unknown = _keys(
        con,
        "select distinct setl_id from fee_list where det_item_fee_sumamt::decimal(18,2) > 0 "
        "and hilist_code not in (select code from catalogue)",
    )
    assert unknown == _truth(con, "unknown_code") and unknown
    no_bed = _keys(
        con,
        """select s.setl_id from setl s join fee_list f using (setl_id)
           where s.med_type in ('21', '22', '52') and s.refd_setl_flag = '0'
           group by s.setl_id
           having count(*) filter (where f.med_chrgitm_type in ('01', '07')) = 0""",
    )
    assert no_bed == _truth(con, "no_bed_or_nursing") and no_bed


def test_visit_patterns_are_exactly_the_planted_ones(world):
    con = world[2]
    con.execute(
        """create or replace temp view stays as
           select setl_id, psn_no, fixmedins_code, begndate::date as b, enddate::date as e
           from setl where med_type in ('21', '22', '52') and refd_setl_flag = '0'"""
    )
    split = _keys(
        con,
        """select later.setl_id from stays later join stays earlier
             on later.psn_no = earlier.psn_no and later.fixmedins_code = earlier.fixmedins_code
            and later.setl_id <> earlier.setl_id
            and later.b > earlier.e and later.b <= earlier.e + 5""",
    )
    assert split == _truth(con, "split_hospitalisation") and split
    overlap = _keys(
        con,
        """select later.setl_id from stays later join stays earlier
             on later.psn_no = earlier.psn_no and later.setl_id <> earlier.setl_id
            and later.b > earlier.b and later.b < earlier.e""",
    )
    assert overlap == _truth(con, "overlapping_stays") and overlap
    imaging = """select f.setl_id, s.psn_no, s.enddate::date as d from fee_list f
                 join setl s using (setl_id) join catalogue c on c.code = f.hilist_code
                 where c.flag in ('imaging_ct', 'imaging_mri') and s.refd_setl_flag = '0'"""
    repeat = _keys(
        con,
        f"""with i as ({imaging}) select later.setl_id from i later join i earlier
            on later.psn_no = earlier.psn_no and later.setl_id <> earlier.setl_id
            and later.d > earlier.d and later.d <= earlier.d + 30""",
    )
    assert repeat == _truth(con, "repeat_imaging") and repeat
    frequent = _keys(
        con,
        """select psn_no from setl where med_type = '11' and refd_setl_flag = '0'
           group by psn_no, left(setl_time, 7) having count(*) > 8""",
    )
    assert frequent == _truth(con, "high_frequency_visits") and frequent
    limits = dict(zip(claims.DIAG_CODES, claims.LOS_LIMIT, strict=True))
    too_long = {
        sid for sid, diag, days in con.execute(
            "select setl_id, diag_code, enddate::date - begndate::date from setl "
            "where med_type = '21' and refd_setl_flag = '0'"
        ).fetchall() if days > limits[diag]
    }  # fmt: skip
    assert too_long == _truth(con, "los_over_limit") and too_long


def test_the_door_quarantines_exactly_the_planted_rows(tmp_path):
    """Delivered as the provinces do (GB18030, BOM, CRLF, gzip, Parquet, broken rows)."""
    rates = {**RATES, **{k: 0.003 for k in ROW_DEFECTS}}
    generate(tmp_path, "tiny", "2024-01:2024-02", ["37", "44"], 5, rates)
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    report = ingest(con, tmp_path / "landing", tmp_path / "scratch", b"k")
    truth = (
        duckdb.connect()
        .execute(f"select batch, defect_type, key from read_csv('{tmp_path}/truth/defects.csv')")
        .fetchall()
    )
    planted = {(b, kind) for b, kind, _ in truth if kind in ROW_DEFECTS}
    quarantined = set(con.execute("select path, reason_code from ops.quarantine").fetchall())
    assert planted and quarantined == planted
    per_kind = {kind: sum(1 for _, k, _ in truth if k == kind) for kind in ROW_DEFECTS}
    counted = dict(
        con.execute("select reason_code, count(*) from ops.quarantine group by 1").fetchall()
    )
    assert counted == {k: v for k, v in per_kind.items() if v}
    rejected = [(b.path, b.reason) for b in report.rejected]
    assert [path for path, _ in rejected] == [
        b for b, kind, _ in truth if kind == "missing_required_column"
    ]
    assert "dr_code" in rejected[0][1]
    variants = {kind for _, kind, _ in truth} & {"gb18030", "utf8_bom", "crlf", "gzip", "parquet"}
    assert variants == {"gb18030", "utf8_bom", "crlf", "gzip", "parquet"}
    read = con.execute(
        "select sum(rows_read), sum(rows_loaded) + sum(rows_quarantined) from ops.batches"
    ).fetchall()
    assert read[0][0] == read[0][1]


def test_calibration_within_tolerance_at_small(tmp_path):
    generate(tmp_path, "small", "2024-01:2024-06", seed=20240101, fmt="csv")
    figures = measure(tmp_path / "landing")
    misses = [
        f"{t.name}: {figures[t.name]:.4g} vs {t.value} ± {t.tolerance}"
        for t in TARGETS
        if abs(figures[t.name] - t.value) > t.tolerance
    ]
    assert not misses, misses
