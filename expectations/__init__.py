"""Great Expectations suites as code: one module per layer, reviewed like code.

Each suite is a function returning the expectations for one relation; ``yibao.validate``
runs them on DuckDB through GE's SQL data source, so every expectation compiles to SQL
and no table is pulled into pandas. ``SUITES`` says which relation each suite judges
and whether a failure blocks publication (a blocking check keeps the live version) or
only warns (recorded in marts.dq_results, shown on the data-quality dashboard).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from expectations import marts, raw


@dataclass(frozen=True)
class Suite:
    relation: str
    build: Callable[[], list]
    blocking: bool

    @property
    def name(self) -> str:
        return self.relation.replace(".", "__")


SUITES: list[Suite] = [
    Suite("marts.coverage_monthly", marts.coverage_monthly, blocking=True),
    Suite("marts.fund_balance_monthly", marts.fund_balance_monthly, blocking=True),
    Suite("marts.settlement_monthly", marts.settlement_monthly, blocking=True),
    Suite(
        "marts.cross_province_settlement_monthly",
        marts.cross_province_settlement_monthly,
        blocking=True,
    ),
    Suite("marts.recovered_funds_monthly", marts.recovered_funds_monthly, blocking=True),
    Suite("marts.rule_hits", marts.rule_hits, blocking=True),
    Suite("marts.rule_hits_monthly", marts.rule_hits_monthly, blocking=True),
    Suite("marts.fund_reconciliation_monthly", marts.fund_reconciliation_monthly, blocking=False),
    Suite("raw.setl", raw.setl, blocking=False),
    Suite("raw.fee_list", raw.fee_list, blocking=False),
    Suite("raw.psn_insu", raw.psn_insu, blocking=False),
    Suite("raw.fund_ledger", raw.fund_ledger, blocking=False),
]
