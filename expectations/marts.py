"""Contracts of the published marts: what must hold before a version goes live."""

from __future__ import annotations

import great_expectations.expectations as gxe

# A coverage rate above 1 happens where people enrolled in a region live elsewhere
# (migrant workers insured at the workplace); above 1.05 signals a broken feed.
COVERAGE_RATE_MAX = 1.05
LEVELS = ["national", "province", "prefecture", "pooling_region"]
# Provinces add up to the nation within this many persons / yuan (rounding only).
ADD_UP_TOLERANCE = 0.01


def _six_digit_admdvs() -> gxe.Expectation:
    # GE has no regex for the DuckDB dialect: the check is plain SQL on the batch.
    return gxe.UnexpectedRowsExpectation(
        description="admdvs is a 6-digit GB/T 2260 code",
        unexpected_rows_query=(
            "select * from {batch} "
            "where length(admdvs) <> 6 or not regexp_full_match(admdvs, '[0-9]+')"
        ),
    )


def _provinces_add_up(measure: str, keys: list[str]) -> gxe.Expectation:
    """The provinces' rows of `measure` sum to the national row, per `keys`."""
    by = ", ".join(keys)
    return gxe.UnexpectedRowsExpectation(
        description=f"provinces add up to the nation: {measure} by {by}",
        unexpected_rows_query=(
            f"select {by}, n.{measure} as national, p.provinces from {{batch}} as n "
            f"join (select {by}, sum({measure}) as provinces from {{batch}} "
            f"      where admdvs_level = 'province' group by {by}) as p using ({by}) "
            f"where n.admdvs_level = 'national' "
            f"and abs(coalesce(n.{measure}, 0) - coalesce(p.provinces, 0)) > {ADD_UP_TOLERANCE}"
        ),
    )


def _not_null(*columns: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def _non_negative(*columns: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in columns]


def coverage_monthly() -> list[gxe.Expectation]:
    """marts.coverage_monthly (参保月报)."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["period", "admdvs", "insutype"]),
        *_not_null("period", "admdvs", "admdvs_level", "insutype", "insured_persons"),
        _six_digit_admdvs(),
        gxe.ExpectColumnValuesToBeInSet(column="admdvs_level", value_set=LEVELS),
        *_non_negative("insured_persons", "duplicate_enrollments"),
        gxe.ExpectColumnValuesToBeBetween(
            column="coverage_rate", min_value=0, max_value=COVERAGE_RATE_MAX
        ),
        _provinces_add_up("insured_persons", ["period", "insutype"]),
    ]


def fund_balance_monthly() -> list[gxe.Expectation]:
    """marts.fund_balance_monthly (基金收支): a break in continuity blocks publication."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["period", "admdvs", "fund_type"]),
        *_not_null("period", "admdvs", "fund_type", "bal_close", "income", "expenditure"),
        _six_digit_admdvs(),
        # A month's opening balance is the previous month's closing balance.
        gxe.ExpectColumnValuesToBeInSet(column="balance_continuous", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="balance_identity_holds", value_set=[True]),
        # Not income or expenditure: a small region's month can net refunds above payments.
        *_non_negative("months_in_average"),
        _provinces_add_up("bal_close", ["period", "fund_type"]),
    ]


def settlement_monthly() -> list[gxe.Expectation]:
    """marts.settlement_monthly (结算月报)."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["period", "admdvs", "insutype", "med_type"]
        ),
        *_not_null("period", "admdvs", "insutype", "med_type", "settlements"),
        _six_digit_admdvs(),
        *_non_negative("settlements", "persons"),
        _provinces_add_up("settlements", ["period", "insutype", "med_type"]),
    ]


def cross_province_settlement_monthly() -> list[gxe.Expectation]:
    """marts.cross_province_settlement_monthly (跨省直接结算)."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["period", "insured_province", "treatment_province", "visit_class"]
        ),
        *_non_negative("settlements", "persons"),
        gxe.UnexpectedRowsExpectation(
            description="cross-province settlements never exceed all settlements of the month",
            unexpected_rows_query=(
                "select c.period, c.cross_province, s.all_settlements from "
                "(select period, sum(settlements) as cross_province from {batch} "
                " group by period) as c "
                "join (select period, sum(settlements) as all_settlements "
                "      from marts.settlement_monthly where admdvs_level = 'national' "
                "      group by period) as s using (period) "
                "where c.cross_province > s.all_settlements"
            ),
        ),
    ]


def fund_reconciliation_monthly() -> list[gxe.Expectation]:
    """marts.fund_reconciliation_monthly (基金对账): mismatches warn, they do not block."""
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["period", "admdvs", "fund_type"]),
        gxe.ExpectColumnValuesToBeInSet(
            column="reconciliation_flag", value_set=["match", "no_ledger"], mostly=0.99
        ),
    ]


def recovered_funds_monthly() -> list[gxe.Expectation]:
    """marts.recovered_funds_monthly (追回资金)."""
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["period", "admdvs", "case_source"]),
        *_non_negative("cases_opened", "cases_closed", "recovered_amt"),
    ]


def rule_hits() -> list[gxe.Expectation]:
    """marts.rule_hits (规则命中): every hit names its rule and a bounded suspect amount."""
    return [
        *_not_null("rule_id", "period", "admdvs", "suspect_amt"),
        gxe.ExpectColumnValuesToBeInSet(column="severity", value_set=["high", "medium", "low"]),
        *_non_negative("suspect_amt"),
        gxe.UnexpectedRowsExpectation(
            description="a suspect amount never exceeds what the fund paid on the settlement",
            unexpected_rows_query=(
                "select * from {batch} where setl_id is not null and suspect_amt > fund_pay_sumamt"
            ),
        ),
    ]


def rule_hits_monthly() -> list[gxe.Expectation]:
    """marts.rule_hits_monthly (规则命中月汇总): the dashboard's sums equal the hits."""
    return [
        *_not_null("period", "province", "rule_id", "hits", "suspect_amt"),
        *_non_negative("hits", "settlements_flagged", "suspect_amt"),
        gxe.UnexpectedRowsExpectation(
            description="hits and suspect amount by rule and month equal marts.rule_hits",
            unexpected_rows_query=(
                "select * from (select period, rule_id, sum(hits) as hits, "
                "sum(suspect_amt) as suspect_amt from {batch} group by all) as m "
                "full join (select period, rule_id, count(*) as hits, "
                "sum(suspect_amt) as suspect_amt from marts.rule_hits group by all) as h "
                "using (period, rule_id) "
                "where m.hits is distinct from h.hits "
                "or abs(coalesce(m.suspect_amt, 0) - coalesce(h.suspect_amt, 0)) > 0.01"
            ),
        ),
    ]
