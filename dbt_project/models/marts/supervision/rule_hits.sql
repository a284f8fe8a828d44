{#- One row per settlement × rule that fired (per enrollment for enrollment rules):
    the rule base (seeds/rules/rule_base.csv) compiled into one query by the template
    macros (macros/rules/), so a new rule is a row, not a model. -#}
-- The rules are read at run time, so dbt cannot see these dependencies while parsing:
-- depends_on: {{ ref('rule_base') }}
-- depends_on: {{ ref('int_rule_settlements') }}
-- depends_on: {{ ref('int_rule_fee_lines') }}
-- depends_on: {{ ref('int_rule_code_restrictions') }}
-- depends_on: {{ ref('int_enrollments_at_month_end') }}
-- depends_on: {{ ref('dim_practitioners') }}
-- depends_on: {{ ref('dim_institutions') }}
-- depends_on: {{ ref('los_limits') }}
{%- set rules = rule_base() %}
with rules as (
    select * from {{ ref('rule_base') }}
),

settlements as (
    select * from {{ ref('int_rule_settlements') }}
),

fired as (
    {%- for rule in rules %}
    select
        '{{ rule["rule_id"] }}' as rule_id,
        setl_id,
        psn_no,
        period,
        admdvs,
        cast(round(suspect_amt, 2) as decimal(18, 2)) as suspect_amt,
        evidence
    from (
        {{ compile_rule(rule) }}
    ) as rule_{{ rule["rule_id"] | lower }}
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as rule_id,
        cast(null as {{ dbt.type_string() }}) as setl_id,
        cast(null as {{ dbt.type_string() }}) as psn_no,
        cast(null as date) as period,
        cast(null as {{ dbt.type_string() }}) as admdvs,
        cast(null as decimal(18, 2)) as suspect_amt,
        cast(null as {{ dbt.type_string() }}) as evidence
    where 1 = 0
    {%- endfor %}
),

final as (
    select
        fired.rule_id,
        rules.version as rule_version,
        rules.category,
        rules.severity,
        fired.setl_id,
        fired.psn_no,
        fired.period,
        fired.admdvs,
        settlements.insuplc_admdvs,
        settlements.fixmedins_code,
        settlements.atddr_no,
        settlements.med_type,
        settlements.insutype,
        settlements.fund_pay_sumamt,
        -- What a breach can cost the fund is at most what the fund paid on the settlement.
        case
            when settlements.setl_id is null then fired.suspect_amt
            else greatest(least(fired.suspect_amt, settlements.fund_pay_sumamt), 0)
        end as suspect_amt,
        fired.evidence
    from fired
    inner join rules
        on rules.rule_id = fired.rule_id
    left join settlements
        on settlements.setl_id = fired.setl_id
)

select * from final
