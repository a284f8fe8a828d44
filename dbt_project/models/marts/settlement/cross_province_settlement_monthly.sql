{#- Direct settlements of patients treated outside their home province (跨省直接结算),
    net of reversals, as flows from the province of enrollment to the province of
    treatment. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
with settlements as (
    select * from {{ ref('int_settlements_netted') }}
    -- Withdrawn rows only mark their month as changed.
    where is_cross_province and not is_withdrawn
    {% if is_incremental() %}
        -- Only the months the settlements' model rebuilt since this one last ran.
        and period in {{ rebuilt_months(ref('int_settlements_netted')) }}
    {% endif %}
),

regions as (
    select * from {{ ref('regions') }}
),

flows as (
    select
        period,
        insured_province,
        treatment_province,
        coalesce(visit_class, 'unknown') as visit_class,
        count(*) filter (where is_effective) as settlements,
        count(distinct person_key) filter (where is_effective) as persons,
        sum(medfee_sumamt) as medfee_sumamt,
        sum(fund_pay_sumamt) as fund_pay_sumamt,
        sum(psn_cash_pay) as psn_cash_pay,
        max(_built_at) as _source_built_at
    from settlements
    group by period, insured_province, treatment_province, coalesce(visit_class, 'unknown')
),

final as (
    select
        flows.period,
        flows.insured_province,
        insured.name_zh as insured_province_name_zh,
        insured.name_en as insured_province_name_en,
        flows.treatment_province,
        treated.name_zh as treatment_province_name_zh,
        treated.name_en as treatment_province_name_en,
        flows.visit_class,
        flows.settlements,
        flows.persons,
        cast(flows.medfee_sumamt as decimal(18, 2)) as medfee_sumamt,
        cast(flows.fund_pay_sumamt as decimal(18, 2)) as fund_pay_sumamt,
        cast(flows.psn_cash_pay as decimal(18, 2)) as psn_cash_pay,
        flows._source_built_at
    from flows
    left join regions as insured
        on insured.admdvs = flows.insured_province
    left join regions as treated
        on treated.admdvs = flows.treatment_province
)

select * from final
