{#- One row per settlement × rule that fired (per enrollment for enrollment rules):
    the rule base (seeds/rules/rule_base.csv) compiled into one query by the template
    macros (macros/rules/), so a new rule is a row, not a model. The hits are built,
    incrementally, by int_rule_hits; this is what regulators and analysts read. -#}
select
    rule_id,
    rule_version,
    category,
    severity,
    setl_id,
    psn_no,
    period,
    admdvs,
    insuplc_admdvs,
    fixmedins_code,
    atddr_no,
    med_type,
    insutype,
    fund_pay_sumamt,
    suspect_amt,
    evidence
from {{ ref('int_rule_hits') }}
