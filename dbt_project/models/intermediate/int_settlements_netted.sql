{#- One row per settlement, net of every reversal that points at it, in the month of
    the settlement: a reversal arriving months later changes the month it reverses,
    not the month it arrives. Reversals of settlements we do not hold stay in their own
    month, so that totals still net.

    Incremental by month: a build redoes only the months that batches loaded since the
    last build touch: their own months, the months of the settlements their reversals
    reverse, and the months of reversals of settlements that arrive late. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
{%- set amounts = settlement_amounts() %}
with settlements as (
    select * from {{ ref('stg_platform__setl') }}
),

med_types as (
    select * from {{ ref('med_types') }}
),

{% if is_incremental() %}
new_rows as (
    select
        setl_id,
        init_setl_id,
        period
    from settlements
    where batch_processed_at > {{ incremental_watermark('_loaded_at') }}
),

affected as (
    select period from new_rows
    union
    select settlements.period
    from settlements
    inner join new_rows
        on new_rows.init_setl_id = settlements.setl_id
    union
    select settlements.period
    from settlements
    inner join new_rows
        on settlements.init_setl_id = new_rows.setl_id
),
{% endif %}

all_originals as (
    select setl_id from settlements
    where not is_reversal
),

originals as (
    select * from settlements
    where not is_reversal
    {% if is_incremental() %}
        and period in (select period from affected)
    {% endif %}
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
        max(batch_processed_at) as last_loaded_at,
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
        originals.psn_no,
        originals.gend,
        originals.brdy,
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
        false as is_orphan_reversal,
        greatest(originals.batch_processed_at, coalesce(reversal_totals.last_loaded_at,
            originals.batch_processed_at)) as _loaded_at
    from originals
    left join reversal_totals
        on reversal_totals.setl_id = originals.setl_id
),

orphans as (
    select
        reversals.setl_id,
        reversals.mdtrt_id,
        reversals.person_key,
        reversals.psn_no,
        reversals.gend,
        reversals.brdy,
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
        true as is_orphan_reversal,
        reversals.batch_processed_at as _loaded_at
    from reversals
    left join all_originals
        on all_originals.setl_id = reversals.init_setl_id
    where all_originals.setl_id is null
    {% if is_incremental() %}
        and reversals.period in (select period from affected)
    {% endif %}
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
        end as length_of_stay,
        {{ run_timestamp() }} as _built_at
    from unioned
    left join med_types
        on med_types.med_type = unioned.med_type
)

select * from final
