"""Contracts of the published marts: what must hold before a version goes live."""

from __future__ import annotations

import great_expectations.expectations as gxe

# A coverage rate above 1 happens where people enrolled in a region live elsewhere
# (migrant workers insured at the workplace); above 1.05 signals a broken feed.
COVERAGE_RATE_MAX = 1.05
LEVELS = ["national", "province", "prefecture", "pooling_region"]


def coverage_monthly() -> list[gxe.Expectation]:
    """marts.coverage_monthly (参保月报)."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["period", "admdvs", "insutype"]),
        *[
            gxe.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("period", "admdvs", "admdvs_level", "insutype", "insured_persons")
        ],
        # GE has no regex for the DuckDB dialect: the check is plain SQL on the batch.
        gxe.UnexpectedRowsExpectation(
            description="admdvs is a 6-digit GB/T 2260 code",
            unexpected_rows_query=(
                "select * from {batch} "
                "where length(admdvs) <> 6 or not regexp_full_match(admdvs, '[0-9]+')"
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(column="admdvs_level", value_set=LEVELS),
        gxe.ExpectColumnValuesToBeBetween(column="insured_persons", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="duplicate_enrollments", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(
            column="coverage_rate", min_value=0, max_value=COVERAGE_RATE_MAX
        ),
    ]


# relation -> suite; the asset checks are generated from this table.
SUITES = {
    "marts.coverage_monthly": coverage_monthly,
}
