"""The simulator's calibration: published targets, and the same figures measured on landing files.

`measure()` reads the landing CSVs with DuckDB (the simulator's output as a bureau
would receive it), so the check covers what landed, not the simulator's internals.
Run `python -m yibao.simulate.calibration <home>` to print the table for the docs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    tolerance: float  # absolute
    source: str


# 2024 unless noted; 亿 = 1e8. Tolerances allow for sampling noise at `small`.
TARGETS = [
    Target("coverage_rate", 0.95, 0.02,
           "2024 national medical security statistical bulletin: 132,662 万 insured, ~95%"),
    Target("employee_share_of_insured", 0.286, 0.03,
           "bulletin: UEBMI 37,948 万 of 132,662 万"),
    Target("settlements_per_insured_year", 4.0, 1.0,
           "NHSA 2025: ~14.5 million settlements a day over ~1.33 billion insured"),
    Target("fund_spending_per_insured_year", 2350.0, 350.0,
           "bulletin: expenditure 29,764 亿 (pooled and accounts) over 132,662 万 insured"),
    Target("inpatient_fund_share_employee", 0.80, 0.04, "NHSA 2024: employee inpatient ~80%"),
    Target("inpatient_fund_share_resident", 0.70, 0.04, "NHSA 2024: resident inpatient ~70%"),
    Target("cross_province_share", 0.045, 0.015,
           "NHSA: 2.38 亿 cross-province direct settlements in 2024 of ~53 亿 settlements"),
    Target("drg_dip_share_of_inpatient_fund", 0.90, 0.06,
           "Shandong 2025: DRG/DIP pays 89.76% of inpatient fund spending"),
    Target("fund_income_over_expenditure", 1.173, 0.08,
           "bulletin: income 34,913 亿 over expenditure 29,764 亿"),
    Target("maternity_share_of_insured", 0.191, 0.03,
           "NHSA 2025: 25,300 万 in maternity insurance (June 2025) over 132,662 万 insured"),
    Target("ltc_share_of_insured", 0.143, 0.04,
           "NHSA 2025: 19,000 万 in long-term-care insurance (end 2024) over 132,662 万 insured"),
    Target("recovered_per_insured_half_year", 12.16, 4.0,
           "NHSA 2025: 161.3 亿 recovered in H1 2025 over 132,662 万 insured"),
    Target("recovered_per_case", 48150.0, 15000.0,
           "NHSA 2025: 161.3 亿 recovered in H1 2025 from 335,000 institutions inspected"),
]  # fmt: skip


def _csv(landing: Path, feed: str) -> str:
    return f"read_csv('{landing / feed}/**/*.csv', all_varchar = true, hive_partitioning = false)"


def measure(landing: Path) -> dict[str, float]:
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})

    def one(sql: str) -> float:
        value = con.execute(sql).fetchall()[0][0]
        return float(value) if value is not None else float("nan")

    con.execute(f"create table enrol as select * from {_csv(landing, 'psn_insu')}")
    # Tables, not views: each figure would read the files again.
    con.execute(
        f"create table setl as select *, medfee_sumamt::decimal(18,2) as medfee, "
        f"fund_pay_sumamt::decimal(18,2) as fund from {_csv(landing, 'setl')}"
    )
    con.execute(f"create table ledger as select * from {_csv(landing, 'fund_ledger')}")
    con.execute(f"create table pop as select * from {_csv(landing, 'population')}")
    con.execute(f"create table recovery as select * from {_csv(landing, 'fund_recovery')}")
    # Persons insured in the first (full-load) month, counted once by certificate.
    base = (
        "from enrol where insutype in ('310', '390') and psn_insu_stas = '1' "
        "and left(updt_time, 7) = (select min(left(updt_time, 7)) from enrol)"
    )
    insured = one(f"select count(distinct certno) {base}")
    months = one("select count(distinct left(setl_time, 7)) from setl")
    first_month = (
        "from enrol where psn_insu_stas = '1' "
        "and left(updt_time, 7) = (select min(left(updt_time, 7)) from enrol)"
    )
    inpatient = "med_type in ('21', '22')"
    figures = {
        "coverage_rate": insured / one("select sum(resident_pop::bigint) from pop"),
        "employee_share_of_insured": one(
            f"select count(distinct certno) filter (where insutype = '310') {base}"
        )
        / insured,
        "settlements_per_insured_year": one(
            "select count(*) filter (where refd_setl_flag = '0') from setl"
        )
        / insured
        / months
        * 12,
        "fund_spending_per_insured_year": one("select sum(fund) from setl") / insured / months * 12,
        "inpatient_fund_share_employee": one(
            f"select sum(fund) / sum(medfee) from setl where {inpatient} and insutype = '310'"
        ),
        "inpatient_fund_share_resident": one(
            f"select sum(fund) / sum(medfee) from setl where {inpatient} and insutype = '390'"
        ),
        "cross_province_share": one(
            "select avg((left(insuplc_admdvs, 2) <> left(mdtrtarea_admvs, 2))::int) from setl"
        ),
        "drg_dip_share_of_inpatient_fund": one(
            f"select sum(fund) filter (where drg_dip_code is not null) / sum(fund) "
            f"from setl where {inpatient}"
        ),
        "maternity_share_of_insured": one(
            f"select count(distinct certno) filter (where insutype = '510') {first_month}"
        )
        / insured,
        "ltc_share_of_insured": one(
            f"select count(distinct certno) filter (where insutype = '410') {first_month}"
        )
        / insured,
        "recovered_per_insured_half_year": one(
            "select sum(recovered_amt::decimal(18,2)) from recovery"
        )
        / insured
        / months
        * 6,
        "recovered_per_case": one("select avg(recovered_amt::decimal(18,2)) from recovery"),
        "fund_income_over_expenditure": one(
            "select sum(inc_contrib::decimal(18,2) + inc_subsidy::decimal(18,2) "
            "+ inc_interest::decimal(18,2) + inc_other::decimal(18,2)) "
            "/ sum(exp_benefit::decimal(18,2) + exp_other::decimal(18,2)) from ledger"
        ),
    }
    con.close()
    return figures


def table(figures: dict[str, float]) -> str:
    lines = ["| figure | target | tolerance | simulator | source |", "|---|---:|---:|---:|---|"]
    for t in TARGETS:
        got = figures[t.name]
        lines.append(f"| {t.name} | {t.value:g} | ±{t.tolerance:g} | {got:.4g} | {t.source} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(measure(Path(sys.argv[1]) / "landing")))
