{#- The settlements the rule base judges: every effective settlement (not reversed in
    full), with the patient's sex and age at admission, normalised diagnosis and
    procedure codes, and the amounts as delivered (for the identity checks) beside the
    funds paid net of reversals (for suspect amounts).

    Incremental by settlement: only the settlements int_settlements_netted rebuilt
    since this model last ran. Each of them also comes through as a tombstone, so that
    the strategy (direct_delete_insert) drops the row held for it, and one no longer
    effective (reversed in full, or withdrawn) gets no other. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='direct_delete_insert',
    unique_key='setl_id',
    on_schema_change='append_new_columns'
) }}
-- Read in incremental builds only, so dbt cannot see it while parsing:
-- depends_on: {{ source('raw', 'setl') }}
{%- set incremental = is_incremental_with(['_is_tombstone']) %}
{%- if incremental %}{% set rebuilt_since = incremental_watermark('_source_built_at') %}{% endif %}
with netted as (
    select * from {{ ref('int_settlements_netted') }}
    where is_effective
    {% if incremental %}
        and _built_at > {{ rebuilt_since }}
    {% endif %}
),

{#- The amounts as delivered. An incremental build reads the deliveries of the
    settlements it rebuilds from the raw table and keeps the latest of each itself: the
    staging view first finds every settlement delivered twice and hashes every delivery
    for the join (3 s a build at `medium`, as much with nothing new as with a month). #}
delivered as (
    {% if incremental %}
    select *
    from (
        select
            raw.*,
            {{ latest_delivery_rank(['raw.setl_id'], 'raw._batch_path', 'raw._line_no') }} as delivery_rank
        from {{ source('raw', 'setl') }} as raw
        -- The netted rows' ids read again, narrow: a CTE read twice is copied whole.
        where raw.setl_id in (
            select setl_id from {{ ref('int_settlements_netted') }}
            where _built_at > {{ rebuilt_since }}
        )
    ) as ranked
    where delivery_rank = 1
        and not {{ setl_is_reversal('ranked') }}
    {% else %}
    select * from {{ ref('stg_platform__setl') }}
    where not is_reversal
    {% endif %}
),

final as (
    select
        netted.setl_id,
        netted.psn_no,
        netted.person_key,
        netted.gend,
        -- Completed years at admission, in portable SQL (no age() function everywhere).
        extract(year from netted.begndate) - extract(year from netted.brdy)
            - case
                when extract(month from netted.begndate) * 100 + extract(day from netted.begndate)
                    < extract(month from netted.brdy) * 100 + extract(day from netted.brdy)
                    then 1
                else 0
            end as age_years,
        netted.insutype,
        netted.med_type,
        netted.is_inpatient,
        netted.begndate,
        netted.enddate,
        {{ dbt.datediff('netted.begndate', 'netted.enddate', 'day') }} as stay_days,
        netted.period,
        netted.fixmedins_code,
        netted.atddr_no,
        netted.diag_code,
        netted.oprn_oprt_code,
        {{ normalise_code('netted.diag_code') }} as diag_norm,
        {{ normalise_code('netted.oprn_oprt_code') }} as oprn_norm,
        netted.insuplc_admdvs,
        netted.mdtrtarea_admvs,
        netted.fund_pay_sumamt,
        delivered.medfee_sumamt as delivered_medfee_sumamt,
        delivered.fund_pay_sumamt as delivered_fund_pay_sumamt,
        delivered.hifp_pay + delivered.cvlserv_pay + delivered.hifes_pay + delivered.hifmi_pay
            + delivered.hifob_pay + delivered.maf_pay + delivered.oth_pay as delivered_funds_total,
        false as _is_tombstone,
        netted._built_at as _source_built_at,
        {{ run_timestamp() }} as _built_at
    from netted
    left join delivered
        on delivered.setl_id = netted.setl_id
    {% if incremental %}
    union all
    -- A tombstone for every settlement rebuilt (read apart: the strategy reads the
    -- tombstones alone, and a second reference to `netted` would copy it whole).
    select
        setl_id,
        {#- the remaining columns of `final`, empty -#}
        null, null, null, null, null, null, null, null, null, null, null, null, null, null,
        null, null, null, null, null, null, null, null, null,
        true as _is_tombstone,
        null, null
    from {{ ref('int_settlements_netted') }}
    where _built_at > {{ rebuilt_since }}
    {% endif %}
)

select * from final
