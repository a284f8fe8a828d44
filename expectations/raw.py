"""Contracts of the raw layer, per feed: what the door let in, judged against the source
contract. They warn (the door already quarantined what it cannot load; what is left
here is data the rules and the regulator must see, not a reason to stop publishing)."""

from __future__ import annotations

import great_expectations.expectations as gxe

INSUTYPES = ["310", "320", "330", "390", "392", "410", "510"]
MED_TYPES = ["11", "13", "14", "21", "22", "41", "51", "52"]
# Planted or real amount breaks are rare: above this share a feed is broken.
IDENTITY_MOSTLY = 0.99


def _required(*columns: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def setl() -> list[gxe.Expectation]:
    """raw.setl (结算)."""
    return [
        *_required(
            "setl_id",
            "mdtrt_id",
            "psn_no",
            "insutype",
            "med_type",
            "setl_time",
            "fixmedins_code",
            "insuplc_admdvs",
            "mdtrtarea_admvs",
            "medfee_sumamt",
            "hifp_pay",
            "fund_pay_sumamt",
        ),
        gxe.ExpectColumnValuesToBeInSet(column="insutype", value_set=INSUTYPES),
        gxe.ExpectColumnValuesToBeInSet(column="med_type", value_set=MED_TYPES),
        gxe.ExpectColumnValuesToBeInSet(column="refd_setl_flag", value_set=["0", "1"]),
        gxe.UnexpectedRowsExpectation(
            description="medfee_sumamt = fund_pay_sumamt + psn_part_amt + hosp_part_amt",
            unexpected_rows_query=(
                "select * from {batch} where abs(medfee_sumamt - fund_pay_sumamt "
                "- coalesce(psn_part_amt, 0) - coalesce(hosp_part_amt, 0)) > 0.005"
            ),
        ),
    ]


def fee_list() -> list[gxe.Expectation]:
    """raw.fee_list (费用明细)."""
    return [
        *_required("feedetl_sn", "setl_id", "hilist_code", "det_item_fee_sumamt"),
        gxe.ExpectColumnValuesToBeInSet(column="chrgitm_lv", value_set=["01", "02", "03"]),
        gxe.ExpectColumnValuesToBeBetween(column="selfpay_prop", min_value=0, max_value=1),
    ]


def psn_insu() -> list[gxe.Expectation]:
    """raw.psn_insu (参保登记)."""
    return [
        *_required("psn_no", "insutype", "psn_insu_stas", "insuplc_admdvs", "updt_time"),
        gxe.ExpectColumnValuesToBeInSet(column="insutype", value_set=INSUTYPES),
        gxe.ExpectColumnValuesToBeInSet(column="psn_insu_stas", value_set=["1", "2", "4"]),
        gxe.ExpectColumnValuesToBeInSet(column="gend", value_set=["1", "2", "9"]),
    ]


def fund_ledger() -> list[gxe.Expectation]:
    """raw.fund_ledger (基金收支)."""
    return [
        *_required("admdvs", "period", "fund_type", "bal_open", "bal_close"),
        gxe.ExpectColumnValuesToBeInSet(
            column="fund_type", value_set=["310_pool", "310_acct", "390", "510", "ltc"]
        ),
        gxe.UnexpectedRowsExpectation(
            description="bal_close = bal_open + income - expenditure",
            unexpected_rows_query=(
                "select * from {batch} where abs(bal_close - (bal_open + coalesce(inc_contrib, 0)"
                " + coalesce(inc_subsidy, 0) + coalesce(inc_interest, 0) + coalesce(inc_other, 0)"
                " - coalesce(exp_benefit, 0) - coalesce(exp_other, 0))) > 0.005"
            ),
        ),
    ]
