"""The source feeds the warehouse accepts: our own copy of the source contract.

Each field has a type that the door checks before a record enters the raw layer.
Personal fields are listed apart: they never pass the door as they came.
"""

from __future__ import annotations

from dataclasses import dataclass

# Types at the door: each maps to the DuckDB type of the raw column and to a check.
DUCKDB_TYPES = {
    "str": "VARCHAR",
    "code6": "VARCHAR",  # a 6-digit GB/T 2260 administrative division code
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "dec": "DECIMAL(18,2)",  # amounts in yuan, to the cent
    "qty": "DECIMAL(18,4)",  # quantities, 4 places
    "ratio": "DECIMAL(9,4)",
    "int": "BIGINT",
    "month": "VARCHAR",  # YYYY-MM, checked by its own rule
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"
    required: bool = False


@dataclass(frozen=True)
class Feed:
    name: str
    fields: tuple[Field, ...]
    # Certificate numbers become a keyed pseudonym; names are dropped (PIPL).
    pseudonymise: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    description: str = ""
    # The field that must fall in the batch's month (period=YYYY-MM) and not in the future.
    period_field: str | None = None

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def personal(self) -> set[str]:
        return set(self.pseudonymise) | set(self.drop)


# setl's optional amounts, in contract order around the required hifp_pay and fund_pay_sumamt.
SETL_OPTIONAL_AMOUNTS = (
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "cvlserv_pay",
    "hifes_pay",
    "hifmi_pay",
    "hifob_pay",
    "maf_pay",
    "oth_pay",
    "psn_part_amt",
    "acct_pay",
    "psn_cash_pay",
    "hosp_part_amt",
    "acct_mulaid_pay",
)

FEEDS: dict[str, Feed] = {
    "psn_insu": Feed(
        name="psn_insu",
        description="enrollment (参保登记), changes per period; latest updt_time wins",
        fields=(
            Field("psn_no", required=True),
            Field("psn_cert_type"),
            Field("certno"),
            Field("psn_name"),
            Field("gend"),
            Field("brdy", "date"),
            Field("insutype", required=True),
            Field("psn_type"),
            Field("psn_insu_stas", required=True),
            Field("psn_insu_date", "date"),
            Field("paus_insu_date", "date"),
            Field("insuplc_admdvs", "code6", required=True),
            Field("updt_time", "timestamp", required=True),
        ),
        pseudonymise=("certno",),
        drop=("psn_name",),
        period_field="updt_time",
    ),
    "setl": Feed(
        name="setl",
        description="settlements (结算), one row per settlement or reversal",
        fields=(
            Field("setl_id", required=True),
            Field("mdtrt_id", required=True),
            Field("psn_no", required=True),
            Field("certno"),
            Field("psn_name"),
            Field("gend"),
            Field("brdy", "date"),
            Field("insutype", required=True),
            Field("med_type", required=True),
            Field("begndate", "date"),
            Field("enddate", "date"),
            Field("setl_time", "timestamp", required=True),
            Field("fixmedins_code", required=True),
            Field("atddr_no"),
            Field("diag_code"),
            Field("oprn_oprt_code"),
            Field("insuplc_admdvs", "code6", required=True),
            Field("mdtrtarea_admvs", "code6", required=True),
            Field("medfee_sumamt", "dec", required=True),
            *(Field(name, "dec") for name in SETL_OPTIONAL_AMOUNTS[:5]),
            Field("hifp_pay", "dec", required=True),
            *(Field(name, "dec") for name in SETL_OPTIONAL_AMOUNTS[5:11]),
            Field("fund_pay_sumamt", "dec", required=True),
            *(Field(name, "dec") for name in SETL_OPTIONAL_AMOUNTS[11:]),
            Field("refd_setl_flag"),
            Field("init_setl_id"),
            Field("drg_dip_code"),
            Field("clr_type"),
        ),
        pseudonymise=("certno",),
        drop=("psn_name",),
        period_field="setl_time",
    ),
    "fee_list": Feed(
        name="fee_list",
        description="fee detail lines (费用明细) of settlements",
        fields=(
            Field("feedetl_sn", required=True),
            Field("setl_id", required=True),
            Field("mdtrt_id"),
            Field("psn_no"),
            Field("fee_ocur_time", "timestamp"),
            Field("hilist_code", required=True),
            Field("hilist_name"),
            Field("med_chrgitm_type"),
            Field("chrgitm_lv"),
            Field("cnt", "qty"),
            Field("pric", "dec"),
            Field("det_item_fee_sumamt", "dec", required=True),
            Field("selfpay_prop", "ratio"),
            Field("bilg_dr_codg"),
            Field("fixmedins_code"),
        ),
    ),
    "fixmedins": Feed(
        name="fixmedins",
        description="designated institutions (定点医药机构), snapshot per period",
        fields=(
            Field("fixmedins_code", required=True),
            Field("fixmedins_name"),
            Field("fixmedins_type"),
            Field("hosp_lv"),
            Field("admdvs", "code6", required=True),
            Field("agmt_begndate", "date"),
            Field("agmt_enddate", "date"),
            Field("vali_flag"),
        ),
    ),
    "practitioner": Feed(
        name="practitioner",
        description="registered practitioners (医保医师), snapshot per period",
        fields=(
            Field("dr_code", required=True),
            Field("dr_name"),
            Field("fixmedins_code"),
            Field("dr_type"),
            Field("vali_flag"),
        ),
        # A practitioner's name is personal data too: dropped at the door.
        drop=("dr_name",),
    ),
    "fund_ledger": Feed(
        name="fund_ledger",
        description="fund income and expenditure (基金收支) per region, month and fund",
        fields=(
            Field("admdvs", "code6", required=True),
            Field("period", "month", required=True),
            Field("fund_type", required=True),
            *(
                Field(name, "dec", required=True)
                for name in (
                    "bal_open",
                    "inc_contrib",
                    "inc_subsidy",
                    "inc_interest",
                    "inc_other",
                    "exp_benefit",
                    "exp_other",
                    "bal_close",
                )
            ),
        ),
        period_field="period",
    ),
    "population": Feed(
        name="population",
        description="resident population (常住人口) per region and year",
        fields=(
            Field("admdvs", "code6", required=True),
            Field("year", "int", required=True),
            Field("resident_pop", "int", required=True),
        ),
    ),
    "supervision_case": Feed(
        name="supervision_case",
        description="inspection and enforcement cases (监管案件)",
        fields=(
            Field("case_id", required=True),
            Field("admdvs", "code6", required=True),
            Field("fixmedins_code"),
            Field("case_source", required=True),
            Field("violation_type"),
            Field("open_date", "date", required=True),
            Field("close_date", "date"),
            Field("involved_amt", "dec"),
            Field("fine_amt", "dec"),
            Field("action"),
            Field("status"),
        ),
    ),
    "fund_recovery": Feed(
        name="fund_recovery",
        description="money returned to the fund (追回资金)",
        fields=(
            Field("recovery_id", required=True),
            Field("case_id"),
            Field("admdvs", "code6", required=True),
            Field("fixmedins_code"),
            Field("recovered_date", "date", required=True),
            Field("recovered_amt", "dec", required=True),
        ),
    ),
}
