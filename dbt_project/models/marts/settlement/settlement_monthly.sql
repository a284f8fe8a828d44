{#- Settlements net of reversals by month, region of enrollment (参保地, and every
    region above it), insurance type and visit type. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
with settlements as (
    select * from {{ ref('int_settlements_netted') }}
    -- Withdrawn rows only mark their month as changed.
    where not is_withdrawn
    {% if is_incremental() %}
        -- Only the months the settlements' model rebuilt since this one last ran.
        and period in {{ rebuilt_months(ref('int_settlements_netted')) }}
    {% endif %}
),

rollup as (
    select * from {{ ref('int_admdvs_rollup') }}
),

med_types as (
    select * from {{ ref('med_types') }}
),

aggregated as (
    select
        settlements.period,
        rollup.admdvs,
        settlements.insutype,
        settlements.med_type,
        count(*) filter (where settlements.is_effective) as settlements,
        count(distinct settlements.person_key) filter (where settlements.is_effective) as persons,
        count(*) filter (where settlements.reversals > 0 and not settlements.is_effective)
            as reversed_settlements,
        sum(settlements.medfee_sumamt) as medfee_sumamt,
        sum(settlements.fund_pay_sumamt) as fund_pay_sumamt,
        sum(settlements.hifp_pay) as hifp_pay,
        sum(settlements.acct_pay) as acct_pay,
        sum(settlements.psn_cash_pay) as psn_cash_pay,
        count(*) filter (where settlements.is_effective and settlements.is_cross_province)
            as cross_province_settlements,
        sum(settlements.length_of_stay) filter (where settlements.is_effective) as bed_days,
        count(*) filter (where settlements.is_effective and settlements.drg_dip_code is not null)
            as drg_dip_cases,
        sum(settlements.fund_pay_sumamt) filter (where settlements.drg_dip_code is not null)
            as drg_dip_fund_pay,
        max(settlements._built_at) as _source_built_at
    from settlements
    inner join rollup
        on rollup.source_admdvs = settlements.insuplc_admdvs
    group by
        settlements.period,
        rollup.admdvs,
        settlements.insutype,
        settlements.med_type
),

final as (
    select
        aggregated.period,
        aggregated.admdvs,
        levels.admdvs_level,
        levels.admdvs_name_zh,
        levels.admdvs_name_en,
        aggregated.insutype,
        aggregated.med_type,
        med_types.name_en as med_type_name_en,
        med_types.name_zh as med_type_name_zh,
        med_types.visit_class,
        aggregated.settlements,
        aggregated.persons,
        aggregated.reversed_settlements,
        cast(aggregated.medfee_sumamt as decimal(18, 2)) as medfee_sumamt,
        cast(aggregated.fund_pay_sumamt as decimal(18, 2)) as fund_pay_sumamt,
        cast(aggregated.hifp_pay as decimal(18, 2)) as hifp_pay,
        cast(aggregated.acct_pay as decimal(18, 2)) as acct_pay,
        cast(aggregated.psn_cash_pay as decimal(18, 2)) as psn_cash_pay,
        aggregated.cross_province_settlements,
        case when med_types.is_inpatient then aggregated.bed_days end as bed_days,
        case
            when med_types.is_inpatient and aggregated.settlements > 0
                then round(aggregated.bed_days / aggregated.settlements, 2)
        end as avg_length_of_stay,
        case when med_types.is_inpatient then aggregated.drg_dip_cases end as drg_dip_cases,
        case
            when med_types.is_inpatient and aggregated.settlements > 0
                then round(aggregated.drg_dip_cases / aggregated.settlements, 4)
        end as drg_dip_case_share,
        case
            when med_types.is_inpatient and aggregated.fund_pay_sumamt <> 0
                then round(coalesce(aggregated.drg_dip_fund_pay, 0) / aggregated.fund_pay_sumamt, 4)
        end as drg_dip_fund_share,
        aggregated._source_built_at
    from aggregated
    inner join (select distinct admdvs, admdvs_level, admdvs_name_zh, admdvs_name_en from rollup) as levels
        on levels.admdvs = aggregated.admdvs
    left join med_types
        on med_types.med_type = aggregated.med_type
)

select * from final
