{#- One row per settlement, net of every reversal that points at it, in the month of
    the settlement: a reversal arriving months later changes the month it reverses,
    not the month it arrives. Reversals of settlements we do not hold stay in their own
    month, so that totals still net. -#}
{%- set amounts = settlement_amounts() %}
with settlements as (
    select * from {{ ref('stg_platform__setl') }}
),

med_types as (
    select * from {{ ref('med_types') }}
),

originals as (
    select * from settlements
    where not is_reversal
),

reversals as (
    select * from settlements
    where is_reversal
),

reversal_totals as (
    select
        init_setl_id as setl_id,
        count(*) as reversals,
        max(setl_time) as last_reversed_at,
        {%- for col in amounts %}
        sum({{ col }}) as {{ col }}{{ "," if not loop.last }}
        {%- endfor %}
    from reversals
    where init_setl_id is not null
    group by init_setl_id
),

netted as (
    select
        originals.setl_id,
        originals.mdtrt_id,
        originals.person_key,
        originals.insutype,
        originals.med_type,
        originals.begndate,
        originals.enddate,
        originals.setl_time,
        originals.period,
        originals.fixmedins_code,
        originals.atddr_no,
        originals.diag_code,
        originals.oprn_oprt_code,
        originals.insuplc_admdvs,
        originals.mdtrtarea_admvs,
        originals.insured_province,
        originals.treatment_province,
        originals.drg_dip_code,
        {%- for col in amounts %}
        originals.{{ col }} + coalesce(reversal_totals.{{ col }}, 0) as {{ col }},
        {%- endfor %}
        coalesce(reversal_totals.reversals, 0) as reversals,
        reversal_totals.last_reversed_at,
        false as is_orphan_reversal
    from originals
    left join reversal_totals
        on reversal_totals.setl_id = originals.setl_id
),

orphans as (
    select
        reversals.setl_id,
        reversals.mdtrt_id,
        reversals.person_key,
        reversals.insutype,
        reversals.med_type,
        reversals.begndate,
        reversals.enddate,
        reversals.setl_time,
        reversals.period,
        reversals.fixmedins_code,
        reversals.atddr_no,
        reversals.diag_code,
        reversals.oprn_oprt_code,
        reversals.insuplc_admdvs,
        reversals.mdtrtarea_admvs,
        reversals.insured_province,
        reversals.treatment_province,
        reversals.drg_dip_code,
        {%- for col in amounts %}
        reversals.{{ col }},
        {%- endfor %}
        1 as reversals,
        reversals.setl_time as last_reversed_at,
        true as is_orphan_reversal
    from reversals
    left join originals
        on originals.setl_id = reversals.init_setl_id
    where originals.setl_id is null
),

unioned as (
    select * from netted
    union all
    select * from orphans
),

final as (
    select
        unioned.*,
        med_types.visit_class,
        coalesce(med_types.is_inpatient, false) as is_inpatient,
        unioned.insured_province <> unioned.treatment_province as is_cross_province,
        -- Counted as a settlement unless reversed in full (or a reversal on its own).
        not unioned.is_orphan_reversal
            and not (unioned.reversals > 0 and unioned.medfee_sumamt = 0) as is_effective,
        case
            when coalesce(med_types.is_inpatient, false)
                then greatest({{ dbt.datediff('unioned.begndate', 'unioned.enddate', 'day') }}, 1)
        end as length_of_stay
    from unioned
    left join med_types
        on med_types.med_type = unioned.med_type
)

select * from final
